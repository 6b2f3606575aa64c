//! Recovery on open (`docs/storage.md` §6): what
//! [`PartitionLog::open_with`](super::PartitionLog::open_with) makes of whatever a crash
//! left in the partition directory.
//!
//! ```text
//!  list files, read checkpoint and record
//!    └─► each segment, oldest first:
//!          starts inside the previous one ───► a grouped swap's leftover: remove it
//!          does not follow the previous one ──► cut here (it and every later one go)
//!          scan: headers where index files vouch, CRCs elsewhere
//!            ├─ all whole ─────────────────────► keep (write checked bytes again, sync)
//!            ├─ bad tail, next segment follows ─► cut the tail, go on
//!            └─ bad tail ──────────────────────► cut here (damage? on_damage first)
//!    └─► whole, but below the record ─► damage
//!    └─► nothing left? start empty ─► last segment active ─► Recovered
//! ```
//!
//! This module reads, checks, cuts and rewrites the files and returns what it kept as
//! a [`Recovered`]; the log takes that in as its state, seals the segments recovery had
//! to check and opens the synced-through record (`PartitionLog::recover`).

use std::collections::BTreeSet;

use super::{
    LogConfig, LogError, SealState, Segment, Truncation, read_epoch_checkpoint, remove_index_files,
    remove_segment_files, write_checkpoint, write_file_atomically,
};
use crate::constants::{INDEX_ENTRIES_MAX, RECOVERY_REWRITE_CHUNK_BYTES};
use crate::io::{Disk, DiskError, FileId, OpenMode};
use crate::producer::ProducerStates;
use crate::segment::{
    CLEANED_SUFFIX, CLEANER_CHECKPOINT, CleanerCheckpoint, LOG_START_OFFSET_CHECKPOINT, ScanEnd,
    ScanRange, ScanStop, SegmentFileKind, SegmentSummary, TEMP_SUFFIX, decode_checkpoint,
    decode_index, encode_cleaner_checkpoint, join, parse_segment_file_name,
    read_cleaner_checkpoint, read_fully, read_whole_file, scan_file, segment_file_name,
};
use crate::synced::SyncedRecord;

/// What recovery kept: the log's state after open, before the sealing and the record.
pub(super) struct Recovered {
    /// Sorted by base offset, contiguous; the last one is the active segment.
    pub(super) segments: Vec<Segment>,
    /// Producer state of the batches kept.
    pub(super) producers: ProducerStates,
    pub(super) log_start_offset: i64,
    /// The epoch of the batch just below the log start, if its checkpoint names it.
    pub(super) epoch_before_start: Option<i32>,
    /// The highest sequence in the synced-through record found (0 if none), which the
    /// new record continues.
    pub(super) record_sequence: u64,
    /// The cut recovery made, if it made one.
    pub(super) truncation: Option<Truncation>,
    /// The cleaner checkpoint, no offset in it above the log end offset.
    pub(super) cleaner: CleanerCheckpoint,
}

/// Recovers the partition directory `dir`: removes leftovers, checks every segment,
/// cuts a torn or damaged tail (calling `on_damage` first when the cut bytes had been
/// durable), starts empty if nothing usable is left, and makes the last segment the
/// active one. Persists the log start offset if it moved.
pub(super) fn recover<D: Disk>(
    disk: &mut D,
    dir: &str,
    config: &LogConfig,
    now_ms: i64,
    on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
) -> Result<Recovered, LogError> {
    let (mut logs, checkpoint) = list_segment_files(disk, dir)?;
    let mut log_start_offset = checkpoint.unwrap_or(0);
    // Lowered to the log end below, should a cut leave the log ending under it.
    let cleaner = read_cleaner_checkpoint(disk, dir)?;
    // Every batch below this was durable: one that fails its check is damage.
    let (synced_through, record_sequence) = if config.synced_record {
        SyncedRecord::read(disk, dir)?
    } else {
        (None, 0)
    };
    #[cfg(feature = "mutants")]
    let synced_through = synced_through.filter(|_| !config.mutants.recovery_ignores_synced_record);
    // Segments wholly below the log start offset were being deleted by retention.
    while logs.len() >= 2 && logs[1] <= log_start_offset {
        remove_segment_files(disk, dir, logs.remove(0))?;
    }
    let mut recovery = Recovery {
        dir,
        config,
        synced_through,
        segments: Vec::new(),
        producers: ProducerStates::default(),
        truncation: None,
    };
    recovery.check_segments(disk, &logs, on_damage)?;
    recovery.check_end_against_record(disk, log_start_offset, on_damage)?;
    let Recovery {
        mut segments,
        mut producers,
        truncation,
        ..
    } = recovery;
    if let Some(first) = segments.first() {
        log_start_offset = log_start_offset.max(first.base_offset);
    }
    let log_end_offset = segments.last().map(|s| s.next_offset);
    if log_end_offset.is_none_or(|end| end < log_start_offset) {
        // Nothing usable at or after the log start offset: start empty there.
        start_empty(disk, dir, &mut segments, log_start_offset)?;
        producers = ProducerStates::default();
    }
    activate_last(disk, dir, &mut segments, now_ms)?;
    let epoch_before_start = read_epoch_checkpoint(disk, dir)?
        .into_iter()
        .find(|&(start, _)| start == log_start_offset && start > 0)
        .map(|(_, epoch)| epoch);
    if checkpoint != Some(log_start_offset) {
        write_checkpoint(disk, dir, log_start_offset)?;
    }
    let log_end_offset = segments.last().expect("an active segment").next_offset;
    let cleaner = lower_cleaner_checkpoint(disk, dir, cleaner, log_end_offset)?;
    Ok(Recovered {
        cleaner,
        segments,
        producers,
        log_start_offset,
        epoch_before_start,
        record_sequence,
        truncation,
    })
}

/// The base offsets of the segment data files in `dir`, sorted, and the log start
/// offset checkpoint's offset, if there is a valid one. Removes temporary files
/// (writes that never reached their rename, cleaned segments never swapped in) and
/// index files of no segment.
fn list_segment_files(
    disk: &mut impl Disk,
    dir: &str,
) -> Result<(Vec<i64>, Option<i64>), DiskError> {
    let names = disk.read_dir(dir)?;
    let mut logs = Vec::new();
    let mut indexes = BTreeSet::new();
    let mut checkpoint_found = false;
    for name in &names {
        if name.ends_with(TEMP_SUFFIX) || name.ends_with(CLEANED_SUFFIX) {
            disk.remove_file(&join(dir, name))?;
            continue;
        }
        if name == LOG_START_OFFSET_CHECKPOINT {
            checkpoint_found = true;
            continue;
        }
        match parse_segment_file_name(name) {
            Some((base, SegmentFileKind::Log)) => logs.push(base),
            Some((base, _)) => {
                indexes.insert(base);
            }
            None => {}
        }
    }
    logs.sort_unstable();
    // Index files of no segment are leftovers of deletions.
    for base in &indexes {
        if logs.binary_search(base).is_err() {
            remove_index_files(disk, dir, *base)?;
        }
    }
    let checkpoint = if checkpoint_found {
        let path = join(dir, LOG_START_OFFSET_CHECKPOINT);
        decode_checkpoint(&read_whole_file(disk, &path)?)
    } else {
        None
    };
    Ok((logs, checkpoint))
}

/// A recovery under way: the segments it kept so far, and what it knows of the log.
struct Recovery<'a> {
    dir: &'a str,
    config: &'a LogConfig,
    /// The synced-through record's offset: every batch below it was durable.
    synced_through: Option<i64>,
    /// The segments kept, oldest first.
    segments: Vec<Segment>,
    /// Producer state of the batches kept.
    producers: ProducerStates,
    /// The cut made, if one was.
    truncation: Option<Truncation>,
}

/// A segment data file recovery has open.
struct SegmentFile {
    base: i64,
    path: String,
    file: FileId,
    file_bytes: u64,
}

/// What the scan of a segment file found.
struct Checked {
    end: ScanEnd,
    /// Leading bytes taken on the index files' word: headers read, CRCs not.
    trusted_bytes: u64,
    /// Leading bytes the index files prove were durable, trusted or not.
    proven_bytes: u64,
    /// Every byte trusted and every batch whole: the index files stand.
    sealed: bool,
}

impl Checked {
    /// The bytes whose batches the scan checked rather than trusted.
    fn checked_bytes(&self) -> (u64, u64) {
        (self.trusted_bytes.min(self.end.position), self.end.position)
    }
}

impl Recovery<'_> {
    /// Whether a batch at `offset` had been durable (the synced-through record names
    /// it): if it fails its check, that is damage, not a torn write.
    fn damage_below(&self, offset: i64) -> bool {
        self.synced_through.is_some_and(|synced| offset < synced)
    }

    /// Checks the segment files `logs` (base offsets, sorted) oldest first, keeping
    /// each, until one ends the log: a gap before it or a bad tail in it.
    fn check_segments<D: Disk>(
        &mut self,
        disk: &mut D,
        logs: &[i64],
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<(), LogError> {
        for at in 0..logs.len() {
            if let Some(previous) = self.segments.last()
                && previous.next_offset > logs[at]
            {
                // A leftover of a grouped swap (docs/storage.md §13): the previous
                // segment, checked, covers every offset this one could hold.
                self.remove_covered(disk, logs[at])?;
                continue;
            }
            if let Some(previous) = self.segments.last()
                && previous.next_offset != logs[at]
            {
                return self.cut_at_gap(disk, &logs[at..], on_damage);
            }
            if !self.check_segment(disk, &logs[at..], on_damage)? {
                break;
            }
        }
        Ok(())
    }

    /// Removes the segment file `base`, which starts below the end of the segments
    /// kept: a segment the cleaner grouped into an earlier one, whose `.log` a crash
    /// left behind after the grouped file was renamed in. Its offsets are all in the
    /// previous segment, so it holds none the log needs.
    fn remove_covered(&mut self, disk: &mut impl Disk, base: i64) -> Result<(), DiskError> {
        remove_segment_files(disk, self.dir, base)?;
        disk.sync_dir_now(self.dir)
    }

    /// Ends the log before the segment file `logs[0]`, which does not start where the
    /// previous segment ends: it and every later one (the rest of `logs`) go.
    fn cut_at_gap<D: Disk>(
        &mut self,
        disk: &mut D,
        logs: &[i64],
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<(), LogError> {
        let base = logs[0];
        let path = join(self.dir, &segment_file_name(base, SegmentFileKind::Log));
        let previous_end = self
            .segments
            .last()
            .expect("a previous segment")
            .next_offset;
        let damaged = self.damage_below(previous_end);
        if damaged {
            on_damage(disk, previous_end)?;
        }
        let removed = remove_segments_from(disk, self.dir, logs)?;
        self.truncation = Some(Truncation {
            segment: path,
            position: 0,
            offset: previous_end,
            reason: format!(
                "segment base offset {base} does not follow the previous segment's end {previous_end}"
            ),
            bytes_removed: removed,
            damaged,
        });
        Ok(())
    }

    /// Checks the segment file `logs[0]` (the rest of `logs` are the later ones) and
    /// keeps it, cutting a bad tail. False if it ended the log: a cut in it that took
    /// every later segment.
    fn check_segment<D: Disk>(
        &mut self,
        disk: &mut D,
        logs: &[i64],
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<bool, LogError> {
        let base = logs[0];
        let path = join(self.dir, &segment_file_name(base, SegmentFileKind::Log));
        let file = disk.open(&path, OpenMode::ReadWrite)?;
        let file_bytes = disk.file_len(file)?;
        let segment_file = SegmentFile {
            base,
            path,
            file,
            file_bytes,
        };
        let is_last = logs.len() == 1;
        let (segment, mut checked) = self.check_batches(disk, &segment_file, is_last)?;
        self.segments.push(segment);
        let next_base = logs.get(1).copied();
        match checked.end.stop.take() {
            Some(stop) if next_base.is_some() && checked.end.next_offset == next_base => {
                self.cut_stale_tail(disk, &segment_file, &checked, stop)?;
                Ok(true)
            }
            Some(stop) => {
                self.cut_log_in(disk, segment_file, &checked, stop, &logs[1..], on_damage)?;
                Ok(false)
            }
            None => {
                self.keep_whole(disk, &segment_file, &checked)?;
                Ok(true)
            }
        }
    }

    /// Scans a segment file into a segment (sealed if its index files stand, else to
    /// be sealed), recording its producers: headers only where its index files vouch
    /// for the bytes, every CRC where they do not or disagree with the headers.
    fn check_batches(
        &mut self,
        disk: &mut impl Disk,
        segment_file: &SegmentFile,
        is_last: bool,
    ) -> Result<(Segment, Checked), DiskError> {
        let file_bytes = segment_file.file_bytes;
        let trusted_index = trusted_index(disk, self.dir, segment_file.base, file_bytes);
        let trusted = trusted_index.as_ref().map(|t| t.summary);
        let mut trusted_bytes = trusted.map_or(0, |t| t.valid_bytes);
        // Index files are written only after the bytes they describe were synced,
        // and removed before those bytes may change: what they cover was durable.
        let proven_bytes = trusted_bytes;
        let scan = BatchScan {
            base: segment_file.base,
            file: segment_file.file,
            file_bytes,
            trusted,
            index_interval_bytes: self.config.index_interval_bytes,
        };
        let producers_before = self.producers.clone();
        // The last segment becomes the active one again: check every CRC in it even
        // when its index vouches for it (close() seals it). Trusted, a corrupt batch
        // there would stall every reader at it for good and hide each later append
        // behind it; checked, it is cut here like any corrupt tail.
        let verify_crc_from = if is_last { 0 } else { trusted_bytes };
        #[cfg(feature = "mutants")]
        let verify_crc_from = if is_last && self.config.mutants.recovery_keeps_torn_tail {
            u64::MAX
        } else {
            verify_crc_from
        };
        let (mut segment, mut end, boundary_seen) =
            scan.run(disk, &mut self.producers, verify_crc_from)?;
        if trusted_bytes > 0
            && (!boundary_seen
                || end
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.position < trusted_bytes))
        {
            // Only headers were read in the part the index vouches for, and they do
            // not agree with it (a flipped length or offset): check every CRC.
            self.producers = producers_before;
            trusted_bytes = 0;
            (segment, end, _) = scan.run(disk, &mut self.producers, 0)?;
        }
        let sealed = trusted_bytes == file_bytes && end.stop.is_none();
        if sealed && let Some(index) = trusted_index {
            // Headers were read without their CRC: take the timestamps and the
            // index entries from the checksummed index files instead.
            index.apply_to(&mut segment);
        }
        segment.state = if sealed {
            SealState::Sealed
        } else {
            SealState::NeedsIndex
        };
        let checked = Checked {
            end,
            trusted_bytes,
            proven_bytes,
            sealed,
        };
        Ok((segment, checked))
    }

    /// Cuts the bad tail (from `stop`) of a segment that is not the last, yet whose
    /// checked batches end exactly where the next segment begins, and keeps the rest.
    fn cut_stale_tail(
        &mut self,
        disk: &mut impl Disk,
        segment_file: &SegmentFile,
        checked: &Checked,
        stop: ScanStop,
    ) -> Result<(), DiskError> {
        // The tail holds no offset the log needs (a cut that an earlier recovery made
        // only in the page cache, before a failed fsync dropped it). Cut the tail, keep
        // the rest.
        cut_file_tail(disk, self.dir, segment_file, checked, stop.position)?;
        let segment = self.segments.last_mut().expect("pushed");
        segment.state = SealState::NeedsIndex;
        self.truncation.get_or_insert(Truncation {
            segment: segment_file.path.clone(),
            position: stop.position,
            offset: checked.end.next_offset.unwrap_or(segment_file.base),
            reason: format!(
                "{} (the next segment follows on, so only this tail goes)",
                stop.reason
            ),
            bytes_removed: segment_file.file_bytes - stop.position,
            damaged: false,
        });
        disk.close(segment_file.file);
        segment.file = None;
        Ok(())
    }

    /// Ends the log at `stop` in this segment: its tail and every later segment
    /// (`later`) go.
    fn cut_log_in<D: Disk>(
        &mut self,
        disk: &mut D,
        segment_file: SegmentFile,
        checked: &Checked,
        stop: ScanStop,
        later: &[i64],
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<(), LogError> {
        // Inside bytes proven durable that is damage, not a torn write: the owner
        // hears of it first.
        let offset = checked.end.next_offset.unwrap_or(segment_file.base);
        let damaged = stop.position < checked.proven_bytes || self.damage_below(offset);
        if damaged {
            on_damage(disk, offset)?;
        }
        cut_file_tail(disk, self.dir, &segment_file, checked, stop.position)?;
        let removed = remove_segments_from(disk, self.dir, later)?;
        self.truncation = Some(Truncation {
            segment: segment_file.path,
            position: stop.position,
            offset,
            reason: stop.reason,
            bytes_removed: segment_file.file_bytes - stop.position + removed,
            damaged,
        });
        Ok(())
    }

    /// Keeps a segment whose batches are all whole: makes what was checked durable,
    /// and closes the file.
    fn keep_whole(
        &mut self,
        disk: &mut impl Disk,
        segment_file: &SegmentFile,
        checked: &Checked,
    ) -> Result<(), DiskError> {
        if !checked.sealed {
            // Data that survived may be only in the page cache, and after a failed
            // fsync the kernel may hold it as clean pages that no sync will ever
            // write: write the checked bytes again, then sync them.
            let (from, to) = checked.checked_bytes();
            rewrite(disk, segment_file.file, from, to)?;
            disk.sync_now(segment_file.file)?;
        }
        disk.close(segment_file.file);
        self.segments.last_mut().expect("pushed").file = None;
        Ok(())
    }

    /// Whole batches all the way, but fewer than the record says were synced: the
    /// file lost its end (a truncation no cut made, or one this recovery made after
    /// its owner heard of the damage, and a crash before the record was lowered).
    /// Reported as damage, after `on_damage` heard of it.
    fn check_end_against_record<D: Disk>(
        &mut self,
        disk: &mut D,
        log_start_offset: i64,
        on_damage: &mut dyn FnMut(&mut D, i64) -> Result<(), DiskError>,
    ) -> Result<(), LogError> {
        if self.truncation.is_none()
            && let Some(last) = self.segments.last()
            && last.next_offset >= log_start_offset
            && self.damage_below(last.next_offset)
        {
            on_damage(disk, last.next_offset)?;
            self.truncation = Some(Truncation {
                segment: join(
                    self.dir,
                    &segment_file_name(last.base_offset, SegmentFileKind::Log),
                ),
                position: last.size_bytes,
                offset: last.next_offset,
                reason: format!(
                    "the log ends at offset {}, below the synced-through record's {}",
                    last.next_offset,
                    self.synced_through.unwrap_or_default()
                ),
                bytes_removed: 0,
                damaged: true,
            });
        }
        Ok(())
    }
}

/// One way to scan a segment file: its place, and what its index files vouch for.
#[derive(Clone, Copy)]
struct BatchScan {
    base: i64,
    file: FileId,
    file_bytes: u64,
    /// What the segment's index files vouch for, if they are valid.
    trusted: Option<SegmentSummary>,
    index_interval_bytes: u32,
}

impl BatchScan {
    /// Scans the whole file into a segment, checking CRCs from `verify_crc_from` on
    /// and recording each batch's producer in `producers`; also says whether a batch
    /// ended exactly where the index files say the trusted part does.
    fn run(
        self,
        disk: &mut impl Disk,
        producers: &mut ProducerStates,
        verify_crc_from: u64,
    ) -> Result<(Segment, ScanEnd, bool), DiskError> {
        let mut segment = Segment::new(self.base);
        segment.file = Some(self.file);
        // Whether a batch ends exactly where the index says the trusted part does.
        let mut boundary_seen = self.trusted.is_none_or(|t| t.valid_bytes == 0);
        let end = scan_file(
            disk,
            self.file,
            ScanRange {
                start_position: 0,
                end_position: self.file_bytes,
                expected_offset: Some(self.base),
                verify_crc_from,
            },
            &mut |position, header| {
                segment.add_batch(position, header, self.index_interval_bytes);
                producers.record(header);
                if let Some(t) = self.trusted
                    && segment.size_bytes == t.valid_bytes
                    && segment.next_offset == t.next_offset
                {
                    boundary_seen = true;
                }
            },
        );
        end.map(|end| (segment, end, boundary_seen))
    }
}

/// Cuts a segment file at `cut_at`, durably: its index files go first (and the
/// directory is synced), so none vouches for bytes that change; the bytes the scan
/// checked are written again; then the file is truncated and synced.
fn cut_file_tail(
    disk: &mut impl Disk,
    dir: &str,
    segment_file: &SegmentFile,
    checked: &Checked,
    cut_at: u64,
) -> Result<(), DiskError> {
    remove_index_files(disk, dir, segment_file.base)?;
    disk.sync_dir_now(dir)?;
    let (from, to) = checked.checked_bytes();
    rewrite(disk, segment_file.file, from, to)?;
    disk.truncate(segment_file.file, cut_at)?;
    disk.sync_now(segment_file.file)
}

/// The cleaner checkpoint's offset lowered to the log end offset, durably, if a cut
/// (a truncation or this recovery's) left the log ending below it: records appended
/// later must not count as cleaned.
fn lower_cleaner_checkpoint(
    disk: &mut impl Disk,
    dir: &str,
    cleaner: CleanerCheckpoint,
    log_end_offset: i64,
) -> Result<CleanerCheckpoint, DiskError> {
    let lowered = CleanerCheckpoint {
        cleaned_through: cleaner.cleaned_through.min(log_end_offset),
        first_dirty_offset: cleaner.first_dirty_offset.min(log_end_offset),
    };
    if lowered != cleaner {
        write_file_atomically(
            disk,
            dir,
            CLEANER_CHECKPOINT,
            &encode_cleaner_checkpoint(lowered),
        )?;
    }
    Ok(lowered)
}

/// Removes every segment left (none reaches the log start offset) and creates an
/// empty one there, durably.
fn start_empty(
    disk: &mut impl Disk,
    dir: &str,
    segments: &mut Vec<Segment>,
    log_start_offset: i64,
) -> Result<(), DiskError> {
    for segment in segments.drain(..) {
        if let Some(file) = segment.file {
            disk.close(file);
        }
        remove_segment_files(disk, dir, segment.base_offset)?;
    }
    let path = join(
        dir,
        &segment_file_name(log_start_offset, SegmentFileKind::Log),
    );
    let file = disk.open(&path, OpenMode::CreateNew)?;
    disk.sync_now(file)?;
    disk.close(file);
    segments.push(Segment::new(log_start_offset));
    Ok(())
}

/// Makes the last segment the active one, and syncs the directory.
fn activate_last(
    disk: &mut impl Disk,
    dir: &str,
    segments: &mut [Segment],
    now_ms: i64,
) -> Result<(), DiskError> {
    // The last segment is the active one: it has no index files.
    let last = segments.last_mut().expect("at least one segment");
    last.state = SealState::Active;
    last.first_append_ms = (!last.is_empty()).then_some(now_ms);
    remove_index_files(disk, dir, last.base_offset)?;
    disk.sync_dir_now(dir)
}

/// Removes the segments with these base offsets; returns their data bytes.
fn remove_segments_from(disk: &mut impl Disk, dir: &str, bases: &[i64]) -> Result<u64, DiskError> {
    let mut removed = 0;
    // Newest first, so a crash in between leaves a prefix of the log.
    for base in bases.iter().rev() {
        let path = join(dir, &segment_file_name(*base, SegmentFileKind::Log));
        let file = disk.open(&path, OpenMode::Read)?;
        removed += disk.file_len(file)?;
        disk.close(file);
        remove_segment_files(disk, dir, *base)?;
    }
    disk.sync_dir_now(dir)?;
    Ok(removed)
}

/// Writes bytes `from..to` of `file` again (see the recovery rules).
fn rewrite(disk: &mut impl Disk, file: FileId, from: u64, to: u64) -> Result<(), DiskError> {
    let mut buf = vec![0u8; RECOVERY_REWRITE_CHUNK_BYTES.min((to - from) as usize)];
    let mut position = from;
    while position < to {
        let len = ((to - position) as usize).min(buf.len());
        let read = read_fully(disk, file, position, &mut buf[..len])?;
        assert_eq!(read, len, "bytes just scanned are there");
        disk.write_at(file, position, &buf[..len])?;
        position += len as u64;
    }
    Ok(())
}

/// A sealed segment's index files, decoded and checked.
pub(super) struct TrustedIndex {
    pub(super) summary: SegmentSummary,
    offsets: Vec<(i64, i64)>,
    times: Vec<(i64, i64)>,
}

impl TrustedIndex {
    /// Replaces the segment's header-derived indexes and max timestamp with the
    /// index files' own, if they fit the segment.
    fn apply_to(self, segment: &mut Segment) {
        let summary = self.summary;
        if summary.next_offset != segment.next_offset || summary.valid_bytes != segment.size_bytes {
            return;
        }
        let offsets_fit = self
            .offsets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && self.offsets.iter().all(|&(offset, position)| {
                offset >= segment.base_offset
                    && offset < segment.next_offset
                    && position >= 0
                    && (position as u64) < segment.size_bytes
            });
        let times_fit = self.times.windows(2).all(|w| w[0].0 < w[1].0)
            && self
                .times
                .iter()
                .all(|&(_, offset)| offset >= segment.base_offset && offset < segment.next_offset);
        if !offsets_fit || !times_fit || self.offsets.len() > INDEX_ENTRIES_MAX {
            return;
        }
        segment.offset_index = self.offsets.iter().map(|&(o, p)| (o, p as u64)).collect();
        segment.time_index = self.times;
        segment.max_timestamp = (summary.offset_of_max_timestamp >= 0)
            .then_some((summary.max_timestamp, summary.offset_of_max_timestamp));
    }
}

/// What segment `base`'s index files vouch for: their trailers agree, their checksums
/// match, and the data file is at least as long as they say. `None` if not.
fn trusted_index(
    disk: &mut impl Disk,
    dir: &str,
    base: i64,
    file_bytes: u64,
) -> Option<TrustedIndex> {
    let mut files = Vec::new();
    for kind in [SegmentFileKind::OffsetIndex, SegmentFileKind::TimeIndex] {
        let path = join(dir, &segment_file_name(base, kind));
        if !disk.exists(&path) {
            return None;
        }
        files.push(read_whole_file(disk, &path).ok()?);
    }
    trusted_from(base, &files[0], &files[1], file_bytes)
}

/// What recovery trusts of a segment given the bytes of its two index files and the
/// length of its data file: `None` unless both decode, agree, and fit in the file.
pub(super) fn trusted_from(
    base: i64,
    offset_index: &[u8],
    time_index: &[u8],
    file_bytes: u64,
) -> Option<TrustedIndex> {
    let (summary, offsets) = decode_index(SegmentFileKind::OffsetIndex, offset_index).ok()?;
    let (times_summary, times) = decode_index(SegmentFileKind::TimeIndex, time_index).ok()?;
    if times_summary != summary || summary.base_offset != base || summary.valid_bytes > file_bytes {
        return None;
    }
    Some(TrustedIndex {
        summary,
        offsets,
        times,
    })
}
