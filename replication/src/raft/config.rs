//! A Raft group's settings and bounds, and (feature `mutants`) its deliberate bugs.

/// Most voters in one group. Kafka replication factors are small; the bound keeps every
/// per-voter loop and message fan-out small too.
pub const VOTERS_MAX: usize = 16;

/// Most [`RaftConfig::appends_in_flight_max`] allowed.
pub const APPENDS_IN_FLIGHT_LIMIT: usize = 64;

/// Messages kept back while a hard state is being persisted; beyond this the newest
/// are dropped (the protocol survives lost messages: heartbeats and retransmits
/// repeat them).
pub const HELD_MESSAGES_MAX: usize = 1024;

const _: () = assert!(VOTERS_MAX >= 1);
const _: () = assert!(APPENDS_IN_FLIGHT_LIMIT >= 1);
// A leader's whole pipeline to every follower fits in the held queue.
const _: () = assert!(HELD_MESSAGES_MAX >= VOTERS_MAX * APPENDS_IN_FLIGHT_LIMIT);

/// How one Raft group behaves. All durations are in ticks of the owner's timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    /// `T`: a follower that hears no leader for a random time in `[T, 2T)` ticks starts
    /// an election; a leader that hears from no majority for `T` ticks steps down; a
    /// voter that heard from a leader less than `T` ticks ago refuses to vote.
    pub election_timeout_ticks: u64,
    /// A leader sends each follower at least one message every this many ticks.
    pub heartbeat_interval_ticks: u64,
    /// A leader resends from the last acknowledged offset when appends to a follower
    /// went unanswered this long.
    pub retransmit_timeout_ticks: u64,
    /// Entry bytes per append message (at least one entry is always sent).
    pub append_bytes_max: u64,
    /// Append messages with entries that may be unanswered per follower (pipelining).
    pub appends_in_flight_max: usize,
    /// Deliberate bugs for the mutation tests; all off by default.
    #[cfg(feature = "mutants")]
    pub mutants: RaftMutants,
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 2,
            retransmit_timeout_ticks: 6,
            append_bytes_max: 1 << 20,
            appends_in_flight_max: 4,
            #[cfg(feature = "mutants")]
            mutants: RaftMutants::default(),
        }
    }
}

impl RaftConfig {
    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.election_timeout_ticks < 2 {
            return Err("election_timeout_ticks must be at least 2".to_string());
        }
        if self.heartbeat_interval_ticks == 0
            || self.heartbeat_interval_ticks >= self.election_timeout_ticks
        {
            return Err(
                "heartbeat_interval_ticks must be positive and below election_timeout_ticks"
                    .to_string(),
            );
        }
        if self.retransmit_timeout_ticks == 0 {
            return Err("retransmit_timeout_ticks must be positive".to_string());
        }
        if self.appends_in_flight_max == 0 || self.appends_in_flight_max > APPENDS_IN_FLIGHT_LIMIT {
            return Err(format!(
                "appends_in_flight_max must be in [1, {APPENDS_IN_FLIGHT_LIMIT}]"
            ));
        }
        if self.append_bytes_max == 0 {
            return Err("append_bytes_max must be positive".to_string());
        }
        Ok(())
    }
}

/// Deliberately broken behaviours of the Raft core, for the mutation tests: each must
/// be caught by the randomized cluster harness (`replication/tests/raft_cluster.rs`).
/// Compiled only with the `mutants` feature (see `odradek_log::mutants`).
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftMutants {
    /// Acknowledge before fsync: followers report their appended end as durable and
    /// the leader counts its own unsynced log, so the high watermark can pass entries
    /// that a majority has only in its page cache.
    pub high_watermark_before_fsync: bool,
    /// A voter grants its vote without persisting it (nor the epoch it adopted): the
    /// grant leaves at once and a crash forgets it.
    pub vote_without_persisting: bool,
    /// A follower whose entries conflict with the leader's keeps its own (does not
    /// truncate the divergent suffix) and reports the offsets as matching.
    pub skip_divergent_truncation: bool,
    /// A voter that lost entries it acknowledged starts as if it had not, as a recovery
    /// that takes rot for a torn tail would (decision 0010): it votes and campaigns at
    /// once, and its vote can elect a leader that lacks a committed entry.
    pub recovering_votes: bool,
}
