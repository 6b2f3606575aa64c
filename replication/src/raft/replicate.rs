//! Replication: the leader's appends and the follower's answers, the divergence
//! search, and the high watermark.
//!
//! ```text
//!   leader                                            follower
//!   propose ─► log.append ─► Append{prev, entries} ──► prev matches? ─ no ─► Diverged{hint}
//!                                                     │ yes                      │
//!                                                     ▼                          │
//!                       truncate the divergent suffix, append          leader jumps to
//!                                                     │               min(end of hint epoch
//!   match_offset ◄── Accepted{durable_end, end} ◄─────┤                in its log, hint end)
//!   high watermark = largest offset durable on a      │ (again when a sync makes more durable)
//!   majority, past this epoch's marker                ▼
//!                                                  on_log_synced ─► Accepted{durable_end, end}
//! ```

use std::fmt;

use super::message::{
    Append, AppendResponse, AppendResult, Entry, HardState, Message, NO_EPOCH, NodeId,
};
use super::progress::{Progress, SendMode};
use super::storage::{RaftLog, StorageError};
use super::{Raft, RoleState};

/// What a follower made of an append.
enum AppendOutcome {
    /// Its log matches the leader's below `end_offset`.
    Matched { end_offset: i64 },
    /// It cannot find the leader's `prev` entry; here is where to look next.
    Diverged {
        hint_epoch: i32,
        hint_end_offset: i64,
    },
    /// The request is not well formed (a bug in the sender); ignored.
    Malformed,
}

impl<G: Clone + fmt::Debug> Raft<G> {
    // ---------------------------------------------------------------- follower side

    /// Raft §5.3: AppendEntries, as a follower.
    pub(super) fn handle_append(&mut self, log: &mut impl RaftLog, from: NodeId, request: Append) {
        let epoch = self.hard_state.leader_epoch;
        if request.leader_epoch < epoch {
            // A deposed leader: tell it the newer epoch so it steps down.
            let response = AppendResponse {
                leader_epoch: epoch,
                losses: self.hard_state.losses,
                result: AppendResult::StaleEpoch,
            };
            self.send(from, Message::AppendResponse(response));
            return;
        }
        self.follow_append_sender(from, request.leader_epoch);
        if self.storage_failure.is_some() {
            return;
        }
        match self.append_entries(log, &request) {
            Ok(AppendOutcome::Matched { end_offset }) => {
                self.on_append_matched(log, &request, end_offset);
            }
            Ok(AppendOutcome::Diverged {
                hint_epoch,
                hint_end_offset,
            }) => {
                let response = AppendResponse {
                    leader_epoch: self.hard_state.leader_epoch,
                    losses: self.hard_state.losses,
                    result: AppendResult::Diverged {
                        prev_end_offset: request.prev_end_offset,
                        hint_epoch,
                        hint_end_offset,
                    },
                };
                self.send(from, Message::AppendResponse(response));
            }
            Ok(AppendOutcome::Malformed) => {
                tracing::warn!(group = ?self.group, from, "raft: malformed append ignored");
            }
            Err(error) => self.fail_storage(error),
        }
    }

    /// `from` sent an append of `leader_epoch`, not older than ours: it leads that
    /// epoch, so we follow it, and its append counts as the leader's contact.
    fn follow_append_sender(&mut self, from: NodeId, leader_epoch: i32) {
        let epoch = self.hard_state.leader_epoch;
        if leader_epoch == epoch {
            // Election safety: one leader per epoch.
            assert!(
                !matches!(self.role, RoleState::Leader(_)),
                "two leaders in epoch {epoch}: {} and {from}",
                self.id
            );
            assert!(
                self.leader_id.is_none_or(|leader| leader == from),
                "two leaders in epoch {epoch}: {:?} and {from}",
                self.leader_id
            );
        }
        if leader_epoch > epoch
            || self.leader_id != Some(from)
            || !matches!(self.role, RoleState::Follower)
        {
            self.become_follower(leader_epoch, Some(from));
        }
        self.leader_contact_tick = Some(self.now_tick);
        self.election_elapsed_ticks = 0;
    }

    /// Our log matches the leader's below `end_offset`: take the leader's high
    /// watermark as far as that goes, and answer.
    fn on_append_matched(&mut self, log: &impl RaftLog, request: &Append, end_offset: i64) {
        let verified = self
            .verified_end_offset
            .map_or(end_offset, |v| v.max(end_offset));
        self.verified_end_offset = Some(verified);
        // Raft's "commitIndex = min(leaderCommit, index of last new entry)":
        // only offsets known to match the leader's log can be committed here.
        let high_watermark = request.high_watermark.min(verified);
        if high_watermark > self.high_watermark {
            self.high_watermark = high_watermark;
        }
        if request.high_watermark <= verified
            && log.epoch_at(request.high_watermark - 1) == Some(request.leader_epoch)
        {
            self.reached_leader_high_watermark = true;
        }
        self.note_restore_target(log, request, verified);
        self.try_finish_recovery(log);
        self.acknowledge(log, true);
    }

    /// Checks `prev`, cuts a divergent suffix, appends what is new.
    fn append_entries(
        &mut self,
        log: &mut impl RaftLog,
        request: &Append,
    ) -> Result<AppendOutcome, StorageError> {
        if !well_formed(request) {
            return Ok(AppendOutcome::Malformed);
        }
        let start_offset = log.start_offset();
        let (prev_end_offset, entries) = if request.prev_end_offset < start_offset {
            // Below our log start everything was committed, so it matches the leader's
            // log: skip what we no longer hold and meet the rest at our start.
            let Some(rest) = entries_from(request, start_offset) else {
                return Ok(AppendOutcome::Malformed);
            };
            (start_offset, rest)
        } else {
            if let Some(diverged) = self.match_prev(log, request)? {
                return Ok(diverged);
            }
            (request.prev_end_offset, &request.entries[..])
        };
        let (mut end_offset, index) = self.skip_matching_entries(log, prev_end_offset, entries)?;
        if index < entries.len()
            && entries[index].base_offset == end_offset
            && end_offset == log.end_offset()
        {
            log.append(&entries[index..])?;
            self.sync_log = true;
            end_offset = entries[entries.len() - 1].end_offset();
        }
        Ok(AppendOutcome::Matched { end_offset })
    }

    /// Checks the append's `prev` (at or above our log start) against our entry ending
    /// there. `Some(Diverged)`: they differ, and the leader has older entries to try.
    /// If it has none, our log restarts empty at the leader's log start.
    fn match_prev(
        &mut self,
        log: &mut impl RaftLog,
        request: &Append,
    ) -> Result<Option<AppendOutcome>, StorageError> {
        let ours = log.epoch_at(request.prev_end_offset - 1);
        if ours == Some(request.prev_epoch) {
            return Ok(None);
        }
        if request.prev_end_offset != request.log_start_offset {
            let (hint_epoch, hint_end_offset) =
                divergence_hint(log, request.prev_end_offset, request.prev_epoch);
            return Ok(Some(AppendOutcome::Diverged {
                hint_epoch,
                hint_end_offset,
            }));
        }
        // The leader has nothing older to offer: start over at its log start.
        // Everything below it is committed; ours diverges (or is missing)
        // below it, so nothing we hold there is committed.
        assert!(
            self.high_watermark <= request.prev_end_offset,
            "reset to {} below the high watermark {}",
            request.prev_end_offset,
            self.high_watermark
        );
        log.reset(request.prev_end_offset, request.prev_epoch)?;
        self.sync_log = true;
        self.verified_end_offset = None;
        // Everything below the leader's log start is committed.
        self.high_watermark = request.prev_end_offset;
        Ok(None)
    }

    /// Walks the `entries` we already hold, from `prev_end_offset`: skips those our log
    /// has (same offset and epoch), and cuts our log at the first it has from another
    /// epoch. How far our log now matches, and the index of the first entry not skipped.
    fn skip_matching_entries(
        &mut self,
        log: &mut impl RaftLog,
        prev_end_offset: i64,
        entries: &[Entry],
    ) -> Result<(i64, usize), StorageError> {
        let mut end_offset = prev_end_offset;
        let mut index = 0;
        while index < entries.len() {
            let entry = &entries[index];
            if entry.base_offset != end_offset || entry.base_offset >= log.end_offset() {
                break;
            }
            if log.epoch_at(entry.base_offset) == Some(entry.leader_epoch) {
                if entry.end_offset() > log.end_offset() {
                    // A leader's cleaner filler may merge several of our entries and
                    // reach past our end (decision 0013): we hold only its part below
                    // our end, and match that far if our last entry is of its epoch
                    // (Log Matching at our end). The leader then sends the rest, cut
                    // to start at our end.
                    end_offset = self.match_inside(log, entry)?;
                    break;
                }
                // Log Matching (§5.3): same offset and epoch, same entry and same prefix.
                end_offset = entry.end_offset();
                index += 1;
                continue;
            }
            if self.mutants().skip_divergent_truncation {
                // The bug: keep our conflicting entry and call it a match.
                end_offset = entry.end_offset().min(log.end_offset());
                index += 1;
                continue;
            }
            // Our entry here is from another epoch: it and everything after it were
            // never committed (the leader has every committed entry), so cut them
            // (KIP-101: truncate by epoch, not by high watermark).
            assert!(
                entry.base_offset >= self.high_watermark,
                "raft: entry at {} of epoch {} conflicts below the high watermark {}",
                entry.base_offset,
                entry.leader_epoch,
                self.high_watermark
            );
            log.truncate(entry.base_offset)?;
            self.sync_log = true;
            assert_eq!(
                log.end_offset(),
                entry.base_offset,
                "truncation at an entry boundary"
            );
            if let Some(verified) = self.verified_end_offset {
                self.verified_end_offset = Some(verified.min(log.end_offset()));
            }
            break;
        }
        Ok((end_offset, index))
    }

    /// How far our log matches `entry`, which starts at an entry of ours of its epoch
    /// and ends past our log end: all of our log if our last entry is of its epoch
    /// too; else our log is cut where its `entry`'s epoch ends here (what follows is
    /// another epoch's, never committed: the leader's entry covers it and is
    /// committed), and matches up to there.
    fn match_inside(&mut self, log: &mut impl RaftLog, entry: &Entry) -> Result<i64, StorageError> {
        let end = log.end_offset();
        if log.epoch_at(end - 1) == Some(entry.leader_epoch) {
            return Ok(end);
        }
        let cut = log
            .end_offset_for_epoch(entry.leader_epoch)
            .map_or(entry.base_offset, |(_, epoch_end)| epoch_end)
            .clamp(entry.base_offset, end);
        assert!(
            cut >= self.high_watermark,
            "raft: a filler's epoch {} ends at {cut} here, below the high watermark {}",
            entry.leader_epoch,
            self.high_watermark
        );
        log.truncate(cut)?;
        self.sync_log = true;
        if let Some(verified) = self.verified_end_offset {
            self.verified_end_offset = Some(verified.min(log.end_offset()));
        }
        Ok(log.end_offset())
    }

    /// Decision 0010. A recovering follower may vote again once it durably holds every
    /// committed entry. An append names the follower's loss count once the leader has
    /// counted none of its acknowledgements from before the loss, so the high
    /// watermark in it and every later one rest on entries the follower really holds
    /// or others hold. If the entry just below that high watermark is of the leader's
    /// own epoch, the leader's marker is committed, and with it everything earlier
    /// leaders committed: holding the log up to there, durably, restores the follower.
    fn note_restore_target(&mut self, log: &impl RaftLog, request: &Append, verified: i64) {
        if !self.hard_state.recovering || request.follower_losses != self.hard_state.losses {
            return;
        }
        let target = request.high_watermark;
        if target <= verified && log.epoch_at(target - 1) == Some(request.leader_epoch) {
            self.restore_target = Some(self.restore_target.map_or(target, |t| t.max(target)));
        }
    }

    /// Ends the recovery once the log is durable up to the restore target (the new hard
    /// state leaves before any message that follows it, by the durability rule).
    pub(super) fn try_finish_recovery(&mut self, log: &impl RaftLog) {
        let (Some(target), Some(verified)) = (self.restore_target, self.verified_end_offset) else {
            return;
        };
        if self.hard_state.recovering && log.durable_end_offset().min(verified) >= target {
            tracing::info!(group = ?self.group, node = self.id, target, "raft: restored after losing acknowledged entries; voting again");
            self.restore_target = None;
            self.set_hard_state(HardState {
                recovering: false,
                ..self.hard_state
            });
        }
    }

    /// Tells the leader how far our log matches its and is durable. With `force`, even
    /// if that did not move (an answer to an append, which also proves we are alive).
    pub(super) fn acknowledge(&mut self, log: &impl RaftLog, force: bool) {
        let (Some(verified), Some(leader)) = (self.verified_end_offset, self.leader_id) else {
            return;
        };
        let durable_end_offset = if self.mutants().high_watermark_before_fsync {
            verified
        } else {
            log.durable_end_offset().min(verified)
        };
        if !force && durable_end_offset <= self.acknowledged_offset {
            return;
        }
        self.acknowledged_offset = self.acknowledged_offset.max(durable_end_offset);
        let response = AppendResponse {
            leader_epoch: self.hard_state.leader_epoch,
            losses: self.hard_state.losses,
            result: AppendResult::Accepted {
                durable_end_offset,
                end_offset: verified,
            },
        };
        self.send(leader, Message::AppendResponse(response));
    }

    // ------------------------------------------------------------------ leader side

    /// A follower's answer to an append, as the leader.
    pub(super) fn handle_append_response(
        &mut self,
        log: &mut impl RaftLog,
        from: NodeId,
        response: AppendResponse,
    ) {
        let epoch = self.hard_state.leader_epoch;
        if response.leader_epoch > epoch {
            self.become_follower(response.leader_epoch, None);
            return;
        }
        if !self.hear_follower(from, &response) {
            return;
        }
        match response.result {
            AppendResult::Accepted {
                durable_end_offset,
                end_offset,
            } => self.on_accepted(log, from, durable_end_offset, end_offset),
            AppendResult::Diverged {
                prev_end_offset,
                hint_epoch,
                hint_end_offset,
            } => self.on_diverged(log, from, prev_end_offset, hint_epoch, hint_end_offset),
            AppendResult::StaleEpoch => {}
        }
    }

    /// Whether an answer from `from` counts: we lead its epoch, `from` is one of our
    /// followers, and it was not sent before the follower lost entries. An answer that
    /// counts is contact.
    fn hear_follower(&mut self, from: NodeId, response: &AppendResponse) -> bool {
        let epoch = self.hard_state.leader_epoch;
        let now = self.now_tick;
        let RoleState::Leader(leader) = &mut self.role else {
            return false;
        };
        if response.leader_epoch < epoch {
            return false;
        }
        let Some(progress) = leader.followers.get_mut(&from) else {
            return false;
        };
        if response.losses < progress.losses {
            return false; // sent before the follower lost entries: nothing in it holds
        }
        if response.losses > progress.losses {
            // The follower lost entries it acknowledged (decision 0010): forget what
            // it acknowledged before, and find where its log meets ours again.
            tracing::info!(group = ?self.group, follower = from, losses = response.losses, "raft: follower lost acknowledged entries");
            progress.forget(response.losses);
        }
        progress.contact_tick = now;
        progress.heard = true;
        true
    }

    /// The progress of follower `follower`, once [`Raft::hear_follower`] counted its
    /// answer (so we lead, and it is ours).
    fn heard_follower_progress(&mut self, follower: NodeId) -> &mut Progress {
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("an answer counted only by a leader")
        };
        leader.followers.get_mut(&follower).expect("a follower")
    }

    /// The follower accepted an append: its log matches ours below `end_offset`,
    /// durably below `durable_end_offset`. Counts it, then sends what follows.
    fn on_accepted(
        &mut self,
        log: &mut impl RaftLog,
        from: NodeId,
        durable_end_offset: i64,
        end_offset: i64,
    ) {
        let count_unsynced = self.mutants().high_watermark_before_fsync;
        let now = self.now_tick;
        let leader_end_offset = log.end_offset();
        let progress = self.heard_follower_progress(from);
        assert!(durable_end_offset <= end_offset);
        assert!(
            end_offset <= leader_end_offset,
            "follower {from} matches up to {end_offset}, past our end {leader_end_offset}"
        );
        let counted = if count_unsynced {
            end_offset
        } else {
            durable_end_offset
        };
        progress.match_offset = progress.match_offset.max(counted);
        if progress.in_flight.is_empty() && end_offset < progress.acknowledged_end_offset {
            // With nothing in flight the follower vouches for less than it
            // acknowledged before: it restarted, and cannot count its tail as
            // ours until an append proves it. Send from what it vouches for
            // (an old answer arriving late costs a resend, nothing more).
            progress.acknowledged_end_offset = end_offset.max(progress.match_offset);
            progress.next_offset = progress.acknowledged_end_offset;
        }
        if end_offset > progress.acknowledged_end_offset {
            progress.acknowledged_end_offset = end_offset;
            progress.progress_tick = now;
        }
        progress.in_flight.retain(|&sent_end| sent_end > end_offset);
        // A probe succeeds when the follower matches at least up to the probe's
        // prev; an answer to a heartbeat below it (at the old match) proves
        // nothing about where the logs meet.
        let probe_answered = progress
            .probe_prev_end_offset
            .is_none_or(|probe_prev| end_offset >= probe_prev);
        if progress.mode == SendMode::Pipeline || probe_answered {
            progress.mode = SendMode::Pipeline;
            progress.next_offset = progress.next_offset.max(progress.acknowledged_end_offset);
        }
        // Kafka's lastCaughtUpTime: caught up now if it matches our end, or at
        // its previous answer if it matches the end we had then.
        if progress.match_offset >= leader_end_offset {
            progress.caught_up_tick = Some(now);
        } else if let Some((end_then, tick_then)) = progress.previous_answer
            && progress.match_offset >= end_then
        {
            progress.caught_up_tick = progress.caught_up_tick.max(Some(tick_then));
        }
        progress.previous_answer = Some((leader_end_offset, now));
        self.advance_high_watermark(log);
        self.send_appends(log, from);
    }

    /// The follower could not match the append whose prev ended at `prev_end_offset`,
    /// and hints where its log may meet ours: probe again there.
    fn on_diverged(
        &mut self,
        log: &mut impl RaftLog,
        from: NodeId,
        prev_end_offset: i64,
        hint_epoch: i32,
        hint_end_offset: i64,
    ) {
        let leader_end_offset = log.end_offset();
        let leader_start_offset = log.start_offset();
        let progress = self.heard_follower_progress(from);
        if prev_end_offset < progress.match_offset {
            return; // an answer to an append older than what it since matched
        }
        if progress.mode == SendMode::Probe
            && !progress.in_flight.is_empty()
            && progress.probe_prev_end_offset != Some(prev_end_offset)
        {
            return; // not the answer to the probe in flight
        }
        // KIP-279: the follower's log up to hint_end_offset ends in hint_epoch.
        // Where does that epoch end in ours? The logs agree up to the smaller
        // of the two if we hold hint_epoch; if we do not, the next try is at an
        // older epoch of ours. Either way, each round trip skips a whole epoch.
        let next_offset = match log.end_offset_for_epoch(hint_epoch) {
            Some((_, end_of_epoch)) => end_of_epoch.min(hint_end_offset),
            None => leader_start_offset,
        };
        let next_offset = next_offset.clamp(leader_start_offset, leader_end_offset);
        progress.next_offset = next_offset;
        progress.acknowledged_end_offset = progress
            .acknowledged_end_offset
            .min(next_offset)
            .max(progress.match_offset);
        progress.mode = SendMode::Probe;
        progress.in_flight.clear();
        self.send_appends(log, from);
    }

    pub(super) fn tick_leader(&mut self, log: &mut impl RaftLog) {
        let now = self.now_tick;
        let timeout = self.config.election_timeout_ticks;
        let quorum = self.quorum();
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!()
        };
        // Check-quorum (thesis §6.2): a leader that has not heard from a majority for a
        // whole election timeout may have been partitioned away; the others may have
        // elected someone else already. It steps down rather than serve stale reads or
        // accept writes that cannot commit.
        if now - leader.elected_tick >= timeout {
            let live = 1 + leader
                .followers
                .values()
                .filter(|progress| now - progress.contact_tick < timeout)
                .count();
            if live < quorum {
                tracing::debug!(group = ?self.group, node = self.id, "raft: leader lost its quorum");
                let epoch = self.hard_state.leader_epoch;
                self.become_follower(epoch, None);
                return;
            }
        }
        leader.heartbeat_elapsed_ticks += 1;
        let heartbeat_due = leader.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks;
        if heartbeat_due {
            leader.heartbeat_elapsed_ticks = 0;
        }
        let retransmit = self.config.retransmit_timeout_ticks;
        let interval = self.config.heartbeat_interval_ticks;
        let ids: Vec<NodeId> = leader.followers.keys().copied().collect();
        for id in ids {
            let RoleState::Leader(leader) = &mut self.role else {
                return; // a storage failure ended the leadership
            };
            let progress = leader.followers.get_mut(&id).expect("a follower");
            if !progress.in_flight.is_empty() && now - progress.progress_tick >= retransmit {
                progress.in_flight.clear();
                match progress.mode {
                    // The probe or its answer was lost: the same probe again (starting
                    // over from the acknowledged offset would undo the search).
                    SendMode::Probe => {
                        progress.next_offset = progress
                            .probe_prev_end_offset
                            .unwrap_or(progress.next_offset);
                    }
                    // Appends went unanswered: probe from what the follower acknowledged.
                    SendMode::Pipeline => {
                        progress.mode = SendMode::Probe;
                        progress.next_offset =
                            progress.acknowledged_end_offset.max(progress.match_offset);
                    }
                }
            }
            let quiet = heartbeat_due && now - progress.sent_tick >= interval;
            let sent = self.send_appends(log, id);
            if quiet && !sent {
                self.send_heartbeat(log, id);
            }
        }
    }

    /// Sends every follower what its pipeline allows.
    pub(super) fn broadcast_appends(&mut self, log: &mut impl RaftLog) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let ids: Vec<NodeId> = leader.followers.keys().copied().collect();
        for id in ids {
            self.send_appends(log, id);
        }
    }

    /// Sends appends to `to` while its mode allows: in `Probe` one at a time (an empty
    /// one if there is nothing new, to find where the logs meet), in `Pipeline` up to
    /// `appends_in_flight_max` unanswered ones carrying entries. Whether any left.
    fn send_appends(&mut self, log: &mut impl RaftLog, to: NodeId) -> bool {
        let mut sent = false;
        loop {
            let RoleState::Leader(leader) = &self.role else {
                return sent;
            };
            let progress = &leader.followers[&to];
            let may_send = match progress.mode {
                SendMode::Probe => progress.in_flight.is_empty(),
                SendMode::Pipeline => {
                    progress.in_flight.len() < self.config.appends_in_flight_max
                        && progress.next_offset < log.end_offset()
                }
            };
            if !may_send {
                return sent;
            }
            let mode = progress.mode;
            if !self.send_append(log, to) {
                return sent;
            }
            sent = true;
            if mode == SendMode::Probe {
                return sent;
            }
        }
    }

    /// One append from the follower's `next_offset`. False if the log failed.
    fn send_append(&mut self, log: &mut impl RaftLog, to: NodeId) -> bool {
        let start_offset = log.start_offset();
        let end_offset = log.end_offset();
        let RoleState::Leader(leader) = &self.role else {
            return false;
        };
        let from = leader.followers[&to]
            .next_offset
            .clamp(start_offset, end_offset);
        let entries = if from < end_offset {
            match log.read(from, self.config.append_bytes_max) {
                Ok(entries) => entries,
                Err(error) => {
                    self.fail_storage(error);
                    return false;
                }
            }
        } else {
            Vec::new()
        };
        // The read starts with the entry containing `from`: that entry's start is an
        // entry boundary of ours, where the follower can check the epoch.
        let prev_end_offset = entries.first().map_or(from, |entry| entry.base_offset);
        let Some(prev_epoch) = log.epoch_at(prev_end_offset - 1) else {
            self.fail_storage(StorageError::new(format!(
                "the log does not know the epoch of offset {}",
                prev_end_offset - 1
            )));
            return false;
        };
        let sent_end = entries.last().map_or(prev_end_offset, Entry::end_offset);
        let now = self.now_tick;
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!()
        };
        let progress = leader.followers.get_mut(&to).expect("a follower");
        progress.next_offset = sent_end;
        progress.probe_prev_end_offset =
            (progress.mode == SendMode::Probe).then_some(prev_end_offset);
        if progress.in_flight.is_empty() {
            progress.progress_tick = now;
        }
        progress.in_flight.push(sent_end);
        progress.sent_tick = now;
        let request = Append {
            leader_epoch: self.hard_state.leader_epoch,
            prev_end_offset,
            prev_epoch,
            entries,
            high_watermark: self.high_watermark,
            log_start_offset: start_offset,
            follower_losses: progress.losses,
        };
        self.send(to, Message::Append(request));
        true
    }

    /// An empty append at the follower's durable match: it proves we lead, carries the
    /// high watermark, and needs no answer before the next.
    fn send_heartbeat(&mut self, log: &mut impl RaftLog, to: NodeId) {
        let start_offset = log.start_offset();
        let now = self.now_tick;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let progress = leader.followers.get_mut(&to).expect("a follower");
        let prev_end_offset = progress.match_offset.clamp(start_offset, log.end_offset());
        let Some(prev_epoch) = log.epoch_at(prev_end_offset - 1) else {
            return; // the next append finds out (and reports the log's failure)
        };
        progress.sent_tick = now;
        let request = Append {
            leader_epoch: self.hard_state.leader_epoch,
            prev_end_offset,
            prev_epoch,
            entries: Vec::new(),
            high_watermark: self.high_watermark,
            log_start_offset: start_offset,
            follower_losses: progress.losses,
        };
        self.send(to, Message::Append(request));
    }

    /// Raft §5.3–5.4.2 with durability: the high watermark is the largest offset that a
    /// majority holds *durably* (the leader counts its own log only up to its durable
    /// end), provided that offset is past this epoch's marker. Entries of older epochs
    /// are never committed by counting (Raft's Figure 8): they become committed when
    /// the marker, after them, does.
    pub(super) fn advance_high_watermark(&mut self, log: &impl RaftLog) {
        let own = if self.mutants().high_watermark_before_fsync {
            log.end_offset()
        } else {
            log.durable_end_offset()
        };
        let quorum = self.quorum();
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let mut matches: Vec<i64> = std::iter::once(own)
            .chain(
                leader
                    .followers
                    .values()
                    .map(|progress| progress.match_offset),
            )
            .collect();
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[quorum - 1];
        let past_marker = !leader.marker || candidate > leader.epoch_start_offset;
        if candidate > self.high_watermark && past_marker {
            assert!(candidate <= log.end_offset());
            self.high_watermark = candidate;
        }
    }
}

/// Entries contiguous from `prev_end_offset`, epochs not decreasing and not above the
/// leader's.
fn well_formed(request: &Append) -> bool {
    let mut end_offset = request.prev_end_offset;
    let mut epoch = request.prev_epoch;
    for entry in &request.entries {
        if entry.base_offset != end_offset
            || entry.last_offset < entry.base_offset
            || entry.leader_epoch < epoch
            || entry.leader_epoch > request.leader_epoch
        {
            return false;
        }
        end_offset = entry.end_offset();
        epoch = entry.leader_epoch;
    }
    true
}

/// The entries of an append whose `prev` is below our log start, from our log start
/// on (everything below it is committed, so it matches); `None` if the first of them
/// does not start there.
fn entries_from(request: &Append, start_offset: i64) -> Option<&[Entry]> {
    let skip = request
        .entries
        .iter()
        .take_while(|entry| entry.base_offset < start_offset)
        .count();
    let rest = &request.entries[skip..];
    if rest
        .first()
        .is_some_and(|entry| entry.base_offset != start_offset)
    {
        return None;
    }
    Some(rest)
}

/// Where a follower that cannot match `(prev_end_offset, prev_epoch)` suggests the
/// leader try next (KIP-279, done by the follower): the end of the largest epoch
/// `<= prev_epoch` in its log, capped at `prev_end_offset` and its own end, with the
/// epoch of its entry just below that point.
fn divergence_hint(log: &impl RaftLog, prev_end_offset: i64, prev_epoch: i32) -> (i32, i64) {
    let start_offset = log.start_offset();
    let hint_end_offset = match log.end_offset_for_epoch(prev_epoch) {
        Some((_, end_of_epoch)) => end_of_epoch.min(prev_end_offset).min(log.end_offset()),
        None => start_offset,
    }
    .max(start_offset);
    let hint_epoch = log.epoch_at(hint_end_offset - 1).unwrap_or(NO_EPOCH);
    (hint_epoch, hint_end_offset)
}
