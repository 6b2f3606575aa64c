//! The simulator's promise across processes: the same seed run twice by the `odradek`
//! binary prints the same trace hash as a run in this process, and so two builds of the
//! same commit agree (`sim/tests/determinism.rs` checks one process). The command line's
//! seed comes from `ODRADEK_SEED` when no flag names one, and its exit codes are
//! distinct.

use std::process::Command;

use odradek_sim::{FaultSet, Options};

fn short(faults: &str) -> Options {
    Options {
        faults: FaultSet::parse(faults).expect("valid"),
        duration_ns: 10_000_000_000,
        ..Options::default()
    }
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
