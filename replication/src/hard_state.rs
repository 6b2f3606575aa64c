//! The Raft hard state of one replica on disk: the leader epoch, the vote cast in it,
//! and decision 0010's recovery flag and loss count, in two copies (`raft-state` and
//! `raft-state.copy`) so that rot in one leaves the other whole. docs/replication.md
//! describes the format.

use odradek_log::io::{Disk, DiskError};
use odradek_log::partition::write_file_atomically;
use odradek_log::segment::{join, read_whole_file};

use crate::peer::{GroupId, broker_id, raft_node_id};
use crate::raft::HardState;
use crate::topics::{METADATA_TOPIC, partition_dir};

/// The file in a partition's directory (and in the metadata log's) that holds the
/// Raft hard state: the leader epoch and the vote cast in it.
pub const HARD_STATE_FILE: &str = "raft-state";
/// Its second copy (decision 0010, item 4): every write replaces both, one after the
/// other, so that rot or a misdirected write in one copy leaves the other whole.
pub const HARD_STATE_COPY_FILE: &str = "raft-state.copy";
const HARD_STATE_MAGIC: [u8; 4] = *b"ODHS";
/// Version 2 added the recovery flag and the loss count (decision 0010); version 1
/// files (epoch and vote only) are still read.
const HARD_STATE_VERSION: u16 = 2;
const HARD_STATE_V1_BYTES: usize = 4 + 2 + 4 + 4 + 4;
const HARD_STATE_BYTES: usize = 4 + 2 + 4 + 4 + 1 + 4 + 4;

/// Reads the hard state persisted in `dir`; the default (epoch 0, no vote) if neither
/// copy exists. A hard state that does not decode from either copy is an error:
/// guessing could let this member vote twice in one epoch.
pub(crate) fn read_hard_state(disk: &mut impl Disk, dir: &str) -> Result<HardState, String> {
    let mut copies = Vec::new();
    for name in [HARD_STATE_FILE, HARD_STATE_COPY_FILE] {
        let path = join(dir, name);
        if disk.exists(&path) {
            let bytes = read_whole_file(disk, &path).map_err(|error| format!("{path}: {error}"))?;
            copies.push(Some(bytes));
        } else {
            copies.push(None);
        }
    }
    if copies.iter().all(Option::is_none) {
        return Ok(HardState::default());
    }
    newest_hard_state(copies[0].as_deref(), copies[1].as_deref()).ok_or_else(|| {
        format!(
            "{}: no valid raft hard state in either copy",
            join(dir, HARD_STATE_FILE)
        )
    })
}

/// The hard state a member restarting now would read from the contents of its two
/// copies (`None`: the file is missing): the newer of the copies that decode, the one
/// that covers the other (a crash between the two writes leaves one a step behind).
/// `None` if neither decodes, or if two valid copies disagree in a way no sequence of
/// writes explains. For the node, and for checkers that read the durable bytes.
pub fn newest_hard_state(first: Option<&[u8]>, second: Option<&[u8]>) -> Option<HardState> {
    match (
        first.and_then(decode_hard_state),
        second.and_then(decode_hard_state),
    ) {
        (Some(a), Some(b)) if a.covers(&b) => Some(a),
        (Some(a), Some(b)) if b.covers(&a) => Some(b),
        (Some(_), Some(_)) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// Replaces the hard state in `dir`, both copies, durably, before returning. The first
/// copy is written whole (write, sync, rename, sync) before the second is touched, so
/// at any moment at least one copy holds either the old or the new state whole.
pub(crate) fn write_hard_state(
    disk: &mut impl Disk,
    dir: &str,
    hard_state: HardState,
) -> Result<(), DiskError> {
    let bytes = encode_hard_state(hard_state);
    write_file_atomically(disk, dir, HARD_STATE_FILE, &bytes)?;
    write_file_atomically(disk, dir, HARD_STATE_COPY_FILE, &bytes)
}

fn encode_hard_state(hard_state: HardState) -> Vec<u8> {
    let mut out = Vec::with_capacity(HARD_STATE_BYTES);
    out.extend_from_slice(&HARD_STATE_MAGIC);
    out.extend_from_slice(&HARD_STATE_VERSION.to_be_bytes());
    out.extend_from_slice(&hard_state.leader_epoch.to_be_bytes());
    let vote = hard_state.voted_for.map_or(-1, broker_id);
    out.extend_from_slice(&vote.to_be_bytes());
    out.push(u8::from(hard_state.recovering));
    out.extend_from_slice(&hard_state.losses.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The paths of Raft group `group`'s two hard state copies on a broker's disk.
pub fn hard_state_paths(group: &GroupId) -> [String; 2] {
    let dir = match group {
        GroupId::Metadata => partition_dir(METADATA_TOPIC, 0),
        GroupId::Partition(key) => partition_dir(&key.topic, key.partition),
    };
    [
        join(&dir, HARD_STATE_FILE),
        join(&dir, HARD_STATE_COPY_FILE),
    ]
}

/// A hard state file's contents, or `None` if they are not one, whole (for checkers
/// that read the durable bytes, like the simulator's).
pub fn decode_hard_state(bytes: &[u8]) -> Option<HardState> {
    if bytes.len() < HARD_STATE_V1_BYTES || bytes[..4] != HARD_STATE_MAGIC {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return None;
    }
    let version = u16::from_be_bytes([body[4], body[5]]);
    let expected_len = match version {
        1 => HARD_STATE_V1_BYTES,
        HARD_STATE_VERSION => HARD_STATE_BYTES,
        _ => return None,
    };
    if bytes.len() != expected_len {
        return None;
    }
    let leader_epoch = i32::from_be_bytes(body[6..10].try_into().ok()?);
    let vote = i32::from_be_bytes(body[10..14].try_into().ok()?);
    let voted_for = if vote < 0 {
        None
    } else {
        Some(raft_node_id(vote))
    };
    let (recovering, losses) = if version == 1 {
        (false, 0)
    } else {
        let recovering = match body[14] {
            0 => false,
            1 => true,
            _ => return None,
        };
        (
            recovering,
            u32::from_be_bytes(body[15..19].try_into().ok()?),
        )
    };
    Some(HardState {
        leader_epoch,
        voted_for,
        recovering,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_log::mem_disk::MemDisk;

    #[test]
    fn hard_state_round_trips_and_survives_a_crash() {
        let mut disk = MemDisk::new(7);
        disk.create_dir_all("t-0").unwrap();
        assert_eq!(read_hard_state(&mut disk, "t-0"), Ok(HardState::default()));
        let written = HardState {
            leader_epoch: 9,
            voted_for: Some(3),
            recovering: true,
            losses: 2,
        };
        write_hard_state(&mut disk, "t-0", written).unwrap();
        disk.crash(1);
        assert_eq!(read_hard_state(&mut disk, "t-0"), Ok(written));
        let none = HardState {
            leader_epoch: 10,
            voted_for: None,
            recovering: false,
            losses: 2,
        };
        write_hard_state(&mut disk, "t-0", none).unwrap();
        assert_eq!(read_hard_state(&mut disk, "t-0"), Ok(none));
    }

    #[test]
    fn a_damaged_hard_state_is_an_error_not_a_default() {
        let mut bytes = encode_hard_state(HardState {
            leader_epoch: 2,
            voted_for: Some(1),
            recovering: true,
            losses: 1,
        });
        assert!(decode_hard_state(&bytes).is_some());
        for at in 0..bytes.len() {
            bytes[at] ^= 0x10;
            assert_eq!(decode_hard_state(&bytes), None, "flip at byte {at}");
            bytes[at] ^= 0x10;
        }
        assert_eq!(decode_hard_state(&bytes[..5]), None);
    }

    #[test]
    fn either_copy_alone_keeps_the_hard_state() {
        let mut disk = MemDisk::new(3);
        disk.create_dir_all("t-0").unwrap();
        let older = HardState {
            leader_epoch: 4,
            voted_for: Some(2),
            ..HardState::default()
        };
        let newer = HardState {
            leader_epoch: 5,
            voted_for: Some(1),
            ..HardState::default()
        };
        write_hard_state(&mut disk, "t-0", older).unwrap();
        write_hard_state(&mut disk, "t-0", newer).unwrap();
        // Rot in either copy: the other answers.
        for (rotted, name) in [HARD_STATE_FILE, HARD_STATE_COPY_FILE].iter().enumerate() {
            let path = join("t-0", name);
            assert!(disk.corrupt_stored(&path, 7, 0x01));
            assert_eq!(
                read_hard_state(&mut disk, "t-0"),
                Ok(newer),
                "copy {rotted} rotted"
            );
            assert!(disk.corrupt_stored(&path, 7, 0x01));
        }
        // Both rotted: no guess.
        for name in [HARD_STATE_FILE, HARD_STATE_COPY_FILE] {
            assert!(disk.corrupt_stored(&join("t-0", name), 9, 0x01));
        }
        assert!(read_hard_state(&mut disk, "t-0").is_err());
        // A crash between the two writes: the first copy is a step ahead, and wins.
        let a = encode_hard_state(newer);
        let b = encode_hard_state(older);
        assert_eq!(newest_hard_state(Some(&a), Some(&b)), Some(newer));
        assert_eq!(newest_hard_state(Some(&b), Some(&a)), Some(newer));
        assert_eq!(newest_hard_state(None, Some(&b)), Some(older));
        // Two states no sequence of writes explains (two votes in one epoch): no guess.
        let other_vote = encode_hard_state(HardState {
            voted_for: Some(3),
            ..newer
        });
        assert_eq!(newest_hard_state(Some(&a), Some(&other_vote)), None);
    }

    #[test]
    fn a_version_1_hard_state_is_still_read() {
        // Written by brokers before decision 0010: epoch 7, vote for broker 2.
        let mut bytes = b"ODHS".to_vec();
        bytes.extend_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&7i32.to_be_bytes());
        bytes.extend_from_slice(&2i32.to_be_bytes());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_hard_state(&bytes),
            Some(HardState {
                leader_epoch: 7,
                voted_for: Some(2),
                recovering: false,
                losses: 0,
            })
        );
    }
}
