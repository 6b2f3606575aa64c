//! The Raft core (`odradek_replication::raft`), tested two ways:
//!
//! - `rules`: one rule at a time, a member fed a few events, the exact outputs checked
//!   (votes, pre-votes, stickiness, check-quorum, the durability rule, truncation,
//!   commit of the current epoch only, the KIP-279 divergence search, ISR).
//! - `cluster`: whole 3- and 5-node groups under a seeded nemesis (network delay, loss,
//!   duplication, reordering, partitions; crashes that lose what is not durable; power
//!   loss; retention), checked after every event, then healed and checked for progress.
//!   With the `mutants` feature, each deliberate bug of the core is caught within 200
//!   seeds and the same seed passes without it.
//! - `partition_log`: the same cluster seeds with every node's log a real
//!   `PartitionLog` on a crashing `MemDisk`, through `PartitionRaftLog`.
//!
//! Rerun one cluster seed with
//! `ODRADEK_RAFT_SEED=N ODRADEK_RAFT_NODES=3 cargo test -p odradek-replication --release
//! --test raft -- one_seed_from_the_environment --nocapture`
//! (add `ODRADEK_RAFT_LOG=partition`, or `partition-slow`, for the `PartitionLog` runs).

mod cluster;
mod mem_log;
mod partition_log;
mod rules;

use cluster::{FaultPlan, HarnessLog, Stats, harness_config, run_seed, run_seed_on};
use mem_log::MemLog;
use odradek_replication::raft::RaftConfig;
use partition_log::{DiskLog, disk_harness_config, slow_disks};
use proptest::prelude::*;

/// Ticks of the fault phase of each seed.
const FAULT_TICKS: u64 = 2_000;

/// Seeds per cluster size. Fewer in debug builds, where the harness runs ~10x slower;
/// CI runs `cargo test --workspace --release` and gets them all.
fn seed_count(release: u64) -> u64 {
    if cfg!(debug_assertions) {
        release / 8
    } else {
        release
    }
}

fn run_seeds(nodes: u32, seeds: u64) -> Stats {
    run_seeds_on::<MemLog>(nodes, seeds, harness_config(), |plan| plan, "")
}

/// Runs `seeds` seeds with logs of type `L` and each drawn plan changed by `adjust`;
/// `rerun` is what to add to the environment to rerun a failing seed the same way.
fn run_seeds_on<L: HarnessLog>(
    nodes: u32,
    seeds: u64,
    config: RaftConfig,
    adjust: fn(FaultPlan) -> FaultPlan,
    rerun: &str,
) -> Stats {
    let mut totals = Stats::default();
    let mut liveness_ticks_max = 0;
    for seed in 0..seeds {
        let plan = adjust(FaultPlan::draw(seed, nodes, FAULT_TICKS));
        match run_seed_on::<L>(seed, plan.clone(), config.clone(), true) {
            Ok(stats) => {
                totals.messages_sent += stats.messages_sent;
                totals.messages_dropped += stats.messages_dropped;
                totals.crashes += stats.crashes;
                totals.power_losses += stats.power_losses;
                totals.partitions += stats.partitions;
                totals.compactions += stats.compactions;
                totals.elections_won += stats.elections_won;
                totals.proposals += stats.proposals;
                totals.committed_offset += stats.committed_offset;
                totals.divergences += stats.divergences;
                totals.truncations += stats.truncations;
                totals.resets += stats.resets;
                totals.losses += stats.losses;
                liveness_ticks_max = liveness_ticks_max.max(stats.liveness_ticks);
            }
            Err(violation) => panic!(
                "{nodes} nodes, seed {seed}: {violation}\n{plan:?}\nreproduce with \
                 {rerun}ODRADEK_RAFT_SEED={seed} ODRADEK_RAFT_NODES={nodes} cargo test -p \
                 odradek-replication --release --test raft -- one_seed_from_the_environment"
            ),
        }
    }
    totals.liveness_ticks = liveness_ticks_max;
    println!("{nodes} nodes, {seeds} seeds: {totals:?}");
    // The nemesis must not be silent: every kind of fault fired, and the protocol's
    // hard paths ran.
    assert!(totals.crashes > seeds);
    assert!(totals.power_losses > 0);
    assert!(totals.partitions > seeds);
    assert!(totals.compactions > 0);
    assert!(totals.messages_dropped > 0);
    assert!(totals.divergences > seeds);
    assert!(totals.truncations > 0);
    assert!(totals.resets > 0);
    assert!(totals.committed_offset > 50 * seeds as i64);
    totals
}

#[test]
fn three_node_groups_stay_safe_and_live_under_faults() {
    let seeds = seed_count(300);
    let totals = run_seeds(3, seeds);
    // Half the seeds lose acknowledged entries at some crashes (decision 0010).
    assert!(totals.losses > seeds / 4, "{totals:?}");
}

#[test]
fn five_node_groups_stay_safe_and_live_under_faults() {
    let seeds = seed_count(200);
    let totals = run_seeds(5, seeds);
    assert!(totals.losses > seeds / 4, "{totals:?}");
}

/// The same seeds over the real storage: `PartitionRaftLog` over a `PartitionLog` on a
/// `MemDisk` per node, crashes losing unsynced writes and reopening from disk.
#[test]
fn three_node_groups_on_partition_logs_stay_safe_and_live_under_faults() {
    let seeds = seed_count(480);
    let totals = run_seeds_on::<DiskLog>(
        3,
        seeds,
        disk_harness_config(),
        |plan| plan,
        "ODRADEK_RAFT_LOG=partition ",
    );
    // Rot cut out of real logs with `cut_damaged`, at some crashes of half the seeds.
    assert!(totals.losses > seeds / 4, "{totals:?}");
}

/// The same again with disks six times slower. Elections take longer than the drawn
/// syncs, so with those a follower is hardly ever cut while a sync round is in flight;
/// with these it is, and a round that claimed the bytes appended after the cut would be
/// caught by the durability oracle (`partition_log.rs`).
#[test]
fn three_node_groups_on_slow_partition_logs_stay_safe_and_live_under_faults() {
    run_seeds_on::<DiskLog>(
        3,
        seed_count(480),
        disk_harness_config(),
        slow_disks,
        "ODRADEK_RAFT_LOG=partition-slow ",
    );
}

#[test]
fn a_seed_replays_identically() {
    let run = |seed| run_seed(seed, FaultPlan::draw(seed, 3, 500), harness_config()).expect("safe");
    let first = run(11);
    assert_eq!(first, run(11), "same seed, same run");
    assert_ne!(
        first.trace_hash,
        run(12).trace_hash,
        "the trace hash sees the schedule"
    );
}

#[test]
// The one place the harness reads the environment: the seed to rerun.
#[allow(clippy::disallowed_methods)]
fn one_seed_from_the_environment() {
    let Ok(seed) = std::env::var("ODRADEK_RAFT_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("ODRADEK_RAFT_SEED is a number");
    let nodes: u32 =
        std::env::var("ODRADEK_RAFT_NODES").map_or(3, |n| n.parse().expect("a number"));
    let log = std::env::var("ODRADEK_RAFT_LOG").unwrap_or_default();
    let mut plan = FaultPlan::draw(seed, nodes, FAULT_TICKS);
    if log == "partition-slow" {
        plan = slow_disks(plan);
    }
    println!("{plan:?}");
    let outcome = match log.as_str() {
        "partition" | "partition-slow" => {
            run_seed_on::<DiskLog>(seed, plan, disk_harness_config(), true)
        }
        _ => run_seed(seed, plan, harness_config()),
    };
    match outcome {
        Ok(stats) => println!("seed {seed}: {stats:?}"),
        Err(violation) => panic!("seed {seed}: {violation}"),
    }
}

fn fault_plan() -> impl Strategy<Value = FaultPlan> {
    (
        prop_oneof![Just(3u32), Just(5u32)],
        1..8u64,
        0.0..0.3f64,
        0.0..0.2f64,
        0.0..0.05f64,
        0.0..0.04f64,
        1..10u64,
        1..8u64,
    )
        .prop_map(
            |(
                nodes,
                delay_max,
                loss,
                duplicate,
                partition,
                crash,
                sync_delay_max,
                persist_delay_max,
            )| {
                FaultPlan {
                    nodes,
                    ticks: 600,
                    delay_max,
                    loss,
                    duplicate,
                    partition,
                    crash,
                    power_loss: 0.002,
                    downtime_max: 30,
                    propose: 0.3,
                    sync_delay_max,
                    persist_delay_max,
                    compact: 0.005,
                    tick_skip: 0.05,
                    lose: 0.2,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any seed with any fault rates in these ranges stays safe and live.
    #[test]
    fn any_seed_and_fault_rates_stay_safe_and_live(seed in any::<u64>(), plan in fault_plan()) {
        if let Err(violation) = run_seed(seed, plan.clone(), harness_config()) {
            prop_assert!(false, "seed {}: {}\n{:?}", seed, violation, plan);
        }
    }
}

/// Each deliberate bug of the core is caught by the cluster harness within 200 seeds,
/// and the seed that catches it passes without the bug.
#[cfg(feature = "mutants")]
mod mutants {
    use odradek_replication::raft::RaftMutants;

    use super::FAULT_TICKS;
    use super::cluster::{FaultPlan, Violation, ViolationKind, harness_config, run_seed_with};

    const SEEDS_MAX: u64 = 200;

    /// The first seed in `0..SEEDS_MAX` at which the harness flags `mutants`.
    fn first_caught(
        mutants: RaftMutants,
        nodes: u32,
        check_durability_rule: bool,
    ) -> (u64, Violation) {
        for seed in 0..SEEDS_MAX {
            let mut config = harness_config();
            config.mutants = mutants;
            let plan = FaultPlan::draw(seed, nodes, FAULT_TICKS);
            if let Err(violation) = run_seed_with(seed, plan.clone(), config, check_durability_rule)
            {
                let clean = run_seed_with(seed, plan, harness_config(), check_durability_rule);
                assert!(
                    clean.is_ok(),
                    "seed {seed} fails without the mutant too: {clean:?}"
                );
                println!("{mutants:?}, {nodes} nodes: caught at seed {seed}: {violation}");
                return (seed, violation);
            }
        }
        panic!("{mutants:?} not caught in {SEEDS_MAX} seeds with {nodes} nodes");
    }

    #[test]
    fn high_watermark_before_fsync_is_caught() {
        let mutants = RaftMutants {
            high_watermark_before_fsync: true,
            ..RaftMutants::default()
        };
        for nodes in [3, 5] {
            let (_, violation) = first_caught(mutants, nodes, true);
            // Entries counted as committed while only in page caches are lost by
            // crashes: a later leader lacks them or holds something else there.
            assert!(matches!(
                violation.kind,
                ViolationKind::LeaderMissesCommittedEntry
                    | ViolationKind::CommittedEntryDiffers
                    | ViolationKind::CommittedEntryCut
            ));
        }
    }

    #[test]
    fn vote_without_persisting_is_caught() {
        let mutants = RaftMutants {
            vote_without_persisting: true,
            ..RaftMutants::default()
        };
        // The durability rule is checked on every message that leaves a node...
        let (_, violation) = first_caught(mutants, 3, true);
        assert_eq!(violation.kind, ViolationKind::SentBeforeDurable);
        // ...and without that check its consequence still shows: a voter that crashed
        // after granting votes again in the same epoch.
        let (_, violation) = first_caught(mutants, 3, false);
        assert!(matches!(
            violation.kind,
            ViolationKind::DoubleVote | ViolationKind::TwoLeadersInOneEpoch
        ));
    }

    #[test]
    fn recovering_member_that_votes_is_caught() {
        let mutants = RaftMutants {
            recovering_votes: true,
            ..RaftMutants::default()
        };
        // A member that lost an entry it helped commit votes for a candidate without
        // it; that leader lacks the entry, or truncates it elsewhere.
        let (_, violation) = first_caught(mutants, 3, true);
        assert!(
            matches!(
                violation.kind,
                ViolationKind::LeaderMissesCommittedEntry | ViolationKind::CommittedEntryDiffers
            ),
            "{violation}"
        );
    }

    #[test]
    fn skip_divergent_truncation_is_caught() {
        let mutants = RaftMutants {
            skip_divergent_truncation: true,
            ..RaftMutants::default()
        };
        for nodes in [3, 5] {
            let (_, violation) = first_caught(mutants, nodes, true);
            assert!(matches!(
                violation.kind,
                ViolationKind::CommittedEntryDiffers | ViolationKind::LeaderMissesCommittedEntry
            ));
        }
    }
}
