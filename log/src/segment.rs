//! Segment files on disk: names, the batch scanner shared by recovery, reads and
//! `odradek dump-log`, and the codecs of the index and checkpoint files.
//!
//! Byte layouts are documented in `docs/storage.md`; every integer is big-endian, as
//! in Kafka's own formats.

use crate::batch::{self, BatchError, BatchHeader};
use crate::constants::BATCH_BYTES_MAX;
use crate::io::{Disk, DiskError, FileId, OpenMode};

/// Suffix of a segment's data file.
pub const LOG_SUFFIX: &str = ".log";
/// Suffix of a segment's sparse offset index.
pub const OFFSET_INDEX_SUFFIX: &str = ".index";
/// Suffix of a segment's sparse time index.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Suffix of files being written before an atomic rename; removed on open.
pub const TEMP_SUFFIX: &str = ".tmp";
/// Name of the file that persists `log_start_offset`.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset.checkpoint";
/// Name of the file that persists the log cleaner's [`CleanerCheckpoint`]
/// (`docs/storage.md` §13).
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset.checkpoint";
/// Suffix of a segment the log cleaner is writing, `<base>.log.cleaned`, before it is
/// renamed over `<base>.log`; removed on open.
pub const CLEANED_SUFFIX: &str = ".cleaned";

/// The kinds of file a partition directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFileKind {
    /// `<base>.log`: batches.
    Log,
    /// `<base>.index`: sparse offset index.
    OffsetIndex,
    /// `<base>.timeindex`: sparse time index.
    TimeIndex,
}

impl SegmentFileKind {
    /// The file name suffix of this kind.
    pub fn suffix(self) -> &'static str {
        match self {
            SegmentFileKind::Log => LOG_SUFFIX,
            SegmentFileKind::OffsetIndex => OFFSET_INDEX_SUFFIX,
            SegmentFileKind::TimeIndex => TIME_INDEX_SUFFIX,
        }
    }
}

/// `<base_offset as 20 digits><suffix>`, as Kafka names segment files.
pub fn segment_file_name(base_offset: i64, kind: SegmentFileKind) -> String {
    assert!(base_offset >= 0);
    format!("{base_offset:020}{}", kind.suffix())
}

/// The base offset and kind named by a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<(i64, SegmentFileKind)> {
    for kind in [
        SegmentFileKind::Log,
        SegmentFileKind::OffsetIndex,
        SegmentFileKind::TimeIndex,
    ] {
        if let Some(digits) = name.strip_suffix(kind.suffix())
            && digits.len() == 20
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return digits.parse::<i64>().ok().map(|base| (base, kind));
        }
    }
    None
}

/// `dir/name`, or `name` if `dir` is the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Where and why a scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanStop {
    /// Byte position of the first batch that was not accepted.
    pub position: u64,
    /// Why it was not accepted.
    pub reason: String,
    /// The framing error, if the batch itself was malformed.
    pub error: Option<BatchError>,
}

/// One batch a scan accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedBatch {
    /// Byte position of the batch in the segment file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
}

/// Everything [`scan_segment`] found in one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// The path scanned.
    pub path: String,
    /// The base offset the file name promises, if it is a segment file name.
    pub base_offset: Option<i64>,
    /// Length of the file.
    pub file_bytes: u64,
    /// Bytes of whole, valid, contiguous batches from the start of the file.
    pub valid_bytes: u64,
    /// The batches accepted, in file order. Each one's CRC was checked.
    pub batches: Vec<ScannedBatch>,
    /// Set if the scan stopped before the end of the file: the first corruption.
    pub stop: Option<ScanStop>,
}

/// Reads and checks every batch of the segment file at `path` (for `odradek dump-log`).
/// Stops at the first batch that is short, malformed, fails its CRC, or whose offsets
/// do not follow the previous batch (the first batch must start at the base offset the
/// file name gives, if it is a segment file name). Recovery uses the same rules.
pub fn scan_segment(disk: &mut impl Disk, path: &str) -> Result<SegmentScan, DiskError> {
    let name = path.rsplit_once('/').map_or(path, |(_, name)| name);
    let base_offset = match parse_segment_file_name(name) {
        Some((base, SegmentFileKind::Log)) => Some(base),
        _ => None,
    };
    let file = disk.open(path, OpenMode::Read)?;
    let result = (|| {
        let file_bytes = disk.file_len(file)?;
        let mut batches = Vec::new();
        let end = scan_file(
            disk,
            file,
            ScanRange {
                start_position: 0,
                end_position: file_bytes,
                expected_offset: base_offset,
                verify_crc_from: 0,
            },
            &mut |position, header| {
                batches.push(ScannedBatch {
                    position,
                    header: *header,
                })
            },
        )?;
        Ok(SegmentScan {
            path: path.to_string(),
            base_offset,
            file_bytes,
            valid_bytes: end.position,
            batches,
            stop: end.stop,
        })
    })();
    disk.close(file);
    result
}

/// What [`scan_file`] covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanRange {
    pub start_position: u64,
    pub end_position: u64,
    /// Base offset the first batch must have (`None`: take the first batch's).
    pub expected_offset: Option<i64>,
    /// Batches starting at or after this position have their CRC checked; before it,
    /// only headers are read (the region a sealed index vouches for).
    pub verify_crc_from: u64,
}

/// Where a scan ended.
#[derive(Clone, Debug)]
pub(crate) struct ScanEnd {
    /// End of the last accepted batch.
    pub position: u64,
    /// Offset after the last accepted batch (`expected_offset` if none).
    pub next_offset: Option<i64>,
    pub stop: Option<ScanStop>,
}

/// Why a scan does not accept a batch: the reason, and the framing error if the batch
/// itself is malformed.
type Refusal = (String, Option<BatchError>);

/// Scans batches in `range`, calling `visit` for each accepted one.
pub(crate) fn scan_file(
    disk: &mut impl Disk,
    file: FileId,
    range: ScanRange,
    visit: &mut dyn FnMut(u64, &BatchHeader),
) -> Result<ScanEnd, DiskError> {
    let mut position = range.start_position;
    let mut expected = range.expected_offset;
    let mut last_epoch: Option<i32> = None;
    let mut header_bytes = [0u8; batch::BATCH_HEADER_BYTES];
    let mut body = Vec::new();
    while position < range.end_position {
        let available = range.end_position - position;
        let read = read_fully(disk, file, position, &mut header_bytes)?;
        let checked = match BatchHeader::parse(&header_bytes[..read.min(available as usize)]) {
            Err(error) => Err((error.to_string(), Some(error))),
            Ok(header) => match framing_refusal(&header, available, expected) {
                Some(refusal) => Err(refusal),
                None if position >= range.verify_crc_from => {
                    check_whole(disk, file, position, header, &mut body)?
                }
                None => Ok(header),
            },
        };
        let header = match checked.and_then(|header| epoch_follows(header, last_epoch)) {
            Ok(header) => header,
            Err((reason, error)) => {
                return Ok(ScanEnd {
                    position,
                    next_offset: expected,
                    stop: Some(ScanStop {
                        position,
                        reason,
                        error,
                    }),
                });
            }
        };
        visit(position, &header);
        position += header.size_bytes();
        expected = Some(header.next_offset());
        last_epoch = Some(header.partition_leader_epoch);
    }
    Ok(ScanEnd {
        position,
        next_offset: expected,
        stop: None,
    })
}

/// Why the batch with this (unchecked) header cannot be the next one, from the
/// header alone: an impossible length, more bytes than the `available` ones, an
/// impossible base offset, or one that does not follow the previous batch.
fn framing_refusal(header: &BatchHeader, available: u64, expected: Option<i64>) -> Option<Refusal> {
    let size = header.size_bytes();
    if size > BATCH_BYTES_MAX {
        let error = BatchError::InvalidLength {
            batch_length: header.batch_length,
        };
        return Some((error.to_string(), Some(error)));
    }
    if size > available {
        let error = BatchError::Truncated {
            needed: size,
            available,
        };
        return Some((error.to_string(), Some(error)));
    }
    if header.base_offset < 0
        || header
            .base_offset
            .checked_add(i64::from(header.last_offset_delta) + 1)
            .is_none()
    {
        return Some((
            format!("impossible base offset {}", header.base_offset),
            None,
        ));
    }
    if let Some(expected) = expected
        && header.base_offset != expected
    {
        return Some((
            format!(
                "base offset {} does not follow the previous batch (expected {expected})",
                header.base_offset
            ),
            None,
        ));
    }
    None
}

/// Reads the batch at `position`, whose header was first read as `header`, whole
/// into `body` and checks it (length, CRC, header rules). Returns the header of the
/// checked bytes, or why the batch is refused.
fn check_whole(
    disk: &mut impl Disk,
    file: FileId,
    position: u64,
    header: BatchHeader,
    body: &mut Vec<u8>,
) -> Result<Result<BatchHeader, Refusal>, DiskError> {
    let size = header.size_bytes();
    body.resize(size as usize, 0);
    let got = read_fully(disk, file, position, body)?;
    if got < body.len() {
        let error = BatchError::Truncated {
            needed: size,
            available: got as u64,
        };
        return Ok(Err((error.to_string(), Some(error))));
    }
    let checked = match batch::validate_stored(body, u32::MAX) {
        Err(error) => Err((error.to_string(), Some(error))),
        // The visitor gets the header of the bytes whose CRC was checked:
        // the first read of the header may have seen a bit flipped (in the
        // producer epoch, say) that the second read did not. The fields
        // outside the CRC must agree between the two reads.
        Ok(checked)
            if checked.base_offset == header.base_offset
                && checked.batch_length == header.batch_length
                && checked.partition_leader_epoch == header.partition_leader_epoch =>
        {
            Ok(checked)
        }
        Ok(checked) => Err((
            format!(
                "batch read back differently: base offset {} length {} epoch {}, first read {} {} {}",
                checked.base_offset,
                checked.batch_length,
                checked.partition_leader_epoch,
                header.base_offset,
                header.batch_length,
                header.partition_leader_epoch
            ),
            None,
        )),
    };
    Ok(checked)
}

/// The batch with this header (the checked one, when its CRC was checked, so a flip
/// on one read cannot cut), unless its epoch is below `last_epoch`, the previous
/// batch's.
fn epoch_follows(header: BatchHeader, last_epoch: Option<i32>) -> Result<BatchHeader, Refusal> {
    // Epochs never go down in a log Raft wrote: a batch of an older epoch after a
    // newer one is stale bytes past an end that was cut without the cut becoming
    // durable (a failed sync), reached again by later appends whose offsets happen
    // to lead up to it. It was never acknowledged there.
    if let Some(last) = last_epoch
        && header.partition_leader_epoch < last
    {
        let epoch = header.partition_leader_epoch;
        return Err((
            format!("batch of epoch {epoch} after a batch of epoch {last}"),
            None,
        ));
    }
    Ok(header)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_fully(
    disk: &mut impl Disk,
    file: FileId,
    position: u64,
    buf: &mut [u8],
) -> Result<usize, DiskError> {
    let mut done = 0;
    while done < buf.len() {
        let read = disk.read_at(file, position + done as u64, &mut buf[done..])?;
        if read == 0 {
            break;
        }
        done += read;
    }
    Ok(done)
}

/// What a sealed segment's index trailers record about the segment's data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Base offset of the segment.
    pub base_offset: i64,
    /// Bytes of the data file that hold whole, valid batches and were durable before
    /// the index was written.
    pub valid_bytes: u64,
    /// Offset after the last batch.
    pub next_offset: i64,
    /// Largest batch `max_timestamp` in the segment (`i64::MIN` if it holds none).
    pub max_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp` (-1 if none).
    pub offset_of_max_timestamp: i64,
}

/// Magic of an offset index file.
pub const OFFSET_INDEX_MAGIC: [u8; 4] = *b"OXOI";
/// Magic of a time index file.
pub const TIME_INDEX_MAGIC: [u8; 4] = *b"OXTI";
/// Magic that opens an index trailer.
pub const INDEX_TRAILER_MAGIC: [u8; 4] = *b"OXND";
/// Version of the index formats.
pub const INDEX_VERSION: u16 = 1;
/// Bytes of an index header: magic, version, reserved, base offset.
pub const INDEX_HEADER_BYTES: usize = 16;
/// Bytes of one index entry: two 64-bit integers.
pub const INDEX_ENTRY_BYTES: usize = 16;
/// Bytes of an index trailer.
pub const INDEX_TRAILER_BYTES: usize = 48;

/// Encodes an index file: `entries` are `(offset, position)` pairs for the offset
/// index and `(timestamp, offset)` pairs for the time index.
pub fn encode_index(
    kind: SegmentFileKind,
    entries: &[(i64, i64)],
    summary: &SegmentSummary,
) -> Vec<u8> {
    let magic = match kind {
        SegmentFileKind::OffsetIndex => OFFSET_INDEX_MAGIC,
        SegmentFileKind::TimeIndex => TIME_INDEX_MAGIC,
        SegmentFileKind::Log => panic!("a log file is not an index"),
    };
    let entry_count = u32::try_from(entries.len()).expect("index entries fit u32");
    let mut out = Vec::with_capacity(
        INDEX_HEADER_BYTES + entries.len() * INDEX_ENTRY_BYTES + INDEX_TRAILER_BYTES,
    );
    out.extend_from_slice(&magic);
    out.extend_from_slice(&INDEX_VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&summary.base_offset.to_be_bytes());
    for (a, b) in entries {
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
    }
    out.extend_from_slice(&INDEX_TRAILER_MAGIC);
    out.extend_from_slice(&entry_count.to_be_bytes());
    out.extend_from_slice(&summary.valid_bytes.to_be_bytes());
    out.extend_from_slice(&summary.next_offset.to_be_bytes());
    out.extend_from_slice(&summary.max_timestamp.to_be_bytes());
    out.extend_from_slice(&summary.offset_of_max_timestamp.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // reserved
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(
        out.len(),
        INDEX_HEADER_BYTES + entries.len() * INDEX_ENTRY_BYTES + INDEX_TRAILER_BYTES
    );
    out
}

/// Why an index file was not trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid index: {reason}")]
pub struct IndexError {
    /// What was wrong.
    pub reason: String,
}

/// Decodes and checks an index file (magic, version, length, CRC).
pub fn decode_index(
    kind: SegmentFileKind,
    bytes: &[u8],
) -> Result<(SegmentSummary, Vec<(i64, i64)>), IndexError> {
    let fail = |reason: &str| IndexError {
        reason: reason.to_string(),
    };
    let magic = match kind {
        SegmentFileKind::OffsetIndex => OFFSET_INDEX_MAGIC,
        SegmentFileKind::TimeIndex => TIME_INDEX_MAGIC,
        SegmentFileKind::Log => return Err(fail("a log file is not an index")),
    };
    if bytes.len() < INDEX_HEADER_BYTES + INDEX_TRAILER_BYTES {
        return Err(fail("too short"));
    }
    let crc_at = bytes.len() - 4;
    let stored = u32::from_be_bytes(bytes[crc_at..].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..crc_at]) != stored {
        return Err(fail("crc mismatch"));
    }
    if bytes[..4] != magic {
        return Err(fail("bad magic"));
    }
    if u16::from_be_bytes([bytes[4], bytes[5]]) != INDEX_VERSION {
        return Err(fail("unknown version"));
    }
    let trailer = &bytes[bytes.len() - INDEX_TRAILER_BYTES..];
    if trailer[..4] != INDEX_TRAILER_MAGIC {
        return Err(fail("bad trailer magic"));
    }
    let entry_count = u32::from_be_bytes(trailer[4..8].try_into().expect("4 bytes")) as u64;
    let entries_bytes = (bytes.len() - INDEX_HEADER_BYTES - INDEX_TRAILER_BYTES) as u64;
    if entries_bytes != entry_count * INDEX_ENTRY_BYTES as u64 {
        return Err(fail("entry count does not match length"));
    }
    let summary = SegmentSummary {
        base_offset: be_i64(&bytes[8..16]),
        valid_bytes: be_i64(&trailer[8..16]) as u64,
        next_offset: be_i64(&trailer[16..24]),
        max_timestamp: be_i64(&trailer[24..32]),
        offset_of_max_timestamp: be_i64(&trailer[32..40]),
    };
    let entries = bytes[INDEX_HEADER_BYTES..bytes.len() - INDEX_TRAILER_BYTES]
        .chunks_exact(INDEX_ENTRY_BYTES)
        .map(|entry| (be_i64(&entry[..8]), be_i64(&entry[8..])))
        .collect();
    Ok((summary, entries))
}

/// Magic of the log start offset checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"OXLS";
/// Version of the checkpoint format.
pub const CHECKPOINT_VERSION: u16 = 1;
/// Bytes of the checkpoint file.
pub const CHECKPOINT_BYTES: usize = 20;

/// Magic of the cleaner checkpoint (same layout as the log start offset checkpoint).
pub const CLEANER_CHECKPOINT_MAGIC: [u8; 4] = *b"OXCL";

/// Encodes the log start offset checkpoint.
pub fn encode_checkpoint(log_start_offset: i64) -> Vec<u8> {
    encode_offset_file(CHECKPOINT_MAGIC, log_start_offset)
}

/// Decodes a log start offset checkpoint; `None` if it is not a valid one.
pub fn decode_checkpoint(bytes: &[u8]) -> Option<i64> {
    decode_offset_file(CHECKPOINT_MAGIC, bytes)
}

/// What the cleaner checkpoint records (`docs/storage.md` §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    /// Below this offset the cleaner may have removed records (emptied batches became
    /// fillers); every record at or above it is as it was appended. Raised before a
    /// pass swaps its first segment in.
    pub cleaned_through: i64,
    /// Kafka's first dirty offset: every pass that finished cleaned below it. Raised
    /// when a pass ends; the next pass maps the log from here.
    pub first_dirty_offset: i64,
}

impl CleanerCheckpoint {
    /// No cleaning yet: every record as appended, everything dirty.
    pub const NONE: CleanerCheckpoint = CleanerCheckpoint {
        cleaned_through: i64::MIN,
        first_dirty_offset: i64::MIN,
    };
}

/// Bytes of the cleaner checkpoint file.
const CLEANER_CHECKPOINT_BYTES: usize = 28;

/// Encodes the cleaner checkpoint: `magic "OXCL" | version u16 = 1 | reserved u16 |
/// cleaned_through i64 | first_dirty_offset i64 | CRC-32C u32 of the rest`.
pub fn encode_cleaner_checkpoint(checkpoint: CleanerCheckpoint) -> Vec<u8> {
    let mut out = Vec::with_capacity(CLEANER_CHECKPOINT_BYTES);
    out.extend_from_slice(&CLEANER_CHECKPOINT_MAGIC);
    out.extend_from_slice(&CHECKPOINT_VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&checkpoint.cleaned_through.to_be_bytes());
    out.extend_from_slice(&checkpoint.first_dirty_offset.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(out.len(), CLEANER_CHECKPOINT_BYTES);
    out
}

/// Decodes a cleaner checkpoint; `None` if it is not a valid one.
pub fn decode_cleaner_checkpoint(bytes: &[u8]) -> Option<CleanerCheckpoint> {
    if bytes.len() != CLEANER_CHECKPOINT_BYTES
        || bytes[..4] != CLEANER_CHECKPOINT_MAGIC
        || u16::from_be_bytes([bytes[4], bytes[5]]) != CHECKPOINT_VERSION
    {
        return None;
    }
    let stored = u32::from_be_bytes(bytes[24..28].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..24]) != stored {
        return None;
    }
    Some(CleanerCheckpoint {
        cleaned_through: be_i64(&bytes[8..16]),
        first_dirty_offset: be_i64(&bytes[16..24]),
    })
}

/// The cleaner checkpoint in `dir`: [`CleanerCheckpoint::NONE`] if the file is missing.
/// A damaged one (it is written rarely and atomically, like the log start checkpoint)
/// reads as "anything may have been cleaned, nothing is known clean": `cleaned_through`
/// `i64::MAX` (recovery lowers it to the log end offset) and no first dirty offset, so
/// the next pass maps the whole log again.
pub fn read_cleaner_checkpoint(
    disk: &mut impl Disk,
    dir: &str,
) -> Result<CleanerCheckpoint, DiskError> {
    let path = join(dir, CLEANER_CHECKPOINT);
    if !disk.exists(&path) {
        return Ok(CleanerCheckpoint::NONE);
    }
    let bytes = read_whole_file(disk, &path)?;
    Ok(
        decode_cleaner_checkpoint(&bytes).unwrap_or(CleanerCheckpoint {
            cleaned_through: i64::MAX,
            first_dirty_offset: i64::MIN,
        }),
    )
}

/// `magic | version u16 | reserved u16 | offset i64 | CRC-32C u32 of the rest`.
fn encode_offset_file(magic: [u8; 4], offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_BYTES);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&CHECKPOINT_VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(out.len(), CHECKPOINT_BYTES);
    out
}

fn decode_offset_file(magic: [u8; 4], bytes: &[u8]) -> Option<i64> {
    if bytes.len() != CHECKPOINT_BYTES
        || bytes[..4] != magic
        || u16::from_be_bytes([bytes[4], bytes[5]]) != CHECKPOINT_VERSION
    {
        return None;
    }
    let stored = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..16]) != stored {
        return None;
    }
    let offset = be_i64(&bytes[8..16]);
    (offset >= 0).then_some(offset)
}

fn be_i64(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

/// Reads a whole small file (index or checkpoint).
pub fn read_whole_file(disk: &mut impl Disk, path: &str) -> Result<Vec<u8>, DiskError> {
    let file = disk.open(path, OpenMode::Read)?;
    let result = (|| {
        let len = disk.file_len(file)?;
        let mut bytes = vec![0u8; usize::try_from(len).expect("file fits memory")];
        let read = read_fully(disk, file, 0, &mut bytes)?;
        bytes.truncate(read);
        Ok(bytes)
    })();
    disk.close(file);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::build_batch;
    use crate::mem_disk::MemDisk;

    #[test]
    fn segment_names_have_twenty_digits() {
        assert_eq!(
            segment_file_name(42, SegmentFileKind::Log),
            "00000000000000000042.log"
        );
        assert_eq!(
            parse_segment_file_name("00000000000000000042.timeindex"),
            Some((42, SegmentFileKind::TimeIndex))
        );
        assert_eq!(parse_segment_file_name("42.log"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.log.tmp"),
            None
        );
    }

    #[test]
    fn index_round_trips_and_rejects_any_flipped_bit() {
        let summary = SegmentSummary {
            base_offset: 10,
            valid_bytes: 4000,
            next_offset: 20,
            max_timestamp: 99,
            offset_of_max_timestamp: 15,
        };
        let entries = vec![(10, 0), (15, 2000)];
        let bytes = encode_index(SegmentFileKind::OffsetIndex, &entries, &summary);
        assert_eq!(
            decode_index(SegmentFileKind::OffsetIndex, &bytes),
            Ok((summary, entries))
        );
        assert!(decode_index(SegmentFileKind::TimeIndex, &bytes).is_err());
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(decode_index(SegmentFileKind::OffsetIndex, &bad).is_err());
        }
        assert!(decode_index(SegmentFileKind::OffsetIndex, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_corruption() {
        let bytes = encode_checkpoint(1234);
        assert_eq!(decode_checkpoint(&bytes), Some(1234));
        let mut bad = bytes.clone();
        bad[9] ^= 1;
        assert_eq!(decode_checkpoint(&bad), None);
        assert_eq!(decode_checkpoint(&bytes[..19]), None);
    }

    fn segment_with(disk: &mut MemDisk, batches: &[Vec<u8>]) -> String {
        let path = "p/00000000000000000000.log".to_string();
        disk.create_dir_all("p").unwrap();
        let file = disk.open(&path, OpenMode::CreateNew).unwrap();
        let mut position = 0;
        for b in batches {
            disk.write_at(file, position, b).unwrap();
            position += b.len() as u64;
        }
        disk.close(file);
        path
    }

    fn batch_at(offset: i64, values: &[&[u8]]) -> Vec<u8> {
        let mut b = build_batch(1000, None, values);
        batch::assign(&mut b, offset, 0);
        b
    }

    #[test]
    fn scan_accepts_contiguous_batches() {
        let mut disk = MemDisk::new(0);
        let a = batch_at(0, &[b"a", b"b"]);
        let b = batch_at(2, &[b"c"]);
        let path = segment_with(&mut disk, &[a.clone(), b.clone()]);
        let scan = scan_segment(&mut disk, &path).unwrap();
        assert_eq!(scan.batches.len(), 2);
        assert_eq!(scan.batches[1].position, a.len() as u64);
        assert_eq!(scan.valid_bytes, (a.len() + b.len()) as u64);
        assert_eq!(scan.stop, None);
    }

    #[test]
    fn scan_stops_at_offset_gap() {
        let mut disk = MemDisk::new(0);
        let a = batch_at(0, &[b"a"]);
        let b = batch_at(5, &[b"c"]);
        let path = segment_with(&mut disk, &[a.clone(), b]);
        let scan = scan_segment(&mut disk, &path).unwrap();
        assert_eq!(scan.batches.len(), 1);
        let stop = scan.stop.unwrap();
        assert_eq!(stop.position, a.len() as u64);
        assert!(stop.reason.contains("does not follow"));
    }

    #[test]
    fn scan_stops_at_bad_crc_and_at_short_tail() {
        let mut disk = MemDisk::new(0);
        let a = batch_at(0, &[b"a"]);
        let mut b = batch_at(1, &[b"bbbb"]);
        let last = b.len() - 1;
        b[last] ^= 4;
        let path = segment_with(&mut disk, &[a.clone(), b]);
        let scan = scan_segment(&mut disk, &path).unwrap();
        assert_eq!(scan.batches.len(), 1);
        assert!(matches!(
            scan.stop.unwrap().error,
            Some(BatchError::CrcMismatch { .. })
        ));

        let mut disk = MemDisk::new(0);
        let c = batch_at(1, &[b"cccc"]);
        let path = segment_with(&mut disk, &[a.clone(), c[..c.len() - 2].to_vec()]);
        let scan = scan_segment(&mut disk, &path).unwrap();
        assert_eq!(scan.valid_bytes, a.len() as u64);
        assert!(matches!(
            scan.stop.unwrap().error,
            Some(BatchError::Truncated { .. })
        ));
    }
}
