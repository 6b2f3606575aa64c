//! Produce: validate, append, replicate, wait for durability, answer.
//!
//! Only the partition's leader accepts writes (others answer NOT_LEADER_OR_FOLLOWER).
//! A partition's records are exactly one batch, and a topic that does not exist is
//! UNKNOWN_TOPIC_OR_PARTITION: as in Kafka, topics are auto-created on Metadata, never
//! on Produce (tests/conformance.rs holds both to Kafka's answers).
//! Every batch is appended to the leader's log at once (page cache), stamped with the
//! leader epoch; a group-commit sync starts if none is in flight, and the partition's
//! Raft member sends the batches to the followers. With `acks=all` the answer waits
//! until the high watermark passes the batches: a quorum of replicas holds them
//! durably. With `acks=1` it waits for the leader's own fsync only (Kafka's acks=1
//! waits for less: the leader's page cache). On a single replica the two promise the
//! same thing. With `acks=0` nothing is answered, as Kafka specifies.
//!
//! `min.insync.replicas` applies to `acks=all`: when fewer replicas are in sync (the
//! leader's view, with Kafka's `replica.lag.time.max.ms` rule), the write is refused
//! with NOT_ENOUGH_REPLICAS before anything is appended.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ProduceRequest, ProduceResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::{BatchHeader, stamp_log_append_time};
use odradek_log::partition::AppendOutcome;

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::group::OFFSETS_TOPIC_NAME;
use crate::node::{Node, NodeIo};
use crate::replica::Replica;
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;
use crate::waiting::{PendingProduce, ProduceWait};

/// Outcome of appending one partition's records.
struct PartitionAppend {
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    /// Offset after the last batch, and the epoch it was appended in, if the answer
    /// must wait.
    durable_needed: Option<(i64, i32)>,
    /// The time the broker stamped the batch with (`LogAppendTime` topics), else -1.
    log_append_time_ms: i64,
}

impl PartitionAppend {
    fn failed(error: ErrorCode, message: impl Into<Option<String>>) -> PartitionAppend {
        PartitionAppend {
            error,
            message: message.into(),
            base_offset: -1,
            durable_needed: None,
            log_append_time_ms: -1,
        }
    }
}

/// The leader's append of a partition's one batch in `leader_epoch`, stamped with
/// `now_ms` first if the topic keeps the broker's time (`log_append_time`).
fn append_batch(
    io: &mut impl NodeIo,
    partition: &mut Replica,
    key: &TopicPartition,
    records: Option<&[u8]>,
    leader_epoch: i32,
    now_ms: i64,
    log_append_time: bool,
) -> PartitionAppend {
    let (batch, header) = match the_one_batch(records) {
        Ok(batch) => batch,
        Err(refused) => return refused,
    };
    // BUGGIFY: roll the active segment early, as a full segment would, so that
    // sealing, multi-segment reads and recovery across segments get exercised.
    if io.buggify("produce-early-roll")
        && let Err(error) = partition.log_mut().roll_now(io)
    {
        tracing::warn!("early roll of {key:?}: {error}");
    }
    if header.is_transactional() || header.is_control() {
        return PartitionAppend::failed(
            ErrorCode::InvalidRecord,
            "transactional batches are not supported yet".to_string(),
        );
    }
    let mut batch = batch.to_vec();
    if log_append_time && let Err(error) = stamp_log_append_time(&mut batch, now_ms) {
        return PartitionAppend::failed(ErrorCode::CorruptMessage, error.to_string());
    }
    // A duplicate is answered with the offsets and the time it had (idempotence).
    let (base_offset, last_offset, appended_ms) =
        match partition.append_as_leader(io, &mut batch, leader_epoch, now_ms) {
            Ok(AppendOutcome::Appended {
                base_offset,
                last_offset,
                ..
            }) => (base_offset, last_offset, now_ms),
            Ok(AppendOutcome::Duplicate {
                base_offset,
                last_offset,
                max_timestamp,
            }) => (base_offset, last_offset, max_timestamp),
            Err(error) => {
                return PartitionAppend::failed(ErrorCode::from(&error), error.to_string());
            }
        };
    PartitionAppend {
        error: ErrorCode::None,
        message: None,
        base_offset,
        durable_needed: Some((last_offset + 1, leader_epoch)),
        log_append_time_ms: if log_append_time { appended_ms } else { -1 },
    }
}

/// `acks=all` needs `min_insync` replicas in sync: Kafka refuses the write with
/// NOT_ENOUGH_REPLICAS when fewer are.
fn check_in_sync(
    io: &mut impl NodeIo,
    partition: &mut Replica,
    lag_ticks: u64,
    min_insync: i32,
) -> Result<(), PartitionAppend> {
    let in_sync = partition.in_sync_replicas(io, lag_ticks).len();
    if i64::try_from(in_sync).unwrap_or(i64::MAX) >= i64::from(min_insync) {
        return Ok(());
    }
    Err(PartitionAppend::failed(
        ErrorCode::NotEnoughReplicas,
        format!("min.insync.replicas is {min_insync} but only {in_sync} replicas are in sync"),
    ))
}

/// The one record batch of a partition's records, with its header. Kafka's
/// rule since record batches (v2): one batch per partition.
fn the_one_batch(records: Option<&[u8]>) -> Result<(&[u8], BatchHeader), PartitionAppend> {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err(PartitionAppend::failed(
            ErrorCode::CorruptMessage,
            "no records".to_string(),
        ));
    };
    match split_batches(records).as_deref() {
        Ok([(start, end, header)]) => Ok((&records[*start..*end], *header)),
        Ok(batches) => Err(PartitionAppend::failed(
            ErrorCode::InvalidRecord,
            format!(
                "a produce request carries one record batch per partition, not {}",
                batches.len()
            ),
        )),
        Err(message) => Err(PartitionAppend::failed(
            ErrorCode::CorruptMessage,
            message.clone(),
        )),
    }
}

/// Why a whole produce is refused before any partition is looked at, if it is: acks
/// other than -1, 0 or 1, or a transactional producer.
fn refusal_of_whole_request(produce: &ProduceRequest) -> Option<(ErrorCode, String)> {
    let acks = produce.acks;
    if !matches!(acks, -1..=1) {
        Some((
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1, 0 or 1, not {acks}"),
        ))
    } else if produce.transactional_id.is_some() {
        Some((
            ErrorCode::InvalidRequest,
            "transactions are not supported yet".to_string(),
        ))
    } else {
        None
    }
}

impl Node {
    pub(crate) fn handle_produce(&mut self, io: &mut impl NodeIo, id: RequestId, request: Request) {
        let RequestKind::Produce(produce) = &request.body else {
            unreachable!("routed by kind")
        };
        let acks = produce.acks;
        let refuse_all = refusal_of_whole_request(produce);
        let now_ms = io.wall_clock_ms();
        let mut response = ProduceResponse::default();
        let mut waits = Vec::new();
        let mut touched = Vec::new();
        for (topic_index, topic) in produce.topic_data.iter().enumerate() {
            let name = self.resolve_topic_name(&topic.name, topic.topic_id);
            let authorized = self.allows_topic(&request, Operation::Write, &name);
            let mut topic_response = TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id);
            for (partition_index, data) in topic.partition_data.iter().enumerate() {
                let key = TopicPartition::new(name.clone(), data.index);
                let outcome = match &refuse_all {
                    Some((code, message)) => PartitionAppend::failed(*code, message.clone()),
                    None if !authorized => {
                        PartitionAppend::failed(ErrorCode::TopicAuthorizationFailed, None)
                    }
                    None => self.append_partition(io, &key, data.records.as_deref(), acks, now_ms),
                };
                if let Some((end_offset, leader_epoch)) = outcome.durable_needed {
                    touched.push(key.clone());
                    waits.push(ProduceWait {
                        topic_index,
                        partition_index,
                        key: key.clone(),
                        end_offset,
                        leader_epoch,
                        committed: acks == -1,
                    });
                }
                let answer = self.partition_produce_response(&key, data.index, outcome);
                topic_response.partition_responses.push(answer);
            }
            response.responses.push(topic_response);
        }
        touched.dedup();
        for key in &touched {
            self.replicate_partition(io, key);
            self.start_partition_sync(io, key);
        }
        if acks == 0 {
            return;
        }
        self.answer_or_wait(io, id, PendingProduce { response, waits });
    }

    /// One partition's answer; Kafka answers a log start offset of -1 beside an error.
    fn partition_produce_response(
        &self,
        key: &TopicPartition,
        index: i32,
        outcome: PartitionAppend,
    ) -> PartitionProduceResponse {
        let log_start_offset = match self.partitions.get(key) {
            Some(partition) if outcome.error == ErrorCode::None => partition.log_start_offset(),
            _ => -1,
        };
        PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(outcome.error.code())
            .with_base_offset(outcome.base_offset)
            .with_log_append_time_ms(outcome.log_append_time_ms)
            .with_log_start_offset(log_start_offset)
            .with_error_message(outcome.message.map(StrBytes::from_string))
    }

    /// Answers a produce at once if nothing it appended needs waiting for; else keeps
    /// it until its batches are durable (or answers it with timeouts if too many wait).
    fn answer_or_wait(&mut self, io: &mut impl NodeIo, id: RequestId, mut pending: PendingProduce) {
        self.settle_produce(&mut pending);
        if pending.waits.is_empty() {
            io.respond(id, ResponseKind::Produce(pending.response));
        } else if self.pending_produces.is_full() {
            for wait in pending.waits.drain(..) {
                let partition = &mut pending.response.responses[wait.topic_index]
                    .partition_responses[wait.partition_index];
                partition.error_code = ErrorCode::RequestTimedOut.code();
            }
            io.respond(id, ResponseKind::Produce(pending.response));
        } else {
            self.pending_produces.wait(id, pending);
        }
    }

    /// Appends the one batch of one partition.
    fn append_partition(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
        records: Option<&[u8]>,
        acks: i16,
        now_ms: i64,
    ) -> PartitionAppend {
        let min_insync = self.min_insync_replicas(&key.topic);
        let lag_ticks = self.replica_lag_ticks();
        if key.topic == OFFSETS_TOPIC_NAME {
            // Kafka's rule: only the coordinator writes to an internal topic.
            return PartitionAppend::failed(
                ErrorCode::InvalidTopicException,
                format!("cannot append to internal topic {OFFSETS_TOPIC_NAME}"),
            );
        }
        let missing = self.missing_partition_error(key);
        let Some(partition) = self.partitions.get_mut(key) else {
            return PartitionAppend::failed(missing, None);
        };
        if let Some(error) = partition.log().failure() {
            return PartitionAppend::failed(ErrorCode::KafkaStorageError, error.to_string());
        }
        let Ok(leader_epoch) = partition.raft().check_leader() else {
            return PartitionAppend::failed(ErrorCode::NotLeaderOrFollower, None);
        };
        if acks == -1
            && let Err(refused) = check_in_sync(io, partition, lag_ticks, min_insync)
        {
            return refused;
        }
        // The topic's, or the broker's default (`log.message.timestamp.type`).
        let log_append_time = partition.log().config().log_append_time;
        append_batch(
            io,
            partition,
            key,
            records,
            leader_epoch,
            now_ms,
            log_append_time,
        )
    }

    /// Drops from `pending.waits` every wait that is satisfied (the high watermark, or
    /// for `acks=1` the durable offset, passed it) or can never be (partition gone or
    /// failed, leadership lost), filling in errors.
    pub(crate) fn settle_produce(&self, pending: &mut PendingProduce) {
        let response = &mut pending.response;
        pending.waits.retain(|wait| {
            let partition_response =
                &mut response.responses[wait.topic_index].partition_responses[wait.partition_index];
            let mut fail = |error: ErrorCode| {
                partition_response.error_code = error.code();
                partition_response.base_offset = -1;
                false
            };
            match self.partitions.get(&wait.key) {
                // Reopened after damage (decision 0010): as for a lost leadership.
                None if self.cluster.topics.contains_key(&wait.key.topic) => {
                    fail(ErrorCode::NotLeaderOrFollower)
                }
                None => fail(ErrorCode::UnknownTopicOrPartition),
                Some(partition) if partition.log().failure().is_some() => {
                    fail(ErrorCode::KafkaStorageError)
                }
                Some(partition) if partition.raft().check_leader() != Ok(wait.leader_epoch) => {
                    fail(ErrorCode::NotLeaderOrFollower)
                }
                Some(partition) if wait.committed => partition.high_watermark() < wait.end_offset,
                Some(partition) => partition.log().durable_offset() < wait.end_offset,
            }
        });
    }

    /// Answers every waiting produce that `key`'s progress (or failure) settled.
    pub(crate) fn resolve_produces(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        for (id, mut pending) in self.pending_produces.take_waiting_on(key) {
            self.settle_produce(&mut pending);
            if pending.waits.is_empty() {
                io.respond(id, ResponseKind::Produce(pending.response));
            } else {
                self.pending_produces.wait(id, pending);
            }
        }
    }

    /// Kafka's `replica.lag.time.max.ms` (30 s) in Raft ticks: a follower that has not
    /// caught up to the leader's end within it drops out of the in-sync replicas.
    pub(crate) fn replica_lag_ticks(&self) -> u64 {
        (30_000 / self.config.raft_tick_ms.max(1)).max(1) as u64
    }

    /// The topic's `min.insync.replicas`, or the broker default.
    pub(crate) fn min_insync_replicas(&self, topic: &str) -> i32 {
        self.cluster
            .topics
            .get(topic)
            .and_then(|t| t.config.get("min.insync.replicas"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                self.cluster
                    .dynamic
                    .min_insync_replicas(self.config.min_insync_replicas, self.config.node_id)
            })
    }

    /// A topic's name from a request that names it or, in newer versions, gives its id.
    pub(crate) fn resolve_topic_name(&self, name: &TopicName, topic_id: uuid::Uuid) -> String {
        if !name.0.is_empty() || topic_id.is_nil() {
            return name.0.as_str().to_string();
        }
        let (high, low) = topic_id.as_u64_pair();
        self.cluster
            .topics
            .values()
            .find(|t| t.id.high == high && t.id.low == low)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    }
}

/// Splits a partition's `records` into whole batches: (start, end, header).
fn split_batches(records: &[u8]) -> Result<Vec<(usize, usize, BatchHeader)>, String> {
    let mut batches = Vec::new();
    let mut start = 0usize;
    while start < records.len() {
        let header = BatchHeader::parse(&records[start..]).map_err(|e| e.to_string())?;
        let size =
            usize::try_from(header.size_bytes()).map_err(|_| "batch too large".to_string())?;
        let end = start
            .checked_add(size)
            .filter(|end| *end <= records.len())
            .ok_or_else(|| {
                format!(
                    "batch at byte {start} claims {size} bytes but only {} remain",
                    records.len() - start
                )
            })?;
        batches.push((start, end, header));
        start = end;
    }
    Ok(batches)
}
