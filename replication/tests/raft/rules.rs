//! The rules of the Raft core one at a time: a test feeds a member a few events and
//! checks exactly what it says and does. References are to the Raft paper (Ongaro &
//! Ousterhout, 2014), Ongaro's thesis (2014) and Kafka's KIPs.

use std::collections::BTreeSet;

use bytes::Bytes;
use odradek_replication::raft::{
    Append, AppendResponse, AppendResult, Entry, Envelope, EpochCache, HardState, Message,
    NO_EPOCH, NodeId, ProposeError, Raft, RaftConfig, RaftInit, RaftLog, Ready, Role, VoteRequest,
    VoteResponse,
};
use proptest::prelude::*;

use super::mem_log::MemLog;

const T: u64 = 10;

// With the `mutants` feature the config has one more field, left at its default.
#[allow(clippy::needless_update)]
fn config() -> RaftConfig {
    RaftConfig {
        election_timeout_ticks: T,
        heartbeat_interval_ticks: 2,
        retransmit_timeout_ticks: 6,
        append_bytes_max: 1 << 20,
        appends_in_flight_max: 4,
        ..RaftConfig::default()
    }
}

fn entry(base_offset: i64, last_offset: i64, leader_epoch: i32) -> Entry {
    Entry {
        base_offset,
        last_offset,
        leader_epoch,
        data: Bytes::from(format!("{base_offset}@{leader_epoch}")),
    }
}

/// Single-offset entries with the given epochs, from offset 0.
fn entries(epochs: &[i32]) -> Vec<Entry> {
    epochs
        .iter()
        .enumerate()
        .map(|(offset, &epoch)| entry(offset as i64, offset as i64, epoch))
        .collect()
}

/// One group member over a `MemLog`, with its durable hard state.
struct Member {
    raft: Raft<u32>,
    log: MemLog,
    durable: HardState,
}

impl Member {
    fn new(id: NodeId, voters: &[NodeId], log: MemLog, hard_state: HardState) -> Member {
        let init = RaftInit {
            group: 7,
            node_id: id,
            voters: voters.iter().copied().collect(),
            hard_state,
            random_seed: u64::from(id),
        };
        let raft = Raft::new(config(), init, &log).expect("valid member");
        Member {
            raft,
            log,
            durable: hard_state,
        }
    }

    fn epoch(&self) -> i32 {
        self.raft.leader_epoch()
    }

    fn tick(&mut self) {
        self.raft.tick(&mut self.log);
    }

    fn step(&mut self, from: NodeId, message: Message) {
        self.raft.step(&mut self.log, from, message);
    }

    /// Does everything the member asks (persist, sync) until it asks nothing more, and
    /// returns the messages it sent.
    fn settle(&mut self) -> Vec<Envelope<u32>> {
        let mut sent = Vec::new();
        loop {
            let ready = self.raft.take_ready();
            if ready.is_empty() {
                return sent;
            }
            if let Some(hard_state) = ready.hard_state {
                self.durable = hard_state;
                self.raft.on_hard_state_persisted(&mut self.log, hard_state);
            }
            if ready.sync_log {
                self.log.sync_now();
                self.raft.on_log_synced(&mut self.log);
            }
            sent.extend(ready.messages);
        }
    }

    fn tick_until(&mut self, role: Role) {
        for _ in 0..4 * T {
            if self.raft.role() == role {
                return;
            }
            self.tick();
        }
        assert_eq!(self.raft.role(), role);
    }

    /// Makes this member leader by answering its pre-votes and votes for `others`;
    /// returns what it sent as the new leader (its first appends).
    fn elect(&mut self, others: &[NodeId]) -> Vec<Envelope<u32>> {
        self.tick_until(Role::PreCandidate);
        self.settle();
        let epoch = self.epoch();
        for &other in others {
            self.step(other, pre_vote_grant(epoch + 1));
        }
        self.settle();
        assert_eq!(self.raft.role(), Role::Candidate);
        let epoch = self.epoch();
        for &other in others {
            self.step(other, vote(epoch, false, true));
        }
        let sent = self.settle();
        assert_eq!(self.raft.role(), Role::Leader);
        sent
    }
}

fn vote(leader_epoch: i32, pre_vote: bool, granted: bool) -> Message {
    Message::VoteResponse(VoteResponse {
        leader_epoch,
        pre_vote,
        granted,
    })
}

fn pre_vote_grant(leader_epoch: i32) -> Message {
    vote(leader_epoch, true, true)
}

fn request_vote(leader_epoch: i32, last_epoch: i32, end_offset: i64, pre_vote: bool) -> Message {
    Message::Vote(VoteRequest {
        leader_epoch,
        last_epoch,
        end_offset,
        pre_vote,
    })
}

fn only_vote_response(sent: &[Envelope<u32>]) -> VoteResponse {
    assert_eq!(sent.len(), 1, "{sent:?}");
    match &sent[0].message {
        Message::VoteResponse(response) => *response,
        other => panic!("expected a vote response, got {other:?}"),
    }
}

fn append_responses(sent: &[Envelope<u32>]) -> Vec<AppendResult> {
    sent.iter()
        .filter_map(|envelope| match &envelope.message {
            Message::AppendResponse(response) => Some(response.result),
            _ => None,
        })
        .collect()
}

fn hard_state(leader_epoch: i32, voted_for: Option<NodeId>) -> HardState {
    HardState {
        leader_epoch,
        voted_for,
        ..HardState::default()
    }
}

/// Delivers messages among `members` (member i has id i + 1; messages to others are
/// lost) until none are left. Returns the messages delivered.
fn pump(members: &mut [Member], mut queue: Vec<Envelope<u32>>) -> Vec<Envelope<u32>> {
    let mut delivered = Vec::new();
    while !queue.is_empty() {
        let envelope = queue.remove(0);
        let Some(member) = members.get_mut((envelope.to - 1) as usize) else {
            continue;
        };
        member.step(envelope.from, envelope.message.clone());
        queue.extend(member.settle());
        delivered.push(envelope);
        assert!(delivered.len() < 10_000, "no quiescence");
    }
    delivered
}

fn divergences(delivered: &[Envelope<u32>]) -> usize {
    delivered
        .iter()
        .filter(|e| matches!(&e.message, Message::AppendResponse(r) if matches!(r.result, AppendResult::Diverged { .. })))
        .count()
}

// ------------------------------------------------------------------------- votes

#[test]
fn vote_goes_only_to_a_log_at_least_as_up_to_date() {
    // Reference: Raft §5.4.1. The voter's log ends with epoch 2 at offset 5.
    let cases = [
        ((1, 10), false), // longer, but an older last epoch
        ((2, 4), false),  // same last epoch, shorter
        ((2, 5), true),   // the same
        ((3, 1), true),   // a newer last epoch wins whatever the length
    ];
    for ((last_epoch, end_offset), granted) in cases {
        let log = MemLog::with_entries(entries(&[1, 1, 1, 2, 2]));
        let mut voter = Member::new(1, &[1, 2, 3], log, hard_state(2, None));
        voter.step(2, request_vote(3, last_epoch, end_offset, false));
        let response = only_vote_response(&voter.settle());
        assert_eq!(
            response.granted, granted,
            "candidate log ({last_epoch}, {end_offset})"
        );
        assert_eq!(response.leader_epoch, 3);
        assert_eq!(
            voter.epoch(),
            3,
            "a valid request of a newer epoch moves the voter"
        );
    }
}

#[test]
fn one_vote_per_epoch() {
    // Reference: Raft §5.2.
    let mut voter = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    voter.step(2, request_vote(1, NO_EPOCH, 0, false));
    assert!(only_vote_response(&voter.settle()).granted);
    voter.step(3, request_vote(1, NO_EPOCH, 0, false));
    assert!(
        !only_vote_response(&voter.settle()).granted,
        "already voted for 2"
    );
    voter.step(2, request_vote(1, NO_EPOCH, 0, false));
    assert!(
        only_vote_response(&voter.settle()).granted,
        "a repeated request is granted again"
    );
    assert_eq!(voter.durable, hard_state(1, Some(2)));
}

#[test]
fn a_vote_leaves_only_once_it_is_durable() {
    // Reference: Raft Figure 2 ("persistent state, updated on stable storage before
    // responding to RPCs").
    let mut voter = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    voter.step(2, request_vote(4, NO_EPOCH, 0, false));
    let ready: Ready<u32> = voter.raft.take_ready();
    assert_eq!(ready.hard_state, Some(hard_state(4, Some(2))));
    assert!(
        ready.messages.is_empty(),
        "the grant waits for the vote to be durable"
    );
    assert!(
        voter.raft.take_ready().is_empty(),
        "the hard state is handed out once"
    );
    voter
        .raft
        .on_hard_state_persisted(&mut voter.log, hard_state(4, Some(2)));
    let ready = voter.raft.take_ready();
    assert_eq!(ready.hard_state, None);
    assert_eq!(ready.messages.len(), 1);
    assert_eq!(ready.messages[0].group, 7, "every message names its group");
    assert_eq!(ready.messages[0].to, 2);
    assert_eq!(ready.messages[0].message, vote(4, false, true));
}

#[test]
fn an_older_durable_hard_state_releases_nothing_newer() {
    let mut voter = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    voter.step(2, request_vote(4, NO_EPOCH, 0, false));
    let first = voter
        .raft
        .take_ready()
        .hard_state
        .expect("a vote to persist");
    // A newer epoch arrives before the write completes: the refusal to 3 waits for it.
    voter.step(3, request_vote(6, NO_EPOCH, 0, false));
    let second = voter
        .raft
        .take_ready()
        .hard_state
        .expect("a newer vote to persist");
    assert_eq!(second, hard_state(6, Some(3)));
    voter.raft.on_hard_state_persisted(&mut voter.log, first);
    let ready = voter.raft.take_ready();
    assert_eq!(ready.messages.len(), 1, "only the grant to 2 is covered");
    assert_eq!(ready.messages[0].to, 2);
    voter.raft.on_hard_state_persisted(&mut voter.log, second);
    let ready = voter.raft.take_ready();
    assert_eq!(ready.messages.len(), 1);
    assert_eq!(ready.messages[0].to, 3);
}

#[test]
fn answers_in_a_new_epoch_wait_for_the_epoch_to_be_durable() {
    // A follower that learns epoch 3 from an append must not answer in epoch 3 before
    // epoch 3 is durable: after a crash it would otherwise be back in epoch 2.
    let mut follower = Member::new(2, &[1, 2, 3], MemLog::new(), hard_state(2, Some(1)));
    let append = Append {
        leader_epoch: 3,
        prev_end_offset: 0,
        prev_epoch: NO_EPOCH,
        entries: entries(&[3]),
        high_watermark: 0,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(append));
    let ready = follower.raft.take_ready();
    assert_eq!(ready.hard_state, Some(hard_state(3, None)));
    assert!(ready.sync_log, "the entry is appended at once");
    assert!(ready.messages.is_empty(), "the answer waits");
    follower
        .raft
        .on_hard_state_persisted(&mut follower.log, hard_state(3, None));
    assert_eq!(
        append_responses(&follower.raft.take_ready().messages),
        vec![AppendResult::Accepted {
            durable_end_offset: 0,
            end_offset: 1
        }]
    );
}

#[test]
fn a_one_voter_group_leads_once_its_own_vote_is_durable() {
    let mut solo = Member::new(1, &[1], MemLog::new(), HardState::default());
    solo.tick_until(Role::Candidate);
    assert_eq!(
        solo.raft.role(),
        Role::Candidate,
        "not before the vote is durable"
    );
    let ready = solo.raft.take_ready();
    let persisted = ready.hard_state.expect("its vote");
    assert_eq!(persisted, hard_state(1, Some(1)));
    solo.raft.on_hard_state_persisted(&mut solo.log, persisted);
    assert_eq!(solo.raft.role(), Role::Leader);
    assert_eq!(
        solo.log.current.entries.len(),
        0,
        "one voter writes no leader marker"
    );
    let proposed = solo
        .raft
        .propose(&mut solo.log, 3, Bytes::from_static(b"abc"))
        .expect("leads");
    assert_eq!((proposed.base_offset, proposed.last_offset), (0, 2));
    assert_eq!(solo.raft.high_watermark(), 0, "not durable yet");
    solo.settle();
    assert_eq!(solo.raft.high_watermark(), 3, "committed once durable");
}

#[test]
fn a_one_voter_group_campaigns_at_once_when_asked() {
    let mut solo = Member::new(1, &[1], MemLog::new(), hard_state(4, None));
    solo.raft.campaign(&mut solo.log);
    let ready = solo.raft.take_ready();
    let persisted = ready.hard_state.expect("its vote");
    assert_eq!(persisted, hard_state(5, Some(1)));
    solo.raft.on_hard_state_persisted(&mut solo.log, persisted);
    assert_eq!(solo.raft.role(), Role::Leader, "no tick needed");
}

// --------------------------------------------------------- pre-vote, stickiness

#[test]
fn pre_vote_raises_no_epoch() {
    // Reference: Ongaro's thesis §9.6.
    let mut member = Member::new(1, &[1, 2, 3], MemLog::new(), hard_state(3, None));
    member.tick_until(Role::PreCandidate);
    let ready = member.raft.take_ready();
    assert_eq!(
        ready.hard_state, None,
        "nothing to persist: the epoch did not move"
    );
    assert_eq!(member.epoch(), 3);
    assert_eq!(ready.messages.len(), 2);
    for envelope in &ready.messages {
        assert_eq!(envelope.message, request_vote(4, NO_EPOCH, 0, true));
    }
    // A voter grants a pre-vote without moving to its epoch or binding its vote.
    let mut voter = Member::new(2, &[1, 2, 3], MemLog::new(), hard_state(3, None));
    voter.step(1, request_vote(4, NO_EPOCH, 0, true));
    let response = only_vote_response(&voter.settle());
    assert_eq!(
        response,
        VoteResponse {
            leader_epoch: 4,
            pre_vote: true,
            granted: true
        }
    );
    assert_eq!(voter.raft.hard_state(), hard_state(3, None));
    // Refused by a majority, the pre-candidate gives up at its old epoch.
    member.step(2, vote(3, true, false));
    member.step(3, vote(3, true, false));
    assert_eq!(member.raft.role(), Role::Follower);
    assert_eq!(member.epoch(), 3);
}

#[test]
fn a_member_that_hears_its_leader_refuses_votes() {
    // Reference: Ongaro's thesis §4.2.3 (leader stickiness) and §9.6.
    let mut follower = Member::new(2, &[1, 2, 3], MemLog::new(), hard_state(2, Some(1)));
    let heartbeat = Append {
        leader_epoch: 2,
        prev_end_offset: 0,
        prev_epoch: NO_EPOCH,
        entries: Vec::new(),
        high_watermark: 0,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(heartbeat));
    follower.settle();
    assert_eq!(follower.raft.leader_id(), Some(1));
    follower.step(3, request_vote(3, 5, 100, true));
    assert!(
        !only_vote_response(&follower.settle()).granted,
        "pre-vote refused"
    );
    follower.step(3, request_vote(7, 5, 100, false));
    let refusal = only_vote_response(&follower.settle());
    assert!(!refusal.granted);
    assert_eq!(
        follower.epoch(),
        2,
        "a disruptive candidate does not raise the epoch"
    );
    // Once the leader has been silent for an election timeout, the lease is over.
    for _ in 0..T {
        follower.tick();
    }
    follower.settle();
    follower.step(3, request_vote(3, 5, 100, true));
    assert!(only_vote_response(&follower.settle()).granted);
}

#[test]
fn a_leader_without_a_quorum_steps_down() {
    // Reference: Ongaro's thesis §6.2 (check-quorum).
    let mut leader = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    leader.elect(&[2, 3]);
    let epoch = leader.epoch();
    // Follower 2 answers every heartbeat: with it the leader has a majority.
    for _ in 0..3 * T {
        leader.tick();
        for envelope in leader.settle() {
            if envelope.to == 2 && matches!(envelope.message, Message::Append(_)) {
                let end_offset = leader.log.end_offset();
                let response = AppendResponse {
                    leader_epoch: epoch,
                    losses: 0,
                    result: AppendResult::Accepted {
                        durable_end_offset: end_offset,
                        end_offset,
                    },
                };
                leader.step(2, Message::AppendResponse(response));
            }
        }
    }
    assert_eq!(leader.raft.role(), Role::Leader);
    // Now nobody answers.
    for _ in 0..T {
        leader.tick();
        leader.settle();
    }
    assert_eq!(leader.raft.role(), Role::Follower);
    assert_eq!(
        leader.epoch(),
        epoch,
        "stepping down does not raise the epoch"
    );
    assert_eq!(leader.raft.leader_id(), None);
}

#[test]
fn a_deposed_leader_learns_the_newer_epoch_from_a_refusal() {
    let mut follower = Member::new(2, &[1, 2, 3], MemLog::new(), hard_state(5, None));
    let stale = Append {
        leader_epoch: 4,
        prev_end_offset: 0,
        prev_epoch: NO_EPOCH,
        entries: entries(&[4]),
        high_watermark: 0,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(stale));
    let sent = follower.settle();
    assert_eq!(append_responses(&sent), vec![AppendResult::StaleEpoch]);
    assert!(
        follower.log.current.entries.is_empty(),
        "nothing appended from a stale leader"
    );
    let mut leader = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    leader.elect(&[2, 3]);
    leader.step(2, sent[0].message.clone());
    assert_eq!(leader.raft.role(), Role::Follower);
    assert_eq!(leader.epoch(), 5);
}

// ------------------------------------------------------------------ replication

#[test]
fn kip_101_truncation_after_leader_change() {
    // The follower holds two entries of epoch 2 that the new leader (epoch 3) never
    // had: it must cut them even though they are below what it has, by epoch.
    let log = MemLog::with_entries(entries(&[1, 1, 1, 2, 2]));
    let mut follower = Member::new(2, &[1, 2, 3], log, hard_state(2, None));
    let append = Append {
        leader_epoch: 3,
        prev_end_offset: 3,
        prev_epoch: 1,
        entries: vec![entry(3, 3, 3), entry(4, 6, 3)],
        high_watermark: 3,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(append));
    let sent = follower.settle();
    let epochs: Vec<i32> = follower
        .log
        .current
        .entries
        .iter()
        .map(|e| e.leader_epoch)
        .collect();
    assert_eq!(epochs, vec![1, 1, 1, 3, 3]);
    assert_eq!(follower.log.end_offset(), 7);
    assert_eq!(follower.raft.high_watermark(), 3);
    assert_eq!(
        append_responses(&sent),
        vec![
            // Answered at once with what is durable, then again after the sync.
            AppendResult::Accepted {
                durable_end_offset: 3,
                end_offset: 7
            },
            AppendResult::Accepted {
                durable_end_offset: 7,
                end_offset: 7
            },
        ]
    );
}

#[test]
fn entries_already_held_are_not_truncated() {
    // Reference: Raft Figure 2, AppendEntries step 3: truncate only on a conflict. A
    // late duplicate of an old append must not cut newer entries of the same leader.
    let log = MemLog::with_entries(entries(&[1, 1, 1, 3, 3]));
    let mut follower = Member::new(2, &[1, 2, 3], log, hard_state(3, None));
    let old = Append {
        leader_epoch: 3,
        prev_end_offset: 2,
        prev_epoch: 1,
        entries: vec![entry(2, 2, 1), entry(3, 3, 3)],
        high_watermark: 0,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(old));
    let sent = follower.settle();
    assert_eq!(follower.log.end_offset(), 5);
    assert_eq!(
        append_responses(&sent),
        vec![AppendResult::Accepted {
            durable_end_offset: 4,
            end_offset: 4
        }]
    );
}

#[test]
fn a_follower_acknowledges_only_durable_offsets() {
    let mut follower = Member::new(2, &[1, 2, 3], MemLog::new(), hard_state(1, None));
    let append = Append {
        leader_epoch: 1,
        prev_end_offset: 0,
        prev_epoch: NO_EPOCH,
        entries: entries(&[1, 1]),
        high_watermark: 0,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(append));
    let ready = follower.raft.take_ready();
    assert!(ready.sync_log);
    assert_eq!(
        append_responses(&ready.messages),
        vec![AppendResult::Accepted {
            durable_end_offset: 0,
            end_offset: 2
        }]
    );
    follower.raft.on_log_synced(&mut follower.log);
    assert!(
        follower.raft.take_ready().messages.is_empty(),
        "nothing became durable"
    );
    follower.log.sync_now();
    follower.raft.on_log_synced(&mut follower.log);
    assert_eq!(
        append_responses(&follower.raft.take_ready().messages),
        vec![AppendResult::Accepted {
            durable_end_offset: 2,
            end_offset: 2
        }]
    );
}

/// A leader of {1, 2, 3} that has just proposed a two-record batch, not synced yet;
/// with its epoch and the batch's end offset.
fn leader_with_an_unsynced_batch() -> (Member, i32, i64) {
    let mut leader = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    leader.elect(&[2, 3]);
    let epoch = leader.epoch();
    let proposed = leader
        .raft
        .propose(&mut leader.log, 2, Bytes::from_static(b"x"))
        .expect("leads");
    let ready = leader.raft.take_ready();
    assert!(ready.sync_log);
    (leader, epoch, proposed.last_offset + 1)
}

#[test]
fn the_leader_counts_its_own_log_only_up_to_its_durable_end() {
    // Both followers have it durably; the leader's copy is still in the page cache.
    let (mut leader, epoch, end_offset) = leader_with_an_unsynced_batch();
    leader.step(2, accepted(epoch, 0, end_offset, end_offset));
    assert_eq!(leader.raft.high_watermark(), 1, "1 of 3 durable");
    leader.step(3, accepted(epoch, 0, end_offset, end_offset));
    assert_eq!(
        leader.raft.high_watermark(),
        end_offset,
        "2 of 3 durable: the leader not needed"
    );
    let (mut leader, epoch, end_offset) = leader_with_an_unsynced_batch();
    leader.step(2, accepted(epoch, 0, 1, end_offset));
    assert_eq!(
        leader.raft.high_watermark(),
        1,
        "only the marker is durable on 2 of 3"
    );
    leader.log.sync_now();
    leader.raft.on_log_synced(&mut leader.log);
    assert_eq!(
        leader.raft.high_watermark(),
        1,
        "the leader's own copy is 1 of 3"
    );
    leader.step(3, accepted(epoch, 0, end_offset, end_offset));
    assert_eq!(leader.raft.high_watermark(), end_offset);
}

#[test]
fn entries_of_older_epochs_commit_only_with_the_marker() {
    // Reference: Raft §5.4.2 and Figure 8. The new leader (epoch 4) holds epoch-2
    // entries that a majority also holds; they are not committed by counting them,
    // only when the marker of epoch 4 after them is.
    let log = MemLog::with_entries(entries(&[2, 2, 2]));
    let mut leader = Member::new(1, &[1, 2, 3], log, hard_state(3, None));
    leader.elect(&[2, 3]);
    assert_eq!(leader.epoch(), 4);
    assert_eq!(leader.log.end_offset(), 4, "marker at offset 3");
    let acknowledge = |end_offset| {
        Message::AppendResponse(AppendResponse {
            leader_epoch: 4,
            losses: 0,
            result: AppendResult::Accepted {
                durable_end_offset: end_offset,
                end_offset,
            },
        })
    };
    leader.step(2, acknowledge(3));
    assert_eq!(
        leader.raft.high_watermark(),
        0,
        "epoch-2 entries are not committed by count"
    );
    leader.step(2, acknowledge(4));
    assert_eq!(leader.raft.high_watermark(), 4);
}

#[test]
fn kip_279_divergence_search_skips_whole_epochs() {
    // The leader's log: epochs 1, 3, 5, 7 with 50 entries each. The follower's: the
    // first 20 of epoch 1, then epochs 2, 4, 6 (never committed) with 50 entries each.
    // Entry by entry this would take ~150 round trips; by epoch, a handful.
    let leader_epochs: Vec<i32> = [1, 3, 5, 7].iter().flat_map(|&e| [e; 50]).collect();
    let mut follower_epochs: Vec<i32> = vec![1; 20];
    follower_epochs.extend([2, 4, 6].iter().flat_map(|&e| [e; 50]));
    let mut members = vec![
        Member::new(
            1,
            &[1, 2, 3],
            MemLog::with_entries(entries(&leader_epochs)),
            hard_state(7, None),
        ),
        Member::new(
            2,
            &[1, 2, 3],
            MemLog::with_entries(entries(&follower_epochs)),
            hard_state(7, None),
        ),
    ];
    let first_appends = members[0].elect(&[2, 3]);
    let marker = members[0].log.end_offset();
    let delivered = pump(&mut members, first_appends);
    // One refusal per leader epoch: the probe at 200 (epoch 7) is refused with hint
    // (6, 170), so the next is at 150, the end of the leader's epoch 5; refused with
    // (4, 120) -> 100; refused with (2, 70) -> 50; refused with (1, 20) -> 20, where
    // both logs end in epoch 1: a match, and the follower truncates there.
    assert_eq!(divergences(&delivered), 4, "{delivered:#?}");
    assert_eq!(
        members[1].log.current.entries,
        members[0].log.current.entries
    );
    assert_eq!(members[1].log.end_offset(), marker);
}

#[test]
fn a_follower_behind_the_leader_log_start_starts_over_there() {
    let mut leader_log = MemLog::with_entries(entries(&[1, 1, 1, 1, 2, 2]));
    leader_log.compact(4);
    let mut members = vec![
        Member::new(1, &[1, 2, 3], leader_log, hard_state(2, None)),
        Member::new(
            2,
            &[1, 2, 3],
            MemLog::with_entries(entries(&[1])),
            hard_state(2, None),
        ),
    ];
    // The leader's high watermark must cover its log start (retention stays below it).
    let first_appends = members[0].elect(&[2, 3]);
    let delivered = pump(&mut members, first_appends);
    assert_eq!(divergences(&delivered), 1, "one refusal, then the reset");
    assert_eq!(members[1].log.start_offset(), 4);
    assert_eq!(members[1].log.epoch_at(3), Some(1));
    assert_eq!(
        members[1].log.current.entries,
        members[0].log.current.entries
    );
}

#[test]
fn pipelining_is_bounded_and_retransmits_after_a_timeout() {
    let mut leader = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    leader.elect(&[2, 3]);
    let epoch = leader.epoch();
    // Follower 2 accepted the marker: it is in pipeline mode.
    let accepted = Message::AppendResponse(AppendResponse {
        leader_epoch: epoch,
        losses: 0,
        result: AppendResult::Accepted {
            durable_end_offset: 1,
            end_offset: 1,
        },
    });
    leader.step(2, accepted);
    leader.settle();
    for i in 0..10 {
        leader
            .raft
            .propose(&mut leader.log, 1, Bytes::from(format!("{i}")))
            .expect("leads");
    }
    let in_flight = |sent: &[Envelope<u32>]| {
        sent.iter()
            .filter(|e| {
                e.to == 2 && matches!(&e.message, Message::Append(a) if !a.entries.is_empty())
            })
            .count()
    };
    // Proposals one by one fill the pipeline, then stop.
    let sent = leader.settle();
    assert_eq!(in_flight(&sent), config().appends_in_flight_max);
    // Nothing answered: after the retransmit timeout it resends, from offset 1.
    let mut resent = Vec::new();
    for _ in 0..config().retransmit_timeout_ticks {
        leader.tick();
        resent.extend(leader.settle());
    }
    let first = resent
        .iter()
        .find_map(|e| match &e.message {
            Message::Append(a) if e.to == 2 && !a.entries.is_empty() => Some(a.prev_end_offset),
            _ => None,
        })
        .expect("a retransmission");
    assert_eq!(first, 1);
}

#[test]
fn in_sync_replicas_follow_replica_lag_time_max() {
    let mut leader = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    leader.elect(&[2, 3]);
    let epoch = leader.epoch();
    let caught_up = |end_offset| {
        Message::AppendResponse(AppendResponse {
            leader_epoch: epoch,
            losses: 0,
            result: AppendResult::Accepted {
                durable_end_offset: end_offset,
                end_offset,
            },
        })
    };
    leader.step(2, caught_up(1));
    assert_eq!(
        leader.raft.in_sync_replicas(&leader.log, 5),
        BTreeSet::from([1, 2])
    );
    // Writes keep coming; follower 2 stops answering. After the lag bound it drops out.
    for i in 0..8 {
        leader
            .raft
            .propose(&mut leader.log, 1, Bytes::from(format!("{i}")))
            .expect("leads");
        leader.tick();
        leader.step(3, caught_up(leader.log.end_offset()));
        leader.settle();
    }
    assert_eq!(
        leader.raft.in_sync_replicas(&leader.log, 5),
        BTreeSet::from([1, 3])
    );
    assert_eq!(
        leader.raft.in_sync_replicas(&leader.log, 100),
        BTreeSet::from([1, 2, 3])
    );
    let views = leader.raft.followers();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].node_id, 2);
    assert_eq!(views[0].match_offset, 1);
    assert_eq!(views[1].match_offset, leader.log.end_offset());
}

#[test]
fn a_failed_append_ends_leadership_and_campaigning() {
    let mut leader = Member::new(1, &[1, 2, 3], MemLog::new(), HardState::default());
    leader.elect(&[2, 3]);
    leader.log.fail_appends = true;
    let error = leader
        .raft
        .propose(&mut leader.log, 1, Bytes::from_static(b"x"))
        .unwrap_err();
    assert!(matches!(error, ProposeError::Storage(_)));
    assert_eq!(leader.raft.role(), Role::Follower);
    assert!(leader.raft.storage_failure().is_some());
    for _ in 0..4 * T {
        leader.tick();
    }
    assert_eq!(
        leader.raft.role(),
        Role::Follower,
        "a member with a failed log never campaigns"
    );
    let not_leader = leader
        .raft
        .propose(&mut leader.log, 1, Bytes::new())
        .unwrap_err();
    assert!(matches!(not_leader, ProposeError::NotLeader { .. }));
}

#[test]
fn a_follower_whose_log_fails_stops_acknowledging() {
    let mut follower = Member::new(2, &[1, 2, 3], MemLog::new(), hard_state(1, None));
    follower.log.fail_appends = true;
    let append = Append {
        leader_epoch: 1,
        prev_end_offset: 0,
        prev_epoch: NO_EPOCH,
        entries: entries(&[1]),
        high_watermark: 0,
        log_start_offset: 0,
        follower_losses: 0,
    };
    follower.step(1, Message::Append(append.clone()));
    assert!(
        follower.settle().is_empty(),
        "no answer: the leader will retry elsewhere"
    );
    assert!(follower.raft.storage_failure().is_some());
    follower.log.fail_appends = false;
    follower.step(1, Message::Append(append));
    assert!(
        follower.settle().is_empty(),
        "a failed member stays silent until rebuilt"
    );
}

#[test]
fn a_restart_takes_the_epoch_of_the_log_if_newer() {
    // The follower appended entries of epoch 5 that became durable before its hard
    // state did: it restarts in epoch 5, with no vote (it never voted there, or the
    // vote would be durable).
    let log = MemLog::with_entries(entries(&[3, 5]));
    let member = Member::new(2, &[1, 2, 3], log, hard_state(3, Some(1)));
    assert_eq!(member.raft.hard_state(), hard_state(5, None));
    assert_eq!(member.raft.high_watermark(), 0);
}

// ---------------------------------------------- lost acknowledged entries (0010)

fn accepted(leader_epoch: i32, losses: u32, durable_end_offset: i64, end_offset: i64) -> Message {
    Message::AppendResponse(AppendResponse {
        leader_epoch,
        losses,
        result: AppendResult::Accepted {
            durable_end_offset,
            end_offset,
        },
    })
}

#[test]
fn a_leader_forgets_what_a_follower_acknowledged_before_it_lost_entries() {
    let (mut leader, epoch, end_offset) = leader_with_an_unsynced_batch();
    // Follower 2 holds the batch durably; the leader's own copy is not synced yet.
    leader.step(2, accepted(epoch, 0, end_offset, end_offset));
    assert_eq!(leader.raft.high_watermark(), 1);
    // Then 2's disk destroys the batch: it restarts recovering, with one loss, and
    // vouches only for the marker.
    leader.step(2, accepted(epoch, 1, 1, 1));
    leader.log.sync_now();
    leader.raft.on_log_synced(&mut leader.log);
    assert_eq!(
        leader.raft.high_watermark(),
        1,
        "the batch is durable on the leader alone; 2's old acknowledgement must not count"
    );
    // A copy of the old answer arrives late: it speaks of the time before the loss.
    leader.step(2, accepted(epoch, 0, end_offset, end_offset));
    assert_eq!(leader.raft.high_watermark(), 1);
    let appends: Vec<Append> = leader
        .settle()
        .into_iter()
        .filter(|envelope| envelope.to == 2)
        .filter_map(|envelope| match envelope.message {
            Message::Append(append) => Some(append),
            _ => None,
        })
        .collect();
    assert!(!appends.is_empty());
    assert!(appends.iter().all(|append| append.follower_losses == 1));
    // Restored, it acknowledges the batch again, and only now does it count.
    leader.step(2, accepted(epoch, 1, end_offset, end_offset));
    assert_eq!(leader.raft.high_watermark(), end_offset);
}

#[test]
fn a_recovering_member_neither_votes_nor_campaigns_until_restored() {
    // Member 2 lost entries it acknowledged: its log was cut after offset 1, and its
    // hard state says so.
    let recovering = HardState {
        leader_epoch: 1,
        voted_for: None,
        recovering: true,
        losses: 1,
    };
    let mut member = Member::new(
        2,
        &[1, 2, 3],
        MemLog::with_entries(entries(&[1, 1])),
        recovering,
    );
    assert!(member.raft.is_recovering());
    // A candidate with a longer log gets neither a pre-vote nor a vote.
    member.step(3, request_vote(2, 1, 9, true));
    assert!(!only_vote_response(&member.settle()).granted);
    member.step(3, request_vote(2, 1, 9, false));
    assert!(!only_vote_response(&member.settle()).granted);
    assert_eq!(member.raft.hard_state().voted_for, None);
    // Nor does it campaign, however long it hears no leader.
    for _ in 0..4 * T {
        member.tick();
        assert_eq!(member.raft.role(), Role::Follower);
        let sent = member.settle();
        assert!(
            sent.iter().all(|e| !matches!(e.message, Message::Vote(_))),
            "{sent:?}"
        );
    }
    let epoch = member.epoch();
    let append = |prev_end_offset, prev_epoch, entries, high_watermark, follower_losses| {
        Message::Append(Append {
            leader_epoch: epoch,
            prev_end_offset,
            prev_epoch,
            entries,
            high_watermark,
            log_start_offset: 0,
            follower_losses,
        })
    };
    // Leader 1 of the epoch sends its marker, with a high watermark past it, before it
    // has heard of the loss: that high watermark may count what 2 acknowledged before.
    member.step(1, append(2, 1, vec![entry(2, 2, epoch)], 3, 0));
    let answers = member.settle();
    assert!(member.raft.is_recovering());
    assert!(answers.iter().all(|e| match &e.message {
        Message::AppendResponse(response) => response.losses == 1,
        _ => true,
    }));
    // Once the leader names the loss: a high watermark whose last entry is of an older
    // epoch does not show that the leader caught up with its own election...
    member.step(1, append(3, epoch, Vec::new(), 2, 1));
    member.settle();
    assert!(member.raft.is_recovering());
    // ...one past its marker does, and 2 holds the log up to it durably: restored.
    member.step(1, append(3, epoch, Vec::new(), 3, 1));
    member.settle();
    assert!(!member.raft.is_recovering());
    assert!(
        !member.durable.recovering,
        "the end of the recovery is durable"
    );
    assert_eq!(member.durable.losses, 1, "the count stays");
    // And it campaigns again once its leader goes quiet.
    member.tick_until(Role::PreCandidate);
}

#[test]
fn a_member_is_caught_up_once_it_holds_what_its_leader_committed_in_its_own_epoch() {
    // A follower that restarted with entries of epoch 1 at offsets 0..2.
    let mut member = Member::new(
        2,
        &[1, 2, 3],
        MemLog::with_entries(entries(&[1, 1])),
        hard_state(1, None),
    );
    assert!(!member.raft.caught_up(), "nobody spoke to it yet");
    let append = |leader_epoch, prev_end_offset, prev_epoch, entries, high_watermark| {
        Message::Append(Append {
            leader_epoch,
            prev_end_offset,
            prev_epoch,
            entries,
            high_watermark,
            log_start_offset: 0,
            follower_losses: 0,
        })
    };
    // The leader of epoch 2 sends its marker (offset 2) and more (3, 4), but its high
    // watermark (2) still ends in epoch 1: its marker is not committed.
    let new = vec![entry(2, 2, 2), entry(3, 3, 2), entry(4, 4, 2)];
    member.step(1, append(2, 2, 1, new, 2));
    member.settle();
    assert_eq!(member.raft.high_watermark(), 2);
    assert!(
        !member.raft.caught_up(),
        "the leader's marker is not committed"
    );
    // Its marker committed; the follower holds everything below the leader's high
    // watermark.
    member.step(1, append(2, 5, 2, Vec::new(), 4));
    member.settle();
    assert!(member.raft.caught_up());
    // A new leader: caught up again only once that leader speaks with its own marker
    // committed. Until it does, the member knows no more than it knew.
    member.step(3, append(3, 5, 2, vec![entry(5, 5, 3)], 4));
    member.settle();
    assert!(
        !member.raft.caught_up(),
        "a new leader, not yet heard committed"
    );
    // A leader's high watermark beyond what the follower verified does not count.
    member.step(3, append(3, 6, 3, Vec::new(), 9));
    member.settle();
    assert_eq!(member.raft.high_watermark(), 6);
    assert!(
        !member.raft.caught_up(),
        "behind its leader's high watermark"
    );
    member.step(3, append(3, 6, 3, Vec::new(), 6));
    member.settle();
    assert!(member.raft.caught_up());
}

// ------------------------------------------------------------------ epoch cache

#[derive(Clone, Debug)]
enum LogOp {
    Append { epoch_step: i32, records: i64 },
    Truncate { back: i64 },
    Compact { keep: i64 },
}

fn log_op() -> impl Strategy<Value = LogOp> {
    prop_oneof![
        4 => (0..3i32, 1..4i64).prop_map(|(epoch_step, records)| LogOp::Append { epoch_step, records }),
        1 => (0..6i64).prop_map(|back| LogOp::Truncate { back }),
        1 => (0..6i64).prop_map(|keep| LogOp::Compact { keep }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `EpochCache` answers exactly what a scan of the entries answers, through
    /// appends, truncations and retention.
    #[test]
    fn epoch_cache_agrees_with_a_scan_of_the_log(ops in proptest::collection::vec(log_op(), 1..40)) {
        let mut log = MemLog::new();
        let mut cache = EpochCache::new();
        let mut epoch = 0;
        for op in ops {
            match op {
                LogOp::Append { epoch_step, records } => {
                    epoch += epoch_step;
                    let base = log.end_offset();
                    log.append(&[entry(base, base + records - 1, epoch)]).expect("append");
                    cache.on_append(epoch, base);
                }
                LogOp::Truncate { back } => {
                    let to = (log.end_offset() - back).max(log.start_offset());
                    log.truncate(to).expect("truncate");
                    cache.on_truncate(log.end_offset());
                }
                LogOp::Compact { keep } => {
                    log.sync_now();
                    let limit = log.end_offset() - keep;
                    if let Some(&at) = log.boundaries_up_to(limit).last()
                        && at > log.start_offset()
                    {
                        log.compact(at);
                        cache.on_start_advanced(at);
                    }
                }
            }
            let (start, end) = (log.start_offset(), log.end_offset());
            for offset in start - 2..end + 2 {
                prop_assert_eq!(cache.epoch_at(offset, start, end), log.epoch_at(offset), "epoch_at({})", offset);
            }
            for asked in -1..epoch + 2 {
                prop_assert_eq!(
                    cache.end_offset_for_epoch(asked, start, end),
                    log.end_offset_for_epoch(asked),
                    "end_offset_for_epoch({})", asked
                );
            }
        }
    }
}
