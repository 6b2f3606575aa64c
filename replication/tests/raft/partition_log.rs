//! The cluster harness over the real storage: every node's log is a `PartitionLog` on a
//! `MemDisk` of its own, driven through `PartitionRaftLog` and `ReplicaLogState` as the
//! node drives them. The seeds, fault plans and checks are those of the `MemLog` runs;
//! what differs is the storage:
//!
//! - entries are record batches (proposals are real client batches; markers are
//!   leader-change control batches), so an append carries fewer of them: the appends
//!   may be larger ([`disk_harness_config`]);
//! - a sync is a `PartitionLog` sync round over `MemDisk` syncs, and a round covers a
//!   bounded number of segments (the harness starts another when one falls short);
//! - a crash is `MemDisk::crash` (unsynced writes lost at random, some torn at sector
//!   granularity), then `PartitionLog::open` (recovery) and `ReplicaLogState::open` (the
//!   epoch cache rebuilt from batch headers and the persisted epoch before the start);
//! - retention is `PartitionLog::maintain_below` the high watermark: whole segments;
//! - a crash that loses durable entries rots a batch on the medium, and the log is
//!   repaired as a broker repairs it: `damage_confirmed`, `cut_damaged`, open again.
//!
//! And one check more, the durability oracle: whenever a sync completes, a copy of the
//! node's disk is crashed and the log recovered from it, and the recovered log must hold
//! every entry below `durable_offset()`, identical. So a durable offset that claims too
//! much is caught when it is claimed, not only when a crash happens to strike then and
//! a committed entry happens to depend on it.

use bytes::Bytes;
use odradek_log::batch::{BATCH_HEADER_BYTES, BatchHeader, build_batch};
use odradek_log::mem_disk::{MemDisk, SplitMix64};
use odradek_log::{LogConfig, PartitionLog};
use odradek_replication::raft::{
    Entry, NodeId, PartitionRaftLog, RaftConfig, RaftLog, ReplicaLogState, StorageError,
};

use super::cluster::{FaultPlan, HarnessLog, harness_config};

/// Each node's partition directory (on its own disk).
const DIR: &str = "p-0";

/// The wall clock the logs see: constant, so `segment.ms` never rolls a segment.
const NOW_MS: i64 = 1_700_000_000_000;

/// Bytes read at once when the harness inspects a log.
const INSPECT_READ_BYTES: u64 = 16 * 1024;

/// Small segments, so that rolls, sealing, multi-segment reads and truncations, and
/// segment-wise retention all happen on short logs. Retention is only what the nemesis
/// asks for (`maintain_below` with `retention.bytes` 0 deletes all it may).
fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 512,
        index_interval_bytes: 128,
        retention_ms: -1,
        retention_bytes: 0,
        // As a replicated partition's log: durable only once the record says so.
        synced_record: true,
        ..LogConfig::default()
    }
}

/// The harness's Raft settings with appends that fit about as many record batches
/// (60 to 120 bytes here) as the `MemLog` runs fit entries (10 to 15 bytes) in 48.
pub fn disk_harness_config() -> RaftConfig {
    RaftConfig {
        append_bytes_max: 400,
        ..harness_config()
    }
}

/// `plan` with log syncs six times slower (up to 48 ticks instead of 8), so that they
/// last longer than elections.
pub fn slow_disks(plan: FaultPlan) -> FaultPlan {
    FaultPlan {
        sync_delay_max: plan.sync_delay_max * 6,
        ..plan
    }
}

/// What the core cut, for the harness's checks and statistics.
#[derive(Debug, Default)]
struct Cuts {
    lowest: Option<i64>,
    truncations: u64,
    resets: u64,
    /// The durability oracle has checked the log below this offset: it checks only
    /// what a sync newly claims durable, and a cut (or a crash) lowers it.
    oracle_checked_offset: i64,
}

impl Cuts {
    fn note(&mut self, offset: i64) {
        self.lowest = Some(self.lowest.map_or(offset, |low| low.min(offset)));
        self.oracle_checked_offset = self.oracle_checked_offset.min(offset);
    }
}

/// One node's log: a `PartitionLog` on its `MemDisk`, with its `ReplicaLogState`.
pub struct DiskLog {
    node_id: NodeId,
    disk: MemDisk,
    log: PartitionLog,
    state: ReplicaLogState,
    /// Seeds of what each crash keeps.
    crash_seeds: SplitMix64,
    /// Seeds of the durability oracle's crashes.
    oracle_seeds: SplitMix64,
    sync_in_flight: bool,
    cuts: Cuts,
}

/// Opens the log on `disk` as a restarting node does.
fn open(disk: &mut MemDisk, node_id: NodeId) -> (PartitionLog, ReplicaLogState) {
    let (mut log, report) = PartitionLog::open(disk, DIR, log_config(), NOW_MS).expect("open");
    // Rot is cut as soon as it is made: a crash alone must never look like damage.
    assert!(
        report.truncation.as_ref().is_none_or(|t| !t.damaged),
        "a torn write taken for damage: {report:?}"
    );
    let leader_id = i32::try_from(node_id).expect("a small node id");
    let state = ReplicaLogState::open(&mut log, disk, leader_id).expect("epoch cache");
    (log, state)
}

/// The view the core gets: `PartitionRaftLog`, noting what truncations and resets cut.
pub struct DiskView<'a> {
    inner: PartitionRaftLog<'a, MemDisk>,
    cuts: &'a mut Cuts,
}

impl RaftLog for DiskView<'_> {
    fn start_offset(&self) -> i64 {
        self.inner.start_offset()
    }
    fn end_offset(&self) -> i64 {
        self.inner.end_offset()
    }
    fn durable_end_offset(&self) -> i64 {
        self.inner.durable_end_offset()
    }
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.inner.epoch_at(offset)
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.inner.end_offset_for_epoch(epoch)
    }
    fn read(&mut self, from: i64, bytes_max: u64) -> Result<Vec<Entry>, StorageError> {
        self.inner.read(from, bytes_max)
    }
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.inner.append(entries)
    }
    fn append_leader_marker(&mut self, leader_epoch: i32) -> Result<(), StorageError> {
        self.inner.append_leader_marker(leader_epoch)
    }
    fn truncate(&mut self, end_offset: i64) -> Result<(), StorageError> {
        let before = self.inner.end_offset();
        self.inner.truncate(end_offset)?;
        let after = self.inner.end_offset();
        if after < before {
            self.cuts.truncations += 1;
        }
        self.cuts.note(after);
        Ok(())
    }
    fn reset(&mut self, start_offset: i64, epoch_before_start: i32) -> Result<(), StorageError> {
        self.cuts.note(start_offset);
        self.cuts.resets += 1;
        self.inner.reset(start_offset, epoch_before_start)
    }
}

impl DiskLog {
    /// The durability oracle (see the module documentation): panics if a crash now
    /// could lose or change an entry below `durable_offset()`.
    fn check_durable_offset(&mut self) {
        let start_offset = self.log.log_start_offset();
        let durable_offset = self.log.durable_offset();
        let from = self.cuts.oracle_checked_offset.max(start_offset);
        self.cuts.oracle_checked_offset = durable_offset;
        if from >= durable_offset {
            return;
        }
        let promised = self.entries(from, durable_offset);
        let mut disk = self.disk.clone();
        disk.crash(self.oracle_seeds.next_u64());
        let (mut log, mut state) = open(&mut disk, self.node_id);
        let mut view = PartitionRaftLog::new(&mut log, &mut state, &mut disk, NOW_MS);
        assert_eq!(
            view.start_offset(),
            start_offset,
            "the log start is durable"
        );
        assert!(
            view.end_offset() >= durable_offset,
            "durable offset {durable_offset}, but a crash keeps only up to {}",
            view.end_offset()
        );
        let mut kept = Vec::new();
        let mut next = from;
        while next < durable_offset {
            let read = view.read(next, INSPECT_READ_BYTES).expect("read");
            next = read.last().expect("an entry").end_offset();
            kept.extend(read);
        }
        kept.retain(|entry| entry.base_offset >= from && entry.base_offset < durable_offset);
        assert_eq!(
            kept, promised,
            "a crash changes what is below the durable offset"
        );
    }
}

impl HarnessLog for DiskLog {
    type View<'a> = DiskView<'a>;

    fn create(seed: u64, node_id: NodeId) -> DiskLog {
        let mut disk = MemDisk::new(seed);
        let (log, state) = open(&mut disk, node_id);
        DiskLog {
            node_id,
            disk,
            log,
            state,
            crash_seeds: SplitMix64::new(seed ^ 0xc4a5_4c4a_5e11),
            oracle_seeds: SplitMix64::new(seed ^ 0x0a4c_1e00),
            sync_in_flight: false,
            cuts: Cuts::default(),
        }
    }

    fn view(&mut self) -> DiskView<'_> {
        DiskView {
            inner: PartitionRaftLog::new(&mut self.log, &mut self.state, &mut self.disk, NOW_MS),
            cuts: &mut self.cuts,
        }
    }

    fn proposal(&self, records: u32, text: &str) -> Bytes {
        let values: Vec<String> = (0..records).map(|i| format!("{text}/{i}")).collect();
        let values: Vec<&[u8]> = values.iter().map(|value| value.as_bytes()).collect();
        Bytes::from(build_batch(NOW_MS, None, &values))
    }

    fn entries(&mut self, from: i64, to: i64) -> Vec<Entry> {
        let mut view = self.view();
        let mut next = from.max(view.start_offset());
        let end = view.end_offset().min(to);
        let mut entries = Vec::new();
        while next < end {
            let read = view
                .read(next, INSPECT_READ_BYTES)
                .unwrap_or_else(|error| panic!("reading the log at {next}: {error}"));
            let last = read.last().expect("a read below the end returns an entry");
            next = last.end_offset();
            entries.extend(
                read.into_iter()
                    .filter(|entry| entry.base_offset >= from && entry.base_offset < to),
            );
        }
        entries
    }

    fn take_lowest_cut(&mut self) -> Option<i64> {
        self.cuts.lowest.take()
    }

    fn sync_in_flight(&self) -> bool {
        self.sync_in_flight
    }

    fn begin_sync(&mut self) -> bool {
        if self.sync_in_flight {
            return false;
        }
        // Nothing to sync (no ids) is a round that completes at once, harmlessly.
        self.log.start_sync(&mut self.disk);
        self.sync_in_flight = true;
        true
    }

    fn complete_sync(&mut self) {
        // Completes syncs of rounds a reset abandoned too: the log ignores those.
        for completion in self.disk.complete_all_syncs() {
            self.log.on_sync_complete(&completion);
        }
        self.sync_in_flight = false;
        self.check_durable_offset();
    }

    fn wants_sync(&self) -> bool {
        !self.log.sync_in_flight() && self.log.durable_offset() < self.log.log_end_offset()
    }

    fn crash(&mut self) {
        self.disk.crash(self.crash_seeds.next_u64());
        let (log, state) = open(&mut self.disk, self.node_id);
        self.log = log;
        self.state = state;
        self.sync_in_flight = false;
        self.cuts.lowest = None;
        // Recovery may have rewritten what it kept: check it all again.
        self.cuts.oracle_checked_offset = 0;
    }

    /// Rots one byte of a batch's record data on the medium and repairs the log the
    /// way a broker does (decision 0010): the damage is confirmed by reads, the log is
    /// cut there with `cut_damaged`, and it is opened again.
    fn lose_durable_suffix(&mut self, draw: u64) -> Option<i64> {
        let start = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        let batches = self.entries(start, end);
        if batches.is_empty() {
            return None;
        }
        let victim = batches[(draw % batches.len() as u64) as usize].base_offset;
        let rotted = self
            .disk
            .file_paths()
            .into_iter()
            .filter(|path| path.ends_with(".log"))
            .find_map(|path| {
                let data = self.disk.durable_contents(&path)?;
                let mut at = 0;
                while let Ok(header) = BatchHeader::parse(&data[at..]) {
                    let size = usize::try_from(header.size_bytes()).expect("small");
                    if header.base_offset == victim {
                        let byte = at + BATCH_HEADER_BYTES + (size - BATCH_HEADER_BYTES) / 2;
                        return Some((path, byte as u64));
                    }
                    at += size;
                }
                None
            });
        let (path, byte) = rotted.expect("the batch is in a segment file");
        assert!(self.disk.corrupt_stored(&path, byte, 0x20));
        assert!(self.log.damage_confirmed(&mut self.disk, victim));
        self.log
            .cut_damaged(&mut self.disk, victim)
            .expect("cut at the damage");
        assert_eq!(self.log.log_end_offset(), victim);
        let (log, state) = open(&mut self.disk, self.node_id);
        assert_eq!(log.log_end_offset(), victim, "the cut is durable");
        self.log = log;
        self.state = state;
        Some(victim)
    }

    fn compact_below(&mut self, limit: i64, draw: &mut dyn FnMut() -> u64) -> bool {
        let start_offset = self.log.log_start_offset();
        if limit <= start_offset {
            return false;
        }
        let span = u64::try_from(limit - start_offset).expect("positive");
        let bound = start_offset + 1 + i64::try_from(draw() % span).expect("small");
        let report = self
            .log
            .maintain_below(&mut self.disk, NOW_MS, bound)
            .expect("retention");
        report.segments_deleted > 0
    }

    fn truncations(&self) -> u64 {
        self.cuts.truncations
    }

    fn resets(&self) -> u64 {
        self.cuts.resets
    }
}
