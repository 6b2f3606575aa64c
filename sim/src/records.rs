//! Decoding the record batches a fetch returns, as a consumer would, and checking
//! each one's CRC (a served batch that fails its CRC is a safety violation at once).
//!
//! The workload writes uncompressed batches whose record values start with the
//! record's workload-unique `u64` (big-endian), optionally followed by padding. On a
//! compacted topic a record also has a key (a `u64`, big-endian), and a null value is
//! a tombstone. Batches are checked as the broker stores them (`validate_stored`): a
//! cleaned batch holds fewer records than offsets, and a filler none.

use odradek_log::batch::{self, BATCH_HEADER_BYTES, BatchHeader};
use odradek_model::history::MARKER;

/// One record of a fetched batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its offset.
    pub offset: i64,
    /// The workload value, if the value holds one.
    pub value: Option<u64>,
    /// The key, if it is a workload key (eight bytes).
    pub key: Option<u64>,
    /// The value is null: a tombstone.
    pub tombstone: bool,
}

/// One batch of a fetch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedBatch {
    /// Its header.
    pub header: BatchHeader,
    /// Its records.
    pub records: Vec<FetchedRecord>,
}

/// Splits `bytes` into whole batches, checking each one's framing and CRC.
pub fn decode_batches(bytes: &[u8]) -> Result<Vec<FetchedBatch>, String> {
    let mut batches = Vec::new();
    let mut position = 0usize;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let header =
            BatchHeader::parse(rest).map_err(|e| format!("batch at byte {position}: {e}"))?;
        let size = usize::try_from(header.size_bytes()).map_err(|_| "huge batch".to_string())?;
        if size > rest.len() {
            return Err(format!(
                "batch at byte {position} claims {size} bytes, {} remain",
                rest.len()
            ));
        }
        let body = &rest[..size];
        batch::validate_stored(body, u32::MAX)
            .map_err(|e| format!("batch at byte {position}: {e}"))?;
        let records = decode_records(&header, &body[BATCH_HEADER_BYTES..])
            .map_err(|e| format!("records of batch at offset {}: {e}", header.base_offset))?;
        batches.push(FetchedBatch { header, records });
        position += size;
    }
    Ok(batches)
}

fn decode_records(header: &BatchHeader, mut body: &[u8]) -> Result<Vec<FetchedRecord>, String> {
    if header.compression() != Some(batch::Compression::None) {
        return Err("the workload never compresses".to_string());
    }
    let mut records = Vec::with_capacity(header.record_count.max(0) as usize);
    for _ in 0..header.record_count {
        let length = read_varlong(&mut body)?;
        let length = usize::try_from(length).map_err(|_| "negative record length")?;
        if length > body.len() {
            return Err("record runs past the batch".to_string());
        }
        let (mut record, rest) = body.split_at(length);
        body = rest;
        let _attributes = take(&mut record, 1)?;
        let _timestamp_delta = read_varlong(&mut record)?;
        let offset_delta = read_varlong(&mut record)?;
        let key_length = read_varlong(&mut record)?;
        let key_bytes = if key_length >= 0 {
            take(&mut record, key_length as usize)?
        } else {
            &[]
        };
        let key = <[u8; 8]>::try_from(key_bytes).ok().map(u64::from_be_bytes);
        let value_length = read_varlong(&mut record)?;
        let value = if value_length >= 8 {
            let bytes = take(&mut record, value_length as usize)?;
            Some(u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")))
        } else {
            if value_length > 0 {
                take(&mut record, value_length as usize)?;
            }
            None
        };
        records.push(FetchedRecord {
            offset: header.base_offset + offset_delta,
            // A control record (a new leader's marker) is the broker's own: consumers
            // skip it, and the history records its offset as a marker.
            value: if header.is_control() {
                Some(MARKER)
            } else {
                value
            },
            key,
            tombstone: value_length < 0,
        });
    }
    Ok(records)
}

fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Result<&'a [u8], String> {
    if count > bytes.len() {
        return Err("field runs past its record".to_string());
    }
    let (head, rest) = bytes.split_at(count);
    *bytes = rest;
    Ok(head)
}

/// Kafka's zig-zag `varlong`.
fn read_varlong(bytes: &mut &[u8]) -> Result<i64, String> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let [byte, rest @ ..] = *bytes else {
            return Err("varint runs past its record".to_string());
        };
        *bytes = rest;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long".to_string())
}

/// The record value the workload writes for `value`, padded to `value_bytes`.
pub fn encode_value(value: u64, value_bytes: usize) -> Vec<u8> {
    let mut bytes = value.to_be_bytes().to_vec();
    bytes.resize(value_bytes.max(8), 0xA5);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_build_batch() {
        let a = encode_value(42, 8);
        let b = encode_value(7, 700);
        let mut built = batch::build_batch(1, Some((3, 0, 0)), &[&a, &b]);
        batch::assign(&mut built, 100, 0);
        let decoded = decode_batches(&built).expect("valid");
        assert_eq!(decoded.len(), 1);
        let values: Vec<(i64, Option<u64>)> = decoded[0]
            .records
            .iter()
            .map(|r| (r.offset, r.value))
            .collect();
        assert_eq!(values, vec![(100, Some(42)), (101, Some(7))]);
        let last = built.len() - 1;
        built[last] ^= 1;
        assert!(decode_batches(&built).is_err());
    }

    #[test]
    fn a_leader_change_marker_is_recorded_as_the_broker_s_marker() {
        let mut built = batch::build_leader_change_batch(0, 3, 2, 1_000);
        batch::assign(&mut built, 17, 3);
        let decoded = decode_batches(&built).expect("valid");
        let records: Vec<(i64, Option<u64>)> = decoded[0]
            .records
            .iter()
            .map(|r| (r.offset, r.value))
            .collect();
        assert_eq!(records, vec![(17, Some(MARKER))]);
    }
}
