//! An in-memory [`RaftLog`] with the durability of a real disk: appends and truncations
//! land in a page cache (`current`); a sync copies what the page cache held when it
//! began into the durable image; a crash brings the durable image back. Epochs are
//! answered by scanning the entries, independently of `EpochCache`, so that the two
//! can be checked against each other.

use bytes::Bytes;
use odradek_replication::raft::{Entry, NO_EPOCH, RaftLog, StorageError};

/// What a log holds: a start, the epoch just before it, and entries from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogImage {
    pub start_offset: i64,
    pub epoch_before_start: i32,
    pub entries: Vec<Entry>,
}

impl LogImage {
    fn empty() -> LogImage {
        LogImage {
            start_offset: 0,
            epoch_before_start: NO_EPOCH,
            entries: Vec::new(),
        }
    }

    pub fn end_offset(&self) -> i64 {
        self.entries
            .last()
            .map_or(self.start_offset, Entry::end_offset)
    }

    /// The index of the entry containing `offset`.
    pub fn index_of(&self, offset: i64) -> Option<usize> {
        if offset < self.start_offset || offset >= self.end_offset() {
            return None;
        }
        let index = self
            .entries
            .partition_point(|entry| entry.last_offset < offset);
        Some(index)
    }

    /// The entry starting at `base_offset`, if one does.
    pub fn entry_at(&self, base_offset: i64) -> Option<&Entry> {
        self.index_of(base_offset)
            .map(|index| &self.entries[index])
            .filter(|entry| entry.base_offset == base_offset)
    }

    /// Drops entries below `start_offset` (an entry boundary).
    fn advance_start(&mut self, start_offset: i64) {
        let keep = self
            .entries
            .partition_point(|entry| entry.base_offset < start_offset);
        if keep > 0 {
            assert_eq!(self.entries[keep - 1].end_offset(), start_offset);
            self.epoch_before_start = self.entries[keep - 1].leader_epoch;
        }
        self.entries.drain(..keep);
        self.start_offset = start_offset;
    }
}

/// A sync that began and has not completed.
#[derive(Clone, Debug)]
struct PendingSync {
    snapshot: LogImage,
    /// The lowest end the page cache had since the snapshot: a truncation after the
    /// snapshot makes the image's content above it stale.
    lowest_end_offset: i64,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct MemLog {
    pub current: LogImage,
    pub durable: LogImage,
    durable_end_offset: i64,
    sync: Option<PendingSync>,
    /// The lowest offset cut by `truncate` or `reset` since the harness last asked.
    pub lowest_cut: Option<i64>,
    /// Make every later append fail (a full disk).
    pub fail_appends: bool,
    /// Calls of `truncate` that removed something, and of `reset`, for the statistics.
    pub truncations: u64,
    pub resets: u64,
}

impl Default for MemLog {
    fn default() -> MemLog {
        MemLog::new()
    }
}

impl MemLog {
    pub fn new() -> MemLog {
        MemLog {
            current: LogImage::empty(),
            durable: LogImage::empty(),
            durable_end_offset: 0,
            sync: None,
            lowest_cut: None,
            fail_appends: false,
            truncations: 0,
            resets: 0,
        }
    }

    /// A log holding `entries` (from offset 0), all durable.
    pub fn with_entries(entries: Vec<Entry>) -> MemLog {
        let mut log = MemLog::new();
        log.append(&entries).expect("append");
        log.sync_now();
        log
    }

    pub fn sync_in_flight(&self) -> bool {
        self.sync.is_some()
    }

    /// Starts a sync covering everything in the page cache now. False if one is already
    /// in flight (one round at a time, like `PartitionLog`).
    pub fn begin_sync(&mut self) -> bool {
        if self.sync.is_some() {
            return false;
        }
        self.sync = Some(PendingSync {
            snapshot: self.current.clone(),
            lowest_end_offset: self.current.end_offset(),
        });
        true
    }

    /// The sync in flight completed.
    pub fn complete_sync(&mut self) {
        let sync = self.sync.take().expect("a sync in flight");
        let durable_end = sync.snapshot.end_offset().min(sync.lowest_end_offset);
        self.durable = sync.snapshot;
        self.durable_end_offset = self
            .durable_end_offset
            .max(durable_end)
            .min(self.current.end_offset());
        // What the page cache holds below durable_end is what the image holds.
        debug_assert!(self.durable_end_offset <= self.current.end_offset());
    }

    pub fn sync_now(&mut self) {
        assert!(self.begin_sync());
        self.complete_sync();
    }

    /// Power failure: everything not durable is gone.
    pub fn crash(&mut self) {
        self.current = self.durable.clone();
        self.durable_end_offset = self.current.end_offset();
        self.sync = None;
        self.lowest_cut = None;
    }

    /// The medium destroyed durable entries (rot, a misdirected write), found at the
    /// next start: the log is cut at an entry boundary `draw` picks below its durable
    /// end. Only right after a crash (nothing is cached). The offset cut at, if any.
    pub fn lose_durable_suffix(&mut self, draw: u64) -> Option<i64> {
        assert!(self.sync.is_none() && self.current == self.durable);
        let count = self.durable.entries.len();
        if count == 0 {
            return None;
        }
        let keep = (draw % count as u64) as usize;
        let cut = self.durable.entries[keep].base_offset;
        self.durable.entries.truncate(keep);
        self.current = self.durable.clone();
        self.durable_end_offset = cut;
        Some(cut)
    }

    /// Retention: drop entries below `start_offset`, which must be an entry boundary at
    /// most the durable end. Durable at once. Only with no sync in flight.
    pub fn compact(&mut self, start_offset: i64) {
        assert!(self.sync.is_none());
        assert!(start_offset <= self.durable_end_offset);
        assert!(start_offset >= self.current.start_offset);
        self.current.advance_start(start_offset);
        self.durable.advance_start(start_offset);
    }

    /// Entry boundaries in `(start, limit]`, for choosing a retention point.
    pub fn boundaries_up_to(&self, limit: i64) -> Vec<i64> {
        self.current
            .entries
            .iter()
            .map(Entry::end_offset)
            .filter(|&end| end <= limit)
            .collect()
    }

    fn note_cut(&mut self, offset: i64) {
        self.lowest_cut = Some(self.lowest_cut.map_or(offset, |low| low.min(offset)));
    }
}

impl RaftLog for MemLog {
    fn start_offset(&self) -> i64 {
        self.current.start_offset
    }

    fn end_offset(&self) -> i64 {
        self.current.end_offset()
    }

    fn durable_end_offset(&self) -> i64 {
        self.durable_end_offset
    }

    fn epoch_at(&self, offset: i64) -> Option<i32> {
        if offset == self.current.start_offset - 1 {
            return Some(self.current.epoch_before_start);
        }
        self.current
            .index_of(offset)
            .map(|index| self.current.entries[index].leader_epoch)
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let entries = &self.current.entries;
        let after = entries.partition_point(|entry| entry.leader_epoch <= epoch);
        if after > 0 {
            let found = entries[after - 1].leader_epoch;
            let end = entries
                .get(after)
                .map_or(self.current.end_offset(), |entry| entry.base_offset);
            return Some((found, end));
        }
        (self.current.epoch_before_start <= epoch)
            .then_some((self.current.epoch_before_start, self.current.start_offset))
    }

    fn read(&mut self, from: i64, bytes_max: u64) -> Result<Vec<Entry>, StorageError> {
        let Some(first) = self.current.index_of(from) else {
            return Ok(Vec::new());
        };
        let mut bytes = 0;
        let mut entries = Vec::new();
        for entry in &self.current.entries[first..] {
            if !entries.is_empty() && bytes + entry.size_bytes() > bytes_max {
                break;
            }
            bytes += entry.size_bytes();
            entries.push(entry.clone());
        }
        Ok(entries)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        if self.fail_appends {
            return Err(StorageError::new("no space left on device"));
        }
        for entry in entries {
            assert_eq!(entry.base_offset, self.end_offset(), "append at the end");
            assert!(entry.last_offset >= entry.base_offset);
            assert!(
                entry.leader_epoch >= self.last_epoch(),
                "epochs never go back in a log"
            );
            self.current.entries.push(entry.clone());
        }
        Ok(())
    }

    fn append_leader_marker(&mut self, leader_epoch: i32) -> Result<(), StorageError> {
        let base_offset = self.end_offset();
        self.append(&[Entry {
            base_offset,
            last_offset: base_offset,
            leader_epoch,
            data: Bytes::new(),
        }])
    }

    fn truncate(&mut self, end_offset: i64) -> Result<(), StorageError> {
        let keep = self
            .current
            .entries
            .partition_point(|entry| entry.last_offset < end_offset);
        if keep < self.current.entries.len() {
            self.truncations += 1;
        }
        self.current.entries.truncate(keep);
        let end = self.current.end_offset();
        self.durable_end_offset = self.durable_end_offset.min(end);
        if let Some(sync) = &mut self.sync {
            sync.lowest_end_offset = sync.lowest_end_offset.min(end);
        }
        self.note_cut(end);
        Ok(())
    }

    fn reset(&mut self, start_offset: i64, epoch_before_start: i32) -> Result<(), StorageError> {
        self.note_cut(start_offset);
        self.resets += 1;
        self.current = LogImage {
            start_offset,
            epoch_before_start,
            entries: Vec::new(),
        };
        self.durable = self.current.clone();
        self.durable_end_offset = start_offset;
        self.sync = None;
        Ok(())
    }
}
