//! One member of one Raft group on this node: a data partition's replica, an offsets
//! partition's (`__consumer_offsets`), or the metadata log's. Each owns its log, the
//! log's replica state (epoch cache, damage found) and its Raft member, and is the only
//! code that builds the member's view of the log ([`PartitionRaftLog`]).
//!
//! ```text
//!   leader append ──── Replica::append_as_leader ── Replica::replicate ──► appends to followers
//!   peer bundle ────── Replica::step ──────────────── follower appends / leader counts acks
//!   sync completed ─── Replica::on_sync_complete ──── high watermark moves
//!   tick ───────────── Replica::tick ──────────────── heartbeats, elections
//!   Replica::drive: ready ──► hard state to `raft-state` (blocking, rare)
//!                         ──► messages into the per-broker outbox
//!                         ──► Driven { sync, advanced, lost_leadership } for the node
//! ```
//!
//! A group with one voter elects itself at once when it opens, writes no leader marker,
//! and its high watermark is its durable offset, so a single broker behaves exactly as
//! before replication existed.

use odradek_log::io::{Disk, DiskCompletion, DiskError, IoId};
use odradek_log::partition::{LogConfig, PartitionLog};
use odradek_log::{AppendError, AppendOutcome, LogError};

use crate::error::ErrorCode;
use crate::hard_state::{read_hard_state, write_hard_state};
use crate::outbox::Outbox;
use crate::peer::{BrokerId, GroupId, broker_id, raft_node_id};
use crate::raft::{
    HardState, Message, NotLeader, PartitionRaftLog, Raft, RaftConfig, RaftInit, ReplicaLogState,
};

/// A partition's log or Raft state could not be opened.
#[derive(Debug)]
pub struct PartitionOpenError {
    /// The partition's directory.
    pub dir: String,
    /// Why.
    pub error: String,
}

/// Why a replica could not be opened, by the step that failed.
#[derive(Debug)]
pub(crate) enum ReplicaOpenError {
    /// Neither copy of the hard state decodes.
    HardState(String),
    /// The log (or the epoch cache built from it) could not be opened.
    Log(LogError),
    /// The Raft member refused its start (voters, hard state and log disagree).
    Raft(String),
}

impl std::fmt::Display for ReplicaOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaOpenError::HardState(error) | ReplicaOpenError::Raft(error) => {
                f.write_str(error)
            }
            ReplicaOpenError::Log(error) => error.fmt(f),
        }
    }
}

/// Why the node stops when a member's hard state cannot be written.
fn hard_state_fatal(group: &GroupId, error: &DiskError) -> String {
    format!(
        "cannot persist the raft state of {group:?} ({error}); stopping so that recovery runs on restart"
    )
}

/// Everything a replica needs to open, besides the disk and the clock.
pub(crate) struct ReplicaInit {
    /// The Raft group it is a member of.
    pub(crate) group: GroupId,
    /// Its directory, relative to the data directory.
    pub(crate) dir: String,
    /// Its log's configuration.
    pub(crate) log_config: LogConfig,
    /// The group's voters (a partition's replicas, preferred leader first).
    pub(crate) replicas: Vec<BrokerId>,
    /// This broker.
    pub(crate) node_id: BrokerId,
    /// The member's timing.
    pub(crate) raft_config: RaftConfig,
    /// Seeds the member's election jitter.
    pub(crate) random_seed: u64,
    /// Whether damage that recovery finds in durable bytes marks the member recovering
    /// before it is cut (decision 0010): for replicated data partitions, whose lost
    /// records other replicas restore.
    pub(crate) repair_from_peers: bool,
}

/// What driving a replica found, for the node to act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Driven {
    /// The member asked for a log sync (start a group-commit round).
    pub(crate) sync: bool,
    /// The high watermark moved since the last drive.
    pub(crate) advanced: bool,
    /// This node led at the last drive and no longer leads in that epoch.
    pub(crate) lost_leadership: bool,
}

/// One member of one Raft group on this node. See the module documentation.
pub struct Replica {
    group: GroupId,
    dir: String,
    log: PartitionLog,
    state: ReplicaLogState,
    raft: Raft<GroupId>,
    /// The group's voters, preferred leader first.
    replicas: Vec<BrokerId>,
    /// The high watermark as of the last drive: waiters were answered up to it.
    driven_high_watermark: i64,
    /// The epoch this node led in at the last drive, if it led.
    led_epoch: Option<i32>,
    /// Where DeleteRecords moved the start clients see (the metadata log says; 0 if it
    /// never did). The log itself keeps whole segments: the one holding this offset
    /// stays, and Raft still replicates from the log's own start.
    deleted_below: i64,
}

impl Replica {
    /// Opens (and recovers) the replica's log, reads its hard state, and builds its
    /// Raft member. A group of one voter starts campaigning at once; the node's next
    /// drive makes it leader.
    ///
    /// With [`ReplicaInit::repair_from_peers`], if recovery finds damage in bytes that
    /// were durable (decision 0010), the member marks itself recovering, durably,
    /// before recovery cuts the damage away; such a log keeps a synced-through record
    /// ([`LogConfig::synced_record`], set here) so that recovery can tell.
    pub(crate) fn open<D: Disk>(
        disk: &mut D,
        init: ReplicaInit,
        now_ms: i64,
    ) -> Result<Replica, ReplicaOpenError> {
        let dir = init.dir.as_str();
        let mut hard_state = read_hard_state(disk, dir).map_err(ReplicaOpenError::HardState)?;
        let repair_from_peers = init.repair_from_peers;
        let mut on_damage = |disk: &mut D, offset: i64| {
            if !repair_from_peers {
                return Ok(()); // nobody to restore it from: what is left is all there is
            }
            tracing::warn!(
                "{dir}: recovery found the batch at offset {offset} damaged on disk; the replica recovers from the others"
            );
            hard_state = HardState {
                recovering: true,
                losses: hard_state.losses + 1,
                ..hard_state
            };
            write_hard_state(disk, dir, hard_state)
        };
        // A log repaired from its peers records how far it synced, so that recovery
        // tells damage anywhere in what it acknowledged from a torn write (decision 0010).
        let log_config = LogConfig {
            synced_record: repair_from_peers,
            ..init.log_config
        };
        let (mut log, _report) =
            PartitionLog::open_with(disk, dir, log_config, now_ms, &mut on_damage)
                .map_err(ReplicaOpenError::Log)?;
        let mut state =
            ReplicaLogState::open(&mut log, disk, init.node_id).map_err(ReplicaOpenError::Log)?;
        let raft_init = RaftInit {
            group: init.group.clone(),
            node_id: raft_node_id(init.node_id),
            voters: init.replicas.iter().map(|&id| raft_node_id(id)).collect(),
            hard_state,
            random_seed: init.random_seed,
        };
        let mut raft = {
            let view = PartitionRaftLog::new(&mut log, &mut state, &mut *disk, now_ms);
            Raft::new(init.raft_config, raft_init, &view)
                .map_err(|error| ReplicaOpenError::Raft(error.to_string()))?
        };
        if init.replicas.len() == 1 {
            let mut view = PartitionRaftLog::new(&mut log, &mut state, &mut *disk, now_ms);
            raft.campaign(&mut view);
        }
        let driven_high_watermark = raft.high_watermark();
        Ok(Replica {
            group: init.group,
            dir: init.dir,
            log,
            state,
            raft,
            replicas: init.replicas,
            driven_high_watermark,
            led_epoch: None,
            deleted_below: 0,
        })
    }

    /// Calls `f` with the member and a view of the log: the one place the view is built.
    fn with_member<D: Disk, R>(
        &mut self,
        disk: &mut D,
        now_ms: i64,
        f: impl FnOnce(&mut Raft<GroupId>, &mut PartitionRaftLog<'_, D>) -> R,
    ) -> R {
        let mut view = PartitionRaftLog::new(&mut self.log, &mut self.state, disk, now_ms);
        f(&mut self.raft, &mut view)
    }

    /// One Raft tick: heartbeats, election timeouts.
    pub(crate) fn tick(&mut self, disk: &mut impl Disk, now_ms: i64) {
        self.with_member(disk, now_ms, |raft, view| raft.tick(view));
    }

    /// A message from broker `from`'s member of this group.
    pub(crate) fn step(
        &mut self,
        disk: &mut impl Disk,
        from: BrokerId,
        message: Message,
        now_ms: i64,
    ) {
        self.with_member(disk, now_ms, |raft, view| {
            raft.step(view, raft_node_id(from), message)
        });
    }

    /// Tells the member the leader appended to its log directly, so it replicates the
    /// new batches.
    pub(crate) fn replicate(&mut self, disk: &mut impl Disk, now_ms: i64) {
        self.with_member(disk, now_ms, |raft, view| raft.replicate(view));
    }

    /// The leader's append of one batch in `leader_epoch` (from
    /// [`Replica::check_leader`]): offsets from the log end, the epoch written into the
    /// batch and the epoch cache. Call [`Replica::replicate`] afterwards.
    pub(crate) fn append_as_leader(
        &mut self,
        disk: &mut impl Disk,
        batch: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        self.with_member(disk, now_ms, |_, view| {
            view.append_produced(batch, leader_epoch)
        })
    }

    /// Feeds a sync completion to the log: whether its durable offset moved. A failed
    /// sync takes the log offline ([`Replica::log_failure`]).
    pub(crate) fn on_log_sync_complete(&mut self, completion: &DiskCompletion) -> bool {
        self.log.on_sync_complete(completion)
    }

    /// Tells the member the log's durable offset moved.
    pub(crate) fn on_log_synced(&mut self, disk: &mut impl Disk, now_ms: i64) {
        self.with_member(disk, now_ms, |raft, view| raft.on_log_synced(view));
    }

    /// Starts a group-commit sync if there is anything to make durable.
    pub(crate) fn start_sync(&mut self, disk: &mut impl Disk) -> Vec<IoId> {
        self.log.start_sync(disk)
    }

    /// Makes everything appended durable before returning, and tells the member.
    pub(crate) fn flush_now(&mut self, disk: &mut impl Disk, now_ms: i64) -> Result<(), LogError> {
        self.log.flush_now(disk)?;
        self.on_log_synced(disk, now_ms);
        Ok(())
    }

    /// Acts on everything the member has ready, in the order the core's contract
    /// demands: a new hard state is written (both copies, synced) before the member
    /// hears it is durable, which releases the messages that depended on it; messages
    /// go into `outbox`. Then compares the high watermark and leadership with the last
    /// drive. A hard state that cannot be written is fatal: the `Err` says why.
    pub(crate) fn drive(
        &mut self,
        disk: &mut impl Disk,
        outbox: &mut Outbox,
        now_ms: i64,
    ) -> Result<Driven, String> {
        let mut driven = Driven::default();
        loop {
            let ready = self.raft.take_ready();
            if ready.is_empty() {
                break;
            }
            driven.sync |= ready.sync_log;
            outbox.push_raft(&self.group, ready.messages);
            if let Some(hard_state) = ready.hard_state {
                write_hard_state(disk, &self.dir, hard_state)
                    .map_err(|error| hard_state_fatal(&self.group, &error))?;
                self.with_member(disk, now_ms, |raft, view| {
                    raft.on_hard_state_persisted(view, hard_state)
                });
            }
        }
        let high_watermark = self.raft.high_watermark();
        assert!(
            high_watermark >= self.driven_high_watermark,
            "{:?}: the high watermark went back from {} to {high_watermark}",
            self.group,
            self.driven_high_watermark
        );
        driven.advanced = high_watermark > self.driven_high_watermark;
        self.driven_high_watermark = high_watermark;
        let leading = self.raft.check_leader().ok();
        driven.lost_leadership = self.led_epoch.is_some() && self.led_epoch != leading;
        self.led_epoch = leading;
        Ok(driven)
    }

    /// Decision 0010, first step of a repair: the batch at `offset` failed its checks
    /// on every read, so this replica lost records it may have acknowledged. Marks the
    /// member recovering, with one more loss, in its hard state, durably, before
    /// anything is cut.
    pub(crate) fn mark_recovering(&mut self, disk: &mut impl Disk) -> Result<(), DiskError> {
        let hard_state = self.raft.hard_state();
        let marked = HardState {
            recovering: true,
            losses: hard_state.losses + 1,
            ..hard_state
        };
        write_hard_state(disk, &self.dir, marked)
    }

    /// Decision 0010, second step: cuts the log at the lowest damaged batch from
    /// `offset` down (everything from there on goes; a leader sends it again). The
    /// caller then builds the replica anew ([`Replica::open`]), even if this failed:
    /// the new Raft member reads the flag, and damage not cut is found again.
    pub(crate) fn cut_damage(&mut self, disk: &mut impl Disk, offset: i64) -> Result<(), String> {
        let mut cut_at = offset;
        loop {
            match self.log.cut_damaged(disk, cut_at) {
                Ok(()) => return Ok(()),
                // An earlier batch is damaged too: cut there.
                Err(odradek_log::LogError::Corrupt { offset, .. }) if offset < cut_at => {
                    cut_at = offset;
                }
                Err(error) => return Err(format!("cut at {cut_at}: {error}")),
            }
        }
    }

    /// The Raft group this replica is a member of.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// The replica's log, for reading its state.
    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// The replica's log, for what changes the log alone and leaves the member's view
    /// whole: reads (which cache), syncs, rolls, retention and deletion. Appends go
    /// through [`Replica::append_as_leader`] or the member.
    pub(crate) fn log_mut(&mut self) -> &mut PartitionLog {
        &mut self.log
    }

    /// The member, for reading its state.
    pub fn raft(&self) -> &Raft<GroupId> {
        &self.raft
    }

    /// The group's voters (a partition's replicas), preferred leader first.
    pub fn replicas(&self) -> &[BrokerId] {
        &self.replicas
    }

    /// Offsets below this are committed and visible to consumers. Never goes back.
    pub fn high_watermark(&self) -> i64 {
        self.raft.high_watermark()
    }

    /// The Kafka leader epoch (the Raft term) this replica knows.
    pub fn leader_epoch(&self) -> i32 {
        self.raft.leader_epoch()
    }

    /// The log start offset clients see: the log's own, or where DeleteRecords moved it
    /// if that is above (never past the log end: a follower that has not caught up
    /// that far starts at its end).
    pub fn log_start_offset(&self) -> i64 {
        let log = &self.log;
        let deleted_below = self.deleted_below.min(log.log_end_offset());
        log.log_start_offset().max(deleted_below)
    }

    /// DeleteRecords moved the start clients see to `offset` (it never moves back), and
    /// whole segments below it go once they are committed.
    pub(crate) fn delete_records_below(&mut self, disk: &mut impl Disk, offset: i64) {
        self.deleted_below = self.deleted_below.max(offset);
        self.delete_deleted_segments(disk);
    }

    /// Deletes the whole segments below where DeleteRecords moved the start, up to the
    /// high watermark (only committed records are deleted, as retention does).
    pub(crate) fn delete_deleted_segments(&mut self, disk: &mut impl Disk) {
        let below = self.deleted_below.min(self.raft.high_watermark());
        if below <= self.log.log_start_offset() {
            return;
        }
        if let Err(error) = self.log.delete_segments_below(disk, below) {
            tracing::warn!("{}: deleting segments below {below}: {error}", self.dir);
        }
    }

    /// The epoch this replica leads in, or who leads if it does not.
    pub(crate) fn check_leader(&self) -> Result<i32, NotLeader> {
        self.raft.check_leader()
    }

    /// The leader epoch of the entry at `offset`, as the epoch cache knows it (`None`
    /// outside the log; the entry just before the log start counts).
    pub(crate) fn epoch_at(&self, offset: i64) -> Option<i32> {
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        self.state.epochs.epoch_at(offset, start, end)
    }

    /// The epoch cache's `(epoch, start_offset)` pairs, oldest first (the first may
    /// start below the log start: it is the epoch of the entry before it).
    pub(crate) fn epoch_starts(&self) -> &[(i32, i64)] {
        self.state.epochs.epochs()
    }

    /// Closes the log, sealing its active segment (the replica is gone afterwards).
    pub(crate) fn close(self, disk: &mut impl Disk) -> Result<(), LogError> {
        self.log.close(disk)
    }

    /// Deletes the replica's log and its directory (its topic was deleted).
    pub(crate) fn delete(self, disk: &mut impl Disk) -> Result<(), LogError> {
        self.log.delete(disk)
    }

    /// Notes that the batch at `offset` failed its checks on every read: the next
    /// drive repairs the replica (decision 0010).
    pub(crate) fn note_damage(&mut self, offset: i64) {
        self.state.damaged = Some(offset);
    }

    /// The damage noted since the last call, if any.
    pub(crate) fn take_damage(&mut self) -> Option<i64> {
        self.state.damaged.take()
    }

    /// Whether this replica leads its group now.
    pub fn is_leader(&self) -> bool {
        self.raft.check_leader().is_ok()
    }

    /// Whether this replica lost records it may have acknowledged and no leader has
    /// restored it yet: it neither votes nor campaigns (decision 0010).
    pub fn is_recovering(&self) -> bool {
        self.raft.is_recovering()
    }

    /// Whether this replica is offline until a restart: its log failed, or its Raft
    /// member stopped after a storage error (it no longer acknowledges, leads or
    /// campaigns; decision 0003).
    pub fn is_offline(&self) -> bool {
        self.log.failure().is_some() || self.raft.storage_failure().is_some()
    }

    /// The leader this replica knows of (itself included), if any.
    pub fn leader(&self) -> Option<BrokerId> {
        self.raft.leader_id().map(broker_id)
    }

    /// The replicas the leader counts as in sync (Kafka's ISR), itself included;
    /// empty unless this replica leads.
    pub fn in_sync_replicas(&mut self, disk: &mut impl Disk, lag_ticks: u64) -> Vec<BrokerId> {
        self.with_member(disk, 0, |raft, view| {
            raft.in_sync_replicas(view, lag_ticks)
                .into_iter()
                .map(broker_id)
                .collect()
        })
    }

    /// Whether this replica may answer a client read or write for a client that
    /// believes the leader epoch is `current_leader_epoch` (-1: the client does not
    /// say). Only the leader serves (`NOT_LEADER_OR_FOLLOWER`, retriable: the client
    /// refreshes its metadata). Then Kafka's fencing (KIP-320): a newer epoch than ours
    /// means we are behind (`UNKNOWN_LEADER_EPOCH`, retriable), an older one means the
    /// client is (`FENCED_LEADER_EPOCH`). A failed log serves nothing.
    pub fn check_serving(&self, current_leader_epoch: i32) -> Result<(), ErrorCode> {
        if self.log.failure().is_some() {
            return Err(ErrorCode::KafkaStorageError);
        }
        let leader_epoch = self.leader_epoch();
        if current_leader_epoch > leader_epoch {
            return Err(ErrorCode::UnknownLeaderEpoch);
        }
        if current_leader_epoch >= 0 && current_leader_epoch < leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if !self.is_leader() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        Ok(())
    }

    /// [`Replica::check_serving`] for a read: besides, a leader answers reads only
    /// once its high watermark has caught up with its own election (the marker of its
    /// epoch committed), so no client sees the high watermark go below one an earlier
    /// leader reported. Until then (a round trip after the election) the read is
    /// refused with `not_ready`, a retriable code.
    pub fn check_reading(
        &self,
        current_leader_epoch: i32,
        not_ready: ErrorCode,
    ) -> Result<(), ErrorCode> {
        self.check_serving(current_leader_epoch)?;
        if !self.raft.leader_caught_up() {
            return Err(not_ready);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hard_state::read_hard_state;
    use crate::topics::TopicPartition;
    use odradek_log::mem_disk::MemDisk;

    /// A replica of `replicas` whose last segment, sealed by a clean close, rotted in
    /// the batch at offset 4: what `Replica::open` makes of it.
    fn open_rotted(replicas: Vec<BrokerId>) -> (MemDisk, Replica) {
        let mut disk = MemDisk::new(5);
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let (mut log, _) = PartitionLog::open(&mut disk, "t-0", config.clone(), 0).unwrap();
        for _ in 0..6 {
            let mut bytes = odradek_log::batch::build_batch(0, None, &[&[7u8; 240]]);
            log.append(&mut disk, &mut bytes, 1, 0).unwrap();
            log.flush_now(&mut disk).unwrap();
        }
        log.close(&mut disk).unwrap();
        let path = "t-0/00000000000000000003.log";
        let third = disk.durable_contents(path).unwrap().len() as u64 / 3;
        assert!(disk.corrupt_stored(path, third + 100, 0x01));
        let init = ReplicaInit {
            group: GroupId::Partition(TopicPartition::new("t", 0)),
            dir: "t-0".to_string(),
            log_config: config,
            repair_from_peers: replicas.len() > 1,
            replicas,
            node_id: 1,
            raft_config: RaftConfig::default(),
            random_seed: 9,
        };
        let replica = Replica::open(&mut disk, init, 0).unwrap();
        (disk, replica)
    }

    #[test]
    fn damage_recovery_finds_marks_a_replicated_replica_recovering_first() {
        let (mut disk, partition) = open_rotted(vec![1, 2, 3]);
        assert_eq!(partition.log.log_end_offset(), 4, "cut at the damage");
        assert!(partition.is_recovering());
        let durable = read_hard_state(&mut disk, "t-0").unwrap();
        assert_eq!((durable.recovering, durable.losses), (true, 1));
        // A single replica has nobody to restore it from: cut, and nothing more.
        let (mut disk, partition) = open_rotted(vec![1]);
        assert_eq!(partition.log.log_end_offset(), 4);
        assert!(!partition.is_recovering());
        assert_eq!(read_hard_state(&mut disk, "t-0").unwrap().losses, 0);
    }
}
