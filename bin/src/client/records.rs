//! RecordBatch v2 bytes on the client side: walking and decoding what Fetch returns,
//! and a template that turns out distinct batches quickly for the benchmark.
//!
//! Producing uses `odradek_log::batch::build_batch_with_keys` (uncompressed batches);
//! decoding uses `kafka-protocol`'s `RecordBatchDecoder`, which also reads batches other
//! clients compressed with gzip, snappy, lz4 or zstd.

use bytes::Bytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use odradek_log::batch::{BATCH_HEADER_BYTES, BATCH_LENGTH_PREFIX_BYTES, compute_crc, put_varlong};

use super::error::{ClientError, ClientResult};

const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const CONTROL_BIT: i16 = 0x20;
const MAGIC_AT: usize = 16;

/// One whole batch in a fetched `records` field, with the header fields a consumer needs
/// without decoding the records.
#[derive(Clone, Debug)]
pub struct RawBatch {
    /// The batch's bytes, header included.
    pub bytes: Bytes,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record (base + last offset delta).
    pub last_offset: i64,
    /// Whether this is a control batch (transaction markers; not shown to users).
    pub is_control: bool,
}

impl RawBatch {
    /// Whether the stored CRC-32C matches the bytes it covers.
    pub fn crc_is_valid(&self) -> bool {
        let stored =
            u32::from_be_bytes(self.bytes[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
        compute_crc(&self.bytes) == stored
    }

    /// Decodes the records (decompressing if needed; the CRC is checked).
    pub fn records(&self) -> ClientResult<Vec<Record>> {
        let mut bytes = self.bytes.clone();
        let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
            ClientError::Other(format!(
                "cannot decode batch at offset {}: {e}",
                self.base_offset
            ))
        })?;
        Ok(set.records)
    }
}

/// Splits a fetched `records` field into whole batches. A broker may cut the last batch
/// short at the fetch size limit; that tail is not returned (the next fetch starts at
/// it). Anything that is not a v2 batch header is an error.
pub fn split_batches(mut records: Bytes) -> ClientResult<Vec<RawBatch>> {
    let mut batches = Vec::new();
    while records.len() >= BATCH_HEADER_BYTES {
        let header = &records[..BATCH_HEADER_BYTES];
        let base_offset = i64::from_be_bytes(header[0..8].try_into().expect("8 bytes"));
        let batch_length = i32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
        let magic = header[MAGIC_AT] as i8;
        if magic != 2 {
            return Err(ClientError::Other(format!(
                "batch at offset {base_offset} has record format magic {magic}; only v2 is supported"
            )));
        }
        let total = usize::try_from(batch_length)
            .ok()
            .filter(|l| *l + BATCH_LENGTH_PREFIX_BYTES >= BATCH_HEADER_BYTES)
            .map(|l| l + BATCH_LENGTH_PREFIX_BYTES)
            .ok_or_else(|| {
                ClientError::Other(format!(
                    "batch at offset {base_offset} has length {batch_length}"
                ))
            })?;
        if total > records.len() {
            break; // cut short by the fetch size limit
        }
        let attributes = i16::from_be_bytes(
            header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]
                .try_into()
                .expect("2 bytes"),
        );
        let last_offset_delta = i32::from_be_bytes(
            header[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                .try_into()
                .expect("4 bytes"),
        );
        let bytes = records.split_to(total);
        batches.push(RawBatch {
            bytes,
            base_offset,
            last_offset: base_offset + i64::from(last_offset_delta),
            is_control: attributes & CONTROL_BIT != 0,
        });
    }
    Ok(batches)
}

/// A prebuilt uncompressed batch of fixed-size records whose values start with a
/// counter in 16 hex digits (printable, so `odradek consume` shows it whole). `fill` copies it, writes fresh counters and a timestamp
/// and recomputes the CRC: a memcpy and a hardware CRC-32C per batch, so every record
/// sent is distinct at almost no cost.
#[derive(Clone, Debug)]
pub struct BatchTemplate {
    bytes: Vec<u8>,
    /// Where each record's value starts in `bytes`.
    value_positions: Vec<usize>,
    record_bytes: usize,
}

impl BatchTemplate {
    /// A template of `records` records of `record_bytes`-byte values (no keys).
    pub fn new(records: usize, record_bytes: usize) -> BatchTemplate {
        assert!(records > 0, "a batch holds at least one record");
        assert!(
            i32::try_from(records).is_ok(),
            "record count fits a batch header"
        );
        // Filler that is not all one byte, so the values do not look artificially uniform.
        let filler: Vec<u8> = (0..record_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        let mut body = Vec::with_capacity(records * (record_bytes + 16));
        let mut value_positions = Vec::with_capacity(records);
        let mut record = Vec::with_capacity(record_bytes + 16);
        for index in 0..records {
            record.clear();
            record.push(0); // attributes
            put_varlong(&mut record, 0); // timestamp delta
            put_varlong(&mut record, index as i64); // offset delta
            put_varlong(&mut record, -1); // null key
            put_varlong(&mut record, record_bytes as i64);
            let value_in_record = record.len();
            record.extend_from_slice(&filler);
            put_varlong(&mut record, 0); // header count
            put_varlong(&mut body, record.len() as i64);
            value_positions.push(BATCH_HEADER_BYTES + body.len() + value_in_record);
            body.extend_from_slice(&record);
        }
        let count = records as i32;
        let mut bytes = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
        bytes.extend_from_slice(&0i64.to_be_bytes()); // base offset
        let batch_length = (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES + body.len()) as i32;
        bytes.extend_from_slice(&batch_length.to_be_bytes());
        bytes.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        bytes.push(2); // magic
        bytes.extend_from_slice(&0u32.to_be_bytes()); // crc
        bytes.extend_from_slice(&0i16.to_be_bytes()); // attributes
        bytes.extend_from_slice(&(count - 1).to_be_bytes());
        bytes.extend_from_slice(&0i64.to_be_bytes()); // base timestamp
        bytes.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
        bytes.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        bytes.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        bytes.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
        bytes.extend_from_slice(&count.to_be_bytes());
        debug_assert_eq!(bytes.len(), BATCH_HEADER_BYTES);
        bytes.extend_from_slice(&body);
        BatchTemplate {
            bytes,
            value_positions,
            record_bytes,
        }
    }

    /// Bytes of one batch.
    pub fn batch_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// A batch whose records carry counters `first_counter..first_counter + records()`.
    pub fn fill(&self, first_counter: u64, timestamp_ms: i64) -> Bytes {
        let mut batch = self.bytes.clone();
        let counter_bytes = self.record_bytes.min(COUNTER_DIGITS);
        for (index, &position) in self.value_positions.iter().enumerate() {
            let digits = hex_digits(first_counter + index as u64);
            batch[position..position + counter_bytes]
                .copy_from_slice(&digits[COUNTER_DIGITS - counter_bytes..]);
        }
        batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8]
            .copy_from_slice(&timestamp_ms.to_be_bytes());
        batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(batch)
    }
}

/// Hex digits of the counter at the start of each benchmark record.
const COUNTER_DIGITS: usize = 16;

/// `value` as 16 lower-case hex digits.
fn hex_digits(value: u64) -> [u8; COUNTER_DIGITS] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; COUNTER_DIGITS];
    for (index, byte) in value.to_be_bytes().into_iter().enumerate() {
        digits[2 * index] = HEX[usize::from(byte >> 4)];
        digits[2 * index + 1] = HEX[usize::from(byte & 0xf)];
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_log::batch::{assign, build_batch_with_keys, validate};

    #[test]
    fn template_batches_are_valid_and_distinct() {
        let template = BatchTemplate::new(300, 100);
        let first = template.fill(0, 1_700_000_000_000);
        let second = template.fill(300, 1_700_000_000_001);
        let header = validate(&first, 1 << 20).expect("valid batch");
        assert_eq!(header.record_count, 300);
        assert_eq!(header.base_timestamp, 1_700_000_000_000);
        validate(&second, 1 << 20).expect("valid batch");
        let mut decoded = first.clone();
        let set = RecordBatchDecoder::decode(&mut decoded).expect("kafka-protocol decodes it");
        assert_eq!(set.records.len(), 300);
        for (index, record) in set.records.iter().enumerate() {
            let value = record.value.as_ref().expect("value");
            assert_eq!(value.len(), 100);
            assert_eq!(&value[..16], format!("{index:016x}").as_bytes());
            assert_eq!(record.offset, index as i64);
            assert!(record.key.is_none());
        }
        let mut decoded = second.clone();
        let set = RecordBatchDecoder::decode(&mut decoded).expect("decodes");
        let value = set.records[0].value.as_ref().unwrap();
        assert_eq!(&value[..16], b"000000000000012c");
    }

    #[test]
    fn tiny_records_hold_a_truncated_counter() {
        let template = BatchTemplate::new(3, 2);
        let batch = template.fill(0x0102, 0);
        validate(&batch, 1 << 20).expect("valid");
        let mut decoded = batch.clone();
        let set = RecordBatchDecoder::decode(&mut decoded).expect("decodes");
        // The last two hex digits of 0x0102, 0x0103, 0x0104.
        assert_eq!(set.records[0].value.as_deref(), Some(&b"02"[..]));
        assert_eq!(set.records[2].value.as_deref(), Some(&b"04"[..]));
    }

    #[test]
    fn split_keeps_whole_batches_and_drops_a_cut_tail() {
        let mut one =
            build_batch_with_keys(0, None, [(Some(&b"k"[..]), &b"v1"[..]), (None, &b"v2"[..])]);
        assign(&mut one, 10, 0);
        let mut two = build_batch_with_keys(0, None, [(None, &b"v3"[..])]);
        assign(&mut two, 12, 0);
        let mut records = one.clone();
        records.extend_from_slice(&two);
        records.extend_from_slice(&two[..two.len() - 5]);
        let batches = split_batches(Bytes::from(records)).expect("splits");
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].base_offset, 10);
        assert_eq!(batches[0].last_offset, 11);
        assert!(batches[0].crc_is_valid());
        assert_eq!(batches[1].base_offset, 12);
        let records = batches[0].records().expect("decodes");
        assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(records[0].offset, 10);
        assert_eq!(records[1].value.as_deref(), Some(&b"v2"[..]));
        assert_eq!(records[1].offset, 11);
    }

    #[test]
    fn compressed_batches_from_other_clients_decode() {
        use bytes::BytesMut;
        use kafka_protocol::records::{
            Compression, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: -1,
                timestamp: 1_700_000_000_000,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}"))),
                headers: Default::default(),
            })
            .collect();
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut encoded = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut encoded, &records, &options).expect("encodes");
            let batches = split_batches(encoded.freeze()).expect("splits");
            assert_eq!(batches.last().expect("a batch").last_offset, 2);
            let mut decoded = Vec::new();
            for batch in &batches {
                assert!(batch.crc_is_valid(), "{compression:?}");
                assert_ne!(batch.bytes[22] & 0x07, 0, "{compression:?}: compressed");
                decoded.extend(batch.records().expect("decodes"));
            }
            assert_eq!(decoded.len(), 3);
            assert_eq!(
                decoded[2].value.as_deref(),
                Some(&b"value 2"[..]),
                "{compression:?}"
            );
            assert_eq!(decoded[1].key.as_deref(), Some(&b"k1"[..]));
        }
    }

    #[test]
    fn split_refuses_old_formats() {
        let mut batch = build_batch_with_keys(0, None, [(None, &b"v"[..])]);
        batch[MAGIC_AT] = 1;
        assert!(split_batches(Bytes::from(batch)).is_err());
    }
}
