//! Shrinking: a failing seed's run made smaller while it still fails the same way
//! (safety, liveness or crash), so a person reads a short run instead of a long one.
//!
//! ```text
//!   failing run ──► drop fault classes ──► shorten the safety phase ──► cap the
//!   (seed, Options)   (--keep-faults)        (--duration, bisection)    nemesis events
//!                                                                       (--nemeses-max,
//!                                                                        bisection)
//!               ──► skip single nemesis events, last first (--nemesis-skip) ──► Shrunk
//!   (repeated while a round makes the run smaller, at most ROUNDS_MAX rounds)
//! ```
//!
//! Classes go first: which faults a failure needs is what a person wants to know
//! first, and a run cut short just after its failure leaves little room to drop a
//! class (any change to its timing loses the failure). A failure found during the
//! safety phase at time T is kept exactly by a phase that ends just after T.
//!
//! Every step changes [`Options`] only through fields that have a flag, so the shrunk
//! run is [`Options::to_flags`] away from the command line: the same seed and flags
//! give the same run and trace hash. Each dimension is chosen so a step disturbs the
//! run as little as it can:
//!
//! - a class is switched off *after* the seed drew its plan ([`Options::keep_faults`],
//!   [`crate::faults::FaultPlan::keep_only`]) and muted: its random draws are still
//!   made, so the other classes, the workload and every random stream stay as they
//!   were, up to the first moment the class would have struck;
//! - a shorter safety phase leaves the run unchanged up to its new end (nothing before
//!   it depends on the duration), so a failure found before then is kept exactly;
//! - a nemesis event skipped by number is still drawn; the run is unchanged up to it
//!   (afterwards it differs: the world's random stream is shared with the network).
//!
//! A candidate is kept only if it fails with the same verdict kind and is no larger
//! than the current run in any dimension of [`RunSize`] and smaller in one. Every
//! candidate is a full run; [`ShrinkLimits::runs_max`] bounds how many.

use std::fmt;

use crate::faults::FaultSet;
use crate::timeline::TimelineKind;
use crate::{Options, RunReport, SECOND_NS, Verdict, run, seconds_text};

/// Runs a shrink may spend by default.
pub const SHRINK_RUNS_MAX: u32 = 200;

/// The step of the safety phase's length the shrinker searches in.
const DURATION_STEP_NS: u64 = SECOND_NS / 10;

/// Rounds of the whole sequence of steps at most (a later round can go further
/// because an earlier step made the run smaller).
const ROUNDS_MAX: u32 = 3;

/// How much a shrink may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkLimits {
    /// Runs at most (the failing run itself not counted).
    pub runs_max: u32,
}

impl Default for ShrinkLimits {
    fn default() -> ShrinkLimits {
        ShrinkLimits {
            runs_max: SHRINK_RUNS_MAX,
        }
    }
}

/// The size of a run in the dimensions the shrinker makes smaller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSize {
    /// Fault classes on (drawn by the seed and kept).
    pub classes: usize,
    /// Nemesis events applied.
    pub nemeses: u64,
    /// Length of the safety phase.
    pub duration_ns: u64,
}

impl RunSize {
    /// The size of the run `report` of `options`.
    pub fn of(options: &Options, report: &RunReport) -> RunSize {
        RunSize {
            classes: classes_on(report).classes().count(),
            nemeses: report.nemeses,
            duration_ns: options.duration_ns,
        }
    }

    /// No larger than `other` in any dimension.
    pub fn fits_in(&self, other: &RunSize) -> bool {
        self.classes <= other.classes
            && self.nemeses <= other.nemeses
            && self.duration_ns <= other.duration_ns
    }

    /// No larger than `other` in any dimension and smaller in one.
    pub fn is_smaller_than(&self, other: &RunSize) -> bool {
        self.fits_in(other) && self != other
    }
}

impl fmt::Display for RunSize {
    /// `12 nemesis events / 3 classes / 7.3 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nemesis events / {} classes / {} s",
            self.nemeses,
            self.classes,
            seconds_text(self.duration_ns)
        )
    }
}

/// What [`shrink`] found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The options of the smallest run found that fails like the original (the
    /// original's, if nothing smaller did).
    pub options: Options,
    /// Its verdict (the same kind as the original's).
    pub verdict: Verdict,
    /// Its trace hash.
    pub trace_hash: u64,
    /// The original run's size.
    pub before: RunSize,
    /// The shrunk run's size.
    pub after: RunSize,
    /// Runs spent.
    pub runs: u32,
}

impl Shrunk {
    /// Whether anything smaller was found.
    pub fn is_smaller(&self) -> bool {
        self.after.is_smaller_than(&self.before)
    }
}

/// Shrinks the run of `seed` with `options`, which failed as `failed` says (its
/// report). Deterministic: the same arguments give the same result.
pub fn shrink(seed: u64, options: &Options, failed: &RunReport, limits: &ShrinkLimits) -> Shrunk {
    assert!(
        !failed.verdict.is_pass(),
        "only a failing run can be shrunk"
    );
    let mut options = options.clone();
    options.verbose = false;
    options.keep_trace = false;
    let before = RunSize::of(&options, failed);
    let mut shrinker = Shrinker {
        seed,
        kind: failed.verdict.kind(),
        runs_max: limits.runs_max,
        runs: 0,
        current: Current {
            size: before,
            options,
            verdict: failed.verdict.clone(),
            trace_hash: failed.trace_hash,
            on: classes_on(failed),
            nemeses_drawn: nemeses_drawn(failed),
            applied: applied_numbers(failed),
            violation_at_ns: violation_at_ns(failed),
        },
    };
    for _ in 0..ROUNDS_MAX {
        let size = shrinker.current.size;
        shrinker.drop_classes();
        shrinker.shorten();
        shrinker.cap_nemeses();
        shrinker.skip_nemeses();
        if shrinker.current.size == size || shrinker.exhausted() {
            break;
        }
    }
    let Current {
        mut options,
        verdict,
        trace_hash,
        size,
        nemeses_drawn,
        ..
    } = shrinker.current;
    // Flags that name no event of the final run (it drew fewer events than an earlier
    // candidate did, or a cap implies a skip) change nothing: drop them.
    let drawn = options
        .nemeses_max
        .map_or(nemeses_drawn, |max| max.min(nemeses_drawn));
    options.nemesis_skip.retain(|number| *number < drawn);
    if options.nemeses_max.is_some_and(|max| max >= nemeses_drawn) {
        options.nemeses_max = None;
    }
    Shrunk {
        options,
        verdict,
        trace_hash,
        before,
        after: size,
        runs: shrinker.runs,
    }
}

/// The smallest failing run so far.
struct Current {
    options: Options,
    size: RunSize,
    verdict: Verdict,
    trace_hash: u64,
    /// Classes on in it.
    on: FaultSet,
    /// Nemesis events drawn in it (skipped ones too).
    nemeses_drawn: u64,
    /// Numbers of the nemesis events it applied.
    applied: Vec<u64>,
    /// When a check failed, if it failed during the run (not after it).
    violation_at_ns: Option<u64>,
}

struct Shrinker {
    seed: u64,
    kind: &'static str,
    runs_max: u32,
    runs: u32,
    current: Current,
}

impl Shrinker {
    fn exhausted(&self) -> bool {
        self.runs >= self.runs_max
    }

    /// Runs `candidate`; keeps it if it fails the same way and is smaller.
    fn attempt(&mut self, candidate: Options) -> bool {
        if self.exhausted() {
            return false;
        }
        self.runs += 1;
        let report = run(self.seed, &candidate);
        if report.verdict.kind() != self.kind {
            return false;
        }
        let size = RunSize::of(&candidate, &report);
        if !size.is_smaller_than(&self.current.size) {
            return false;
        }
        self.current = Current {
            size,
            verdict: report.verdict.clone(),
            trace_hash: report.trace_hash,
            on: classes_on(&report),
            nemeses_drawn: nemeses_drawn(&report),
            applied: applied_numbers(&report),
            violation_at_ns: violation_at_ns(&report),
            options: candidate,
        };
        true
    }

    /// Switches fault classes off: all at once first, then one at a time.
    fn drop_classes(&mut self) {
        let on: Vec<_> = self.current.on.classes().collect();
        if on.is_empty() {
            return;
        }
        let mut candidate = self.current.options.clone();
        candidate.keep_faults = Some(FaultSet::none());
        if self.attempt(candidate) {
            return;
        }
        for class in on {
            if self.exhausted() {
                return;
            }
            if !self.current.on.contains(class) {
                continue;
            }
            let keep = FaultSet::parse(
                &self
                    .current
                    .on
                    .classes()
                    .filter(|other| *other != class)
                    .map(|other| other.name())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .expect("class names parse");
            let mut candidate = self.current.options.clone();
            candidate.keep_faults = Some(keep);
            self.attempt(candidate);
        }
    }

    /// Bisects the safety phase's length, in steps of [`DURATION_STEP_NS`]. A check
    /// that failed during the safety phase at time T fails the same way with any
    /// length above T, so that length is tried first.
    fn shorten(&mut self) {
        let steps = |duration_ns: u64| duration_ns.div_ceil(DURATION_STEP_NS);
        if let Some(at) = self.current.violation_at_ns {
            let just_after = (at / DURATION_STEP_NS + 1) * DURATION_STEP_NS;
            if just_after < self.current.options.duration_ns {
                let mut candidate = self.current.options.clone();
                candidate.duration_ns = just_after;
                self.attempt(candidate);
            }
        }
        // `low` steps is assumed to pass, `high` steps fails (the current length).
        let mut low = 0;
        let mut high = steps(self.current.options.duration_ns);
        while high - low > 1 && !self.exhausted() {
            let middle = low + (high - low) / 2;
            let mut candidate = self.current.options.clone();
            candidate.duration_ns = middle * DURATION_STEP_NS;
            if self.attempt(candidate) {
                high = middle;
            } else {
                low = middle;
            }
        }
    }

    /// Bisects the number of nemesis events applied (`--nemeses-max`).
    fn cap_nemeses(&mut self) {
        let drawn = self.current.nemeses_drawn;
        if drawn == 0 || self.current.applied.is_empty() {
            return;
        }
        // `low` events is assumed to pass, `high` fails (every event drawn).
        let mut candidate = self.current.options.clone();
        candidate.nemeses_max = Some(0);
        if self.attempt(candidate) {
            return;
        }
        let mut low = 0;
        let mut high = drawn;
        while high - low > 1 && !self.exhausted() {
            let middle = low + (high - low) / 2;
            let mut candidate = self.current.options.clone();
            candidate.nemeses_max = Some(middle);
            if self.attempt(candidate) {
                high = middle;
            } else {
                low = middle;
            }
        }
    }

    /// Skips single nemesis events, the last first: skipping one leaves every
    /// earlier event as it was, so the numbers still to try keep their meaning.
    fn skip_nemeses(&mut self) {
        let mut numbers = self.current.applied.clone();
        numbers.reverse();
        for number in numbers {
            if self.exhausted() {
                return;
            }
            if !self.current.applied.contains(&number) {
                continue;
            }
            let mut candidate = self.current.options.clone();
            candidate.nemesis_skip.insert(number);
            self.attempt(candidate);
        }
    }
}

/// The classes the run turned on.
fn classes_on(report: &RunReport) -> FaultSet {
    FaultSet::parse(&report.faults_on).expect("the report names classes")
}

/// Nemesis events drawn (applied or skipped).
fn nemeses_drawn(report: &RunReport) -> u64 {
    report
        .timeline
        .iter()
        .filter_map(|event| match event.kind {
            TimelineKind::Nemesis { number, .. } => number,
            _ => None,
        })
        .max()
        .map_or(0, |last| last + 1)
}

/// The numbers of the nemesis events applied.
fn applied_numbers(report: &RunReport) -> Vec<u64> {
    report
        .timeline
        .iter()
        .filter_map(|event| match event.kind {
            TimelineKind::Nemesis {
                number: Some(number),
                skipped: false,
                ..
            } => Some(number),
            _ => None,
        })
        .collect()
}

/// When a check failed during the safety phase.
fn violation_at_ns(report: &RunReport) -> Option<u64> {
    let mut in_safety = true;
    for event in &report.timeline {
        match &event.kind {
            TimelineKind::Phase(_) => in_safety = false,
            TimelineKind::Violation(_) if in_safety => return Some(event.at_ns),
            _ => {}
        }
    }
    None
}
