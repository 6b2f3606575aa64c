//! When the log cleaner runs: one bounded step at a time, on the node's event loop.
//!
//! ```text
//!  a compacted replica exists ──► timer (Clean) ──► a partition with work?
//!        (opened, created,            │ none: sleep log.cleaner.backoff.ms
//!         config changed)             │ one: clean_step(budget) on it, next step in
//!                                     │      CLEANER_STEP_INTERVAL_MS; it keeps the
//!                                     │      turn until its pass is done, then the
//!                                     │      partitions after it come first
//!                                     └ no compacted replica left: the timer stops
//! ```
//!
//! Each replica cleans its own log (as in Kafka), only below its high watermark: what
//! a crash or a new leader could still cut is never rewritten. The cleaner keeps every
//! offset inside a batch (docs/storage.md, "Compaction"), so a follower's log and the
//! Raft view of it stay contiguous.

use std::ops::Bound;

use odradek_log::io::Duration;
use odradek_log::partition::CleanProgress;

use crate::io_waits::TimerPurpose;
use crate::node::{CLEANER_STEP_INTERVAL_MS, Node, NodeIo};
use crate::topics::TopicPartition;

impl Node {
    /// Sets the cleaner's timer `after_ms` from now, unless it is set, the cleaner is
    /// off, or no replica here is compacted.
    pub(crate) fn schedule_cleaner(&mut self, io: &mut impl NodeIo, after_ms: u64) {
        if !self.config.log_cleaner_enable || self.io_waits.cleaner_set() {
            return;
        }
        let compacted = self
            .partitions
            .values()
            .any(|replica| replica.log().config().cleanup_policy.compacts());
        if !compacted {
            return;
        }
        let at = io.now() + Duration::from_millis(after_ms);
        self.set_timer(io, at, TimerPurpose::Clean);
    }

    /// The cleaner's timer fired: one step on the partition whose turn it is.
    pub(crate) fn run_cleaner(&mut self, io: &mut impl NodeIo) {
        let now_ms = io.wall_clock_ms();
        let Some(key) = self.next_to_clean(now_ms) else {
            let backoff = self.config.log_cleaner_backoff_ms.max(1) as u64;
            self.schedule_cleaner(io, backoff);
            return;
        };
        let budget = self.config.log_cleaner_step_bytes.max(1);
        let replica = self.partitions.get_mut(&key).expect("found");
        let offset_max = replica.high_watermark();
        let stepped = replica.log_mut().clean_step(io, now_ms, offset_max, budget);
        let mid_pass = matches!(stepped, Ok(CleanProgress::Working { .. }));
        self.cleaning = Some((key.clone(), mid_pass));
        if let Err(error) = stepped {
            tracing::warn!("cleaning {key:?}: {error}");
            if let odradek_log::LogError::Corrupt { offset, .. } = error {
                // Damaged on disk: driving repairs it (decision 0010).
                replica.note_damage(offset);
                self.drive_partition(io, &key);
            } else if replica.log().failure().is_some() {
                self.fail_waiters(io, &key);
            }
        }
        self.schedule_cleaner(io, CLEANER_STEP_INTERVAL_MS);
    }

    /// The partition whose turn it is: the one being cleaned if its pass goes on,
    /// else the first with work after it (in key order, wrapping around).
    fn next_to_clean(&self, now_ms: i64) -> Option<TopicPartition> {
        let has_work = |replica: &crate::replica::Replica| {
            replica
                .log()
                .needs_cleaning(now_ms, replica.high_watermark())
        };
        let Some((last, mid_pass)) = &self.cleaning else {
            return self
                .partitions
                .iter()
                .find(|(_, replica)| has_work(replica))
                .map(|(key, _)| key.clone());
        };
        if *mid_pass && self.partitions.get(last).is_some_and(has_work) {
            return Some(last.clone());
        }
        let after = self
            .partitions
            .range((Bound::Excluded(last.clone()), Bound::Unbounded));
        let before = self.partitions.range(..=last.clone());
        after
            .chain(before)
            .find(|(_, replica)| has_work(replica))
            .map(|(key, _)| key.clone())
    }
}
