//! InitProducerId: producer ids for idempotent producers (KIP-98), never handed out
//! twice, even across a crash. A single broker reserves blocks of ids in the metadata
//! log; a broker of a cluster hands out its own ids from a reservation in its data
//! directory, so the request needs no trip to the controller.

use kafka_protocol::messages::{InitProducerIdResponse, ProducerId, RequestKind, ResponseKind};
use odradek_log::io::DiskError;
use odradek_log::partition::write_file_atomically;
use odradek_log::segment::read_whole_file;

use crate::error::ErrorCode;
use crate::metadata::{MetadataRecord, PRODUCER_ID_BLOCK_SIZE};
use crate::node::{MetadataWait, Node, NodeIo, quorum_voters};
use crate::request::{Request, RequestId};

impl Node {
    pub(crate) fn handle_init_producer_id(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::InitProducerId(init) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        if init.transactional_id.is_some() {
            response.error_code = ErrorCode::InvalidRequest.code();
            io.respond(id, ResponseKind::InitProducerId(response));
            return;
        }
        // KIP-360: a producer that already has an id may ask for its epoch to be bumped
        // (after a timeout left its sequence numbers in doubt). An exhausted epoch gets
        // a fresh id instead.
        let cluster_of_several = quorum_voters(&self.config).len() > 1;
        if init.producer_id.0 >= 0
            && init.producer_epoch >= 0
            && (cluster_of_several || init.producer_id.0 < self.next_producer_id)
            && init.producer_epoch < i16::MAX - 1
        {
            response.producer_id = init.producer_id;
            response.producer_epoch = init.producer_epoch + 1;
            io.respond(id, ResponseKind::InitProducerId(response));
            return;
        }
        if cluster_of_several {
            match self.local_producer_id(io) {
                Ok(producer_id) => {
                    response.producer_id = ProducerId(producer_id);
                    response.producer_epoch = 0;
                }
                Err(error) => {
                    tracing::warn!("reserving producer ids: {error}");
                    response.error_code = ErrorCode::KafkaStorageError.code();
                }
            }
            io.respond(id, ResponseKind::InitProducerId(response));
            return;
        }
        self.single_broker_producer_id(io, id, response);
    }

    /// A single broker hands out ids from a block reserved in the metadata log; the
    /// answer waits while the next block's reservation becomes durable.
    fn single_broker_producer_id(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        mut response: InitProducerIdResponse,
    ) {
        let producer_id = self.next_producer_id;
        self.next_producer_id += 1;
        response.producer_id = ProducerId(producer_id);
        response.producer_epoch = 0;
        // BUGGIFY: reserve a new block before this one is used up (ids are skipped,
        // which is legal), exercising the durable metadata path of InitProducerId.
        if producer_id < self.cluster.producer_ids_reserved_until
            && !io.buggify("producer-id-new-block")
        {
            io.respond(id, ResponseKind::InitProducerId(response));
            return;
        }
        if let Some((reserving_until, offset)) = self.producer_id_reservation
            && producer_id < reserving_until
        {
            self.metadata_waits.push((
                offset,
                id,
                MetadataWait::Respond(ResponseKind::InitProducerId(response)),
            ));
            return;
        }
        // The block is used up: reserve the next one durably before handing this id out,
        // so no id is ever given twice, even across a crash.
        let next = producer_id + PRODUCER_ID_BLOCK_SIZE;
        match self.append_metadata(io, MetadataRecord::ProducerIds { next }) {
            Ok(offset) => {
                self.producer_id_reservation = Some((next, offset));
                self.metadata_waits.push((
                    offset,
                    id,
                    MetadataWait::Respond(ResponseKind::InitProducerId(response)),
                ));
            }
            Err(error) => {
                tracing::warn!("reserving producer ids: {error}");
                self.next_producer_id -= 1;
                response.producer_id = ProducerId(-1);
                response.producer_epoch = -1;
                response.error_code = error.error_code().code();
                io.respond(id, ResponseKind::InitProducerId(response));
            }
        }
    }
}

/// The data-directory file of a broker in a cluster that records how far its own
/// producer ids are reserved.
pub const LOCAL_PRODUCER_IDS_FILE: &str = "producer-ids";

/// Producer ids in a cluster are `sequence * PRODUCER_ID_STRIDE + node.id`: each broker
/// hands out its own, so InitProducerId needs no trip to the controller. Node ids of
/// a cluster are below the stride (the config refuses larger ones).
pub const PRODUCER_ID_STRIDE: i64 = 1024;

impl Node {
    /// A new producer id of this broker's own (cluster mode). Blocks of sequences are
    /// reserved durably in [`LOCAL_PRODUCER_IDS_FILE`] before use, so no id is given
    /// twice across a crash.
    fn local_producer_id(&mut self, io: &mut impl NodeIo) -> Result<i64, DiskError> {
        if self.local_producer_ids.is_none() {
            let reserved = if io.exists(LOCAL_PRODUCER_IDS_FILE) {
                let bytes = read_whole_file(io, LOCAL_PRODUCER_IDS_FILE)?;
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
            self.local_producer_ids = Some((reserved, reserved));
        }
        let (next, reserved) = self.local_producer_ids.expect("set above");
        let reserved = if next >= reserved {
            let until = next + PRODUCER_ID_BLOCK_SIZE;
            write_file_atomically(
                io,
                "",
                LOCAL_PRODUCER_IDS_FILE,
                encode_producer_id_reservation(until).as_bytes(),
            )?;
            until
        } else {
            reserved
        };
        self.local_producer_ids = Some((next + 1, reserved));
        Ok(next * PRODUCER_ID_STRIDE + i64::from(self.config.node_id))
    }
}

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
