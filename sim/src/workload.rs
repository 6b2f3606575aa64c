//! Workloads: client processes as small state machines that speak the same Kafka
//! request structs the wire front end hands to the node, and record every operation
//! in a [`History`].
//!
//! ```text
//!  Admin ──CreateTopics──► (topics ready) ─┐
//!  Producer ──InitProducerId──► Produce(batch, seq) ──► ok / retry SAME batch / give up
//!  Consumer ──Fetch(offset) / ListOffsets──► Poll ops
//!  FinalReader (after faults heal and every client finished) ──► read every partition
//!                                              from offset 0 up to its high watermark
//! ```
//!
//! Kafka client behaviour the producers follow: an idempotent producer gets an id
//! (InitProducerId), numbers its batches, keeps one batch in flight per partition
//! (`max.in.flight` = 1 per partition here), retries the *same* bytes on a timeout or a
//! retriable error until `delivery.timeout.ms`, and after giving up bumps its epoch
//! (KIP-360) before writing again, because its sequence numbers are in doubt. Every
//! record is one logical `Send` operation with a workload-unique `u64` value; a batch's
//! records are invoked and completed together, each on its own process lane, so that
//! each process has at most one operation in flight (what the checkers assume).
//!
//! Outcomes: a response without error is `Ok`; a refusal that no earlier attempt could
//! have been mistaken for is `Fail`; anything after a timeout, a lost connection, a
//! `KAFKA_STORAGE_ERROR` (the append may have reached the disk before the sync failed)
//! or a `NOT_LEADER_OR_FOLLOWER` (a leader that lost its epoch while the batch waited
//! for the quorum: the next leader may keep it or cut it) is `Indefinite`.
//!
//! In a cluster (`--nodes 3`) the clients share what a Kafka client keeps in its
//! metadata cache ([`Routing`]): the leader of each partition and the controller.
//! A [`MetadataClient`] refreshes it with Metadata requests to any broker, every second
//! and whenever a client asks (after NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
//! NOT_CONTROLLER, UNKNOWN_TOPIC_OR_PARTITION or a timeout). Producers and consumers
//! send to the leader they know (any broker if none); topics are created at the
//! controller with replication factor `min(3, nodes)`. With one node every request goes
//! to node 0 and none of this draws or sends anything.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, FetchRequest, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, ProducerId, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::build_batch;
use odradek_model::groups::GroupHistory;
use odradek_model::history::{Call, History, Outcome, PartitionKey, ProcessId, Reply};
use odradek_replication::Request;

use crate::clock::WALL_CLOCK_ORIGIN_MS;
use crate::compaction_check::KeyedHistory;
use crate::config_check::ConfigHistory;
use crate::records::{decode_batches, encode_value};
use crate::rng::SimRng;

/// A millisecond in simulated nanoseconds.
pub(crate) const MS: u64 = 1_000_000;

/// API versions the workload speaks (each implemented by the node).
pub const PRODUCE_VERSION: i16 = 8;
/// Fetch by topic name (v13 moved to topic ids).
pub const FETCH_VERSION: i16 = 11;
/// ListOffsets with leader epochs.
pub const LIST_OFFSETS_VERSION: i16 = 5;
/// CreateTopics.
pub const CREATE_TOPICS_VERSION: i16 = 5;
/// InitProducerId with producer id and epoch (KIP-360 bumps).
pub const INIT_PRODUCER_ID_VERSION: i16 = 3;
/// Metadata with leader epochs.
pub const METADATA_VERSION: i16 = 9;

/// Kafka error codes the clients tell apart.
pub(crate) mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const INVALID_CONFIG: i16 = 40;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const INVALID_REQUEST: i16 = 42;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
}

/// The workload of one seed.
#[derive(Clone, Debug)]
pub struct WorkloadPlan {
    /// Topics and their partition counts.
    pub topics: Vec<(String, i32)>,
    /// Producers writing with `acks=all`.
    pub producers: u32,
    /// Whether those producers are idempotent.
    pub idempotent: bool,
    /// An extra producer that writes with `acks=0` (never answered).
    pub acks_zero_producer: bool,
    /// Consumers polling every partition.
    pub consumers: u32,
    /// Records per batch, at most.
    pub records_per_batch_max: u32,
    /// Bytes of a record value, at most (values are padded so batches span sectors).
    pub value_bytes_max: u32,
    /// Pause between two batches of a producer lane.
    pub think_min_ns: u64,
    /// Longest pause between two batches.
    pub think_max_ns: u64,
    /// A request not answered within this is given up (`request.timeout.ms`).
    pub request_timeout_ns: u64,
    /// A batch not acknowledged within this is given up (`delivery.timeout.ms`).
    pub delivery_timeout_ns: u64,
    /// Fetch `max_wait_ms`.
    pub fetch_max_wait_ms: i32,
    /// Chance a consumer poll is replaced by a seek to a listed offset.
    pub seek_ppm: u64,
}

impl WorkloadPlan {
    /// One line about the workload, for the run's report.
    pub fn summary(&self) -> String {
        format!(
            "topics {:?}, {} producers ({}{}), {} consumers, batches of <= {} records of <= {} bytes",
            self.topics,
            self.producers,
            if self.idempotent {
                "idempotent"
            } else {
                "plain"
            },
            if self.acks_zero_producer {
                " + one acks=0"
            } else {
                ""
            },
            self.consumers,
            self.records_per_batch_max,
            self.value_bytes_max
        )
    }

    /// Draws a busy workload.
    pub fn draw(rng: &mut SimRng, idempotent: bool) -> WorkloadPlan {
        let topic_count = rng.range(1, 3);
        let topics = (0..topic_count)
            .map(|t| (format!("sim-{t}"), rng.range(1, 5) as i32))
            .collect();
        let think_min_ns = rng.pick(&[5, 10, 20]) * MS;
        WorkloadPlan {
            topics,
            producers: rng.range(1, 4) as u32,
            idempotent,
            acks_zero_producer: rng.below(4) == 0,
            consumers: rng.range(1, 3) as u32,
            records_per_batch_max: rng.pick(&[1, 4, 8]),
            value_bytes_max: rng.pick(&[8, 200, 1500]),
            think_min_ns,
            think_max_ns: think_min_ns * rng.pick(&[3, 10]),
            request_timeout_ns: rng.pick(&[500, 2_000, 5_000]) * MS,
            delivery_timeout_ns: rng.pick(&[10_000, 30_000]) * MS,
            fetch_max_wait_ms: rng.pick(&[10, 100, 500]),
            seek_ppm: rng.pick(&[0, 10_000, 50_000]),
        }
    }

    /// Every partition of every topic.
    pub fn partitions(&self) -> Vec<PartitionKey> {
        self.topics
            .iter()
            .flat_map(|(topic, count)| {
                (0..*count).map(move |partition| PartitionKey {
                    topic: topic.clone(),
                    partition,
                })
            })
            .collect()
    }
}

/// Where the run is. The numbers are what the trace hashes when the run moves to a
/// phase (`TraceKind::Phase`), and the order is the phases' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Faults on; clients write and read freely.
    Safety = 0,
    /// Faults healed; clients finish what is in flight and each producer lane gets one
    /// new batch acknowledged.
    Liveness = 1,
    /// Every client finished; the final reader reads every partition completely.
    FinalRead = 2,
    /// The final reads are complete.
    Done = 3,
}

/// Client statistics (names as printed).
pub type ClientStats = BTreeMap<&'static str, u64>;

/// State every client shares.
#[derive(Debug)]
pub struct Shared {
    /// Topics and partition counts.
    pub topics: Vec<(String, i32)>,
    /// The admin created every topic.
    pub topics_ready: bool,
    /// The phase.
    pub phase: Phase,
    next_value: u64,
    next_process: u64,
    /// What the final reads found: per partition, offset -> value.
    pub final_values: BTreeMap<PartitionKey, BTreeMap<i64, u64>>,
    /// Counters of client events.
    pub stats: ClientStats,
    /// Brokers in the run (1: every request goes to node 0).
    pub nodes: u32,
    /// What the clients' metadata says about a cluster (unused with one node).
    pub routing: Routing,
    /// The compacted topic the admin creates besides `topics`, with its configuration
    /// (`compaction.rs`; only the keyed client writes it).
    pub compacted_topic: Option<(String, Vec<(String, String)>)>,
    /// The keyed writes to the compacted topic.
    pub compaction: Option<KeyedHistory>,
    /// The config changes the config client asked for (`config_changes.rs`).
    pub config_changes: Option<ConfigHistory>,
}

/// The clients' shared metadata cache in a cluster: who leads what.
#[derive(Debug, Default)]
pub struct Routing {
    /// Per partition: the leader's node index and its leader epoch.
    pub leaders: BTreeMap<PartitionKey, (u32, i32)>,
    /// The controller's node index, if known.
    pub controller: Option<u32>,
    /// Round robin over the nodes for requests any broker may answer.
    next_any: u32,
    /// A client saw stale metadata: refresh now.
    pub wanted: bool,
}

impl Shared {
    /// Fresh shared state.
    pub fn new(topics: Vec<(String, i32)>) -> Shared {
        Shared {
            topics,
            topics_ready: false,
            phase: Phase::Safety,
            next_value: 1,
            next_process: 1,
            final_values: BTreeMap::new(),
            stats: ClientStats::new(),
            nodes: 1,
            routing: Routing::default(),
            compacted_topic: None,
            compaction: None,
            config_changes: None,
        }
    }

    /// Some broker, for a request any broker answers: node 0 with one node, else the
    /// next in turn.
    pub(crate) fn any_node(&mut self) -> u32 {
        if self.nodes <= 1 {
            return 0;
        }
        let node = self.routing.next_any % self.nodes;
        self.routing.next_any = self.routing.next_any.wrapping_add(1);
        node
    }

    /// The node to send a request for `key` to: its leader, or any broker.
    pub(crate) fn leader_of(&mut self, key: &PartitionKey) -> u32 {
        match self.routing.leaders.get(key) {
            Some(&(node, _)) if self.nodes > 1 => node,
            _ => self.any_node(),
        }
    }

    /// What the clients know about `key`'s leader is stale (an error or a timeout
    /// from it): forget it and refresh the metadata.
    pub(crate) fn leader_stale(&mut self, key: &PartitionKey) {
        if self.nodes > 1 {
            self.routing.leaders.remove(key);
            self.routing.wanted = true;
        }
    }

    /// The controller the clients know is stale.
    pub(crate) fn controller_stale(&mut self) {
        if self.nodes > 1 {
            self.routing.controller = None;
            self.routing.wanted = true;
        }
    }

    pub(crate) fn process(&mut self) -> ProcessId {
        let id = ProcessId(self.next_process);
        self.next_process += 1;
        id
    }

    fn value(&mut self) -> u64 {
        let value = self.next_value;
        self.next_value += 1;
        value
    }

    pub(crate) fn count(&mut self, name: &'static str) {
        *self.stats.entry(name).or_insert(0) += 1;
    }
}

/// A request a client sends.
pub struct Outgoing {
    /// The client's correlation id (unique in the run).
    pub correlation: u64,
    /// The node it goes to.
    pub node: u32,
    /// The request.
    pub request: Request,
    /// A Produce with `acks=0`.
    pub acks_zero: bool,
    /// Give up after this long (`None`: never answered, nothing to wait for).
    pub timeout_ns: Option<u64>,
}

/// What a client sees of the world while it handles one event.
pub struct Ctx<'a> {
    /// Global time.
    pub now: u64,
    /// The world's random stream.
    pub rng: &'a mut SimRng,
    /// The history being recorded.
    pub history: &'a mut History,
    /// What consumer-group members were told.
    pub groups: &'a mut GroupHistory,
    /// Shared client state.
    pub shared: &'a mut Shared,
    /// Requests to send.
    pub out: Vec<Outgoing>,
    /// Times the client wants to be woken.
    pub wakes: Vec<u64>,
    /// Next correlation id.
    pub next_correlation: &'a mut u64,
}

impl Ctx<'_> {
    /// Sends to any broker (node 0 with one node).
    fn send(&mut self, body: RequestKind, version: i16, timeout_ns: Option<u64>) -> u64 {
        let node = self.shared.any_node();
        self.send_to(node, body, version, timeout_ns)
    }

    /// Sends to the leader of partition `key` as the clients' metadata knows it (any
    /// broker if it knows none; node 0 with one node).
    pub(crate) fn send_to_leader(
        &mut self,
        key: &PartitionKey,
        body: RequestKind,
        version: i16,
        timeout_ns: Option<u64>,
    ) -> u64 {
        let node = self.shared.leader_of(key);
        self.send_to(node, body, version, timeout_ns)
    }

    /// Sends to node `node` (a coordinator, say).
    pub(crate) fn send_to(
        &mut self,
        node: u32,
        body: RequestKind,
        version: i16,
        timeout_ns: Option<u64>,
    ) -> u64 {
        let correlation = *self.next_correlation;
        *self.next_correlation += 1;
        let acks_zero = matches!(&body, RequestKind::Produce(p) if p.acks == 0);
        self.out.push(Outgoing {
            correlation,
            node,
            request: Request {
                api_version: version,
                client_id: Some("odradek-sim".to_string()),
                client_host: String::new(),
                principal: odradek_replication::request::ANONYMOUS.to_string(),
                listener: String::new(),
                body,
            },
            acks_zero,
            timeout_ns,
        });
        correlation
    }

    pub(crate) fn wake_at(&mut self, at: u64) {
        self.wakes.push(at.max(self.now));
    }

    pub(crate) fn invoke(&mut self, process: ProcessId, key: &PartitionKey, call: Call) -> usize {
        self.history.invoke(process, key.clone(), call, self.now)
    }

    pub(crate) fn complete(&mut self, op: usize, outcome: Outcome) {
        self.history.complete(op, outcome, self.now);
    }

    pub(crate) fn backoff(&mut self) -> u64 {
        self.now + self.rng.range(20 * MS, 300 * MS)
    }
}

pub(crate) fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

pub(crate) fn produce_request(
    key: &PartitionKey,
    acks: i16,
    records: Bytes,
    timeout_ms: i32,
) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(acks)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic_name(&key.topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(key.partition)
                            .with_records(Some(records)),
                    ]),
            ]),
    )
}

pub(crate) fn fetch_request(
    key: &PartitionKey,
    offset: i64,
    max_wait_ms: i32,
    isolation: i8,
    partition_max_bytes: i32,
) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_isolation_level(isolation)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name(&key.topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(key.partition)
                            .with_fetch_offset(offset)
                            .with_current_leader_epoch(-1)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(partition_max_bytes),
                    ]),
            ]),
    )
}

/// ListOffsets `timestamp`: -1 latest (the high watermark), -2 earliest.
pub(crate) fn list_offsets_request(key: &PartitionKey, timestamp: i64) -> RequestKind {
    RequestKind::ListOffsets(
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_isolation_level(0)
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic_name(&key.topic))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(key.partition)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(timestamp),
                    ]),
            ]),
    )
}

/// The only partition of a one-partition Fetch response: (error, high watermark, records).
pub(crate) fn fetch_partition(response: &ResponseKind) -> Option<(i16, i64, Bytes)> {
    let ResponseKind::Fetch(fetch) = response else {
        return None;
    };
    if fetch.error_code != code::NONE {
        return Some((fetch.error_code, -1, Bytes::new()));
    }
    let data = fetch.responses.first()?.partitions.first()?;
    Some((
        data.error_code,
        data.high_watermark,
        data.records.clone().unwrap_or_default(),
    ))
}

/// The only partition of a one-partition ListOffsets response: (error, offset).
pub(crate) fn list_offsets_partition(response: &ResponseKind) -> Option<(i16, i64)> {
    let ResponseKind::ListOffsets(list) = response else {
        return None;
    };
    let data = list.topics.first()?.partitions.first()?;
    Some((data.error_code, data.offset))
}

/// Records of a fetch at or after `from`, as (offset, value).
pub(crate) fn polled_records(records: &Bytes, from: i64) -> Result<Vec<(i64, u64)>, String> {
    let batches = decode_batches(records)?;
    let mut out = Vec::new();
    for batch in batches {
        for record in batch.records {
            if record.offset < from {
                continue;
            }
            let value = record.value.ok_or_else(|| {
                format!("record at offset {} has no workload value", record.offset)
            })?;
            out.push((record.offset, value));
        }
    }
    Ok(out)
}

/// Creates the workload's topics, retrying until each exists.
pub struct Admin {
    pending: Option<u64>,
    created: BTreeSet<String>,
}

impl Admin {
    /// An admin that has done nothing yet.
    pub fn new() -> Admin {
        Admin {
            pending: None,
            created: BTreeSet::new(),
        }
    }

    /// What the admin still waits for (for a liveness failure report).
    pub fn describe(&self) -> String {
        format!("admin: created {:?}", self.created)
    }

    /// A timer the client asked for came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.shared.topics_ready || self.pending.is_some() {
            return;
        }
        // The broker's default with one node; a cluster replicates everything it can.
        let replication_factor = if ctx.shared.nodes > 1 {
            ctx.shared.nodes.min(3) as i16
        } else {
            -1
        };
        let mut topics: Vec<CreatableTopic> = ctx
            .shared
            .topics
            .iter()
            .filter(|(name, _)| !self.created.contains(name))
            .map(|(name, partitions)| {
                CreatableTopic::default()
                    .with_name(topic_name(name))
                    .with_num_partitions(*partitions)
                    .with_replication_factor(replication_factor)
            })
            .collect();
        if let Some((name, configs)) = &ctx.shared.compacted_topic
            && !self.created.contains(name)
        {
            topics.push(compacted_topic(name, configs, replication_factor));
        }
        let request = RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(topics),
        );
        // Only the controller creates topics (others answer NOT_CONTROLLER).
        let node = match ctx.shared.routing.controller {
            Some(controller) if ctx.shared.nodes > 1 => controller,
            _ => ctx.shared.any_node(),
        };
        self.pending = Some(ctx.send_to(node, request, CREATE_TOPICS_VERSION, Some(2_000 * MS)));
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if self.pending != Some(correlation) {
            return;
        }
        self.pending = None;
        if let ResponseKind::CreateTopics(created) = response {
            for topic in &created.topics {
                if matches!(topic.error_code, code::NONE | code::TOPIC_ALREADY_EXISTS) {
                    self.created.insert(topic.name.0.to_string());
                } else if topic.error_code == code::NOT_CONTROLLER {
                    ctx.shared.controller_stale();
                }
            }
        }
        let compacted_created = ctx
            .shared
            .compacted_topic
            .as_ref()
            .is_none_or(|(name, _)| self.created.contains(name));
        if compacted_created
            && ctx
                .shared
                .topics
                .iter()
                .all(|(name, _)| self.created.contains(name))
        {
            ctx.shared.topics_ready = true;
        } else {
            let at = ctx.backoff();
            ctx.wake_at(at);
        }
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        if self.pending == Some(correlation) {
            self.pending = None;
            ctx.shared.controller_stale();
            let at = ctx.backoff();
            ctx.wake_at(at);
        }
    }
}

/// The compacted topic's creation: one partition, with its configuration.
fn compacted_topic(
    name: &str,
    configs: &[(String, String)],
    replication_factor: i16,
) -> CreatableTopic {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_value(Some(StrBytes::from_string(value.clone())))
        })
        .collect();
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(1)
        .with_replication_factor(replication_factor)
        .with_configs(configs)
}

impl Default for Admin {
    fn default() -> Admin {
        Admin::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Identity {
    /// No producer id (or one to bump); none requested.
    None,
    /// InitProducerId in flight.
    Requesting(u64),
    /// Writing with this id and epoch.
    Ready { producer_id: i64, epoch: i16 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// Not in the liveness phase yet.
    NotNeeded,
    /// A new batch must be written and acknowledged.
    Needed,
    /// That batch is in flight.
    InFlight,
    /// It was acknowledged.
    Done,
}

struct Batch {
    values: Vec<u64>,
    ops: Vec<usize>,
    bytes: Bytes,
    attempt: Option<u64>,
    retry_at: u64,
    outcome_unknown: bool,
    deadline: u64,
    attempts: u32,
}

struct ProducerLane {
    key: PartitionKey,
    processes: Vec<ProcessId>,
    next_sequence: i32,
    batch: Option<Batch>,
    next_batch_at: u64,
    probe: Probe,
}

/// A producer writing to every partition, one batch in flight per partition.
pub struct Producer {
    acks: i16,
    idempotent: bool,
    identity: Identity,
    /// The last id and epoch, to bump (KIP-360).
    last_identity: Option<(i64, i16)>,
    bump_needed: bool,
    lanes: Vec<ProducerLane>,
    plan: WorkloadPlan,
}

impl Producer {
    /// A producer with `acks` (-1 or 0) over the plan's partitions.
    pub fn new(shared: &mut Shared, plan: &WorkloadPlan, acks: i16, idempotent: bool) -> Producer {
        let lanes = plan
            .partitions()
            .into_iter()
            .map(|key| ProducerLane {
                key,
                processes: (0..plan.records_per_batch_max)
                    .map(|_| shared.process())
                    .collect(),
                next_sequence: 0,
                batch: None,
                next_batch_at: 0,
                probe: Probe::NotNeeded,
            })
            .collect();
        Producer {
            acks,
            idempotent: idempotent && acks != 0,
            identity: Identity::None,
            last_identity: None,
            bump_needed: false,
            lanes,
            plan: plan.clone(),
        }
    }

    /// Whether the client has finished what the liveness phase asks of it.
    pub fn is_done(&self, shared: &Shared) -> bool {
        if shared.phase < Phase::Liveness {
            return false;
        }
        if self.acks == 0 {
            return true;
        }
        self.lanes
            .iter()
            .all(|lane| lane.batch.is_none() && lane.probe == Probe::Done)
    }

    /// What the client still waits for (for a liveness failure report).
    pub fn describe(&self) -> String {
        let lanes: Vec<String> = self
            .lanes
            .iter()
            .map(|lane| {
                format!(
                    "{}-{}: batch {} probe {:?}",
                    lane.key.topic,
                    lane.key.partition,
                    lane.batch.as_ref().map_or("none".to_string(), |b| format!(
                        "{} records, {} attempts",
                        b.values.len(),
                        b.attempts
                    )),
                    lane.probe
                )
            })
            .collect();
        format!(
            "producer acks={} identity {:?} bump {}: {}",
            self.acks,
            self.identity,
            self.bump_needed,
            lanes.join("; ")
        )
    }

    /// A timer the client asked for came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.shared.topics_ready {
            ctx.wake_at(ctx.now + 20 * MS);
            return;
        }
        if ctx.shared.phase >= Phase::Liveness && self.acks != 0 {
            for lane in &mut self.lanes {
                if lane.probe == Probe::NotNeeded {
                    lane.probe = Probe::Needed;
                }
            }
        }
        if self.idempotent && !self.ensure_identity(ctx) {
            return;
        }
        let mut next_wake = u64::MAX;
        for index in 0..self.lanes.len() {
            if let Some(batch) = &self.lanes[index].batch {
                if batch.attempt.is_none() {
                    if batch.retry_at <= ctx.now {
                        self.send_attempt(ctx, index);
                    } else {
                        next_wake = next_wake.min(batch.retry_at);
                    }
                }
                continue;
            }
            let lane = &self.lanes[index];
            let may_start = !self.bump_needed
                && match ctx.shared.phase {
                    Phase::Safety => true,
                    _ => lane.probe == Probe::Needed,
                };
            if !may_start {
                continue;
            }
            if lane.next_batch_at <= ctx.now {
                self.start_batch(ctx, index);
            } else {
                next_wake = next_wake.min(lane.next_batch_at);
            }
        }
        if next_wake != u64::MAX {
            ctx.wake_at(next_wake);
        }
    }

    /// Makes sure the producer has an id; returns whether it may write now.
    fn ensure_identity(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if self.bump_needed && self.lanes.iter().all(|l| l.batch.is_none()) {
            if let Identity::Ready { producer_id, epoch } = self.identity {
                self.last_identity = Some((producer_id, epoch));
                self.identity = Identity::None;
            }
            self.bump_needed = false;
            ctx.shared.count("producer.epoch-bump");
        }
        match self.identity {
            Identity::Ready { .. } => true,
            Identity::Requesting(_) => false,
            Identity::None => {
                let (producer_id, epoch) = self.last_identity.unwrap_or((-1, -1));
                let request = RequestKind::InitProducerId(
                    InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(producer_id))
                        .with_producer_epoch(epoch),
                );
                let correlation = ctx.send(
                    request,
                    INIT_PRODUCER_ID_VERSION,
                    Some(self.plan.request_timeout_ns),
                );
                self.identity = Identity::Requesting(correlation);
                false
            }
        }
    }

    fn start_batch(&mut self, ctx: &mut Ctx<'_>, index: usize) {
        let count = ctx
            .rng
            .range(1, u64::from(self.plan.records_per_batch_max) + 1) as usize;
        let value_bytes =
            ctx.rng
                .range(8, u64::from(self.plan.value_bytes_max.max(8)) + 1) as usize;
        let values: Vec<u64> = (0..count).map(|_| ctx.shared.value()).collect();
        let encoded: Vec<Vec<u8>> = values
            .iter()
            .map(|v| encode_value(*v, value_bytes))
            .collect();
        let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let lane = &mut self.lanes[index];
        let producer = match self.identity {
            Identity::Ready { producer_id, epoch } if self.idempotent => {
                let sequence = lane.next_sequence;
                lane.next_sequence += count as i32;
                Some((producer_id, epoch, sequence))
            }
            _ => None,
        };
        let timestamp = WALL_CLOCK_ORIGIN_MS + (ctx.now / MS) as i64;
        let bytes = Bytes::from(build_batch(timestamp, producer, &refs));
        let key = lane.key.clone();
        let ops = values
            .iter()
            .zip(&lane.processes)
            .map(|(value, process)| ctx.invoke(*process, &key, Call::Send { value: *value }))
            .collect();
        if lane.probe == Probe::Needed {
            lane.probe = Probe::InFlight;
        }
        lane.batch = Some(Batch {
            values,
            ops,
            bytes,
            attempt: None,
            retry_at: ctx.now,
            outcome_unknown: false,
            deadline: ctx.now + self.plan.delivery_timeout_ns,
            attempts: 0,
        });
        self.send_attempt(ctx, index);
    }

    fn send_attempt(&mut self, ctx: &mut Ctx<'_>, index: usize) {
        let acks = self.acks;
        let timeout_ns = self.plan.request_timeout_ns;
        let lane = &mut self.lanes[index];
        let batch = lane.batch.as_mut().expect("a batch to send");
        let request = produce_request(
            &lane.key,
            acks,
            batch.bytes.clone(),
            (timeout_ns / MS) as i32,
        );
        batch.attempts += 1;
        if batch.attempts > 1 {
            ctx.shared.count("producer.retry");
        }
        let key = lane.key.clone();
        if acks == 0 {
            ctx.send_to_leader(&key, request, PRODUCE_VERSION, None);
            self.finish(
                ctx,
                index,
                Outcome::Indefinite("acks=0 is never answered".into()),
            );
            return;
        }
        batch.attempt = Some(ctx.send_to_leader(&key, request, PRODUCE_VERSION, Some(timeout_ns)));
    }

    /// Completes the lane's batch: every record's operation gets `outcome` (offsets
    /// counted from the base offset for `Ok`).
    fn finish(&mut self, ctx: &mut Ctx<'_>, index: usize, outcome: Outcome) {
        let lane = &mut self.lanes[index];
        let batch = lane.batch.take().expect("a batch to finish");
        match &outcome {
            Outcome::Ok(Reply::Sent { offset: base }) => {
                for (i, op) in batch.ops.iter().enumerate() {
                    ctx.history.complete(
                        *op,
                        Outcome::Ok(Reply::Sent {
                            offset: base + i as i64,
                        }),
                        ctx.now,
                    );
                }
                if lane.probe == Probe::InFlight {
                    lane.probe = Probe::Done;
                }
            }
            other => {
                for op in &batch.ops {
                    ctx.history.complete(*op, other.clone(), ctx.now);
                }
                if lane.probe == Probe::InFlight {
                    lane.probe = Probe::Needed;
                }
                if self.idempotent {
                    // The sequence numbers of this batch are in doubt: bump the epoch
                    // before writing again (Kafka's KIP-360 behaviour).
                    self.bump_needed = true;
                }
            }
        }
        let think = ctx
            .rng
            .range(self.plan.think_min_ns, self.plan.think_max_ns + 1);
        lane.next_batch_at = ctx.now + think;
        ctx.wake_at(lane.next_batch_at);
    }

    fn lane_of(&self, correlation: u64) -> Option<usize> {
        self.lanes.iter().position(|lane| {
            lane.batch
                .as_ref()
                .is_some_and(|b| b.attempt == Some(correlation))
        })
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if let ResponseKind::InitProducerId(init) = response {
            self.on_producer_id(ctx, correlation, init);
            return;
        }
        let Some(index) = self.lane_of(correlation) else {
            ctx.shared.count("client.late-response");
            return;
        };
        let ResponseKind::Produce(produce) = response else {
            panic!("a produce request got another kind of response")
        };
        let partition = &produce.responses[0].partition_responses[0];
        let batch = self.lanes[index].batch.as_mut().expect("found by lane_of");
        batch.attempt = None;
        match partition.error_code {
            code::NONE => self.finish(
                ctx,
                index,
                Outcome::Ok(Reply::Sent {
                    offset: partition.base_offset,
                }),
            ),
            error @ (code::UNKNOWN_TOPIC_OR_PARTITION
            | code::LEADER_NOT_AVAILABLE
            | code::NOT_LEADER_OR_FOLLOWER
            | code::REQUEST_TIMED_OUT
            | code::NOT_ENOUGH_REPLICAS
            | code::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | code::KAFKA_STORAGE_ERROR) => self.on_retriable_error(ctx, index, error),
            error @ (code::OUT_OF_ORDER_SEQUENCE_NUMBER
            | code::INVALID_PRODUCER_EPOCH
            | code::UNKNOWN_PRODUCER_ID) => {
                ctx.shared.count("producer.sequence-error");
                self.finish(
                    ctx,
                    index,
                    Outcome::Indefinite(format!("producer state error {error}")),
                );
            }
            error => {
                let unknown = batch.outcome_unknown;
                let reason = format!("error {error}");
                let outcome = if unknown {
                    Outcome::Indefinite(reason)
                } else {
                    Outcome::Fail(reason)
                };
                self.finish(ctx, index, outcome);
            }
        }
    }

    /// InitProducerId answered: the producer's identity, or a backoff before asking again.
    fn on_producer_id(
        &mut self,
        ctx: &mut Ctx<'_>,
        correlation: u64,
        init: &InitProducerIdResponse,
    ) {
        if self.identity != Identity::Requesting(correlation) {
            return;
        }
        if init.error_code == code::NONE {
            self.identity = Identity::Ready {
                producer_id: init.producer_id.0,
                epoch: init.producer_epoch,
            };
            for lane in &mut self.lanes {
                lane.next_sequence = 0;
            }
            ctx.wake_at(ctx.now);
        } else {
            self.identity = Identity::None;
            let at = ctx.backoff();
            ctx.wake_at(at);
        }
    }

    /// A produce failed with an error worth retrying: notes whether the batch may have
    /// been written and whether the leader is stale, then retries or gives up.
    fn on_retriable_error(&mut self, ctx: &mut Ctx<'_>, index: usize, error: i16) {
        // A storage error may come after the append reached the page cache and
        // its sync failed: whether it is on disk is unknown. A leader that lost
        // its epoch while the batch waited for the quorum answers
        // NOT_LEADER_OR_FOLLOWER: the next leader may have kept it.
        if matches!(
            error,
            code::KAFKA_STORAGE_ERROR
                | code::REQUEST_TIMED_OUT
                | code::NOT_LEADER_OR_FOLLOWER
                | code::NOT_ENOUGH_REPLICAS_AFTER_APPEND
        ) {
            let batch = self.lanes[index].batch.as_mut().expect("found by lane_of");
            batch.outcome_unknown = true;
        }
        if matches!(
            error,
            code::UNKNOWN_TOPIC_OR_PARTITION
                | code::LEADER_NOT_AVAILABLE
                | code::NOT_LEADER_OR_FOLLOWER
        ) {
            let key = self.lanes[index].key.clone();
            ctx.shared.leader_stale(&key);
        }
        ctx.shared.count("producer.retriable-error");
        self.retry_or_give_up(ctx, index, &format!("error {error}"));
    }

    fn retry_or_give_up(&mut self, ctx: &mut Ctx<'_>, index: usize, why: &str) {
        let batch = self.lanes[index].batch.as_mut().expect("a batch");
        if ctx.now >= batch.deadline {
            let outcome = if batch.outcome_unknown {
                Outcome::Indefinite(format!("delivery timeout after {why}"))
            } else {
                Outcome::Fail(format!("delivery timeout after {why}"))
            };
            ctx.shared.count("producer.gave-up");
            self.finish(ctx, index, outcome);
            return;
        }
        batch.retry_at = ctx.now + ctx.rng.range(10 * MS, 200 * MS);
        ctx.wake_at(batch.retry_at);
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64, why: &str) {
        if self.identity == Identity::Requesting(correlation) {
            self.identity = Identity::None;
            let at = ctx.backoff();
            ctx.wake_at(at);
            return;
        }
        let Some(index) = self.lane_of(correlation) else {
            return;
        };
        let key = self.lanes[index].key.clone();
        ctx.shared.leader_stale(&key);
        let batch = self.lanes[index].batch.as_mut().expect("found by lane_of");
        batch.attempt = None;
        batch.outcome_unknown = true;
        self.retry_or_give_up(ctx, index, why);
    }
}

enum ConsumerPending {
    Poll {
        correlation: u64,
        lane: usize,
        op: usize,
        offset: i64,
    },
    Seek {
        correlation: u64,
        lane: usize,
    },
}

impl ConsumerPending {
    fn correlation(&self) -> u64 {
        match self {
            ConsumerPending::Poll { correlation, .. }
            | ConsumerPending::Seek { correlation, .. } => *correlation,
        }
    }
}

struct ConsumerLane {
    key: PartitionKey,
    position: i64,
    process: ProcessId,
}

/// A consumer polling every partition in turn (one fetch in flight), from offset 0 or
/// from offsets it learned with ListOffsets. A seek starts a new process lane, so each
/// process's polls move forward only.
pub struct Consumer {
    lanes: Vec<ConsumerLane>,
    next_lane: usize,
    pending: Option<ConsumerPending>,
    isolation: i8,
    plan: WorkloadPlan,
}

impl Consumer {
    /// Whether the liveness phase began and no read is in flight.
    pub fn is_done(&self, shared: &Shared) -> bool {
        shared.phase >= Phase::Liveness && self.pending.is_none()
    }

    /// Whether a read is in flight (for a liveness failure report).
    pub fn describe(&self) -> String {
        format!("consumer: pending {:?}", self.pending.is_some())
    }

    /// A consumer of every partition of the plan.
    pub fn new(shared: &mut Shared, plan: &WorkloadPlan, isolation: i8) -> Consumer {
        let lanes = plan
            .partitions()
            .into_iter()
            .map(|key| ConsumerLane {
                key,
                position: 0,
                process: shared.process(),
            })
            .collect();
        Consumer {
            lanes,
            next_lane: 0,
            pending: None,
            isolation,
            plan: plan.clone(),
        }
    }

    /// A timer the client asked for came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.shared.topics_ready {
            ctx.wake_at(ctx.now + 20 * MS);
            return;
        }
        if self.pending.is_some() || ctx.shared.phase >= Phase::Liveness || self.lanes.is_empty() {
            return;
        }
        let lane = self.next_lane;
        self.next_lane = (self.next_lane + 1) % self.lanes.len();
        if ctx.rng.chance(self.plan.seek_ppm) {
            let timestamp = if ctx.rng.below(2) == 0 { -1 } else { -2 };
            let key = self.lanes[lane].key.clone();
            let request = list_offsets_request(&key, timestamp);
            let correlation = ctx.send_to_leader(
                &key,
                request,
                LIST_OFFSETS_VERSION,
                Some(self.plan.request_timeout_ns),
            );
            self.pending = Some(ConsumerPending::Seek { correlation, lane });
            return;
        }
        let offset = self.lanes[lane].position;
        let key = self.lanes[lane].key.clone();
        let op = ctx.invoke(self.lanes[lane].process, &key, Call::Poll { offset });
        let request = fetch_request(
            &key,
            offset,
            self.plan.fetch_max_wait_ms,
            self.isolation,
            CONSUMER_READ_BYTES,
        );
        let timeout = self.plan.request_timeout_ns + self.plan.fetch_max_wait_ms as u64 * MS;
        let correlation = ctx.send_to_leader(&key, request, FETCH_VERSION, Some(timeout));
        self.pending = Some(ConsumerPending::Poll {
            correlation,
            lane,
            op,
            offset,
        });
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if self.pending.as_ref().map(ConsumerPending::correlation) != Some(correlation) {
            ctx.shared.count("client.late-response");
            return;
        }
        match self.pending.take().expect("checked") {
            ConsumerPending::Seek { lane, .. } => {
                if let Some((code::NONE, offset)) = list_offsets_partition(response)
                    && offset >= 0
                {
                    let process = ctx.shared.process();
                    let lane = &mut self.lanes[lane];
                    lane.position = offset;
                    lane.process = process;
                    ctx.shared.count("consumer.seek");
                } else {
                    let key = self.lanes[lane].key.clone();
                    ctx.shared.leader_stale(&key);
                }
                ctx.wake_at(ctx.now + MS);
            }
            ConsumerPending::Poll {
                lane, op, offset, ..
            } => {
                let (error, _, records) =
                    fetch_partition(response).expect("a fetch answered with a fetch response");
                match error {
                    code::NONE => match polled_records(&records, offset) {
                        Ok(records) => {
                            if let Some((last, _)) = records.last() {
                                self.lanes[lane].position = last + 1;
                            }
                            ctx.complete(op, Outcome::Ok(Reply::Polled { records }));
                            let at = ctx.now + ctx.rng.below(5 * MS);
                            ctx.wake_at(at);
                        }
                        Err(reason) => {
                            // The world flags a served corrupt batch as a safety
                            // violation; the consumer only records that it read nothing.
                            ctx.complete(op, Outcome::Fail(reason));
                            let at = ctx.backoff();
                            ctx.wake_at(at);
                        }
                    },
                    code::OFFSET_OUT_OF_RANGE => {
                        ctx.complete(op, Outcome::Fail("offset out of range".into()));
                        ctx.shared.count("consumer.out-of-range");
                        // Start over from the earliest offset, as auto.offset.reset would.
                        let key = self.lanes[lane].key.clone();
                        let request = list_offsets_request(&key, -2);
                        let correlation = ctx.send_to_leader(
                            &key,
                            request,
                            LIST_OFFSETS_VERSION,
                            Some(self.plan.request_timeout_ns),
                        );
                        self.pending = Some(ConsumerPending::Seek { correlation, lane });
                    }
                    error => {
                        ctx.complete(op, Outcome::Fail(format!("error {error}")));
                        let key = self.lanes[lane].key.clone();
                        ctx.shared.leader_stale(&key);
                        let at = ctx.backoff();
                        ctx.wake_at(at);
                    }
                }
            }
        }
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64, why: &str) {
        if self.pending.as_ref().map(ConsumerPending::correlation) != Some(correlation) {
            return;
        }
        let lane = match self.pending.take() {
            Some(ConsumerPending::Poll { op, lane, .. }) => {
                ctx.complete(op, Outcome::Indefinite(why.to_string()));
                lane
            }
            Some(ConsumerPending::Seek { lane, .. }) => lane,
            None => unreachable!("checked above"),
        };
        let key = self.lanes[lane].key.clone();
        ctx.shared.leader_stale(&key);
        let at = ctx.backoff();
        ctx.wake_at(at);
    }
}

struct FinalLane {
    key: PartitionKey,
    process: ProcessId,
    target: Option<i64>,
    position: i64,
    done: bool,
    pending: Option<FinalPending>,
}

enum FinalPending {
    Target {
        correlation: u64,
    },
    Poll {
        correlation: u64,
        op: usize,
        offset: i64,
    },
}

impl FinalPending {
    fn correlation(&self) -> u64 {
        match self {
            FinalPending::Target { correlation } | FinalPending::Poll { correlation, .. } => {
                *correlation
            }
        }
    }
}

/// Reads every partition from offset 0 up to its high watermark once every other
/// client has finished: the history's final reads, so that every acknowledged record
/// must be seen. The partitions are read side by side, one request in flight each,
/// with large fetches: a busy seed leaves tens of thousands of records per partition,
/// and the liveness bound is about the broker, not about a slow reader.
pub struct FinalReader {
    lanes: Vec<FinalLane>,
}

/// Bytes a consumer's poll asks for per partition (small: many polls, many chances to
/// see a fault).
const CONSUMER_READ_BYTES: i32 = 64 << 10;

/// Bytes a final read asks for per partition.
const FINAL_READ_BYTES: i32 = 1 << 20;

impl FinalReader {
    /// Whether every partition has been read to its end.
    pub fn is_done(&self) -> bool {
        self.lanes.iter().all(|l| l.done)
    }

    /// Where each partition's final read stands (for a liveness failure report).
    pub fn describe(&self) -> String {
        self.lanes
            .iter()
            .map(|l| {
                format!(
                    "final read {}-{}: position {} target {:?} done {}",
                    l.key.topic, l.key.partition, l.position, l.target, l.done
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A final reader of every partition of the plan.
    pub fn new(shared: &mut Shared, plan: &WorkloadPlan) -> FinalReader {
        let lanes = plan
            .partitions()
            .into_iter()
            .map(|key| FinalLane {
                key,
                process: shared.process(),
                target: None,
                position: 0,
                done: false,
                pending: None,
            })
            .collect();
        FinalReader { lanes }
    }

    /// A timer the client asked for came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.shared.phase != Phase::FinalRead {
            return;
        }
        for state in &mut self.lanes {
            if state.done || state.pending.is_some() {
                continue;
            }
            match state.target {
                None => {
                    let request = list_offsets_request(&state.key, -1);
                    let correlation = ctx.send_to_leader(
                        &state.key,
                        request,
                        LIST_OFFSETS_VERSION,
                        Some(1_000 * MS),
                    );
                    state.pending = Some(FinalPending::Target { correlation });
                }
                Some(target) if state.position >= target => {
                    state.done = true;
                    ctx.wake_at(ctx.now);
                }
                Some(_) => {
                    let offset = state.position;
                    let key = state.key.clone();
                    let op = ctx.invoke(state.process, &key, Call::Poll { offset });
                    let request = fetch_request(&key, offset, 100, 0, FINAL_READ_BYTES);
                    let correlation =
                        ctx.send_to_leader(&key, request, FETCH_VERSION, Some(1_000 * MS));
                    state.pending = Some(FinalPending::Poll {
                        correlation,
                        op,
                        offset,
                    });
                }
            }
        }
    }

    /// The lane waiting for `correlation`, if any.
    fn lane_of(&self, correlation: u64) -> Option<usize> {
        self.lanes.iter().position(|lane| {
            lane.pending
                .as_ref()
                .is_some_and(|pending| pending.correlation() == correlation)
        })
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        let Some(lane) = self.lane_of(correlation) else {
            return;
        };
        match self.lanes[lane].pending.take().expect("checked") {
            FinalPending::Target { .. } => {
                if let Some((code::NONE, offset)) = list_offsets_partition(response) {
                    self.lanes[lane].target = Some(offset);
                    ctx.wake_at(ctx.now);
                } else {
                    let key = self.lanes[lane].key.clone();
                    ctx.shared.leader_stale(&key);
                    let at = ctx.backoff();
                    ctx.wake_at(at);
                }
            }
            FinalPending::Poll { op, offset, .. } => {
                let (error, _, records) =
                    fetch_partition(response).expect("a fetch answered with a fetch response");
                let polled = if error == code::NONE {
                    polled_records(&records, offset)
                } else {
                    Err(format!("error {error}"))
                };
                match polled {
                    Ok(records) => {
                        let state = &mut self.lanes[lane];
                        let values = ctx
                            .shared
                            .final_values
                            .entry(state.key.clone())
                            .or_default();
                        for (offset, value) in &records {
                            values.insert(*offset, *value);
                        }
                        if let Some((last, _)) = records.last() {
                            state.position = last + 1;
                        }
                        ctx.complete(op, Outcome::Ok(Reply::Polled { records }));
                        ctx.wake_at(ctx.now);
                    }
                    Err(reason) => {
                        ctx.complete(op, Outcome::Fail(reason));
                        ctx.shared.count("final-read.error");
                        let key = self.lanes[lane].key.clone();
                        ctx.shared.leader_stale(&key);
                        let at = ctx.backoff();
                        ctx.wake_at(at);
                    }
                }
            }
        }
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        let Some(lane) = self.lane_of(correlation) else {
            return;
        };
        if let Some(FinalPending::Poll { op, .. }) = self.lanes[lane].pending.take() {
            ctx.complete(op, Outcome::Indefinite("final read timed out".into()));
        }
        let key = self.lanes[lane].key.clone();
        ctx.shared.leader_stale(&key);
        let at = ctx.backoff();
        ctx.wake_at(at);
    }
}

/// Keeps [`Routing`] fresh in a cluster: a Metadata request to some broker every
/// second, and at once when a client found what it knew stale. It records nothing in
/// the history and never holds the phases up. Only clusters have one.
pub struct MetadataClient {
    pending: Option<u64>,
    next_refresh: u64,
}

/// How often the metadata client refreshes unasked.
const METADATA_REFRESH_NS: u64 = 1_000 * MS;
/// How often it looks whether a client asked for a refresh.
const METADATA_CHECK_NS: u64 = 50 * MS;

impl MetadataClient {
    /// A client that refreshes at its first tick.
    pub fn new() -> MetadataClient {
        MetadataClient {
            pending: None,
            next_refresh: 0,
        }
    }

    /// A timer the client asked for came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.shared.phase == Phase::Done {
            return;
        }
        if self.pending.is_none() && (ctx.shared.routing.wanted || ctx.now >= self.next_refresh) {
            let request = RequestKind::Metadata(
                MetadataRequest::default()
                    .with_topics(None)
                    .with_allow_auto_topic_creation(false),
            );
            let node = ctx.shared.any_node();
            self.pending = Some(ctx.send_to(node, request, METADATA_VERSION, Some(500 * MS)));
            ctx.shared.routing.wanted = false;
            ctx.shared.count("metadata.request");
        }
        ctx.wake_at(ctx.now + METADATA_CHECK_NS);
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if self.pending != Some(correlation) {
            return;
        }
        self.pending = None;
        self.next_refresh = ctx.now + METADATA_REFRESH_NS;
        let ResponseKind::Metadata(metadata) = response else {
            return;
        };
        let routing = &mut ctx.shared.routing;
        let controller = metadata.controller_id.0;
        if controller >= 1 {
            routing.controller = Some((controller - 1) as u32);
        }
        for topic in &metadata.topics {
            let Some(name) = &topic.name else {
                continue;
            };
            for partition in &topic.partitions {
                let key = PartitionKey {
                    topic: name.0.to_string(),
                    partition: partition.partition_index,
                };
                let known_epoch = routing.leaders.get(&key).map(|&(_, epoch)| epoch);
                if known_epoch.is_some_and(|epoch| epoch > partition.leader_epoch) {
                    // An older view than what the clients already know.
                    continue;
                }
                let leader = partition.leader_id.0;
                if partition.error_code == code::NONE && leader >= 1 {
                    routing
                        .leaders
                        .insert(key, ((leader - 1) as u32, partition.leader_epoch));
                } else {
                    routing.leaders.remove(&key);
                }
            }
        }
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        if self.pending == Some(correlation) {
            self.pending = None;
            // Ask another broker at the next check.
            ctx.shared.routing.wanted = true;
        }
    }
}

impl Default for MetadataClient {
    fn default() -> MetadataClient {
        MetadataClient::new()
    }
}
