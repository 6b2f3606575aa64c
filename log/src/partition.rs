//! `PartitionLog`: one partition's crash-safe segmented log.
//!
//! ```text
//!  append ──► validate, sequence check ──┬─► write at end of active segment (page cache)
//!  append_replicated ──► validate ───────┘   (a follower: offsets and epoch as its leader's)
//!                                                 │
//!  start_sync ──► Disk::sync(dirty segments) + sync_dir ──► IoIds ──► caller waits
//!                                                                        │
//!  on_sync_complete(DiskCompletion) ◄────────────────────────────────────┘
//!      └─► durable_offset advances once every sync of the round is Ok
//!
//!  segments: [00…00.log sealed][00…57.log sealed][00…93.log active]
//!             ^ log_start_offset                                ^ log_end_offset
//! ```
//!
//! The log does no I/O of its own accord: every effect goes through the [`Disk`] the
//! caller passes in, and durability is reported only when the caller feeds back the
//! completions of the syncs the log started. The formats and rules are in
//! `docs/storage.md`.

use std::collections::BTreeSet;

use crate::batch::{self, BatchError, BatchHeader};
use crate::constants::{
    INDEX_ENTRIES_MAX, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN, SEGMENT_FILES_OPEN_MAX,
    SYNC_ROUND_SEALS_MAX, SYNC_ROUND_SEGMENTS_MAX, SYNCS_IN_FLIGHT_MAX,
};
use crate::io::{Disk, DiskCompletion, DiskError, FileId, IoId, OpenMode};
use crate::producer::{ProducerEntry, ProducerStates, SequenceCheck};
use crate::segment::{
    LOG_START_OFFSET_CHECKPOINT, ScanRange, SegmentFileKind, SegmentSummary, TEMP_SUFFIX,
    encode_checkpoint, encode_index, join, read_fully, read_whole_file, scan_file,
    segment_file_name,
};
use crate::synced::{SYNCED_THROUGH_FILE, SyncedRecord};

mod clean;
mod read;
mod recovery;

pub use clean::CleanProgress;

use read::BatchRead;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How many times [`PartitionLog::read`] reads a first batch that fails its checks
/// before it calls the batch corrupt (and truncations, which refuse a corrupt batch
/// before they change anything, try again as often).
pub const READ_ATTEMPTS: u32 = 3;

/// How many reads [`PartitionLog::damage_confirmed`] makes of a batch before it
/// calls the batch damaged on the medium: with a read fault rate of even 10% per read,
/// 16 bad reads in a row of a good batch happen once in 10^16.
pub const DAMAGE_CONFIRM_READS: u32 = 16;

/// The header of the batch at `position` of a segment file whose batches end at `end`,
/// unchecked but where the walk expects it: based at `expected` and ending by `end`.
fn next_header(
    disk: &mut impl Disk,
    file: FileId,
    position: u64,
    end: u64,
    expected: i64,
) -> Result<BatchHeader, LogError> {
    let mut header_bytes = [0u8; batch::BATCH_HEADER_BYTES];
    let read = read_fully(disk, file, position, &mut header_bytes)?;
    let available = (end - position) as usize;
    let corrupt = |reason: String| LogError::Corrupt {
        offset: expected,
        reason,
    };
    let header = BatchHeader::parse(&header_bytes[..read.min(available)])
        .map_err(|error| corrupt(error.to_string()))?;
    if header.base_offset != expected || header.size_bytes() > end - position {
        return Err(corrupt(format!("bad batch at position {position}")));
    }
    Ok(header)
}

/// Runs `operation` again while it fails with `Corrupt`, up to [`READ_ATTEMPTS`] runs:
/// a bit flipped on one read reads right the next time. Only for operations that
/// change nothing when they fail that way.
fn retry_corrupt(mut operation: impl FnMut() -> Result<(), LogError>) -> Result<(), LogError> {
    let mut attempt = 1;
    loop {
        match operation() {
            Err(LogError::Corrupt { .. }) if attempt < READ_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

/// Per-topic storage settings, with Kafka's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment is rolled before it would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: a non-empty segment older than this is rolled.
    pub segment_ms: i64,
    /// `retention.ms`: segments whose newest batch is older are deleted; -1 = unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest segments are deleted while the log is larger; -1 = unlimited.
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: u32,
    /// `index.interval.bytes`: bytes of batches between two index entries.
    pub index_interval_bytes: u32,
    /// Keep a synced-through record ([`crate::synced`]) and call durable only what it
    /// covers, so that recovery tells damage anywhere in the synced bytes from a torn
    /// write (decision 0010). Costs a second sync per round and one more round of
    /// latency; for replicated partitions, whose replicas can repair damage. Not a
    /// topic setting: the node sets it from the replica count.
    pub synced_record: bool,
    /// `cleanup.policy`: what happens to old segments (delete, compact, or both).
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long a tombstone stays after the cleaner first
    /// passed it (its delete horizon, `docs/storage.md` §13).
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`, in per mille: the cleaner runs once the dirty part
    /// is at least this share of the cleanable log (Kafka's 0.5 is 500).
    pub min_cleanable_dirty_ratio_per_mille: u32,
    /// `min.compaction.lag.ms`: a segment whose newest batch is younger is not
    /// cleaned yet.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment whose newest batch is older is
    /// cleaned even below the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `message.timestamp.type=LogAppendTime`: the leader stamps each batch it appends
    /// with its own clock (else `CreateTime`: the producer's timestamps stay).
    pub log_append_time: bool,
    /// Deliberate bugs for the simulator's mutation tests (feature `mutants` only).
    #[cfg(feature = "mutants")]
    pub mutants: crate::mutants::Mutants,
}

/// `cleanup.policy`: Kafka's `delete`, `compact` or `compact,delete`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Retention (`retention.ms`, `retention.bytes`) deletes old segments.
    #[default]
    Delete,
    /// The cleaner keeps the newest record of every key; retention deletes nothing.
    Compact,
    /// Both: the cleaner compacts, and retention deletes old segments.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether the log cleaner runs.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Whether `retention.ms` and `retention.bytes` delete segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            synced_record: false,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio_per_mille: 500,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            log_append_time: false,
            #[cfg(feature = "mutants")]
            mutants: crate::mutants::Mutants::default(),
        }
    }
}

impl LogConfig {
    fn segment_bytes_effective(&self) -> u64 {
        self.segment_bytes
            .clamp(SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX)
    }
}

/// What [`PartitionLog::open`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// First offset of the log after recovery.
    pub log_start_offset: i64,
    /// Next offset to assign after recovery.
    pub log_end_offset: i64,
    /// Segments in the log.
    pub segments: usize,
    /// Set when recovery cut a torn or corrupt tail.
    pub truncation: Option<Truncation>,
}

/// A cut recovery made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// Path of the segment file that was cut (or, for a gap, the first one removed).
    pub segment: String,
    /// Byte position of the cut in that file.
    pub position: u64,
    /// First offset lost, as far as the log can tell.
    pub offset: i64,
    /// Why the bytes at `position` were not accepted.
    pub reason: String,
    /// Bytes removed, this segment's tail and all later segments together.
    pub bytes_removed: u64,
    /// The cut fell inside bytes the segment's index files, or the synced-through
    /// record ([`LogConfig::synced_record`]), proved durable: damage on the medium
    /// (rot, a misdirected write), not a torn write. Records this replica
    /// may have acknowledged are gone (decision 0010; see [`PartitionLog::open_with`]).
    pub damaged: bool,
}

/// A successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The batch was written at these offsets (not durable yet).
    Appended {
        /// Offset of the batch's first record.
        base_offset: i64,
        /// Offset of the batch's last record.
        last_offset: i64,
        /// The batch's `max_timestamp`.
        max_timestamp: i64,
    },
    /// An idempotent producer re-sent a batch that is already in the log (one of the
    /// last 5 per producer): nothing written, here is where it went.
    Duplicate {
        /// Offset of the batch's first record.
        base_offset: i64,
        /// Offset of the batch's last record.
        last_offset: i64,
        /// The stored batch's `max_timestamp` (its append time, with LogAppendTime).
        max_timestamp: i64,
    },
}

/// Why an append was refused. Nothing of a refused batch is left in the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Malformed batch or bad CRC (Kafka `CORRUPT_MESSAGE`).
    #[error("invalid batch: {0}")]
    Batch(BatchError),
    /// Bigger than `max.message.bytes` (Kafka `MESSAGE_TOO_LARGE`).
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// Size of the batch.
        size: u64,
        /// The limit.
        max: u32,
    },
    /// Sequence gap or reordering (Kafka `OUT_OF_ORDER_SEQUENCE_NUMBER`).
    #[error(
        "out of order sequence for producer {producer_id}: expected {expected}, received {received}"
    )]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The base sequence the log expected.
        expected: i32,
        /// The base sequence of the batch.
        received: i32,
    },
    /// A fenced producer epoch (Kafka `INVALID_PRODUCER_EPOCH`).
    #[error(
        "invalid producer epoch for producer {producer_id}: current {current}, received {received}"
    )]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The producer's current epoch.
        current: i16,
        /// The batch's epoch.
        received: i16,
    },
    /// A record without a key, in a compacted log (Kafka `INVALID_RECORD`): the
    /// cleaner keeps the newest record of every key, and such a record has none.
    #[error("a compacted topic cannot accept a record without a key")]
    KeylessRecord,
    /// The disk refused the write (`ENOSPC`, `EIO`); the log is unchanged.
    #[error("disk error: {0}")]
    Disk(DiskError),
    /// The log is offline after a failed sync; reopen it to recover.
    #[error("log is offline after a failed sync")]
    Failed,
}

/// Why a read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// First offset of the log.
        log_start_offset: i64,
        /// Next offset to assign.
        log_end_offset: i64,
    },
    /// The first batch to return failed its checks; it is never served.
    #[error("corrupt batch at offset {offset}: {reason}")]
    Corrupt {
        /// Offset where the corrupt batch was expected to start.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
    /// The disk failed the read.
    #[error("disk error: {0}")]
    Disk(DiskError),
    /// The log is offline after a failed sync.
    #[error("log is offline after a failed sync")]
    Failed,
}

/// Errors of the log's maintenance operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The disk failed.
    #[error("disk error: {0}")]
    Disk(#[from] DiskError),
    /// The log is offline after a failed sync (or a failed truncation); reopen it.
    #[error("log is offline after a failed sync")]
    Failed,
    /// The offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// First offset of the log.
        log_start_offset: i64,
        /// Next offset to assign.
        log_end_offset: i64,
    },
    /// A batch needed for the operation failed its checks.
    #[error("corrupt batch at offset {offset}: {reason}")]
    Corrupt {
        /// Offset where the corrupt batch was expected.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
}

/// Whole batches read from the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, concatenated, each CRC-checked.
    pub bytes: Vec<u8>,
    /// Base offset of the first batch returned.
    pub first_offset: Option<i64>,
    /// Offset after the last batch returned (the offset asked for if none).
    pub next_offset: i64,
}

/// What [`PartitionLog::maintain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Segments deleted by retention.
    pub segments_deleted: usize,
    /// Bytes of the deleted segments' data files.
    pub bytes_deleted: u64,
    /// Whether `segment.ms` rolled the active segment.
    pub rolled: bool,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

/// Where a segment is on its way from active to trusted-by-recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SealState {
    /// Takes appends.
    Active,
    /// Rolled; its data is not known durable yet.
    Rolled,
    /// Data durable; its index files are to be written.
    NeedsIndex,
    /// Index files written, their sync is in flight.
    IndexSyncing,
    /// Index files durable: recovery trusts the segment without checking CRCs.
    Sealed,
}

#[derive(Clone, Debug)]
struct Segment {
    base_offset: i64,
    next_offset: i64,
    size_bytes: u64,
    file: Option<FileId>,
    /// `(base offset of a batch, its position)`, sparse, increasing.
    offset_index: Vec<(i64, u64)>,
    /// `(largest timestamp up to and including the batch, base offset of the batch)`,
    /// sparse, both increasing.
    time_index: Vec<(i64, i64)>,
    bytes_since_index_entry: u64,
    /// `(max timestamp, base offset of its batch)`, `None` while empty.
    max_timestamp: Option<(i64, i64)>,
    /// Wall clock time of the first append, for `segment.ms`.
    first_append_ms: Option<i64>,
    /// `partition_leader_epoch` of the last batch, `None` while empty: what retention
    /// persists as the epoch before the new log start when it deletes the segment.
    last_epoch: Option<i32>,
    state: SealState,
    /// Written (or truncated) since the last sync round started.
    dirty: bool,
}

impl Segment {
    fn new(base_offset: i64) -> Segment {
        Segment {
            base_offset,
            next_offset: base_offset,
            size_bytes: 0,
            file: None,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index_entry: 0,
            max_timestamp: None,
            first_append_ms: None,
            last_epoch: None,
            state: SealState::Active,
            dirty: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.next_offset == self.base_offset
    }

    /// Accounts for a batch at `position` (appended, or found by a scan).
    fn add_batch(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u32) {
        assert_eq!(position, self.size_bytes);
        assert_eq!(header.base_offset, self.next_offset);
        let size = header.size_bytes();
        // A control batch (a leader-change marker) is not a record anyone looks up by
        // time: its timestamp is the election's, and would send a lookup to the marker.
        let max_so_far = match self.max_timestamp {
            Some((ts, _)) if header.is_control() || ts >= header.max_timestamp => Some(ts),
            None if header.is_control() => None,
            _ => {
                self.max_timestamp = Some((header.max_timestamp, header.base_offset));
                Some(header.max_timestamp)
            }
        };
        if self.bytes_since_index_entry >= u64::from(index_interval_bytes)
            && self.offset_index.len() < INDEX_ENTRIES_MAX
        {
            self.offset_index.push((header.base_offset, position));
            self.bytes_since_index_entry = 0;
            if let Some(max_so_far) = max_so_far
                && self
                    .time_index
                    .last()
                    .is_none_or(|(ts, _)| *ts < max_so_far)
            {
                self.time_index.push((max_so_far, header.base_offset));
            }
        }
        self.bytes_since_index_entry += size;
        self.size_bytes += size;
        self.next_offset = header.next_offset();
        self.last_epoch = Some(header.partition_leader_epoch);
    }

    /// Where to start scanning for `offset`: the last index entry at or before it.
    fn lookup(&self, offset: i64) -> (i64, u64) {
        let at = self.offset_index.partition_point(|(o, _)| *o <= offset);
        if at == 0 {
            (self.base_offset, 0)
        } else {
            self.offset_index[at - 1]
        }
    }

    /// The bytes of both index files (offset index, then time index), each with the
    /// checksummed trailer that lets recovery trust the segment.
    fn encoded_index_files(&self) -> [(SegmentFileKind, Vec<u8>); 2] {
        let summary = self.summary();
        let offsets: Vec<(i64, i64)> = self
            .offset_index
            .iter()
            .map(|(o, p)| (*o, *p as i64))
            .collect();
        [
            (
                SegmentFileKind::OffsetIndex,
                encode_index(SegmentFileKind::OffsetIndex, &offsets, &summary),
            ),
            (
                SegmentFileKind::TimeIndex,
                encode_index(SegmentFileKind::TimeIndex, &self.time_index, &summary),
            ),
        ]
    }

    fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            base_offset: self.base_offset,
            valid_bytes: self.size_bytes,
            next_offset: self.next_offset,
            max_timestamp: self.max_timestamp.map_or(i64::MIN, |(ts, _)| ts),
            offset_of_max_timestamp: self.max_timestamp.map_or(-1, |(_, o)| o),
        }
    }
}

#[derive(Clone, Debug)]
struct SyncRound {
    pending: BTreeSet<IoId>,
    /// `durable_offset` once every sync of the round is `Ok`.
    target_offset: i64,
    /// Base offsets of the segments whose data files the round syncs.
    data_segments: Vec<i64>,
    /// Base offsets of the segments whose index files the round syncs.
    sealing_segments: Vec<i64>,
    /// The offset the round writes into the synced-through record (and syncs), if any.
    record: Option<i64>,
}

/// One partition's log: a directory of segments on a [`Disk`].
#[derive(Debug)]
pub struct PartitionLog {
    dir: String,
    config: LogConfig,
    /// Sorted by base offset, contiguous; the last one is the active segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
    /// The `partition_leader_epoch` of the batch just below `log_start_offset`, when it is
    /// known: see [`PartitionLog::epoch_before_start`].
    epoch_before_start: Option<i32>,
    durable_offset: i64,
    /// Every offset below this was synced. `durable_offset` is the same without a
    /// synced-through record, and trails it by a round with one.
    synced_offset: i64,
    /// The synced-through record, open ([`LogConfig::synced_record`]).
    record: Option<SyncedRecord>,
    failure: Option<DiskError>,
    producers: ProducerStates,
    round: Option<SyncRound>,
    /// Entries were created in the directory since the last directory sync started.
    dir_dirty: bool,
    /// Base offsets of non-active segments whose files are open, least recent first.
    open_segments: Vec<i64>,
    /// Below this offset the cleaner may have removed records; every record at or
    /// above it is as appended. `i64::MIN` before the first cleaning. Persisted in the
    /// cleaner checkpoint before a pass swaps its first segment in.
    cleaned_through: i64,
    /// Kafka's first dirty offset: every finished pass cleaned below it; the next one
    /// maps the log from here. Persisted in the cleaner checkpoint when a pass ends.
    first_dirty_offset: i64,
    /// The cleaning pass under way, if one is ([`PartitionLog::clean_step`]).
    cleaning: Option<clean::Pass>,
}

impl PartitionLog {
    /// Opens or creates the log in directory `dir` (relative path on the Disk, e.g.
    /// "my_topic-0"), recovering from whatever a crash left (see `docs/storage.md`).
    /// Everything the log holds afterwards is durable.
    pub fn open(
        disk: &mut impl Disk,
        dir: &str,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<(PartitionLog, OpenReport), LogError> {
        Self::open_with(disk, dir, config, now_ms, &mut |_, _| Ok(()))
    }

    /// [`PartitionLog::open`], calling `on_damage(disk, offset)` before recovery cuts
    /// a batch that failed its check inside bytes the segment's index files or the
    /// synced-through record proved durable ([`Truncation::damaged`]): the offset is
    /// the first one lost. A replica
    /// records there, durably, that it lost records, before they are gone from its log
    /// (decision 0010). If it fails, the open fails and nothing is cut.
    pub fn open_with<D: Disk>(
        disk: &mut D,
        dir: &str,
        config: LogConfig,
        now_ms: i64,
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<(PartitionLog, OpenReport), LogError> {
        let dir = dir.trim_matches('/').to_string();
        assert!(!dir.is_empty(), "a partition needs its own directory");
        if !disk.exists(&dir) {
            disk.create_dir_all(&dir)?;
        }
        // Always, not only when the directory was just made: an earlier open may have
        // made it and failed (or crashed) before its entry was durable, and a directory
        // that exists in the page cache is lost at power loss with everything in it.
        disk.sync_dir_now(parent_dir(&dir))?;
        let mut log = PartitionLog {
            dir,
            config,
            segments: Vec::new(),
            log_start_offset: 0,
            epoch_before_start: None,
            durable_offset: 0,
            synced_offset: 0,
            record: None,
            failure: None,
            producers: ProducerStates::default(),
            round: None,
            dir_dirty: false,
            open_segments: Vec::new(),
            cleaned_through: i64::MIN,
            first_dirty_offset: i64::MIN,
            cleaning: None,
        };
        disk.recovery_hint(true);
        let recovered = log.recover(disk, now_ms, on_damage);
        disk.recovery_hint(false);
        let truncation = recovered?;
        let report = OpenReport {
            log_start_offset: log.log_start_offset,
            log_end_offset: log.log_end_offset(),
            segments: log.segments.len(),
            truncation,
        };
        log.check_invariants();
        Ok((log, report))
    }

    /// The partition directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the settings; they apply from the next append or maintenance.
    /// [`LogConfig::synced_record`] stays as the log was opened with.
    pub fn set_config(&mut self, config: LogConfig) {
        let synced_record = self.config.synced_record;
        self.config = LogConfig {
            synced_record,
            ..config
        };
    }

    /// The first offset of the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The next offset to assign.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Every offset below this is durable: its data and the directory entries of its
    /// segment files were synced and the completions arrived `Ok`, and, with a
    /// synced-through record ([`LogConfig::synced_record`]), the record says so durably.
    pub fn durable_offset(&self) -> i64 {
        self.durable_offset
    }

    /// The `partition_leader_epoch` of the batch just below the log start, if the log
    /// knows it; `None` at log start 0 (nothing is below).
    ///
    /// A replica needs it (Raft's "last included term"): followers are matched against
    /// the epoch of the entry before the first one sent, and an emptied log still has to
    /// say how up to date it is. No batch header is left to scan for it once retention
    /// or [`PartitionLog::reset`] moved the log start, so the log persists it beside the
    /// log start offset (`leader-epoch.checkpoint`), written before the log start moves.
    /// `None` also if that file was lost or damaged.
    pub fn epoch_before_start(&self) -> Option<i32> {
        self.epoch_before_start
    }

    /// `Some` once a sync failed: the log then refuses appends and reads until reopened.
    pub fn failure(&self) -> Option<&DiskError> {
        self.failure.as_ref()
    }

    /// Producer state: epoch, last sequence and cached batches of `producer_id`.
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.producers.entry(producer_id)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Total bytes of all segments' data.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    /// Validates the batch, checks idempotent-producer sequence and epoch, assigns
    /// offsets from `log_end_offset` and `leader_epoch`, and writes it at the end of the
    /// active segment (rolling first if `segment.bytes` would be exceeded or `segment.ms`
    /// elapsed). Not durable until a sync round covering it completes.
    pub fn append(
        &mut self,
        disk: &mut impl Disk,
        batch: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        if self.failure.is_some() {
            return Err(AppendError::Failed);
        }
        let max = self.config.max_message_bytes;
        if batch.len() as u64 > u64::from(max) {
            return Err(AppendError::TooLarge {
                size: batch.len() as u64,
                max,
            });
        }
        let header = batch::validate(batch, max).map_err(AppendError::Batch)?;
        if self.config.cleanup_policy.compacts() && has_keyless_record(batch, &header) {
            return Err(AppendError::KeylessRecord);
        }
        if header.producer_id >= 0 {
            match self.producers.check(&header) {
                SequenceCheck::Accept => {}
                SequenceCheck::Duplicate {
                    base_offset,
                    last_offset,
                    max_timestamp,
                } => {
                    return Ok(AppendOutcome::Duplicate {
                        base_offset,
                        last_offset,
                        max_timestamp,
                    });
                }
                SequenceCheck::InvalidEpoch { current } => {
                    return Err(AppendError::InvalidProducerEpoch {
                        producer_id: header.producer_id,
                        current,
                        received: header.producer_epoch,
                    });
                }
                SequenceCheck::OutOfOrder { expected } => {
                    return Err(AppendError::OutOfOrderSequence {
                        producer_id: header.producer_id,
                        expected,
                        received: header.base_sequence,
                    });
                }
            }
        }
        self.make_room(disk, header.size_bytes(), now_ms)?;
        let base_offset = self.log_end_offset();
        batch::assign(batch, base_offset, leader_epoch);
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch: leader_epoch,
            ..header
        };
        self.write_at_end(disk, batch, &header, now_ms)?;
        Ok(AppendOutcome::Appended {
            base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        })
    }

    /// A follower's append: `batch` is a whole batch its leader already wrote, carrying
    /// its base offset and partition leader epoch, and it must start at
    /// `log_end_offset()`. Framing and CRC are checked (not `max.message.bytes`: the
    /// leader took the batch, and a follower that refused it could never catch up); the
    /// idempotent-producer checks are not (the follower copies the leader, duplicates
    /// and all), but the producer state is recorded, so a follower that becomes leader
    /// deduplicates retries as its predecessor would have. Rolls, writes and indexes
    /// exactly like [`PartitionLog::append`]. Not durable until a sync round covering
    /// it completes.
    pub fn append_replicated(
        &mut self,
        disk: &mut impl Disk,
        batch: &[u8],
        now_ms: i64,
    ) -> Result<(), AppendError> {
        if self.failure.is_some() {
            return Err(AppendError::Failed);
        }
        // A compacted leader sends what its cleaner left: batches holding fewer
        // records than offsets, and fillers holding none.
        let header = batch::validate_stored(batch, u32::MAX).map_err(AppendError::Batch)?;
        if header.base_offset != self.log_end_offset() {
            // No variant of its own: `AppendError` is matched exhaustively by the Kafka
            // error mapping, and a follower's caller checks the offset before (this is
            // the backstop that keeps a gap or an overlap out of the log).
            return Err(AppendError::Batch(BatchError::InvalidHeader {
                reason: "a replicated batch must start at the log end offset",
            }));
        }
        self.make_room(disk, header.size_bytes(), now_ms)?;
        self.write_at_end(disk, batch, &header, now_ms)
    }

    /// Rolls the active segment first if a batch of `size` bytes would overflow
    /// `segment.bytes` or `segment.ms` elapsed (an empty segment is never rolled).
    fn make_room(
        &mut self,
        disk: &mut impl Disk,
        size: u64,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        let active = self.active();
        let full = active.size_bytes + size > self.config.segment_bytes_effective();
        let old = active
            .first_append_ms
            .is_some_and(|first| now_ms.saturating_sub(first) > self.config.segment_ms);
        if !active.is_empty() && (full || old) {
            self.roll(disk).map_err(AppendError::Disk)?;
        }
        Ok(())
    }

    /// Writes a checked batch whose `header` (offsets assigned) starts at the log end
    /// offset at the end of the active segment, indexes it and records its producer.
    /// On a disk error the log is unchanged (or offline).
    fn write_at_end(
        &mut self,
        disk: &mut impl Disk,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        assert_eq!(header.base_offset, self.log_end_offset());
        assert_eq!(header.size_bytes(), batch.len() as u64);
        let index = self.segments.len() - 1;
        let file = self.segment_file(disk, index).map_err(AppendError::Disk)?;
        let position = self.segments[index].size_bytes;
        if let Err(error) = disk.write_at(file, position, batch) {
            // A failed write may have left a prefix: cut it so the log is unchanged.
            self.segments[index].dirty = true;
            if let Err(truncate_error) = disk.truncate(file, position) {
                // Recovery would cut the prefix (it cannot be a whole batch), but the
                // log can no longer tell what is on disk: take it offline.
                self.failure = Some(truncate_error);
            }
            return Err(AppendError::Disk(error));
        }
        let interval = self.config.index_interval_bytes;
        let segment = &mut self.segments[index];
        segment.add_batch(position, header, interval);
        segment.first_append_ms.get_or_insert(now_ms);
        segment.dirty = true;
        self.producers.record(header);
        Ok(())
    }

    /// Group commit: if appended bytes are not durable (or rolled segments wait for
    /// their index files, or the synced-through record for what the last round
    /// synced) and no round is in flight, starts syncs covering everything appended so
    /// far and returns their ids; otherwise returns an empty `Vec`.
    pub fn start_sync(&mut self, disk: &mut impl Disk) -> Vec<IoId> {
        if self.failure.is_some() || self.round.is_some() {
            return Vec::new();
        }
        let record = self.start_record_write(disk);
        let mut ids: Vec<IoId> = record.iter().map(|&(_, id)| id).collect();
        let (data_segments, target_offset) = self.start_data_syncs(disk, &mut ids);
        let sealing_segments = self.start_index_writes(disk, &mut ids);
        if self.dir_dirty && self.failure.is_none() {
            ids.push(disk.sync_dir(&self.dir));
            self.dir_dirty = false;
        }
        assert!(ids.len() <= SYNCS_IN_FLIGHT_MAX);
        if ids.is_empty() {
            return ids;
        }
        self.round = Some(SyncRound {
            pending: ids.iter().copied().collect(),
            target_offset,
            data_segments,
            sealing_segments,
            record: record.map(|(offset, _)| offset),
        });
        ids
    }

    /// Writes into the synced-through record what earlier rounds synced, and starts
    /// its sync: the offset written and the sync's id, `None` if there is nothing new
    /// to record (or no record, or the write failed).
    fn start_record_write(&mut self, disk: &mut impl Disk) -> Option<(i64, IoId)> {
        // What earlier rounds synced goes into the record now; the record is never
        // written before the data it names is durable.
        let synced = self.record.as_mut()?;
        if self.synced_offset <= synced.recorded {
            return None;
        }
        // A failed write retries with the next round (the other slot stays whole).
        synced.write_next(disk, self.synced_offset).ok()?;
        Some((self.synced_offset, disk.sync(synced.file())))
    }

    /// Starts the syncs of the segments whose data needs one (at most
    /// [`SYNC_ROUND_SEGMENTS_MAX`]), adding their ids to `ids`. Returns their base
    /// offsets and the offset the round makes durable.
    fn start_data_syncs(&mut self, disk: &mut impl Disk, ids: &mut Vec<IoId>) -> (Vec<i64>, i64) {
        // Segments whose data needs a sync: dirty ones, and rolled ones (whose sync
        // proves their data durable before their index is written). They form a suffix.
        let mut data_indexes: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments[i].dirty || self.segments[i].state == SealState::Rolled)
            .collect();
        let mut target_offset = self.log_end_offset();
        if data_indexes.len() > SYNC_ROUND_SEGMENTS_MAX {
            data_indexes.truncate(SYNC_ROUND_SEGMENTS_MAX);
            let last = *data_indexes.last().expect("non-empty");
            target_offset = self.segments[last].next_offset;
        }
        if data_indexes.is_empty() {
            assert_eq!(self.synced_offset, self.log_end_offset());
        }
        let mut data_segments = Vec::new();
        for index in data_indexes {
            match self.segment_file(disk, index) {
                Ok(file) => {
                    ids.push(disk.sync(file));
                    self.segments[index].dirty = false;
                    data_segments.push(self.segments[index].base_offset);
                }
                Err(error) => {
                    // Without the file there is no way to make it durable.
                    self.failure = Some(error);
                    break;
                }
            }
        }
        if self.failure.is_some() {
            target_offset = self.synced_offset;
        }
        (data_segments, target_offset)
    }

    /// Writes the index files of rolled segments whose data is durable (at most
    /// [`SYNC_ROUND_SEALS_MAX`]) and starts their syncs, adding the ids to `ids`.
    /// Returns the base offsets of the segments being sealed.
    fn start_index_writes(&mut self, disk: &mut impl Disk, ids: &mut Vec<IoId>) -> Vec<i64> {
        let mut sealing_segments = Vec::new();
        let needs_index: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments[i].state == SealState::NeedsIndex)
            .take(SYNC_ROUND_SEALS_MAX)
            .collect();
        for index in needs_index {
            if self.failure.is_some() {
                break;
            }
            if let Some(mut index_ids) = self.write_index_files(disk, index) {
                ids.append(&mut index_ids);
                self.segments[index].state = SealState::IndexSyncing;
                sealing_segments.push(self.segments[index].base_offset);
                self.dir_dirty = true;
            }
        }
        sealing_segments
    }

    /// Whether a sync round is in flight.
    pub fn sync_in_flight(&self) -> bool {
        self.round.is_some()
    }

    /// Feeds a completion of one of the ids [`PartitionLog::start_sync`] returned.
    /// Returns true if `durable_offset` advanced. An `Err` marks the log failed
    /// (fsyncgate: a later successful sync proves nothing about the data it covered).
    pub fn on_sync_complete(&mut self, completion: &DiskCompletion) -> bool {
        let Some(round) = &mut self.round else {
            return false;
        };
        if !round.pending.remove(&completion.io) {
            return false;
        }
        if let Err(error) = &completion.result {
            self.failure.get_or_insert_with(|| error.clone());
            self.round = None;
            return false;
        }
        if !round.pending.is_empty() {
            return false;
        }
        let round = self.round.take().expect("round in flight");
        if self.failure.is_some() {
            return false;
        }
        for base in round.data_segments {
            if let Some(segment) = self.segments.iter_mut().find(|s| s.base_offset == base)
                && segment.state == SealState::Rolled
                && !segment.dirty
            {
                segment.state = SealState::NeedsIndex;
            }
        }
        for base in round.sealing_segments {
            if let Some(segment) = self.segments.iter_mut().find(|s| s.base_offset == base)
                && segment.state == SealState::IndexSyncing
            {
                segment.state = SealState::Sealed;
            }
        }
        let before = self.durable_offset;
        let target = round.target_offset.min(self.log_end_offset());
        self.synced_offset = self.synced_offset.max(target);
        if let (Some(record), Some(claim)) = (&mut self.record, round.record) {
            record.recorded = record.recorded.max(claim);
        }
        self.advance_durable();
        self.check_invariants();
        self.durable_offset > before
    }

    /// Raises `durable_offset` to what is synced and, with a synced-through record,
    /// named by the record durably.
    fn advance_durable(&mut self) {
        let durable = match &self.record {
            None => self.synced_offset,
            Some(record) => record.recorded.min(self.synced_offset),
        };
        self.durable_offset = self.durable_offset.max(durable);
    }

    /// Reads whole batches starting with the one that contains `offset`, stopping
    /// before any batch whose last offset is `>= max_offset` (the high watermark) and
    /// once `max_bytes` is reached, but returning at least one whole batch if one is
    /// readable (KIP-74). Every batch returned passed its CRC check; a corrupt first
    /// batch is `Err(Corrupt)`, a later one ends the read before it.
    ///
    /// A first batch that fails its checks is read again, up to [`READ_ATTEMPTS`] reads
    /// in all: a bit flipped on the way (a transient fault) reads right the next time,
    /// and only damage on the medium is `Corrupt` every time. A replicated partition
    /// treats a `Corrupt` from here as lost data (decision 0010), so it must not be a
    /// fluke.
    pub fn read(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
        max_offset: i64,
        max_bytes: u32,
    ) -> Result<ReadResult, ReadError> {
        let mut attempt = 1;
        loop {
            match self.read_once(disk, offset, max_offset, max_bytes) {
                Err(ReadError::Corrupt { .. }) if attempt < READ_ATTEMPTS => attempt += 1,
                result => return result,
            }
        }
    }

    /// One read of [`PartitionLog::read`], without its retries: the walk over the
    /// segments; [`read::BatchRead`] walks the batches of each.
    fn read_once(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
        max_offset: i64,
        max_bytes: u32,
    ) -> Result<ReadResult, ReadError> {
        if self.failure.is_some() {
            return Err(ReadError::Failed);
        }
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(ReadError::OffsetOutOfRange {
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        if offset == log_end_offset || offset >= max_offset {
            return Ok(ReadResult {
                bytes: Vec::new(),
                first_offset: None,
                next_offset: offset,
            });
        }
        #[cfg(feature = "mutants")]
        let skip_crc = self.config.mutants.skip_read_crc;
        #[cfg(not(feature = "mutants"))]
        let skip_crc = false;
        let mut index = self.segment_index(offset);
        let (expected, mut position) = self.segments[index].lookup(offset);
        let mut read = BatchRead::new(offset, max_offset, max_bytes, skip_crc, expected);
        while index < self.segments.len() {
            let file = self.segment_file(disk, index).map_err(ReadError::Disk)?;
            let end = self.segments[index].size_bytes;
            if !read.read_segment(disk, file, position, end)? {
                break;
            }
            index += 1;
            position = 0;
            if let Some(next) = self.segments.get(index)
                && next.base_offset != read.expected()
            {
                // The last header of the segment lied about its offsets.
                read.fail_if_nothing_served(format!(
                    "segment ends at offset {}, the next one starts at {}",
                    read.expected(),
                    next.base_offset
                ))?;
                break;
            }
        }
        Ok(read.into_result())
    }

    /// ListOffsets by timestamp: the offset and timestamp of the first record created
    /// at or after `timestamp`, in the first data batch (wholly below `max_offset`) that
    /// has one ([`batch::first_record_at_or_after`]: a compressed batch answers its
    /// base offset); `None` if there is none. Control batches are passed over. Uses the
    /// time index, then scans.
    pub fn offset_for_timestamp(
        &mut self,
        disk: &mut impl Disk,
        timestamp: i64,
        max_offset: i64,
    ) -> Result<Option<(i64, i64)>, ReadError> {
        if self.failure.is_some() {
            return Err(ReadError::Failed);
        }
        for index in 0..self.segments.len() {
            let segment = &self.segments[index];
            if segment.base_offset >= max_offset {
                return Ok(None);
            }
            if segment.max_timestamp.is_none_or(|(ts, _)| ts < timestamp) {
                continue;
            }
            // Every batch up to and including an entry's batch has a max timestamp
            // <= the entry's: start from the last entry still below the target.
            let at = segment
                .time_index
                .partition_point(|(ts, _)| *ts < timestamp);
            let start_offset = if at == 0 {
                segment.base_offset
            } else {
                segment.time_index[at - 1].1
            };
            let (mut expected, mut position) = segment.lookup(start_offset);
            let end = segment.size_bytes;
            let file = self.segment_file(disk, index).map_err(ReadError::Disk)?;
            while position < end {
                let corrupt = |reason: String| ReadError::Corrupt {
                    offset: expected,
                    reason,
                };
                let header =
                    next_header(disk, file, position, end, expected).map_err(
                        |error| match error {
                            LogError::Disk(error) => ReadError::Disk(error),
                            other => corrupt(other.to_string()),
                        },
                    )?;
                if header.last_offset() >= max_offset {
                    return Ok(None);
                }
                if !header.is_control() && header.max_timestamp >= timestamp {
                    // The timestamp is covered by the CRC: check it before trusting it.
                    let mut body = vec![0u8; header.size_bytes() as usize];
                    read_fully(disk, file, position, &mut body).map_err(ReadError::Disk)?;
                    batch::validate_stored(&body, u32::MAX)
                        .map_err(|error| corrupt(error.to_string()))?;
                    let found = batch::first_record_at_or_after(&body, timestamp)
                        .map_err(|error| corrupt(error.to_string()))?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                position += header.size_bytes();
                expected = header.next_offset();
            }
        }
        Ok(None)
    }

    /// The largest `max_timestamp` of a data batch in the log and the base offset of
    /// the batch that has it (the earliest such batch), `None` if the log holds no
    /// data batch. Control batches do not count.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for segment in &self.segments {
            if let Some((ts, offset)) = segment.max_timestamp
                && best.is_none_or(|(best_ts, _)| ts > best_ts)
            {
                best = Some((ts, offset));
            }
        }
        best
    }

    /// Time-based roll (`segment.ms`) and retention (`retention.ms` by each segment's
    /// largest timestamp, `retention.bytes` by total size). Deletes whole segments,
    /// never the active one and never one holding offsets `>= durable_offset`; persists
    /// the epoch before the new log start ([`PartitionLog::epoch_before_start`]) and the
    /// new `log_start_offset` before deleting any file.
    pub fn maintain(
        &mut self,
        disk: &mut impl Disk,
        now_ms: i64,
    ) -> Result<MaintenanceReport, LogError> {
        self.maintain_below(disk, now_ms, i64::MAX)
    }

    /// [`PartitionLog::maintain`] that also never deletes a segment holding an offset
    /// `>= offset_max`. A replicated partition passes its high watermark: only committed
    /// offsets may go (Kafka's retention stops at the high watermark too).
    pub fn maintain_below(
        &mut self,
        disk: &mut impl Disk,
        now_ms: i64,
        offset_max: i64,
    ) -> Result<MaintenanceReport, LogError> {
        let mut report = self.fresh_report()?;
        let active = self.active();
        if !active.is_empty()
            && active
                .first_append_ms
                .is_some_and(|first| now_ms.saturating_sub(first) > self.config.segment_ms)
        {
            self.roll(disk)?;
            report.rolled = true;
        }
        if !self.config.cleanup_policy.deletes() {
            return Ok(report);
        }
        let delete_count = self.retention_delete_count(now_ms, offset_max);
        self.delete_oldest(disk, delete_count, &mut report)?;
        Ok(report)
    }

    /// Deletes every whole segment below `offset` (DeleteRecords moved the start clients
    /// see there), whatever the cleanup policy; never the active one nor one holding an
    /// offset at or above `durable_offset`. The segment holding `offset` stays: the
    /// caller keeps the records below `offset` in it from clients.
    pub fn delete_segments_below(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
    ) -> Result<MaintenanceReport, LogError> {
        let mut report = self.fresh_report()?;
        let deletable_end = self.durable_offset.min(offset);
        #[cfg(feature = "mutants")]
        let past_the_offset = self.config.mutants.delete_records_deletes_above_the_offset;
        #[cfg(not(feature = "mutants"))]
        let past_the_offset = false;
        let delete_count = self.segments[..self.segments.len() - 1]
            .iter()
            .take_while(|segment| {
                segment.next_offset <= deletable_end
                    || (past_the_offset && segment.base_offset < deletable_end)
            })
            .count();
        self.delete_oldest(disk, delete_count, &mut report)?;
        Ok(report)
    }

    /// A report of nothing done yet; `Err` if the log is offline.
    fn fresh_report(&self) -> Result<MaintenanceReport, LogError> {
        if self.failure.is_some() {
            return Err(LogError::Failed);
        }
        Ok(MaintenanceReport {
            log_start_offset: self.log_start_offset,
            ..MaintenanceReport::default()
        })
    }

    /// Deletes the `delete_count` oldest segments (none if 0): persists the epoch
    /// before the new log start and the new start before removing any file.
    fn delete_oldest(
        &mut self,
        disk: &mut impl Disk,
        delete_count: usize,
        report: &mut MaintenanceReport,
    ) -> Result<(), LogError> {
        if delete_count == 0 {
            return Ok(());
        }
        let new_start = self.segments[delete_count].base_offset;
        assert!(new_start > self.log_start_offset);
        // The cleaning pass under way planned with these segments.
        self.abort_cleaning(disk);
        // Before the log start moves: once it has, no header is left to tell the epoch.
        let epoch_before_new_start = self.segments[..delete_count]
            .iter()
            .rev()
            .find_map(|segment| segment.last_epoch);
        if let Some(epoch) = epoch_before_new_start {
            self.write_epoch_checkpoint(disk, new_start, epoch)?;
        }
        write_checkpoint(disk, &self.dir, new_start)?;
        self.log_start_offset = new_start;
        self.epoch_before_start = epoch_before_new_start;
        for segment in self.segments.drain(..delete_count).collect::<Vec<_>>() {
            report.segments_deleted += 1;
            report.bytes_deleted += segment.size_bytes;
            self.close_segment_file(disk, &segment);
            // The checkpoint already says these offsets are gone: a file that a crash
            // brings back is deleted again on open, so a failed remove is harmless.
            let _ = remove_segment_files(disk, &self.dir, segment.base_offset);
        }
        self.dir_dirty = true;
        report.log_start_offset = self.log_start_offset;
        self.check_invariants();
        Ok(())
    }

    /// How many segments, from the oldest, retention deletes now: while one is older
    /// than `retention.ms` or the log stays at least `retention.bytes` without it,
    /// never the active one nor one holding an offset at or above `offset_max` or
    /// `durable_offset`. A segment with no record timestamp (only control batches, or
    /// empty fillers) is no older than the next segment that has one, and goes by time
    /// only with it: deleting it at once would let each replica drop its first
    /// offsets on its own schedule.
    fn retention_delete_count(&self, now_ms: i64, offset_max: i64) -> usize {
        let mut total_bytes = self.size_bytes();
        let mut delete_count = 0;
        // Undated segments after the first `delete_count`, waiting for a verdict.
        let mut undated = 0;
        let deletable_end = self.durable_offset.min(offset_max);
        for segment in &self.segments[..self.segments.len() - 1] {
            if segment.next_offset > deletable_end {
                break;
            }
            let by_size = self.config.retention_bytes >= 0
                && total_bytes - segment.size_bytes >= self.config.retention_bytes as u64;
            let by_time = self.config.retention_ms >= 0
                && segment
                    .max_timestamp
                    .is_some_and(|(ts, _)| now_ms.saturating_sub(ts) > self.config.retention_ms);
            if segment.max_timestamp.is_none() && self.config.retention_ms >= 0 && !by_size {
                total_bytes -= segment.size_bytes;
                undated += 1;
                continue;
            }
            if !(by_time || by_size) {
                break;
            }
            total_bytes -= segment.size_bytes;
            delete_count += undated + 1;
            undated = 0;
        }
        delete_count
    }

    /// Removes every batch at or after `offset` (a follower truncating a divergent
    /// suffix). If `offset` falls inside a batch, that whole batch goes, except a
    /// cleaner's filler: its part below `offset` is written again (not yet durable:
    /// the next sync round covers it), so the log ends at `offset`. The cut is durable
    /// before it returns; on a disk error the log goes offline (reopen to recover).
    /// `durable_offset` drops to the cut at once, and a sync round already in flight
    /// completes no higher than the cut: it never vouches for bytes appended after.
    /// A batch that fails its checks refuses the cut before anything changes; it is
    /// read again as by [`PartitionLog::read`] before the error is returned.
    pub fn truncate_to(&mut self, disk: &mut impl Disk, offset: i64) -> Result<(), LogError> {
        retry_corrupt(|| self.truncate_once(disk, offset, true))
    }

    fn truncate_once(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
        keep_proof: bool,
    ) -> Result<(), LogError> {
        if self.failure.is_some() {
            return Err(LogError::Failed);
        }
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        if offset == log_end_offset {
            return Ok(());
        }
        let index = self.segment_index(offset);
        let (cut_position, cut) = self.find_batch_start(disk, index, offset)?;
        let cut_offset = cut.base_offset;
        // Producer state may name batches that are about to go: rebuild it from the
        // batches that stay, before anything changes (a corrupt one refuses the cut).
        let producers = self.producers_below(disk, cut_offset)?;
        self.cut(disk, index, cut_position, cut_offset, keep_proof)?;
        self.producers = producers;
        if cut.is_filler() && cut_offset < offset {
            // A filler holds no record: its part below `offset` is written again, so
            // the log ends exactly at `offset` (a Raft follower truncates at a batch
            // boundary of the log as appended, which may lie inside a filler that
            // merged several batches).
            self.refill(disk, &cut, offset)?;
        }
        self.check_invariants();
        Ok(())
    }

    /// Appends the part of filler `cut` below `end`, where the log now ends at its base.
    fn refill(
        &mut self,
        disk: &mut impl Disk,
        cut: &BatchHeader,
        end: i64,
    ) -> Result<(), LogError> {
        let timestamp = cut.max_timestamp;
        let filler = batch::build_filler(
            cut.base_offset,
            end - 1,
            cut.partition_leader_epoch,
            timestamp,
        );
        let header = batch::validate_stored(&filler, u32::MAX).expect("a filler is valid");
        self.write_at_end(disk, &filler, &header, timestamp)
            .map_err(|error| match error {
                AppendError::Disk(error) => LogError::Disk(error),
                _ => LogError::Failed,
            })
    }

    /// Whether the batch at `offset` fails its checks on each of
    /// [`DAMAGE_CONFIRM_READS`] reads: damage on the medium, not bits flipped on the
    /// way. A replica calls a batch lost (decision 0010) only after this says so: a
    /// replica that wrongly thinks it lost data stops voting until a leader restores
    /// it, and several doing so at once leave no majority. False if a read succeeds or
    /// fails otherwise.
    pub fn damage_confirmed(&mut self, disk: &mut impl Disk, offset: i64) -> bool {
        (0..DAMAGE_CONFIRM_READS).all(|_| {
            matches!(
                self.read_once(disk, offset, i64::MAX, 1),
                Err(ReadError::Corrupt { offset: at, .. }) if at == offset
            )
        })
    }

    /// Removes the batch starting at `offset`, which failed its checks on every read
    /// (rot on the medium, a misdirected write over it), and everything after it,
    /// durably: for a replica that fetches them again from its leader (decision 0010).
    /// Unlike [`PartitionLog::truncate_to`] it does not need the batch at the cut to be
    /// whole, only the batches before it. `offset` is where the batch starts (the
    /// offset of the `Corrupt` error that found it). A damaged batch below it refuses
    /// the cut with `Corrupt` at that batch's offset: cut there instead.
    pub fn cut_damaged(&mut self, disk: &mut impl Disk, offset: i64) -> Result<(), LogError> {
        retry_corrupt(|| self.cut_damaged_once(disk, offset))
    }

    fn cut_damaged_once(&mut self, disk: &mut impl Disk, offset: i64) -> Result<(), LogError> {
        if self.failure.is_some() {
            return Err(LogError::Failed);
        }
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset >= log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let index = self.segment_index(offset);
        let position = self.batch_position(disk, index, offset)?;
        let producers = self.producers_below(disk, offset)?;
        self.cut(disk, index, position, offset, true)?;
        self.producers = producers;
        self.check_invariants();
        Ok(())
    }

    /// The position in segment `index` of the batch that starts at `offset`, found by
    /// walking headers from the offset index's entry before it, without reading the
    /// batch at `offset` itself (it may be damaged).
    fn batch_position(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        offset: i64,
    ) -> Result<u64, LogError> {
        let (mut expected, mut position) = self.segments[index].lookup(offset);
        let end = self.segments[index].size_bytes;
        let file = self.segment_file(disk, index)?;
        while expected < offset && position < end {
            let header = next_header(disk, file, position, end, expected)?;
            position += header.size_bytes();
            expected = header.next_offset();
        }
        if expected != offset {
            return Err(LogError::Corrupt {
                offset: expected.min(offset),
                reason: format!("no batch starts at offset {offset}"),
            });
        }
        Ok(position)
    }

    /// The `(partition_leader_epoch, base_offset)` of every batch whose epoch differs
    /// from the one before it, oldest first, from a scan of the batch headers of every
    /// segment (batches a segment keeps below the log start included): the input of a
    /// replica's leader epoch cache, rebuilt at open. Reads one header per batch, no
    /// CRCs. A header that does not follow its predecessor is `Corrupt`: a cache built
    /// from part of the log would answer epoch questions wrongly.
    pub fn batch_epochs(&mut self, disk: &mut impl Disk) -> Result<Vec<(i32, i64)>, LogError> {
        if self.failure.is_some() {
            return Err(LogError::Failed);
        }
        let mut epochs: Vec<(i32, i64)> = Vec::new();
        let stop = self.scan_headers(disk, false, &mut |header| {
            if epochs
                .last()
                .is_none_or(|&(epoch, _)| epoch != header.partition_leader_epoch)
            {
                epochs.push((header.partition_leader_epoch, header.base_offset));
            }
        })?;
        if let Some((offset, reason)) = stop {
            return Err(LogError::Corrupt { offset, reason });
        }
        Ok(epochs)
    }

    /// Drops every segment and starts the log empty at `start_offset` (a new, empty
    /// active segment based there), remembering `epoch_before_start` as the epoch of the
    /// batch below it ([`PartitionLog::epoch_before_start`]). A follower does this when
    /// its log cannot meet its leader's above the leader's log start. `start_offset`
    /// may not be below the log start. Durable before it returns (blocking syncs: rare).
    ///
    /// Crash safety: it first cuts the batch holding `start_offset - 1` and everything
    /// after it (durably, like [`PartitionLog::truncate_to`]), then persists the epoch,
    /// then the log start offset, then removes the files. A crash leaves either that
    /// prefix of the old log (none of it at or above `start_offset`) or, once the log
    /// start offset is durable, the new empty log: recovery deletes what lies below it.
    /// On a disk error after the cut the log goes offline (reopen to recover).
    pub fn reset(
        &mut self,
        disk: &mut impl Disk,
        start_offset: i64,
        epoch_before_start: i32,
    ) -> Result<(), LogError> {
        if self.failure.is_some() {
            return Err(LogError::Failed);
        }
        if start_offset < self.log_start_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        self.abort_cleaning(disk);
        let cut_from = (start_offset - 1).max(self.log_start_offset);
        if cut_from < self.log_end_offset() {
            // Everything goes right after: no index files for what the cut keeps.
            retry_corrupt(|| self.truncate_once(disk, cut_from, false))?;
        }
        assert!(self.log_end_offset() <= start_offset);
        let file = match self.replace_files(disk, start_offset, epoch_before_start) {
            Ok(file) => file,
            Err(error) => {
                // Files are half gone: only recovery can tell what is left. Keep the
                // segments not removed yet (at least an active one) so that offsets
                // stay consistent until then.
                if self.segments.is_empty() {
                    self.segments.push(Segment::new(self.log_start_offset));
                }
                if let Some(last) = self.segments.last_mut() {
                    last.state = SealState::Active;
                }
                self.durable_offset = self.durable_offset.min(self.log_end_offset());
                self.synced_offset = self.synced_offset.min(self.log_end_offset());
                self.failure = Some(error.clone());
                return Err(LogError::Disk(error));
            }
        };
        let mut segment = Segment::new(start_offset);
        segment.file = Some(file);
        self.segments = vec![segment];
        self.open_segments.clear();
        self.log_start_offset = start_offset;
        self.epoch_before_start = Some(epoch_before_start);
        // Nothing is below the new start: the record's lower claim is all there is.
        self.durable_offset = start_offset;
        self.synced_offset = start_offset;
        self.producers = ProducerStates::default();
        // A round in flight covered files that are gone; its completions are ignored.
        self.round = None;
        self.dir_dirty = false;
        self.lower_cleaned_through(disk);
        self.check_invariants();
        Ok(())
    }

    /// The file changes of [`PartitionLog::reset`] once the cut is done: the epoch
    /// and the log start offset persisted, every segment's files removed (newest
    /// first), and the new active segment's file created, durably. Returns that file.
    fn replace_files(
        &mut self,
        disk: &mut impl Disk,
        start_offset: i64,
        epoch_before_start: i32,
    ) -> Result<FileId, DiskError> {
        self.write_epoch_checkpoint(disk, start_offset, epoch_before_start)?;
        write_checkpoint(disk, &self.dir, start_offset)?;
        // Newest first, as everywhere: a crash in between leaves a prefix.
        while let Some(segment) = self.segments.pop() {
            self.close_segment_file(disk, &segment);
            remove_segment_files(disk, &self.dir, segment.base_offset)?;
        }
        let path = join(
            &self.dir,
            &segment_file_name(start_offset, SegmentFileKind::Log),
        );
        let file = disk.open(&path, OpenMode::CreateNew)?;
        disk.sync_dir_now(&self.dir)?;
        Ok(file)
    }

    /// Makes everything appended durable before returning, with blocking syncs. Only
    /// for start-up and shutdown, when no event loop runs to deliver sync completions;
    /// no sync round may be in flight.
    pub fn flush_now(&mut self, disk: &mut impl Disk) -> Result<(), LogError> {
        if let Some(error) = &self.failure {
            return Err(LogError::Disk(error.clone()));
        }
        assert!(
            self.round.is_none(),
            "flush_now while a sync round is in flight"
        );
        for index in 0..self.segments.len() {
            let segment = &self.segments[index];
            if !(segment.dirty || segment.state == SealState::Rolled) {
                continue;
            }
            let synced = self
                .segment_file(disk, index)
                .and_then(|file| disk.sync_now(file));
            if let Err(error) = synced {
                self.failure = Some(error.clone());
                return Err(LogError::Disk(error));
            }
            let segment = &mut self.segments[index];
            segment.dirty = false;
            if segment.state == SealState::Rolled {
                segment.state = SealState::NeedsIndex;
            }
        }
        if self.dir_dirty {
            if let Err(error) = disk.sync_dir_now(&self.dir) {
                self.failure = Some(error.clone());
                return Err(LogError::Disk(error));
            }
            self.dir_dirty = false;
        }
        self.synced_offset = self.log_end_offset();
        if let Some(record) = &mut self.record
            && record.recorded < self.synced_offset
            && let Err(error) = record.write_both_now(disk, self.synced_offset)
        {
            self.failure = Some(error.clone());
            return Err(LogError::Disk(error));
        }
        self.durable_offset = self.log_end_offset();
        self.check_invariants();
        Ok(())
    }

    /// Closes the log's files. If everything appended is durable, first seals the
    /// active segment (writes and syncs its index files), so the next open trusts it
    /// without re-checking its batches.
    pub fn close(mut self, disk: &mut impl Disk) -> Result<(), LogError> {
        self.abort_cleaning(disk);
        let mut result = Ok(());
        if self.failure.is_none()
            && self.round.is_none()
            && self.durable_offset == self.log_end_offset()
        {
            let active = self.segments.len() - 1;
            result = self.seal_now(disk, active).map_err(LogError::from);
        }
        for segment in std::mem::take(&mut self.segments) {
            self.close_segment_file(disk, &segment);
        }
        if let Some(record) = self.record.take() {
            record.close(disk);
        }
        result
    }

    /// Closes the files and removes the partition directory.
    pub fn delete(mut self, disk: &mut impl Disk) -> Result<(), LogError> {
        self.abort_cleaning(disk);
        for segment in std::mem::take(&mut self.segments) {
            self.close_segment_file(disk, &segment);
        }
        if let Some(record) = self.record.take() {
            record.close(disk);
        }
        disk.remove_dir_all(&self.dir)?;
        disk.sync_dir_now(parent_dir(&self.dir))?;
        Ok(())
    }

    /// Panics if an internal invariant is broken.
    pub fn check_invariants(&self) {
        assert!(!self.segments.is_empty(), "a log has an active segment");
        let first = &self.segments[0];
        assert!(first.base_offset <= self.log_start_offset);
        assert!(self.log_start_offset <= first.next_offset.max(first.base_offset));
        assert!(self.log_start_offset <= self.durable_offset);
        assert!(self.durable_offset <= self.synced_offset);
        assert!(self.synced_offset <= self.log_end_offset());
        for pair in self.segments.windows(2) {
            assert_eq!(pair[0].next_offset, pair[1].base_offset);
            assert_ne!(pair[0].state, SealState::Active);
        }
        for segment in &self.segments {
            assert!(segment.base_offset <= segment.next_offset);
            assert_eq!(segment.is_empty(), segment.size_bytes == 0);
            // Indexes only grow at their end (`add_batch` asserts each new entry, and
            // `TrustedIndex::apply_to` checks a whole index before taking it), so the
            // newest pair is the one to check: the whole index would make this check,
            // run after every sync completion, linear in the size of the log.
            let offsets = &segment.offset_index;
            let offsets_tail = &offsets[offsets.len().saturating_sub(2)..];
            assert!(offsets_tail.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(offsets_tail.windows(2).all(|w| w[0].1 < w[1].1));
            let times = &segment.time_index;
            let times_tail = &times[times.len().saturating_sub(2)..];
            assert!(times_tail.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(segment.offset_index.len() <= INDEX_ENTRIES_MAX);
            if let Some(&(offset, position)) = segment.offset_index.last() {
                assert!(offset < segment.next_offset);
                assert!(position < segment.size_bytes);
            }
        }
        assert_eq!(self.active().state, SealState::Active);
        assert!(self.open_segments.len() < SEGMENT_FILES_OPEN_MAX);
        if let Some(round) = &self.round {
            assert!(round.pending.len() <= SYNCS_IN_FLIGHT_MAX);
        }
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log has an active segment")
    }

    /// Index of the segment holding `offset` (the active one for the log end offset).
    fn segment_index(&self, offset: i64) -> usize {
        let after = self.segments.partition_point(|s| s.base_offset <= offset);
        after.saturating_sub(1)
    }

    /// The open file of segment `index`, opening it (and closing the least recently
    /// used other one) if needed.
    fn segment_file(&mut self, disk: &mut impl Disk, index: usize) -> Result<FileId, DiskError> {
        let base = self.segments[index].base_offset;
        let is_active = index == self.segments.len() - 1;
        if let Some(file) = self.segments[index].file {
            if let Some(at) = self.open_segments.iter().position(|b| *b == base) {
                let base = self.open_segments.remove(at);
                self.open_segments.push(base);
            }
            return Ok(file);
        }
        let path = join(&self.dir, &segment_file_name(base, SegmentFileKind::Log));
        let file = disk.open(&path, OpenMode::ReadWrite)?;
        self.segments[index].file = Some(file);
        if !is_active {
            self.open_segments.push(base);
            self.enforce_open_limit(disk);
        }
        Ok(file)
    }

    fn enforce_open_limit(&mut self, disk: &mut impl Disk) {
        while self.open_segments.len() >= SEGMENT_FILES_OPEN_MAX {
            let base = self.open_segments.remove(0);
            if let Some(segment) = self.segments.iter_mut().find(|s| s.base_offset == base)
                && let Some(file) = segment.file.take()
            {
                disk.close(file);
            }
        }
    }

    fn close_segment_file(&mut self, disk: &mut impl Disk, segment: &Segment) {
        if let Some(file) = segment.file {
            disk.close(file);
        }
        self.open_segments.retain(|b| *b != segment.base_offset);
    }

    /// Rolls the active segment now if it holds anything: a legal early roll (the
    /// simulator's `produce-early-roll` BUGGIFY site), as if `segment.bytes` were
    /// reached. On a disk error nothing changed.
    pub fn roll_now(&mut self, disk: &mut impl Disk) -> Result<(), DiskError> {
        if self.failure.is_some() || self.active().is_empty() {
            return Ok(());
        }
        self.roll(disk)
    }

    /// Starts a new active segment at the log end offset.
    fn roll(&mut self, disk: &mut impl Disk) -> Result<(), DiskError> {
        let base = self.log_end_offset();
        let path = join(&self.dir, &segment_file_name(base, SegmentFileKind::Log));
        let file = disk.open(&path, OpenMode::CreateNew)?;
        self.dir_dirty = true;
        let old = self.segments.last_mut().expect("active segment");
        old.state = SealState::Rolled;
        let old_base = old.base_offset;
        if old.file.is_some() {
            self.open_segments.push(old_base);
        }
        let mut segment = Segment::new(base);
        segment.file = Some(file);
        self.segments.push(segment);
        self.enforce_open_limit(disk);
        Ok(())
    }

    /// Writes both index files of segment `index` and starts their syncs. On a write
    /// error the files are removed and `None` returned: the segment stays unsealed
    /// (recovery will check it batch by batch) and the next round tries again.
    fn write_index_files(&mut self, disk: &mut impl Disk, index: usize) -> Option<Vec<IoId>> {
        let segment = &self.segments[index];
        let summary = segment.summary();
        let files = segment.encoded_index_files();
        let mut ids = Vec::new();
        for (kind, bytes) in files {
            let path = join(&self.dir, &segment_file_name(summary.base_offset, kind));
            let written = (|| {
                let file = disk.open(&path, OpenMode::Create)?;
                let result = disk
                    .truncate(file, 0)
                    .and_then(|()| disk.write_at(file, 0, &bytes));
                if result.is_ok() {
                    ids.push(disk.sync(file));
                }
                disk.close(file);
                result
            })();
            if written.is_err() {
                // A sync already started on the first file completes harmlessly: its
                // id is in no round, so `on_sync_complete` ignores it.
                let _ = remove_index_files(disk, &self.dir, summary.base_offset);
                return None;
            }
        }
        Some(ids)
    }

    /// Finds the batch holding `offset` in segment `index`: its position and its
    /// checked header.
    fn find_batch_start(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        offset: i64,
    ) -> Result<(u64, BatchHeader), LogError> {
        let (mut expected, mut position) = self.segments[index].lookup(offset);
        let end = self.segments[index].size_bytes;
        let file = self.segment_file(disk, index)?;
        while position < end {
            let header = next_header(disk, file, position, end, expected)?;
            let corrupt = |reason: String| LogError::Corrupt {
                offset: expected,
                reason,
            };
            if header.last_offset() >= offset {
                // The cut point decides the new log end: trust only a checked batch.
                let checked =
                    check_batch(disk, file, position, header.size_bytes()).map_err(|error| {
                        match error {
                            CheckError::Disk(error) => LogError::Disk(error),
                            CheckError::Corrupt(reason) => corrupt(reason),
                        }
                    })?;
                if checked.base_offset != header.base_offset
                    || checked.size_bytes() != header.size_bytes()
                {
                    return Err(corrupt(format!(
                        "batch at position {position} read back with another base offset or size"
                    )));
                }
                if checked.last_offset() >= offset {
                    return Ok((position, checked));
                }
                // The first look at the header was wrong (a bit flipped on that read
                // only): the checked batch ends below `offset`, go on after it.
                position += checked.size_bytes();
                expected = checked.next_offset();
                continue;
            }
            position += header.size_bytes();
            expected = header.next_offset();
        }
        Err(LogError::Corrupt {
            offset: expected,
            reason: format!("batch headers do not reach offset {offset}"),
        })
    }

    /// Cuts the log at `position` of segment `index` (the start of the batch at
    /// `cut_offset`), durably: later segments and the cut segment's index files are
    /// removed, the file truncated and synced, the directory synced. With `keep_proof`,
    /// index files for what the cut segment keeps are written afterwards.
    fn cut(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        position: u64,
        cut_offset: i64,
        keep_proof: bool,
    ) -> Result<(), LogError> {
        // First rebuild the segment's in-memory state from the batches that stay, so a
        // corrupt header among them refuses the cut before anything changes.
        let (mut segment, file) = self.segment_before_cut(disk, index, position, cut_offset)?;
        let base = segment.base_offset;
        self.abort_cleaning(disk);
        if let Err(error) = self.remove_cut_bytes(disk, index, file, position, cut_offset) {
            // Files are half gone: only recovery can tell what is left. Nothing from
            // the cut on may be called durable any more.
            self.failure = Some(error.clone());
            self.durable_offset = self.durable_offset.min(cut_offset);
            self.synced_offset = self.synced_offset.min(cut_offset);
            return Err(LogError::Disk(error));
        }
        // The segment becomes the active one: it is not in the open-file list.
        self.open_segments.retain(|b| *b != base);
        segment.file = Some(file);
        segment.first_append_ms = self.segments[index].first_append_ms;
        self.durable_offset = self.durable_offset.min(cut_offset);
        self.synced_offset = self.synced_offset.min(cut_offset);
        // Synced above, but the synced offset advances only through a sync round.
        segment.dirty = self.synced_offset < cut_offset;
        self.segments[index] = segment;
        // The record lowered to the cut may name more than a round had recorded.
        self.advance_durable();
        if let Some(round) = &mut self.round {
            round.target_offset = round.target_offset.min(cut_offset);
            round.record = round.record.map(|claim| claim.min(cut_offset));
        }
        // The kept bytes are durable now (synced above). Index files for them keep the
        // proof of that, which recovery needs to tell rot in them from a torn write
        // (decision 0010); the old ones, gone, described bytes that are cut. Best
        // effort: an index file a failure leaves half written is not trusted.
        if keep_proof && self.write_index_files_now(disk, index).is_err() {
            remove_index_files(disk, &self.dir, base).ok();
        }
        self.lower_cleaned_through(disk);
        Ok(())
    }

    /// Segment `index` as a cut at `position` (the start of the batch at `cut_offset`)
    /// leaves it, rebuilt from the batches before the cut, and its file. `Corrupt` if
    /// those batches do not lead up to the cut, whole.
    fn segment_before_cut(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        position: u64,
        cut_offset: i64,
    ) -> Result<(Segment, FileId), LogError> {
        let base = self.segments[index].base_offset;
        let file = self.segment_file(disk, index)?;
        let mut segment = Segment::new(base);
        let interval = self.config.index_interval_bytes;
        let mut last_batch = None;
        let end = scan_file(
            disk,
            file,
            ScanRange {
                start_position: 0,
                end_position: position,
                expected_offset: Some(base),
                verify_crc_from: u64::MAX,
            },
            &mut |at, header| {
                segment.add_batch(at, header, interval);
                last_batch = Some((at, header.size_bytes()));
            },
        )?;
        if let Some(stop) = end.stop {
            return Err(LogError::Corrupt {
                offset: end.next_offset.unwrap_or(base),
                reason: stop.reason,
            });
        }
        // Contiguity vouches for every header but the last one before the cut: the
        // next batch's base offset checks each one's length and offset delta.
        if let Some((last_position, last_size)) = last_batch {
            check_last_kept(disk, file, last_position, last_size, segment.next_offset)?;
        }
        if segment.next_offset != cut_offset {
            return Err(LogError::Corrupt {
                offset: segment.next_offset,
                reason: format!(
                    "the batches before the cut end at {}, not at the cut offset {cut_offset}",
                    segment.next_offset
                ),
            });
        }
        Ok((segment, file))
    }

    /// The file changes of a cut at `position` of segment `index`, in their safe
    /// order: the record lowered, later segments removed, the cut segment's index
    /// files removed (durably), then the file truncated and synced.
    fn remove_cut_bytes(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        file: FileId,
        position: u64,
        cut_offset: i64,
    ) -> Result<(), DiskError> {
        // The record must stop vouching for the bytes before they change: after a
        // crash it would call a torn write of the later ones damage.
        if let Some(record) = &mut self.record
            && record.written > cut_offset
        {
            record.lower_now(disk, cut_offset)?;
        }
        while self.segments.len() > index + 1 {
            let later = self.segments.pop().expect("later segment");
            self.close_segment_file(disk, &later);
            remove_segment_files(disk, &self.dir, later.base_offset)?;
        }
        let base = self.segments[index].base_offset;
        remove_index_files(disk, &self.dir, base)?;
        // The index files must be gone for good before the data shrinks: a stale
        // index that came back after a crash would vouch for bytes written later.
        disk.sync_dir_now(&self.dir)?;
        disk.truncate(file, position)?;
        disk.sync_now(file)
    }

    /// Rebuilds producer state from the batch headers in the log. A corrupt header
    /// ends the scan of its segment: batches that cannot be read cannot be retried
    /// against either.
    /// The producer state of the batches below `end_offset`, from whole, CRC-checked
    /// batches: the producer ids, epochs and sequences decide which later writes are
    /// refused, so a header read wrong must not set them. `Corrupt` if a batch below
    /// `end_offset` fails its check.
    fn producers_below(
        &mut self,
        disk: &mut impl Disk,
        end_offset: i64,
    ) -> Result<ProducerStates, LogError> {
        let mut producers = ProducerStates::default();
        let stop = self.scan_headers(disk, true, &mut |header| {
            if header.last_offset() < end_offset {
                producers.record(header);
            }
        })?;
        if let Some((offset, reason)) = stop
            && offset < end_offset
        {
            return Err(LogError::Corrupt { offset, reason });
        }
        Ok(producers)
    }

    /// Visits the header of every batch of every segment in offset order, reading
    /// headers only (no CRCs) unless `verify_crc`; each batch must follow the one
    /// before. Returns the offset at which, and why, the first segment whose scan
    /// stopped early stopped.
    fn scan_headers(
        &mut self,
        disk: &mut impl Disk,
        verify_crc: bool,
        visit: &mut dyn FnMut(&BatchHeader),
    ) -> Result<Option<(i64, String)>, DiskError> {
        let mut first_stop = None;
        for index in 0..self.segments.len() {
            let file = self.segment_file(disk, index)?;
            let segment = &self.segments[index];
            let end = scan_file(
                disk,
                file,
                ScanRange {
                    start_position: 0,
                    end_position: segment.size_bytes,
                    expected_offset: Some(segment.base_offset),
                    verify_crc_from: if verify_crc { 0 } else { u64::MAX },
                },
                &mut |_, header| visit(header),
            )?;
            if let Some(stop) = end.stop
                && first_stop.is_none()
            {
                first_stop = Some((end.next_offset.unwrap_or(segment.base_offset), stop.reason));
            }
        }
        Ok(first_stop)
    }

    /// Persists `epoch` as the epoch before `new_start` (see
    /// [`PartitionLog::epoch_before_start`]), keeping the pair of the current log start
    /// too: until the log start offset checkpoint names `new_start`, a crash reopens the
    /// log at the current start, and its pair must still be there.
    fn write_epoch_checkpoint(
        &self,
        disk: &mut impl Disk,
        new_start: i64,
        epoch: i32,
    ) -> Result<(), DiskError> {
        let mut pairs = Vec::with_capacity(2);
        if let Some(current) = self.epoch_before_start
            && self.log_start_offset != new_start
        {
            pairs.push((self.log_start_offset, current));
        }
        pairs.push((new_start, epoch));
        write_file_atomically(
            disk,
            &self.dir,
            LEADER_EPOCH_CHECKPOINT,
            &encode_epoch_checkpoint(&pairs),
        )
    }

    /// Recovery (`docs/storage.md` §6): [`recovery::recover`] checks and cuts the
    /// files; the log takes in what it kept, seals the rolled segments recovery had to
    /// check, and opens the synced-through record.
    fn recover<D: Disk>(
        &mut self,
        disk: &mut D,
        now_ms: i64,
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<Option<Truncation>, LogError> {
        let recovered = recovery::recover(disk, &self.dir, &self.config, now_ms, on_damage)?;
        self.segments = recovered.segments;
        self.producers = recovered.producers;
        self.log_start_offset = recovered.log_start_offset;
        self.epoch_before_start = recovered.epoch_before_start;
        self.cleaned_through = recovered.cleaner.cleaned_through;
        self.first_dirty_offset = recovered.cleaner.first_dirty_offset;
        // Seal rolled segments recovery had to check, so the next open trusts them.
        for index in 0..self.segments.len() - 1 {
            if self.segments[index].state == SealState::NeedsIndex {
                self.seal_now(disk, index)?;
            }
        }
        self.durable_offset = self.log_end_offset();
        self.synced_offset = self.durable_offset;
        self.open_synced_record(disk, recovered.record_sequence)?;
        Ok(recovered.truncation)
    }

    /// Everything kept is durable now: the record says so from here on. A log
    /// without one drops a record an earlier configuration left, which would
    /// vouch for bytes that may change unrecorded.
    fn open_synced_record(
        &mut self,
        disk: &mut impl Disk,
        record_sequence: u64,
    ) -> Result<(), DiskError> {
        let record_path = join(&self.dir, SYNCED_THROUGH_FILE);
        if self.config.synced_record {
            self.record = Some(SyncedRecord::create_now(
                disk,
                &self.dir,
                self.durable_offset,
                record_sequence,
            )?);
            disk.sync_dir_now(&self.dir)?;
        } else if disk.exists(&record_path) {
            disk.remove_file(&record_path)?;
            disk.sync_dir_now(&self.dir)?;
        }
        Ok(())
    }

    /// Writes and syncs a segment's index files at once (start-up only).
    fn seal_now(&mut self, disk: &mut impl Disk, index: usize) -> Result<(), DiskError> {
        self.write_index_files_now(disk, index)?;
        self.segments[index].state = SealState::Sealed;
        Ok(())
    }

    /// Writes and syncs both index files of segment `index` as it is now, blocking.
    fn write_index_files_now(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
    ) -> Result<(), DiskError> {
        let segment = &self.segments[index];
        let summary = segment.summary();
        let files = segment.encoded_index_files();
        for (kind, bytes) in files {
            let path = join(&self.dir, &segment_file_name(summary.base_offset, kind));
            let file = disk.open(&path, OpenMode::Create)?;
            let result = disk
                .truncate(file, 0)
                .and_then(|()| disk.write_at(file, 0, &bytes))
                .and_then(|()| disk.sync_now(file));
            disk.close(file);
            result?;
        }
        disk.sync_dir_now(&self.dir)
    }
}

/// Checks whole the last batch a cut keeps, at `position` with `size` bytes: it
/// must end at `next_offset`, where the scan's unchecked read of its header said.
fn check_last_kept(
    disk: &mut impl Disk,
    file: FileId,
    position: u64,
    size: u64,
    next_offset: i64,
) -> Result<(), LogError> {
    let checked = check_batch(disk, file, position, size).map_err(|error| match error {
        CheckError::Disk(error) => LogError::Disk(error),
        CheckError::Corrupt(reason) => LogError::Corrupt {
            offset: next_offset,
            reason,
        },
    })?;
    if checked.next_offset() != next_offset {
        // Its header said otherwise on the scan (a bit flipped on that read).
        return Err(LogError::Corrupt {
            offset: next_offset,
            reason: format!(
                "the batch at position {position} ends at {} when checked, not at {}",
                checked.next_offset(),
                next_offset
            ),
        });
    }
    Ok(())
}

enum CheckError {
    Disk(DiskError),
    Corrupt(String),
}

/// Reads the batch at `position` and checks it whole (length, CRC, header rules).
fn check_batch(
    disk: &mut impl Disk,
    file: FileId,
    position: u64,
    size: u64,
) -> Result<BatchHeader, CheckError> {
    let mut body = vec![0u8; size as usize];
    let read = read_fully(disk, file, position, &mut body).map_err(CheckError::Disk)?;
    if read < body.len() {
        return Err(CheckError::Corrupt(format!(
            "short batch at position {position}"
        )));
    }
    batch::validate_stored(&body, u32::MAX).map_err(|error| CheckError::Corrupt(error.to_string()))
}

/// Whether a producer's data batch holds a record without a key (one whose records
/// cannot be read counts as keyless: a compacted log could not keep it either).
fn has_keyless_record(bytes: &[u8], header: &BatchHeader) -> bool {
    if header.is_control() {
        return false;
    }
    let opened = crate::cleaning::OpenedBatch::open(bytes, header);
    let records = opened.as_ref().and_then(|opened| opened.records());
    records.is_none_or(|records| records.iter().any(|record| record.key.is_none()))
}

/// How many leading bytes of the segment based at `base` its index files prove were
/// durable, from their contents and the data file's length (as recovery would judge
/// them): a batch that fails its check inside them is damage, not a torn write. For
/// checkers that inject damage only where it can be told from a torn write.
pub fn proven_durable_bytes(
    base: i64,
    offset_index: &[u8],
    time_index: &[u8],
    file_bytes: u64,
) -> Option<u64> {
    recovery::trusted_from(base, offset_index, time_index, file_bytes)
        .map(|t| t.summary.valid_bytes)
}

fn remove_if_exists(disk: &mut impl Disk, path: &str) -> Result<(), DiskError> {
    match disk.remove_file(path) {
        Ok(()) | Err(DiskError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

fn remove_index_files(disk: &mut impl Disk, dir: &str, base: i64) -> Result<(), DiskError> {
    for kind in [SegmentFileKind::OffsetIndex, SegmentFileKind::TimeIndex] {
        let path = join(dir, &segment_file_name(base, kind));
        if disk.exists(&path) {
            remove_if_exists(disk, &path)?;
        }
    }
    Ok(())
}

/// Removes a segment's files, index files first: a data file never loses its data
/// while an index still vouches for it.
fn remove_segment_files(disk: &mut impl Disk, dir: &str, base: i64) -> Result<(), DiskError> {
    remove_index_files(disk, dir, base)?;
    remove_if_exists(
        disk,
        &join(dir, &segment_file_name(base, SegmentFileKind::Log)),
    )
}

/// Persists `log_start_offset` atomically: temp file, sync, rename, directory sync.
fn write_checkpoint(
    disk: &mut impl Disk,
    dir: &str,
    log_start_offset: i64,
) -> Result<(), DiskError> {
    write_file_atomically(
        disk,
        dir,
        LOG_START_OFFSET_CHECKPOINT,
        &encode_checkpoint(log_start_offset),
    )
}

/// Replaces `dir/name` with `bytes` atomically and durably before returning: a
/// temporary file, fsynced, renamed over the old one, and the directory fsynced. For
/// small, rarely written files (checkpoints, a Raft member's hard state).
pub fn write_file_atomically(
    disk: &mut impl Disk,
    dir: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), DiskError> {
    let temp = join(dir, &format!("{name}{TEMP_SUFFIX}"));
    let file = disk.open(&temp, OpenMode::Create)?;
    let result = disk
        .truncate(file, 0)
        .and_then(|()| disk.write_at(file, 0, bytes))
        .and_then(|()| disk.sync_now(file));
    disk.close(file);
    if let Err(error) = result {
        let _ = disk.remove_file(&temp);
        return Err(error);
    }
    disk.rename(&temp, &join(dir, name))?;
    disk.sync_dir_now(dir)
}

/// File of the epoch before the log start ([`PartitionLog::epoch_before_start`]), in the
/// partition directory beside `log-start-offset.checkpoint`. Kafka keeps a whole
/// `leader-epoch-checkpoint` there; Odradek rebuilds the rest of the epochs from the
/// batch headers and keeps only what no header can tell any more.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch.checkpoint";

/// Magic of the leader epoch checkpoint.
const EPOCH_CHECKPOINT_MAGIC: [u8; 4] = *b"OXLE";
/// Version of its format.
const EPOCH_CHECKPOINT_VERSION: u16 = 1;
/// Pairs it holds at most: the current log start's and the next one's.
const EPOCH_CHECKPOINT_PAIRS_MAX: usize = 2;

/// `magic "OXLE" | version u16 = 1 | count u16 (1..=2) | count x (log start offset i64,
/// epoch of the batch before it i32) | CRC-32C u32 of all before`, big-endian.
fn encode_epoch_checkpoint(pairs: &[(i64, i32)]) -> Vec<u8> {
    assert!(!pairs.is_empty() && pairs.len() <= EPOCH_CHECKPOINT_PAIRS_MAX);
    let mut out = Vec::with_capacity(8 + 12 * pairs.len() + 4);
    out.extend_from_slice(&EPOCH_CHECKPOINT_MAGIC);
    out.extend_from_slice(&EPOCH_CHECKPOINT_VERSION.to_be_bytes());
    out.extend_from_slice(&(pairs.len() as u16).to_be_bytes());
    for &(start_offset, epoch) in pairs {
        out.extend_from_slice(&start_offset.to_be_bytes());
        out.extend_from_slice(&epoch.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The pairs of a valid leader epoch checkpoint; `None` if the bytes are not one.
fn decode_epoch_checkpoint(bytes: &[u8]) -> Option<Vec<(i64, i32)>> {
    if bytes.len() < 12 || bytes[..4] != EPOCH_CHECKPOINT_MAGIC {
        return None;
    }
    if u16::from_be_bytes([bytes[4], bytes[5]]) != EPOCH_CHECKPOINT_VERSION {
        return None;
    }
    let count = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
    if count == 0 || count > EPOCH_CHECKPOINT_PAIRS_MAX || bytes.len() != 8 + 12 * count + 4 {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().expect("4 bytes")) {
        return None;
    }
    let pairs = body[8..]
        .chunks_exact(12)
        .map(|pair| {
            let start_offset = i64::from_be_bytes(pair[..8].try_into().expect("8 bytes"));
            let epoch = i32::from_be_bytes(pair[8..].try_into().expect("4 bytes"));
            (start_offset, epoch)
        })
        .collect();
    Some(pairs)
}

/// The pairs of the partition's leader epoch checkpoint; empty if it is missing or
/// damaged (the epoch before the log start is then unknown).
fn read_epoch_checkpoint(disk: &mut impl Disk, dir: &str) -> Result<Vec<(i64, i32)>, DiskError> {
    let path = join(dir, LEADER_EPOCH_CHECKPOINT);
    if !disk.exists(&path) {
        return Ok(Vec::new());
    }
    let bytes = read_whole_file(disk, &path)?;
    Ok(decode_epoch_checkpoint(&bytes).unwrap_or_default())
}

/// The directory holding `path` ("" for the disk's root).
fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(at) => &path[..at],
        None => "",
    }
}

impl From<DiskError> for AppendError {
    fn from(error: DiskError) -> AppendError {
        AppendError::Disk(error)
    }
}

impl From<BatchError> for AppendError {
    fn from(error: BatchError) -> AppendError {
        AppendError::Batch(error)
    }
}

impl From<DiskError> for ReadError {
    fn from(error: DiskError) -> ReadError {
        ReadError::Disk(error)
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "clean_tests.rs"]
mod clean_tests;
