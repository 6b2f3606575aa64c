//! Property tests of the checkers:
//!
//! - histories a real log produced (random concurrent clients, indefinite and failed
//!   outcomes, short polls) are linearizable and free of anomalies;
//! - each mutation of such a history (swapped, dropped, duplicated, reordered or
//!   invented records, moved acknowledgements, reads from the future, lost writes) is
//!   caught, by the symptom it guarantees;
//! - the pruned search agrees with the exhaustive Wing & Gong search on small
//!   histories, legal, mutated, shifted in time or random.

mod support;

use odradek_model::history::{History, Outcome};
use odradek_model::linearizability::{LinearizabilityOptions, Search, Verdict, check_partition};
use odradek_model::{CheckOptions, check_history};
use proptest::prelude::*;
use support::{
    Choices, Expect, MUTATIONS, Mutation, Workload, jitter, legal_history, mutate, random_history,
};

fn tape() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(any::<u32>(), 0..800)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn legal_histories_pass(
        tape in tape(),
        final_reads in any::<bool>(),
        processes in 1usize..7,
        partitions in 1usize..4,
    ) {
        let workload = Workload { processes, partitions, ..Workload::small(final_reads) };
        let history = legal_history(&mut Choices::from_tape(tape), &workload);
        let report = check_history(&history, &CheckOptions::new().final_reads(final_reads));
        prop_assert!(
            report.is_valid() && !report.has_unknown(),
            "{}\n{:#?}",
            report.render(),
            history.operations()
        );
    }

    #[test]
    fn mutated_histories_are_caught(
        tape in tape(),
        final_reads in any::<bool>(),
        mutation in 0..MUTATIONS.len(),
        mutation_tape in proptest::collection::vec(any::<u32>(), 0..8),
    ) {
        let mutation = MUTATIONS[mutation];
        // Without final reads, an unread write may simply not have been looked for.
        let final_reads = final_reads || mutation == Mutation::LoseLastWrite;
        let history = legal_history(&mut Choices::from_tape(tape), &Workload::small(final_reads));
        let Some((mutated, expect)) =
            mutate(&mut Choices::from_tape(mutation_tape), &history, mutation)
        else {
            // The history has no place for this mutation (no long enough poll, say).
            return Ok(());
        };
        let report = check_history(&mutated, &CheckOptions::new().final_reads(final_reads));
        prop_assert!(!report.is_valid(), "{mutation:?} passed:\n{}", report.render());
        let illegal = report.partitions.values().any(Verdict::is_illegal);
        match expect {
            Expect::Anomaly(name) => prop_assert!(
                report.anomaly_counts.contains_key(name),
                "{mutation:?} should show {name}:\n{}",
                report.render()
            ),
            Expect::Illegal => prop_assert!(illegal, "{mutation:?}:\n{}", report.render()),
        }
        // Every mutation but the lost write (whose polls just return fewer records)
        // also breaks linearizability.
        if mutation != Mutation::LoseLastWrite {
            prop_assert!(illegal, "{mutation:?} still linearizable:\n{}", report.render());
        }
    }
}

/// What the two searches say about each partition, or `None` where either gave up.
fn agree(history: &History) -> Result<(), TestCaseError> {
    for partition in history.partitions() {
        let verdict = |search| {
            let options = LinearizabilityOptions {
                configurations_max: 200_000,
                search,
                broker_markers: false,
            };
            check_partition(history, &partition, 0, &options)
        };
        let pruned = verdict(Search::Pruned);
        let exhaustive = verdict(Search::Exhaustive);
        prop_assert!(
            !pruned.is_unknown(),
            "the pruned search gave up: {pruned:?}"
        );
        if exhaustive.is_unknown() {
            continue;
        }
        prop_assert_eq!(
            pruned.is_ok(),
            exhaustive.is_ok(),
            "pruned {:?}\nexhaustive {:?}\n{:#?}",
            pruned,
            exhaustive,
            history.operations()
        );
    }
    Ok(())
}

fn tiny_workload(processes: usize, steps: usize) -> Workload {
    Workload {
        processes,
        partitions: 1,
        steps,
        indefinite_percent: 20,
        fail_percent: 5,
        poll_percent: 40,
        records_per_poll_max: 4,
        final_reads: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn searches_agree_on_legal_and_shifted_histories(
        tape in proptest::collection::vec(any::<u32>(), 0..200),
        processes in 1usize..5,
        steps in 4usize..40,
        shift_tape in proptest::collection::vec(any::<u32>(), 0..100),
    ) {
        let history = legal_history(&mut Choices::from_tape(tape), &tiny_workload(processes, steps));
        agree(&history)?;
        agree(&jitter(&mut Choices::from_tape(shift_tape), &history))?;
    }

    #[test]
    fn searches_agree_on_mutated_histories(
        tape in proptest::collection::vec(any::<u32>(), 0..200),
        processes in 1usize..5,
        steps in 4usize..40,
        mutation in 0..MUTATIONS.len(),
        mutation_tape in proptest::collection::vec(any::<u32>(), 0..8),
    ) {
        let history = legal_history(&mut Choices::from_tape(tape), &tiny_workload(processes, steps));
        if let Some((mutated, _)) =
            mutate(&mut Choices::from_tape(mutation_tape), &history, MUTATIONS[mutation])
        {
            agree(&mutated)?;
        }
    }

    #[test]
    fn searches_agree_on_random_histories(
        tape in proptest::collection::vec(any::<u32>(), 0..100),
        operations in 1usize..9,
    ) {
        agree(&random_history(&mut Choices::from_tape(tape), operations))?;
    }
}

/// The generator is not vacuous: it makes every kind of outcome, concurrency, and
/// indefinite sends that are read and that are not.
#[test]
fn the_generator_covers_every_outcome() {
    let workload = Workload {
        steps: 3000,
        ..Workload::small(true)
    };
    let history = legal_history(&mut Choices::from_seed(7), &workload);
    let operations = history.operations();
    let count = |predicate: &dyn Fn(&odradek_model::history::Operation) -> bool| {
        operations
            .iter()
            .filter(|operation| predicate(operation))
            .count()
    };
    assert!(count(&|o| o.is_ok()) > 100);
    assert!(count(&|o| matches!(o.outcome, Some(Outcome::Fail(_)))) > 10);
    assert!(count(&|o| matches!(o.outcome, Some(Outcome::Indefinite(_)))) > 10);
    assert!(count(&|o| o.outcome.is_none()) > 0);
    let overlapping = operations
        .windows(2)
        .filter(|pair| {
            pair[0]
                .completed_at
                .is_none_or(|completed| completed >= pair[1].invoked_at)
        })
        .count();
    assert!(overlapping > 100, "{overlapping} overlapping neighbours");
    let report = check_history(&history, &CheckOptions::new().final_reads(true));
    assert!(report.is_valid(), "{}", report.render());
}
