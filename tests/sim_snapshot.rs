//! A text snapshot of the start of one short run's trace (seed 3, every fault class,
//! 2 simulated seconds): what the node and clients did, event by event. A change in
//! behaviour shows up here as a readable diff.
//!
//! The snapshot is `tests/snapshots/sim_trace_seed_3.txt`. After an intended change,
//! regenerate it with `UPDATE_SIM_SNAPSHOTS=1 cargo test --release -p odradek --test
//! sim_snapshot` and review the diff like code.

use std::path::PathBuf;

use odradek_sim::{FaultSet, Options};

const LINES_MAX: usize = 150;

#[test]
fn trace_of_seed_3_matches_the_snapshot() {
    let options = Options {
        faults: FaultSet::all(),
        duration_ns: 2_000_000_000,
        keep_trace: true,
        check_history: false,
        ..Options::default()
    };
    let report = odradek_sim::run(3, &options);
    let mut text = format!(
        "seed 3, faults on: {}\nworkload: {}\n",
        report.faults_on, report.workload
    );
    for line in report.trace.iter().take(LINES_MAX) {
        text.push_str(line);
        text.push('\n');
    }
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/snapshots/sim_trace_seed_3.txt");
    if std::env::var_os("UPDATE_SIM_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).expect("snapshot written");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "snapshot {} unreadable ({error}); create it with UPDATE_SIM_SNAPSHOTS=1",
            path.display()
        )
    });
    if expected != text {
        let first_difference = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(text.lines().count()));
        panic!(
            "the trace of seed 3 changed at line {}:\n  snapshot: {:?}\n  now:      {:?}\n(if intended: UPDATE_SIM_SNAPSHOTS=1 cargo test --release -p odradek --test sim_snapshot)",
            first_difference + 1,
            expected.lines().nth(first_difference),
            text.lines().nth(first_difference)
        );
    }
}
