//! What a leader knows about each follower: how far it matches, what is in flight, when
//! it was last heard.

use super::message::NodeId;

/// How a leader sends to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendMode {
    /// Where the follower's log meets ours is not known: one append at a time, each
    /// answered before the next (the divergence search).
    Probe,
    /// The follower accepted an append: stream up to `appends_in_flight_max` appends
    /// ahead of its answers.
    Pipeline,
}

/// A leader's bookkeeping for one follower, for the leader's epoch only.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Offsets below this are durable on the follower and match our log (from its
    /// `Accepted` answers). Never goes back within an epoch.
    pub(crate) match_offset: i64,
    /// Offsets below this match our log on the follower, maybe not durably (from its
    /// `Accepted` answers; lowered when it reports a divergence). Where to resend from.
    pub(crate) acknowledged_end_offset: i64,
    /// The next offset to send.
    pub(crate) next_offset: i64,
    pub(crate) mode: SendMode,
    /// End offsets of appends with entries sent and not yet acknowledged, ascending.
    pub(crate) in_flight: Vec<i64>,
    /// In `Probe` mode, the `prev_end_offset` of the probe in flight. Only the answer to
    /// it moves the search on: a duplicated or late `Diverged` would otherwise start a
    /// second search beside the first, and each would answer duplicates again.
    pub(crate) probe_prev_end_offset: Option<i64>,
    /// When the follower last acknowledged new offsets, or when the first append of
    /// the current flight left: the retransmit timer runs from here.
    pub(crate) progress_tick: u64,
    /// When anything was last sent to the follower (heartbeats are skipped if recent).
    pub(crate) sent_tick: u64,
    /// When the follower last answered anything in this epoch (check-quorum).
    pub(crate) contact_tick: u64,
    /// Heard at all in this epoch.
    pub(crate) heard: bool,
    /// When the follower was last known to have caught up to our log end
    /// (`replica.lag.time.max.ms` semantics).
    pub(crate) caught_up_tick: Option<u64>,
    /// Our log end offset and the tick at the follower's previous answer: a follower
    /// that now matches that end was caught up at that tick (Kafka's rule).
    pub(crate) previous_answer: Option<(i64, u64)>,
    /// The follower's loss count ([`super::HardState::losses`]) in its latest answer.
    pub(crate) losses: u32,
}

impl Progress {
    pub(crate) fn new(next_offset: i64, now_tick: u64) -> Progress {
        Progress {
            match_offset: 0,
            acknowledged_end_offset: 0,
            next_offset,
            mode: SendMode::Probe,
            in_flight: Vec::new(),
            probe_prev_end_offset: None,
            progress_tick: now_tick,
            sent_tick: now_tick,
            contact_tick: now_tick,
            heard: false,
            caught_up_tick: None,
            previous_answer: None,
            losses: 0,
        }
    }

    /// The follower lost entries it had acknowledged: everything it said before counts
    /// for nothing, and a probe finds where its log meets ours again.
    pub(crate) fn forget(&mut self, losses: u32) {
        self.match_offset = 0;
        self.acknowledged_end_offset = 0;
        // Sends restart from what its answers say next (clamped to our log start).
        self.next_offset = 0;
        self.mode = SendMode::Probe;
        self.in_flight.clear();
        self.probe_prev_end_offset = None;
        self.caught_up_tick = None;
        self.previous_answer = None;
        self.losses = losses;
    }
}

/// What a leader knows about one follower, for the node (ISR, describe, metrics).
/// Ticks are the leader's own count since it started ([`super::Raft::now_tick`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerView {
    /// The follower.
    pub node_id: NodeId,
    /// Offsets below this are durable on the follower and match the leader's log.
    pub match_offset: i64,
    /// Offsets below this match the leader's log on the follower (maybe not durably).
    pub acknowledged_end_offset: i64,
    /// The tick of the follower's last answer in this epoch, if any.
    pub last_contact_tick: Option<u64>,
    /// The last tick at which the follower was known caught up to the leader's log end.
    pub last_caught_up_tick: Option<u64>,
}
