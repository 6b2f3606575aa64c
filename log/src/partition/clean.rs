//! The log cleaner of one partition (`docs/storage.md` §13): log compaction in
//! bounded steps, so that a caller can run it a little at a time, between appends.
//!
//! ```text
//!  clean_step(budget) ─► no pass? plan one: the cleanable range (sealed segments,
//!                        durable, below offset_max, older than min.compaction.lag.ms)
//!                        and enough dirt (ratio, or max.compaction.lag.ms)
//!    Mapping:   dirty batches [first dirty, range end) ─► key map (bounded: the
//!               cleaning point stops where the map is full)
//!    Rewriting: each segment below the cleaning point, oldest first:
//!               batches ─► cleaning::clean_batch ─► <base>.log.cleaned
//!               (dropped batches in a row, one epoch ─► one filler batch)
//!               (the next segments join while the cleaned bytes fit segment.bytes:
//!               a group of segments becomes one, named after the first)
//!               changed? sync it ─► cleaner checkpoint ─► old index files gone
//!                        ─► rename over <first>.log ─► other grouped .log files gone
//!                        ─► new index files (sealed)
//!    done ─► cleaned_through = the cleaning point
//! ```
//!
//! Every batch read is checked whole (CRC) before the cleaner uses it; a bad one ends
//! the pass with `Corrupt`, and nothing of the pass's unfinished segment is kept.

use super::{LogError, PartitionLog, SealState, Segment, next_header, remove_index_files};
use crate::batch::{self, BatchHeader};
use crate::cleaning::{CleanRules, FillerRun, KeyMap, OpenedBatch, Verdict, clean_batch};
use crate::constants::CLEANER_MAP_BYTES_MAX;
use crate::io::{Disk, DiskError, FileId, OpenMode};
use crate::producer::ProducerEntry;
use crate::segment::{
    CLEANED_SUFFIX, CLEANER_CHECKPOINT, CleanerCheckpoint, SegmentFileKind,
    encode_cleaner_checkpoint, join, read_fully, segment_file_name,
};

/// What [`PartitionLog::clean_step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanProgress {
    /// Nothing to clean now: the policy does not compact, or no range is cleanable
    /// and dirty enough.
    Idle,
    /// A pass is under way; the budget ran out. Call again.
    Working {
        /// Bytes read and written by this step.
        bytes: u64,
    },
    /// A pass ended in this step.
    PassDone {
        /// Bytes read and written by this step.
        bytes: u64,
        /// Offsets below this are cleaned (the pass's cleaning point).
        cleaned_through: i64,
    },
}

/// A cleaning pass under way.
#[derive(Debug)]
pub(super) struct Pass {
    /// The dirty part starts here: the map covers `[first_dirty, cleaning_point)`.
    first_dirty: i64,
    /// The end of the cleanable range (a segment boundary).
    range_end: i64,
    /// Batches at or above it are kept as they are; final once mapping ends.
    cleaning_point: i64,
    map: KeyMap,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    /// Reading the dirty part into the map: the next batch is at `position` of the
    /// segment based at `segment_base`, and follows `expected`.
    Mapping {
        segment_base: i64,
        position: u64,
        expected: i64,
    },
    /// Rewriting the segment based at `segment_base` (the next one once `rewrite`
    /// is `None`), oldest first, up to the cleaning point.
    Rewriting {
        segment_base: i64,
        rewrite: Option<Box<Rewrite>>,
    },
}

/// One group of segments (one or more in a row) being rewritten into one `.cleaned`
/// file, named after the first.
#[derive(Debug)]
struct Rewrite {
    file: FileId,
    path: String,
    /// Next batch of the old segment being read (the phase's `segment_base`).
    read_position: u64,
    /// The offset the old segment's next batch follows.
    expected: i64,
    /// The cleaned segment as written so far, based at the group's first base.
    segment: Segment,
    /// Dropped batches not yet written as their filler.
    run: Option<FillerRun>,
    /// A batch was dropped or rewritten, or segments were grouped: the cleaned file
    /// differs from the old ones.
    changed: bool,
}

/// Bytes a step may still read and write; the first batch always goes, so every
/// step makes progress.
struct Budget {
    bytes_max: u64,
    spent: u64,
}

impl Budget {
    fn exhausted(&self) -> bool {
        self.spent > 0 && self.spent >= self.bytes_max
    }
}

impl PartitionLog {
    /// Whether the cleaner has work: the policy compacts, and a pass is under way or
    /// a cleanable range below `offset_max` (the high watermark for a replica) is
    /// dirty enough (`min.cleanable.dirty.ratio`) or has waited longer than
    /// `max.compaction.lag.ms`.
    pub fn needs_cleaning(&self, now_ms: i64, offset_max: i64) -> bool {
        self.config.cleanup_policy.compacts()
            && self.failure.is_none()
            && (self.cleaning.is_some() || self.plan_pass(now_ms, offset_max).is_some())
    }

    /// Below this offset the cleaner may have removed records (a pass swapped, or was
    /// about to swap, segments there); `None` before the first pass. Every record at
    /// or above it is as it was appended.
    pub fn cleaned_through(&self) -> Option<i64> {
        (self.cleaned_through != i64::MIN).then_some(self.cleaned_through)
    }

    /// Kafka's first dirty offset: every pass that finished cleaned the log below it;
    /// `None` before the first one.
    pub fn first_dirty_offset(&self) -> Option<i64> {
        (self.first_dirty_offset != i64::MIN).then_some(self.first_dirty_offset)
    }

    /// Runs the log cleaner for about `budget_bytes` of reads and writes (at least one
    /// batch): starts a pass if one is wanted ([`PartitionLog::needs_cleaning`]),
    /// maps the dirty part, rewrites segments and swaps each in crash-safely. Never
    /// touches the active segment, nor a segment holding an offset `>= offset_max` or
    /// `>= durable_offset`, nor one not sealed. Segment swaps use blocking syncs: the
    /// cleaner is not on the produce path. A `Corrupt` batch ends the pass; a disk
    /// error too (and takes the log offline if a swap was half done).
    pub fn clean_step(
        &mut self,
        disk: &mut impl Disk,
        now_ms: i64,
        offset_max: i64,
        budget_bytes: u64,
    ) -> Result<CleanProgress, LogError> {
        if self.failure.is_some() {
            return Err(LogError::Failed);
        }
        if !self.config.cleanup_policy.compacts() {
            self.abort_cleaning(disk);
            return Ok(CleanProgress::Idle);
        }
        if self.cleaning.is_none() {
            self.cleaning = self.plan_pass(now_ms, offset_max);
            if self.cleaning.is_none() {
                return Ok(CleanProgress::Idle);
            }
        }
        let mut budget = Budget {
            bytes_max: budget_bytes,
            spent: 0,
        };
        let result = self.run_pass(disk, now_ms, &mut budget);
        if result.is_err() {
            self.abort_cleaning(disk);
        }
        self.check_invariants();
        let bytes = budget.spent;
        Ok(match result? {
            Some(cleaned_through) => CleanProgress::PassDone {
                bytes,
                cleaned_through,
            },
            None => CleanProgress::Working { bytes },
        })
    }

    /// Steps the pass until the budget runs out (`None`) or the pass ends (the
    /// cleaning point).
    fn run_pass(
        &mut self,
        disk: &mut impl Disk,
        now_ms: i64,
        budget: &mut Budget,
    ) -> Result<Option<i64>, LogError> {
        loop {
            let pass = self.cleaning.as_ref().expect("a pass under way");
            let done = match pass.phase {
                Phase::Mapping { .. } => {
                    self.map_batch(disk, budget)?;
                    false
                }
                Phase::Rewriting { .. } => self.rewrite_batch(disk, now_ms, budget)?,
            };
            if done {
                let pass = self.cleaning.take().expect("a pass under way");
                self.persist_cleaner(
                    disk,
                    self.cleaned_through.max(pass.cleaning_point),
                    pass.cleaning_point,
                )?;
                return Ok(Some(pass.cleaning_point));
            }
            if budget.exhausted() {
                return Ok(None);
            }
        }
    }

    /// Ends the pass under way, if any, removing its unfinished `.cleaned` file. Every
    /// operation that removes or cuts segments calls it first: the pass's plan named
    /// them.
    pub(super) fn abort_cleaning(&mut self, disk: &mut impl Disk) {
        if let Some(Pass {
            phase:
                Phase::Rewriting {
                    rewrite: Some(rewrite),
                    ..
                },
            ..
        }) = self.cleaning.take()
        {
            disk.close(rewrite.file);
            // A leftover is removed on the next open or overwritten by the next pass.
            let _ = disk.remove_file(&rewrite.path);
        }
    }

    /// The pass to start now, if one is wanted.
    fn plan_pass(&self, now_ms: i64, offset_max: i64) -> Option<Pass> {
        let first_dirty = self.first_dirty_offset.max(self.log_start_offset);
        let range_end = self.cleanable_end(now_ms, offset_max);
        if range_end <= first_dirty || !self.dirty_enough(first_dirty, range_end, now_ms) {
            return None;
        }
        let segment = &self.segments[self.segment_index(first_dirty)];
        let (expected, position) = segment.lookup(first_dirty);
        Some(Pass {
            first_dirty,
            range_end,
            cleaning_point: range_end,
            map: KeyMap::default(),
            phase: Phase::Mapping {
                segment_base: segment.base_offset,
                position,
                expected,
            },
        })
    }

    /// The end of the cleanable range: the closed segments from the first one on that
    /// are sealed, durable, wholly below `offset_max`, and whose newest batch is at
    /// least `min.compaction.lag.ms` old.
    fn cleanable_end(&self, now_ms: i64, offset_max: i64) -> i64 {
        let limit = self.durable_offset.min(offset_max);
        let lag = self.config.min_compaction_lag_ms;
        let mut end = self.segments[0].base_offset;
        for segment in &self.segments[..self.segments.len() - 1] {
            let young = segment
                .max_timestamp
                .is_some_and(|(ts, _)| now_ms.saturating_sub(ts) < lag);
            if segment.state != SealState::Sealed || segment.next_offset > limit || young {
                break;
            }
            end = segment.next_offset;
        }
        end
    }

    /// Whether `[first_dirty, range_end)` is dirty enough to clean: its bytes are at
    /// least `min.cleanable.dirty.ratio` of the cleanable log's, or its first segment's
    /// newest batch waited longer than `max.compaction.lag.ms`.
    fn dirty_enough(&self, first_dirty: i64, range_end: i64, now_ms: i64) -> bool {
        let cleanable = || self.segments.iter().filter(|s| s.next_offset <= range_end);
        let total: u64 = cleanable().map(|s| s.size_bytes).sum();
        let mut dirty = cleanable().filter(|s| s.next_offset > first_dirty);
        let dirty_bytes: u64 = dirty.clone().map(|s| s.size_bytes).sum();
        let ratio = u64::from(self.config.min_cleanable_dirty_ratio_per_mille);
        let overdue = dirty
            .next()
            .and_then(|s| s.max_timestamp)
            .is_some_and(|(ts, _)| now_ms.saturating_sub(ts) > self.config.max_compaction_lag_ms);
        dirty_bytes > 0
            && (dirty_bytes.saturating_mul(1000) >= ratio.saturating_mul(total) || overdue)
    }

    /// Maps the next dirty batch, or moves the mapping on (to the next segment, or to
    /// rewriting once the range is mapped or the map is full).
    fn map_batch(&mut self, disk: &mut impl Disk, budget: &mut Budget) -> Result<(), LogError> {
        let pass = self.cleaning.as_ref().expect("a pass under way");
        let Phase::Mapping {
            segment_base,
            position,
            expected,
        } = pass.phase
        else {
            unreachable!("mapping");
        };
        let (first_dirty, range_end) = (pass.first_dirty, pass.range_end);
        let index = self.index_of(segment_base);
        if segment_base >= range_end {
            return self.start_rewriting(range_end);
        }
        if position >= self.segments[index].size_bytes {
            let next = self.segments[index].next_offset;
            self.set_phase(Phase::Mapping {
                segment_base: next,
                position: 0,
                expected: next,
            });
            return Ok(());
        }
        let (header, bytes) = self.read_stored_batch(disk, index, position, expected)?;
        budget.spent += header.size_bytes();
        if header.base_offset >= first_dirty
            && !header.is_control()
            && let Some(opened) = OpenedBatch::open(&bytes, &header)
        {
            let records = opened.records().expect("opened batches parse");
            let pass = self.cleaning.as_mut().expect("a pass under way");
            if !pass.map.add_batch(&records, CLEANER_MAP_BYTES_MAX) {
                return self.start_rewriting(header.base_offset);
            }
        }
        self.set_phase(Phase::Mapping {
            segment_base,
            position: position + header.size_bytes(),
            expected: header.next_offset(),
        });
        Ok(())
    }

    /// Mapping is over: batches below `cleaning_point` are cleaned, from the first
    /// segment on.
    fn start_rewriting(&mut self, cleaning_point: i64) -> Result<(), LogError> {
        let first_base = self.segments[0].base_offset;
        let pass = self.cleaning.as_mut().expect("a pass under way");
        pass.cleaning_point = cleaning_point;
        pass.phase = Phase::Rewriting {
            segment_base: first_base,
            rewrite: None,
        };
        Ok(())
    }

    fn set_phase(&mut self, phase: Phase) {
        self.cleaning.as_mut().expect("a pass under way").phase = phase;
    }

    /// The index of the segment based at `base`, which a pass under way relies on.
    fn index_of(&self, base: i64) -> usize {
        let index = self.segment_index(base);
        // Operations that remove or cut segments abort the pass first.
        assert!(
            self.segments[index].base_offset == base,
            "the cleaner's segment {base} is gone"
        );
        index
    }

    /// The batch at `position` of segment `index`, which follows `expected`, read whole
    /// and checked (CRC and the fields outside it, as read twice).
    fn read_stored_batch(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        position: u64,
        expected: i64,
    ) -> Result<(BatchHeader, Vec<u8>), LogError> {
        let end = self.segments[index].size_bytes;
        let file = self.segment_file(disk, index)?;
        let header = next_header(disk, file, position, end, expected)?;
        let mut bytes = vec![0u8; header.size_bytes() as usize];
        let read = read_fully(disk, file, position, &mut bytes)?;
        let corrupt = |reason: String| LogError::Corrupt {
            offset: header.base_offset,
            reason,
        };
        if read < bytes.len() {
            return Err(corrupt(format!("short batch at position {position}")));
        }
        let checked =
            batch::validate_stored(&bytes, u32::MAX).map_err(|error| corrupt(error.to_string()))?;
        if checked.base_offset != header.base_offset
            || checked.partition_leader_epoch != header.partition_leader_epoch
        {
            return Err(corrupt(format!(
                "batch at position {position} read back differently"
            )));
        }
        Ok((checked, bytes))
    }
}

/// Rewriting and the swap.
impl PartitionLog {
    /// Cleans the next batch of the segment being rewritten (starting or finishing
    /// segments as needed). True once every segment below the cleaning point is done.
    fn rewrite_batch(
        &mut self,
        disk: &mut impl Disk,
        now_ms: i64,
        budget: &mut Budget,
    ) -> Result<bool, LogError> {
        let pass = self.cleaning.as_mut().expect("a pass under way");
        let cleaning_point = pass.cleaning_point;
        let Phase::Rewriting {
            segment_base,
            rewrite,
        } = &mut pass.phase
        else {
            unreachable!("rewriting");
        };
        let (segment_base, rewrite) = (*segment_base, rewrite.take());
        let index = self.segment_index(segment_base);
        if segment_base >= cleaning_point || index == self.segments.len() - 1 {
            return Ok(true);
        }
        let Some(mut current) = rewrite else {
            let started = self.start_segment_rewrite(disk, segment_base)?;
            self.set_phase(Phase::Rewriting {
                segment_base,
                rewrite: Some(Box::new(started)),
            });
            return Ok(false);
        };
        if current.read_position >= self.segments[index].size_bytes {
            let next = self.segments[index].next_offset;
            if self.joins_group(index, &current, cleaning_point) {
                // The next segment goes on into this cleaned file, and so may the run
                // of dropped batches: the group becomes one segment.
                current.read_position = 0;
                current.changed = true;
                self.set_phase(Phase::Rewriting {
                    segment_base: next,
                    rewrite: Some(current),
                });
                return Ok(false);
            }
            // A run never spans two segments: its filler ends this one.
            self.write_run(disk, &mut current, budget)?;
            self.finish_group(disk, index, *current)?;
            self.set_phase(Phase::Rewriting {
                segment_base: next,
                rewrite: None,
            });
            return Ok(false);
        }
        let outcome = self.clean_one(disk, index, &mut current, now_ms, budget);
        self.set_phase(Phase::Rewriting {
            segment_base,
            rewrite: Some(current),
        });
        outcome.map(|()| false)
    }

    /// Opens a fresh `<base>.log.cleaned` for the segment based at `base`.
    fn start_segment_rewrite(
        &mut self,
        disk: &mut impl Disk,
        base: i64,
    ) -> Result<Rewrite, LogError> {
        let name = segment_file_name(base, SegmentFileKind::Log);
        let path = join(&self.dir, &format!("{name}{CLEANED_SUFFIX}"));
        let file = disk.open(&path, OpenMode::Create)?;
        if let Err(error) = disk.truncate(file, 0) {
            disk.close(file);
            return Err(error.into());
        }
        Ok(Rewrite {
            file,
            path,
            read_position: 0,
            expected: base,
            segment: Segment::new(base),
            run: None,
            changed: false,
        })
    }

    /// Reads the next batch of segment `index`, decides its fate and writes what stays:
    /// a dropped batch joins the run of dropped batches (whose filler is written when
    /// a batch that cannot join comes, or the segment ends).
    fn clean_one(
        &mut self,
        disk: &mut impl Disk,
        index: usize,
        current: &mut Rewrite,
        now_ms: i64,
        budget: &mut Budget,
    ) -> Result<(), LogError> {
        let position = current.read_position;
        let (header, bytes) = self.read_stored_batch(disk, index, position, current.expected)?;
        budget.spent += header.size_bytes();
        let verdict = self.verdict(&header, &bytes, now_ms);
        current.read_position += header.size_bytes();
        current.expected = header.next_offset();
        let kept = match verdict {
            Verdict::Keep => bytes,
            Verdict::Rewrite { bytes, .. } => bytes,
            Verdict::Drop => {
                if current.run.as_mut().is_some_and(|run| run.extend(&header)) {
                    return Ok(());
                }
                self.write_run(disk, current, budget)?;
                current.run = Some(FillerRun::start(&header));
                return Ok(());
            }
        };
        self.write_run(disk, current, budget)?;
        let kept_header = self.write_cleaned(disk, current, &kept, budget)?;
        current.changed |= kept_header != header;
        Ok(())
    }

    /// The fate of the whole, checked batch `bytes` (header `header`) in this pass.
    fn verdict(&self, header: &BatchHeader, bytes: &[u8], now_ms: i64) -> Verdict {
        let pass = self.cleaning.as_ref().expect("a pass under way");
        // The batch may go only if a later batch of its producer is durable (below
        // the cleanable range's end): a crash could take every later one that is not,
        // and the producer state rebuilt on open would forget the producer.
        let later_durable = |entry: ProducerEntry| {
            entry.batches.iter().any(|later| {
                later.base_offset > header.base_offset && later.base_offset < pass.range_end
            })
        };
        let last_of_producer = header.producer_id >= 0
            && !self
                .producers
                .entry(header.producer_id)
                .is_some_and(later_durable);
        let rules = CleanRules {
            map: &pass.map,
            cleaning_point: pass.cleaning_point,
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            keep_empty: last_of_producer,
            tombstones_at_once: self.mutant_tombstones_at_once(),
            keep_older_in_batch: self.mutant_keep_older(),
        };
        clean_batch(bytes, header, &rules)
    }

    /// Writes the filler of the run of dropped batches, if there is one.
    fn write_run(
        &mut self,
        disk: &mut impl Disk,
        current: &mut Rewrite,
        budget: &mut Budget,
    ) -> Result<(), LogError> {
        let Some(run) = current.run.take() else {
            return Ok(());
        };
        current.changed |= run.changes_segment();
        self.write_cleaned(disk, current, &run.filler(), budget)?;
        Ok(())
    }

    /// Appends the batch `bytes` to the cleaned file; returns its header.
    fn write_cleaned(
        &mut self,
        disk: &mut impl Disk,
        current: &mut Rewrite,
        bytes: &[u8],
        budget: &mut Budget,
    ) -> Result<BatchHeader, LogError> {
        let header =
            batch::validate_stored(bytes, u32::MAX).expect("the cleaner writes valid batches");
        let at = current.segment.size_bytes;
        disk.write_at(current.file, at, bytes)?;
        budget.spent += bytes.len() as u64;
        let interval = self.config.index_interval_bytes;
        current.segment.add_batch(at, &header, interval);
        Ok(header)
    }

    /// Whether the segment after segment `index` (just read through) joins the group
    /// being written to `current`: it is below the cleaning point and not the active
    /// segment, and the group's cleaned bytes so far plus its bytes fit in
    /// `segment.bytes` (Kafka's rule; a rewritten batch may grow by a few bytes of
    /// timestamp deltas, so the group may exceed it by that much).
    fn joins_group(&self, index: usize, current: &Rewrite, cleaning_point: i64) -> bool {
        if index + 2 >= self.segments.len() {
            return false;
        }
        let next = &self.segments[index + 1];
        // Our index files hold whole offsets; the span is bounded as Kafka bounds it
        // (its index holds i32 offsets relative to the base), so a grouped segment
        // spans no more offsets than a Kafka one could.
        let span = next.next_offset - current.segment.base_offset;
        // The run of dropped batches not yet written becomes one filler.
        let pending = current
            .run
            .as_ref()
            .map_or(0, |run| run.filler().len() as u64);
        next.base_offset < cleaning_point
            && next.state == SealState::Sealed
            && current.segment.size_bytes + pending + next.size_bytes
                <= self.config.segment_bytes_effective()
            && span <= i64::from(i32::MAX)
    }

    /// The group ending with the old segment `last` is read through: swaps the cleaned
    /// file in if it differs (a group of two or more always does), else drops it.
    fn finish_group(
        &mut self,
        disk: &mut impl Disk,
        last: usize,
        current: Rewrite,
    ) -> Result<(), LogError> {
        if !current.changed {
            disk.close(current.file);
            let _ = disk.remove_file(&current.path);
            return Ok(());
        }
        let first = self.index_of(current.segment.base_offset);
        let old = &self.segments[last];
        // Kept batches and fillers cover every offset of the group, and a filler has
        // the epoch of the batches it replaces: neither its end nor its last epoch moves.
        assert_eq!(current.segment.next_offset, old.next_offset);
        assert_eq!(current.segment.last_epoch, old.last_epoch);
        self.swap(disk, first, last, current)
    }

    /// Replaces segments `first..=last` by their cleaned file, crash-safely
    /// (`docs/storage.md` §13): the cleaned file durable, the cleaner checkpoint
    /// durable, every old index file gone durably, the rename over the first
    /// segment's `.log` durable (the commit), the other segments' `.log` files gone
    /// one by one, durably, then new index files.
    fn swap(
        &mut self,
        disk: &mut impl Disk,
        first: usize,
        last: usize,
        current: Rewrite,
    ) -> Result<(), LogError> {
        let base = self.segments[first].base_offset;
        let log_path = join(&self.dir, &segment_file_name(base, SegmentFileKind::Log));
        if let Err(error) = self.prepare_swap(disk, &current) {
            // Nothing changed yet: the cleaned file is simply dropped.
            disk.close(current.file);
            let _ = disk.remove_file(&current.path);
            return Err(error.into());
        }
        let members: Vec<i64> = self.segments[first..=last]
            .iter()
            .map(|s| s.base_offset)
            .collect();
        if self.mutant_swap_unsafe() {
            let _ = disk.remove_file(&log_path);
        }
        disk.close(current.file);
        if let Err(error) = self.unindex_members(disk, first, last) {
            // The old segments stay, to be sealed again by a sync round.
            let _ = disk.remove_file(&current.path);
            return Err(error.into());
        }
        let renamed = disk
            .rename(&current.path, &log_path)
            .and_then(|()| disk.sync_dir_now(&self.dir));
        if let Err(error) = renamed {
            // Which file is under the name now, only recovery can tell.
            self.failure = Some(error.clone());
            return Err(error.into());
        }
        let mut segment = current.segment;
        segment.state = SealState::NeedsIndex;
        self.segments.splice(first..=last, [segment]);
        if let Err(error) = self.remove_grouped(disk, &members[1..]) {
            // Leftovers overlap the grouped segment: only recovery removes them safely.
            self.failure = Some(error.clone());
            return Err(error.into());
        }
        if self.write_index_files_now(disk, first).is_ok() {
            self.segments[first].state = SealState::Sealed;
        } else {
            // A sync round writes them later; recovery checks the segment meanwhile.
            let _ = remove_index_files(disk, &self.dir, base);
        }
        Ok(())
    }

    /// Makes the cleaned file durable, then the cleaner checkpoint that says its
    /// offsets may be cleaned.
    fn prepare_swap(&mut self, disk: &mut impl Disk, current: &Rewrite) -> Result<(), DiskError> {
        let cleaning_point = self
            .cleaning
            .as_ref()
            .expect("a pass under way")
            .cleaning_point;
        if !self.mutant_swap_unsafe() {
            disk.sync_now(current.file)?;
        }
        self.persist_cleaned_through(disk, cleaning_point)
    }

    /// Closes segments `first..=last` and removes their index files, durably: no index
    /// file may vouch for old bytes once a cleaned file is under their names.
    fn unindex_members(
        &mut self,
        disk: &mut impl Disk,
        first: usize,
        last: usize,
    ) -> Result<(), DiskError> {
        for index in first..=last {
            let segment = &mut self.segments[index];
            let base = segment.base_offset;
            if let Some(file) = segment.file.take() {
                disk.close(file);
            }
            segment.state = SealState::NeedsIndex;
            self.open_segments.retain(|b| *b != base);
        }
        for index in first..=last {
            remove_index_files(disk, &self.dir, self.segments[index].base_offset)?;
        }
        disk.sync_dir_now(&self.dir)
    }

    /// Removes the `.log` files of the grouped segments after the first (`bases`),
    /// oldest first, syncing the directory after each: whatever a crash keeps of them
    /// is then a run of the newest, which ends where the group ends. Recovery removes
    /// them when the grouped segment covers them, and keeps them (the old, uncleaned
    /// copies, contiguous with the next segment) when the grouped segment lies
    /// below the log start offset and is deleted (`docs/storage.md` §13).
    fn remove_grouped(&mut self, disk: &mut impl Disk, bases: &[i64]) -> Result<(), DiskError> {
        for base in bases {
            super::remove_segment_files(disk, &self.dir, *base)?;
            disk.sync_dir_now(&self.dir)?;
        }
        Ok(())
    }

    /// Raises `cleaned_through` to `offset`, durably, before the first cleaned segment
    /// below it is swapped in: after a crash, it must still be true that every record
    /// at or above it is as appended.
    fn persist_cleaned_through(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
    ) -> Result<(), DiskError> {
        if self.cleaned_through >= offset {
            return Ok(());
        }
        self.persist_cleaner(disk, offset, self.first_dirty_offset)
    }

    /// Writes the cleaner checkpoint atomically and takes its offsets.
    fn persist_cleaner(
        &mut self,
        disk: &mut impl Disk,
        cleaned_through: i64,
        first_dirty_offset: i64,
    ) -> Result<(), DiskError> {
        let checkpoint = CleanerCheckpoint {
            cleaned_through,
            first_dirty_offset,
        };
        super::write_file_atomically(
            disk,
            &self.dir,
            CLEANER_CHECKPOINT,
            &encode_cleaner_checkpoint(checkpoint),
        )?;
        self.cleaned_through = cleaned_through;
        self.first_dirty_offset = first_dirty_offset;
        Ok(())
    }

    /// Lowers the cleaner's offsets to the log end offset after a cut below them,
    /// durably if it can (recovery lowers them too, so a failure here costs nothing
    /// but offsets counted clean a little longer).
    pub(super) fn lower_cleaned_through(&mut self, disk: &mut impl Disk) {
        let end = self.log_end_offset();
        if self.cleaned_through <= end && self.first_dirty_offset <= end {
            return;
        }
        let lowered = (
            self.cleaned_through.min(end),
            self.first_dirty_offset.min(end),
        );
        if self.persist_cleaner(disk, lowered.0, lowered.1).is_err() {
            (self.cleaned_through, self.first_dirty_offset) = lowered;
        }
    }

    fn mutant_tombstones_at_once(&self) -> bool {
        #[cfg(feature = "mutants")]
        return self.config.mutants.tombstones_removed_at_once;
        #[cfg(not(feature = "mutants"))]
        false
    }

    fn mutant_keep_older(&self) -> bool {
        #[cfg(feature = "mutants")]
        return self.config.mutants.cleaner_drops_newest_value;
        #[cfg(not(feature = "mutants"))]
        false
    }

    fn mutant_swap_unsafe(&self) -> bool {
        #[cfg(feature = "mutants")]
        return self.config.mutants.swap_not_crash_safe;
        #[cfg(not(feature = "mutants"))]
        false
    }
}
