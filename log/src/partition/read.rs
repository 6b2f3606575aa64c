//! The batch walk of [`PartitionLog::read`](super::PartitionLog::read)
//! (`docs/storage.md` §7): whole batches from segment files, each one CRC-checked
//! before it is served.
//!
//! ```text
//!  each batch from the index entry before the offset:
//!    header unreadable, off the expected offset, or past the segment end ─► stop
//!    ends below the offset asked for ─────────────────────────────────────► pass over
//!    reaches max_offset ─► first batch? check it whole, else stop
//!    would overflow max_bytes (not the first) ────────────────────────────► stop
//!    read whole, CRC and header fields checked ───────────────────────────► serve
//!  a stop at the first batch is Corrupt: nothing is served unchecked
//! ```

use super::{ReadError, ReadResult};
use crate::batch::{self, BatchHeader};
use crate::io::{Disk, FileId};
use crate::segment::read_fully;

/// A read under way: what was asked, and what it has gathered.
pub(super) struct BatchRead {
    /// The offset asked for: batches that end below it are passed over.
    offset: i64,
    /// No batch whose last offset reaches this is served (the high watermark).
    max_offset: i64,
    max_bytes: u32,
    /// Serve batches without checking their CRC (a deliberate bug, `mutants` only).
    skip_crc: bool,
    /// The batches served so far.
    result: ReadResult,
    /// Base offset the next batch must have.
    expected: i64,
}

impl BatchRead {
    /// A read of the batches from the one holding `offset`, the first of which is
    /// based at `expected` (where the walk starts).
    pub(super) fn new(
        offset: i64,
        max_offset: i64,
        max_bytes: u32,
        skip_crc: bool,
        expected: i64,
    ) -> BatchRead {
        BatchRead {
            offset,
            max_offset,
            max_bytes,
            skip_crc,
            result: ReadResult {
                bytes: Vec::new(),
                first_offset: None,
                next_offset: offset,
            },
            expected,
        }
    }

    /// Base offset the next batch must have.
    pub(super) fn expected(&self) -> i64 {
        self.expected
    }

    /// The batches served.
    pub(super) fn into_result(self) -> ReadResult {
        self.result
    }

    /// `Corrupt` at the expected offset if nothing was served yet, since a reader must
    /// never be told "nothing here" on the word of a bad batch; otherwise the read
    /// ends before the bad batch (`Ok`, and the caller stops).
    pub(super) fn fail_if_nothing_served(&self, reason: String) -> Result<(), ReadError> {
        if self.result.bytes.is_empty() {
            return Err(ReadError::Corrupt {
                offset: self.expected,
                reason,
            });
        }
        Ok(())
    }

    /// Walks the batches of a segment file from `position` to `end`, serving them.
    /// False once the read is over; true if it goes on in the next segment.
    pub(super) fn read_segment(
        &mut self,
        disk: &mut impl Disk,
        file: FileId,
        mut position: u64,
        end: u64,
    ) -> Result<bool, ReadError> {
        while position < end {
            match self.read_batch(disk, file, position, end)? {
                Some(size) => position += size,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Serves the batch at `position`, passes over it, or ends the read before it.
    /// Returns its size to go on after it, `None` once the read is over.
    fn read_batch(
        &mut self,
        disk: &mut impl Disk,
        file: FileId,
        position: u64,
        end: u64,
    ) -> Result<Option<u64>, ReadError> {
        let mut header = match self.read_header(disk, file, position, end)? {
            Ok(header) => header,
            Err(reason) => {
                self.fail_if_nothing_served(reason)?;
                return Ok(None);
            }
        };
        let size = header.size_bytes();
        if header.last_offset() < self.offset {
            self.expected = header.next_offset();
            return Ok(Some(size));
        }
        if header.last_offset() >= self.max_offset {
            if !self.result.bytes.is_empty() {
                return Ok(None);
            }
            match self.check_first_past_max(disk, file, position, &header)? {
                Some(checked) => header = checked,
                None => return Ok(None),
            }
        }
        if !self.result.bytes.is_empty()
            && self.result.bytes.len() as u64 + size > u64::from(self.max_bytes)
        {
            return Ok(None);
        }
        let start = self.result.bytes.len();
        let served = match self.append_checked(disk, file, position, &header)? {
            Ok(served) => served,
            Err(reason) => {
                self.result.bytes.truncate(start);
                self.fail_if_nothing_served(reason)?;
                return Ok(None);
            }
        };
        if served.size_bytes() != size
            || served.last_offset() < self.offset
            || served.last_offset() >= self.max_offset
        {
            // The checked batch is not what its first, unchecked header read
            // said (a bit flipped on that read only): go by the checked one.
            self.result.bytes.truncate(start);
            if served.size_bytes() == size && served.last_offset() < self.offset {
                self.expected = served.next_offset();
                return Ok(Some(size));
            }
            return Ok(None);
        }
        self.result.first_offset.get_or_insert(served.base_offset);
        self.result.next_offset = served.next_offset();
        self.expected = served.next_offset();
        if self.result.bytes.len() as u64 >= u64::from(self.max_bytes) {
            return Ok(None);
        }
        Ok(Some(size))
    }

    /// The unchecked header of the batch at `position`, or why it cannot be the next
    /// batch: unreadable, not at the expected offset, or running past `end`.
    fn read_header(
        &self,
        disk: &mut impl Disk,
        file: FileId,
        position: u64,
        end: u64,
    ) -> Result<Result<BatchHeader, String>, ReadError> {
        let mut header_bytes = [0u8; batch::BATCH_HEADER_BYTES];
        let read = read_fully(disk, file, position, &mut header_bytes).map_err(ReadError::Disk)?;
        let available = (end - position) as usize;
        let header = match BatchHeader::parse(&header_bytes[..read.min(available)]) {
            Ok(header) => header,
            Err(error) => return Ok(Err(error.to_string())),
        };
        if header.base_offset != self.expected {
            return Ok(Err(format!(
                "batch at position {position} has base offset {}, expected {}",
                header.base_offset, self.expected
            )));
        }
        if header.size_bytes() > end - position {
            return Ok(Err(format!(
                "batch at position {position} runs past the segment end"
            )));
        }
        Ok(Ok(header))
    }

    /// The first batch, whose unchecked header says it reaches `max_offset`, checked
    /// whole: its checked header if it ends below `max_offset` after all (it is
    /// served), `None` if it does not (nothing is), `Corrupt` if it fails its check.
    fn check_first_past_max(
        &self,
        disk: &mut impl Disk,
        file: FileId,
        position: u64,
        header: &BatchHeader,
    ) -> Result<Option<BatchHeader>, ReadError> {
        let size = header.size_bytes();
        // Returning nothing on the word of an unchecked header could stall
        // a reader forever: check the batch first. If the checked batch
        // ends below `max_offset`, the first look at its header was wrong
        // (a bit flipped on that read only), and the batch is served.
        let mut body = vec![0u8; size as usize];
        read_fully(disk, file, position, &mut body).map_err(ReadError::Disk)?;
        match batch::validate_stored(&body, u32::MAX) {
            Err(error) => Err(ReadError::Corrupt {
                offset: self.expected,
                reason: error.to_string(),
            }),
            Ok(checked)
                if checked.base_offset == header.base_offset
                    && checked.size_bytes() == size
                    && checked.last_offset() < self.max_offset =>
            {
                Ok(Some(checked))
            }
            Ok(_) => Ok(None),
        }
    }

    /// Appends the batch at `position` (whose header, as first read, is `header`) to
    /// the result and checks it whole. Returns the header of the checked bytes, or why
    /// they are not a sound batch (the caller takes them out again).
    fn append_checked(
        &mut self,
        disk: &mut impl Disk,
        file: FileId,
        position: u64,
        header: &BatchHeader,
    ) -> Result<Result<BatchHeader, String>, ReadError> {
        let size = header.size_bytes();
        let start = self.result.bytes.len();
        self.result.bytes.resize(start + size as usize, 0);
        let got = read_fully(disk, file, position, &mut self.result.bytes[start..])
            .map_err(ReadError::Disk)?;
        if got < size as usize {
            return Ok(Err(format!("short read at position {position}")));
        }
        if self.skip_crc {
            return Ok(Ok(*header));
        }
        let checked = batch::validate_stored(&self.result.bytes[start..], u32::MAX)
            .map_err(|error| error.to_string())
            .and_then(|served| {
                // `base_offset` and `partition_leader_epoch` lie outside the
                // CRC: the bytes served must carry what the header check above
                // saw, or a bit flipped between the two reads goes out unseen.
                if served.base_offset == header.base_offset
                    && served.partition_leader_epoch == header.partition_leader_epoch
                {
                    Ok(served)
                } else {
                    Err(format!(
                        "batch at position {position} read back with base offset {} (epoch {}), expected {} (epoch {})",
                        served.base_offset,
                        served.partition_leader_epoch,
                        header.base_offset,
                        header.partition_leader_epoch
                    ))
                }
            });
        Ok(checked)
    }
}
