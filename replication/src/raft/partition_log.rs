//! [`RaftLog`] over a partition's [`PartitionLog`]: the adapter the node hands the Raft
//! core of a replicated partition.
//!
//! ```text
//!   node                          PartitionRaftLog (built per call)        PartitionLog
//!   ────                          ─────────────────────────────────        ────────────
//!   raft.step(&mut view, ..) ──►  append(entries) ── append_replicated ──►  segments
//!                                 truncate / reset ── truncate_to/reset ─►  (durable at once)
//!                                 read(from, max) ─── read, split batches ►
//!                                 epoch_at, end_offset_for_epoch ◄── ReplicaLogState.epochs
//!   client produce (leader) ────► append_produced ── append (sequence checks) ─► segments
//!   Ready::sync_log ─────────────────────────────────── start_sync / on_sync_complete
//! ```
//!
//! # The leader epoch cache, and why it is rebuilt at open
//!
//! The core asks "which epoch wrote offset x" and "where does epoch e end" (KIP-279) on
//! every append it receives and every divergence it resolves; answering from batch
//! headers would cost a disk read each. Kafka keeps a *leader epoch cache* beside every
//! partition for this, `(epoch, start_offset)` per epoch, and persists it as the
//! `leader-epoch-checkpoint` file, rewritten on every epoch change and truncation.
//! [`ReplicaLogState::epochs`] is that cache ([`EpochCache`]), kept in memory and updated
//! by this adapter as the log changes.
//!
//! It is **rebuilt at open by scanning the batch headers**
//! ([`PartitionLog::batch_epochs`]) rather than persisted: every batch already carries
//! its `partitionLeaderEpoch`, so the log itself is the record of where epochs change.
//! A separately persisted cache is a second copy that a crash can leave disagreeing
//! with the log (a checkpoint written before the batches it names became durable, or
//! not yet cut after recovery dropped a torn tail), and Kafka has to reconcile the two
//! at startup. A scan cannot disagree with the batches it reads, whatever a crash, a
//! recovery cut or a truncation left. The price is one header read per batch at open
//! (61 bytes each, no CRC), which recovery of the unsealed segments pays anyway; a
//! checkpoint can come later as a pure optimization, checked against the scan's tail.
//!
//! The one fact no scan can recover is the epoch of the batch just *below* the log
//! start, once retention or a reset deleted it: a leader needs it to send from its log
//! start, and an emptied log needs it to say how up to date it is (Raft's "last included
//! term"). `PartitionLog` persists that single value beside its log start offset
//! ([`PartitionLog::epoch_before_start`]), before the log start moves.
//!
//! # How the node uses it
//!
//! - **Open.** `PartitionLog::open`, then [`ReplicaLogState::open`]. Then `Raft::new`
//!   with a view (below) and the persisted hard state.
//! - **Every call into the core** (`tick`, `step`, `propose`, `replicate`,
//!   `on_log_synced`, `on_hard_state_persisted`, `Raft::new`): build a view with
//!   [`PartitionRaftLog::new`] from the partition's log, its `ReplicaLogState`, the
//!   node's disk and the wall clock, and pass `&mut view`. Building one costs nothing,
//!   and it is where the cache catches up with retention (below).
//! - **Client produce on the leader.** `let epoch = raft.check_leader()?`, then
//!   [`PartitionRaftLog::append_produced`] (the idempotent-producer checks of
//!   `PartitionLog::append`, then the cache), then `raft.replicate(&mut view)`. Calling
//!   `PartitionLog::append` directly is fine too if the node then calls
//!   [`ReplicaLogState::on_leader_append`] for every batch it `Appended`.
//! - **Syncs.** On `Ready::sync_log`, `log.start_sync(disk)`; feed every completion to
//!   `log.on_sync_complete`, then call `raft.on_log_synced(&mut view)`. When a round
//!   completes with `durable_offset() < log_end_offset()` and nothing asks for a sync,
//!   start another: a round covers at most `SYNC_ROUND_SEGMENTS_MAX` segments, and
//!   never the appends made while it was in flight.
//! - **Retention.** `log.maintain_below(disk, now_ms, raft.high_watermark())`: only
//!   committed offsets may be deleted (`maintain` alone would stop at the durable
//!   offset, which may be above the high watermark). The log start moves behind the
//!   cache's back; the next view trims the cache ([`EpochCache::on_start_advanced`]),
//!   and the queries of a view built before that answer as if it had.
//! - **Never** call `truncate_to` or `reset` on the `PartitionLog` of a replicated
//!   partition directly: the cache would still name the epochs they removed. (If it
//!   must happen, rebuild the state with [`ReplicaLogState::open`].)
//! - **Storage errors.** Every `PartitionLog` error becomes a [`StorageError`] naming
//!   the partition directory, the operation and the offset; the core then stops
//!   acknowledging and leading. Reopen the log and the state, and build a new `Raft`.
//!
//! # The leader marker, and what consumers make of it
//!
//! [`RaftLog::append_leader_marker`] writes Kafka's leader-change control batch
//! ([`batch::build_leader_change_batch`]: control bit set, not transactional, producer
//! id -1, one control record of type 2 = `LEADER_CHANGE`, value a `LeaderChangeMessage`
//! naming [`ReplicaLogState::leader_id`]). Consumers fetch it like any batch, so it must
//! be skipped by every client Odradek supports, in both isolation levels. Checked in
//! the clients' sources:
//!
//! - librdkafka (confluent-kafka, kcat), `src/rdkafka_msgset_reader.c`,
//!   `rd_kafka_msgset_reader_msg_v2`: a control record's key must be 4 bytes (version
//!   0, type); a type other than COMMIT or ABORT is logged "Unsupported ctrl message
//!   type ...: ignoring", and the record is still queued as a control op, which the
//!   consumer never hands to the application but whose offset it stores
//!   (`rd_kafka_op_handle_std`, `rd_kafka_q_serve_rkmessages`). The fetch position
//!   moves past the batch (`msetr_next_offset = LastOffset + 1`). Same code in v2.15.0
//!   and later (confluent-kafka 2.16.1 is what the tests install).
//! - kafka-python 3.0.12, `kafka/consumer/fetcher.py`, `_unpack_records`: under magic 2
//!   every control batch is skipped with `next_fetch_offset = batch.next_offset`,
//!   whatever the isolation level; under `read_committed` the abort-marker check runs
//!   only for batches with a producer id (`producer_id > -1`), which the marker has not.
//! - aiokafka 0.14.0, `aiokafka/consumer/fetcher.py`, `_unpack_records`: "We skip control
//!   batches no matter the isolation level" (`next_fetch_offset = next_batch.next_offset`).
//!   Under `read_committed` it first unpacks the key of every control batch (producer id
//!   -1 is not `None`) with `struct ">HH"` and compares it with the abort marker `(0, 0)`;
//!   the marker's 4-byte key `(0, 2)` parses and is not an abort.
//!
//! None of them gets stuck or fails on it. Odradek's own `consume` and `bench` skip
//! control batches too.

use std::borrow::Cow;

use bytes::Bytes;
use odradek_log::batch::{self, BatchHeader};
use odradek_log::io::Disk;
use odradek_log::{AppendError, AppendOutcome, LogError, PartitionLog};

use super::message::Entry;
use super::storage::{EpochCache, RaftLog, StorageError};

/// Per-partition state the node keeps beside its [`PartitionLog`] for Raft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaLogState {
    /// The leader epoch cache: where each epoch in the log starts (Kafka's
    /// `leader-epoch-checkpoint`, rebuilt from batch headers at open; see the module
    /// documentation).
    pub epochs: EpochCache,
    /// This broker's id, written into the leader markers it appends as leader.
    pub leader_id: i32,
    /// The base offset of a batch that failed its checks on every read (rot on the
    /// medium, a misdirected write), found by a read or a truncation through the view,
    /// or by the node's own reads. The node repairs the replica (decision 0010).
    pub damaged: Option<i64>,
}

impl ReplicaLogState {
    /// The state of a log just opened: the epoch cache built from the epoch before the
    /// log start and a scan of the batch headers. `leader_id` is this broker's id.
    ///
    /// A log whose batch epochs go backwards (not a log Raft wrote) is `Corrupt`. If the
    /// epoch before a non-zero log start is unknown (its checkpoint was lost), the cache
    /// cannot answer for offset `log_start - 1`: a leader then fails to send from its
    /// log start (and steps down), a follower gets reset by its leader.
    pub fn open(
        log: &mut PartitionLog,
        disk: &mut impl Disk,
        leader_id: i32,
    ) -> Result<ReplicaLogState, LogError> {
        let start_offset = log.log_start_offset();
        let batch_epochs = log.batch_epochs(disk)?;
        let mut epochs = EpochCache::new();
        // A batch kept below the log start tells the epoch before it by itself.
        let scanned_below_start = batch_epochs
            .first()
            .is_some_and(|&(_, base_offset)| base_offset < start_offset);
        if !scanned_below_start && let Some(epoch) = log.epoch_before_start() {
            epochs.on_reset(start_offset, epoch);
        }
        for &(epoch, base_offset) in &batch_epochs {
            if let Some(&(last, _)) = epochs.epochs().last()
                && epoch < last
            {
                return Err(LogError::Corrupt {
                    offset: base_offset,
                    reason: format!("batch of epoch {epoch} after a batch of epoch {last}"),
                });
            }
            epochs.on_append(epoch, base_offset);
        }
        epochs.on_start_advanced(start_offset);
        Ok(ReplicaLogState {
            epochs,
            leader_id,
            damaged: None,
        })
    }

    /// The leader appended a client's batch at `base_offset` in its epoch
    /// `leader_epoch` with `PartitionLog::append` (an `Appended` outcome; a `Duplicate`
    /// wrote nothing). Call it for every such batch, before the next view is used.
    pub fn on_leader_append(&mut self, base_offset: i64, leader_epoch: i32) {
        self.epochs.on_append(leader_epoch, base_offset);
    }
}

/// A short-lived view implementing [`RaftLog`], built for one call into the core (see
/// the module documentation for how the node uses it).
pub struct PartitionRaftLog<'a, D: Disk> {
    /// The partition's log.
    pub log: &'a mut PartitionLog,
    /// Its Raft state, kept beside it by the node.
    pub state: &'a mut ReplicaLogState,
    /// The disk the log lives on.
    pub disk: &'a mut D,
    /// The wall clock (`Io::wall_clock_ms`): the timestamp of leader markers, and the
    /// time `segment.ms` rolls by.
    pub now_ms: i64,
}

impl<'a, D: Disk> PartitionRaftLog<'a, D> {
    /// A view of `log`; brings the epoch cache up to date with retention first.
    pub fn new(
        log: &'a mut PartitionLog,
        state: &'a mut ReplicaLogState,
        disk: &'a mut D,
        now_ms: i64,
    ) -> PartitionRaftLog<'a, D> {
        state.epochs.on_start_advanced(log.log_start_offset());
        PartitionRaftLog {
            log,
            state,
            disk,
            now_ms,
        }
    }

    /// The leader's append of a client's batch: `PartitionLog::append` (validation,
    /// idempotent-producer checks, offsets from the log end, `leader_epoch` written into
    /// the batch), then the epoch cache. `leader_epoch` is [`super::Raft::check_leader`]'s.
    /// Call `Raft::replicate` afterwards.
    pub fn append_produced(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendOutcome, AppendError> {
        assert!(
            leader_epoch >= self.last_epoch(),
            "append in epoch {leader_epoch} after the log's epoch {}",
            self.last_epoch()
        );
        let outcome = self
            .log
            .append(self.disk, batch, leader_epoch, self.now_ms)?;
        if let AppendOutcome::Appended { base_offset, .. } = outcome {
            self.state.on_leader_append(base_offset, leader_epoch);
        }
        Ok(outcome)
    }

    /// The epoch cache as of the log's start now: trimmed of epochs retention deleted
    /// since the view was built (a copy, only in that case).
    fn epochs(&self) -> Cow<'_, EpochCache> {
        let start_offset = self.log.log_start_offset();
        let stale = self
            .state
            .epochs
            .epochs()
            .get(1)
            .is_some_and(|&(_, second_start)| second_start < start_offset);
        if stale {
            let mut epochs = self.state.epochs.clone();
            epochs.on_start_advanced(start_offset);
            Cow::Owned(epochs)
        } else {
            Cow::Borrowed(&self.state.epochs)
        }
    }

    /// Remembers the lowest damaged batch found for the node to repair.
    fn note_damage(&mut self, offset: i64) {
        let lowest = self.state.damaged.map_or(offset, |known| known.min(offset));
        self.state.damaged = Some(lowest);
    }

    fn storage_error(
        &self,
        operation: &str,
        offset: i64,
        error: impl std::fmt::Display,
    ) -> StorageError {
        StorageError::new(format!(
            "partition {}: {operation} at offset {offset}: {error}",
            self.log.dir()
        ))
    }

    /// Appends one entry whose bytes are a whole batch, with the entry's offset and
    /// epoch written into it (the core's `propose` hands over a client's batch as it
    /// came; a leader's entries already carry both).
    fn append_entry(&mut self, entry: &Entry) -> Result<(), StorageError> {
        let end_offset = self.log.log_end_offset();
        if entry.base_offset != end_offset {
            return Err(self.storage_error(
                "append",
                entry.base_offset,
                format!("entries must start at the log end offset {end_offset}"),
            ));
        }
        let last_epoch = self.last_epoch();
        if entry.leader_epoch < last_epoch {
            return Err(self.storage_error(
                "append",
                entry.base_offset,
                format!(
                    "an entry of epoch {} after the log's epoch {last_epoch}",
                    entry.leader_epoch
                ),
            ));
        }
        let header = BatchHeader::parse(&entry.data)
            .map_err(|error| self.storage_error("append", entry.base_offset, error))?;
        if i64::from(header.last_offset_delta) != entry.last_offset - entry.base_offset {
            return Err(self.storage_error(
                "append",
                entry.base_offset,
                format!(
                    "the batch covers {} offsets, the entry [{}, {}]",
                    i64::from(header.last_offset_delta) + 1,
                    entry.base_offset,
                    entry.last_offset
                ),
            ));
        }
        let appended = if header.base_offset == entry.base_offset
            && header.partition_leader_epoch == entry.leader_epoch
        {
            self.log
                .append_replicated(self.disk, &entry.data, self.now_ms)
        } else {
            let mut bytes = entry.data.to_vec();
            batch::assign(&mut bytes, entry.base_offset, entry.leader_epoch);
            self.log.append_replicated(self.disk, &bytes, self.now_ms)
        };
        appended.map_err(|error| self.storage_error("append", entry.base_offset, error))?;
        self.state
            .epochs
            .on_append(entry.leader_epoch, entry.base_offset);
        Ok(())
    }
}

/// `bytes` (whole batches from a read at `from`) with a first batch that is a cleaner's
/// filler starting before `from` cut to start at `from`: a follower's log ends at a
/// batch boundary of the log as it was appended, which may fall inside a filler that
/// covers several removed batches (docs/storage.md, "Compaction"). Any other first
/// batch is left alone: the read checks below decide about it.
fn sliced_to(bytes: Bytes, from: i64) -> Bytes {
    let Ok(header) = BatchHeader::parse(&bytes) else {
        return bytes;
    };
    if header.base_offset >= from || !header.is_filler() {
        return bytes;
    }
    let size = (header.size_bytes() as usize).min(bytes.len());
    let Some(mut sliced) = batch::slice_filler(&bytes[..size], from) else {
        return bytes;
    };
    sliced.extend_from_slice(&bytes[size..]);
    Bytes::from(sliced)
}

impl<D: Disk> RaftLog for PartitionRaftLog<'_, D> {
    fn start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    fn end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    fn durable_end_offset(&self) -> i64 {
        self.log.durable_offset()
    }

    fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.epochs()
            .epoch_at(offset, self.start_offset(), self.end_offset())
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs()
            .end_offset_for_epoch(epoch, self.start_offset(), self.end_offset())
    }

    fn read(&mut self, from: i64, bytes_max: u64) -> Result<Vec<Entry>, StorageError> {
        let max_bytes = u32::try_from(bytes_max).unwrap_or(u32::MAX);
        let result = match self.log.read(self.disk, from, i64::MAX, max_bytes) {
            Ok(result) => result,
            Err(error) => {
                if let odradek_log::ReadError::Corrupt { offset, .. } = error {
                    self.note_damage(offset);
                }
                return Err(self.storage_error("read", from, error));
            }
        };
        let bytes = sliced_to(Bytes::from(result.bytes), from);
        let mut entries = Vec::new();
        let mut position = 0;
        while position < bytes.len() {
            // Every batch a read returns passed its CRC check whole.
            let header = BatchHeader::parse(&bytes[position..])
                .map_err(|error| self.storage_error("read", from, error))?;
            let end = position + header.size_bytes() as usize;
            assert!(end <= bytes.len(), "a read returns whole batches");
            entries.push(Entry {
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
                leader_epoch: header.partition_leader_epoch,
                data: bytes.slice(position..end),
            });
            position = end;
        }
        if let Some(first) = entries.first() {
            if !(first.base_offset <= from && from <= first.last_offset) {
                // Only a header that lies about its offsets gets here (bits flipped
                // outside the CRC, say): the log cannot be trusted from here on.
                return Err(self.storage_error(
                    "read",
                    from,
                    format!(
                        "the read returned offsets {}..={} first",
                        first.base_offset, first.last_offset
                    ),
                ));
            }
        } else if from < self.end_offset() {
            return Err(self.storage_error("read", from, "no batch returned below the log end"));
        }
        Ok(entries)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.state
            .epochs
            .on_start_advanced(self.log.log_start_offset());
        entries
            .iter()
            .try_for_each(|entry| self.append_entry(entry))
    }

    fn append_leader_marker(&mut self, leader_epoch: i32) -> Result<(), StorageError> {
        let base_offset = self.end_offset();
        let marker = batch::build_leader_change_batch(
            base_offset,
            leader_epoch,
            self.state.leader_id,
            self.now_ms,
        );
        self.append(&[Entry {
            base_offset,
            last_offset: base_offset,
            leader_epoch,
            data: Bytes::from(marker),
        }])
    }

    fn truncate(&mut self, end_offset: i64) -> Result<(), StorageError> {
        self.state
            .epochs
            .on_start_advanced(self.log.log_start_offset());
        if end_offset >= self.end_offset() {
            return Ok(());
        }
        if let Err(error) = self.log.truncate_to(self.disk, end_offset) {
            if let LogError::Corrupt { offset, .. } = error {
                self.note_damage(offset);
            }
            return Err(self.storage_error("truncate", end_offset, error));
        }
        let new_end = self.log.log_end_offset();
        self.state.epochs.on_truncate(new_end);
        Ok(())
    }

    fn reset(&mut self, start_offset: i64, epoch_before_start: i32) -> Result<(), StorageError> {
        self.log
            .reset(self.disk, start_offset, epoch_before_start)
            .map_err(|error| self.storage_error("reset", start_offset, error))?;
        self.state.epochs.on_reset(start_offset, epoch_before_start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use odradek_log::LogConfig;
    use odradek_log::batch::build_batch;
    use odradek_log::mem_disk::{MemDisk, WriteFault};

    use super::*;
    use crate::raft::NO_EPOCH;

    const DIR: &str = "t-0";
    const NOW: i64 = 1_700_000_000_000;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 64,
            retention_ms: -1,
            retention_bytes: 0,
            ..LogConfig::default()
        }
    }

    struct Replica {
        disk: MemDisk,
        log: PartitionLog,
        state: ReplicaLogState,
    }

    impl Replica {
        fn new(seed: u64) -> Replica {
            let mut disk = MemDisk::new(seed);
            let (mut log, _) = PartitionLog::open(&mut disk, DIR, config(), NOW).unwrap();
            let state = ReplicaLogState::open(&mut log, &mut disk, 1).unwrap();
            Replica { disk, log, state }
        }

        fn view(&mut self) -> PartitionRaftLog<'_, MemDisk> {
            PartitionRaftLog::new(&mut self.log, &mut self.state, &mut self.disk, NOW)
        }

        /// A client batch of `records` records, appended as leader in `epoch`.
        fn produce(&mut self, records: usize, epoch: i32) -> i64 {
            let values: Vec<&[u8]> = (0..records).map(|_| b"value".as_slice()).collect();
            let mut batch = build_batch(NOW, None, &values);
            match self.view().append_produced(&mut batch, epoch).unwrap() {
                AppendOutcome::Appended { base_offset, .. } => base_offset,
                duplicate => panic!("{duplicate:?}"),
            }
        }

        fn sync(&mut self) {
            while !self.log.start_sync(&mut self.disk).is_empty() {
                for completion in self.disk.complete_all_syncs() {
                    self.log.on_sync_complete(&completion);
                }
            }
        }

        /// Crash (losing nothing: everything was synced) and reopen.
        fn reopen(mut self, seed: u64) -> Replica {
            self.sync();
            let Replica { mut disk, log, .. } = self;
            drop(log);
            disk.crash(seed);
            let (mut log, _) = PartitionLog::open(&mut disk, DIR, config(), NOW).unwrap();
            let state = ReplicaLogState::open(&mut log, &mut disk, 1).unwrap();
            Replica { disk, log, state }
        }
    }

    /// Epoch 1 at [0, 4), epoch 2 at [4, 8), epoch 4 at [8, 10): batches of two records.
    fn three_epochs() -> Replica {
        let mut replica = Replica::new(1);
        for epoch in [1, 1, 2, 2, 4] {
            replica.produce(2, epoch);
        }
        replica
    }

    fn client_entry(base_offset: i64, records: usize, leader_epoch: i32) -> Entry {
        let values: Vec<&[u8]> = (0..records).map(|_| b"v".as_slice()).collect();
        Entry {
            base_offset,
            last_offset: base_offset + records as i64 - 1,
            leader_epoch,
            data: Bytes::from(build_batch(NOW, None, &values)),
        }
    }

    /// The view answers every epoch question as a cache of `pairs` would.
    fn assert_same_answers(view: &mut PartitionRaftLog<'_, MemDisk>, pairs: &[(i32, i64)]) {
        let mut expected = EpochCache::new();
        for &(epoch, start) in pairs {
            expected.on_append(epoch, start);
        }
        let (start, end) = (view.start_offset(), view.end_offset());
        for offset in start - 2..=end {
            assert_eq!(
                view.epoch_at(offset),
                expected.epoch_at(offset, start, end),
                "epoch_at({offset})"
            );
        }
        for epoch in -2..10 {
            assert_eq!(
                view.end_offset_for_epoch(epoch),
                expected.end_offset_for_epoch(epoch, start, end),
                "end_offset_for_epoch({epoch})"
            );
        }
    }

    #[test]
    fn epoch_questions_are_answered_from_the_cache() {
        let mut replica = three_epochs();
        let view = replica.view();
        assert_eq!((view.start_offset(), view.end_offset()), (0, 10));
        assert_eq!(view.epoch_at(-1), Some(NO_EPOCH));
        assert_eq!(view.epoch_at(0), Some(1));
        assert_eq!(view.epoch_at(5), Some(2));
        assert_eq!(view.epoch_at(9), Some(4));
        assert_eq!(view.epoch_at(10), None);
        assert_eq!(view.last_epoch(), 4);
        // KIP-279: the largest epoch not above the one asked, and where it ends.
        assert_eq!(view.end_offset_for_epoch(0), Some((NO_EPOCH, 0)));
        assert_eq!(view.end_offset_for_epoch(1), Some((1, 4)));
        assert_eq!(view.end_offset_for_epoch(3), Some((2, 8)));
        assert_eq!(view.end_offset_for_epoch(9), Some((4, 10)));
    }

    #[test]
    fn open_rebuilds_the_same_cache_from_the_batch_headers() {
        let replica = three_epochs();
        let before = replica.state.clone();
        assert_eq!(before.epochs.epochs(), &[(1, 0), (2, 4), (4, 8)]);
        let replica = replica.reopen(3);
        assert_eq!(replica.state, before);
    }

    #[test]
    fn open_refuses_a_log_whose_epochs_go_back() {
        let mut disk = MemDisk::new(1);
        let (mut log, _) = PartitionLog::open(&mut disk, DIR, config(), NOW).unwrap();
        for epoch in [3, 2] {
            let mut batch = build_batch(NOW, None, &[b"v"]);
            log.append(&mut disk, &mut batch, epoch, NOW).unwrap();
        }
        assert!(matches!(
            ReplicaLogState::open(&mut log, &mut disk, 1),
            Err(LogError::Corrupt { offset: 1, .. })
        ));
    }

    #[test]
    fn read_splits_whole_batches_into_entries_and_returns_at_least_one() {
        let mut replica = three_epochs();
        let mut view = replica.view();
        let all = view.read(0, u64::MAX).unwrap();
        let spans: Vec<(i64, i64, i32)> = all
            .iter()
            .map(|e| (e.base_offset, e.last_offset, e.leader_epoch))
            .collect();
        assert_eq!(
            spans,
            vec![(0, 1, 1), (2, 3, 1), (4, 5, 2), (6, 7, 2), (8, 9, 4)]
        );
        for entry in &all {
            let header = batch::validate(&entry.data, u32::MAX).unwrap();
            assert_eq!(header.base_offset, entry.base_offset);
            assert_eq!(header.partition_leader_epoch, entry.leader_epoch);
        }
        // From inside a batch: that whole batch first. A limit smaller than one entry
        // still gives one; a limit of two entries gives two.
        let one = view.read(5, 1).unwrap();
        assert_eq!(one, all[2..3]);
        let size = all[2].size_bytes() + all[3].size_bytes();
        assert_eq!(view.read(5, size).unwrap(), all[2..4]);
        assert_eq!(view.read(5, size + 1).unwrap(), all[2..4]);
        assert_eq!(view.read(10, u64::MAX).unwrap(), vec![]);
    }

    #[test]
    fn append_writes_the_entries_offsets_and_epochs_into_the_batch() {
        let mut leader = three_epochs();
        let mut follower = Replica::new(2);
        // What a leader sends is stored byte for byte.
        let sent = leader.view().read(0, u64::MAX).unwrap();
        follower.view().append(&sent).unwrap();
        assert_eq!(follower.view().read(0, u64::MAX).unwrap(), sent);
        assert_eq!(follower.state.epochs, leader.state.epochs);
        // What `propose` hands over is a client's batch (base offset 0, epoch -1): the
        // entry's offset and epoch are written into it.
        let mut view = follower.view();
        view.append(&[client_entry(10, 3, 5), client_entry(13, 1, 5)])
            .unwrap();
        let read = view.read(10, u64::MAX).unwrap();
        assert_eq!(
            read.iter()
                .map(|e| (e.base_offset, e.last_offset, e.leader_epoch))
                .collect::<Vec<_>>(),
            vec![(10, 12, 5), (13, 13, 5)]
        );
        assert_eq!(view.epoch_at(12), Some(5));
        assert_eq!(view.end_offset_for_epoch(4), Some((4, 10)));
        assert_eq!(view.durable_end_offset(), 0, "durable only after a sync");
        follower.sync();
        assert_eq!(follower.view().durable_end_offset(), 14);
        assert_eq!(
            follower.view().durable_end_offset(),
            follower.log.durable_offset()
        );
    }

    #[test]
    fn append_refuses_what_does_not_fit_with_a_storage_error() {
        let mut replica = three_epochs();
        let mut view = replica.view();
        let gap = view.append(&[client_entry(11, 1, 4)]).unwrap_err();
        assert!(
            gap.message.contains("partition t-0: append at offset 11"),
            "{gap}"
        );
        let older = view.append(&[client_entry(10, 1, 3)]).unwrap_err();
        assert!(
            older.message.contains("epoch 3 after the log's epoch 4"),
            "{older}"
        );
        let mut miscounted = client_entry(10, 2, 4);
        miscounted.last_offset = 12;
        assert!(view.append(&[miscounted]).is_err());
        let garbage = Entry {
            base_offset: 10,
            last_offset: 10,
            leader_epoch: 4,
            data: Bytes::from_static(b"not a batch"),
        };
        assert!(view.append(&[garbage]).is_err());
        assert_eq!(view.end_offset(), 10, "nothing was appended");
        assert_eq!(view.state.epochs.epochs(), &[(1, 0), (2, 4), (4, 8)]);
    }

    #[test]
    fn storage_errors_name_the_partition_the_operation_and_the_offset() {
        let mut replica = three_epochs();
        replica.disk.fail_writes_after(0, WriteFault::NoSpace);
        let mut view = replica.view();
        let error = view.append(&[client_entry(10, 1, 4)]).unwrap_err();
        assert_eq!(
            error.message,
            "partition t-0: append at offset 10: disk error: no space left on device"
        );
        assert_eq!(view.end_offset(), 10);
    }

    #[test]
    fn leader_marker_is_a_control_batch_of_its_epoch_that_leaves_producers_alone() {
        let mut replica = Replica::new(1);
        let mut produced = build_batch(NOW, Some((7, 0, 0)), &[b"a", b"b"]);
        let retry = produced.clone();
        replica.view().append_produced(&mut produced, 1).unwrap();
        let producer = replica.log.producer_state(7);
        let mut view = replica.view();
        view.append_leader_marker(2).unwrap();
        assert_eq!(view.end_offset(), 3);
        assert_eq!(view.epoch_at(2), Some(2));
        let marker = view.read(2, u64::MAX).unwrap();
        assert_eq!(marker.len(), 1);
        assert_eq!((marker[0].base_offset, marker[0].last_offset), (2, 2));
        let header = batch::validate(&marker[0].data, u32::MAX).unwrap();
        assert!(header.is_control() && !header.is_transactional());
        assert_eq!(header.partition_leader_epoch, 2);
        assert_eq!(
            marker[0].data,
            batch::build_leader_change_batch(2, 2, 1, NOW)
        );
        assert_eq!(view.log.producer_state(7), producer);
        // The producer's retry is still recognized, and its next batch accepted.
        let mut retry = retry;
        assert_eq!(
            view.append_produced(&mut retry, 2),
            Ok(AppendOutcome::Duplicate {
                base_offset: 0,
                last_offset: 1,
                max_timestamp: NOW
            })
        );
        let mut next = build_batch(NOW, Some((7, 0, 2)), &[b"c"]);
        assert!(matches!(
            view.append_produced(&mut next, 2),
            Ok(AppendOutcome::Appended { base_offset: 3, .. })
        ));
        assert_eq!(view.state.epochs.epochs(), &[(1, 0), (2, 2)]);
    }

    #[test]
    fn a_node_appending_directly_tells_the_cache_with_on_leader_append() {
        let mut replica = three_epochs();
        let mut batch = build_batch(NOW, None, &[b"a", b"b", b"c"]);
        let outcome = replica
            .log
            .append(&mut replica.disk, &mut batch, 6, NOW)
            .unwrap();
        let AppendOutcome::Appended { base_offset, .. } = outcome else {
            panic!("{outcome:?}");
        };
        replica.state.on_leader_append(base_offset, 6);
        let view = replica.view();
        assert_eq!(view.epoch_at(10), Some(6));
        assert_eq!(view.epoch_at(12), Some(6));
        assert_eq!(view.last_epoch(), 6);
        assert_eq!(view.end_offset_for_epoch(5), Some((4, 10)));
    }

    #[test]
    fn truncate_cuts_whole_batches_and_forgets_their_epochs() {
        let mut replica = three_epochs();
        replica.sync();
        let mut view = replica.view();
        // Offset 5 is inside the batch [4, 5]: it goes whole.
        view.truncate(5).unwrap();
        assert_eq!(view.end_offset(), 4);
        assert!(
            view.durable_end_offset() <= 4,
            "a truncation lowers it at once"
        );
        assert_eq!(view.epoch_at(3), Some(1));
        assert_eq!(view.epoch_at(4), None);
        assert_eq!(view.last_epoch(), 1);
        assert_eq!(view.end_offset_for_epoch(4), Some((1, 4)));
        view.truncate(4).unwrap();
        view.truncate(100).unwrap();
        assert_eq!(view.end_offset(), 4, "nothing at or above the end to cut");
        // Appends in a new epoch follow on.
        view.append(&[client_entry(4, 1, 6)]).unwrap();
        assert_eq!(view.state.epochs.epochs(), &[(1, 0), (6, 4)]);
    }

    #[test]
    fn reset_empties_the_log_durably_and_remembers_the_epoch_before_its_start() {
        let mut replica = three_epochs();
        let mut view = replica.view();
        view.reset(50, 7).unwrap();
        assert_eq!(
            (
                view.start_offset(),
                view.end_offset(),
                view.durable_end_offset()
            ),
            (50, 50, 50)
        );
        assert_eq!(view.epoch_at(49), Some(7));
        assert_eq!(view.epoch_at(48), None);
        assert_eq!(view.last_epoch(), 7);
        assert_eq!(view.end_offset_for_epoch(7), Some((7, 50)));
        assert_eq!(view.end_offset_for_epoch(6), None);
        view.append(&[client_entry(50, 2, 8)]).unwrap();
        let state = replica.state.clone();
        let mut replica = replica.reopen(5);
        assert_eq!(
            replica.state, state,
            "the epoch before the start survives a crash"
        );
        assert_same_answers(&mut replica.view(), &[(7, 49), (8, 50)]);
    }

    #[test]
    fn retention_behind_the_cache_s_back_is_caught_up() {
        let mut replica = three_epochs();
        replica.sync();
        let view = replica.view();
        // The node's retention, up to the high watermark 8: segments below 8 go.
        let report = view.log.maintain_below(view.disk, NOW, 8).unwrap();
        let start = report.log_start_offset;
        assert!(start > 4 && start <= 8, "{report:?}");
        // The view built before answers as if the cache were trimmed...
        assert_eq!(view.start_offset(), start);
        assert_eq!(view.epoch_at(start - 1), Some(2));
        assert_eq!(view.epoch_at(start - 2), None);
        assert_eq!(view.end_offset_for_epoch(1), None);
        assert_eq!(view.end_offset_for_epoch(2), Some((2, 8)));
        assert_eq!(view.state.epochs.epochs().len(), 3, "not trimmed yet");
        // ...and the next view trims it.
        let view = replica.view();
        assert_eq!(view.state.epochs.epochs(), &[(2, 4), (4, 8)]);
        let mut reopened = replica.reopen(9);
        // The epoch before the start comes back from its checkpoint, recorded at the
        // offset before the start rather than where the epoch began: same answers.
        assert_eq!(reopened.state.epochs.epochs(), &[(2, start - 1), (4, 8)]);
        assert_same_answers(&mut reopened.view(), &[(2, 4), (4, 8)]);
    }
}
