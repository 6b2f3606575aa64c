//! DescribeLogDirs (API 35): the broker's log directory and the size of each of its
//! partitions' logs, what `kafka-log-dirs --describe` prints.
//!
//! An Odradek broker has exactly one data directory (`log.dirs` takes one path), so
//! the answer has one entry, named as the operator configured it. Every replica here
//! is in it: leaders and followers alike, internal topics too, as Kafka lists them.
//! The offset lag is Kafka's: how far the replica's log end is behind the high
//! watermark it knows (0 on a leader; on a follower, what the leader has committed
//! that it does not hold yet). The seam has no way to ask a file system for its free
//! space, so total and usable bytes are -1, Kafka's "unknown".

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::acl::Operation;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;

/// Kafka's "unknown" for a directory's total and usable bytes.
const BYTES_UNKNOWN: i64 = -1;

impl Node {
    pub(crate) fn handle_describe_log_dirs(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DescribeLogDirs(describe) = &request.body else {
            unreachable!("routed by kind")
        };
        if !self.allows_cluster(&request, Operation::Describe) {
            let response = DescribeLogDirsResponse::default()
                .with_error_code(crate::error::ErrorCode::ClusterAuthorizationFailed.code());
            io.respond(id, ResponseKind::DescribeLogDirs(response));
            return;
        }
        let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
        for (key, replica) in &self.partitions {
            if !is_asked(describe, key) {
                continue;
            }
            let size = i64::try_from(replica.log().size_bytes()).unwrap_or(i64::MAX);
            let lag = (replica.high_watermark() - replica.log().log_end_offset()).max(0);
            topics.entry(key.topic.as_str()).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(key.partition)
                    .with_partition_size(size)
                    .with_offset_lag(lag)
                    .with_is_future_key(false),
            );
        }
        let topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partitions(partitions)
            })
            .collect();
        let result = DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_string(self.config.log_dir.clone()))
            .with_topics(topics)
            .with_total_bytes(BYTES_UNKNOWN)
            .with_usable_bytes(BYTES_UNKNOWN);
        let response = DescribeLogDirsResponse::default().with_results(vec![result]);
        io.respond(id, ResponseKind::DescribeLogDirs(response));
    }
}

/// Whether the request asks for `key`: a null topic list asks for every partition;
/// otherwise only those listed (a listed partition this broker has no replica of is
/// left out, as Kafka leaves it out).
fn is_asked(describe: &DescribeLogDirsRequest, key: &TopicPartition) -> bool {
    describe.topics.as_ref().is_none_or(|topics| {
        topics.iter().any(|topic| {
            topic.topic.0.as_str() == key.topic && topic.partitions.contains(&key.partition)
        })
    })
}
