//! The simulator's promise: a seed is a run. The same seed gives the same trace hash
//! (a hash of every event in order) in one process, in two processes, and so in two
//! builds of the same commit.

use std::process::Command;

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

fn hash_from_binary(seed: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args(["sim", "--seed", &seed.to_string(), "--duration", "10"])
        .output()
        .expect("odradek sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "odradek sim --seed {seed} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("trace-hash: "))
        .unwrap_or_else(|| panic!("no trace-hash line in {stdout}"))
        .to_string()
}

#[test]
fn same_seed_same_trace_hash_across_processes() {
    let first = hash_from_binary(7);
    let second = hash_from_binary(7);
    assert_eq!(first, second);
    let in_process = odradek_sim::run(7, &short("all"));
    assert_eq!(first, format!("{:016x}", in_process.trace_hash));
}

#[test]
fn seed_comes_from_the_environment_and_exit_codes_are_distinct() {
    let output = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args(["sim", "--duration", "5"])
        .env("ODRADEK_SEED", "9")
        .output()
        .expect("odradek sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("seed: 9\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for nodes in ["0", "8"] {
        let refused = Command::new(env!("CARGO_BIN_EXE_odradek"))
            .args(["sim", "--seed", "1", "--nodes", nodes])
            .output()
            .expect("odradek sim runs");
        assert_eq!(
            refused.status.code(),
            Some(2),
            "--nodes {nodes}: a cluster has 1 to 7 brokers"
        );
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args(["sim", "--seed", "1", "--faults", "gremlins"])
        .output()
        .expect("odradek sim runs");
    assert_eq!(bad.status.code(), Some(2));
}
