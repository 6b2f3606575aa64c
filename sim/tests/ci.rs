//! The simulator's CI run: 200 seeds over every fault preset, 20 simulated seconds of
//! faults each, on every core. Must pass with zero failures (a failure prints the
//! exact command that reproduces it). Takes about a minute on 2 cores in release mode.
//!
//! A second run adds consumer-group members (`--groups`) to 80 seeds: the group
//! checker must pass on every one, and groups must have formed, committed and read
//! their offsets back across the run.
//!
//! A third run covers clusters: 240 seeds of three brokers and 60 of five, over every
//! fault preset; every cluster check (one leader per epoch, a new leader holds every
//! acknowledged offset, replicas agree below the high watermark) must pass too. A
//! fourth adds group members to 100 three-broker seeds, so that coordinators fail over.
//!
//! Bigger runs are for people: `odradek sim --seeds 10000 [--nodes 3]`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use odradek_sim::{FaultSet, Options, Verdict};

const SEEDS_PER_PRESET: u64 = 25;

/// The command that reproduces each failed seed, with what it found.
fn reproducers(failures: Vec<(u64, Verdict)>, options: &Options) -> Vec<String> {
    failures
        .into_iter()
        .map(|(seed, verdict)| {
            format!(
                "odradek sim --seed {seed} {}  -> {}: {}",
                options.to_flags(),
                verdict.kind(),
                verdict.headline()
            )
        })
        .collect()
}
const PRESETS: &[&str] = &[
    "all",
    "disk",
    "network",
    "process",
    "clock",
    "buggify",
    "crash,torn-writes,sync-error",
    "partition,pause,kill",
];

#[test]
fn two_hundred_seeds_across_fault_classes_pass() {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut failures = Vec::new();
    let mut fired = std::collections::BTreeMap::<String, u64>::new();
    for (index, preset) in PRESETS.iter().enumerate() {
        let options = Options {
            faults: FaultSet::parse(preset).expect("valid preset"),
            duration_ns: 20_000_000_000,
            ..Options::default()
        };
        let start = 1_000 * index as u64;
        let summary = odradek_sim::run_seeds(start, SEEDS_PER_PRESET, threads, &options, &|_| {});
        for (name, count) in summary.faults {
            *fired.entry(name).or_insert(0) += count;
        }
        failures.extend(reproducers(summary.failures, &options));
    }
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    // Not vacuous: the main faults actually fired somewhere in the run.
    for name in [
        "process.crash",
        "process.kill",
        "process.pause",
        "disk.sync-error",
        "disk.read-flip",
        "disk.crash-torn-write",
        "net.drop-loss",
        "net.duplicate",
        "clock.step",
    ] {
        assert!(
            fired.get(name).copied().unwrap_or(0) > 0,
            "fault {name} never fired: {fired:?}"
        );
    }
}

/// Runs `seeds` group seeds per preset on `nodes` brokers from `start_base` (1,000
/// apart per preset); none may fail and each of `events` must have happened.
fn group_seeds_pass(nodes: u32, presets: &[&str], start_base: u64, seeds: u64, events: &[&str]) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut failures = Vec::new();
    let stats = Mutex::new(BTreeMap::<String, u64>::new());
    for (index, preset) in presets.iter().enumerate() {
        let options = Options {
            nodes,
            faults: FaultSet::parse(preset).expect("valid preset"),
            duration_ns: 20_000_000_000,
            groups: true,
            ..Options::default()
        };
        let start = start_base + 1_000 * index as u64;
        let summary = odradek_sim::run_seeds(start, seeds, threads, &options, &|report| {
            let mut stats = stats.lock().unwrap();
            for (name, count) in &report.client_stats {
                if name.starts_with("group.") {
                    *stats.entry(name.clone()).or_insert(0) += count;
                }
            }
        });
        failures.extend(reproducers(summary.failures, &options));
    }
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    let stats = stats.into_inner().unwrap();
    eprintln!("group events over the run on {nodes} broker(s): {stats:?}");
    for name in events {
        assert!(
            stats.get(*name).copied().unwrap_or(0) > 0,
            "{name} never happened: {stats:?}"
        );
    }
}

#[test]
fn group_seeds_across_fault_classes_pass() {
    group_seeds_pass(
        1,
        PRESETS,
        50_000,
        10,
        &[
            "group.assigned",
            "group.commit-ok",
            "group.offset-fetched",
            "group.rejoin",
            "group.refind",
        ],
    );
}

/// The cluster presets: every class, and each group of classes alone.
const CLUSTER_PRESETS: &[&str] = &["all", "disk", "network", "process", "clock"];

#[test]
fn cluster_seeds_of_three_and_five_brokers_pass() {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut failures = Vec::new();
    let mut fired = BTreeMap::<String, u64>::new();
    let mut runs = 0;
    for (nodes, seeds) in [(3, 48), (5, 12)] {
        for (index, preset) in CLUSTER_PRESETS.iter().enumerate() {
            let options = Options {
                nodes,
                faults: FaultSet::parse(preset).expect("valid preset"),
                duration_ns: 20_000_000_000,
                ..Options::default()
            };
            let start = 100_000 * u64::from(nodes) + 1_000 * index as u64;
            let summary = odradek_sim::run_seeds(start, seeds, threads, &options, &|_| {});
            runs += seeds;
            for (name, count) in summary.faults {
                *fired.entry(name).or_insert(0) += count;
            }
            failures.extend(reproducers(summary.failures, &options));
        }
    }
    assert_eq!(runs, 300);
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    // Not vacuous: the faults between brokers fired, brokers crashed, rot and
    // misdirected writes struck replicas that found them and repaired themselves, and
    // brokers whose disks were wiped refused to start on them (decision 0010).
    for name in [
        "peer.drop-loss",
        "peer.drop-partition",
        "peer.duplicate",
        "peer.reorder",
        "peer.partition-isolate",
        "peer.partition-halves",
        "process.crash",
        "disk.read-flip",
        "disk.rot",
        "disk.rot-active-segment",
        "disk.rot-synced-record",
        "disk.misdirected-write",
        "process.wipe",
        "process.wipe-refused",
        "repl.replica-repairs",
    ] {
        assert!(
            fired.get(name).copied().unwrap_or(0) > 0,
            "fault {name} never fired: {fired:?}"
        );
    }
}

/// Consumer groups on three-broker clusters: the coordinator moves with the leadership
/// of its `__consumer_offsets` partition, under every fault class.
#[test]
fn cluster_group_seeds_pass() {
    group_seeds_pass(
        3,
        CLUSTER_PRESETS,
        700_000,
        20,
        &[
            "group.assigned",
            "group.commit-ok",
            "group.offset-fetched",
            "group.refind",
        ],
    );
}
