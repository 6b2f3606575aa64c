//! The synced-through record: how far a log's data was durable, kept so that recovery
//! can tell media damage from a torn write (decision 0010, item 3).
//!
//! A batch that fails its check after a crash is either the torn tail of a write that
//! was never synced (nothing acknowledged it; recovery cuts it) or bytes that were
//! synced, maybe acknowledged to a leader, and changed since (rot, a misdirected
//! write). The bytes alone cannot say which. A replicated log therefore records, after
//! each sync round, the offset below which every batch was durable, and acknowledges
//! only what the record covers (`PartitionLog::durable_offset`): a batch below it that
//! fails its check is damage.
//!
//! ```text
//!  file "synced-through" in the partition directory, two slots of one sector each:
//!
//!   0    ┌ slot 0 ┐   512  ┌ slot 1 ┐   (slot = sequence % 2)
//!        magic "OXST" | version u16 = 1 | sequence u64 | synced offset i64 | CRC-32C u32
//! ```
//!
//! - A sync round writes the slot its sequence names with the offset the previous rounds
//!   made durable, and syncs the file with the data of the round: the record is written
//!   only after the data it names was durable, so any slot that reads back whole tells
//!   the truth. Recovery takes the valid slot with the higher sequence.
//! - One slot per round, each a whole sector: a torn or lost write, or rot in one slot,
//!   leaves the other, which names less but nothing false.
//! - Before a truncation removes bytes below the record, both slots are rewritten with
//!   the cut offset and synced: a record that outlived its bytes would call a torn
//!   write of later, different bytes damage.

use crate::io::{Disk, DiskError, FileId, OpenMode};
use crate::segment::join;

/// Name of the record's file in the partition directory.
pub const SYNCED_THROUGH_FILE: &str = "synced-through";

const MAGIC: [u8; 4] = *b"OXST";
const VERSION: u16 = 1;
/// Distance between the two slots: one sector, so that no write spans both.
const SLOT_BYTES: u64 = 512;
/// Bytes of one encoded slot.
const ENCODED_BYTES: usize = 4 + 2 + 8 + 8 + 4;

/// One slot's bytes.
fn encode(sequence: u64, offset: i64) -> [u8; ENCODED_BYTES] {
    let mut out = [0u8; ENCODED_BYTES];
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_be_bytes());
    out[6..14].copy_from_slice(&sequence.to_be_bytes());
    out[14..22].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&out[..22]);
    out[22..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// `(sequence, offset)` of a valid slot; `None` for anything else.
fn decode(bytes: &[u8]) -> Option<(u64, i64)> {
    let bytes = bytes.get(..ENCODED_BYTES)?;
    if bytes[..4] != MAGIC || u16::from_be_bytes([bytes[4], bytes[5]]) != VERSION {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[22..].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[..22]) != crc {
        return None;
    }
    let sequence = u64::from_be_bytes(bytes[6..14].try_into().expect("8 bytes"));
    let offset = i64::from_be_bytes(bytes[14..22].try_into().expect("8 bytes"));
    Some((sequence, offset))
}

/// The valid slots of a record file's bytes, as `(sequence, offset)`, slot 0 first.
pub fn decode_slots(bytes: &[u8]) -> [Option<(u64, i64)>; 2] {
    let slot = |k: u64| {
        let start = usize::try_from(k * SLOT_BYTES).expect("small");
        bytes.get(start..).and_then(decode)
    };
    [slot(0), slot(1)]
}

/// The byte range of slot `k` (0 or 1) in the file: `(start, length)`.
pub fn slot_range(k: u64) -> (u64, u64) {
    (k * SLOT_BYTES, ENCODED_BYTES as u64)
}

/// The offset a record file's bytes vouch for: the newer valid slot's. `None` if
/// neither slot is valid.
pub fn synced_through(bytes: &[u8]) -> Option<i64> {
    decode_slots(bytes)
        .into_iter()
        .flatten()
        .max_by_key(|&(sequence, _)| sequence)
        .map(|(_, offset)| offset)
}

/// A log's record, open: what it holds durably and the next slot to write.
#[derive(Debug)]
pub(crate) struct SyncedRecord {
    file: FileId,
    /// Sequence of the newest slot written.
    sequence: u64,
    /// The offset the file vouches for durably (`i64::MIN`: nothing): set here by the
    /// blocking writes, and by the log when a round's sync of the file completes.
    pub(crate) recorded: i64,
    /// The highest offset written into a slot since the last [`SyncedRecord::lower_now`],
    /// synced or not: an unsynced slot write may survive a crash.
    pub(crate) written: i64,
}

impl SyncedRecord {
    /// Reads the record of `dir`: the offset it vouches for (`None` if there is no
    /// file or no valid slot) and the highest sequence in it (0 if none), which
    /// [`SyncedRecord::create_now`] continues.
    pub(crate) fn read(disk: &mut impl Disk, dir: &str) -> Result<(Option<i64>, u64), DiskError> {
        let path = join(dir, SYNCED_THROUGH_FILE);
        if !disk.exists(&path) {
            return Ok((None, 0));
        }
        let bytes = crate::segment::read_whole_file(disk, &path)?;
        let sequence = decode_slots(&bytes)
            .into_iter()
            .flatten()
            .map(|(sequence, _)| sequence)
            .max()
            .unwrap_or(0);
        Ok((synced_through(&bytes), sequence))
    }

    /// Opens (creating) the record of `dir` and makes it say `offset` in both slots,
    /// durably (blocking; start-up), with sequences after `sequence`, the highest in
    /// the file ([`SyncedRecord::read`]): a crash between the two writes then leaves
    /// the new slot the newer one. The caller syncs the directory.
    pub(crate) fn create_now(
        disk: &mut impl Disk,
        dir: &str,
        offset: i64,
        sequence: u64,
    ) -> Result<SyncedRecord, DiskError> {
        let path = join(dir, SYNCED_THROUGH_FILE);
        let file = disk.open(&path, OpenMode::Create)?;
        let mut record = SyncedRecord {
            file,
            sequence,
            recorded: offset,
            written: offset,
        };
        if let Err(error) = record.write_both_now(disk, offset) {
            disk.close(file);
            return Err(error);
        }
        Ok(record)
    }

    /// Writes the next slot with `offset`, which must be durable already; the caller
    /// syncs [`SyncedRecord::file`] before it relies on it.
    /// A failed write may leave its slot half written: the next write goes to the same
    /// slot, so that the other one, whole, is never the one in flux.
    pub(crate) fn write_next(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
    ) -> Result<(), DiskError> {
        let sequence = self.sequence + 1;
        let (start, _) = slot_range(sequence % 2);
        // Counted before the write: a failed one may still leave it in the file.
        self.written = self.written.max(offset);
        disk.write_at(self.file, start, &encode(sequence, offset))?;
        self.sequence = sequence;
        Ok(())
    }

    /// Makes both slots say `offset` and syncs them, blocking: before bytes at or above
    /// `offset` change (a cut), at start-up and at shutdown.
    pub(crate) fn write_both_now(
        &mut self,
        disk: &mut impl Disk,
        offset: i64,
    ) -> Result<(), DiskError> {
        self.write_next(disk, offset)?;
        self.write_next(disk, offset)?;
        disk.sync_now(self.file)?;
        self.recorded = offset;
        Ok(())
    }

    /// Stops the record from vouching for anything at or above `offset`, durably,
    /// blocking: before a cut at `offset` changes bytes. Both slots say `offset`; if
    /// they cannot be written (a full disk must not stop a truncation), the file is
    /// emptied instead, and it vouches for nothing until the next round writes it.
    pub(crate) fn lower_now(&mut self, disk: &mut impl Disk, offset: i64) -> Result<(), DiskError> {
        match self.write_both_now(disk, offset) {
            Err(DiskError::NoSpace | DiskError::Io { .. }) => {
                disk.truncate(self.file, 0)?;
                disk.sync_now(self.file)?;
                self.recorded = i64::MIN;
                self.written = i64::MIN;
                Ok(())
            }
            result => {
                self.written = offset;
                result
            }
        }
    }

    /// The record's open file.
    pub(crate) fn file(&self) -> FileId {
        self.file
    }

    /// Closes the file.
    pub(crate) fn close(self, disk: &mut impl Disk) {
        disk.close(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newer_valid_slot_answers() {
        let mut bytes = vec![0u8; 1024];
        bytes[..ENCODED_BYTES].copy_from_slice(&encode(4, 100));
        bytes[512..512 + ENCODED_BYTES].copy_from_slice(&encode(5, 130));
        assert_eq!(synced_through(&bytes), Some(130));
        // Rot in the newer slot: the older one still tells the truth, if less of it.
        bytes[520] ^= 0x10;
        assert_eq!(synced_through(&bytes), Some(100));
        bytes[3] ^= 0x01;
        assert_eq!(synced_through(&bytes), None);
        assert_eq!(synced_through(&[]), None);
    }
}
