//! What the compaction workload wrote, and the checker of a compacted partition.
//!
//! The keyed writes of a compacted topic do not go into the main [`History`]: the
//! log specification of the linearizability checker says a poll returns every offset,
//! and on a compacted log the cleaner removes records on purpose. They are recorded
//! here instead ([`KeyedHistory`]) and checked by [`CompactionChecker`], which sees
//! every Fetch answer of the compacted partition when a broker sends it, and at the
//! end every replica's committed log. The rules:
//!
//! - (a) *a record's offset never changes*: a record read at offset `o` holds the key
//!   and value acknowledged at `o`, and every read of `o` (by any broker, any replica)
//!   finds the same key and value as the first;
//! - (d) *a read is a subsequence of the log*: batches come in order, each starting
//!   right after the previous one (fillers included), records in offset order;
//! - (c) *nothing at or above the cleaning point disappears*: an acknowledged record
//!   in the range a read covers, at or above the highest cleaning point any replica
//!   ever had (`PartitionLog::cleaned_through`), is in the read;
//! - (b) *the newest value of a key stays*: an acknowledged record missing from a
//!   read that covers its offset must have been replaced, that is, its key has an
//!   acknowledged write at a higher offset or a write whose offset is unknown
//!   (in flight, indefinite, or a request the network delivered twice); or it is a
//!   tombstone old enough to have expired: `delete.retention.ms` of broker wall time
//!   since it was sent, less the largest drift. Clock steps move the wall clock, and
//!   replicas of a cluster stamp delete horizons with clocks that differ, so with a
//!   clock step on or in a cluster a tombstone may go at any time.
//!
//! (e) replicas agree on every offset they both hold follows from (a): each replica's
//! log at the end is checked as one more read.

use std::collections::BTreeMap;

use crate::records::FetchedBatch;

/// A millisecond in simulated nanoseconds.
const MS: u64 = 1_000_000;

/// How a keyed write ended, as far as its producer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteState {
    /// The request is in flight.
    Pending,
    /// Acknowledged at this offset.
    Acknowledged(i64),
    /// Certainly not written.
    Failed,
    /// Maybe written, somewhere.
    Indefinite,
}

/// One record the compaction workload sent.
#[derive(Clone, Debug)]
struct KeyedWrite {
    key: u64,
    /// `None` for a tombstone.
    value: Option<u64>,
    invoked_ns: u64,
    state: WriteState,
    /// The network delivered its request more than once: a copy may sit at an offset
    /// nobody acknowledged (the producer is not idempotent).
    duplicated: bool,
}

/// The keyed writes of the compacted partition, by the producer that sent them.
#[derive(Debug, Default)]
pub struct KeyedHistory {
    writes: Vec<KeyedWrite>,
    /// Acknowledged offset -> write.
    acknowledged: BTreeMap<i64, usize>,
    /// Value -> write (values are unique; tombstones have none).
    by_value: BTreeMap<u64, usize>,
    /// Per key: writes whose offset is unknown (pending, indefinite, duplicated).
    uncertain: BTreeMap<u64, u32>,
    /// Per key: the highest acknowledged offset.
    newest_acknowledged: BTreeMap<u64, i64>,
    /// Requests in flight: correlation -> their writes.
    in_flight: BTreeMap<u64, Vec<usize>>,
    next_value: u64,
}

impl KeyedHistory {
    /// A fresh value, unique in the run's compaction workload.
    pub fn value(&mut self) -> u64 {
        self.next_value += 1;
        self.next_value
    }

    /// Records a write invoked at `now_ns`; returns its index.
    pub fn invoke(&mut self, key: u64, value: Option<u64>, now_ns: u64) -> usize {
        let index = self.writes.len();
        self.writes.push(KeyedWrite {
            key,
            value,
            invoked_ns: now_ns,
            state: WriteState::Pending,
            duplicated: false,
        });
        if let Some(value) = value {
            self.by_value.insert(value, index);
        }
        *self.uncertain.entry(key).or_insert(0) += 1;
        index
    }

    /// The request `correlation` carries `writes`.
    pub fn sent(&mut self, correlation: u64, writes: Vec<usize>) {
        self.in_flight.insert(correlation, writes);
    }

    /// The network delivers request `correlation` more than once.
    pub fn duplicated(&mut self, correlation: u64) {
        for &index in self.in_flight.get(&correlation).into_iter().flatten() {
            self.writes[index].duplicated = true;
        }
    }

    /// Request `correlation` was answered: its writes are acknowledged from
    /// `base_offset` on, or end as `Failed` / `Indefinite` (`certain_failure`).
    pub fn complete(&mut self, correlation: u64, base_offset: Option<i64>, certain_failure: bool) {
        let writes = self.in_flight.remove(&correlation).unwrap_or_default();
        for (position, index) in writes.into_iter().enumerate() {
            let state = match base_offset {
                Some(base) => WriteState::Acknowledged(base + position as i64),
                None if certain_failure => WriteState::Failed,
                None => WriteState::Indefinite,
            };
            self.settle(index, state);
        }
    }

    fn settle(&mut self, index: usize, state: WriteState) {
        let write = &mut self.writes[index];
        assert_eq!(write.state, WriteState::Pending, "a write settled twice");
        write.state = state;
        let key = write.key;
        let still_uncertain = state == WriteState::Indefinite || write.duplicated;
        if let WriteState::Acknowledged(offset) = state {
            self.acknowledged.insert(offset, index);
            let newest = self.newest_acknowledged.entry(key).or_insert(offset);
            *newest = (*newest).max(offset);
        }
        if !still_uncertain {
            let count = self.uncertain.get_mut(&key).expect("counted at invoke");
            *count -= 1;
        }
    }

    /// Acknowledged writes, for the report.
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.len()
    }

    /// Whether the acknowledged write `index` (at `offset`) may be gone from a read:
    /// a later write of its key may have replaced it, or it is an expired tombstone.
    fn may_be_gone(
        &self,
        index: usize,
        offset: i64,
        now_ns: u64,
        expiry: &TombstoneExpiry,
    ) -> bool {
        let write = &self.writes[index];
        let replaced = self
            .newest_acknowledged
            .get(&write.key)
            .is_some_and(|newest| *newest > offset)
            || self
                .uncertain
                .get(&write.key)
                .is_some_and(|count| *count > 0);
        let expired = write.value.is_none()
            && match expiry {
                TombstoneExpiry::Anytime => true,
                TombstoneExpiry::After { retention_ns } => {
                    now_ns.saturating_sub(write.invoked_ns) >= *retention_ns
                }
            };
        replaced || expired
    }
}

/// When a tombstone may disappear, as the checker can tell.
#[derive(Clone, Copy, Debug)]
pub enum TombstoneExpiry {
    /// Clocks that step or differ: at any time.
    Anytime,
    /// Once this much global time has passed since it was sent.
    After {
        /// `delete.retention.ms`, shortened by the largest drift, in nanoseconds.
        retention_ns: u64,
    },
}

impl TombstoneExpiry {
    /// The bound for `delete_retention_ms` on a clock drifting at most
    /// `drift_ppm_max` fast: the broker's wall clock must pass the retention between
    /// the send and the pass that removes the tombstone.
    pub fn after(delete_retention_ms: i64, drift_ppm_max: i64) -> TombstoneExpiry {
        let retention_ns = (delete_retention_ms.max(0) as u64).saturating_sub(2) * MS;
        let slack = retention_ns / 1_000_000 * (2 * drift_ppm_max.max(0) as u64);
        TombstoneExpiry::After {
            retention_ns: retention_ns.saturating_sub(slack),
        }
    }
}

/// The compacted partition's checker: what every read found at each offset, and the
/// highest cleaning point any replica had.
#[derive(Debug)]
pub struct CompactionChecker {
    /// Offset -> (key, value) the first read found there.
    first_seen: BTreeMap<i64, (Option<u64>, Option<u64>)>,
    /// The highest `cleaned_through` seen on any replica.
    cleaned_max: i64,
    expiry: TombstoneExpiry,
    reads: u64,
    records_missing: u64,
}

impl CompactionChecker {
    /// A checker that has seen nothing.
    pub fn new(expiry: TombstoneExpiry) -> CompactionChecker {
        CompactionChecker {
            first_seen: BTreeMap::new(),
            cleaned_max: 0,
            expiry,
            reads: 0,
            records_missing: 0,
        }
    }

    /// A replica's cleaning point: below it records may be gone.
    pub fn observe_cleaned_through(&mut self, cleaned_through: Option<i64>) {
        if let Some(offset) = cleaned_through {
            self.cleaned_max = self.cleaned_max.max(offset);
        }
    }

    /// Reads checked and acknowledged records they found removed, for the report.
    pub fn summary(&self) -> String {
        format!(
            "{} reads checked, {} acknowledged records seen removed, cleaning point {}",
            self.reads, self.records_missing, self.cleaned_max
        )
    }

    /// Checks what `who` read at global time `now_ns` (module documentation).
    pub fn check_read(
        &mut self,
        history: &KeyedHistory,
        who: &str,
        now_ns: u64,
        batches: &[FetchedBatch],
    ) -> Result<(), String> {
        self.reads += 1;
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Ok(());
        };
        let mut read = BTreeMap::new();
        let mut next = first.header.base_offset;
        for batch in batches {
            if batch.header.base_offset != next {
                return Err(format!(
                    "{who} read batches that are not contiguous: one at {} after the one ending at {}",
                    batch.header.base_offset,
                    next - 1
                ));
            }
            next = batch.header.last_offset() + 1;
            for record in &batch.records {
                if batch.header.is_control() {
                    continue;
                }
                self.check_record(history, who, record, &read)?;
                read.insert(record.offset, ());
            }
        }
        let covered = first.header.base_offset..=last.header.last_offset();
        for (&offset, &index) in history.acknowledged.range(covered) {
            if read.contains_key(&offset) {
                continue;
            }
            self.records_missing += 1;
            self.check_missing(history, who, now_ns, offset, index)?;
        }
        Ok(())
    }

    /// Rule (a) for one record, and (d)'s order within the read.
    fn check_record(
        &mut self,
        history: &KeyedHistory,
        who: &str,
        record: &crate::records::FetchedRecord,
        read: &BTreeMap<i64, ()>,
    ) -> Result<(), String> {
        let offset = record.offset;
        if read.range(offset..).next().is_some() {
            return Err(format!("{who} read offset {offset} out of order"));
        }
        let found = (
            record.key,
            if record.tombstone { None } else { record.value },
        );
        if let Some(&index) = history.acknowledged.get(&offset) {
            let write = &history.writes[index];
            if found != (Some(write.key), write.value) {
                return Err(format!(
                    "{who} read (key, value) {found:?} at offset {offset}, where ({}, {:?}) was acknowledged",
                    write.key, write.value
                ));
            }
        }
        if let Some(value) = found.1
            && let Some(&index) = history.by_value.get(&value)
            && Some(history.writes[index].key) != found.0
        {
            return Err(format!(
                "{who} read value {value} under key {:?} at offset {offset}; it was sent with key {}",
                found.0, history.writes[index].key
            ));
        }
        let first = *self.first_seen.entry(offset).or_insert(found);
        if first != found {
            return Err(format!(
                "{who} read (key, value) {found:?} at offset {offset}, where an earlier read found {first:?}: the record's offset changed"
            ));
        }
        Ok(())
    }

    /// Rules (b) and (c) for an acknowledged record a read covered and did not hold.
    fn check_missing(
        &self,
        history: &KeyedHistory,
        who: &str,
        now_ns: u64,
        offset: i64,
        index: usize,
    ) -> Result<(), String> {
        let write = &history.writes[index];
        if offset >= self.cleaned_max {
            return Err(format!(
                "{who} lacks the acknowledged record (key {}, value {:?}) at offset {offset}, at or above every cleaning point ({})",
                write.key, write.value, self.cleaned_max
            ));
        }
        if history.may_be_gone(index, offset, now_ns, &self.expiry) {
            return Ok(());
        }
        let what = match write.value {
            Some(value) => format!("value {value}"),
            None => format!(
                "a tombstone sent {} ms ago",
                now_ns.saturating_sub(write.invoked_ns) / MS
            ),
        };
        Err(format!(
            "{who} lacks the newest acknowledged record of key {} ({what}) at offset {offset}: no later write of the key replaced it",
            write.key
        ))
    }
}
