//! DescribeCluster (API 60, KIP-700): the cluster id, the controller and the brokers,
//! what the Java Admin client's `describeCluster` and the tools built on it ask.
//!
//! Every broker of an Odradek cluster is also a voter of the metadata quorum, so the
//! controller named is the quorum's leader (-1 while an election runs: the client asks
//! again), and the brokers are this one and every peer that said where clients reach
//! it, as in a Metadata answer. Racks are not configurable, so every rack is null.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};

/// Kafka's `cluster_authorized_operations` when the client did not ask for them.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// The endpoint type a client asks for when it wants brokers (KIP-919).
const ENDPOINT_TYPE_BROKERS: i8 = 1;
/// Kafka's `UNSUPPORTED_ENDPOINT_TYPE`: a broker answers only for brokers; asking it
/// for controllers is refused (they are asked directly).
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
/// With no authorizer, Kafka allows every operation its ACLs define for the cluster
/// resource: CREATE (5), ALTER (7), DESCRIBE (8), CLUSTER_ACTION (9),
/// DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11), IDEMPOTENT_WRITE (12), one bit each.
const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

impl Node {
    pub(crate) fn handle_describe_cluster(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DescribeCluster(describe) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = DescribeClusterResponse::default()
            .with_endpoint_type(describe.endpoint_type)
            .with_cluster_authorized_operations(
                if describe.include_cluster_authorized_operations {
                    CLUSTER_OPERATIONS_ALL
                } else {
                    AUTHORIZED_OPERATIONS_OMITTED
                },
            );
        if !self.allows_cluster(&request, Operation::Describe) {
            response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
            io.respond(id, ResponseKind::DescribeCluster(response));
            return;
        }
        // v0 has no endpoint type field and always means brokers.
        if request.api_version >= 1 && describe.endpoint_type != ENDPOINT_TYPE_BROKERS {
            response.error_code = UNSUPPORTED_ENDPOINT_TYPE;
            response.error_message = Some(StrBytes::from_static_str(
                "a broker describes brokers only (endpoint type 1)",
            ));
            io.respond(id, ResponseKind::DescribeCluster(response));
            return;
        }
        response.error_code = ErrorCode::None.code();
        response.cluster_id =
            StrBytes::from_string(self.cluster.cluster_id.clone().unwrap_or_default());
        response.controller_id = BrokerId(
            self.metadata
                .raft()
                .leader_id()
                .map_or(-1, crate::peer::broker_id),
        );
        response.brokers = self
            .client_endpoints(&request.listener)
            .into_iter()
            .map(|(broker, host, port)| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(broker))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
                    .with_rack(None)
            })
            .collect();
        io.respond(id, ResponseKind::DescribeCluster(response));
    }
}
