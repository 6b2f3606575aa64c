//! A simulator-sized history: 5,000 operations by 20 processes on one partition, with
//! dozens of operations concurrent, checked within the default budget. Not timed here
//! (the core crates read no clock); `cargo test --release --test benchmark` shows the
//! wall time.

mod support;

use odradek_model::linearizability::{CONFIGURATIONS_MAX_DEFAULT, Verdict};
use odradek_model::{CheckOptions, check_history};
use support::{Choices, MUTATIONS, Workload, legal_history, mutate};

fn workload() -> Workload {
    Workload {
        processes: 20,
        partitions: 1,
        steps: 14_900,
        indefinite_percent: 5,
        fail_percent: 3,
        poll_percent: 40,
        records_per_poll_max: 50,
        final_reads: true,
    }
}

/// The most operations in flight at one instant; an operation that never completed,
/// or completed indefinitely, stays in flight to the end (it may still take effect).
fn concurrency_max(history: &odradek_model::history::History) -> usize {
    let mut events: Vec<(u64, i64)> = Vec::new();
    for operation in history.operations() {
        events.push((operation.invoked_at, 1));
        if operation.is_ok() || !operation.is_indefinite() {
            events.push((operation.completed_at.expect("completed") + 1, -1));
        }
    }
    events.sort_unstable();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, delta) in events {
        now += delta;
        peak = peak.max(now);
    }
    usize::try_from(peak).expect("positive")
}

#[test]
fn five_thousand_operations_by_twenty_processes() {
    let history = legal_history(&mut Choices::from_seed(2024), &workload());
    let operations = history.operations().len();
    assert!(
        (5_000..5_400).contains(&operations),
        "{operations} operations"
    );
    let concurrency = concurrency_max(&history);
    assert!(
        concurrency >= 24,
        "only {concurrency} operations in flight at most"
    );

    let report = check_history(&history, &CheckOptions::new().final_reads(true));
    assert!(report.is_valid(), "{}", report.render());
    assert!(!report.has_unknown(), "{}", report.render());
    for verdict in report.partitions.values() {
        assert!(
            matches!(verdict, Verdict::Ok { explored, .. } if *explored <= CONFIGURATIONS_MAX_DEFAULT)
        );
    }

    // Every mutation is found as fast.
    for (position, &mutation) in MUTATIONS.iter().enumerate() {
        let Some((mutated, _)) =
            mutate(&mut Choices::from_seed(position as u64), &history, mutation)
        else {
            panic!("{mutation:?} found no place in 5,000 operations");
        };
        let report = check_history(&mutated, &CheckOptions::new().final_reads(true));
        assert!(!report.is_valid(), "{mutation:?}");
        assert!(!report.has_unknown(), "{mutation:?}");
    }
}
