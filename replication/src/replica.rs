//! One partition replica on this node: its log, its Raft member, and the glue between.
//!
//! ```text
//!   produce (leader) ── PartitionLog::append ── Raft::replicate ──► appends to followers
//!   peer bundle ─────── Raft::step(view) ─────── follower appends / leader counts acks
//!   sync completed ──── Raft::on_log_synced ──── high watermark moves
//!   Node::drive_partition: take_ready() ──► hard state to `raft-state` (blocking, rare)
//!                                       ──► messages into the per-broker outbox
//!                                       ──► start a group-commit sync
//!                                       ──► high watermark and leadership mirrored here
//! ```
//!
//! The Raft core sees the log through [`PartitionRaftLog`], a view built for one call
//! at a time over the log, the replica's epoch cache and the node's disk. A partition
//! with one replica is a Raft group of one voter: it elects itself at once when it
//! opens, writes no leader marker, and its high watermark is its durable offset, so a
//! single broker behaves exactly as before replication existed.

use std::collections::BTreeSet;

use odradek_log::io::{Disk, DiskError};
use odradek_log::partition::{LogConfig, PartitionLog, write_file_atomically};
use odradek_log::segment::{join, read_whole_file};

use crate::error::ErrorCode;
use crate::peer::{BrokerId, GroupId};
use crate::raft::{HardState, PartitionRaftLog, Raft, RaftConfig, RaftInit, ReplicaLogState};
use crate::topics::TopicPartition;

/// The file in a partition's directory (and in the metadata log's) that holds the
/// Raft hard state: the leader epoch and the vote cast in it.
pub const HARD_STATE_FILE: &str = "raft-state";
/// Its second copy (decision 0010, item 4): every write replaces both, one after the
/// other, so that rot or a misdirected write in one copy leaves the other whole.
pub const HARD_STATE_COPY_FILE: &str = "raft-state.copy";
const HARD_STATE_MAGIC: [u8; 4] = *b"ODHS";
/// Version 2 added the recovery flag and the loss count (decision 0010); version 1
/// files (epoch and vote only) are still read.
const HARD_STATE_VERSION: u16 = 2;
const HARD_STATE_V1_BYTES: usize = 4 + 2 + 4 + 4 + 4;
const HARD_STATE_BYTES: usize = 4 + 2 + 4 + 4 + 1 + 4 + 4;

/// A partition's log or Raft state could not be opened.
#[derive(Debug)]
pub struct PartitionOpenError {
    /// The partition's directory.
    pub dir: String,
    /// Why.
    pub error: String,
}

/// One partition replica on this node.
pub struct Partition {
    /// Its log.
    pub log: PartitionLog,
    /// Offsets below this are committed and visible to consumers. Never goes back.
    /// Mirrors the Raft member's high watermark.
    pub high_watermark: i64,
    /// The Kafka leader epoch (the Raft term) this replica knows.
    pub leader_epoch: i32,
    /// The brokers holding a replica, preferred leader first.
    pub replicas: Vec<BrokerId>,
    pub(crate) raft: Raft<GroupId>,
    pub(crate) replica: ReplicaLogState,
    /// The epoch this node led in when the partition was last driven, if it led.
    pub(crate) led_epoch: Option<i32>,
}

impl Partition {
    /// Opens (and recovers) the replica's log, reads its hard state, and builds its
    /// Raft member. A one-replica partition starts campaigning at once; the node's
    /// next drive makes it leader.
    ///
    /// If recovery finds damage in bytes that were durable (decision 0010), a replica
    /// of a replicated partition marks itself recovering, durably, before recovery
    /// cuts the damage away. A replicated partition's log keeps a synced-through record
    /// ([`LogConfig::synced_record`]) so that recovery can tell.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open<D: Disk>(
        disk: &mut D,
        key: &TopicPartition,
        dir: &str,
        log_config: LogConfig,
        replicas: Vec<BrokerId>,
        node_id: BrokerId,
        raft_config: RaftConfig,
        random_seed: u64,
        now_ms: i64,
    ) -> Result<Partition, PartitionOpenError> {
        let partition_error = |error: String| PartitionOpenError {
            dir: dir.to_string(),
            error,
        };
        let mut hard_state = read_hard_state(disk, dir).map_err(partition_error)?;
        let replicated = replicas.len() > 1;
        let mut on_damage = |disk: &mut D, offset: i64| {
            if !replicated {
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
        // A replicated log records how far it synced, so that recovery tells damage
        // anywhere in what it acknowledged from a torn write (decision 0010).
        let log_config = LogConfig {
            synced_record: replicated,
            ..log_config
        };
        let (mut log, _report) =
            PartitionLog::open_with(disk, dir, log_config, now_ms, &mut on_damage)
                .map_err(|error| partition_error(error.to_string()))?;
        let mut replica = ReplicaLogState::open(&mut log, disk, node_id)
            .map_err(|error| partition_error(error.to_string()))?;
        let voters: BTreeSet<u32> = replicas.iter().map(|&id| raft_node_id(id)).collect();
        let init = RaftInit {
            group: GroupId::Partition(key.clone()),
            node_id: raft_node_id(node_id),
            voters,
            hard_state,
            random_seed,
        };
        let mut raft = {
            let view = PartitionRaftLog::new(&mut log, &mut replica, &mut *disk, now_ms);
            Raft::new(raft_config, init, &view)
                .map_err(|error| partition_error(error.to_string()))?
        };
        if replicas.len() == 1 {
            let mut view = PartitionRaftLog::new(&mut log, &mut replica, &mut *disk, now_ms);
            raft.campaign(&mut view);
        }
        let high_watermark = raft.high_watermark();
        let leader_epoch = raft.leader_epoch();
        Ok(Partition {
            log,
            high_watermark,
            leader_epoch,
            replicas,
            raft,
            replica,
            led_epoch: None,
        })
    }

    /// Decision 0010, first step of a repair: the batch at `offset` failed its checks
    /// on every read, so this replica lost records it may have acknowledged. Marks the
    /// member recovering, with one more loss, in its hard state, durably, before
    /// anything is cut.
    pub(crate) fn mark_recovering(
        &mut self,
        disk: &mut impl Disk,
        dir: &str,
    ) -> Result<(), DiskError> {
        let hard_state = self.raft.hard_state();
        let marked = HardState {
            recovering: true,
            losses: hard_state.losses + 1,
            ..hard_state
        };
        write_hard_state(disk, dir, marked)
    }

    /// Decision 0010, second step: cuts the log at the lowest damaged batch from
    /// `offset` down (everything from there on goes; a leader sends it again). The
    /// caller then builds the replica anew ([`Partition::open`]), even if this failed:
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

    /// Whether this replica leads its partition now.
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
        let view = PartitionRaftLog::new(&mut self.log, &mut self.replica, disk, 0);
        self.raft
            .in_sync_replicas(&view, lag_ticks)
            .into_iter()
            .map(broker_id)
            .collect()
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
        if current_leader_epoch > self.leader_epoch {
            return Err(ErrorCode::UnknownLeaderEpoch);
        }
        if current_leader_epoch >= 0 && current_leader_epoch < self.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if !self.is_leader() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        Ok(())
    }

    /// [`Partition::check_serving`] for a read: besides, a leader answers reads only
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

/// Raft's id for broker `id` (node ids are never negative: the config refuses them).
pub(crate) fn raft_node_id(id: BrokerId) -> u32 {
    u32::try_from(id).expect("node ids are not negative")
}

/// The broker of Raft member `id`.
pub(crate) fn broker_id(id: u32) -> BrokerId {
    BrokerId::try_from(id).expect("raft ids come from broker ids")
}

/// Reads the hard state persisted in `dir`; the default (epoch 0, no vote) if neither
/// copy exists. A hard state that does not decode from either copy is an error:
/// guessing could let this member vote twice in one epoch.
pub(crate) fn read_hard_state(disk: &mut impl Disk, dir: &str) -> Result<HardState, String> {
    let mut copies = Vec::new();
    for name in [HARD_STATE_FILE, HARD_STATE_COPY_FILE] {
        let path = join(dir, name);
        if disk.exists(&path) {
            let bytes = read_whole_file(disk, &path).map_err(|error| format!("{path}: {error}"))?;
            copies.push(Some(bytes));
        } else {
            copies.push(None);
        }
    }
    if copies.iter().all(Option::is_none) {
        return Ok(HardState::default());
    }
    newest_hard_state(copies[0].as_deref(), copies[1].as_deref()).ok_or_else(|| {
        format!(
            "{}: no valid raft hard state in either copy",
            join(dir, HARD_STATE_FILE)
        )
    })
}

/// The hard state a member restarting now would read from the contents of its two
/// copies (`None`: the file is missing): the newer of the copies that decode, the one
/// that covers the other (a crash between the two writes leaves one a step behind).
/// `None` if neither decodes, or if two valid copies disagree in a way no sequence of
/// writes explains. For the node, and for checkers that read the durable bytes.
pub fn newest_hard_state(first: Option<&[u8]>, second: Option<&[u8]>) -> Option<HardState> {
    match (
        first.and_then(decode_hard_state),
        second.and_then(decode_hard_state),
    ) {
        (Some(a), Some(b)) if a.covers(&b) => Some(a),
        (Some(a), Some(b)) if b.covers(&a) => Some(b),
        (Some(_), Some(_)) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// Replaces the hard state in `dir`, both copies, durably, before returning. The first
/// copy is written whole (write, sync, rename, sync) before the second is touched, so
/// at any moment at least one copy holds either the old or the new state whole.
pub(crate) fn write_hard_state(
    disk: &mut impl Disk,
    dir: &str,
    hard_state: HardState,
) -> Result<(), DiskError> {
    let bytes = encode_hard_state(hard_state);
    write_file_atomically(disk, dir, HARD_STATE_FILE, &bytes)?;
    write_file_atomically(disk, dir, HARD_STATE_COPY_FILE, &bytes)
}

fn encode_hard_state(hard_state: HardState) -> Vec<u8> {
    let mut out = Vec::with_capacity(HARD_STATE_BYTES);
    out.extend_from_slice(&HARD_STATE_MAGIC);
    out.extend_from_slice(&HARD_STATE_VERSION.to_be_bytes());
    out.extend_from_slice(&hard_state.leader_epoch.to_be_bytes());
    let vote = hard_state.voted_for.map_or(-1, broker_id);
    out.extend_from_slice(&vote.to_be_bytes());
    out.push(u8::from(hard_state.recovering));
    out.extend_from_slice(&hard_state.losses.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The paths of Raft group `group`'s two hard state copies on a broker's disk.
pub fn hard_state_paths(group: &crate::peer::GroupId) -> [String; 2] {
    let dir = match group {
        crate::peer::GroupId::Metadata => {
            crate::topics::partition_dir(crate::topics::METADATA_TOPIC, 0)
        }
        crate::peer::GroupId::Partition(key) => {
            crate::topics::partition_dir(&key.topic, key.partition)
        }
    };
    [
        join(&dir, HARD_STATE_FILE),
        join(&dir, HARD_STATE_COPY_FILE),
    ]
}

/// A hard state file's contents, or `None` if they are not one, whole (for checkers
/// that read the durable bytes, like the simulator's).
pub fn decode_hard_state(bytes: &[u8]) -> Option<HardState> {
    if bytes.len() < HARD_STATE_V1_BYTES || bytes[..4] != HARD_STATE_MAGIC {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return None;
    }
    let version = u16::from_be_bytes([body[4], body[5]]);
    let expected_len = match version {
        1 => HARD_STATE_V1_BYTES,
        HARD_STATE_VERSION => HARD_STATE_BYTES,
        _ => return None,
    };
    if bytes.len() != expected_len {
        return None;
    }
    let leader_epoch = i32::from_be_bytes(body[6..10].try_into().ok()?);
    let vote = i32::from_be_bytes(body[10..14].try_into().ok()?);
    let voted_for = if vote < 0 {
        None
    } else {
        Some(raft_node_id(vote))
    };
    let (recovering, losses) = if version == 1 {
        (false, 0)
    } else {
        let recovering = match body[14] {
            0 => false,
            1 => true,
            _ => return None,
        };
        (
            recovering,
            u32::from_be_bytes(body[15..19].try_into().ok()?),
        )
    };
    Some(HardState {
        leader_epoch,
        voted_for,
        recovering,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_log::mem_disk::MemDisk;

    #[test]
    fn hard_state_round_trips_and_survives_a_crash() {
        let mut disk = MemDisk::new(7);
        disk.create_dir_all("t-0").unwrap();
        assert_eq!(read_hard_state(&mut disk, "t-0"), Ok(HardState::default()));
        let written = HardState {
            leader_epoch: 9,
            voted_for: Some(3),
            recovering: true,
            losses: 2,
        };
        write_hard_state(&mut disk, "t-0", written).unwrap();
        disk.crash(1);
        assert_eq!(read_hard_state(&mut disk, "t-0"), Ok(written));
        let none = HardState {
            leader_epoch: 10,
            voted_for: None,
            recovering: false,
            losses: 2,
        };
        write_hard_state(&mut disk, "t-0", none).unwrap();
        assert_eq!(read_hard_state(&mut disk, "t-0"), Ok(none));
    }

    #[test]
    fn a_damaged_hard_state_is_an_error_not_a_default() {
        let mut bytes = encode_hard_state(HardState {
            leader_epoch: 2,
            voted_for: Some(1),
            recovering: true,
            losses: 1,
        });
        assert!(decode_hard_state(&bytes).is_some());
        for at in 0..bytes.len() {
            bytes[at] ^= 0x10;
            assert_eq!(decode_hard_state(&bytes), None, "flip at byte {at}");
            bytes[at] ^= 0x10;
        }
        assert_eq!(decode_hard_state(&bytes[..5]), None);
    }

    #[test]
    fn either_copy_alone_keeps_the_hard_state() {
        let mut disk = MemDisk::new(3);
        disk.create_dir_all("t-0").unwrap();
        let older = HardState {
            leader_epoch: 4,
            voted_for: Some(2),
            ..HardState::default()
        };
        let newer = HardState {
            leader_epoch: 5,
            voted_for: Some(1),
            ..HardState::default()
        };
        write_hard_state(&mut disk, "t-0", older).unwrap();
        write_hard_state(&mut disk, "t-0", newer).unwrap();
        // Rot in either copy: the other answers.
        for (rotted, name) in [HARD_STATE_FILE, HARD_STATE_COPY_FILE].iter().enumerate() {
            let path = join("t-0", name);
            assert!(disk.corrupt_stored(&path, 7, 0x01));
            assert_eq!(
                read_hard_state(&mut disk, "t-0"),
                Ok(newer),
                "copy {rotted} rotted"
            );
            assert!(disk.corrupt_stored(&path, 7, 0x01));
        }
        // Both rotted: no guess.
        for name in [HARD_STATE_FILE, HARD_STATE_COPY_FILE] {
            assert!(disk.corrupt_stored(&join("t-0", name), 9, 0x01));
        }
        assert!(read_hard_state(&mut disk, "t-0").is_err());
        // A crash between the two writes: the first copy is a step ahead, and wins.
        let a = encode_hard_state(newer);
        let b = encode_hard_state(older);
        assert_eq!(newest_hard_state(Some(&a), Some(&b)), Some(newer));
        assert_eq!(newest_hard_state(Some(&b), Some(&a)), Some(newer));
        assert_eq!(newest_hard_state(None, Some(&b)), Some(older));
        // Two states no sequence of writes explains (two votes in one epoch): no guess.
        let other_vote = encode_hard_state(HardState {
            voted_for: Some(3),
            ..newer
        });
        assert_eq!(newest_hard_state(Some(&a), Some(&other_vote)), None);
    }

    /// A replica of `replicas` whose last segment, sealed by a clean close, rotted in
    /// the batch at offset 4: what `Partition::open` makes of it.
    fn open_rotted(replicas: Vec<BrokerId>) -> (MemDisk, Partition) {
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
        let key = TopicPartition::new("t", 0);
        let partition = Partition::open(
            &mut disk,
            &key,
            "t-0",
            config,
            replicas,
            1,
            RaftConfig::default(),
            9,
            0,
        )
        .unwrap();
        (disk, partition)
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

    #[test]
    fn a_version_1_hard_state_is_still_read() {
        // Written by brokers before decision 0010: epoch 7, vote for broker 2.
        let mut bytes = b"ODHS".to_vec();
        bytes.extend_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&7i32.to_be_bytes());
        bytes.extend_from_slice(&2i32.to_be_bytes());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_hard_state(&bytes),
            Some(HardState {
                leader_epoch: 7,
                voted_for: Some(2),
                recovering: false,
                losses: 0,
            })
        );
    }
}
