//! RecordBatch v2 framing: the unit producers send, the log stores and consumers fetch.
//!
//! Odradek stores the bytes a client sent, unchanged but for two fields the broker
//! owns (`base_offset` and `partition_leader_epoch`). Both sit *before* the CRC field,
//! and the CRC-32C covers only `attributes` to the end of the batch, so rewriting them
//! keeps the client's checksum valid: it is checked on append, on recovery and on every
//! read, end to end.
//!
//! ```text
//! offset  size  field                    covered by CRC
//!      0     8  base_offset              no   (assigned by the broker)
//!      8     4  batch_length             no   (bytes after this field)
//!     12     4  partition_leader_epoch   no   (assigned by the broker)
//!     16     1  magic (= 2)              no
//!     17     4  crc (CRC-32C, unsigned)  no
//!     21     2  attributes               yes  (compression, timestamp type, txn, control)
//!     23     4  last_offset_delta        yes
//!     27     8  base_timestamp           yes
//!     35     8  max_timestamp            yes
//!     43     8  producer_id              yes
//!     51     2  producer_epoch           yes
//!     53     4  base_sequence            yes
//!     57     4  record_count             yes
//!     61     …  records (maybe compressed)
//! ```
//!
//! All integers are big-endian, as the Kafka protocol specifies.

/// Bytes before the records: the fixed header of a v2 batch.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of `base_offset` + `batch_length`: what precedes the length-counted part.
pub const BATCH_LENGTH_PREFIX_BYTES: usize = 12;
/// The only record format Odradek accepts.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const _: () = assert!(RECORD_COUNT_AT + 4 == BATCH_HEADER_BYTES);
const _: () = assert!(BATCH_LENGTH_AT + 4 == BATCH_LENGTH_PREFIX_BYTES);

/// Attribute bits (Kafka's `DefaultRecordBatch`).
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Set by the log cleaner on a batch whose tombstones wait for their delete horizon:
/// the batch's `base_timestamp` then holds that horizon (KIP-534), and its records'
/// timestamp deltas are relative to it, so every record keeps its own timestamp.
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// A producer id of -1 means "not idempotent".
pub const NO_PRODUCER_ID: i64 = -1;

/// Why a batch was refused or a stored batch could not be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a header, or than `batch_length` promises.
    #[error("batch truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the header says the batch spans.
        needed: u64,
        /// Bytes that were there.
        available: u64,
    },
    /// `batch_length` is impossible (too small for a header, or over the limit).
    #[error("invalid batch length {batch_length}")]
    InvalidLength {
        /// The length field as read.
        batch_length: i32,
    },
    /// Magic byte other than 2 (message formats v0 and v1 are not supported).
    #[error("unsupported record format magic {magic}")]
    UnsupportedMagic {
        /// The magic byte as read.
        magic: i8,
    },
    /// The stored CRC does not match the bytes.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Header fields contradict each other (negative count, count/delta mismatch, ...).
    #[error("invalid batch header: {reason}")]
    InvalidHeader {
        /// Which rule was broken.
        reason: &'static str,
    },
}

/// Compression codec named in a batch's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Records stored as they are.
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing, as the Java client writes it).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// The parsed fixed header of one RecordBatch v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batch_length` field; the batch spans `12 + batch_length` bytes.
    pub batch_length: i32,
    /// Leader epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// The CRC-32C stored in the header.
    pub crc: u32,
    /// Raw attribute bits.
    pub attributes: i16,
    /// `last offset - base offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` without checking the CRC or that the
    /// whole batch is present. Checks magic and that the header is self-consistent.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_BYTES as u64,
                available: bytes.len() as u64,
            });
        }
        let batch_length = read_i32(bytes, BATCH_LENGTH_AT);
        let magic = bytes[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        if (batch_length as i64) < (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES) as i64 {
            return Err(BatchError::InvalidLength { batch_length });
        }
        let header = BatchHeader {
            base_offset: read_i64(bytes, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: read_i32(bytes, PARTITION_LEADER_EPOCH_AT),
            crc: read_u32(bytes, CRC_AT),
            attributes: read_i16(bytes, ATTRIBUTES_AT),
            last_offset_delta: read_i32(bytes, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(bytes, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(bytes, MAX_TIMESTAMP_AT),
            producer_id: read_i64(bytes, PRODUCER_ID_AT),
            producer_epoch: read_i16(bytes, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(bytes, BASE_SEQUENCE_AT),
            record_count: read_i32(bytes, RECORD_COUNT_AT),
        };
        if header.record_count < 0 {
            return Err(BatchError::InvalidHeader {
                reason: "negative record count",
            });
        }
        if header.last_offset_delta < 0 {
            return Err(BatchError::InvalidHeader {
                reason: "negative last offset delta",
            });
        }
        Ok(header)
    }

    /// Total bytes of the batch on the wire and on disk.
    pub fn size_bytes(&self) -> u64 {
        BATCH_LENGTH_PREFIX_BYTES as u64 + self.batch_length as u64
    }

    /// Offset of the last record (`base_offset + last_offset_delta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Offset after the batch: where the next batch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The compression codec, or `None` if the attribute bits name an unknown one.
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes & COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Whether timestamps are the broker's append time rather than the producer's.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Whether the log cleaner stamped a delete horizon on the batch
    /// ([`DELETE_HORIZON_BIT`]): `base_timestamp` is then that horizon, in ms.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }

    /// Whether the batch is a filler the log cleaner wrote ([`build_filler`]): no
    /// record and no record bytes, attributes 0, no producer. (An emptied batch kept for
    /// its producer keeps its producer fields, so it is not one.)
    pub fn is_filler(&self) -> bool {
        self.record_count == 0
            && self.size_bytes() == BATCH_HEADER_BYTES as u64
            && self.attributes == 0
            && self.producer_id == NO_PRODUCER_ID
            && self.producer_epoch == -1
            && self.base_sequence == -1
    }

    /// Whether the batch comes from an idempotent producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    /// Sequence number of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        (last % (i32::MAX as i64 + 1)) as i32
    }
}

/// CRC-32C of the part of a batch the header's `crc` field covers.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Parses and fully validates one batch that must span exactly `batch`:
/// header, length, CRC, and the header rules a producer's batch must meet.
/// `max_batch_bytes` is the topic's `max.message.bytes`.
pub fn validate(batch: &[u8], max_batch_bytes: u32) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.size_bytes() > max_batch_bytes as u64 {
        return Err(BatchError::InvalidLength {
            batch_length: header.batch_length,
        });
    }
    if header.size_bytes() != batch.len() as u64 {
        return Err(BatchError::Truncated {
            needed: header.size_bytes(),
            available: batch.len() as u64,
        });
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.compression().is_none() {
        return Err(BatchError::InvalidHeader {
            reason: "unknown compression codec",
        });
    }
    if header.record_count == 0 {
        return Err(BatchError::InvalidHeader {
            reason: "empty batch",
        });
    }
    if !header.is_control() && header.last_offset_delta != header.record_count - 1 {
        return Err(BatchError::InvalidHeader {
            reason: "last offset delta does not match record count",
        });
    }
    Ok(header)
}

/// Fully validates one batch as the log stores it: [`validate`]'s checks, except that
/// a batch the log cleaner rewrote may hold fewer records than its offset range
/// (`record_count <= last_offset_delta + 1`, the missing offsets removed), and none
/// at all (a filler, or an emptied batch kept for its producer's state).
pub fn validate_stored(batch: &[u8], max_batch_bytes: u32) -> Result<BatchHeader, BatchError> {
    match validate(batch, max_batch_bytes) {
        Err(BatchError::InvalidHeader { .. }) => {}
        result => return result,
    }
    // Only a header rule failed: the framing, length and CRC held.
    let header = BatchHeader::parse(batch)?;
    if header.compression().is_none() {
        return Err(BatchError::InvalidHeader {
            reason: "unknown compression codec",
        });
    }
    if i64::from(header.record_count) > i64::from(header.last_offset_delta) + 1 {
        return Err(BatchError::InvalidHeader {
            reason: "more records than offsets",
        });
    }
    Ok(header)
}

/// A batch with `original`'s offsets, leader epoch, producer fields and
/// `max_timestamp`, and the given attributes, base timestamp and records (already
/// encoded, compressed if `attributes` name a codec). `batch_length` and the CRC are
/// computed. The log cleaner writes these.
pub fn rebuild(
    original: &BatchHeader,
    attributes: i16,
    base_timestamp: i64,
    record_count: i32,
    records: &[u8],
) -> Vec<u8> {
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    let batch_length =
        i32::try_from(BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES + records.len())
            .expect("a rebuilt batch is no larger than the batch it comes from");
    batch.extend_from_slice(&original.base_offset.to_be_bytes());
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&original.partition_leader_epoch.to_be_bytes());
    batch.push(MAGIC_V2 as u8);
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&original.last_offset_delta.to_be_bytes());
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&original.max_timestamp.to_be_bytes());
    batch.extend_from_slice(&original.producer_id.to_be_bytes());
    batch.extend_from_slice(&original.producer_epoch.to_be_bytes());
    batch.extend_from_slice(&original.base_sequence.to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(records);
    let crc = compute_crc(&batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// The attribute bits that name the codec of a batch's records.
pub const COMPRESSION_BITS: i16 = COMPRESSION_MASK;

/// Overwrites the broker-owned fields of a batch in place. The CRC stays valid
/// because neither field is covered by it.
pub fn assign(batch: &mut [u8], base_offset: i64, partition_leader_epoch: i32) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&partition_leader_epoch.to_be_bytes());
}

/// Marks a batch's time as the broker's (`message.timestamp.type=LogAppendTime`): sets
/// the timestamp-type bit and the max timestamp to `now_ms`, then recomputes the CRC,
/// which covers both. The old CRC is checked first, so that a batch damaged on its way
/// here is refused instead of being made whole by the new CRC.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Splits a `records` field into batch slices, validating each (the tests' fake broker
/// reads produce requests with it). The broker itself takes exactly one batch per
/// partition, as Kafka does (`replication/src/produce.rs`).
pub fn split_batches(
    records: &[u8],
    max_batch_bytes: u32,
) -> Result<Vec<(usize, usize, BatchHeader)>, BatchError> {
    let mut batches = Vec::new();
    let mut position = 0usize;
    while position < records.len() {
        let rest = &records[position..];
        let header = BatchHeader::parse(rest)?;
        let size = header.size_bytes();
        if size > rest.len() as u64 {
            return Err(BatchError::Truncated {
                needed: size,
                available: rest.len() as u64,
            });
        }
        let size = size as usize;
        let header = validate(&rest[..size], max_batch_bytes)?;
        batches.push((position, size, header));
        position += size;
    }
    Ok(batches)
}

fn read_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(raw)
}

/// Builds a valid uncompressed batch of `values` (no keys, no headers), for tests,
/// the simulator's workloads and the benchmark client. Record encoding follows the
/// Kafka protocol guide: each record is a varint length, attributes, varint deltas,
/// key, value and header count.
pub fn build_batch(
    base_timestamp: i64,
    producer: Option<(i64, i16, i32)>,
    values: &[&[u8]],
) -> Vec<u8> {
    build_batch_with_keys(base_timestamp, producer, values.iter().map(|v| (None, *v)))
}

/// Like [`build_batch`], with an optional key per record.
pub fn build_batch_with_keys<'a>(
    base_timestamp: i64,
    producer: Option<(i64, i16, i32)>,
    records: impl IntoIterator<Item = (Option<&'a [u8]>, &'a [u8])>,
) -> Vec<u8> {
    encode_batch(
        0,
        base_timestamp,
        0,
        producer,
        records.into_iter().map(|(key, value)| (key, Some(value))),
    )
}

/// Like [`build_batch`], but the records were created `step_ms` apart, the first at
/// `first_timestamp` (producers that batch records made over a while send these).
pub fn build_batch_spread_in_time(first_timestamp: i64, step_ms: i64, values: &[&[u8]]) -> Vec<u8> {
    let records = values.iter().map(|value| (None, Some(*value)));
    encode_batch(0, first_timestamp, step_ms, None, records)
}

/// Like [`build_batch_with_keys`], but a record's value may be null (`None`): a
/// tombstone, which is how `__consumer_offsets` deletes a group or an offset.
pub fn build_batch_with_nullable_values<'a>(
    base_timestamp: i64,
    records: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>,
) -> Vec<u8> {
    encode_batch(0, base_timestamp, 0, None, records)
}

/// Like [`build_batch_with_nullable_values`], from an idempotent producer if
/// `producer` is `Some((producer_id, producer_epoch, base_sequence))`.
pub fn build_producer_batch<'a>(
    base_timestamp: i64,
    producer: Option<(i64, i16, i32)>,
    records: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>,
) -> Vec<u8> {
    encode_batch(0, base_timestamp, 0, producer, records)
}

/// One record of an uncompressed batch, as [`for_each_record`] hands it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's offset (base offset + offset delta).
    pub offset: i64,
    /// The record's timestamp (base timestamp + timestamp delta): its creation time, or
    /// for a log-append-time batch whatever the producer put there.
    pub timestamp: i64,
    /// The key, or `None` if null.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` if null (a tombstone).
    pub value: Option<&'a [u8]>,
}

/// Why [`for_each_record`] stopped.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordsError {
    /// The batch framing is wrong.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A batch is compressed; only the broker's own uncompressed batches are decoded.
    #[error("batch at offset {base_offset} is compressed")]
    Compressed {
        /// The batch's base offset.
        base_offset: i64,
    },
    /// A record does not parse.
    #[error("malformed record in the batch at offset {base_offset}")]
    Malformed {
        /// The batch's base offset.
        base_offset: i64,
    },
}

/// Calls `visit` for every record of every data batch in `bytes` (whole batches, as a
/// log read returns them), in offset order. Control batches (leader markers) are
/// skipped. The broker decodes only what it wrote itself (the metadata log,
/// `__consumer_offsets`), always uncompressed; a compressed batch is an error.
pub fn for_each_record<'a, E: From<RecordsError>>(
    bytes: &'a [u8],
    mut visit: impl FnMut(RecordView<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let mut position = 0usize;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..]).map_err(RecordsError::from)?;
        let end = usize::try_from(header.size_bytes())
            .ok()
            .and_then(|size| position.checked_add(size))
            .filter(|end| *end <= bytes.len())
            .ok_or(RecordsError::Batch(BatchError::Truncated {
                needed: header.size_bytes(),
                available: (bytes.len() - position) as u64,
            }))?;
        if header.is_control() {
            position = end;
            continue;
        }
        if header.compression() != Some(Compression::None) {
            return Err(RecordsError::Compressed {
                base_offset: header.base_offset,
            }
            .into());
        }
        let malformed = RecordsError::Malformed {
            base_offset: header.base_offset,
        };
        let mut cursor = RecordCursor::new(&bytes[position + BATCH_HEADER_BYTES..end]);
        for _ in 0..header.record_count {
            let record = cursor.record(&header).ok_or(malformed.clone())?;
            visit(record)?;
        }
        position = end;
    }
    Ok(())
}

/// Where a lookup by time (ListOffsets with a timestamp) lands in one whole, valid
/// `batch`: the offset and timestamp of its first record created at or after
/// `timestamp`, or `None` if it has none. A control batch has none: its marker is not a
/// record a consumer could be sent to. In a log-append-time batch every record has the
/// batch's time. A compressed batch is not opened (the log never decompresses): its
/// base offset stands for it when its newest record qualifies, so a reader sent there
/// may first meet records of the same batch that are older than `timestamp`.
pub fn first_record_at_or_after(
    batch: &[u8],
    timestamp: i64,
) -> Result<Option<(i64, i64)>, RecordsError> {
    let header = BatchHeader::parse(batch)?;
    if header.is_control() || header.max_timestamp < timestamp {
        return Ok(None);
    }
    if header.is_log_append_time() || header.compression() != Some(Compression::None) {
        return Ok(Some((header.base_offset, header.max_timestamp)));
    }
    let mut found = None;
    for_each_record(batch, |record| {
        if found.is_none() && record.timestamp >= timestamp {
            found = Some((record.offset, record.timestamp));
        }
        Ok::<(), RecordsError>(())
    })?;
    Ok(found)
}

/// One record's fields as stored (Kafka's record v2 layout), deltas not yet applied.
pub(crate) struct RecordParts<'a> {
    /// Its attributes byte.
    pub(crate) attributes: u8,
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    /// Its bytes from the offset delta to its end (offset delta, key, value, headers).
    pub(crate) tail: &'a [u8],
}

/// Reads records (Kafka's record v2 layout) one after another.
pub(crate) struct RecordCursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> RecordCursor<'a> {
    /// A cursor at the first record of `bytes` (a batch's records, uncompressed).
    pub(crate) fn new(bytes: &'a [u8]) -> RecordCursor<'a> {
        RecordCursor { bytes, at: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// The next record's fields; `None` if it does not parse.
    pub(crate) fn parts(&mut self) -> Option<RecordParts<'a>> {
        let length = usize::try_from(self.varlong()?).ok()?;
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())?;
        let attributes = *self.bytes.get(self.at)?;
        self.at += 1;
        let timestamp_delta = self.varlong()?;
        let tail_start = self.at;
        let offset_delta = self.varlong()?;
        let key = self.nullable_bytes(end)?;
        let value = self.nullable_bytes(end)?;
        if self.at > end {
            return None;
        }
        self.at = end; // headers are kept in the tail, not parsed
        Some(RecordParts {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            tail: &self.bytes[tail_start..end],
        })
    }

    fn record(&mut self, header: &BatchHeader) -> Option<RecordView<'a>> {
        let parts = self.parts()?;
        Some(RecordView {
            offset: header.base_offset.checked_add(parts.offset_delta)?,
            timestamp: header.base_timestamp.checked_add(parts.timestamp_delta)?,
            key: parts.key,
            value: parts.value,
        })
    }

    /// A varint length and that many bytes, or null for a negative length.
    fn nullable_bytes(&mut self, end: usize) -> Option<Option<&'a [u8]>> {
        let length = self.varlong()?;
        if length < 0 {
            return Some(None);
        }
        let stop = self
            .at
            .checked_add(usize::try_from(length).ok()?)
            .filter(|stop| *stop <= end)?;
        let bytes = &self.bytes[self.at..stop];
        self.at = stop;
        Some(Some(bytes))
    }

    fn varlong(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        None
    }
}

/// Kafka's control record type of a leader-change marker (`ControlRecordType.LEADER_CHANGE`;
/// 0 and 1 are the transaction markers ABORT and COMMIT).
pub const CONTROL_TYPE_LEADER_CHANGE: i16 = 2;

/// Builds the leader-change control batch a new leader writes as the first entry of its
/// epoch (Raft's no-op entry; Kafka's KRaft writes the same record), at `base_offset`
/// with `partition_leader_epoch = leader_epoch`.
///
/// The batch is a control batch (attribute bit 0x20) that is not transactional, with
/// producer id, producer epoch and base sequence all -1, holding one control record:
///
/// ```text
/// key   (4 bytes):  version i16 = 0, type i16 = 2 (LEADER_CHANGE)
/// value (9 bytes):  Kafka's LeaderChangeMessage v0, a "flexible" message, exactly as
///                   Kafka writes it (no version prefix of its own):
///                   Version i16 = 0, LeaderId i32,
///                   Voters: compact array, empty (unsigned varint 1),
///                   GrantingVoters: compact array, empty (unsigned varint 1),
///                   tagged fields: none (unsigned varint 0)
/// ```
///
/// Consumers skip control batches and move past them, whatever their control type:
/// librdkafka (`rdkafka_msgset_reader.c`) logs "Unsupported ctrl message type ...:
/// ignoring" and still stores the offset past it; kafka-python and aiokafka
/// (`consumer/fetcher.py`) skip every control batch in both isolation levels and set
/// their next fetch offset to the batch's next offset. librdkafka insists on a key of
/// exactly 4 bytes and aiokafka unpacks the key of any control batch it sees under
/// `read_committed`, hence the exact key above.
pub fn build_leader_change_batch(
    base_offset: i64,
    leader_epoch: i32,
    leader_id: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&CONTROL_TYPE_LEADER_CHANGE.to_be_bytes());
    let mut value = Vec::with_capacity(9);
    value.extend_from_slice(&0i16.to_be_bytes()); // LeaderChangeMessage.Version
    value.extend_from_slice(&leader_id.to_be_bytes());
    value.push(1); // Voters: compact array of length 0 (length + 1)
    value.push(1); // GrantingVoters: likewise
    value.push(0); // no tagged fields
    let mut batch = encode_batch(
        CONTROL_BIT,
        timestamp_ms,
        0,
        None,
        [(Some(key.as_slice()), Some(value.as_slice()))],
    );
    assign(&mut batch, base_offset, leader_epoch);
    batch
}

/// Builds a *filler*: the empty batch the log cleaner puts where it emptied a run of
/// batches of one leader epoch (`docs/storage.md` §13), so that every offset of a
/// cleaned log stays inside exactly one batch. It covers `base_offset ..= last_offset`
/// with no record: uncompressed, not control, not transactional, producer id, epoch
/// and base sequence -1, `partition_leader_epoch = leader_epoch`, both timestamps
/// `timestamp_ms`. Consumers skip an empty batch and go on at its last offset + 1.
///
/// Panics if `last_offset` is below `base_offset` or more than `i32::MAX` above it
/// (the offset delta field is an i32).
pub fn build_filler(
    base_offset: i64,
    last_offset: i64,
    leader_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let last_offset_delta = last_offset
        .checked_sub(base_offset)
        .and_then(|delta| i32::try_from(delta).ok())
        .filter(|delta| *delta >= 0)
        .expect("a filler spans 1 to 2^31 offsets");
    let header = BatchHeader {
        base_offset,
        batch_length: 0, // computed by rebuild
        partition_leader_epoch: leader_epoch,
        crc: 0, // computed by rebuild
        attributes: 0,
        last_offset_delta,
        base_timestamp: timestamp_ms,
        max_timestamp: timestamp_ms,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: 0,
    };
    rebuild(&header, 0, timestamp_ms, 0, &[])
}

/// The part of the filler `batch` from offset `from` on, as a filler of its own (same
/// last offset, leader epoch and timestamp): what a Raft leader sends a follower whose
/// log ends inside the filler. `None` if `batch` is not one whole, valid filler, or if
/// `from` is not one of its offsets.
pub fn slice_filler(batch: &[u8], from: i64) -> Option<Vec<u8>> {
    let header = validate_stored(batch, u32::MAX).ok()?;
    if !header.is_filler() || from < header.base_offset || from > header.last_offset() {
        return None;
    }
    Some(build_filler(
        from,
        header.last_offset(),
        header.partition_leader_epoch,
        header.max_timestamp,
    ))
}

/// Encodes a v2 batch of `records` with the given attribute bits, base offset 0 and
/// partition leader epoch -1 (the broker assigns both).
fn encode_batch<'a>(
    attributes: i16,
    base_timestamp: i64,
    timestamp_step_ms: i64,
    producer: Option<(i64, i16, i32)>,
    records: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>,
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut count: i32 = 0;
    for (key, value) in records {
        let mut record = Vec::with_capacity(value.map_or(0, <[u8]>::len) + 16);
        record.push(0); // attributes
        put_varlong(&mut record, timestamp_step_ms * i64::from(count)); // timestamp delta
        put_varlong(&mut record, count as i64); // offset delta
        match key {
            Some(key) => {
                put_varlong(&mut record, key.len() as i64);
                record.extend_from_slice(key);
            }
            None => put_varlong(&mut record, -1),
        }
        match value {
            Some(value) => {
                put_varlong(&mut record, value.len() as i64);
                record.extend_from_slice(value);
            }
            None => put_varlong(&mut record, -1),
        }
        put_varlong(&mut record, 0); // header count
        put_varlong(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
        count += 1;
    }
    assert!(count > 0, "a batch holds at least one record");
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((NO_PRODUCER_ID, -1, -1));
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    let batch_length = (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES + body.len()) as i32;
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(MAGIC_V2 as u8);
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&(count - 1).to_be_bytes());
    let max_timestamp = base_timestamp + timestamp_step_ms.max(0) * i64::from(count - 1);
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&producer_epoch.to_be_bytes());
    batch.extend_from_slice(&base_sequence.to_be_bytes());
    batch.extend_from_slice(&count.to_be_bytes());
    batch.extend_from_slice(&body);
    let crc = compute_crc(&batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Appends `value` as a zig-zag varint (Kafka's `varlong`).
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates_and_survives_offset_assignment() {
        let mut batch = build_batch(1_700_000_000_000, Some((7, 0, 3)), &[b"a", b"bc", b"def"]);
        let header = validate(&batch, 1 << 20).expect("valid");
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_sequence, 3);
        assert_eq!(header.last_sequence(), 5);
        assign(&mut batch, 42, 9);
        let header = validate(&batch, 1 << 20).expect("still valid after assign");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.partition_leader_epoch, 9);
        assert_eq!(header.last_offset(), 44);
    }

    #[test]
    fn records_come_back_with_keys_values_and_tombstones() {
        let mut first = build_batch_with_nullable_values(
            5,
            [
                (Some(&b"k1"[..]), Some(&b"v1"[..])),
                (Some(&b"k2"[..]), None),
                (None, Some(&b""[..])),
            ],
        );
        assign(&mut first, 10, 1);
        validate(&first, u32::MAX).expect("valid");
        let mut marker = build_leader_change_batch(13, 2, 1, 5);
        assign(&mut marker, 13, 2);
        let mut second = build_batch_with_nullable_values(5, [(Some(&b"k3"[..]), None)]);
        assign(&mut second, 14, 2);
        let bytes = [first, marker, second].concat();
        let mut seen = Vec::new();
        for_each_record(&bytes, |record| {
            seen.push((record.offset, record.key, record.value));
            Ok::<(), RecordsError>(())
        })
        .expect("decodes");
        assert_eq!(
            seen,
            vec![
                (10, Some(&b"k1"[..]), Some(&b"v1"[..])),
                (11, Some(&b"k2"[..]), None),
                (12, None, Some(&b""[..])),
                (14, Some(&b"k3"[..]), None),
            ]
        );
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let batch = build_batch_with_nullable_values(5, [(Some(&b"key"[..]), Some(&b"value"[..]))]);
        for cut in 0..batch.len() {
            let _ = for_each_record(&batch[..cut], |_| Ok::<(), RecordsError>(()));
        }
        let mut lying = batch.clone();
        // The record's length varint (first body byte) claims more than there is.
        lying[BATCH_HEADER_BYTES] = 0x7e;
        assert!(matches!(
            for_each_record(&lying, |_| Ok::<(), RecordsError>(())),
            Err(RecordsError::Malformed { .. })
        ));
    }

    #[test]
    fn flipped_bit_is_caught() {
        let mut batch = build_batch(0, None, &[b"hello"]);
        let last = batch.len() - 1;
        batch[last] ^= 0x01;
        assert!(matches!(
            validate(&batch, 1 << 20),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn split_rejects_half_batch() {
        let one = build_batch(0, None, &[b"x"]);
        let mut two = one.clone();
        two.extend_from_slice(&one[..one.len() - 3]);
        assert!(matches!(
            split_batches(&two, 1 << 20),
            Err(BatchError::Truncated { .. })
        ));
        let mut both = one.clone();
        both.extend_from_slice(&one);
        assert_eq!(
            split_batches(&both, 1 << 20)
                .expect("two whole batches")
                .len(),
            2
        );
    }

    /// Reads a zig-zag varint; returns it and the position after it.
    fn get_varlong(bytes: &[u8], mut at: usize) -> (i64, usize) {
        let mut raw = 0u64;
        let mut shift = 0;
        loop {
            let byte = bytes[at];
            at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        (((raw >> 1) as i64) ^ -((raw & 1) as i64), at)
    }

    #[test]
    fn leader_change_batch_is_a_valid_non_transactional_control_batch() {
        let batch = build_leader_change_batch(42, 7, 3, 1_700_000_000_000);
        let header = validate(&batch, 1 << 20).expect("valid, CRC included");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.partition_leader_epoch, 7);
        assert!(header.is_control());
        assert!(!header.is_transactional());
        assert_eq!(header.compression(), Some(Compression::None));
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (-1, -1, -1)
        );
        assert_eq!((header.record_count, header.last_offset_delta), (1, 0));
        assert_eq!(header.next_offset(), 43);
        assert_eq!(header.max_timestamp, 1_700_000_000_000);

        // The one record: length, attributes, timestamp delta, offset delta, key,
        // value, header count.
        let (length, at) = get_varlong(&batch, BATCH_HEADER_BYTES);
        assert_eq!(
            at + length as usize,
            batch.len(),
            "one record fills the batch"
        );
        assert_eq!(batch[at], 0, "record attributes");
        let (timestamp_delta, at) = get_varlong(&batch, at + 1);
        let (offset_delta, at) = get_varlong(&batch, at);
        assert_eq!((timestamp_delta, offset_delta), (0, 0));
        let (key_length, at) = get_varlong(&batch, at);
        assert_eq!(key_length, 4, "librdkafka wants exactly version and type");
        assert_eq!(
            &batch[at..at + 4],
            &[0, 0, 0, 2],
            "version 0, LEADER_CHANGE"
        );
        let (value_length, at) = get_varlong(&batch, at + 4);
        let value = &batch[at..at + value_length as usize];
        assert_eq!(value, &[0, 0, 0, 0, 0, 3, 1, 1, 0]);
        let (header_count, at) = get_varlong(&batch, at + value_length as usize);
        assert_eq!(header_count, 0);
        assert_eq!(at, batch.len());
    }

    #[test]
    fn a_filler_is_an_empty_valid_batch_over_its_offsets() {
        let filler = build_filler(100, 164, 7, 1_700_000_000_123);
        assert_eq!(filler.len(), BATCH_HEADER_BYTES);
        let header = validate_stored(&filler, 1 << 20).expect("valid stored, CRC included");
        assert_eq!(compute_crc(&filler), header.crc);
        assert!(header.is_filler());
        assert_eq!((header.base_offset, header.last_offset()), (100, 164));
        assert_eq!(header.partition_leader_epoch, 7);
        assert_eq!(header.record_count, 0);
        assert_eq!(header.compression(), Some(Compression::None));
        assert!(!header.is_control() && !header.is_transactional());
        assert!(!header.has_delete_horizon() && !header.is_log_append_time());
        assert_eq!(
            (header.base_timestamp, header.max_timestamp),
            (1_700_000_000_123, 1_700_000_000_123)
        );
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (-1, -1, -1)
        );
        // Producers may not send one: it is a stored batch only.
        assert!(validate(&filler, 1 << 20).is_err());
        // One offset is a filler too.
        let one = build_filler(5, 5, 0, 0);
        let header = validate_stored(&one, 1 << 20).expect("valid");
        assert_eq!((header.base_offset, header.next_offset()), (5, 6));
    }

    #[test]
    fn an_emptied_producer_batch_or_a_record_batch_is_no_filler() {
        let produced = build_batch(0, Some((7, 0, 3)), &[b"a"]);
        let header = validate(&produced, 1 << 20).expect("valid");
        assert!(!header.is_filler());
        let emptied = rebuild(&header, 0, header.base_timestamp, 0, &[]);
        let emptied = validate_stored(&emptied, 1 << 20).expect("valid");
        assert!(!emptied.is_filler(), "keeps its producer fields");
        let plain = validate(&build_batch(0, None, &[b"a"]), 1 << 20).expect("valid");
        assert!(!plain.is_filler());
        assert!(
            !validate(&build_leader_change_batch(0, 1, 1, 0), 1 << 20)
                .expect("valid")
                .is_filler()
        );
    }

    #[test]
    fn a_sliced_filler_starts_later_and_keeps_the_rest() {
        let filler = build_filler(100, 164, 7, 42);
        assert_eq!(slice_filler(&filler, 100), Some(filler.clone()));
        let sliced = slice_filler(&filler, 130).expect("inside");
        let header = validate_stored(&sliced, 1 << 20).expect("valid, CRC included");
        assert!(header.is_filler());
        assert_eq!((header.base_offset, header.last_offset()), (130, 164));
        assert_eq!(header.partition_leader_epoch, 7);
        assert_eq!((header.base_timestamp, header.max_timestamp), (42, 42));
        let last = slice_filler(&filler, 164).expect("its last offset");
        assert_eq!(
            validate_stored(&last, 1 << 20)
                .expect("valid")
                .next_offset(),
            165
        );
        assert_eq!(slice_filler(&filler, 99), None);
        assert_eq!(slice_filler(&filler, 165), None);
        assert_eq!(slice_filler(&build_batch(0, None, &[b"a"]), 0), None);
        let mut flipped = filler.clone();
        flipped[BATCH_HEADER_BYTES - 1] ^= 1;
        assert_eq!(slice_filler(&flipped, 120), None, "a bad CRC");
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        let batch = build_batch(0, Some((1, 0, i32::MAX)), &[b"a", b"b"]);
        let header = validate(&batch, 1 << 20).expect("valid");
        assert_eq!(header.last_sequence(), 0);
    }

    #[test]
    fn a_log_append_time_stamp_keeps_the_batch_valid_and_refuses_a_damaged_one() {
        let mut batch = build_batch(1_000, None, &[b"a", b"b"]);
        stamp_log_append_time(&mut batch, 5_000).expect("a whole batch");
        let header = validate(&batch, u32::MAX).expect("the new CRC holds");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 5_000);
        assert_eq!(header.base_timestamp, 1_000);
        let mut damaged = build_batch(1_000, None, &[b"a"]);
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(
            stamp_log_append_time(&mut damaged, 5_000),
            Err(BatchError::CrcMismatch { .. })
        ));
    }
}
