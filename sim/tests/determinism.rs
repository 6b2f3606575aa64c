//! The simulator's promise: a seed is a run. In one process, the same seed gives the
//! same trace hash (a hash of every event in order), the same events, faults and
//! history, for one broker and for clusters; different seeds give different runs. The
//! workspace's `tests/sim_determinism.rs` checks the same across processes, through the
//! `odradek` binary.

use odradek_sim::{FaultSet, Options};

fn short(faults: &str) -> Options {
    Options {
        faults: FaultSet::parse(faults).expect("valid"),
        duration_ns: 10_000_000_000,
        ..Options::default()
    }
}

#[test]
fn same_seed_same_trace_hash_in_process() {
    for (seed, faults) in [
        (1, "all"),
        (2, "disk"),
        (3, "network"),
        (4, "process"),
        (5, "clock,buggify"),
    ] {
        let options = short(faults);
        let first = odradek_sim::run(seed, &options);
        let second = odradek_sim::run(seed, &options);
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "seed {seed} --faults {faults} gave two trace hashes"
        );
        assert_eq!(first.events, second.events);
        assert_eq!(first.faults, second.faults);
        assert_eq!(first.history, second.history);
        assert_ne!(first.trace_hash, 0);
    }
}

#[test]
fn a_cluster_seed_is_a_run_too() {
    for (seed, nodes, faults) in [(21, 3, "all"), (22, 5, "network,process")] {
        let options = Options {
            nodes,
            ..short(faults)
        };
        let first = odradek_sim::run(seed, &options);
        let second = odradek_sim::run(seed, &options);
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "seed {seed} --nodes {nodes} gave two trace hashes"
        );
        assert_eq!(first.history, second.history);
        assert_eq!(first.faults, second.faults);
        assert!(
            first
                .faults
                .iter()
                .any(|(name, count)| name.starts_with("peer.") && *count > 0),
            "no fault between brokers fired: {:?}",
            first.faults
        );
    }
}

#[test]
fn different_seeds_differ() {
    let options = short("all");
    let a = odradek_sim::run(10, &options);
    let b = odradek_sim::run(11, &options);
    assert_ne!(a.trace_hash, b.trace_hash);
}
