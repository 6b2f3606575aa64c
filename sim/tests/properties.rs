//! Property: whatever proptest draws (a seed, a subset of the fault classes, a safety
//! phase length, idempotent or plain producers), the run passes. Seeds already vary
//! the workload and the fault schedule; proptest adds the fault sets and lengths that
//! `ci.rs` does not pin, and shrinks a failure towards fewer classes and a shorter
//! run before printing it.
//!
//! A failure prints the proptest input and the `odradek sim` command that reproduces
//! the run on its own.

use odradek_sim::{FaultClass, FaultSet, Options};
use proptest::prelude::*;

fn fault_set(classes: &[FaultClass]) -> FaultSet {
    let names: Vec<&str> = classes.iter().map(|class| class.name()).collect();
    FaultSet::parse(&names.join(",")).expect("class names parse")
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_seed_fault_set_and_length_passes(
        seed in any::<u64>(),
        classes in proptest::sample::subsequence(FaultClass::ALL.to_vec(), 0..=FaultClass::ALL.len()),
        duration_seconds in 1u64..=20,
        idempotent in any::<bool>(),
    ) {
        let options = Options {
            faults: fault_set(&classes),
            duration_ns: duration_seconds * 1_000_000_000,
            idempotent,
            ..Options::default()
        };
        let report = odradek_sim::run(seed, &options);
        prop_assert!(
            report.verdict.is_pass(),
            "odradek sim --seed {seed} {}: {}: {}",
            options.to_flags(),
            report.verdict.kind(),
            report.verdict.message().unwrap_or_default()
        );
    }
}
