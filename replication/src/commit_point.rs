//! How far this broker had applied its committed metadata log, kept across restarts.
//!
//! Raft does not persist its commit index: a member that restarts knows nothing
//! committed until a leader teaches it again. For the metadata log that left a
//! restarted broker with an empty picture of the cluster, telling clients that topics
//! it had applied a minute earlier did not exist (issue 15). So a broker of a cluster
//! writes the offset below which it applied the metadata log, with the epoch of the
//! entry just below it, to `committed-offset` in the metadata log's directory, and at
//! start applies its own durable records up to there before anything else happens
//! (decision 0011).
//!
//! The file is a hint that can only be too low, never wrong:
//!
//! - it names an offset only once the broker's own copy of the log is durable up to
//!   it, so the entries it covers survive any crash that the file survives;
//! - entries below a commit point are never truncated by Raft, so the entries there
//!   stay the committed ones;
//! - at start the offset is taken only if the recovered log still reaches it and holds
//!   an entry of the recorded epoch just below it; a log cut by damage, or an
//!   unreadable file, falls back to what the next leader teaches, as before.
//!
//! Format (22 bytes, big-endian): magic `ODCP`, version u16 (1), offset i64, epoch
//! i32, CRC-32C of the preceding bytes.

use odradek_log::io::{Disk, DiskError};
use odradek_log::partition::write_file_atomically;
use odradek_log::segment::{join, read_whole_file};

/// The file's name in the metadata log's directory.
pub const COMMIT_POINT_FILE: &str = "committed-offset";
const MAGIC: [u8; 4] = *b"ODCP";
const VERSION: u16 = 1;
const BYTES: usize = 4 + 2 + 8 + 4 + 4;

/// An offset below which the metadata log was committed and applied here, with the
/// leader epoch of the entry just below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitPoint {
    /// Entries below this offset were committed.
    pub offset: i64,
    /// The epoch of the entry at `offset - 1`.
    pub epoch: i32,
}

impl CommitPoint {
    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BYTES);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// The point `bytes` hold, or `None` if they are not one, whole.
    pub fn decode(bytes: &[u8]) -> Option<CommitPoint> {
        if bytes.len() != BYTES || bytes[..4] != MAGIC {
            return None;
        }
        let (body, crc) = bytes.split_at(BYTES - 4);
        if crc32c::crc32c(body).to_be_bytes() != crc {
            return None;
        }
        if u16::from_be_bytes([body[4], body[5]]) != VERSION {
            return None;
        }
        let offset = i64::from_be_bytes(body[6..14].try_into().expect("8 bytes"));
        let epoch = i32::from_be_bytes(body[14..18].try_into().expect("4 bytes"));
        (offset >= 0).then_some(CommitPoint { offset, epoch })
    }
}

/// The point written in `dir`, if there is a whole one. A missing or damaged file is
/// `None`: the broker then learns the commit point from a leader, as Raft does.
pub fn read_commit_point(disk: &mut impl Disk, dir: &str) -> Option<CommitPoint> {
    let path = join(dir, COMMIT_POINT_FILE);
    if !disk.exists(&path) {
        return None;
    }
    match read_whole_file(disk, &path) {
        Ok(bytes) => {
            let point = CommitPoint::decode(&bytes);
            if point.is_none() {
                tracing::warn!("{path}: not a commit point; learning it from the leader");
            }
            point
        }
        Err(error) => {
            tracing::warn!("{path}: {error}; learning the commit point from the leader");
            None
        }
    }
}

/// Replaces the point in `dir` (written whole, then renamed over the old one).
pub fn write_commit_point(
    disk: &mut impl Disk,
    dir: &str,
    point: CommitPoint,
) -> Result<(), DiskError> {
    write_file_atomically(disk, dir, COMMIT_POINT_FILE, &point.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_log::mem_disk::MemDisk;

    #[test]
    fn a_point_round_trips_and_any_changed_byte_is_refused() {
        let point = CommitPoint {
            offset: 4242,
            epoch: 7,
        };
        let bytes = point.encode();
        assert_eq!(CommitPoint::decode(&bytes), Some(point));
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            assert_eq!(CommitPoint::decode(&changed), None, "byte {at}");
        }
        assert_eq!(CommitPoint::decode(&bytes[..BYTES - 1]), None);
    }

    #[test]
    fn a_written_point_is_read_back_and_a_missing_one_is_none() {
        let mut disk = MemDisk::new(1);
        disk.create_dir_all("meta").expect("dir");
        assert_eq!(read_commit_point(&mut disk, "meta"), None);
        let point = CommitPoint {
            offset: 12,
            epoch: 3,
        };
        write_commit_point(&mut disk, "meta", point).expect("write");
        assert_eq!(read_commit_point(&mut disk, "meta"), Some(point));
        let newer = CommitPoint {
            offset: 15,
            epoch: 4,
        };
        write_commit_point(&mut disk, "meta", newer).expect("write");
        assert_eq!(read_commit_point(&mut disk, "meta"), Some(newer));
    }
}
