//! Fetch: read committed batches, or park until there are enough of them.
//!
//! A fetch reads every partition it names up to that partition's high watermark (never
//! above: what is above may still be lost). If it gathered at least `min_bytes`, or an
//! error must be reported, it is answered at once; otherwise it is parked until a high
//! watermark it cares about moves or `max_wait_ms` passes on the node's clock, and then
//! read again. Odradek has no transactions yet, so the last stable offset is the high
//! watermark and `read_committed` sees what `read_uncommitted` sees.
//!
//! Fetch sessions (KIP-227) are not created: every answer carries session id 0, which
//! tells clients to keep sending full fetches.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchResponse, RequestKind, ResponseKind};
use odradek_log::io::Duration;
use odradek_log::partition::ReadError;

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::io_waits::TimerPurpose;
use crate::node::{Node, NodeIo};
use crate::replica::Replica;
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;
use crate::waiting::PendingFetch;

/// Isolation level `READ_COMMITTED` in a Fetch or ListOffsets request.
const READ_COMMITTED: i8 = 1;

/// What one pass over a fetch's partitions produced.
/// What a fetch may still read: the response's byte limit left, and what it read.
struct FetchBudget {
    remaining: usize,
    total: usize,
}

/// Reads `wanted` from `partition` into `data` if this replica may serve it, within
/// `budget`; the partition's error code.
fn read_partition(
    io: &mut impl NodeIo,
    partition: &mut Replica,
    key: &TopicPartition,
    wanted: &FetchPartition,
    budget: &mut FetchBudget,
    data: &mut PartitionData,
) -> ErrorCode {
    // Every client refreshes its metadata and retries.
    let not_ready = ErrorCode::NotLeaderOrFollower;
    if let Err(code) = partition.check_reading(wanted.current_leader_epoch, not_ready) {
        return code;
    }
    let high_watermark = partition.high_watermark();
    data.high_watermark = high_watermark;
    data.last_stable_offset = high_watermark;
    data.log_start_offset = partition.log_start_offset();
    if wanted.fetch_offset < data.log_start_offset {
        // Below where DeleteRecords moved the start: the log may still hold it.
        return ErrorCode::OffsetOutOfRange;
    }
    let partition_max = wanted.partition_max_bytes.max(0) as usize;
    let limit_bytes = partition_max.min(budget.remaining);
    // KIP-74: the first partition with data may exceed the limits by one batch so that
    // a consumer never gets stuck behind a big batch.
    let first_with_data = budget.total == 0;
    if limit_bytes == 0 && !first_with_data {
        return ErrorCode::None;
    }
    let mut limit = u32::try_from(limit_bytes.max(1)).unwrap_or(u32::MAX);
    // BUGGIFY: the smallest legal read (one batch, KIP-74), so consumers exercise
    // continuation across many fetches.
    if io.buggify("fetch-short-read") {
        limit = 1;
    }
    #[cfg(feature = "mutants")]
    let read_up_to = if partition.log().config().mutants.serve_above_high_watermark {
        partition.log().log_end_offset()
    } else {
        high_watermark
    };
    #[cfg(not(feature = "mutants"))]
    let read_up_to = high_watermark;
    match partition
        .log_mut()
        .read(io, wanted.fetch_offset, read_up_to, limit)
    {
        Ok(read) if read.bytes.len() <= limit_bytes || first_with_data => {
            budget.total += read.bytes.len();
            budget.remaining = budget.remaining.saturating_sub(read.bytes.len());
            data.records = Some(Bytes::from(read.bytes));
            ErrorCode::None
        }
        Ok(_) => ErrorCode::None, // over budget: this partition waits for the next fetch
        Err(error) => {
            if let ReadError::Corrupt { offset, .. } = error {
                // Damaged on disk: the next drive repairs it.
                partition.note_damage(offset);
            }
            if !matches!(error, ReadError::OffsetOutOfRange { .. }) {
                tracing::warn!("fetch {key:?} at {}: {error:?}", wanted.fetch_offset);
            }
            ErrorCode::from(&error)
        }
    }
}

struct FetchRead {
    response: FetchResponse,
    bytes: usize,
    /// A partition reported an error: Kafka answers such a fetch at once.
    has_error: bool,
    partitions: Vec<TopicPartition>,
}

impl Node {
    pub(crate) fn handle_fetch(&mut self, io: &mut impl NodeIo, id: RequestId, request: Request) {
        let RequestKind::Fetch(fetch) = &request.body else {
            unreachable!("routed by kind")
        };
        if request.api_version >= 7 && fetch.session_id != 0 {
            let response = FetchResponse::default()
                .with_error_code(ErrorCode::FetchSessionIdNotFound.code())
                .with_session_id(0);
            io.respond(id, ResponseKind::Fetch(response));
            return;
        }
        let read = self.read_fetch(io, &request);
        let satisfied = read.bytes >= fetch.min_bytes.max(0) as usize;
        if satisfied || read.has_error || fetch.max_wait_ms <= 0 || self.parked_fetches.is_full() {
            io.respond(id, ResponseKind::Fetch(read.response));
            return;
        }
        let deadline = io.now() + Duration::from_millis(fetch.max_wait_ms as u64);
        self.set_timer(io, deadline, TimerPurpose::FetchDeadline(id));
        self.parked_fetches.wait(
            id,
            PendingFetch {
                request,
                deadline,
                partitions: read.partitions,
            },
        );
    }

    /// A high watermark moved (or a partition failed or vanished): re-read the fetches
    /// parked on `key` and answer those that are now satisfied.
    pub(crate) fn wake_fetches(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        for (id, parked) in self.parked_fetches.take_waiting_on(key) {
            let RequestKind::Fetch(fetch) = &parked.request.body else {
                unreachable!("only fetches are parked")
            };
            let read = self.read_fetch(io, &parked.request);
            if read.bytes >= fetch.min_bytes.max(1) as usize
                || read.has_error
                || io.now() >= parked.deadline
            {
                io.respond(id, ResponseKind::Fetch(read.response));
            } else {
                self.parked_fetches.wait(id, parked);
            }
        }
    }

    /// A parked fetch's `max_wait_ms` passed: answer with whatever is there.
    pub(crate) fn fetch_deadline(&mut self, io: &mut impl NodeIo, id: RequestId) {
        let Some(parked) = self.parked_fetches.take(id) else {
            return; // answered earlier
        };
        let read = self.read_fetch(io, &parked.request);
        io.respond(id, ResponseKind::Fetch(read.response));
    }

    /// Reads every partition a fetch asks for, within its byte limits; a topic the
    /// principal may not READ is answered TOPIC_AUTHORIZATION_FAILED.
    fn read_fetch(&mut self, io: &mut impl NodeIo, request: &Request) -> FetchRead {
        let RequestKind::Fetch(fetch) = &request.body else {
            unreachable!("only fetches are read")
        };
        let response_max_bytes = if fetch.max_bytes <= 0 {
            i32::MAX
        } else {
            fetch.max_bytes
        } as usize;
        let mut budget = FetchBudget {
            remaining: response_max_bytes,
            total: 0,
        };
        let mut has_error = false;
        let mut partitions = Vec::new();
        let mut response = FetchResponse::default().with_session_id(0);
        for topic in &fetch.topics {
            let name = self.resolve_topic_name(&topic.topic, topic.topic_id);
            // An unknown topic id (no name) is answered UNKNOWN_TOPIC_ID, as in Kafka.
            let authorized = name.is_empty() || self.allows_topic(request, Operation::Read, &name);
            let mut topic_response = FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id);
            for wanted in &topic.partitions {
                let key = TopicPartition::new(name.clone(), wanted.partition);
                let data = if authorized {
                    self.fetch_partition(io, &key, wanted, fetch.isolation_level, &mut budget)
                } else {
                    refused_partition(wanted.partition, ErrorCode::TopicAuthorizationFailed)
                };
                has_error |= data.error_code != ErrorCode::None.code();
                topic_response.partitions.push(data);
                partitions.push(key);
            }
            response.responses.push(topic_response);
        }
        FetchRead {
            response,
            bytes: budget.total,
            has_error,
            partitions,
        }
    }

    /// One partition's part of a fetch answer (`key`'s name is empty for an unknown
    /// topic id).
    fn fetch_partition(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
        wanted: &FetchPartition,
        isolation_level: i8,
        budget: &mut FetchBudget,
    ) -> PartitionData {
        let mut data = refused_partition(wanted.partition, ErrorCode::None);
        let missing = self.missing_partition_error(key);
        let hosted = self.partitions.contains_key(key);
        let error = match self.partitions.get_mut(key) {
            None if key.topic.is_empty() => ErrorCode::UnknownTopicId,
            None => missing,
            Some(partition) => read_partition(io, partition, key, wanted, budget, &mut data),
        };
        // Kafka's answer: a partition it read names no aborted transactions with null
        // under read_uncommitted, an empty list under read_committed; one it does not
        // host, an empty list.
        if hosted && isolation_level != READ_COMMITTED {
            data.aborted_transactions = None;
        }
        if error != ErrorCode::None {
            // Kafka answers -1 for all three beside an error.
            data.high_watermark = -1;
            data.last_stable_offset = -1;
            data.log_start_offset = -1;
        }
        data.error_code = error.code();
        data
    }
}

/// A partition's part of a fetch answer with nothing read: -1 offsets, no records.
fn refused_partition(partition: i32, error: ErrorCode) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica((-1).into())
        .with_records(Some(Bytes::new()))
        .with_aborted_transactions(Some(Vec::new()))
}
