//! Raft for one replicated group — a partition, or the metadata log — as a pure state
//! machine, in Kafka's words.
//!
//! One [`Raft`] per group (docs/replication.md), driven by its owner (the
//! broker node) through a handful of calls, with every effect handed back as data. It
//! never reads a clock, touches a disk or a socket, or draws a random number: time is
//! a tick count, the log is a [`RaftLog`] the owner implements, randomness is a seed
//! the owner passes in, and messages are values in a [`Ready`].
//!
//! ```text
//!   owner (node / test harness)                      Raft<G> (this module)
//!   ───────────────────────────                      ─────────────────────
//!   periodic timer ─────────── tick(log) ─────────►  elections, heartbeats, resends,
//!   peer message ───────────── step(log, from, m) ─►  votes, appends, answers
//!   client write ───────────── propose(log, n, b) ─►  leader appends, replicates
//!   log sync completed ─────── on_log_synced(log) ─►  acknowledge / advance high watermark
//!   hard state written ─────── on_hard_state_persisted(log, hs) ─► release held messages
//!
//!   take_ready() ◄── Ready { hard_state: persist this,
//!                            messages:   send these now (each names its group),
//!                            sync_log:   start a log sync }
//! ```
//!
//! # Raft in Kafka's vocabulary
//!
//! | Raft (the paper)          | here (Kafka)                                        |
//! |---------------------------|-----------------------------------------------------|
//! | term                      | leader epoch (`i32`, [`Raft::leader_epoch`])        |
//! | log index                 | offset (`i64`); an [`Entry`] is a record batch      |
//! |                           | covering `[base_offset, last_offset]`               |
//! | entry's term              | the batch's `partitionLeaderEpoch`                  |
//! | commit index              | high watermark: the end offset (exclusive) of the   |
//! |                           | committed prefix ([`Raft::high_watermark`])         |
//! | last log index / term     | log end offset / epoch of the last batch            |
//! | AppendEntries             | [`Append`] (pushed by the leader, like Redpanda;    |
//! |                           | Kafka's followers fetch instead)                    |
//! | `prevLogIndex/prevLogTerm`| `prev_end_offset` / `prev_epoch`                    |
//! | no-op entry of a new term | the leader marker, Kafka's leader-change control    |
//! |                           | batch ([`RaftLog::append_leader_marker`])           |
//! | snapshot                  | `log_start_offset`: what retention deleted          |
//!
//! # The protocol, step by step
//!
//! **Start.** Every member starts as a follower with the hard state it persisted
//! ([`HardState`]: epoch and vote) and its recovered log. Its epoch is at least the
//! epoch of its last log entry. Its high watermark starts at its log start: the high
//! watermark is not persisted, the leader teaches it again.
//!
//! **Election timeout.** The owner calls [`Raft::tick`] at a fixed period (one timer
//! per node drives all its groups; there are no per-group timers). A follower that
//! hears no leader for a random number of ticks in `[T, 2T)` (`T` =
//! [`RaftConfig::election_timeout_ticks`]) starts an election. The randomness is a
//! SplitMix64 stream seeded from [`RaftInit::random_seed`], which the node draws from
//! `Io::random`; the same seed gives the same timeouts.
//!
//! **Pre-vote** (Ongaro's thesis §9.6). The member first becomes a *pre-candidate* and
//! asks every voter "would you vote for me in epoch `e + 1`?" without changing its own
//! epoch or anybody's. A voter says yes only if (a) `e + 1` is above its own epoch, (b)
//! the asker's log is at least as up to date as its own — compared by the epoch of the
//! last entry, then by end offset (Raft §5.4.1) — and (c) it has not heard from a live
//! leader in the last `T` ticks (leader stickiness, thesis §4.2.3). A member cut off
//! from the majority thus never wins a pre-vote, never raises its epoch, and cannot
//! force a healthy leader to step down when it comes back.
//!
//! **Vote** (Raft §5.2). With pre-votes from a majority, the member becomes a
//! candidate: epoch `e + 1`, a vote for itself, and a vote request to every voter. A
//! voter grants at most one vote per epoch, only to an up-to-date log, and — as with
//! pre-votes — refuses, *without moving to the candidate's epoch*, while it hears a
//! live leader. A candidate with a majority of votes becomes leader.
//!
//! **Durability of the hard state.** A vote must survive a crash, or a voter could
//! vote twice in one epoch and two leaders could be elected in it. So every change of
//! epoch or vote is handed to the owner in [`Ready::hard_state`], and *every* message
//! created while some hard state is not yet durable is held inside the core until the
//! owner reports it durable with [`Raft::on_hard_state_persisted`]. That covers vote
//! grants and every message of a new epoch, and is simple to reason about; the cost is
//! one durable write per epoch change, which is rare. A candidate also waits for its
//! own vote to be durable before it leads (only a one-voter group can get that far
//! without it).
//!
//! **Leader marker** (Raft §5.4.2, Figure 8). A new leader first appends a marker entry
//! of its epoch. A leader only ever commits an entry of *its own* epoch by counting
//! replicas; older entries become committed when the marker after them does. The
//! marker makes that happen at once instead of waiting for the next client write. The
//! node writes it as Kafka's leader-change control batch.
//!
//! **Replication** (Raft §5.3). The leader pushes [`Append`] messages: the entries
//! after `prev_end_offset`, the epoch of its entry ending there (`prev_epoch`), its high
//! watermark and its log start offset. A follower accepts only if its own entry ending
//! at `prev_end_offset` has epoch `prev_epoch` (same offset and epoch means same entry
//! and same prefix: Log Matching). It then skips entries it already has, and at the
//! first entry whose epoch differs from its own it truncates its log there — a
//! divergent suffix left by an older leader, never committed (KIP-101: truncate by
//! epoch, never by high watermark). It appends the rest.
//!
//! **Flow control.** Each message carries at most [`RaftConfig::append_bytes_max`]
//! bytes of entries (but at least one entry). Per follower the leader is either
//! *probing* (one message at a time, until it knows where the logs meet) or
//! *pipelining* (up to [`RaftConfig::appends_in_flight_max`] unanswered messages).
//! When appends stay unanswered for [`RaftConfig::retransmit_timeout_ticks`], the
//! leader resends: the same probe, or a probe from the last acknowledged offset. An idle follower gets an empty append (a heartbeat) every
//! [`RaftConfig::heartbeat_interval_ticks`]. Every message carries its group, so the
//! node can bundle all groups' messages between two brokers into one request.
//!
//! **Acknowledgement only of durable offsets.** A follower answers every append with
//! [`AppendResult::Accepted`]: `end_offset`, how far its log now matches the leader's,
//! and `durable_end_offset`, how much of that is fsynced. When a later sync makes more
//! durable ([`Raft::on_log_synced`]), it answers again. The leader counts only durable
//! offsets — its own log too, up to [`RaftLog::durable_end_offset`].
//!
//! **High watermark.** The leader's high watermark is the largest offset that a
//! majority holds durably, provided it is past the marker of the leader's epoch. It
//! never goes back while the member lives. Followers learn it from appends and take
//! `min(leader's high watermark, how far they match)`. What is below the high
//! watermark is in the log of every future leader (Leader Completeness), which is what
//! lets a produce with `acks=all` be answered then.
//!
//! **Divergence search** (KIP-279). When a follower refuses an append it says where to
//! try next: [`AppendResult::Diverged`] with `(hint_epoch, hint_end_offset)`, found with
//! [`RaftLog::end_offset_for_epoch`] on its own log — the end of its largest epoch not
//! above `prev_epoch`, capped at `prev_end_offset` and its log end, and the epoch of its
//! entry just before that point. The leader looks that epoch up in its own log: if it
//! holds `hint_epoch` the logs agree up to the smaller of the two end offsets and the
//! next append there succeeds; if it does not, the next try is at the end of an older
//! epoch of its own. Either way the next probe's `prev_epoch` is smaller, so the search
//! takes one round trip per epoch, not one per entry.
//!
//! **Log start.** Retention deletes a committed prefix (the node must never delete at or
//! above the high watermark). Below its log start a log only remembers the epoch of the
//! last deleted entry. A follower whose log cannot meet the leader's above the leader's
//! log start is reset: it drops its whole log and starts empty at the leader's log
//! start ([`RaftLog::reset`]). Everything it drops there is either below the leader's
//! log start (committed, retained elsewhere) or divergent.
//!
//! **Check-quorum** (thesis §6.2). A leader that has not heard from a majority within
//! `T` ticks steps down (same epoch, no leader). A leader cut off from the others thus
//! stops claiming leadership at about the time the others may elect a new one.
//!
//! **Lost entries** (decision 0010). Raft assumes a durable entry stays durable. When
//! the medium destroys one (rot, a misdirected write), the owner durably sets
//! [`HardState::recovering`] and raises [`HardState::losses`] *before* it cuts the log,
//! and builds the member anew. A recovering member grants no votes and never
//! campaigns: it may have helped commit an entry it no longer holds, and its vote
//! could elect a leader without it. Its answers carry its loss count; a leader that
//! sees the count rise forgets what the follower acknowledged before and ignores
//! answers with a lower count, so the high watermark never rests on entries the
//! follower lost. Appends name the count the leader has seen
//! ([`Append::follower_losses`]). The member is restored, and votes again, once it
//! durably holds the high watermark of an append that names its current count and
//! whose entry just below the high watermark is of the leader's epoch: everything
//! any leader committed is below it.
//!
//! **Storage errors** are results, not panics: a follower whose log fails stops
//! acknowledging, a leader steps down, and neither campaigns again
//! ([`Raft::storage_failure`]). The node reopens the log and builds a new `Raft` from
//! the persisted hard state.
//!
//! # For the node (wiring)
//!
//! - Implement [`RaftLog`] over `PartitionLog` (and the metadata log). Keep a leader
//!   epoch cache beside it ([`EpochCache`], rebuilt from batch headers at open or
//!   checkpointed like Kafka's `leader-epoch-checkpoint`): the core asks epoch
//!   questions on every append and must not cost a disk read each.
//! - Persist [`HardState`] per group (a small file, synced) and call
//!   [`Raft::on_hard_state_persisted`] when the sync completes.
//! - On [`Ready::sync_log`], start a sync (group commit); call [`Raft::on_log_synced`]
//!   when it completes.
//! - Writes: [`Raft::propose`], or [`Raft::check_leader`] for the epoch, an append
//!   through the node's own validation (idempotent producers), then
//!   [`Raft::replicate`].
//! - acks=all: answer once [`Raft::high_watermark`] passes the batch. min.insync.replicas:
//!   compare [`Raft::in_sync_replicas`] with it. Metadata and describe APIs:
//!   [`Raft::role`], [`Raft::leader_id`], [`Raft::followers`].
//!
//! # Decisions (and why)
//!
//! - *Push, not fetch.* Kafka's followers fetch; Raft's leader pushes. Pushing keeps the
//!   protocol in the shape students know from the paper, lets the leader pace each
//!   follower (probe vs pipeline), and makes heartbeats and appends the same message.
//! - *The epoch cache lives in the log implementation*, not in the core: only the
//!   implementation sees every append, truncation and retention, and only it can
//!   persist or rebuild the cache. The core asks two questions ([`RaftLog::epoch_at`],
//!   [`RaftLog::end_offset_for_epoch`]).
//! - *One seed, not a random per call:* the core draws its jitter from a seeded stream,
//!   so the API needs no random argument on every tick and stays deterministic.
//! - *Hold every message while the hard state is not durable*, not only those that
//!   depend on it: simpler to get right, cheap because epochs change rarely.
//! - *Not here (yet):* membership changes (voters are fixed by the replica set),
//!   leadership transfer, learners/observers, lease-based reads, and sending snapshots
//!   (a follower behind the leader's log start restarts empty there; Kafka's own
//!   partitions work the same way).
//!
//! Tests: `replication/tests/raft/` — rule-by-rule tests citing the paper and the KIPs,
//! and a seeded cluster harness with crashes, partitions and mutants.

mod config;
mod election;
mod message;
mod partition_log;
mod progress;
mod replicate;
mod storage;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use odradek_log::mixing::SplitMix64;

#[cfg(feature = "mutants")]
pub use config::RaftMutants;
pub use config::{APPENDS_IN_FLIGHT_LIMIT, HELD_MESSAGES_MAX, RaftConfig, VOTERS_MAX};
pub use message::{
    Append, AppendResponse, AppendResult, Entry, Envelope, HardState, Message, NO_EPOCH, NodeId,
    Ready, VoteRequest, VoteResponse,
};
pub use partition_log::{PartitionRaftLog, ReplicaLogState};
pub use progress::FollowerView;
pub use storage::{EpochCache, RaftLog, StorageError};

use progress::Progress;

/// What a group member is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks whether it could win an election, without changing its epoch.
    PreCandidate,
    /// Campaigns in a new epoch, having voted for itself.
    Candidate,
    /// Leads its epoch: appends, replicates, advances the high watermark.
    Leader,
}

/// How a group member starts: who it is, who votes, and what it remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftInit<G> {
    /// The group, copied into every message (the node routes and bundles by it).
    pub group: G,
    /// This member.
    pub node_id: NodeId,
    /// Every voter of the group, this member included. Fixed for the group's life.
    pub voters: BTreeSet<NodeId>,
    /// The hard state last persisted (`HardState::default()` for a new group).
    pub hard_state: HardState,
    /// Seeds the election-timeout jitter. Draw it from `Io::random`: the core has no
    /// randomness of its own.
    pub random_seed: u64,
}

/// Why a group member could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftInitError {
    /// The configuration is inconsistent.
    #[error("invalid raft configuration: {0}")]
    InvalidConfig(String),
    /// The member is not one of the voters.
    #[error("node {node_id} is not a voter of the group")]
    NotAVoter {
        /// The member.
        node_id: NodeId,
    },
    /// No voters, or more than [`VOTERS_MAX`].
    #[error("a group needs 1 to {VOTERS_MAX} voters, not {count}")]
    VoterCount {
        /// How many were given.
        count: usize,
    },
}

/// This member does not lead its group: where to go instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not the leader (leader {leader_id:?} in epoch {leader_epoch})")]
pub struct NotLeader {
    /// The leader, if this member knows it.
    pub leader_id: Option<NodeId>,
    /// This member's epoch.
    pub leader_epoch: i32,
}

/// Why [`Raft::propose`] appended nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Not the leader (Kafka `NOT_LEADER_OR_FOLLOWER`, retriable).
    #[error("not the leader (leader {leader_id:?} in epoch {leader_epoch})")]
    NotLeader {
        /// The leader, if known.
        leader_id: Option<NodeId>,
        /// This member's epoch.
        leader_epoch: i32,
    },
    /// A batch covers at least one record.
    #[error("a proposed batch needs at least one record")]
    NoRecords,
    /// The log refused the append; the member gave up leadership.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where [`Raft::propose`] put a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// The batch's first offset.
    pub base_offset: i64,
    /// The batch's last offset. The batch is committed once the high watermark passes it.
    pub last_offset: i64,
    /// The epoch it was written in.
    pub leader_epoch: i32,
}

/// Votes gathered in one (pre-)election round.
#[derive(Clone, Debug, Default)]
struct Ballot {
    granted: BTreeSet<NodeId>,
    refused: BTreeSet<NodeId>,
}

/// A leader's state, for its epoch.
#[derive(Clone, Debug)]
struct LeaderState {
    /// The offset of this epoch's marker: the epoch's first entry. Only offsets past it
    /// can become the high watermark by counting (Raft §5.4.2).
    epoch_start_offset: i64,
    /// Whether a marker was written at `epoch_start_offset`. Without one (an empty log,
    /// or a single voter) nothing of an older epoch waits to be committed, and the
    /// high watermark may advance as soon as a quorum holds offsets durably.
    marker: bool,
    /// When this member became leader (check-quorum waits a full timeout first).
    elected_tick: u64,
    heartbeat_elapsed_ticks: u64,
    followers: BTreeMap<NodeId, Progress>,
}

#[derive(Clone, Debug)]
enum RoleState {
    Follower,
    PreCandidate(Ballot),
    Candidate(Ballot),
    Leader(LeaderState),
}

/// One member of one Raft group: a pure state machine. See the module documentation.
pub struct Raft<G> {
    config: RaftConfig,
    group: G,
    id: NodeId,
    voters: BTreeSet<NodeId>,
    /// The hard state as it is now (maybe not durable yet).
    hard_state: HardState,
    /// The newest hard state the owner reported durable.
    persisted_hard_state: HardState,
    /// `hard_state` was handed out in a `Ready` already.
    hard_state_handed_out: bool,
    role: RoleState,
    leader_id: Option<NodeId>,
    high_watermark: i64,
    now_tick: u64,
    election_elapsed_ticks: u64,
    /// This round's randomized timeout, in `[T, 2T)`.
    election_timeout_ticks: u64,
    /// When a follower last heard from its leader (leader stickiness).
    leader_contact_tick: Option<u64>,
    random: SplitMix64,
    /// A follower's log matches its leader's below this (checked in this epoch).
    verified_end_offset: Option<i64>,
    /// The durable end a follower last reported to its leader.
    acknowledged_offset: i64,
    /// A follower's high watermark has reached one its leader sent, below which the
    /// leader's own epoch has an entry (so the leader's marker is committed, and with it
    /// everything earlier leaders committed). Reset with every new leader.
    reached_leader_high_watermark: bool,
    /// A recovering follower finishes its recovery once its log is durable up to here:
    /// the high watermark of an append, in this epoch, that named its current loss
    /// count and whose last committed entry is of the leader's epoch.
    restore_target: Option<i64>,
    outbox: Vec<Envelope<G>>,
    /// Messages waiting for a hard state (the tag) to become durable.
    held: Vec<(HardState, Envelope<G>)>,
    sync_log: bool,
    storage_failure: Option<StorageError>,
}

impl<G: Clone + fmt::Debug> Raft<G> {
    /// A member starting (or restarting) with the hard state it persisted and its log as
    /// recovered. It starts as a follower that knows no leader, with its high watermark
    /// at the log start (the high watermark is not persisted: the leader re-teaches it).
    pub fn new(
        config: RaftConfig,
        init: RaftInit<G>,
        log: &impl RaftLog,
    ) -> Result<Raft<G>, RaftInitError> {
        config.validate().map_err(RaftInitError::InvalidConfig)?;
        let count = init.voters.len();
        if count == 0 || count > VOTERS_MAX {
            return Err(RaftInitError::VoterCount { count });
        }
        if !init.voters.contains(&init.node_id) {
            return Err(RaftInitError::NotAVoter {
                node_id: init.node_id,
            });
        }
        // The log may hold entries of an epoch whose hard state never became durable
        // (a follower appends before its new epoch is persisted). Its epoch is at least
        // that; it cannot have voted in it, or the vote would be durable.
        let mut hard_state = init.hard_state;
        if log.last_epoch() > hard_state.leader_epoch {
            hard_state = HardState {
                leader_epoch: log.last_epoch(),
                voted_for: None,
                ..hard_state
            };
        }
        #[cfg(feature = "mutants")]
        let forget_loss = config.mutants.recovering_votes;
        #[cfg(not(feature = "mutants"))]
        let forget_loss = false;
        if (count == 1 || forget_loss) && hard_state.recovering {
            // Nobody can restore a group of one: what it holds is all there is. (The
            // mutant forgets the loss in any group, as a recovery that took rot for a
            // torn tail would.)
            hard_state.recovering = false;
        }
        let mut raft = Raft {
            config,
            group: init.group,
            id: init.node_id,
            voters: init.voters,
            hard_state,
            persisted_hard_state: init.hard_state,
            hard_state_handed_out: false,
            role: RoleState::Follower,
            leader_id: None,
            high_watermark: log.start_offset(),
            now_tick: 0,
            election_elapsed_ticks: 0,
            election_timeout_ticks: 0,
            leader_contact_tick: None,
            random: SplitMix64::new(init.random_seed),
            verified_end_offset: None,
            acknowledged_offset: -1,
            reached_leader_high_watermark: false,
            restore_target: None,
            outbox: Vec::new(),
            held: Vec::new(),
            sync_log: false,
            storage_failure: None,
        };
        raft.reset_election_timer();
        raft.check_invariants(log);
        Ok(raft)
    }

    /// This member's id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The group.
    pub fn group(&self) -> &G {
        &self.group
    }

    /// The voters.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// The settings.
    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    /// What this member is doing.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// The leader of the current epoch, if known (this member, when it leads).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// The current epoch (the Raft term, Kafka's leader epoch).
    pub fn leader_epoch(&self) -> i32 {
        self.hard_state.leader_epoch
    }

    /// The high watermark (Raft's commit index): offsets below it are committed, durable
    /// on a majority, and will be in the log of every later leader. Never goes back
    /// while this member lives.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The hard state now (maybe not durable yet).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Ticks since this member started.
    pub fn now_tick(&self) -> u64 {
        self.now_tick
    }

    /// Whether this member lost entries it acknowledged and has not been restored
    /// yet ([`HardState::recovering`]): it neither votes nor campaigns.
    pub fn is_recovering(&self) -> bool {
        self.hard_state.recovering
    }

    /// Set once a log operation failed; the member then neither acknowledges, leads nor
    /// campaigns. Rebuild it from the persisted hard state after reopening the log.
    pub fn storage_failure(&self) -> Option<&StorageError> {
        self.storage_failure.as_ref()
    }

    /// Whether this member leads and its high watermark has reached the start of its
    /// own epoch: everything committed under earlier leaders is committed here too, so
    /// the high watermark it reports is not below one a client saw from them (Kafka's
    /// KIP-207 gate). Right after an election it is false until the marker commits.
    pub fn leader_caught_up(&self) -> bool {
        match &self.role {
            RoleState::Leader(leader) => self.high_watermark() >= leader.epoch_start_offset,
            _ => false,
        }
    }

    /// Whether this member's high watermark covers everything the group committed
    /// before the current epoch and everything its leader had committed when it last
    /// spoke: a leader whose marker is committed ([`Raft::leader_caught_up`]), or a
    /// follower whose high watermark reached one its leader sent, with an entry of the
    /// leader's epoch just below it. A member that restarted learns here when its view
    /// is no older than the one it had before (a broker serves clients from its
    /// metadata only from then on).
    pub fn caught_up(&self) -> bool {
        match &self.role {
            RoleState::Leader(_) => self.leader_caught_up(),
            RoleState::Follower => self.reached_leader_high_watermark,
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => false,
        }
    }

    /// The epoch to write new entries in, if this member leads.
    pub fn check_leader(&self) -> Result<i32, NotLeader> {
        match self.role {
            RoleState::Leader(_) => Ok(self.hard_state.leader_epoch),
            _ => Err(NotLeader {
                leader_id: self.leader_id,
                leader_epoch: self.hard_state.leader_epoch,
            }),
        }
    }

    /// A leader's view of each follower, by node id; empty unless leading.
    pub fn followers(&self) -> Vec<FollowerView> {
        let RoleState::Leader(leader) = &self.role else {
            return Vec::new();
        };
        leader
            .followers
            .iter()
            .map(|(&node_id, progress)| FollowerView {
                node_id,
                match_offset: progress.match_offset,
                acknowledged_end_offset: progress.acknowledged_end_offset,
                last_contact_tick: progress.heard.then_some(progress.contact_tick),
                last_caught_up_tick: progress.caught_up_tick,
            })
            .collect()
    }

    /// The in-sync replicas, as Kafka means them (`replica.lag.time.max.ms`): the
    /// leader itself, and each follower whose durable match reached the leader's log
    /// end at some answer within the last `lag_ticks_max` ticks. A follower that stops
    /// answering drops out after the lag even when no write has arrived since (its
    /// match still equals our end, but nothing says it is alive). Empty unless
    /// leading. With `min.insync.replicas`, the node refuses an acks=all write
    /// (`NOT_ENOUGH_REPLICAS`) when this set is too small.
    pub fn in_sync_replicas(&self, _log: &impl RaftLog, lag_ticks_max: u64) -> BTreeSet<NodeId> {
        let RoleState::Leader(leader) = &self.role else {
            return BTreeSet::new();
        };
        let mut in_sync = BTreeSet::from([self.id]);
        for (&node_id, progress) in &leader.followers {
            let recent = progress
                .caught_up_tick
                .is_some_and(|tick| self.now_tick - tick <= lag_ticks_max);
            if recent {
                in_sync.insert(node_id);
            }
        }
        in_sync
    }

    /// Starts an election now instead of waiting for the election timeout: for a
    /// group of one voter (which would otherwise sit leaderless for a timeout after
    /// every start), and for a partition's preferred replica when the partition is
    /// created. A member that leads already, or whose log failed, does nothing. The
    /// usual pre-vote comes first, so a healthy leader elsewhere is not disturbed.
    pub fn campaign(&mut self, log: &mut impl RaftLog) {
        if !matches!(self.role, RoleState::Leader(_)) {
            self.start_pre_vote(log);
        }
        self.check_invariants(log);
    }

    /// One tick of the owner's timer: elections time out, leaders heartbeat, resend
    /// and check their quorum.
    pub fn tick(&mut self, log: &mut impl RaftLog) {
        self.now_tick += 1;
        if matches!(self.role, RoleState::Leader(_)) {
            self.tick_leader(log);
        } else {
            self.election_elapsed_ticks += 1;
            if self.election_elapsed_ticks >= self.election_timeout_ticks {
                self.start_pre_vote(log);
            }
        }
        self.check_invariants(log);
    }

    /// A message from another member of the group. Messages from non-voters or from
    /// this member itself are ignored.
    pub fn step(&mut self, log: &mut impl RaftLog, from: NodeId, message: Message) {
        if from == self.id || !self.voters.contains(&from) {
            tracing::debug!(group = ?self.group, from, "raft: message from a non-voter ignored");
            return;
        }
        match message {
            Message::Vote(request) => self.handle_vote_request(log, from, request),
            Message::VoteResponse(response) => self.handle_vote_response(log, from, response),
            Message::Append(request) => self.handle_append(log, from, request),
            Message::AppendResponse(response) => self.handle_append_response(log, from, response),
        }
        self.check_invariants(log);
    }

    /// A leader appends one batch of `record_count` records in its epoch and starts
    /// replicating it. The batch is committed once [`Raft::high_watermark`] passes its
    /// `last_offset`.
    ///
    /// A node whose append path must validate batches itself (idempotent producers)
    /// may instead call [`Raft::check_leader`], append through its own [`RaftLog`] at
    /// `end_offset()` with that epoch, and then call [`Raft::replicate`].
    pub fn propose(
        &mut self,
        log: &mut impl RaftLog,
        record_count: u32,
        data: Bytes,
    ) -> Result<Proposed, ProposeError> {
        let leader_epoch = self
            .check_leader()
            .map_err(|not_leader| ProposeError::NotLeader {
                leader_id: not_leader.leader_id,
                leader_epoch: not_leader.leader_epoch,
            })?;
        if record_count == 0 {
            return Err(ProposeError::NoRecords);
        }
        let base_offset = log.end_offset();
        let entry = Entry {
            base_offset,
            last_offset: base_offset + i64::from(record_count) - 1,
            leader_epoch,
            data,
        };
        let proposed = Proposed {
            base_offset,
            last_offset: entry.last_offset,
            leader_epoch,
        };
        if let Err(error) = log.append(std::slice::from_ref(&entry)) {
            self.fail_storage(error.clone());
            self.check_invariants(log);
            return Err(ProposeError::Storage(error));
        }
        self.sync_log = true;
        self.broadcast_appends(log);
        self.check_invariants(log);
        Ok(proposed)
    }

    /// A leader sends what its log holds beyond each follower's pipeline (call it after
    /// appending to the log directly). Ticks do the same, a tick later.
    pub fn replicate(&mut self, log: &mut impl RaftLog) {
        self.broadcast_appends(log);
        self.check_invariants(log);
    }

    /// The log's durable end offset may have moved (a sync completed): a leader may
    /// advance its high watermark, a follower acknowledges the newly durable offsets.
    pub fn on_log_synced(&mut self, log: &mut impl RaftLog) {
        match self.role {
            RoleState::Leader(_) => self.advance_high_watermark(log),
            RoleState::Follower => {
                self.try_finish_recovery(log);
                self.acknowledge(log, false);
            }
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => {}
        }
        self.check_invariants(log);
    }

    /// `hard_state` (handed out by [`Raft::take_ready`]) is durable: messages that
    /// depended on it may leave, and a candidate that already has its votes leads.
    pub fn on_hard_state_persisted(&mut self, log: &mut impl RaftLog, hard_state: HardState) {
        assert!(
            self.hard_state.covers(&hard_state),
            "persisted hard state {hard_state:?} is newer than the current {:?}",
            self.hard_state
        );
        if hard_state.covers(&self.persisted_hard_state) {
            self.persisted_hard_state = hard_state;
        }
        let persisted = self.persisted_hard_state;
        let held = std::mem::take(&mut self.held);
        for (needs, envelope) in held {
            if persisted.covers(&needs) {
                self.outbox.push(envelope);
            } else {
                self.held.push((needs, envelope));
            }
        }
        self.try_become_leader(log);
        self.check_invariants(log);
    }

    /// What the owner must do now; see [`Ready`]. Call after every other call.
    pub fn take_ready(&mut self) -> Ready<G> {
        let hard_state =
            if !self.hard_state_handed_out && !self.persisted_hard_state.covers(&self.hard_state) {
                self.hard_state_handed_out = true;
                Some(self.hard_state)
            } else {
                None
            };
        Ready {
            hard_state,
            messages: std::mem::take(&mut self.outbox),
            sync_log: std::mem::take(&mut self.sync_log),
        }
    }

    /// Whether [`Raft::take_ready`] has anything.
    pub fn has_ready(&self) -> bool {
        !self.outbox.is_empty()
            || self.sync_log
            || (!self.hard_state_handed_out && !self.persisted_hard_state.covers(&self.hard_state))
    }

    /// Asserts what must always hold (TigerBeetle style, on in release builds too);
    /// every event method calls it before returning.
    pub fn check_invariants(&self, log: &impl RaftLog) {
        let end_offset = log.end_offset();
        assert!(log.start_offset() <= log.durable_end_offset());
        assert!(
            log.durable_end_offset() <= end_offset,
            "{:?}: durable end {} past the log end {end_offset}",
            self.group,
            log.durable_end_offset()
        );
        assert!(
            self.high_watermark <= end_offset,
            "high watermark {} past the log end {end_offset}",
            self.high_watermark
        );
        assert!(
            self.high_watermark >= log.start_offset(),
            "log start {} past the high watermark {}",
            log.start_offset(),
            self.high_watermark
        );
        assert!(self.hard_state.covers(&self.persisted_hard_state));
        assert!(
            self.hard_state.leader_epoch >= log.last_epoch(),
            "epoch {} below the log's last epoch {}",
            self.hard_state.leader_epoch,
            log.last_epoch()
        );
        assert!(self.held.len() <= HELD_MESSAGES_MAX);
        assert_eq!(self.hard_state.losses, self.persisted_hard_state.losses);
        assert!(!self.hard_state.recovering || self.voters.len() > 1);
        if self.hard_state.recovering {
            assert!(matches!(self.role, RoleState::Follower));
        }
        if let Some(verified) = self.verified_end_offset {
            assert!(verified <= end_offset);
            assert!(self.leader_id.is_some());
        }
        match &self.role {
            RoleState::Leader(leader) => {
                assert_eq!(self.leader_id, Some(self.id));
                assert_eq!(self.hard_state.voted_for, Some(self.id));
                assert!(self.persisted_hard_state.covers(&self.hard_state));
                assert_eq!(leader.followers.len(), self.voters.len() - 1);
                if leader.marker {
                    assert!(leader.epoch_start_offset < end_offset);
                } else {
                    assert!(leader.epoch_start_offset <= end_offset);
                }
                for (node_id, progress) in &leader.followers {
                    assert!(self.voters.contains(node_id));
                    assert!(progress.match_offset <= end_offset);
                    assert!(progress.in_flight.len() <= self.config.appends_in_flight_max);
                }
            }
            RoleState::Candidate(ballot) => {
                assert_eq!(self.hard_state.voted_for, Some(self.id));
                assert!(self.leader_id.is_none());
                assert!(ballot.granted.is_subset(&self.voters));
            }
            RoleState::PreCandidate(ballot) => {
                assert!(self.leader_id.is_none());
                assert!(ballot.granted.is_subset(&self.voters));
            }
            RoleState::Follower => assert_ne!(self.leader_id, Some(self.id)),
        }
    }

    /// Queues a message: it leaves with the next `Ready` if the hard state is durable,
    /// and waits for it otherwise (the durability rule).
    fn send(&mut self, to: NodeId, message: Message) {
        let envelope = Envelope {
            group: self.group.clone(),
            from: self.id,
            to,
            message,
        };
        if self.persisted_hard_state.covers(&self.hard_state) {
            self.outbox.push(envelope);
        } else if self.held.len() < HELD_MESSAGES_MAX {
            self.held.push((self.hard_state, envelope));
        } else {
            tracing::debug!(group = ?self.group, to, "raft: held message dropped");
        }
    }

    fn set_hard_state(&mut self, hard_state: HardState) {
        assert!(hard_state.covers(&self.hard_state));
        self.hard_state = hard_state;
        self.hard_state_handed_out = false;
    }

    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn fail_storage(&mut self, error: StorageError) {
        tracing::warn!(group = ?self.group, %error, "raft: log failed; no longer acknowledging, leading or campaigning");
        self.storage_failure = Some(error);
        if matches!(self.role, RoleState::Leader(_)) {
            let epoch = self.hard_state.leader_epoch;
            self.become_follower(epoch, None);
        }
    }

    /// The deliberate bugs switched on (feature `mutants`).
    #[cfg(feature = "mutants")]
    fn mutants(&self) -> RaftMutants {
        self.config.mutants
    }

    /// Without the `mutants` feature every mutant is a constant `false`, and the
    /// compiler removes the branches that test them.
    #[cfg(not(feature = "mutants"))]
    fn mutants(&self) -> RaftMutants {
        RaftMutants::default()
    }
}

/// Stands in for `config::RaftMutants` without the `mutants` feature: all off.
#[cfg(not(feature = "mutants"))]
#[derive(Clone, Copy, Default)]
struct RaftMutants {
    high_watermark_before_fsync: bool,
    vote_without_persisting: bool,
    skip_divergent_truncation: bool,
}
