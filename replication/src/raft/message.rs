//! What Raft groups say to each other, and what a [`Raft`](super::Raft) hands its owner.
//!
//! Every message names its group ([`Envelope::group`]) and both ends, so the node can
//! bundle the messages of many groups that go between the same pair of brokers into one
//! network request, and route each incoming one to its group. The core never batches
//! across groups itself: it does not know the other groups exist.

use bytes::Bytes;

/// A broker's id (Kafka's `node.id`; `u32` because ids are never negative here).
pub type NodeId = u32;

/// Kafka's `NO_PARTITION_LEADER_EPOCH`: the epoch "before" any entry, the epoch of offset
/// `-1`. Every log agrees on it, which makes offset 0 a point where every log matches.
pub const NO_EPOCH: i32 = -1;

/// One entry of a replicated log: a record batch covering offsets
/// `[base_offset, last_offset]`, written in `leader_epoch` (the Raft term).
///
/// The core never looks inside `data`. In a partition it is the RecordBatch bytes; in
/// the metadata log an encoded metadata record; in the leader marker a control batch.
/// A marker the test harness writes has empty `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record; `>= base_offset`.
    pub last_offset: i64,
    /// The epoch of the leader that created the entry (Kafka's `partitionLeaderEpoch`).
    pub leader_epoch: i32,
    /// The batch, opaque to the core.
    pub data: Bytes,
}

impl Entry {
    /// The offset after the entry: where the next entry starts.
    pub fn end_offset(&self) -> i64 {
        self.last_offset + 1
    }

    /// The size counted against [`RaftConfig::append_bytes_max`](super::RaftConfig).
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64
    }
}

/// The state a voter must never forget (Raft §5.1, Figure 2 "persistent state"): its
/// epoch and whom it voted for in that epoch, and whether its storage destroyed
/// entries it had acknowledged.
///
/// Raft persists `currentTerm` and `votedFor`; here the term is Kafka's leader epoch.
/// Forgetting a vote lets a voter vote twice in one epoch, and two leaders can then be
/// elected in it. The log itself is the third piece of persistent state and lives in
/// the [`RaftLog`](super::RaftLog).
///
/// Raft assumes the log is never lost once durable. When it is (a batch rotted on the
/// medium, a misdirected write landed on it), the owner cuts the log there and sets
/// `recovering` with `losses + 1` *before* building the member again (decision 0010).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest epoch this voter has seen (the Raft term).
    pub leader_epoch: i32,
    /// The candidate this voter voted for in `leader_epoch`, if any.
    pub voted_for: Option<NodeId>,
    /// This voter lost entries it had acknowledged, and no leader has restored them
    /// yet. It may have helped commit an entry it no longer holds, so its vote could
    /// elect a leader without it: it grants no votes and does not campaign until it
    /// durably holds the high watermark of a leader that has caught up with its own
    /// election (see [`Append::follower_losses`]).
    pub recovering: bool,
    /// How many times this voter lost acknowledged entries. Its answers carry the
    /// count; a leader that sees it rise forgets what the follower acknowledged before,
    /// and ignores answers that carry a lower count.
    pub losses: u32,
}

impl HardState {
    /// Whether a voter whose durable hard state is `self` has also made `other`
    /// durable: hard states only ever move forward (a higher epoch, a vote cast in
    /// the same epoch, a recovery finished, another loss), so a later one implies every
    /// earlier one.
    pub fn covers(&self, other: &HardState) -> bool {
        let recovery_ok = match self.losses.cmp(&other.losses) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => !self.recovering || other.recovering,
        };
        let vote_ok = match self.leader_epoch.cmp(&other.leader_epoch) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                other.voted_for.is_none() || self.voted_for == other.voted_for
            }
        };
        recovery_ok && vote_ok
    }
}

/// A message of one group, from one voter to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<G> {
    /// The group (partition or metadata log) the message belongs to.
    pub group: G,
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// The four messages of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Leader → follower: entries to append, or a heartbeat (no entries).
    Append(Append),
    /// Follower → leader: the answer to an [`Append`].
    AppendResponse(AppendResponse),
    /// (Pre-)candidate → voter: please vote for me.
    Vote(VoteRequest),
    /// Voter → (pre-)candidate: the answer to a [`VoteRequest`].
    VoteResponse(VoteResponse),
}

/// Raft's AppendEntries (§5.3), with Kafka offsets and KIP-279's epoch bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append {
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// Where `entries` start in the leader's log: the end offset of the entry before them.
    pub prev_end_offset: i64,
    /// The epoch of the leader's entry that ends at `prev_end_offset` ([`NO_EPOCH`] at 0).
    /// The follower appends only if its own entry there has the same epoch (§5.3's
    /// consistency check).
    pub prev_epoch: i32,
    /// Contiguous entries from `prev_end_offset`; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The leader's high watermark (Raft's `leaderCommit`).
    pub high_watermark: i64,
    /// The leader's `log_start_offset`. Everything below it is committed. A follower
    /// whose log cannot meet the leader's at that offset starts over from it.
    pub log_start_offset: i64,
    /// The follower's [`HardState::losses`] as the leader last saw it: the leader
    /// counts only what the follower acknowledged since. A recovering follower finishes
    /// its recovery only on an append that names its current count: the high watermark
    /// in it was computed without acknowledgements from before the loss.
    pub follower_losses: u32,
}

/// A follower's answer to an [`Append`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResponse {
    /// The follower's epoch (higher than the request's when the request was stale).
    pub leader_epoch: i32,
    /// The follower's [`HardState::losses`] when it answered.
    pub losses: u32,
    /// What the follower did.
    pub result: AppendResult,
}

/// What a follower did with an [`Append`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `end_offset`.
    Accepted {
        /// Offsets below this are in the follower's log, match the leader's, and are
        /// durable (fsynced). Only this counts towards the high watermark.
        durable_end_offset: i64,
        /// Offsets below this match the leader's log (maybe not durable yet). The
        /// leader uses it for flow control only.
        end_offset: i64,
    },
    /// The follower's log does not contain the leader's entry ending at the request's
    /// `prev_end_offset`. The hint lets the leader jump straight to the next place
    /// worth trying (KIP-279): the follower's log up to `hint_end_offset` ends with an
    /// entry of epoch `hint_epoch`, and `hint_epoch <= ` the request's `prev_epoch`.
    Diverged {
        /// The `prev_end_offset` of the request refused.
        prev_end_offset: i64,
        /// The epoch of the follower's entry ending at `hint_end_offset`.
        hint_epoch: i32,
        /// An offset at most the request's `prev_end_offset`.
        hint_end_offset: i64,
    },
    /// The request's epoch is older than the follower's, given in the response.
    StaleEpoch,
}

/// Raft's RequestVote (§5.2), also used for pre-votes (Ongaro's thesis §9.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    /// The epoch the candidate campaigns for. For a pre-vote, the epoch it *would*
    /// campaign for (its own plus one); nobody changes epoch because of a pre-vote.
    pub leader_epoch: i32,
    /// The epoch of the candidate's last entry.
    pub last_epoch: i32,
    /// The candidate's log end offset.
    pub end_offset: i64,
    /// A pre-vote: "would you vote for me?", binding no one.
    pub pre_vote: bool,
}

/// A voter's answer to a [`VoteRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoteResponse {
    /// The request's epoch if granted; the voter's own epoch if refused.
    pub leader_epoch: i32,
    /// Answers a pre-vote.
    pub pre_vote: bool,
    /// The vote (or pre-vote) is granted.
    pub granted: bool,
}

/// What a [`Raft`](super::Raft) asks of its owner, taken with
/// [`Raft::take_ready`](super::Raft::take_ready) after each call.
///
/// The owner must do three things, in any order:
/// - persist `hard_state` (if `Some`) and then call
///   [`Raft::on_hard_state_persisted`](super::Raft::on_hard_state_persisted) with it;
/// - send `messages` (all of them may leave now: messages that depend on a hard state
///   not yet durable stay inside the core until it is);
/// - if `sync_log`, start a sync of the log and call
///   [`Raft::on_log_synced`](super::Raft::on_log_synced) when it completes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready<G> {
    /// A hard state to make durable.
    pub hard_state: Option<HardState>,
    /// Messages to send now.
    pub messages: Vec<Envelope<G>>,
    /// The log was appended to, truncated or reset: start a sync.
    pub sync_log: bool,
}

impl<G> Ready<G> {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.messages.is_empty() && !self.sync_log
    }
}
