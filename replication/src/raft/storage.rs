//! The log a Raft group replicates, as the core sees it: [`RaftLog`].
//!
//! The node implements it over a `PartitionLog` (or the metadata log); the test harness
//! over a vector of entries. The trait is small on purpose: offsets, durability, the
//! epoch of an offset, KIP-279's epoch lookup, and four ways to change the log.
//!
//! # Where epochs come from
//!
//! Every batch in a partition already carries its `partitionLeaderEpoch`, but finding
//! "the epoch of offset x" or "where epoch e ends" by reading batches would cost a disk
//! read per question. Kafka keeps a small *leader epoch cache* beside each partition
//! (`leader-epoch-checkpoint`): one `(epoch, start_offset)` pair per epoch. The core
//! leaves that cache to the implementation, because only the implementation sees every
//! append, truncation and retention, and only it can persist or rebuild the cache
//! (by scanning batch headers at open). [`EpochCache`] is that cache, pure and tested,
//! for implementations to embed.

use std::fmt;

use super::message::{Entry, NO_EPOCH};

/// A log operation failed. The core never panics on one: it stops acknowledging (a
/// follower), gives up leadership (a leader), and stops campaigning; the node reopens
/// the log and builds a new `Raft` from the persisted hard state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("raft log: {message}")]
pub struct StorageError {
    /// What failed.
    pub message: String,
}

impl StorageError {
    /// An error saying `message`.
    pub fn new(message: impl fmt::Display) -> StorageError {
        StorageError {
            message: message.to_string(),
        }
    }
}

/// The replicated log of one group.
///
/// Offsets are Kafka offsets. The log holds whole entries covering
/// `[start_offset(), end_offset())` without gaps, in non-decreasing epoch order.
/// Appends go to the page cache; they become durable later, when the owner's sync
/// completes, and only then may `durable_end_offset` cover them.
pub trait RaftLog {
    /// The first offset in the log (Kafka's `log_start_offset`). Everything below it was
    /// committed before it was dropped: retention must never pass the high watermark.
    fn start_offset(&self) -> i64;

    /// The offset after the last entry (Kafka's log end offset).
    fn end_offset(&self) -> i64;

    /// Offsets below this are durable *with their current content*: a crash now keeps
    /// them. Always in `[start_offset, end_offset]` and at an entry boundary. A
    /// truncation lowers it at once; only a completed sync raises it.
    fn durable_end_offset(&self) -> i64;

    /// The epoch of the entry containing `offset`, for `offset` in
    /// `[start_offset - 1, end_offset)`: the log remembers the epoch of the last entry
    /// before its start (`NO_EPOCH` at offset -1). `None` outside that range.
    fn epoch_at(&self, offset: i64) -> Option<i32>;

    /// KIP-279's lookup: the largest epoch `<= epoch` that the log knows, and the end
    /// offset of that epoch (the start of the next higher epoch, or the log end). The
    /// epoch before the start counts, ending at `start_offset`; a log starting at 0
    /// answers `(NO_EPOCH, 0)` for an epoch older than all its entries. `None` if
    /// `epoch` is older than anything the log can speak about.
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)>;

    /// Whole entries starting with the one that contains `from` (so the first one may
    /// start below `from`), in order, until adding one would pass `bytes_max`, but at
    /// least one if `from < end_offset`. `from` is in `[start_offset, end_offset]`.
    fn read(&mut self, from: i64, bytes_max: u64) -> Result<Vec<Entry>, StorageError>;

    /// Appends `entries`, contiguous, the first at `end_offset()`, epochs not below
    /// the log's last epoch. Written with the given offsets and epochs.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;

    /// A new leader's first entry, at `end_offset()` with epoch `leader_epoch`: Kafka's
    /// leader-change control batch. Only entries of the leader's own epoch are
    /// committed by counting replicas (Raft §5.4.2), so the marker is what lets the
    /// entries of earlier epochs become committed without waiting for a client.
    fn append_leader_marker(&mut self, leader_epoch: i32) -> Result<(), StorageError>;

    /// Removes every entry that contains an offset `>= end_offset` (an entry straddling
    /// `end_offset` goes too). Need not be durable when it returns, but
    /// `durable_end_offset` drops at once, and later syncs cover the cut.
    fn truncate(&mut self, end_offset: i64) -> Result<(), StorageError>;

    /// Drops the whole log and starts it empty at `start_offset`, remembering
    /// `epoch_before_start` as the epoch of offset `start_offset - 1`. Used when a
    /// follower's log cannot meet the leader's above the leader's log start. Durable
    /// when it returns (rare, so a blocking sync is fine).
    fn reset(&mut self, start_offset: i64, epoch_before_start: i32) -> Result<(), StorageError>;

    /// The epoch of the last entry (or of the entry before the start, in an empty log).
    fn last_epoch(&self) -> i32 {
        self.epoch_at(self.end_offset() - 1).unwrap_or(NO_EPOCH)
    }
}

/// Kafka's leader epoch cache: the offset at which each epoch starts.
///
/// One `(epoch, start_offset)` pair per epoch present in the log, both strictly
/// increasing, plus possibly one pair for the epoch just before the log start (whose
/// recorded start may be below the log start). Implementations of [`RaftLog`] call
/// [`EpochCache::on_append`], [`EpochCache::on_truncate`], [`EpochCache::on_start_advanced`]
/// and [`EpochCache::on_reset`] as their log changes and answer the epoch questions from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    epochs: Vec<(i32, i64)>,
}

impl EpochCache {
    /// An empty cache, for an empty log starting at 0.
    pub fn new() -> EpochCache {
        EpochCache::default()
    }

    /// The `(epoch, start_offset)` pairs, oldest first.
    pub fn epochs(&self) -> &[(i32, i64)] {
        &self.epochs
    }

    /// An entry of `epoch` was appended at `base_offset`.
    pub fn on_append(&mut self, epoch: i32, base_offset: i64) {
        match self.epochs.last() {
            Some(&(last, start)) => {
                assert!(epoch >= last, "epoch {epoch} appended after epoch {last}");
                assert!(base_offset > start || epoch == last);
                if epoch > last {
                    self.epochs.push((epoch, base_offset));
                }
            }
            None => self.epochs.push((epoch, base_offset)),
        }
    }

    /// The log was cut at `end_offset`: epochs starting at or after it are gone.
    pub fn on_truncate(&mut self, end_offset: i64) {
        self.epochs.retain(|&(_, start)| start < end_offset);
    }

    /// Retention moved the log start to `start_offset`: keep only the epoch containing
    /// `start_offset - 1` and later ones.
    pub fn on_start_advanced(&mut self, start_offset: i64) {
        let keep_from = self
            .epochs
            .iter()
            .rposition(|&(_, start)| start < start_offset)
            .unwrap_or(0);
        self.epochs.drain(..keep_from);
    }

    /// The log was reset to start empty at `start_offset`, after an entry of
    /// `epoch_before_start`.
    pub fn on_reset(&mut self, start_offset: i64, epoch_before_start: i32) {
        self.epochs.clear();
        if start_offset > 0 && epoch_before_start != NO_EPOCH {
            self.epochs.push((epoch_before_start, start_offset - 1));
        }
    }

    /// [`RaftLog::epoch_at`] for a log covering `[start_offset, end_offset)`.
    pub fn epoch_at(&self, offset: i64, start_offset: i64, end_offset: i64) -> Option<i32> {
        if offset < start_offset - 1 || offset >= end_offset {
            return None;
        }
        if offset == -1 {
            return Some(NO_EPOCH);
        }
        match self.epochs.iter().rposition(|&(_, start)| start <= offset) {
            Some(index) => Some(self.epochs[index].0),
            // Nothing recorded that early: only a log that starts at 0 can say.
            None => (start_offset == 0).then_some(NO_EPOCH),
        }
    }

    /// [`RaftLog::end_offset_for_epoch`] for a log covering `[start_offset, end_offset)`.
    pub fn end_offset_for_epoch(
        &self,
        epoch: i32,
        start_offset: i64,
        end_offset: i64,
    ) -> Option<(i32, i64)> {
        match self.epochs.iter().rposition(|&(e, _)| e <= epoch) {
            Some(index) => {
                let end = self
                    .epochs
                    .get(index + 1)
                    .map_or(end_offset, |&(_, next_start)| next_start);
                Some((self.epochs[index].0, end.max(start_offset)))
            }
            // Older than every entry: only a log that starts at 0 can say where the
            // time before all epochs ends.
            None => (start_offset == 0 && epoch >= NO_EPOCH).then_some((NO_EPOCH, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(pairs: &[(i32, i64)]) -> EpochCache {
        let mut cache = EpochCache::new();
        for &(epoch, start) in pairs {
            cache.on_append(epoch, start);
        }
        cache
    }

    #[test]
    fn epoch_at_finds_the_containing_epoch() {
        // Epoch 1 at [0, 10), epoch 3 at [10, 20).
        let cache = cache(&[(1, 0), (1, 4), (3, 10), (3, 15)]);
        assert_eq!(cache.epochs(), &[(1, 0), (3, 10)]);
        assert_eq!(cache.epoch_at(-1, 0, 20), Some(NO_EPOCH));
        assert_eq!(cache.epoch_at(0, 0, 20), Some(1));
        assert_eq!(cache.epoch_at(9, 0, 20), Some(1));
        assert_eq!(cache.epoch_at(10, 0, 20), Some(3));
        assert_eq!(cache.epoch_at(19, 0, 20), Some(3));
        assert_eq!(cache.epoch_at(20, 0, 20), None);
    }

    #[test]
    fn end_offset_for_epoch_follows_kip_279() {
        let cache = cache(&[(1, 0), (3, 10), (4, 20)]);
        assert_eq!(cache.end_offset_for_epoch(0, 0, 25), Some((NO_EPOCH, 0)));
        assert_eq!(cache.end_offset_for_epoch(1, 0, 25), Some((1, 10)));
        // Epoch 2 never led here: the largest epoch below it is 1, ending at 10.
        assert_eq!(cache.end_offset_for_epoch(2, 0, 25), Some((1, 10)));
        assert_eq!(cache.end_offset_for_epoch(3, 0, 25), Some((3, 20)));
        assert_eq!(cache.end_offset_for_epoch(4, 0, 25), Some((4, 25)));
        assert_eq!(cache.end_offset_for_epoch(9, 0, 25), Some((4, 25)));
    }

    #[test]
    fn truncation_and_retention_keep_what_is_still_true() {
        let mut cache = cache(&[(1, 0), (3, 10), (4, 20)]);
        cache.on_truncate(20);
        assert_eq!(cache.epochs(), &[(1, 0), (3, 10)]);
        cache.on_start_advanced(15);
        // Epoch 3 contains offset 14, the one before the new start.
        assert_eq!(cache.epochs(), &[(3, 10)]);
        assert_eq!(cache.epoch_at(14, 15, 20), Some(3));
        assert_eq!(cache.epoch_at(13, 15, 20), None);
        assert_eq!(cache.end_offset_for_epoch(2, 15, 20), None);
        cache.on_start_advanced(20);
        assert_eq!(cache.epochs(), &[(3, 10)]);
        assert_eq!(cache.epoch_at(19, 20, 20), Some(3));
    }

    #[test]
    fn reset_remembers_the_epoch_before_the_start() {
        let mut cache = cache(&[(1, 0)]);
        cache.on_reset(50, 7);
        assert_eq!(cache.epoch_at(49, 50, 50), Some(7));
        assert_eq!(cache.end_offset_for_epoch(7, 50, 50), Some((7, 50)));
        assert_eq!(cache.end_offset_for_epoch(6, 50, 50), None);
        cache.on_append(8, 50);
        assert_eq!(cache.end_offset_for_epoch(7, 50, 51), Some((7, 50)));
        assert_eq!(cache.epoch_at(50, 50, 51), Some(8));
    }
}
