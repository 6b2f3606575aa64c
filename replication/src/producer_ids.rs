//! InitProducerId: producer ids for idempotent producers (KIP-98), never handed out
//! twice, even across a crash. A single broker reserves blocks of ids in the metadata
//! log; a broker of a cluster hands out its own ids from a reservation in its data
//! directory, so the request needs no trip to the controller.

use kafka_protocol::messages::{InitProducerIdResponse, ProducerId, RequestKind, ResponseKind};

use crate::error::ErrorCode;
use crate::metadata::{MetadataRecord, PRODUCER_ID_BLOCK_SIZE};
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo, quorum_voters};
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
        if !self.allows_idempotent_write(&request) {
            response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
            io.respond(id, ResponseKind::InitProducerId(response));
            return;
        }
        // KIP-360: a producer that already has an id may ask for its epoch to be bumped
        // (after a timeout left its sequence numbers in doubt). An exhausted epoch gets
        // a fresh id instead.
        let cluster_of_several = quorum_voters(&self.config).len() > 1;
        if init.producer_id.0 >= 0
            && init.producer_epoch >= 0
            && (cluster_of_several || self.producer_ids.handed_out(init.producer_id.0))
            && init.producer_epoch < i16::MAX - 1
        {
            response.producer_id = init.producer_id;
            response.producer_epoch = init.producer_epoch + 1;
            io.respond(id, ResponseKind::InitProducerId(response));
            return;
        }
        if cluster_of_several {
            match self.producer_ids.next_local(io, self.config.node_id) {
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
        let producer_id = self.producer_ids.take_next();
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
        if let Some(offset) = self.producer_ids.reservation_covering(producer_id) {
            self.metadata_waits.wait(
                offset,
                id,
                MetadataWait::Respond(ResponseKind::InitProducerId(response)),
            );
            return;
        }
        // The block is used up: reserve the next one durably before handing this id out,
        // so no id is ever given twice, even across a crash.
        let next = producer_id + PRODUCER_ID_BLOCK_SIZE;
        match self.append_metadata(io, MetadataRecord::ProducerIds { next }) {
            Ok(offset) => {
                self.producer_ids.reserving(next, offset);
                self.metadata_waits.wait(
                    offset,
                    id,
                    MetadataWait::Respond(ResponseKind::InitProducerId(response)),
                );
            }
            Err(error) => {
                tracing::warn!("reserving producer ids: {error}");
                self.producer_ids.give_back(producer_id);
                response.producer_id = ProducerId(-1);
                response.producer_epoch = -1;
                response.error_code = error.error_code().code();
                io.respond(id, ResponseKind::InitProducerId(response));
            }
        }
    }
}
