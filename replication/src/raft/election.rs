//! Elections: timers, pre-votes, votes, and the changes of role they cause.
//!
//! ```text
//!              timeout                 pre-votes from a majority
//!   Follower ───────────► PreCandidate ─────────────────────────► Candidate (epoch + 1,
//!      ▲  ▲                  │  timeout: new round                  │        votes for itself)
//!      │  │  refused by a    │                                      │ votes from a majority
//!      │  └──majority / a ───┘                                      ▼ + own vote durable
//!      │     leader appears                                      Leader (appends its marker)
//!      └──────────── higher epoch seen, or no majority heard for T ticks ◄──┘
//! ```

use std::fmt;

use super::message::{HardState, Message, NodeId, VoteRequest, VoteResponse};
use super::progress::Progress;
use super::storage::RaftLog;
use super::{Ballot, LeaderState, Raft, RoleState};

impl<G: Clone + fmt::Debug> Raft<G> {
    /// Restarts the election timer with a fresh random timeout in `[T, 2T)` (Raft §5.2:
    /// random timeouts make split votes rare).
    pub(super) fn reset_election_timer(&mut self) {
        let timeout = self.config.election_timeout_ticks;
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = timeout + self.random.below(timeout);
    }

    /// Whether this member believes a leader is alive: it leads, or it heard from its
    /// leader less than `T` ticks ago. Such a member refuses (pre-)votes and does not
    /// move to a candidate's epoch (thesis §4.2.3), so a member coming back from a
    /// partition cannot depose a healthy leader.
    fn in_leader_lease(&self) -> bool {
        match self.role {
            RoleState::Leader(_) => true,
            RoleState::Follower => self
                .leader_contact_tick
                .is_some_and(|tick| self.now_tick - tick < self.config.election_timeout_ticks),
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => false,
        }
    }

    /// Becomes a follower in `epoch` (at least the current one) of `leader`, if known.
    pub(super) fn become_follower(&mut self, epoch: i32, leader: Option<NodeId>) {
        let current = self.hard_state.leader_epoch;
        assert!(epoch >= current, "epoch {epoch} is older than {current}");
        if epoch > current {
            self.set_hard_state(HardState {
                leader_epoch: epoch,
                voted_for: None,
                ..self.hard_state
            });
        }
        if epoch > current || leader != self.leader_id {
            tracing::debug!(group = ?self.group, node = self.id, epoch, ?leader, "raft: follower");
            self.verified_end_offset = None;
            self.acknowledged_offset = -1;
            self.reached_leader_high_watermark = false;
            self.restore_target = None;
        }
        self.role = RoleState::Follower;
        self.leader_id = leader;
        self.leader_contact_tick = leader.map(|_| self.now_tick);
        self.reset_election_timer();
    }

    /// The election timer ran out: ask the voters whether we could win, without
    /// touching our epoch (thesis §9.6). A member that cannot win (its log is behind,
    /// or the others still hear a leader) thus never raises the epoch and never forces
    /// a healthy leader to step down.
    pub(super) fn start_pre_vote(&mut self, log: &mut impl RaftLog) {
        self.reset_election_timer();
        if self.storage_failure.is_some() {
            return;
        }
        if self.hard_state.recovering {
            // It may lack an entry it helped commit: only a restored member may lead.
            // It forgets a leader it no longer hears, and waits for the next one.
            let epoch = self.hard_state.leader_epoch;
            self.become_follower(epoch, None);
            return;
        }
        self.role = RoleState::PreCandidate(Ballot::default());
        self.leader_id = None;
        self.leader_contact_tick = None;
        self.verified_end_offset = None;
        self.record_vote(log, self.id, true, true);
        if !matches!(self.role, RoleState::PreCandidate(_)) {
            return;
        }
        let request = VoteRequest {
            leader_epoch: self.hard_state.leader_epoch + 1,
            last_epoch: log.last_epoch(),
            end_offset: log.end_offset(),
            pre_vote: true,
        };
        self.broadcast(&Message::Vote(request));
    }

    /// A majority would vote for us: campaign for real in the next epoch, voting for
    /// ourselves (Raft §5.2). The requests leave only once that vote is durable.
    fn start_election(&mut self, log: &mut impl RaftLog) {
        let epoch = self.hard_state.leader_epoch + 1;
        self.set_hard_state(HardState {
            leader_epoch: epoch,
            voted_for: Some(self.id),
            ..self.hard_state
        });
        tracing::debug!(group = ?self.group, node = self.id, epoch, "raft: candidate");
        self.role = RoleState::Candidate(Ballot::default());
        self.leader_id = None;
        self.leader_contact_tick = None;
        self.verified_end_offset = None;
        self.reset_election_timer();
        let request = VoteRequest {
            leader_epoch: epoch,
            last_epoch: log.last_epoch(),
            end_offset: log.end_offset(),
            pre_vote: false,
        };
        self.broadcast(&Message::Vote(request));
        self.record_vote(log, self.id, false, true);
    }

    fn broadcast(&mut self, message: &Message) {
        let others: Vec<NodeId> = self
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.id)
            .collect();
        for to in others {
            self.send(to, message.clone());
        }
    }

    /// Counts one answer in the current round and acts on a decided round.
    fn record_vote(&mut self, log: &mut impl RaftLog, from: NodeId, pre_vote: bool, granted: bool) {
        let quorum = self.quorum();
        let ballot = match (&mut self.role, pre_vote) {
            (RoleState::PreCandidate(ballot), true) | (RoleState::Candidate(ballot), false) => {
                ballot
            }
            _ => return,
        };
        if granted {
            ballot.granted.insert(from);
        } else {
            ballot.refused.insert(from);
        }
        let (won, lost) = (
            ballot.granted.len() >= quorum,
            ballot.refused.len() >= quorum,
        );
        if won && pre_vote {
            self.start_election(log);
        } else if won {
            self.try_become_leader(log);
        } else if lost {
            let epoch = self.hard_state.leader_epoch;
            self.become_follower(epoch, None);
        }
    }

    /// A candidate with a majority leads, once its own vote is durable: before that, a
    /// crash could let it forget it ran in this epoch and vote for someone else in it.
    /// (Only a one-voter group gets here before the vote is durable; in larger groups
    /// the requests wait for it.)
    pub(super) fn try_become_leader(&mut self, log: &mut impl RaftLog) {
        let RoleState::Candidate(ballot) = &self.role else {
            return;
        };
        if ballot.granted.len() < self.quorum()
            || !self.persisted_hard_state.covers(&self.hard_state)
        {
            return;
        }
        let epoch = self.hard_state.leader_epoch;
        let epoch_start_offset = log.end_offset();
        // The marker exists to commit entries of older epochs (Figure 8). A group of
        // one voter needs none: it commits whatever it holds durably, since no other
        // member can ever lead with a different log. Skipping it there keeps the
        // offsets of a partition with one replica free of gaps across restarts.
        let marker = self.voters.len() > 1;
        if marker {
            if let Err(error) = log.append_leader_marker(epoch) {
                self.fail_storage(error);
                self.become_follower(epoch, None);
                return;
            }
            assert!(
                log.end_offset() > epoch_start_offset,
                "the leader marker takes an offset"
            );
            assert_eq!(log.epoch_at(epoch_start_offset), Some(epoch));
        }
        tracing::debug!(group = ?self.group, node = self.id, epoch, epoch_start_offset, marker, "raft: leader");
        self.sync_log = true;
        let now = self.now_tick;
        let followers = self
            .voters
            .iter()
            .filter(|&&v| v != self.id)
            .map(|&v| (v, Progress::new(epoch_start_offset, now)))
            .collect();
        self.role = RoleState::Leader(LeaderState {
            epoch_start_offset,
            marker,
            elected_tick: now,
            heartbeat_elapsed_ticks: 0,
            followers,
        });
        self.leader_id = Some(self.id);
        self.leader_contact_tick = None;
        self.verified_end_offset = None;
        self.broadcast_appends(log);
        self.advance_high_watermark(log);
    }

    /// Raft §5.2 and §5.4.1, with pre-votes and leader stickiness.
    pub(super) fn handle_vote_request(
        &mut self,
        log: &mut impl RaftLog,
        from: NodeId,
        request: VoteRequest,
    ) {
        // §5.4.1: vote only for a log at least as up to date as ours, compared by the
        // epoch of the last entry, then by length.
        let log_ok =
            (request.last_epoch, request.end_offset) >= (log.last_epoch(), log.end_offset());
        // Decision 0010: a member that lost entries it acknowledged cannot tell whether
        // the candidate holds them; its vote could elect a leader without a committed
        // entry. It abstains (and says no) until a leader has restored it.
        let log_ok = log_ok && !self.hard_state.recovering;
        let epoch = self.hard_state.leader_epoch;
        if request.pre_vote {
            let granted = request.leader_epoch > epoch && log_ok && !self.in_leader_lease();
            let response = VoteResponse {
                leader_epoch: if granted { request.leader_epoch } else { epoch },
                pre_vote: true,
                granted,
            };
            self.send(from, Message::VoteResponse(response));
            return;
        }
        if request.leader_epoch < epoch || (request.leader_epoch > epoch && self.in_leader_lease())
        {
            let response = VoteResponse {
                leader_epoch: epoch,
                pre_vote: false,
                granted: false,
            };
            self.send(from, Message::VoteResponse(response));
            return;
        }
        if request.leader_epoch > epoch {
            self.become_follower(request.leader_epoch, None);
        }
        let free = self.hard_state.voted_for.is_none_or(|voted| voted == from);
        let granted = free && log_ok;
        if granted {
            if self.hard_state.voted_for.is_none() {
                self.set_hard_state(HardState {
                    voted_for: Some(from),
                    ..self.hard_state
                });
            }
            self.reset_election_timer();
            if self.mutants().vote_without_persisting {
                // The bug: treat the vote (and the epoch) as durable without asking.
                self.persisted_hard_state = self.hard_state;
                self.hard_state_handed_out = true;
            }
        }
        let response = VoteResponse {
            leader_epoch: self.hard_state.leader_epoch,
            pre_vote: false,
            granted,
        };
        self.send(from, Message::VoteResponse(response));
    }

    pub(super) fn handle_vote_response(
        &mut self,
        log: &mut impl RaftLog,
        from: NodeId,
        response: VoteResponse,
    ) {
        let epoch = self.hard_state.leader_epoch;
        if !response.granted && response.leader_epoch > epoch {
            // Someone is further along: follow its epoch (no leader known yet).
            self.become_follower(response.leader_epoch, None);
            return;
        }
        // A grant counts only for the round it answers: a pre-vote for epoch + 1, a
        // vote for this epoch.
        let expected = if response.pre_vote { epoch + 1 } else { epoch };
        if response.granted && response.leader_epoch != expected {
            return;
        }
        self.record_vote(log, from, response.pre_vote, response.granted);
    }
}
