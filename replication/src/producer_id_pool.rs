//! The producer ids a broker hands out (KIP-98), never twice, even across a crash: the
//! state InitProducerId (`producer_ids.rs`) changes, and the reservation file a broker
//! of a cluster keeps in its data directory.

use odradek_log::io::{Disk, DiskError};
use odradek_log::partition::write_file_atomically;
use odradek_log::segment::read_whole_file;

use crate::metadata::PRODUCER_ID_BLOCK_SIZE;

/// The producer ids this broker hands out.
#[derive(Debug, Default)]
pub(crate) struct ProducerIdPool {
    /// A single broker's next id; ids below `ClusterState::producer_ids_reserved_until`
    /// are reserved for it in the metadata log.
    next: i64,
    /// A block being reserved in the metadata log: (its end, the offset of its record).
    reservation: Option<(i64, i64)>,
    /// In a cluster: (next sequence, sequences reserved below), once read.
    local: Option<(i64, i64)>,
}

impl ProducerIdPool {
    /// Ids start at `reserved_until` after a start: ids reserved before a restart may
    /// have been handed out.
    pub(crate) fn start_at(&mut self, reserved_until: i64) {
        self.next = reserved_until;
    }

    /// Whether a single broker handed out `producer_id` (so its epoch may be bumped).
    pub(crate) fn handed_out(&self, producer_id: i64) -> bool {
        producer_id < self.next
    }

    /// A single broker's next id.
    pub(crate) fn take_next(&mut self) -> i64 {
        self.next += 1;
        self.next - 1
    }

    /// Takes back `producer_id`, the last id taken, which could not be reserved.
    pub(crate) fn give_back(&mut self, producer_id: i64) {
        assert_eq!(producer_id, self.next - 1, "only the last id goes back");
        self.next = producer_id;
    }

    /// The metadata offset of a reservation in flight that covers `producer_id`.
    pub(crate) fn reservation_covering(&self, producer_id: i64) -> Option<i64> {
        self.reservation
            .filter(|&(until, _)| producer_id < until)
            .map(|(_, offset)| offset)
    }

    /// Notes that ids below `until` are being reserved by the record at `offset`.
    pub(crate) fn reserving(&mut self, until: i64, offset: i64) {
        self.reservation = Some((until, offset));
    }

    /// A new producer id of this broker's own (cluster mode). Blocks of sequences are
    /// reserved durably in [`LOCAL_PRODUCER_IDS_FILE`] before use, so no id is given
    /// twice across a crash.
    pub(crate) fn next_local(
        &mut self,
        disk: &mut impl Disk,
        node_id: i32,
    ) -> Result<i64, DiskError> {
        if self.local.is_none() {
            let reserved = if disk.exists(LOCAL_PRODUCER_IDS_FILE) {
                let bytes = read_whole_file(disk, LOCAL_PRODUCER_IDS_FILE)?;
                // Never guess: a reservation read wrong could hand out ids again.
                decode_producer_id_reservation(&bytes).ok_or_else(|| DiskError::Io {
                    message: format!(
                        "{LOCAL_PRODUCER_IDS_FILE}: unreadable reservation {:?}",
                        String::from_utf8_lossy(&bytes)
                    ),
                })?
            } else {
                0
            };
            // Sequences below the reservation may have been handed out before a
            // restart: start at the reservation.
            self.local = Some((reserved, reserved));
        }
        let (next, reserved) = self.local.expect("set above");
        let reserved = if next >= reserved {
            let until = next + PRODUCER_ID_BLOCK_SIZE;
            write_file_atomically(
                disk,
                "",
                LOCAL_PRODUCER_IDS_FILE,
                encode_producer_id_reservation(until).as_bytes(),
            )?;
            until
        } else {
            reserved
        };
        self.local = Some((next + 1, reserved));
        Ok(next * PRODUCER_ID_STRIDE + i64::from(node_id))
    }
}

/// The data-directory file of a broker in a cluster that records how far its own
/// producer ids are reserved.
pub const LOCAL_PRODUCER_IDS_FILE: &str = "producer-ids";

/// Producer ids in a cluster are `sequence * PRODUCER_ID_STRIDE + node.id`: each broker
/// hands out its own, so InitProducerId needs no trip to the controller. Node ids of
/// a cluster are below the stride (the config refuses larger ones).
pub const PRODUCER_ID_STRIDE: i64 = 1024;

/// The producer-id reservation file's line: `next=N crc=C`, where `C` is the CRC-32C
/// of `next=N` in hex, so that a byte read wrong is an error, not another number.
fn encode_producer_id_reservation(next: i64) -> String {
    let body = format!("next={next}");
    format!("{body} crc={:08x}\n", crc32c::crc32c(body.as_bytes()))
}

/// The reservation in a file written by [`encode_producer_id_reservation`], or
/// `None` if the file does not say it whole and unchanged.
fn decode_producer_id_reservation(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
    let (body, crc) = text.split_once(" crc=")?;
    // Compared as text: a parse would take `A` for `a`, and a changed byte would pass.
    if crc != format!("{:08x}", crc32c::crc32c(body.as_bytes())) {
        return None;
    }
    body.strip_prefix("next=")?.parse().ok()
}

#[cfg(test)]
mod producer_id_reservation_tests {
    use super::*;

    #[test]
    fn a_reservation_read_back_whole_is_its_number_and_any_changed_byte_is_refused() {
        let line = encode_producer_id_reservation(3072);
        assert_eq!(decode_producer_id_reservation(line.as_bytes()), Some(3072));
        for at in 0..line.len() {
            for bit in 0..8 {
                let mut bytes = line.clone().into_bytes();
                bytes[at] ^= 1 << bit;
                assert_eq!(
                    decode_producer_id_reservation(&bytes),
                    None,
                    "byte {at} bit {bit} flipped"
                );
            }
        }
        assert_eq!(decode_producer_id_reservation(b"next=3072\n"), None);
    }
}
