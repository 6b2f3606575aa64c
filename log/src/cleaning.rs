//! What the log cleaner does to one batch (`docs/storage.md`, compaction): the key
//! map of the dirty part of the log, the rule that decides, batch by batch, which
//! records stay, and the fillers that cover the offsets of emptied batches. Pure
//! functions over bytes; the partition's cleaner (`partition/clean.rs`) reads and
//! writes the files.
//!
//! ```text
//!  batch ─► control, at/above the cleaning point, or unreadable ─► keep as it is
//!        └► open (decompress) ─► each record: keyless ─────────────────► drop
//!                                 older than its key's newest ───────────► drop
//!                                 tombstone past its delete horizon ─────► drop
//!                                 else ──────────────────────────────────► keep
//!           none kept ─► empty batch if its producer needs it, else drop (a filler
//!                        already there, or a producer's empty batch no longer needed,
//!                        is dropped the same way)
//!           all kept, no new horizon ─► keep as it is
//!           else ─► rebuilt: same offsets, producer fields, codec; new count and CRC
//!
//!  dropped batches in a row, one leader epoch ─► FillerRun ─► one filler batch
//! ```

use std::collections::BTreeMap;

use crate::batch::{
    self, BatchHeader, COMPRESSION_BITS, Compression, DELETE_HORIZON_BIT, RecordCursor, RecordParts,
};
use crate::compression;
use crate::constants::CLEANER_MAP_ENTRY_OVERHEAD_BYTES;

/// One record of a batch, as the cleaner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanedRecord<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (the batch's base timestamp plus its delta).
    pub timestamp: i64,
    /// Its key, `None` if null.
    pub key: Option<&'a [u8]>,
    /// Its value, `None` if null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Whether its value is null (a tombstone).
    pub tombstone: bool,
    /// Its attributes byte.
    attributes: u8,
    /// Its bytes from the offset delta to its end (offset delta, key, value, headers),
    /// which a rebuilt record copies unchanged.
    tail: &'a [u8],
}

/// The records of a whole, CRC-checked data batch, decompressed.
pub struct OpenedBatch {
    header: BatchHeader,
    records: Vec<u8>,
}

impl OpenedBatch {
    /// Opens `bytes` (one whole batch whose CRC was checked, with header `header`);
    /// `None` if its records cannot be decompressed or parsed: the cleaner keeps such
    /// a batch as it is.
    pub fn open(bytes: &[u8], header: &BatchHeader) -> Option<OpenedBatch> {
        let codec = header.compression()?;
        let body = bytes.get(batch::BATCH_HEADER_BYTES..)?;
        let records = compression::decompress(codec, body).ok()?;
        let opened = OpenedBatch {
            header: *header,
            records,
        };
        opened.records()?;
        Some(opened)
    }

    /// Its records in order; `None` if they do not parse.
    pub fn records(&self) -> Option<Vec<CleanedRecord<'_>>> {
        let mut cursor = RecordCursor::new(&self.records);
        let count = usize::try_from(self.header.record_count).ok()?;
        let mut records = Vec::with_capacity(count.min(self.records.len()));
        for _ in 0..count {
            records.push(cleaned_record(cursor.parts()?, &self.header)?);
        }
        cursor.at_end().then_some(records)
    }
}

/// The cleaner's map from key to the newest offset that key has in the dirty part of
/// the log, bounded in bytes.
#[derive(Debug, Default)]
pub struct KeyMap {
    newest: BTreeMap<Vec<u8>, i64>,
    bytes: u64,
}

impl KeyMap {
    /// Adds the keys of one batch's records (in offset order), all or none: false,
    /// and nothing added, if the new keys would take the map past `bytes_max` (an
    /// empty map takes any batch, so that a pass always makes progress).
    pub fn add_batch(&mut self, records: &[CleanedRecord<'_>], bytes_max: u64) -> bool {
        let mut added = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for key in records.iter().filter_map(|r| r.key) {
            if !self.newest.contains_key(key) && seen.insert(key) {
                added += key.len() as u64 + CLEANER_MAP_ENTRY_OVERHEAD_BYTES;
            }
        }
        if !self.newest.is_empty() && self.bytes + added > bytes_max {
            return false;
        }
        for record in records {
            if let Some(key) = record.key {
                self.newest.insert(key.to_vec(), record.offset);
            }
        }
        self.bytes += added;
        true
    }

    /// The newest offset of `key` in the dirty part, if it has one there.
    pub fn newest(&self, key: &[u8]) -> Option<i64> {
        self.newest.get(key).copied()
    }

    /// Keys in the map.
    pub fn len(&self) -> usize {
        self.newest.len()
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }

    /// Bytes the map is counted as taking.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// What decides a batch's fate, besides the batch.
#[derive(Clone, Copy, Debug)]
pub struct CleanRules<'m> {
    /// The dirty part's keys.
    pub map: &'m KeyMap,
    /// Batches at or above it are kept as they are (the map does not cover them).
    pub cleaning_point: i64,
    /// The wall clock now, for delete horizons.
    pub now_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// The batch must stay, with its producer fields, even if it loses every record:
    /// the last durable batch of its producer (its state is rebuilt from it on open).
    pub keep_empty: bool,
    /// Mutant `tombstones_removed_at_once`: no delete horizon is waited for.
    pub tombstones_at_once: bool,
    /// Mutant `cleaner_drops_newest_value`: when a key's newest record shares its
    /// batch with an older one of the key, the older one stays instead.
    pub keep_older_in_batch: bool,
}

/// The fate of one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Kept byte for byte.
    Keep,
    /// None of its records stays and nothing needs its header: its offsets go into a
    /// filler ([`FillerRun`]) with those of the dropped batches around it.
    Drop,
    /// Replaced by these bytes (same base offset and offset range).
    Rewrite {
        /// The rebuilt batch.
        bytes: Vec<u8>,
        /// Records it lost.
        records_removed: u32,
    },
}

/// Decides what becomes of the whole, CRC-checked batch `bytes` (header `header`).
pub fn clean_batch(bytes: &[u8], header: &BatchHeader, rules: &CleanRules<'_>) -> Verdict {
    if header.is_control() || header.base_offset >= rules.cleaning_point {
        return Verdict::Keep;
    }
    let Some(opened) = OpenedBatch::open(bytes, header) else {
        return Verdict::Keep;
    };
    let records = opened.records().expect("opened batches parse");
    let horizon = header.has_delete_horizon().then_some(header.base_timestamp);
    let kept = kept_records(&records, horizon, rules);
    // Before "nothing changed": a batch that was already empty (a filler, or a
    // producer's batch no longer needed) joins the fillers around it.
    if kept.is_empty() && !rules.keep_empty {
        return Verdict::Drop;
    }
    let tombstone_kept = kept.iter().any(|r| r.tombstone);
    if kept.len() == records.len() && (horizon.is_some() || !tombstone_kept) {
        return Verdict::Keep;
    }
    let records_removed = (records.len() - kept.len()) as u32;
    if kept.is_empty() {
        // Kafka's empty batches are uncompressed: there are no records to compress.
        let attributes = header.attributes & !COMPRESSION_BITS;
        let bytes = batch::rebuild(header, attributes, header.base_timestamp, 0, &[]);
        return Verdict::Rewrite {
            bytes,
            records_removed,
        };
    }
    // A tombstone the cleaner passes for the first time starts its delete horizon.
    let new_horizon = (tombstone_kept && horizon.is_none())
        .then(|| rules.now_ms.saturating_add(rules.delete_retention_ms));
    let (attributes, base_timestamp) = match new_horizon {
        Some(at) => (header.attributes | DELETE_HORIZON_BIT, at),
        None => (header.attributes, header.base_timestamp),
    };
    let mut encoded = Vec::new();
    for record in &kept {
        encode_record(record, base_timestamp, &mut encoded);
    }
    let codec = header.compression().expect("opened batches name a codec");
    let Ok(body) = compression::compress(codec, &encoded) else {
        return Verdict::Keep;
    };
    let count = i32::try_from(kept.len()).expect("fewer records than the batch had");
    let bytes = batch::rebuild(header, attributes, base_timestamp, count, &body);
    Verdict::Rewrite {
        bytes,
        records_removed,
    }
}

/// A run of consecutive dropped batches of one segment and one leader epoch, which the
/// cleaner writes as one filler ([`batch::build_filler`]): the run's offsets, its
/// epoch, and the newest `max_timestamp` of its batches, so that the log keeps every
/// offset inside a batch, the epoch of every offset, and its timestamps for retention
/// and the time index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillerRun {
    base_offset: i64,
    last_offset: i64,
    leader_epoch: i32,
    max_timestamp: i64,
    /// The run is one filler already in the log: writing it again changes nothing.
    unchanged: bool,
}

impl FillerRun {
    /// A run of the one dropped batch `header`.
    pub fn start(header: &BatchHeader) -> FillerRun {
        FillerRun {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            leader_epoch: header.partition_leader_epoch,
            max_timestamp: header.max_timestamp,
            unchanged: header.is_filler(),
        }
    }

    /// Takes the dropped batch `header` into the run if it can join: it starts right
    /// after the run, has the run's leader epoch (a filler over two epochs would move
    /// the start of the later one), and the run stays within a filler's offset delta.
    pub fn extend(&mut self, header: &BatchHeader) -> bool {
        let joins = header.base_offset == self.last_offset + 1
            && header.partition_leader_epoch == self.leader_epoch
            && header.last_offset() - self.base_offset <= i64::from(i32::MAX);
        if joins {
            self.last_offset = header.last_offset();
            self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
            self.unchanged = false;
        }
        joins
    }

    /// The filler that covers the run.
    pub fn filler(&self) -> Vec<u8> {
        batch::build_filler(
            self.base_offset,
            self.last_offset,
            self.leader_epoch,
            self.max_timestamp,
        )
    }

    /// Whether writing the filler changes the segment: false if the run is one filler
    /// that was already there (the filler is then the same bytes).
    pub fn changes_segment(&self) -> bool {
        !self.unchanged
    }
}

/// The records of a batch that stay, by the rules (horizon: the batch's delete
/// horizon, if it has one).
fn kept_records<'a>(
    records: &[CleanedRecord<'a>],
    horizon: Option<i64>,
    rules: &CleanRules<'_>,
) -> Vec<CleanedRecord<'a>> {
    let tombstones_expired =
        rules.tombstones_at_once || horizon.is_some_and(|at| rules.now_ms >= at);
    let mut kept: Vec<CleanedRecord<'a>> = Vec::with_capacity(records.len());
    for record in records {
        let Some(key) = record.key else {
            continue;
        };
        let newest = rules.map.newest(key);
        if newest.is_some_and(|newest| record.offset < newest) {
            continue;
        }
        if record.tombstone && tombstones_expired {
            continue;
        }
        kept.push(*record);
    }
    if rules.keep_older_in_batch {
        keep_older_instead(records, &mut kept, rules.map);
    }
    kept
}

/// The mutant `cleaner_drops_newest_value`: a kept record whose key has an older
/// record in the same batch is swapped for that older record.
fn keep_older_instead<'a>(
    records: &[CleanedRecord<'a>],
    kept: &mut [CleanedRecord<'a>],
    map: &KeyMap,
) {
    for slot in kept.iter_mut() {
        let older = records
            .iter()
            .find(|r| r.key == slot.key && r.offset < slot.offset);
        if let Some(older) = older
            && slot.key.and_then(|key| map.newest(key)) == Some(slot.offset)
        {
            *slot = *older;
        }
    }
    kept.sort_by_key(|r| r.offset);
}

/// Appends `record` in Kafka's record layout, its timestamp as a delta from
/// `base_timestamp`.
fn encode_record(record: &CleanedRecord<'_>, base_timestamp: i64, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(record.tail.len() + 11);
    body.push(record.attributes);
    batch::put_varlong(&mut body, record.timestamp.wrapping_sub(base_timestamp));
    body.extend_from_slice(record.tail);
    batch::put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// The batch `bytes` (whole, uncompressed, CRC valid) with its records compressed by
/// `codec`: for tests and workloads that need compressed batches.
pub fn compress_batch(bytes: &[u8], codec: Compression) -> Vec<u8> {
    let header = batch::validate_stored(bytes, u32::MAX).expect("a valid batch");
    assert_eq!(header.compression(), Some(Compression::None));
    let body = compression::compress(codec, &bytes[batch::BATCH_HEADER_BYTES..])
        .expect("compression of a batch in memory");
    let attributes = (header.attributes & !COMPRESSION_BITS) | codec_bits(codec);
    batch::rebuild(
        &header,
        attributes,
        header.base_timestamp,
        header.record_count,
        &body,
    )
}

fn codec_bits(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// A record's fields as the cleaner sees them; `None` if its offset lies outside
/// its batch.
fn cleaned_record<'a>(parts: RecordParts<'a>, header: &BatchHeader) -> Option<CleanedRecord<'a>> {
    let offset_delta = parts.offset_delta;
    if offset_delta < 0 || offset_delta > i64::from(header.last_offset_delta) {
        return None;
    }
    Some(CleanedRecord {
        offset: header.base_offset.checked_add(offset_delta)?,
        timestamp: header.base_timestamp.wrapping_add(parts.timestamp_delta),
        key: parts.key,
        value: parts.value,
        tombstone: parts.value.is_none(),
        attributes: parts.attributes,
        tail: parts.tail,
    })
}
