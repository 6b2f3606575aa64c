//! An insta snapshot of the start of one short run's trace (seed 3, every fault class,
//! 2 simulated seconds): what the node and clients did, event by event. A change in
//! behaviour shows up as a readable diff of
//! `sim/tests/snapshots/trace_snapshot__sim_trace_seed_3.snap`.
//!
//! After an intended change, regenerate it with `INSTA_UPDATE=always cargo test
//! --release -p odradek-sim --test trace_snapshot` (or `cargo insta review`) and review the
//! diff like code. In CI (`CI=true`) a missing or different snapshot fails the test.

use odradek_sim::{FaultSet, Options};

const LINES_MAX: usize = 150;

#[test]
fn sim_trace_seed_3() {
    let options = Options {
        faults: FaultSet::all(),
        duration_ns: 2_000_000_000,
        keep_trace: true,
        check_history: false,
        // The snapshot predates the compaction, config-change and delete-records
        // workloads.
        compaction: Some(false),
        config_changes: Some(false),
        delete_records: Some(false),
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
    insta::assert_snapshot!("sim_trace_seed_3", text);
}
