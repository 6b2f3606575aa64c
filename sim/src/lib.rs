//! `odradek-sim`: the deterministic simulator. The real broker code (`Node` from
//! `odradek-replication`, the storage of `odradek-log`) runs against a simulated world
//! that breaks disks, networks, processes and clocks on purpose, from one seed, and
//! every history is checked.
//!
//! ```text
//!   seed ──► FaultPlan (which faults, how hard: swarm)   WorkloadPlan (topics, clients)
//!              │                                             │
//!              ▼                                             ▼
//!   World: event queue (time, seq) ── nodes (Node + SimIo: SimDisk, NodeClock, BUGGIFY)
//!              │                    ── clients (admin, producers, consumers, final reader)
//!              │                    ── network (delay, loss, duplication, partitions, clogs)
//!              ▼
//!   safety phase (faults on) ──► heal ──► liveness phase ──► final reads
//!              │ checks after every step                        │
//!              ▼                                                ▼
//!   RunReport: verdict, trace hash, fault counters ◄── odradek_model::check::check_history
//! ```
//!
//! Entry points: [`run`] for one seed, [`run_seeds`] for many (threads across runs,
//! never inside one), [`shrink`] to make a failing run smaller, [`html::render`] to
//! draw a run's timeline as a page. The CLI is `odradek sim` (`bin/src/cli/sim.rs`);
//! the guide is `docs/simulation.md`.
//!
//! Determinism: everything random comes from `rand_chacha`'s ChaCha8 seeded from the
//! seed; every collection iterates in a fixed order; no clock, thread or OS call is
//! used inside a run. The same seed on the same commit gives the same trace hash.
#![deny(missing_docs)]

mod checks;
pub mod client;
pub mod clock;
pub mod compaction;
pub mod compaction_check;
pub mod config_changes;
pub mod config_check;
mod counters;
pub mod disk;
mod event;
pub mod faults;
pub mod group;
pub mod html;
mod nemesis;
pub mod network;
pub mod node;
pub mod records;
pub mod rng;
pub mod scheduler;
pub mod shrink;
mod supervision;
pub mod timeline;
pub mod trace;
pub mod trim;
pub mod trim_check;
pub mod workload;
pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use odradek_model::check::{CheckOptions, CheckReport, check_history};
use odradek_model::groups::check_groups;
use odradek_model::history::{History, Outcome};
use odradek_model::linearizability::Verdict as LinearizabilityVerdict;

pub use faults::{FaultClass, FaultSet};
#[cfg(feature = "mutants")]
pub use odradek_log::mutants::Mutants;
pub use shrink::{RunSize, ShrinkLimits, Shrunk, shrink};
pub use timeline::{TimelineEvent, TimelineKind};

use world::{Ending, World, WorldConfig};

const SECOND_NS: u64 = 1_000_000_000;
/// The default of [`Options::liveness_bound_ns`] (`--liveness-bound 30`).
const LIVENESS_BOUND_NS_DEFAULT: u64 = 30 * SECOND_NS;

/// How to run a seed. [`Options::default`] is what `odradek sim --seed N` runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Broker nodes: 1, or a cluster whose every node is a metadata voter.
    pub nodes: u32,
    /// Fault classes a seed may draw from.
    pub faults: FaultSet,
    /// Simulated length of the safety phase.
    pub duration_ns: u64,
    /// Simulated time the liveness phase may take after faults heal.
    pub liveness_bound_ns: u64,
    /// Idempotent producers (Kafka's default). Off: plain producers whose retries may
    /// write a record twice, so duplicates are expected and not reported (and the
    /// linearizability checker, whose log model appends each send at most once, is
    /// not consulted).
    pub idempotent: bool,
    /// After the seed drew its fault plan from `faults`, switch off every class not
    /// in this set (`--keep-faults`; `None`: keep what the seed drew). Unlike a
    /// smaller `faults`, this leaves the rates of the classes kept, the workload and
    /// every random draw as they were (a class switched off still draws, and does
    /// nothing), which is what shrinking needs.
    pub keep_faults: Option<FaultSet>,
    /// Apply only the nemesis events numbered below this (`--nemeses-max`); later
    /// ones are drawn and skipped. Nemesis events are numbered in the order they
    /// come, from 0, repairs not counted.
    pub nemeses_max: Option<u64>,
    /// Skip the nemesis events with these numbers (`--nemesis-skip`).
    pub nemesis_skip: BTreeSet<u64>,
    /// Run the model's checkers on the history (linearizability and anomalies).
    pub check_history: bool,
    /// Add two or three consumer-group members to the workload (`--groups`); their
    /// assignments, commits and offset fetches go through the group checker.
    pub groups: bool,
    /// The compaction workload in every seed (`Some(true)`, `--compaction`), in none
    /// (`Some(false)`, `--no-compaction`), or in one seed in three by its draw.
    pub compaction: Option<bool>,
    /// The config-change workload in every seed (`Some(true)`, `--config-changes`), in
    /// none (`Some(false)`, `--no-config-changes`), or in one seed in three by its draw.
    pub config_changes: Option<bool>,
    /// The delete-records workload in every seed (`Some(true)`, `--delete-records`),
    /// in none (`Some(false)`, `--no-delete-records`), or in one seed in three by its
    /// draw.
    pub delete_records: Option<bool>,
    /// Keep the trace as text lines in the report.
    pub keep_trace: bool,
    /// Print the trace to stdout as the run goes (`--verbose`).
    pub verbose: bool,
    /// Mutant: syncs report success without making anything durable.
    pub fsync_lies: bool,
    /// Mutants inside the core crates (feature `mutants`).
    #[cfg(feature = "mutants")]
    pub mutants: Mutants,
    /// The group coordinator's mutants (feature `mutants`).
    #[cfg(feature = "mutants")]
    pub group_mutants: odradek_replication::group::GroupMutants,
    /// The Raft groups' mutants, on every node (feature `mutants`).
    #[cfg(feature = "mutants")]
    pub raft_mutants: odradek_replication::raft::RaftMutants,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            nodes: 1,
            faults: FaultSet::all(),
            duration_ns: 60 * SECOND_NS,
            liveness_bound_ns: LIVENESS_BOUND_NS_DEFAULT,
            idempotent: true,
            keep_faults: None,
            nemeses_max: None,
            nemesis_skip: BTreeSet::new(),
            check_history: true,
            groups: false,
            compaction: None,
            config_changes: None,
            delete_records: None,
            keep_trace: false,
            verbose: false,
            fsync_lies: false,
            #[cfg(feature = "mutants")]
            mutants: Mutants::default(),
            #[cfg(feature = "mutants")]
            group_mutants: Default::default(),
            #[cfg(feature = "mutants")]
            raft_mutants: Default::default(),
        }
    }
}

impl Options {
    /// The flags that reproduce a run with these options (after `--seed N`).
    /// Options that select mutants (`fsync_lies`, `mutants`) have no flag.
    pub fn to_flags(&self) -> String {
        let mut flags = format!("--nodes {} --faults {}", self.nodes, self.faults.to_text());
        if self.groups {
            flags.push_str(" --groups");
        }
        match self.compaction {
            Some(true) => flags.push_str(" --compaction"),
            Some(false) => flags.push_str(" --no-compaction"),
            None => {}
        }
        match self.config_changes {
            Some(true) => flags.push_str(" --config-changes"),
            Some(false) => flags.push_str(" --no-config-changes"),
            None => {}
        }
        match self.delete_records {
            Some(true) => flags.push_str(" --delete-records"),
            Some(false) => flags.push_str(" --no-delete-records"),
            None => {}
        }
        if let Some(keep) = &self.keep_faults {
            flags.push_str(&format!(" --keep-faults {}", keep.to_text()));
        }
        flags.push_str(&format!(" --duration {}", seconds_text(self.duration_ns)));
        if self.liveness_bound_ns != LIVENESS_BOUND_NS_DEFAULT {
            flags.push_str(&format!(
                " --liveness-bound {}",
                seconds_text(self.liveness_bound_ns)
            ));
        }
        if let Some(max) = self.nemeses_max {
            flags.push_str(&format!(" --nemeses-max {max}"));
        }
        if !self.nemesis_skip.is_empty() {
            let numbers: Vec<String> = self.nemesis_skip.iter().map(u64::to_string).collect();
            flags.push_str(&format!(" --nemesis-skip {}", numbers.join(",")));
        }
        if !self.idempotent {
            flags.push_str(" --non-idempotent");
        }
        flags
    }
}

/// Nanoseconds as exact decimal seconds: `60`, `7.3`, `0.000001`. The CLI reads them
/// back with [`nanoseconds_of_seconds`], so a flag round-trips to the nanosecond.
pub fn seconds_text(nanoseconds: u64) -> String {
    let whole = nanoseconds / SECOND_NS;
    let fraction = nanoseconds % SECOND_NS;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Seconds as given on the command line, to nanoseconds (rounded: `7.3` is 7.3e9, not
/// one below it).
pub fn nanoseconds_of_seconds(seconds: f64) -> u64 {
    (seconds * 1e9).round() as u64
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Pass,
    /// A safety property was violated (a check after a step, or the history checkers).
    Safety(String),
    /// The system did not finish within the liveness bound after faults healed.
    Liveness(String),
    /// The simulated code panicked (an assertion, an invariant).
    Crash(String),
}

impl Verdict {
    /// The process exit code `odradek sim` uses: 0 pass, 10 safety, 11 liveness,
    /// 12 crash.
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety(_) => 10,
            Verdict::Liveness(_) => 11,
            Verdict::Crash(_) => 12,
        }
    }

    /// A short name: `pass`, `safety`, `liveness`, `crash`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Safety(_) => "safety",
            Verdict::Liveness(_) => "liveness",
            Verdict::Crash(_) => "crash",
        }
    }

    /// The explanation, if it failed.
    pub fn message(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::Safety(m) | Verdict::Liveness(m) | Verdict::Crash(m) => Some(m),
        }
    }

    /// The first line of the message (empty for a pass): what a summary line shows.
    pub fn headline(&self) -> &str {
        self.message()
            .and_then(|message| message.lines().next())
            .unwrap_or_default()
    }

    /// Whether the run passed.
    pub fn is_pass(&self) -> bool {
        *self == Verdict::Pass
    }
}

/// Counts of the history's operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// Operations invoked.
    pub invoked: u64,
    /// Completed `Ok`.
    pub ok: u64,
    /// Completed `Fail`.
    pub failed: u64,
    /// Indefinite or never completed.
    pub indefinite: u64,
}

/// What one run did and found.
#[derive(Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The verdict.
    pub verdict: Verdict,
    /// FNV-1a of every event in order.
    pub trace_hash: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated nanoseconds the run took.
    pub simulated_ns: u64,
    /// The fault classes the seed turned on.
    pub faults_on: String,
    /// How often each fault actually fired (names like `disk.sync-error`).
    pub faults: BTreeMap<String, u64>,
    /// Client behaviour counters (retries, seeks, epoch bumps).
    pub client_stats: BTreeMap<String, u64>,
    /// In a cluster, for each broker restart: simulated milliseconds until its metadata
    /// caught up with the quorum (decision 0011).
    pub catch_up_ms: Vec<u64>,
    /// Operation counts.
    pub operations: OperationCounts,
    /// The history checkers' report, rendered (`None` if they did not run).
    pub check: Option<String>,
    /// Whether a linearizability search ran out of budget (not a pass, not a failure).
    pub check_unknown: bool,
    /// The history.
    pub history: Option<History>,
    /// The trace as text, if asked for.
    pub trace: Vec<String>,
    /// A one-line description of the seed's workload.
    pub workload: String,
    /// Operations a timeline should mark, by history index, with why: those the
    /// history checkers name when they fail the run, and the operations a failed
    /// check of the world concerns. Empty when the run passed.
    pub marked: BTreeMap<usize, String>,
    /// What the nemesis and the supervisor did, the phases, and where a check failed,
    /// in time order.
    pub timeline: Vec<TimelineEvent>,
    /// Nemesis events applied (repairs and skipped events not counted).
    pub nemeses: u64,
    /// Who each process of the history belongs to: `client 3 (consumer)`.
    pub processes: BTreeMap<u64, String>,
    /// What the consumer-group members recorded, in a line (`None` without `--groups`).
    pub groups: Option<String>,
}

impl RunReport {
    fn crashed(seed: u64, message: String) -> RunReport {
        RunReport {
            seed,
            verdict: Verdict::Crash(message),
            trace_hash: 0,
            events: 0,
            simulated_ns: 0,
            faults_on: String::new(),
            faults: BTreeMap::new(),
            client_stats: BTreeMap::new(),
            catch_up_ms: Vec::new(),
            operations: OperationCounts::default(),
            check: None,
            check_unknown: false,
            history: None,
            trace: Vec::new(),
            workload: String::new(),
            marked: BTreeMap::new(),
            timeline: Vec::new(),
            nemeses: 0,
            processes: BTreeMap::new(),
            groups: None,
        }
    }
}

/// Runs one seed. A panic inside the simulated code is caught and reported as
/// [`Verdict::Crash`] (the panic hook still prints it, unless the caller replaced it).
pub fn run(seed: u64, options: &Options) -> RunReport {
    assert!(options.nodes >= 1, "a run needs a node");
    let config = WorldConfig {
        seed,
        nodes: options.nodes,
        faults: options.faults.clone(),
        duration_ns: options.duration_ns,
        liveness_bound_ns: options.liveness_bound_ns,
        idempotent: options.idempotent,
        fsync_lies: options.fsync_lies,
        keep_trace: options.keep_trace,
        echo_trace: options.verbose,
        keep_faults: options.keep_faults.clone(),
        nemeses_max: options.nemeses_max,
        nemesis_skip: options.nemesis_skip.clone(),
        groups: options.groups,
        compaction: options.compaction,
        config_changes: options.config_changes,
        delete_records: options.delete_records,
        #[cfg(feature = "mutants")]
        mutants: options.mutants,
        #[cfg(feature = "mutants")]
        group_mutants: options.group_mutants,
        #[cfg(feature = "mutants")]
        raft_mutants: options.raft_mutants,
    };
    // The core logs warnings through `tracing` (injected faults cause many): they are
    // not the simulator's output, so they are silenced unless the run is verbose.
    let silent = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // The world lives outside the unwinding closure, so that after a panic its history
    // and timeline up to the panic can still be reported.
    let mut world = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if options.verbose {
            run_world(&config, options, &mut world)
        } else {
            tracing::dispatcher::with_default(&silent, || run_world(&config, options, &mut world))
        }
    }));
    match outcome {
        Ok(report) => report,
        Err(payload) => {
            let message = LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| {
                    payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic with a non-text payload".to_string())
                });
            match world.as_mut() {
                Some(world) => {
                    let now = world.now_ns();
                    world.timeline.push(TimelineEvent {
                        at_ns: now,
                        kind: TimelineKind::Violation(format!("panic: {message}")),
                    });
                    describe(world, Verdict::Crash(message), None)
                }
                None => RunReport::crashed(seed, message),
            }
        }
    }
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replaces the panic hook with one that prints nothing and keeps the panic's message
/// and location for [`run`] to report (a multi-seed run would otherwise spray
/// backtraces). Call it once, from a binary, not from a library.
pub fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("{message}{location}")));
    }));
}

fn run_world(config: &WorldConfig, options: &Options, slot: &mut Option<World>) -> RunReport {
    let world = slot.insert(World::new(config));
    let ending = world.run();
    let mut verdict = match ending {
        Ending::Complete => Verdict::Pass,
        Ending::Safety(message) => Verdict::Safety(message),
        Ending::Liveness(message) => Verdict::Liveness(message),
    };
    if verdict.is_pass()
        && let Err(message) = world.check_final_reads()
    {
        verdict = Verdict::Safety(message);
    }
    let mut checked = None;
    // The checkers need complete final reads; after a liveness failure they would only
    // report the records nobody got to read.
    if options.check_history && !matches!(verdict, Verdict::Liveness(_)) {
        let check_options = CheckOptions::new()
            .final_reads(matches!(verdict, Verdict::Pass))
            .sequential_polls(true)
            .broker_markers(options.nodes > 1);
        let report = check_history(&world.history, &check_options);
        let valid = if options.idempotent {
            report.is_valid()
        } else {
            // At-least-once producers: duplicates are allowed, and the log model of
            // the linearizability checker cannot express them.
            report
                .anomaly_counts
                .keys()
                .all(|name| *name == "duplicate")
        };
        if !valid && verdict.is_pass() {
            verdict = Verdict::Safety(format!(
                "the history checkers found a violation:\n{}",
                report.render()
            ));
        }
        checked = Some((report, valid));
    }
    if options.groups && !matches!(verdict, Verdict::Liveness(_)) {
        let violations = check_groups(&world.groups);
        if let Some(first) = violations.first()
            && verdict.is_pass()
        {
            verdict = Verdict::Safety(format!(
                "the group checker found {} violation(s); the first: {first}",
                violations.len()
            ));
        }
    }
    describe(world, verdict, checked)
}

/// The report of a run that ended with `verdict`, and the history checkers' report
/// with whether it counted as valid.
fn describe(
    world: &mut World,
    verdict: Verdict,
    checked: Option<(CheckReport, bool)>,
) -> RunReport {
    let marked = failure_marks(world, &verdict, &checked);
    let check_unknown = checked
        .as_ref()
        .is_some_and(|(report, _)| report.has_unknown());
    let check = checked.map(|(report, _)| report.render());
    let client_names = world.client_names();
    let (operations, processes) = count_operations(world, &client_names);
    let workload_text = world.workload_summary();
    RunReport {
        seed: world.seed(),
        verdict,
        trace_hash: world.trace.hash(),
        events: world.events(),
        simulated_ns: world.now_ns(),
        faults_on: world.plan().on_text(),
        faults: world.fault_counters(),
        client_stats: world.client_stats(),
        catch_up_ms: world.catch_up_ms().to_vec(),
        operations,
        check,
        check_unknown,
        trace: world.trace.take_lines(),
        history: Some(std::mem::take(&mut world.history)),
        workload: workload_text,
        marked,
        timeline: std::mem::take(&mut world.timeline),
        nemeses: world.nemeses_applied(),
        processes,
        groups: client_names
            .iter()
            .any(|name| name.ends_with("(group member)"))
            .then(|| group_summary(&world.groups)),
    }
}

/// The operations a failed run marks: the world's own violation marks, then those of
/// the history checkers when they found the history invalid.
fn failure_marks(
    world: &World,
    verdict: &Verdict,
    checked: &Option<(CheckReport, bool)>,
) -> BTreeMap<usize, String> {
    let mut marked = BTreeMap::new();
    if !verdict.is_pass() {
        marked = world.violation_marks(matches!(verdict, Verdict::Liveness(_)));
        if let Some((report, false)) = checked {
            for (index, why) in checker_marks(report) {
                marked.entry(index).or_insert(why);
            }
        }
    }
    marked
}

/// The history's operations counted by outcome, and the client name of each process
/// that invoked one.
fn count_operations(
    world: &World,
    client_names: &[String],
) -> (OperationCounts, BTreeMap<u64, String>) {
    let mut operations = OperationCounts::default();
    let mut processes = BTreeMap::new();
    for operation in world.history.operations() {
        operations.invoked += 1;
        match operation.outcome {
            Some(Outcome::Ok(_)) => operations.ok += 1,
            Some(Outcome::Fail(_)) => operations.failed += 1,
            Some(Outcome::Indefinite(_)) | None => operations.indefinite += 1,
        }
        if let Some(name) = world
            .operation_client(operation.index)
            .and_then(|client| client_names.get(client as usize))
        {
            processes
                .entry(operation.process.0)
                .or_insert_with(|| name.clone());
        }
    }
    (operations, processes)
}

/// One line about a group history: how much of each kind it holds, and the verdict.
fn group_summary(groups: &odradek_model::groups::GroupHistory) -> String {
    use odradek_model::groups::CommitOutcome;
    let count = |outcome| {
        groups
            .commits
            .iter()
            .filter(|c| c.outcome == outcome)
            .count()
    };
    let generation = groups.assignments.iter().map(|a| a.generation).max();
    let violations = check_groups(groups).len();
    format!(
        "{} assignments (highest generation {}), {} commits ({} ok, {} failed, {} indefinite), {} offset fetches: {}",
        groups.assignments.len(),
        generation.map_or("none".to_string(), |g| g.to_string()),
        groups.commits.len(),
        count(CommitOutcome::Ok),
        count(CommitOutcome::Fail),
        count(CommitOutcome::Indefinite),
        groups.fetches.len(),
        if violations == 0 {
            "valid".to_string()
        } else {
            format!("{violations} violation(s)")
        }
    )
}

/// The operations the history checkers name, with why (see
/// [`CheckReport::marked`], which this follows).
fn checker_marks(report: &CheckReport) -> BTreeMap<usize, String> {
    let mut marks = BTreeMap::new();
    for (partition, verdict) in &report.partitions {
        if let LinearizabilityVerdict::Illegal(violation) = verdict {
            marks.insert(
                violation.operation,
                format!("{partition} is not linearizable: this operation could not be placed"),
            );
            for &index in &violation.related {
                marks.entry(index).or_insert_with(|| {
                    format!("named by the {partition} linearizability violation")
                });
            }
            for &index in &violation.frontier {
                marks.entry(index).or_insert_with(|| {
                    format!("pending when the {partition} linearizability search got stuck")
                });
            }
        }
    }
    for anomaly in &report.anomalies {
        for &index in &anomaly.operations {
            marks
                .entry(index)
                .or_insert_with(|| format!("{} on {}", anomaly.kind.name(), anomaly.partition));
        }
    }
    marks
}

/// What [`run_seeds`] found.
#[derive(Debug, Default)]
pub struct SeedsSummary {
    /// Seeds run.
    pub runs: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Failing seeds with their verdicts, in seed order.
    pub failures: Vec<(u64, Verdict)>,
    /// Seeds whose checker answered Unknown somewhere.
    pub unknown: Vec<u64>,
    /// Fault counters summed over every run.
    pub faults: BTreeMap<String, u64>,
    /// Seeds on which each fault fired at least once.
    pub seeds_with_fault: BTreeMap<String, u64>,
    /// Operations over every run.
    pub operations: u64,
    /// Simulated nanoseconds over every run.
    pub simulated_ns: u64,
    /// Events over every run.
    pub events: u64,
    /// Every run's [`RunReport::catch_up_ms`], together.
    pub catch_up_ms: Vec<u64>,
}

/// Runs `count` seeds from `start` on `threads` threads (each run alone on its thread).
/// `on_done` is called after each run, from the thread that ran it.
pub fn run_seeds(
    start: u64,
    count: u64,
    threads: usize,
    options: &Options,
    on_done: &(dyn Fn(&RunReport) + Sync),
) -> SeedsSummary {
    let next = AtomicU64::new(0);
    let summary = Mutex::new(SeedsSummary::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let seed = start.wrapping_add(index);
                    let mut options = options.clone();
                    options.verbose = false;
                    options.keep_trace = false;
                    let mut report = run(seed, &options);
                    report.history = None;
                    on_done(&report);
                    let mut summary = summary.lock().expect("no panics while held");
                    summary.runs += 1;
                    summary.operations += report.operations.invoked;
                    summary.simulated_ns += report.simulated_ns;
                    summary.events += report.events;
                    summary.catch_up_ms.extend_from_slice(&report.catch_up_ms);
                    for (name, count) in &report.faults {
                        *summary.faults.entry(name.clone()).or_insert(0) += count;
                        if *count > 0 {
                            *summary.seeds_with_fault.entry(name.clone()).or_insert(0) += 1;
                        }
                    }
                    if report.check_unknown {
                        summary.unknown.push(seed);
                    }
                    if report.verdict.is_pass() {
                        summary.passed += 1;
                    } else {
                        summary.failures.push((seed, report.verdict.clone()));
                    }
                }
            });
        }
    });
    let mut summary = summary.into_inner().expect("threads joined");
    summary.failures.sort_by_key(|(seed, _)| *seed);
    summary.unknown.sort_unstable();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_through_their_text() {
        for nanoseconds in [
            1,
            999,
            100_000_000,
            7_300_000_000,
            60 * SECOND_NS,
            86_400 * SECOND_NS,
            12_345_678_901,
        ] {
            let text = seconds_text(nanoseconds);
            let seconds: f64 = text.parse().expect("a number");
            assert_eq!(nanoseconds_of_seconds(seconds), nanoseconds, "{text}");
        }
        assert_eq!(seconds_text(7_300_000_000), "7.3");
        assert_eq!(seconds_text(60 * SECOND_NS), "60");
    }

    #[test]
    fn flags_name_every_option_that_has_one() {
        let options = Options {
            keep_faults: Some(FaultSet::parse("crash,kill").expect("valid")),
            duration_ns: 7_300_000_000,
            liveness_bound_ns: 10 * SECOND_NS,
            nemeses_max: Some(4),
            nemesis_skip: BTreeSet::from([0, 2]),
            idempotent: false,
            ..Options::default()
        };
        assert_eq!(
            options.to_flags(),
            "--nodes 1 --faults all --keep-faults crash,kill --duration 7.3 --liveness-bound 10 --nemeses-max 4 --nemesis-skip 0,2 --non-idempotent"
        );
        assert_eq!(
            Options::default().to_flags(),
            "--nodes 1 --faults all --duration 60"
        );
    }
}
