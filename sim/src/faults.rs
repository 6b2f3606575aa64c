//! Which faults a run injects: the classes a user allows (`--faults`), and the plan a
//! seed draws from them (swarm testing, Groce et al. 2012: each seed first draws which
//! allowed classes are on and how hard they hit, then the schedule, so that some seeds
//! hammer one mechanism while others mix many).
//!
//! The fault model of each layer is written out where it is implemented:
//! `disk.rs` (storage), `network.rs` (links), `clock.rs` (clocks), and `world.rs`
//! (its module documentation: process crashes, kills, pauses, clean restarts and the BUGGIFY sites).

use std::collections::BTreeSet;

use crate::disk::{CrashRates, DiskFaults, SyncLatency};
use crate::network::NetworkFaults;
use crate::rng::SimRng;

/// One class of fault a run may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    /// Reads return a flipped bit.
    ReadFlip,
    /// Reads fail with `EIO` (latent sector errors).
    ReadError,
    /// Writes fail with `EIO`.
    WriteError,
    /// Episodes in which every write fails with `ENOSPC`.
    Enospc,
    /// Syncs fail with `EIO` (fsyncgate semantics).
    SyncError,
    /// Sync latency with spikes.
    SyncLatency,
    /// Crashes keep an adversarial share of unsynced writes and tear many of them.
    TornWrites,
    /// Messages are lost.
    Loss,
    /// Messages are delivered twice.
    Duplicate,
    /// Messages take extra delay and overtake each other.
    Reorder,
    /// Links are cut (a node isolated from some or all clients, maybe one way only).
    Partition,
    /// Links are held and released in a burst.
    Clog,
    /// Power loss: the node stops and the disk keeps only a subset of unsynced state.
    Crash,
    /// Process kill: the node stops, the page cache survives.
    Kill,
    /// The node stops handling events for a while, then gets them in a burst.
    Pause,
    /// Clean shutdown and restart.
    Restart,
    /// Clock drift (per node).
    Drift,
    /// Monotonic clock forward steps and stalls.
    ClockStep,
    /// Wall clock steps, forwards and backwards.
    WallStep,
    /// BUGGIFY sites in core code.
    Buggify,
    /// Media rot: durable bytes of a sealed log segment change at rest (clusters of
    /// three or more brokers; one replica per partition). Last, and drawn from its
    /// own stream ([`FaultPlan::draw_rot`]), so seeds drawn before it existed keep
    /// their plans.
    Rot,
    /// Misdirected writes: a write to a log segment lands on other durable record
    /// data of the same disk, and its own place keeps what it held (clusters of three
    /// or more brokers). After `Rot`, and drawn from a stream of its own
    /// ([`FaultPlan::draw_misdirect`]).
    Misdirect,
    /// Disk wipe: one broker loses its disk for good (clusters of three or more
    /// brokers; once per run). After `Misdirect`, and drawn from a stream of its own
    /// ([`FaultPlan::draw_wipe`]).
    Wipe,
}

impl FaultClass {
    /// Every class, in a fixed order.
    pub const ALL: &'static [FaultClass] = &[
        FaultClass::ReadFlip,
        FaultClass::ReadError,
        FaultClass::WriteError,
        FaultClass::Enospc,
        FaultClass::SyncError,
        FaultClass::SyncLatency,
        FaultClass::TornWrites,
        FaultClass::Loss,
        FaultClass::Duplicate,
        FaultClass::Reorder,
        FaultClass::Partition,
        FaultClass::Clog,
        FaultClass::Crash,
        FaultClass::Kill,
        FaultClass::Pause,
        FaultClass::Restart,
        FaultClass::Drift,
        FaultClass::ClockStep,
        FaultClass::WallStep,
        FaultClass::Buggify,
        FaultClass::Rot,
        FaultClass::Misdirect,
        FaultClass::Wipe,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultClass::ReadFlip => "read-flip",
            FaultClass::ReadError => "read-error",
            FaultClass::WriteError => "write-error",
            FaultClass::Enospc => "enospc",
            FaultClass::SyncError => "sync-error",
            FaultClass::SyncLatency => "sync-latency",
            FaultClass::TornWrites => "torn-writes",
            FaultClass::Loss => "loss",
            FaultClass::Duplicate => "duplicate",
            FaultClass::Reorder => "reorder",
            FaultClass::Partition => "partition",
            FaultClass::Clog => "clog",
            FaultClass::Crash => "crash",
            FaultClass::Kill => "kill",
            FaultClass::Pause => "pause",
            FaultClass::Restart => "restart",
            FaultClass::Drift => "drift",
            FaultClass::ClockStep => "clock-step",
            FaultClass::WallStep => "wall-step",
            FaultClass::Buggify => "buggify",
            FaultClass::Rot => "rot",
            FaultClass::Misdirect => "misdirect",
            FaultClass::Wipe => "wipe",
        }
    }

    /// The preset group the class belongs to.
    pub fn group(self) -> &'static str {
        use FaultClass::*;
        match self {
            ReadFlip | ReadError | WriteError | Enospc | SyncError | SyncLatency | TornWrites
            | Rot | Misdirect => "disk",
            Loss | Duplicate | Reorder | Partition | Clog => "network",
            Crash | Kill | Pause | Restart | Wipe => "process",
            Drift | ClockStep | WallStep => "clock",
            Buggify => "buggify",
        }
    }
}

/// The set of fault classes a run may draw from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSet {
    classes: BTreeSet<FaultClass>,
}

impl FaultSet {
    /// No faults.
    pub fn none() -> FaultSet {
        FaultSet {
            classes: BTreeSet::new(),
        }
    }

    /// Every fault.
    pub fn all() -> FaultSet {
        FaultSet {
            classes: FaultClass::ALL.iter().copied().collect(),
        }
    }

    /// Parses `--faults`: comma-separated presets (`none`, `all`, `disk`, `network`,
    /// `process`, `clock`, `buggify`) and single classes (`crash`, `sync-error`, ...).
    pub fn parse(text: &str) -> Result<FaultSet, String> {
        let mut classes = BTreeSet::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "none" => {}
                "all" => classes.extend(FaultClass::ALL.iter().copied()),
                group @ ("disk" | "network" | "process" | "clock") => classes.extend(
                    FaultClass::ALL
                        .iter()
                        .copied()
                        .filter(|class| class.group() == group),
                ),
                name => {
                    let class = FaultClass::ALL
                        .iter()
                        .copied()
                        .find(|class| class.name() == name)
                        .ok_or_else(|| {
                            format!(
                                "unknown fault class {name:?}; presets: none, all, disk, network, process, clock; classes: {}",
                                FaultClass::ALL
                                    .iter()
                                    .map(|c| c.name())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })?;
                    classes.insert(class);
                }
            }
        }
        Ok(FaultSet { classes })
    }

    /// Whether `class` is allowed.
    pub fn contains(&self, class: FaultClass) -> bool {
        self.classes.contains(&class)
    }

    /// The allowed classes.
    pub fn classes(&self) -> impl Iterator<Item = FaultClass> + '_ {
        self.classes.iter().copied()
    }

    /// The canonical text form (what `parse` reads back).
    pub fn to_text(&self) -> String {
        if self.classes.is_empty() {
            return "none".to_string();
        }
        if self.classes.len() == FaultClass::ALL.len() {
            return "all".to_string();
        }
        self.classes
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Mean time between episodes of a process, network or clock fault (absent: off).
pub type Interval = Option<u64>;

/// What one seed injects: drawn once at the start of the run.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// Classes this seed turned on (a subset of the allowed ones), and kept.
    pub on: BTreeSet<FaultClass>,
    /// Classes this seed turned on that `--keep-faults` switched off
    /// ([`FaultPlan::keep_only`]).
    pub muted: BTreeSet<FaultClass>,
    /// Disk faults (every node the same rates; draws differ).
    pub disk: DiskFaults,
    /// Network faults.
    pub network: NetworkFaults,
    /// Mean time between ENOSPC episodes.
    pub enospc_every_ns: Interval,
    /// Mean time between partitions.
    pub partition_every_ns: Interval,
    /// Mean time between clogged links.
    pub clog_every_ns: Interval,
    /// Mean time between power losses.
    pub crash_every_ns: Interval,
    /// Mean time between process kills.
    pub kill_every_ns: Interval,
    /// Mean time between pauses.
    pub pause_every_ns: Interval,
    /// Mean time between clean restarts.
    pub restart_every_ns: Interval,
    /// Largest drift of a node's clock (0: none).
    pub drift_ppm_max: i64,
    /// Mean time between monotonic steps or stalls.
    pub clock_step_every_ns: Interval,
    /// Mean time between wall-clock steps.
    pub wall_step_every_ns: Interval,
    /// Chance an enabled BUGGIFY site fires when asked (0: BUGGIFY off).
    pub buggify_ppm: u64,
    /// Mean time between media rot events ([`FaultPlan::draw_rot`]).
    pub rot_every_ns: Interval,
    /// Mean time between misdirected writes ([`FaultPlan::draw_misdirect`]).
    pub misdirect_every_ns: Interval,
    /// Mean time before the disk wipe ([`FaultPlan::draw_wipe`]).
    pub wipe_after_ns: Interval,
}

const SECOND: u64 = 1_000_000_000;

impl FaultPlan {
    /// Draws the plan of one seed from the allowed classes.
    pub fn draw(allowed: &FaultSet, rng: &mut SimRng) -> FaultPlan {
        // Swarm: each allowed class is on with probability 3/4.
        let on: BTreeSet<FaultClass> = allowed
            .classes()
            .filter(|&class| {
                !matches!(
                    class,
                    FaultClass::Rot | FaultClass::Misdirect | FaultClass::Wipe
                )
            })
            .filter(|_| rng.below(4) != 0)
            .collect();
        let has = |class| on.contains(&class);
        let every =
            |rng: &mut SimRng, class: FaultClass, menu: &[u64]| has(class).then(|| rng.pick(menu));
        let disk = draw_disk_faults(&on, rng);
        let network = draw_network_faults(&on, rng);
        FaultPlan {
            enospc_every_ns: every(rng, FaultClass::Enospc, &[5 * SECOND, 20 * SECOND]),
            partition_every_ns: every(rng, FaultClass::Partition, &[2 * SECOND, 10 * SECOND]),
            clog_every_ns: every(rng, FaultClass::Clog, &[SECOND, 5 * SECOND]),
            crash_every_ns: every(
                rng,
                FaultClass::Crash,
                &[3 * SECOND, 10 * SECOND, 30 * SECOND],
            ),
            kill_every_ns: every(rng, FaultClass::Kill, &[5 * SECOND, 20 * SECOND]),
            pause_every_ns: every(rng, FaultClass::Pause, &[3 * SECOND, 10 * SECOND]),
            restart_every_ns: every(rng, FaultClass::Restart, &[10 * SECOND, 30 * SECOND]),
            drift_ppm_max: if has(FaultClass::Drift) {
                rng.pick(&[50, 300, 1000])
            } else {
                0
            },
            clock_step_every_ns: every(rng, FaultClass::ClockStep, &[2 * SECOND, 10 * SECOND]),
            wall_step_every_ns: every(rng, FaultClass::WallStep, &[2 * SECOND, 10 * SECOND]),
            buggify_ppm: if has(FaultClass::Buggify) {
                rng.pick(&[10_000, 50_000, 200_000])
            } else {
                0
            },
            rot_every_ns: None,
            misdirect_every_ns: None,
            wipe_after_ns: None,
            on,
            muted: BTreeSet::new(),
            disk,
            network,
        }
    }

    /// Draws media rot, from its own stream `rng`: on (swarm: with probability 3/4)
    /// only if allowed and the cluster has at least three brokers. With fewer, a
    /// rotted batch is lost for good (a single replica has nobody to repair it from;
    /// two replicas cannot elect a leader while one of them recovers), which says
    /// nothing about the code.
    pub fn draw_rot(&mut self, allowed: &FaultSet, nodes: u32, rng: &mut SimRng) {
        if allowed.contains(FaultClass::Rot) && nodes >= 3 && rng.below(4) != 0 {
            self.on.insert(FaultClass::Rot);
            self.rot_every_ns = Some(rng.pick(&[SECOND, 3 * SECOND, 10 * SECOND]));
        }
    }

    /// Draws misdirected writes, from their own stream `rng`, under the same rule as
    /// [`FaultPlan::draw_rot`]: what they damage only other replicas can repair.
    pub fn draw_misdirect(&mut self, allowed: &FaultSet, nodes: u32, rng: &mut SimRng) {
        if allowed.contains(FaultClass::Misdirect) && nodes >= 3 && rng.below(4) != 0 {
            self.on.insert(FaultClass::Misdirect);
            self.misdirect_every_ns = Some(rng.pick(&[2 * SECOND, 5 * SECOND, 15 * SECOND]));
        }
    }

    /// Draws the disk wipe, from its own stream `rng`: on with probability 1/2 only if
    /// allowed and the cluster has at least three brokers, so that a majority is left
    /// of every group the lost broker was in.
    pub fn draw_wipe(&mut self, allowed: &FaultSet, nodes: u32, rng: &mut SimRng) {
        if allowed.contains(FaultClass::Wipe) && nodes >= 3 && rng.below(2) == 0 {
            self.on.insert(FaultClass::Wipe);
            self.wipe_after_ns = Some(rng.pick(&[SECOND, 3 * SECOND, 8 * SECOND]));
        }
    }

    /// Switches off every class not in `keep`, after the draw (`--keep-faults`). A
    /// class switched off is *muted*: everything random it would draw is still drawn,
    /// and its effects are dropped. So the rates of the classes kept, the workload
    /// drawn after the plan, and every random stream stay exactly as they were, and
    /// the run is the same up to the first moment the class would have struck: a
    /// shrinker can drop one class without reshuffling the others.
    pub fn keep_only(&mut self, keep: &FaultSet) {
        let dropped: Vec<FaultClass> = self
            .on
            .iter()
            .copied()
            .filter(|class| !keep.contains(*class))
            .collect();
        for class in dropped {
            self.mute(class);
        }
    }

    fn mute(&mut self, class: FaultClass) {
        self.on.remove(&class);
        self.muted.insert(class);
        match class {
            FaultClass::ReadFlip => self.disk.muted.read_flip = true,
            FaultClass::ReadError => self.disk.muted.read_error = true,
            FaultClass::WriteError => self.disk.muted.write_error = true,
            FaultClass::SyncError => self.disk.muted.sync_error = true,
            FaultClass::SyncLatency => self.disk.muted.sync_latency = true,
            // Only values, read at a power loss: nothing random depends on them.
            FaultClass::TornWrites => self.disk.crash = CrashRates::default(),
            FaultClass::Loss => self.network.muted.loss = true,
            FaultClass::Duplicate => self.network.muted.duplicate = true,
            FaultClass::Reorder => {
                self.network.muted.reorder = true;
                // One draw per message either way; only the range changes back.
                self.network.delay_max_ns = NetworkFaults::default().delay_max_ns;
            }
            // The world mutes these where it uses them: nemesis events of the class are
            // drawn and skipped, drift is drawn and not applied, BUGGIFY sites draw and
            // never fire.
            FaultClass::Enospc
            | FaultClass::Partition
            | FaultClass::Clog
            | FaultClass::Crash
            | FaultClass::Kill
            | FaultClass::Pause
            | FaultClass::Restart
            | FaultClass::Drift
            | FaultClass::ClockStep
            | FaultClass::WallStep
            | FaultClass::Buggify
            | FaultClass::Rot
            | FaultClass::Misdirect
            | FaultClass::Wipe => {}
        }
    }

    /// Whether the seed drew `class` and `--keep-faults` switched it off.
    pub fn is_muted(&self, class: FaultClass) -> bool {
        self.muted.contains(&class)
    }

    /// Whether this seed turned `class` on.
    pub fn is_on(&self, class: FaultClass) -> bool {
        self.on.contains(&class)
    }

    /// The classes on, as text.
    pub fn on_text(&self) -> String {
        if self.on.is_empty() {
            return "none".to_string();
        }
        self.on
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The disk's fault rates, drawn for the classes that are on (the rates stay zero for
/// the others).
fn draw_disk_faults(on: &BTreeSet<FaultClass>, rng: &mut SimRng) -> DiskFaults {
    let has = |class| on.contains(&class);
    let rate = |rng: &mut SimRng, menu: &[u64]| rng.pick(menu);
    let mut disk = DiskFaults {
        latency: SyncLatency::default(),
        crash: CrashRates::default(),
        ..DiskFaults::default()
    };
    if has(FaultClass::ReadFlip) {
        disk.read_flip_ppm = rate(rng, &[100, 1_000, 10_000, 50_000]);
    }
    if has(FaultClass::ReadError) {
        disk.read_error_ppm = rate(rng, &[100, 1_000, 10_000]);
    }
    if has(FaultClass::WriteError) {
        disk.write_error_ppm = rate(rng, &[100, 1_000, 10_000]);
    }
    if has(FaultClass::SyncError) {
        disk.sync_error_ppm = rate(rng, &[100, 1_000, 5_000, 20_000]);
    }
    if has(FaultClass::SyncLatency) {
        let min_ns = rate(rng, &[20_000, 200_000, 1_000_000]);
        disk.latency = SyncLatency {
            min_ns,
            max_ns: min_ns * rate(rng, &[2, 5, 20]),
            spike_ppm: rate(rng, &[1_000, 10_000, 50_000]),
            spike_max_ns: rate(rng, &[50_000_000, 500_000_000, 2 * SECOND]),
        };
    }
    if has(FaultClass::TornWrites) {
        disk.crash = CrashRates {
            keep_file_op_per_mille: rng.pick(&[100, 500, 900]),
            tear_write_per_mille: rng.pick(&[300, 700, 1000]),
            keep_dir_op_per_mille: rng.pick(&[100, 500, 900]),
        };
    }
    disk
}

/// The network's fault rates, drawn for the classes that are on.
fn draw_network_faults(on: &BTreeSet<FaultClass>, rng: &mut SimRng) -> NetworkFaults {
    let has = |class| on.contains(&class);
    let rate = |rng: &mut SimRng, menu: &[u64]| rng.pick(menu);
    let mut network = NetworkFaults::default();
    if has(FaultClass::Loss) {
        network.loss_ppm = rate(rng, &[1_000, 10_000, 50_000]);
    }
    if has(FaultClass::Duplicate) {
        network.duplicate_ppm = rate(rng, &[1_000, 10_000, 50_000]);
    }
    if has(FaultClass::Reorder) {
        network.reorder_ppm = rate(rng, &[1_000, 10_000, 100_000]);
        network.delay_max_ns = rate(rng, &[500_000, 5_000_000, 20_000_000]);
    }
    network
}

/// What the nemesis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nemesis {
    /// Power loss of a node (armed: it strikes when writes are in flight).
    Crash,
    /// Process kill of a node.
    Kill,
    /// Pause a node.
    Pause,
    /// Clean restart of a node.
    Restart,
    /// Cut some links.
    Partition,
    /// Repair every cut link.
    Repair,
    /// Hold a link.
    Clog,
    /// An ENOSPC episode starts.
    DiskFull,
    /// An ENOSPC episode ends.
    DiskSpace,
    /// A monotonic clock step or stall.
    ClockStep,
    /// A wall clock step.
    WallStep,
    /// Media rot in a sealed segment (scheduled on its own stream, see `FaultInjector::rot`, `nemesis.rs`).
    Rot,
    /// A misdirected write armed (its own stream, see `FaultInjector::misdirect`, `nemesis.rs`).
    Misdirect,
    /// A broker's disk lost for good (its own stream, see `FaultInjector::wipe`, `nemesis.rs`).
    Wipe,
}

impl Nemesis {
    /// Its number in the trace.
    pub(crate) fn tag(self) -> u64 {
        self as u64
    }

    /// The fault class that schedules it (none for the follow-ups ending an episode).
    pub fn class(self) -> Option<FaultClass> {
        match self {
            Nemesis::Crash => Some(FaultClass::Crash),
            Nemesis::Kill => Some(FaultClass::Kill),
            Nemesis::Pause => Some(FaultClass::Pause),
            Nemesis::Restart => Some(FaultClass::Restart),
            Nemesis::Partition => Some(FaultClass::Partition),
            Nemesis::Clog => Some(FaultClass::Clog),
            Nemesis::DiskFull => Some(FaultClass::Enospc),
            Nemesis::ClockStep => Some(FaultClass::ClockStep),
            Nemesis::WallStep => Some(FaultClass::WallStep),
            Nemesis::Rot => Some(FaultClass::Rot),
            Nemesis::Misdirect => Some(FaultClass::Misdirect),
            Nemesis::Wipe => Some(FaultClass::Wipe),
            Nemesis::Repair | Nemesis::DiskSpace => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_classes_parse() {
        assert_eq!(FaultSet::parse("none").unwrap(), FaultSet::none());
        assert_eq!(FaultSet::parse("all").unwrap(), FaultSet::all());
        let set = FaultSet::parse("disk,crash").unwrap();
        assert!(set.contains(FaultClass::SyncError));
        assert!(set.contains(FaultClass::Crash));
        assert!(!set.contains(FaultClass::Kill));
        assert_eq!(FaultSet::parse(&set.to_text()).unwrap(), set);
        assert!(FaultSet::parse("gremlins").is_err());
    }

    /// Keeping every class changes nothing; a class switched off is muted, with its
    /// drawn rates kept for the draws.
    #[test]
    fn keep_only_mutes_the_classes_dropped() {
        for seed in 0..20 {
            let drawn = FaultPlan::draw(&FaultSet::all(), &mut SimRng::new(seed, 1));
            let mut kept = drawn.clone();
            kept.keep_only(&FaultSet::all());
            assert_eq!(format!("{kept:?}"), format!("{drawn:?}"));
            let mut off = drawn.clone();
            off.keep_only(&FaultSet::none());
            assert!(off.on.is_empty());
            assert_eq!(off.muted, drawn.on, "seed {seed}");
            assert_eq!(off.on_text(), "none");
            assert_eq!(off.disk.read_flip_ppm, drawn.disk.read_flip_ppm);
            assert_eq!(
                off.disk.muted.read_flip,
                drawn.is_on(FaultClass::ReadFlip),
                "seed {seed}"
            );
            assert_eq!(off.crash_every_ns, drawn.crash_every_ns);
            let mut some = drawn.clone();
            some.keep_only(&FaultSet::parse("crash,disk").expect("valid"));
            assert!(
                some.on
                    .iter()
                    .all(|class| *class == FaultClass::Crash || class.group() == "disk")
            );
            assert_eq!(some.disk, drawn.disk, "disk classes kept as drawn");
        }
    }
}
