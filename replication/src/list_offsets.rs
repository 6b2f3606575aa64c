//! ListOffsets: where a partition starts, ends, or reaches a timestamp.
//!
//! Special timestamps, as Kafka defines them: -2 earliest (the log start offset),
//! -1 latest (the high watermark: what a consumer can read), -3 the offset of the
//! record with the largest timestamp (KIP-734), -4 earliest local (same as -2 here:
//! there is no tiered storage). Any other value finds the first record created at or
//! after it (KIP-79), or -1 if there is none. Leader-change control records are never
//! an answer: they are not records a consumer reads.

use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsResponse, RequestKind, ResponseKind};

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::node::{Node, NodeIo};
use crate::replica::Replica;
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;

const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// The first ListOffsets version whose response carries `leader_epoch`.
const LEADER_EPOCH_VERSION_MIN: i16 = 4;

impl Node {
    pub(crate) fn handle_list_offsets(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::ListOffsets(list) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = ListOffsetsResponse::default();
        for topic in &list.topics {
            let name = topic.name.0.as_str();
            let authorized = self.allows_topic(&request, Operation::Describe, name);
            let mut topic_response =
                ListOffsetsTopicResponse::default().with_name(topic.name.clone());
            for wanted in &topic.partitions {
                let key = TopicPartition::new(topic.name.0.as_str(), wanted.partition_index);
                let answer =
                    self.partition_offset(io, request.api_version, &key, wanted, authorized);
                topic_response.partitions.push(answer);
            }
            response.topics.push(topic_response);
        }
        io.respond(id, ResponseKind::ListOffsets(response));
    }

    /// One partition's answer (TOPIC_AUTHORIZATION_FAILED unless `authorized`).
    fn partition_offset(
        &mut self,
        io: &mut impl NodeIo,
        api_version: i16,
        key: &TopicPartition,
        wanted: &ListOffsetsPartition,
        authorized: bool,
    ) -> ListOffsetsPartitionResponse {
        let mut answer = ListOffsetsPartitionResponse::default()
            .with_partition_index(wanted.partition_index)
            .with_timestamp(-1)
            .with_offset(-1)
            .with_leader_epoch(-1);
        let missing = self.missing_partition_error(key);
        let error = match self.partitions.get_mut(key) {
            _ if !authorized => ErrorCode::TopicAuthorizationFailed,
            None => missing,
            Some(partition)
                if let Err(code) = partition
                    .check_reading(wanted.current_leader_epoch, ErrorCode::OffsetNotAvailable) =>
            {
                code
            }
            Some(partition) => {
                // leader_epoch exists from v4 on; an older response must keep
                // the default -1, or it cannot be encoded (aiokafka asks v3).
                if api_version >= LEADER_EPOCH_VERSION_MIN {
                    answer.leader_epoch = partition.leader_epoch();
                }
                match wanted.timestamp {
                    EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                        answer.offset = partition.log_start_offset();
                        ErrorCode::None
                    }
                    LATEST_TIMESTAMP => {
                        answer.offset = partition.high_watermark();
                        ErrorCode::None
                    }
                    // The first record with the newest timestamp (KIP-734).
                    MAX_TIMESTAMP => {
                        let newest = partition
                            .log()
                            .max_timestamp()
                            .map_or(i64::MAX, |(ts, _)| ts);
                        find_by_time(io, partition, newest, &mut answer)
                    }
                    timestamp if timestamp >= 0 => {
                        find_by_time(io, partition, timestamp, &mut answer)
                    }
                    _ => ErrorCode::InvalidRequest,
                }
            }
        };
        answer.error_code = error.code();
        answer
    }
}

/// Sets `answer` to the first record below the high watermark created at or after
/// `timestamp`, with the leader epoch it was written in (all left at -1 if there is
/// none, as Kafka answers); the error code of the lookup.
fn find_by_time(
    io: &mut impl NodeIo,
    partition: &mut Replica,
    timestamp: i64,
    answer: &mut ListOffsetsPartitionResponse,
) -> ErrorCode {
    let high_watermark = partition.high_watermark();
    match partition
        .log_mut()
        .offset_for_timestamp(io, timestamp, high_watermark)
    {
        Ok(Some((offset, found))) => {
            answer.offset = offset;
            answer.timestamp = found;
            // Still -1 only where the version has no leader_epoch field.
            if answer.leader_epoch != -1 {
                answer.leader_epoch = partition.epoch_at(offset).unwrap_or(-1);
            }
            ErrorCode::None
        }
        Ok(None) => {
            answer.leader_epoch = -1;
            ErrorCode::None
        }
        Err(error) => ErrorCode::from(&error),
    }
}
