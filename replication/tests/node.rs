//! The broker node, one event at a time, over an in-memory disk.
//!
//! Each test drives a real [`Node`] through [`TestIo`]: a `MemDisk`, a clock that moves
//! only when the test says so, timers the test fires, and every response captured. No
//! threads and no wall clock, so each test is exact and repeatable.

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, ProducerId, RequestKind, ResponseKind, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::build_batch;
use odradek_log::io::{Disk, DiskError, Duration, Instant, Io, TimerId};
use odradek_log::mem_disk::{CrashOptions, MemDisk};
use odradek_replication::error::ErrorCode;
use odradek_replication::group::{GroupConfig, GroupErrorCode, GroupState};
use odradek_replication::peer::{BrokerId, PeerMessage};
use odradek_replication::{Event, Node, NodeConfig, NodeIo, Request, RequestId, TopicPartition};

/// The seam over a `MemDisk`, with a hand-moved clock.
struct TestIo {
    disk: MemDisk,
    now: Instant,
    wall_ms: i64,
    random: u64,
    timers: Vec<(Instant, TimerId)>,
    responses: Vec<(RequestId, ResponseKind)>,
}

impl TestIo {
    fn new(seed: u64) -> TestIo {
        TestIo {
            disk: MemDisk::new(seed),
            now: Instant::ZERO,
            wall_ms: 1_700_000_000_000,
            random: seed,
            timers: Vec::new(),
            responses: Vec::new(),
        }
    }

    fn take_response(&mut self, id: u64) -> Option<ResponseKind> {
        let at = self
            .responses
            .iter()
            .position(|(r, _)| *r == RequestId(id))?;
        Some(self.responses.remove(at).1)
    }
}

odradek_log::forward_disk!(TestIo => disk);

impl Io for TestIo {
    fn now(&self) -> Instant {
        self.now
    }
    fn wall_clock_ms(&self) -> i64 {
        self.wall_ms
    }
    fn random(&mut self) -> u64 {
        self.random = self
            .random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.random
    }
    fn set_timer(&mut self, at: Instant, timer: TimerId) {
        self.timers.push((at, timer));
    }
}

impl NodeIo for TestIo {
    fn respond(&mut self, id: RequestId, response: ResponseKind) {
        assert!(
            self.responses.iter().all(|(r, _)| *r != id),
            "request {id:?} answered twice"
        );
        self.responses.push((id, response));
    }
    fn send(&mut self, to: BrokerId, message: PeerMessage) {
        panic!("a single node sent {message:?} to broker {to}");
    }
}

/// A node and its world.
struct Harness {
    node: Node,
    io: TestIo,
    config: NodeConfig,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(NodeConfig::default())
    }

    fn with_config(config: NodeConfig) -> Harness {
        let mut io = TestIo::new(7);
        io.disk.sync_dir_now("").expect("root");
        let node = Node::open(&mut io, config.clone()).expect("opens");
        Harness { node, io, config }
    }

    fn send(&mut self, id: u64, version: i16, body: RequestKind) {
        let request = Request {
            api_version: version,
            client_id: None,
            client_host: String::new(),
            principal: odradek_replication::request::ANONYMOUS.to_string(),
            listener: String::new(),
            body,
        };
        self.node.handle(
            &mut self.io,
            Event::Client {
                id: RequestId(id),
                request,
            },
        );
    }

    /// Completes every pending sync (repeatedly, since completions start new rounds).
    fn complete_syncs(&mut self) {
        loop {
            let done = self.io.disk.complete_all_syncs();
            if done.is_empty() {
                return;
            }
            for completion in done {
                self.node.handle(&mut self.io, Event::Disk(completion));
            }
        }
    }

    fn fail_next_syncs(&mut self) {
        let pending = self.io.disk.pending_syncs();
        for io in pending {
            let injected = Err(DiskError::Io {
                message: "injected EIO".into(),
            });
            let completion = self.io.disk.complete_sync(io, injected).expect("pending");
            self.node.handle(&mut self.io, Event::Disk(completion));
        }
    }

    /// Moves the clock and fires due timers.
    fn advance(&mut self, by: Duration) {
        self.io.now = self.io.now + by;
        self.io.wall_ms += by.as_millis() as i64;
        let now = self.io.now;
        let due: Vec<TimerId> = {
            let (due, later): (Vec<_>, Vec<_>) =
                self.io.timers.drain(..).partition(|(at, _)| *at <= now);
            self.io.timers = later;
            due.into_iter().map(|(_, t)| t).collect()
        };
        for timer in due {
            self.node.handle(&mut self.io, Event::Timer(timer));
        }
    }

    fn create_topic(&mut self, name: &str, partitions: i32) {
        self.send(9000, 7, create_topics(name, partitions, &[]));
        self.complete_syncs();
        let ResponseKind::CreateTopics(response) = self.io.take_response(9000).expect("answered")
        else {
            panic!("wrong kind")
        };
        assert_eq!(
            response.topics[0].error_code, 0,
            "{:?}",
            response.topics[0].error_message
        );
    }

    /// Simulates a crash and a restart on the same disk.
    fn crash_and_restart(self, seed: u64) -> Harness {
        self.crash_and_restart_with(seed, CrashOptions::default())
    }

    /// A crash that keeps what `options` says of the unsynced writes, and a restart.
    fn crash_and_restart_with(self, seed: u64, options: CrashOptions) -> Harness {
        let Harness { mut io, config, .. } = self;
        io.disk.crash_with(seed, options);
        io.responses.clear();
        io.timers.clear();
        let node = Node::open(&mut io, config.clone()).expect("reopens after crash");
        Harness { node, io, config }
    }

    /// A clean shutdown and a restart on the same disk.
    fn restart(self) -> Harness {
        let Harness {
            mut node,
            mut io,
            config,
        } = self;
        node.shutdown(&mut io);
        io.responses.clear();
        io.timers.clear();
        let node = Node::open(&mut io, config.clone()).expect("reopens");
        Harness { node, io, config }
    }
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn produce(topic: &str, partition: i32, acks: i16, batch: Vec<u8>) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(Bytes::from(batch))),
                    ]),
            ]),
    )
}

fn fetch(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_current_leader_epoch(-1)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    )
}

fn metadata(topics: &[&str]) -> RequestKind {
    RequestKind::Metadata(
        MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(true),
    )
}

fn create_topics(topic: &str, partitions: i32, configs: &[(&str, &str)]) -> RequestKind {
    RequestKind::CreateTopics(
        CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(-1)
                    .with_configs(
                        configs
                            .iter()
                            .map(|(k, v)| {
                                CreatableTopicConfig::default()
                                    .with_name(StrBytes::from_string(k.to_string()))
                                    .with_value(Some(StrBytes::from_string(v.to_string())))
                            })
                            .collect(),
                    ),
            ]),
    )
}

fn list_offsets(topic: &str, partition: i32, timestamp: i64) -> RequestKind {
    RequestKind::ListOffsets(
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(timestamp),
                    ]),
            ]),
    )
}

fn init_producer_id() -> RequestKind {
    // Null transactional id: an idempotent, non-transactional producer.
    RequestKind::InitProducerId(
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
}

fn produce_result(response: ResponseKind) -> (i16, i64) {
    let ResponseKind::Produce(response) = response else {
        panic!("not a produce response")
    };
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// (error, high watermark, records bytes)
fn fetch_result(response: ResponseKind) -> (i16, i64, Bytes) {
    let ResponseKind::Fetch(response) = response else {
        panic!("not a fetch response")
    };
    let partition = &response.responses[0].partitions[0];
    (
        partition.error_code,
        partition.high_watermark,
        partition.records.clone().unwrap_or_default(),
    )
}

#[test]
fn acks_all_is_answered_only_after_the_sync_completes() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(
        1,
        9,
        produce("t", 0, -1, build_batch(1, None, &[b"a", b"b"])),
    );
    assert!(h.io.take_response(1).is_none(), "answered before fsync");
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("answered")),
        (0, 0)
    );
    h.send(2, 9, produce("t", 0, 1, build_batch(1, None, &[b"c"])));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(2).expect("answered")),
        (0, 2)
    );
}

#[test]
fn acks_zero_is_never_answered_but_still_written() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(
        1,
        9,
        produce("t", 0, 0, build_batch(1, None, &[b"fire", b"forget"])),
    );
    h.complete_syncs();
    assert!(h.io.take_response(1).is_none());
    h.send(2, 12, fetch("t", 0, 0, 0));
    let (error, high_watermark, records) = fetch_result(h.io.take_response(2).expect("answered"));
    assert_eq!((error, high_watermark), (0, 2));
    assert!(!records.is_empty());
}

#[test]
fn fetch_never_serves_above_the_high_watermark() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 9, produce("t", 0, -1, build_batch(1, None, &[b"x"])));
    // Appended but not durable: a consumer must not see it yet.
    h.send(2, 12, fetch("t", 0, 0, 0));
    let (error, high_watermark, records) = fetch_result(h.io.take_response(2).expect("answered"));
    assert_eq!((error, high_watermark), (0, 0));
    assert!(records.is_empty());
}

#[test]
fn parked_fetch_wakes_when_the_high_watermark_moves() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 12, fetch("t", 0, 0, 500));
    assert!(h.io.take_response(1).is_none(), "parked");
    h.send(2, 9, produce("t", 0, -1, build_batch(1, None, &[b"wake"])));
    assert!(
        h.io.take_response(1).is_none(),
        "still parked before the sync"
    );
    h.complete_syncs();
    let (error, high_watermark, records) = fetch_result(h.io.take_response(1).expect("woken"));
    assert_eq!((error, high_watermark), (0, 1));
    assert!(!records.is_empty());
}

#[test]
fn parked_fetch_answers_empty_at_its_deadline() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 12, fetch("t", 0, 0, 500));
    h.advance(Duration::from_millis(499));
    assert!(h.io.take_response(1).is_none());
    h.advance(Duration::from_millis(1));
    let (error, _, records) = fetch_result(h.io.take_response(1).expect("deadline"));
    assert_eq!(error, 0);
    assert!(records.is_empty());
}

#[test]
fn fetch_out_of_range_and_unknown_topic_errors() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 12, fetch("t", 0, 5, 100));
    assert_eq!(
        fetch_result(h.io.take_response(1).expect("answered")).0,
        ErrorCode::OffsetOutOfRange.code()
    );
    h.send(2, 12, fetch("nope", 0, 0, 100));
    assert_eq!(
        fetch_result(h.io.take_response(2).expect("answered")).0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
}

#[test]
fn metadata_auto_creates_and_answers_once_durable() {
    let mut h = Harness::new();
    h.send(1, 12, metadata(&["fresh"]));
    assert!(
        h.io.take_response(1).is_none(),
        "waits for the create record's sync"
    );
    h.complete_syncs();
    let ResponseKind::Metadata(response) = h.io.take_response(1).expect("answered") else {
        panic!()
    };
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 1);
    assert_eq!(response.brokers[0].port, 9092);
    assert!(!response.topics[0].topic_id.is_nil());
}

/// As in Kafka, only Metadata creates topics: a Produce naming a missing topic is
/// refused even with auto-creation on, and creates nothing (tests/conformance.rs).
#[test]
fn produce_to_a_missing_topic_is_unknown_even_when_auto_create_is_on() {
    let mut h = Harness::new();
    h.send(1, 9, produce("auto", 0, -1, build_batch(1, None, &[b"v"])));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("answered")),
        (ErrorCode::UnknownTopicOrPartition.code(), -1)
    );
    h.send(2, 12, metadata(&["auto"]));
    h.complete_syncs();
    let ResponseKind::Metadata(response) = h.io.take_response(2).expect("answered") else {
        panic!()
    };
    assert_eq!(response.topics[0].error_code, 0, "Metadata creates it");
    h.send(3, 9, produce("auto", 0, -1, build_batch(1, None, &[b"v"])));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(3).expect("answered")),
        (0, 0)
    );
}

#[test]
fn auto_create_off_means_unknown_topic() {
    let mut h = Harness::with_config(NodeConfig {
        auto_create_topics_enable: false,
        ..NodeConfig::default()
    });
    h.send(
        1,
        9,
        produce("missing", 0, -1, build_batch(1, None, &[b"v"])),
    );
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("answered")).0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    h.send(2, 12, metadata(&["missing"]));
    let ResponseKind::Metadata(response) = h.io.take_response(2).expect("answered") else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
}

#[test]
fn create_topics_refuses_what_kafka_refuses() {
    let mut h = Harness::new();
    h.create_topic("taken", 1);
    // (topic, partitions, configs, expected error)
    type Case<'a> = (&'a str, i32, &'a [(&'a str, &'a str)], ErrorCode);
    let cases: &[Case<'_>] = &[
        ("taken", 1, &[], ErrorCode::TopicAlreadyExists),
        ("bad name", 1, &[], ErrorCode::InvalidTopicException),
        ("zero", 0, &[], ErrorCode::InvalidPartitions),
        (
            "cfg",
            1,
            &[("retention.ms", "soon")],
            ErrorCode::InvalidConfig,
        ),
        (
            "cfg2",
            1,
            &[("no.such.config", "1")],
            ErrorCode::InvalidConfig,
        ),
    ];
    for (index, (topic, partitions, configs, expected)) in cases.iter().enumerate() {
        let id = 100 + index as u64;
        h.send(id, 7, create_topics(topic, *partitions, configs));
        h.complete_syncs();
        let ResponseKind::CreateTopics(response) = h.io.take_response(id).expect("answered") else {
            panic!()
        };
        assert_eq!(response.topics[0].error_code, expected.code(), "{topic}");
        assert!(
            response.topics[0].error_message.is_some(),
            "{topic}: errors say why"
        );
    }
}

#[test]
fn replication_factor_above_one_is_refused_on_a_single_node() {
    let mut h = Harness::new();
    let RequestKind::CreateTopics(mut request) = create_topics("rf", 1, &[]) else {
        unreachable!()
    };
    request.topics[0].replication_factor = 2;
    h.send(1, 7, RequestKind::CreateTopics(request));
    let ResponseKind::CreateTopics(response) = h.io.take_response(1).expect("answered") else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error_code,
        ErrorCode::InvalidReplicationFactor.code()
    );
}

#[test]
fn topic_configs_are_described_with_their_source() {
    let mut h = Harness::new();
    h.send(1, 7, create_topics("c", 1, &[("retention.ms", "60000")]));
    h.complete_syncs();
    h.io.take_response(1).expect("created");
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("c"))
            .with_configuration_keys(None),
    ]);
    h.send(2, 4, RequestKind::DescribeConfigs(request));
    let ResponseKind::DescribeConfigs(response) = h.io.take_response(2).expect("answered") else {
        panic!()
    };
    let retention = response.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("listed");
    assert_eq!(retention.value.as_ref().map(|v| v.as_str()), Some("60000"));
    assert_eq!(retention.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
    let segment = response.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "segment.bytes")
        .expect("listed");
    assert_eq!(segment.config_source, 5, "DEFAULT_CONFIG");
}

/// IncrementalAlterConfigs of a topic (one op, `SET`, `DELETE` or `APPEND`).
fn alter_topic_config(topic: &str, key: &str, op: i8, value: Option<&str>) -> RequestKind {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let config = AlterableConfig::default()
        .with_name(StrBytes::from(key.to_string()))
        .with_config_operation(op)
        .with_value(value.map(|v| StrBytes::from(v.to_string())));
    let resource = AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from(topic.to_string()))
        .with_configs(vec![config]);
    RequestKind::IncrementalAlterConfigs(
        kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
            .with_resources(vec![resource]),
    )
}

fn alter_result(response: ResponseKind) -> (i16, Option<String>) {
    let ResponseKind::IncrementalAlterConfigs(response) = response else {
        panic!("{response:?}")
    };
    let result = &response.responses[0];
    let message = result
        .error_message
        .as_ref()
        .map(|m| m.as_str().to_string());
    (result.error_code, message)
}

#[test]
fn altered_configs_apply_to_the_replicas_are_answered_once_durable_and_survive_a_crash() {
    let mut h = Harness::new();
    h.create_topic("c", 1);
    h.send(
        1,
        1,
        alter_topic_config("c", "retention.ms", 0, Some("60000")),
    );
    assert!(h.io.take_response(1).is_none(), "answered before durable");
    h.complete_syncs();
    assert_eq!(
        alter_result(h.io.take_response(1).expect("answered")),
        (0, None)
    );
    let key = TopicPartition::new("c", 0);
    assert_eq!(
        h.node.partition(&key).unwrap().log().config().retention_ms,
        60_000
    );

    // A bad value and an unknown key are refused, naming the key; nothing changes.
    h.send(
        2,
        1,
        alter_topic_config("c", "retention.ms", 0, Some("soon")),
    );
    let (code, message) = alter_result(h.io.take_response(2).expect("answered at once"));
    assert_eq!(code, 40, "INVALID_CONFIG");
    assert!(message.unwrap().contains("retention.ms"));
    h.send(3, 1, alter_topic_config("c", "no.such.key", 0, Some("1")));
    assert_eq!(alter_result(h.io.take_response(3).unwrap()).0, 40);
    h.send(
        4,
        1,
        alter_topic_config("nope", "retention.ms", 0, Some("1")),
    );
    assert_eq!(
        alter_result(h.io.take_response(4).unwrap()).0,
        3,
        "UNKNOWN_TOPIC"
    );

    // A list key is appended to; a deleted key falls back to the broker default.
    h.send(
        5,
        1,
        alter_topic_config("c", "cleanup.policy", 2, Some("delete")),
    );
    h.send(6, 1, alter_topic_config("c", "retention.ms", 1, None));
    h.complete_syncs();
    assert_eq!(alter_result(h.io.take_response(5).unwrap()), (0, None));
    assert_eq!(alter_result(h.io.take_response(6).unwrap()), (0, None));
    let mut h = h.crash_and_restart(3);
    let topic = &h.node.cluster().topics["c"];
    assert_eq!(topic.config.get("retention.ms"), None);
    assert_eq!(topic.config.get("cleanup.policy"), Some("delete"));
    let default = odradek_log::LogConfig::default().retention_ms;
    assert_eq!(
        h.node.partition(&key).unwrap().log().config().retention_ms,
        default
    );

    // Every broker's default reaches the topic without an override, after a restart too.
    h.send(7, 1, alter_broker_default("log.retention.ms", "120000"));
    h.complete_syncs();
    let ResponseKind::IncrementalAlterConfigs(response) = h.io.take_response(7).unwrap() else {
        panic!()
    };
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
    let h = h.crash_and_restart(4);
    assert_eq!(
        h.node.partition(&key).unwrap().log().config().retention_ms,
        120_000
    );
}

#[test]
fn a_change_the_applied_state_already_shows_is_still_written_after_the_one_before_it() {
    // The first change is appended and not yet applied; the node's applied state has
    // no override, so the delete looks like no change. Answered from that state, the
    // delete would be "done" and the first change would then apply over it.
    let mut h = Harness::new();
    h.create_topic("c", 1);
    h.send(
        1,
        1,
        alter_topic_config("c", "retention.ms", 0, Some("60000")),
    );
    h.send(2, 1, alter_topic_config("c", "retention.ms", 1, None));
    assert!(h.io.take_response(2).is_none(), "answered before durable");
    h.complete_syncs();
    assert_eq!(alter_result(h.io.take_response(1).unwrap()), (0, None));
    assert_eq!(alter_result(h.io.take_response(2).unwrap()), (0, None));
    assert_eq!(
        h.node.cluster().topics["c"].config.get("retention.ms"),
        None
    );
}

/// IncrementalAlterConfigs `SET` of every broker's default (`--entity-default`).
fn alter_broker_default(key: &str, value: &str) -> RequestKind {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let config = AlterableConfig::default()
        .with_name(StrBytes::from(key.to_string()))
        .with_value(Some(StrBytes::from(value.to_string())));
    let resource = AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(StrBytes::from_static_str(""))
        .with_configs(vec![config]);
    RequestKind::IncrementalAlterConfigs(
        kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
            .with_resources(vec![resource]),
    )
}

#[test]
fn a_compacted_topic_keeps_the_newest_value_of_every_key_and_refuses_keyless_records() {
    let mut h = Harness::new();
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "512"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    h.send(1, 7, create_topics("kv", 1, &configs));
    h.complete_syncs();
    h.io.take_response(1).expect("created");
    h.send(
        2,
        7,
        produce("kv", 0, -1, build_batch(0, None, &[b"no key"])),
    );
    h.complete_syncs();
    let (code, _) = produce_result(h.io.take_response(2).expect("answered"));
    assert_eq!(code, 87, "INVALID_RECORD");

    // 200 updates of 4 keys, one batch each: many segments of 512 bytes.
    for round in 0..200u64 {
        let key = format!("k{}", round % 4);
        let value = format!("v{round}");
        let records = [(Some(key.as_bytes()), value.as_bytes())];
        let batch = odradek_log::batch::build_batch_with_keys(0, None, records);
        h.send(100 + round, 7, produce("kv", 0, -1, batch));
        h.complete_syncs();
        let (code, _) = produce_result(h.io.take_response(100 + round).expect("answered"));
        assert_eq!(code, 0);
    }
    let key = TopicPartition::new("kv", 0);
    let before = h.node.partition(&key).unwrap().log().size_bytes();
    for _ in 0..500 {
        h.advance(Duration::from_millis(10));
        h.complete_syncs();
    }
    let log = h.node.partition(&key).unwrap().log();
    assert!(
        log.size_bytes() < before / 2,
        "{} of {before} bytes left",
        log.size_bytes()
    );
    assert_eq!(log.log_end_offset(), 200, "offsets never change");

    // Every key's newest value is read back; what the cleaner removed is not.
    let mut newest = std::collections::BTreeMap::new();
    let mut offset = 0;
    while offset < 200 {
        h.send(9, 12, fetch("kv", 0, offset, 0));
        let (code, _, records) = fetch_result(h.io.take_response(9).expect("answered"));
        assert_eq!(code, 0);
        odradek_log::batch::for_each_record(&records, |record| {
            newest.insert(record.key.unwrap().to_vec(), record.value.unwrap().to_vec());
            Ok::<(), odradek_log::batch::RecordsError>(())
        })
        .unwrap();
        // Clients go on after the last batch, records in it or not.
        let mut next = offset;
        let mut rest = &records[..];
        while !rest.is_empty() {
            let header = odradek_log::batch::BatchHeader::parse(rest).unwrap();
            next = header.last_offset() + 1;
            rest = &rest[header.size_bytes() as usize..];
        }
        assert!(next > offset, "fetch at {offset} made no progress");
        offset = next;
    }
    for (index, key) in ["k0", "k1", "k2", "k3"].iter().enumerate() {
        let value = format!("v{}", 196 + index);
        assert_eq!(
            newest.get(key.as_bytes()),
            Some(&value.into_bytes()),
            "{key}"
        );
    }
}

#[test]
fn deleted_topics_are_gone_from_disk_and_metadata() {
    let mut h = Harness::new();
    h.create_topic("doomed", 2);
    assert!(h.io.disk.exists("doomed-1"));
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(name("doomed"))),
        ])
        .with_timeout_ms(30_000);
    h.send(1, 6, RequestKind::DeleteTopics(request));
    h.complete_syncs();
    let ResponseKind::DeleteTopics(response) = h.io.take_response(1).expect("answered") else {
        panic!()
    };
    assert_eq!(response.responses[0].error_code, 0);
    assert!(!h.io.disk.exists("doomed-0"));
    assert!(!h.io.disk.exists("doomed-1"));
    let request = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    h.send(2, 12, request);
    let ResponseKind::Metadata(response) = h.io.take_response(2).expect("answered") else {
        panic!()
    };
    assert!(response.topics.is_empty());
}

#[test]
fn idempotent_producer_retries_are_deduplicated_and_gaps_refused() {
    let mut h = Harness::new();
    h.create_topic("idem", 1);
    h.send(1, 4, init_producer_id());
    h.complete_syncs();
    let ResponseKind::InitProducerId(init) = h.io.take_response(1).expect("answered") else {
        panic!()
    };
    assert_eq!(init.error_code, 0);
    let producer = (init.producer_id.0, init.producer_epoch, 0);
    let first = build_batch(1, Some(producer), &[b"a", b"b"]);
    h.send(2, 9, produce("idem", 0, -1, first.clone()));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(2).expect("answered")),
        (0, 0)
    );
    // The same batch again (a retry after a lost response): same offset, not written twice.
    h.send(3, 9, produce("idem", 0, -1, first));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(3).expect("answered")),
        (0, 0)
    );
    // A gap in sequence numbers is refused.
    h.send(
        4,
        9,
        produce(
            "idem",
            0,
            -1,
            build_batch(1, Some((producer.0, producer.1, 5)), &[b"c"]),
        ),
    );
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(4).expect("answered")).0,
        ErrorCode::OutOfOrderSequenceNumber.code()
    );
    h.send(5, 7, list_offsets("idem", 0, -1));
    let ResponseKind::ListOffsets(response) = h.io.take_response(5).expect("answered") else {
        panic!()
    };
    assert_eq!(
        response.topics[0].partitions[0].offset, 2,
        "two records, not four"
    );
}

#[test]
fn producer_ids_are_never_reused_across_restarts() {
    let mut h = Harness::new();
    let mut seen = Vec::new();
    for id in 0..3 {
        h.send(id, 4, init_producer_id());
        h.complete_syncs();
        let ResponseKind::InitProducerId(init) = h.io.take_response(id).expect("answered") else {
            panic!()
        };
        seen.push(init.producer_id.0);
    }
    let mut h = h.crash_and_restart(3);
    h.send(10, 4, init_producer_id());
    h.complete_syncs();
    let ResponseKind::InitProducerId(init) = h.io.take_response(10).expect("answered") else {
        panic!()
    };
    assert!(
        !seen.contains(&init.producer_id.0),
        "{} reused from {seen:?}",
        init.producer_id.0
    );
}

#[test]
fn list_offsets_earliest_latest_and_by_time() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(
        1,
        9,
        produce("t", 0, -1, build_batch(1_000, None, &[b"a", b"b"])),
    );
    h.send(2, 9, produce("t", 0, -1, build_batch(2_000, None, &[b"c"])));
    h.complete_syncs();
    let ask = |h: &mut Harness, id: u64, timestamp: i64| {
        h.send(id, 7, list_offsets("t", 0, timestamp));
        let ResponseKind::ListOffsets(response) = h.io.take_response(id).expect("answered") else {
            panic!()
        };
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        p.offset
    };
    assert_eq!(ask(&mut h, 10, -2), 0);
    assert_eq!(ask(&mut h, 11, -1), 3);
    assert_eq!(ask(&mut h, 12, 1_500), 2);
    assert_eq!(ask(&mut h, 13, 0), 0);
    assert_eq!(ask(&mut h, 14, 9_999), -1);
}

/// ListOffsets v1-v3 responses have no leader_epoch field: it must stay -1 there, or
/// the response cannot be encoded and the client's connection is closed (aiokafka
/// 0.14 asks v3 in seek_to_beginning and end_offsets).
#[test]
fn list_offsets_before_v4_leaves_leader_epoch_unset() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 9, produce("t", 0, -1, build_batch(1_000, None, &[b"a"])));
    h.complete_syncs();
    for (id, version, leader_epoch) in [(10, 1, -1), (11, 3, -1), (12, 4, 1), (13, 7, 1)] {
        h.send(id, version, list_offsets("t", 0, -1));
        let ResponseKind::ListOffsets(response) = h.io.take_response(id).expect("answered") else {
            panic!()
        };
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.offset, 1, "v{version}");
        assert_eq!(p.leader_epoch, leader_epoch, "v{version}");
    }
}

#[test]
fn acknowledged_records_and_topics_survive_a_crash() {
    let mut h = Harness::new();
    h.create_topic("keep", 3);
    h.send(
        1,
        9,
        produce("keep", 2, -1, build_batch(1, None, &[b"acked"])),
    );
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("acked")),
        (0, 0)
    );
    // Appended, never synced, never acknowledged: may or may not survive.
    h.send(
        2,
        9,
        produce("keep", 2, -1, build_batch(1, None, &[b"unacked"])),
    );
    let mut h = h.crash_and_restart(11);
    h.send(3, 12, fetch("keep", 2, 0, 0));
    let (error, high_watermark, records) = fetch_result(h.io.take_response(3).expect("answered"));
    assert_eq!(error, 0);
    assert!(high_watermark >= 1);
    assert!(records.windows(5).any(|w| w == b"acked"));
    h.send(
        4,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    );
    let ResponseKind::Metadata(response) = h.io.take_response(4).expect("answered") else {
        panic!()
    };
    assert_eq!(response.topics[0].partitions.len(), 3);
}

#[test]
fn a_failed_fsync_fails_the_waiting_produce_with_a_storage_error() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 9, produce("t", 0, -1, build_batch(1, None, &[b"x"])));
    h.fail_next_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("answered")).0,
        ErrorCode::KafkaStorageError.code()
    );
    // The failed log refuses further writes until a restart recovers it.
    h.send(2, 9, produce("t", 0, -1, build_batch(1, None, &[b"y"])));
    assert_eq!(
        produce_result(h.io.take_response(2).expect("answered")).0,
        ErrorCode::KafkaStorageError.code()
    );
}

#[test]
fn corrupt_batches_and_bad_acks_are_refused_and_nothing_is_written() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let mut batch = build_batch(1, None, &[b"x"]);
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    h.send(1, 9, produce("t", 0, -1, batch));
    assert_eq!(
        produce_result(h.io.take_response(1).expect("answered")).0,
        ErrorCode::CorruptMessage.code()
    );
    h.send(2, 9, produce("t", 0, 2, build_batch(1, None, &[b"x"])));
    assert_eq!(
        produce_result(h.io.take_response(2).expect("answered")).0,
        ErrorCode::InvalidRequiredAcks.code()
    );
    h.send(3, 7, list_offsets("t", 0, -1));
    let ResponseKind::ListOffsets(response) = h.io.take_response(3).expect("answered") else {
        panic!()
    };
    assert_eq!(response.topics[0].partitions[0].offset, 0);
}

#[test]
fn shutdown_with_a_sync_in_flight_closes_cleanly_and_loses_nothing_acknowledged() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    h.send(1, 9, produce("t", 0, -1, build_batch(1, None, &[b"acked"])));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("acked")),
        (0, 0)
    );
    // A second produce leaves a sync in flight when the node is told to stop.
    h.send(
        2,
        9,
        produce("t", 0, -1, build_batch(1, None, &[b"in flight"])),
    );
    h.node.shutdown(&mut h.io);
    // Later events are ignored, not answered.
    h.send(3, 12, fetch("t", 0, 0, 0));
    assert!(h.io.take_response(3).is_none());
    let mut io = h.io;
    io.responses.clear();
    let mut node = Node::open(&mut io, NodeConfig::default()).expect("reopens");
    let request = Request {
        api_version: 12,
        client_id: None,
        client_host: String::new(),
        principal: odradek_replication::request::ANONYMOUS.to_string(),
        listener: String::new(),
        body: fetch("t", 0, 0, 0),
    };
    node.handle(
        &mut io,
        Event::Client {
            id: RequestId(4),
            request,
        },
    );
    let (error, high_watermark, records) = fetch_result(io.take_response(4).expect("answered"));
    assert_eq!(error, 0);
    assert!(high_watermark >= 1);
    assert!(records.windows(5).any(|w| w == b"acked"));
}

// ---------------------------------------------------------------------------------------
// Consumer groups through the node: __consumer_offsets, the coordinator's appends and
// timers, and what survives a restart.

const OFFSETS: &str = "__consumer_offsets";

/// A node whose offsets topic has four partitions (Kafka's fifty would work the same).
fn group_harness() -> Harness {
    Harness::with_config(NodeConfig {
        group: GroupConfig {
            offsets_topic_num_partitions: 4,
            ..GroupConfig::default()
        },
        ..NodeConfig::default()
    })
}

/// A group harness with topic `t` (one partition), whose FindCoordinator for group
/// `g` (request 1) named this node.
fn group_harness_with_topic_t() -> Harness {
    let mut h = group_harness();
    h.create_topic("t", 1);
    let ResponseKind::FindCoordinator(found) = call(&mut h, 1, 3, find_coordinator_request("g"))
    else {
        panic!()
    };
    assert_eq!(found.error_code, 0);
    h
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// The response to request `id`, which must have been given.
fn answer(h: &mut Harness, id: u64) -> ResponseKind {
    h.node.check_invariants();
    h.io.take_response(id)
        .unwrap_or_else(|| panic!("request {id} is not answered"))
}

/// Sends a request, completes every sync it starts and returns its response.
fn call(h: &mut Harness, id: u64, version: i16, body: RequestKind) -> ResponseKind {
    h.send(id, version, body);
    h.complete_syncs();
    answer(h, id)
}

fn find_coordinator_request(group: &str) -> RequestKind {
    RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(text(group)))
}

/// JoinGroup (protocol "range", subscription bytes `b"subscription"`).
fn join_request(group: &str, member: &str, session_timeout_ms: i32) -> RequestKind {
    RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(group_id(group))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(text(member))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ]),
    )
}

fn joined(response: ResponseKind) -> JoinGroupResponse {
    let ResponseKind::JoinGroup(response) = response else {
        panic!("not a join response: {response:?}")
    };
    response
}

fn sync_request(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> RequestKind {
    RequestKind::SyncGroup(
        SyncGroupRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(generation)
            .with_member_id(text(member))
            .with_protocol_type(Some(text("consumer")))
            .with_protocol_name(Some(text("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(member, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(text(member))
                            .with_assignment(Bytes::from_static(bytes))
                    })
                    .collect(),
            ),
    )
}

fn synced(response: ResponseKind) -> (i16, Bytes) {
    let ResponseKind::SyncGroup(response) = response else {
        panic!("not a sync response: {response:?}")
    };
    (response.error_code, response.assignment)
}

fn heartbeat(h: &mut Harness, id: u64, group: &str, member: &str, generation: i32) -> i16 {
    let body = RequestKind::Heartbeat(
        HeartbeatRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(generation)
            .with_member_id(text(member)),
    );
    let ResponseKind::Heartbeat(response) = call(h, id, 4, body) else {
        panic!("not a heartbeat response")
    };
    response.error_code
}

/// OffsetCommit v8 of `topic`-0 at `offset` with `metadata`.
fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
    metadata: &str,
) -> RequestKind {
    RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(member))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(text(metadata))),
                    ]),
            ]),
    )
}

fn commit_error(response: ResponseKind) -> i16 {
    let ResponseKind::OffsetCommit(response) = response else {
        panic!("not an offset-commit response: {response:?}")
    };
    response.topics[0].partitions[0].error_code
}

/// OffsetFetch v5 of `topic`-0: (error, committed offset, metadata).
fn fetch_offset(h: &mut Harness, id: u64, group: &str, topic: &str) -> (i16, i64, String) {
    let body = RequestKind::OffsetFetch(
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(name(topic))
                    .with_partition_indexes(vec![0]),
            ])),
    );
    let ResponseKind::OffsetFetch(response) = call(h, id, 5, body) else {
        panic!("not an offset-fetch response")
    };
    if response.error_code != 0 {
        return (response.error_code, -1, String::new());
    }
    let partition = &response.topics[0].partitions[0];
    (
        partition.error_code,
        partition.committed_offset,
        partition
            .metadata
            .as_ref()
            .map_or(String::new(), |m| m.as_str().to_string()),
    )
}

/// DescribeGroups v5 of one group: (error, state, member ids).
fn describe_group(h: &mut Harness, id: u64, group: &str) -> (i16, String, Vec<String>) {
    let body = RequestKind::DescribeGroups(
        DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
    );
    let ResponseKind::DescribeGroups(response) = call(h, id, 5, body) else {
        panic!("not a describe-groups response")
    };
    let described = &response.groups[0];
    (
        described.error_code,
        described.group_state.as_str().to_string(),
        described
            .members
            .iter()
            .map(|m| m.member_id.as_str().to_string())
            .collect(),
    )
}

/// A member alone in `group`: JoinGroup v3 (the member id comes with the answer, after
/// the initial rebalance delay), SyncGroup with its assignment. (member id, generation)
fn join_alone(h: &mut Harness, group: &str, session_timeout_ms: i32) -> (String, i32) {
    h.send(1000, 3, join_request(group, "", session_timeout_ms));
    h.advance(Duration::from_millis(3_000));
    let response = joined(answer(h, 1000));
    assert_eq!(response.error_code, 0);
    let member = response.member_id.as_str().to_string();
    assert_eq!(response.leader.as_str(), member);
    let assignment: &[(&str, &'static [u8])] = &[(&member, b"all of it")];
    let (error, bytes) = synced(call(
        h,
        1001,
        3,
        sync_request(group, &member, response.generation_id, assignment),
    ));
    assert_eq!((error, bytes.as_ref()), (0, &b"all of it"[..]));
    (member, response.generation_id)
}

#[test]
fn find_coordinator_creates_the_offsets_topic_and_names_this_node() {
    let mut h = group_harness();
    assert!(!h.node.cluster().topics.contains_key(OFFSETS));
    h.send(1, 3, find_coordinator_request("readers"));
    assert!(
        h.io.take_response(1).is_none(),
        "answered once the topic's creation is durable"
    );
    h.complete_syncs();
    let ResponseKind::FindCoordinator(found) = answer(&mut h, 1) else {
        panic!("not a find-coordinator response")
    };
    assert_eq!(found.error_code, 0, "{:?}", found.error_message);
    assert_eq!(
        (found.node_id.0, found.host.as_str(), found.port),
        (1, "127.0.0.1", 9092)
    );
    let topic = &h.node.cluster().topics[OFFSETS];
    assert_eq!(topic.partitions, 4, "offsets.topic.num.partitions");
    for partition in 0..4 {
        let local = h
            .node
            .partition(&TopicPartition::new(OFFSETS, partition))
            .expect("every offsets partition is here");
        assert_eq!(local.leader(), Some(1), "{OFFSETS}-{partition} led here");
    }

    // v4 asks for several keys at once; the topic exists, so no creation and no wait.
    let find = FindCoordinatorRequest::default().with_coordinator_keys(vec![
        text("a"),
        text("b"),
        text("c"),
    ]);
    h.send(2, 4, RequestKind::FindCoordinator(find));
    let ResponseKind::FindCoordinator(found) = answer(&mut h, 2) else {
        panic!("not a find-coordinator response")
    };
    let keys: Vec<(&str, i16, i32)> = found
        .coordinators
        .iter()
        .map(|c| (c.key.as_str(), c.error_code, c.node_id.0))
        .collect();
    assert_eq!(keys, [("a", 0, 1), ("b", 0, 1), ("c", 0, 1)]);

    // A transaction coordinator is not served.
    let find = FindCoordinatorRequest::default()
        .with_key(text("tx"))
        .with_key_type(1);
    h.send(3, 3, RequestKind::FindCoordinator(find));
    let ResponseKind::FindCoordinator(found) = answer(&mut h, 3) else {
        panic!("not a find-coordinator response")
    };
    assert_ne!(found.error_code, 0);
    assert_eq!(
        h.node.cluster().topics[OFFSETS].partitions,
        4,
        "asked again, not created again"
    );
}

#[test]
fn a_group_joins_syncs_commits_and_fetches_through_the_node() {
    let mut h = group_harness_with_topic_t();

    // JoinGroup v4+: a first join without a member id is told its id (KIP-394).
    let first = joined(call(&mut h, 2, 5, join_request("g", "", 10_000)));
    assert_eq!(first.error_code, GroupErrorCode::MemberIdRequired.code());
    let member = first.member_id.as_str().to_string();
    assert!(!member.is_empty());
    // The second join waits out group.initial.rebalance.delay.ms (3 s), on the node's
    // timer.
    h.send(3, 5, join_request("g", &member, 10_000));
    h.advance(Duration::from_millis(2_900));
    assert!(h.io.take_response(3).is_none(), "answered before the delay");
    h.advance(Duration::from_millis(100));
    let second = joined(answer(&mut h, 3));
    assert_eq!(second.error_code, 0);
    assert_eq!(second.member_id.as_str(), member);
    assert_eq!(second.leader.as_str(), member);
    assert_eq!(second.generation_id, 1);
    assert_eq!(
        second.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    assert_eq!(second.members.len(), 1, "the leader sees every member");
    assert_eq!(second.members[0].metadata.as_ref(), b"subscription");

    // The leader's SyncGroup stores the assignment in __consumer_offsets and is answered
    // once that record is durable.
    let assignment: &[(&str, &'static [u8])] = &[(&member, b"t-0")];
    h.send(4, 5, sync_request("g", &member, 1, assignment));
    assert!(
        h.io.take_response(4).is_none(),
        "SyncGroup answered before the group record is durable"
    );
    h.complete_syncs();
    assert_eq!(synced(answer(&mut h, 4)), (0, Bytes::from_static(b"t-0")));
    assert_eq!(heartbeat(&mut h, 5, "g", &member, 1), 0);

    // A commit is answered once durable, and fetched back with its metadata.
    h.send(6, 8, commit_request("g", &member, 1, "t", 42, "note"));
    assert!(
        h.io.take_response(6).is_none(),
        "OffsetCommit answered before it is durable"
    );
    h.complete_syncs();
    assert_eq!(commit_error(answer(&mut h, 6)), 0);
    assert_eq!(fetch_offset(&mut h, 7, "g", "t"), (0, 42, "note".into()));
    // OffsetFetch v8 asks per group.
    let body = RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(group_id("g"))
            .with_topics(Some(vec![
                OffsetFetchRequestTopics::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0]),
            ])),
    ]));
    let ResponseKind::OffsetFetch(fetched) = call(&mut h, 8, 8, body) else {
        panic!()
    };
    let partition = &fetched.groups[0].topics[0].partitions[0];
    assert_eq!((partition.error_code, partition.committed_offset), (0, 42));

    // A commit from an old generation or a stranger is refused and changes nothing.
    assert_eq!(
        commit_error(call(
            &mut h,
            9,
            8,
            commit_request("g", &member, 0, "t", 7, "")
        )),
        GroupErrorCode::IllegalGeneration.code()
    );
    assert_eq!(
        commit_error(call(
            &mut h,
            10,
            8,
            commit_request("g", "stranger", 1, "t", 7, "")
        )),
        GroupErrorCode::UnknownMemberId.code()
    );
    assert_eq!(fetch_offset(&mut h, 11, "g", "t"), (0, 42, "note".into()));
    assert_eq!(
        describe_group(&mut h, 12, "g"),
        (0, "Stable".into(), vec![member.clone()])
    );
    // The coordinator's own view agrees with what the clients were told.
    assert!(h.node.coordinator().group("g").is_some());
}

/// Commits 42 (acknowledged) then 43 (appended, never synced) for a member alone in
/// group "g". Returns (member, generation).
fn commit_acked_then_unacked(h: &mut Harness) -> (String, i32) {
    h.create_topic("t", 1);
    let ResponseKind::FindCoordinator(found) = call(h, 1, 3, find_coordinator_request("g")) else {
        panic!()
    };
    assert_eq!(found.error_code, 0);
    let (member, generation) = join_alone(h, "g", 30_000);
    assert_eq!(
        commit_error(call(
            h,
            2,
            8,
            commit_request("g", &member, generation, "t", 42, "acked")
        )),
        0
    );
    h.send(
        3,
        8,
        commit_request("g", &member, generation, "t", 43, "unacked"),
    );
    assert!(h.io.take_response(3).is_none(), "not durable, not answered");
    (member, generation)
}

#[test]
fn committed_offsets_and_the_group_survive_a_clean_restart() {
    let mut h = group_harness();
    let (member, _) = commit_acked_then_unacked(&mut h);
    let mut h = h.restart();
    // A clean shutdown lets the append in flight finish or not; the acknowledged
    // commit is there either way, and the group is rebuilt from the log.
    let (error, offset, metadata) = fetch_offset(&mut h, 10, "g", "t");
    assert_eq!(error, 0);
    assert!(
        (offset, metadata.as_str()) == (42, "acked")
            || (offset, metadata.as_str()) == (43, "unacked"),
        "{offset} {metadata:?}"
    );
    let (error, state, members) = describe_group(&mut h, 11, "g");
    assert_eq!((error, members), (0, vec![member]));
    assert_eq!(state, "Stable");
    // The member rebuilt from the log has a session again, kept by the new node's
    // timers: silent for longer than its 30 s session, it is expelled.
    for _ in 0..29 {
        h.advance(Duration::from_millis(1_000));
        h.complete_syncs();
    }
    assert_eq!(describe_group(&mut h, 12, "g").1, "Stable");
    for _ in 0..2 {
        h.advance(Duration::from_millis(1_000));
        h.complete_syncs();
    }
    // Seen before any request could have made the coordinator look at its clock.
    let group = h.node.coordinator().group("g").expect("loaded");
    assert_eq!(group.state(), GroupState::Empty, "expelled on the timer");
    assert!(group.members().is_empty());
    assert_eq!(
        describe_group(&mut h, 13, "g"),
        (0, "Empty".into(), Vec::new())
    );
    // Its commits outlive it.
    let (error, offset, _) = fetch_offset(&mut h, 14, "g", "t");
    assert!(error == 0 && offset >= 42);
}

#[test]
fn an_acknowledged_commit_survives_a_crash_and_an_unacknowledged_one_may_not() {
    // Every unsynced write lost: exactly the acknowledged commit is left.
    let mut h = group_harness();
    let (member, generation) = commit_acked_then_unacked(&mut h);
    let none_kept = CrashOptions {
        keep_file_op_per_mille: 0,
        tear_write_per_mille: 0,
        keep_dir_op_per_mille: 0,
    };
    let mut h = h.crash_and_restart_with(5, none_kept);
    assert_eq!(fetch_offset(&mut h, 10, "g", "t"), (0, 42, "acked".into()));
    let (error, _, members) = describe_group(&mut h, 11, "g");
    assert_eq!((error, members), (0, vec![member.clone()]));
    // The member carries on in its generation after the coordinator came back.
    assert_eq!(heartbeat(&mut h, 12, "g", &member, generation), 0);
    assert_eq!(
        commit_error(call(
            &mut h,
            13,
            8,
            commit_request("g", &member, generation, "t", 44, "after")
        )),
        0
    );
    assert_eq!(fetch_offset(&mut h, 14, "g", "t"), (0, 44, "after".into()));

    // Random subsets of the unsynced writes kept (some torn): never below the
    // acknowledged commit.
    for seed in 0..20 {
        let mut h = group_harness();
        commit_acked_then_unacked(&mut h);
        let mut h = h.crash_and_restart(seed);
        let (error, offset, _) = fetch_offset(&mut h, 10, "g", "t");
        assert_eq!(error, 0, "seed {seed}");
        assert!(offset == 42 || offset == 43, "seed {seed}: {offset}");
    }
}

#[test]
fn the_offsets_topic_is_internal() {
    let mut h = group_harness();
    // Not creatable by hand before the broker creates it.
    let ResponseKind::CreateTopics(created) = call(&mut h, 1, 7, create_topics(OFFSETS, 4, &[]))
    else {
        panic!()
    };
    assert_ne!(created.topics[0].error_code, 0, "explicit creation refused");
    assert!(!h.node.cluster().topics.contains_key(OFFSETS));
    call(&mut h, 2, 3, find_coordinator_request("g"));
    assert!(h.node.cluster().topics.contains_key(OFFSETS));

    assert_eq!(
        produce_result(call(
            &mut h,
            3,
            9,
            produce(OFFSETS, 0, -1, build_batch(1, None, &[b"x"]))
        )),
        (ErrorCode::InvalidTopicException.code(), -1)
    );
    let delete = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(name(OFFSETS))),
        ])
        .with_timeout_ms(30_000);
    let ResponseKind::DeleteTopics(deleted) = call(&mut h, 4, 6, RequestKind::DeleteTopics(delete))
    else {
        panic!()
    };
    assert_ne!(deleted.responses[0].error_code, 0, "deletion refused");
    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name(OFFSETS))
                .with_count(8),
        ]);
    let ResponseKind::CreatePartitions(grown) =
        call(&mut h, 5, 3, RequestKind::CreatePartitions(grow))
    else {
        panic!()
    };
    assert_ne!(grown.results[0].error_code, 0, "more partitions refused");
    assert_eq!(h.node.cluster().topics[OFFSETS].partitions, 4);
    assert!(h.io.disk.exists(&format!("{OFFSETS}-3")));

    h.create_topic("plain", 1);
    let ResponseKind::Metadata(metadata) = call(
        &mut h,
        6,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!()
    };
    let internal: Vec<(&str, bool)> = metadata
        .topics
        .iter()
        .map(|t| (t.name.as_ref().map_or("", |n| n.0.as_str()), t.is_internal))
        .collect();
    assert!(internal.contains(&(OFFSETS, true)), "{internal:?}");
    assert!(internal.contains(&("plain", false)), "{internal:?}");
}

#[test]
fn a_silent_member_is_expelled_at_its_session_timeout_by_the_node_timer() {
    let mut h = group_harness();
    call(&mut h, 1, 3, find_coordinator_request("g"));
    // Two members join together (v3: ids handed out directly) and both sync.
    h.send(2, 3, join_request("g", "", 6_000));
    h.send(3, 3, join_request("g", "", 6_000));
    // The second member arrived during the initial delay, which therefore runs once
    // more (Kafka's InitialDelayedJoin): both are answered after 6 s, not 3.
    h.advance(Duration::from_millis(3_000));
    assert!(h.io.take_response(2).is_none() && h.io.take_response(3).is_none());
    h.advance(Duration::from_millis(3_000));
    let (a, b) = (joined(answer(&mut h, 2)), joined(answer(&mut h, 3)));
    assert_eq!((a.error_code, b.error_code), (0, 0));
    assert_eq!(a.generation_id, b.generation_id);
    let generation = a.generation_id;
    let (leader, other) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    let (leader, other) = (
        leader.member_id.as_str().to_string(),
        other.member_id.as_str().to_string(),
    );
    let assignment: &[(&str, &'static [u8])] =
        &[(&leader, b"first half"), (&other, b"second half")];
    h.send(4, 3, sync_request("g", &other, generation, &[]));
    assert_eq!(
        synced(call(
            &mut h,
            5,
            3,
            sync_request("g", &leader, generation, assignment)
        )),
        (0, Bytes::from_static(b"first half"))
    );
    assert_eq!(
        synced(answer(&mut h, 4)),
        (0, Bytes::from_static(b"second half"))
    );

    // The leader heartbeats every two seconds; the other member says nothing more.
    let mut id = 10;
    let mut expelled_after = None;
    for step in 1..=10 {
        h.advance(Duration::from_millis(2_000));
        h.complete_syncs();
        // Looked at before the heartbeat: the timer alone must have noticed.
        let group = h.node.coordinator().group("g").expect("loaded");
        if group.state() == GroupState::PreparingRebalance {
            expelled_after = Some(step * 2_000);
            break;
        }
        assert_eq!(group.state(), GroupState::Stable);
        id += 1;
        assert_eq!(heartbeat(&mut h, id, "g", &leader, generation), 0);
    }
    // The other member's session (6 s from its last word, at its sync) ran out: the
    // group rebalances without it.
    assert_eq!(
        expelled_after,
        Some(6_000),
        "REBALANCE_IN_PROGRESS once the silent member's session ends"
    );
    assert_eq!(
        heartbeat(&mut h, 99, "g", &leader, generation),
        GroupErrorCode::RebalanceInProgress.code()
    );
    let (error, state, _) = describe_group(&mut h, 100, "g");
    assert_eq!((error, state.as_str()), (0, "PreparingRebalance"));
    let rejoined = joined(call(&mut h, 101, 3, join_request("g", &leader, 6_000)));
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, generation + 1);
    assert_eq!(rejoined.members.len(), 1, "only the leader is left");
    assert_eq!(rejoined.members[0].member_id.as_str(), leader);
    assert_eq!(
        heartbeat(&mut h, 102, "g", &other, generation),
        GroupErrorCode::UnknownMemberId.code()
    );
}

#[test]
fn deleted_groups_stay_deleted_after_a_restart() {
    let mut h = group_harness();
    h.create_topic("t", 1);
    call(&mut h, 1, 3, find_coordinator_request("g"));
    let (member, generation) = join_alone(&mut h, "g", 30_000);
    assert_eq!(
        commit_error(call(
            &mut h,
            2,
            8,
            commit_request("g", &member, generation, "t", 42, "")
        )),
        0
    );
    // A group with a member cannot be deleted; once it leaves, it can.
    let delete = || {
        RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![group_id("g")]),
        )
    };
    let ResponseKind::DeleteGroups(refused) = call(&mut h, 3, 2, delete()) else {
        panic!()
    };
    assert_eq!(
        refused.results[0].error_code,
        GroupErrorCode::NonEmptyGroup.code()
    );
    let leave = LeaveGroupRequest::default()
        .with_group_id(group_id("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(text(&member)),
        ]);
    let ResponseKind::LeaveGroup(left) = call(&mut h, 4, 5, RequestKind::LeaveGroup(leave)) else {
        panic!()
    };
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0));
    h.send(5, 2, delete());
    assert!(
        h.io.take_response(5).is_none(),
        "answered once the tombstones are durable"
    );
    h.complete_syncs();
    let ResponseKind::DeleteGroups(deleted) = answer(&mut h, 5) else {
        panic!()
    };
    assert_eq!(deleted.results[0].error_code, 0);
    assert_eq!(fetch_offset(&mut h, 6, "g", "t").1, -1);

    let mut h = h.crash_and_restart(9);
    assert!(
        h.node.coordinator().group("g").is_none(),
        "the tombstones were replayed"
    );
    assert_eq!(fetch_offset(&mut h, 7, "g", "t"), (0, -1, String::new()));
    let (_, state, members) = describe_group(&mut h, 8, "g");
    assert_eq!((state.as_str(), members.len()), ("Dead", 0));
}

#[test]
fn a_group_without_members_may_commit_and_is_listed() {
    // What an admin tool or a consumer using assign() does: generation -1, no member id.
    let mut h = group_harness();
    h.create_topic("t", 1);
    call(&mut h, 1, 3, find_coordinator_request("tool"));
    assert_eq!(
        commit_error(call(
            &mut h,
            2,
            8,
            commit_request("tool", "", -1, "t", 7, "by hand")
        )),
        0
    );
    assert_eq!(
        fetch_offset(&mut h, 3, "tool", "t"),
        (0, 7, "by hand".into())
    );
    let ResponseKind::ListGroups(listed) = call(
        &mut h,
        4,
        4,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    ) else {
        panic!()
    };
    let groups: Vec<(&str, &str)> = listed
        .groups
        .iter()
        .map(|g| (g.group_id.0.as_str(), g.group_state.as_str()))
        .collect();
    assert_eq!(listed.error_code, 0);
    assert_eq!(groups, [("tool", "Empty")]);
    let mut h = h.restart();
    assert_eq!(
        fetch_offset(&mut h, 5, "tool", "t"),
        (0, 7, "by hand".into())
    );
}

/// An OffsetCommit whose records' fsync fails is answered, and not with success: the
/// offsets partition went offline, so the coordinator gives its groups up and the
/// member hears NOT_COORDINATOR (Kafka's answer too), then looks the coordinator up
/// again. Nothing that was not durable is acknowledged.
#[test]
fn a_commit_whose_sync_fails_is_answered_not_coordinator() {
    let mut h = group_harness_with_topic_t();
    let (member, generation) = join_alone(&mut h, "g", 30_000);
    h.send(
        2,
        8,
        commit_request("g", &member, generation, "t", 42, "lost"),
    );
    assert!(h.io.take_response(2).is_none(), "not durable, not answered");
    h.fail_next_syncs();
    let response =
        h.io.take_response(2)
            .expect("answered once the sync failed");
    assert_eq!(commit_error(response), ErrorCode::NotCoordinator.code());
    assert_eq!(
        heartbeat(&mut h, 3, "g", &member, generation),
        ErrorCode::NotCoordinator.code(),
        "the offline partition's groups are given up"
    );
}

/// A broker alone formats its own directory on first start; the directory then names
/// the broker and the cluster, and a broker formatted for another cluster, or another
/// broker, refuses to start on it.
#[test]
fn a_broker_alone_formats_its_directory_and_refuses_one_of_another_cluster_or_broker() {
    let h = Harness::new();
    let Harness {
        mut node,
        mut io,
        config,
    } = h;
    let cluster_id = node.cluster().cluster_id.clone().expect("a cluster id");
    node.shutdown(&mut io);
    let text = String::from_utf8(
        odradek_log::segment::read_whole_file(&mut io, "meta.properties").unwrap(),
    )
    .unwrap();
    let identity = odradek_replication::identity::Identity::parse(&text).unwrap();
    assert_eq!(identity.node_id, 1);
    assert!(identity.directory_id.is_some(), "{text}");

    let write = |io: &mut TestIo, identity: &odradek_replication::identity::Identity| {
        odradek_log::partition::write_file_atomically(
            io,
            "",
            "meta.properties",
            identity.render().as_bytes(),
        )
        .unwrap();
    };

    // Named another cluster: the quorum's cluster-init record says otherwise.
    let other = odradek_replication::identity::Identity {
        cluster_id: Some(format!("not-{cluster_id}")),
        ..identity.clone()
    };
    write(&mut io, &other);
    let error = Node::open(&mut io, config.clone())
        .err()
        .expect("refuses another cluster");
    assert!(
        error
            .to_string()
            .contains(&format!("formatted for cluster not-{cluster_id}")),
        "{error}"
    );

    // Named its own: it opens.
    let same = odradek_replication::identity::Identity {
        cluster_id: Some(cluster_id),
        ..identity
    };
    write(&mut io, &same);
    Node::open(&mut io, config.clone()).expect("opens its own");

    // Another broker's id.
    let error = Node::open(
        &mut io,
        NodeConfig {
            node_id: 2,
            ..config
        },
    )
    .err()
    .expect("refuses");
    assert!(
        matches!(
            error,
            odradek_replication::NodeError::WrongNode {
                expected: 2,
                found: 1
            }
        ),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------
// OffsetForLeaderEpoch, DescribeCluster, DescribeLogDirs, OffsetDelete, LogAppendTime

/// OffsetForLeaderEpoch v4 for `t`-0: (error, leader epoch, end offset).
fn epoch_end(
    h: &mut Harness,
    id: u64,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> (i16, i32, i64) {
    use kafka_protocol::messages::OffsetForLeaderEpochRequest;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let body = RequestKind::OffsetForLeaderEpoch(
        OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(current_leader_epoch)
                            .with_leader_epoch(leader_epoch),
                    ]),
            ]),
    );
    let ResponseKind::OffsetForLeaderEpoch(response) = call(h, id, 4, body) else {
        panic!("not an offset-for-leader-epoch response")
    };
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.leader_epoch, answer.end_offset)
}

#[test]
fn kip_320_offset_for_leader_epoch_answers_the_end_of_each_epoch() {
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let (error, _) = produce_result(call(
        &mut h,
        1,
        9,
        produce("t", 0, -1, build_batch(0, None, &[b"a", b"b"])),
    ));
    assert_eq!(error, 0);
    let key = TopicPartition::new("t", 0);
    let epoch = h.node.partition(&key).expect("hosted").leader_epoch();
    let end = h
        .node
        .partition(&key)
        .expect("hosted")
        .log()
        .log_end_offset();
    // The current epoch ends at the log end; the client may or may not say its epoch.
    assert_eq!(epoch_end(&mut h, 2, epoch, epoch), (0, epoch, end));
    assert_eq!(epoch_end(&mut h, 3, -1, epoch), (0, epoch, end));
    // An epoch older than the log's first ends where the first starts (offset 0); one
    // never seen is undefined.
    assert_eq!(epoch_end(&mut h, 4, -1, epoch - 1), (0, epoch - 1, 0));
    assert_eq!(epoch_end(&mut h, 5, -1, epoch + 1), (0, -1, -1));
    // KIP-320 fencing: a client ahead of us, and one behind.
    let unknown = ErrorCode::UnknownLeaderEpoch.code();
    assert_eq!(epoch_end(&mut h, 6, epoch + 1, epoch).0, unknown);
    if epoch > 0 {
        let fenced = ErrorCode::FencedLeaderEpoch.code();
        assert_eq!(epoch_end(&mut h, 7, epoch - 1, epoch).0, fenced);
    }
    // The partition must exist.
    let mut h2 = Harness::new();
    let unknown_topic = ErrorCode::UnknownTopicOrPartition.code();
    assert_eq!(epoch_end(&mut h2, 8, -1, 1), (unknown_topic, -1, -1));
}

#[test]
fn describe_cluster_names_the_cluster_its_controller_and_brokers() {
    use kafka_protocol::messages::DescribeClusterRequest;
    let mut h = Harness::new();
    let ResponseKind::DescribeCluster(response) = call(
        &mut h,
        1,
        1,
        RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(response.error_code, 0);
    assert_eq!(
        Some(response.cluster_id.as_str()),
        h.node.cluster().cluster_id.as_deref()
    );
    assert_eq!(response.controller_id.0, 1);
    assert_eq!(response.cluster_authorized_operations, i32::MIN);
    let [broker] = response.brokers.as_slice() else {
        panic!("{response:?}")
    };
    assert_eq!(
        (
            broker.broker_id.0,
            broker.host.as_str(),
            broker.port,
            &broker.rack
        ),
        (1, "127.0.0.1", 9092, &None)
    );
    // A broker describes brokers, not controllers (KIP-919's endpoint type 2).
    let ResponseKind::DescribeCluster(refused) = call(
        &mut h,
        2,
        1,
        RequestKind::DescribeCluster(DescribeClusterRequest::default().with_endpoint_type(2)),
    ) else {
        panic!()
    };
    assert_eq!(refused.error_code, 115, "UNSUPPORTED_ENDPOINT_TYPE");
}

#[test]
fn describe_log_dirs_sizes_every_partition_in_the_one_data_directory() {
    use kafka_protocol::messages::DescribeLogDirsRequest;
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let mut h = Harness::new();
    h.create_topic("t", 2);
    let (error, _) = produce_result(call(
        &mut h,
        1,
        9,
        produce("t", 1, -1, build_batch(0, None, &[b"abc"])),
    ));
    assert_eq!(error, 0);
    let ResponseKind::DescribeLogDirs(all) = call(
        &mut h,
        2,
        4,
        RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None)),
    ) else {
        panic!()
    };
    let [dir] = all.results.as_slice() else {
        panic!("{all:?}")
    };
    assert_eq!((dir.error_code, dir.log_dir.as_str()), (0, "odradek-data"));
    assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1));
    let [topic] = dir.topics.as_slice() else {
        panic!("{dir:?}")
    };
    let sizes: Vec<(i32, i64, i64, bool)> = topic
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.partition_size,
                p.offset_lag,
                p.is_future_key,
            )
        })
        .collect();
    let size_of = |partition: i32| {
        let key = TopicPartition::new("t", partition);
        h.node.partition(&key).expect("hosted").log().size_bytes() as i64
    };
    assert!(
        size_of(1) > size_of(0),
        "the produced-to partition is larger"
    );
    assert_eq!(
        sizes,
        vec![(0, size_of(0), 0, false), (1, size_of(1), 0, false)]
    );
    // Only what is asked for, and only what is here.
    let asked = DescribableLogDirTopic::default()
        .with_topic(name("t"))
        .with_partitions(vec![1, 7]);
    let ResponseKind::DescribeLogDirs(one) = call(
        &mut h,
        3,
        1,
        RequestKind::DescribeLogDirs(
            DescribeLogDirsRequest::default().with_topics(Some(vec![asked])),
        ),
    ) else {
        panic!()
    };
    let partitions = &one.results[0].topics[0].partitions;
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].partition_index, 1);
}

/// OffsetDelete v0 of `topic`-0 from `group`: (group error, partition error).
fn delete_offset(h: &mut Harness, id: u64, group: &str, topic: &str) -> (i16, Option<i16>) {
    use kafka_protocol::messages::OffsetDeleteRequest;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let body = RequestKind::OffsetDelete(
        OffsetDeleteRequest::default()
            .with_group_id(group_id(group))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0),
                    ]),
            ]),
    );
    let ResponseKind::OffsetDelete(response) = call(h, id, 0, body) else {
        panic!("not an offset-delete response")
    };
    let partition = response
        .topics
        .first()
        .map(|topic| topic.partitions[0].error_code);
    (response.error_code, partition)
}

#[test]
fn kip_496_offset_delete_writes_tombstones_that_survive_a_restart() {
    let mut h = group_harness_with_topic_t();
    // A group that only commits (no members), as `assign()` consumers make.
    assert_eq!(
        commit_error(call(
            &mut h,
            2,
            8,
            commit_request("g", "", -1, "t", 42, "m")
        )),
        0
    );
    assert_eq!(fetch_offset(&mut h, 3, "g", "t").1, 42);
    assert_eq!(delete_offset(&mut h, 4, "g", "t"), (0, Some(0)));
    assert_eq!(fetch_offset(&mut h, 5, "g", "t").1, -1);
    // Nothing to delete is fine too; a group that does not exist is not.
    assert_eq!(delete_offset(&mut h, 6, "g", "t"), (0, Some(0)));
    let not_found = GroupErrorCode::GroupIdNotFound.code();
    assert_eq!(delete_offset(&mut h, 7, "nobody", "t"), (not_found, None));
    // The tombstone is in __consumer_offsets: a restart replays it.
    let mut h = h.restart();
    assert_eq!(fetch_offset(&mut h, 8, "g", "t").1, -1);
    // A commit after the deletion stands.
    assert_eq!(
        commit_error(call(&mut h, 9, 8, commit_request("g", "", -1, "t", 50, ""))),
        0
    );
    assert_eq!(fetch_offset(&mut h, 10, "g", "t").1, 50);
}

#[test]
fn kip_496_offsets_of_a_subscribed_topic_are_not_deleted() {
    let mut h = group_harness_with_topic_t();
    // ConsumerProtocolSubscription v0: topics ["t"], null user data.
    let subscription: &'static [u8] = &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
    let join = RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(group_id("g"))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(text(""))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(Bytes::from_static(subscription)),
            ]),
    );
    h.send(2, 3, join);
    h.advance(Duration::from_millis(3_000));
    let joined = joined(answer(&mut h, 2));
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.as_str().to_string();
    let assignment: &[(&str, &'static [u8])] = &[(&member, b"t-0")];
    let sync = sync_request("g", &member, joined.generation_id, assignment);
    assert_eq!(synced(call(&mut h, 3, 3, sync)).0, 0);
    let commit = commit_request("g", &member, joined.generation_id, "t", 7, "");
    assert_eq!(commit_error(call(&mut h, 4, 8, commit)), 0);
    let subscribed = GroupErrorCode::GroupSubscribedToTopic.code();
    assert_eq!(delete_offset(&mut h, 5, "g", "t"), (0, Some(subscribed)));
    assert_eq!(fetch_offset(&mut h, 6, "g", "t").1, 7);
    // A topic nobody subscribes to may go while the group is Stable.
    h.create_topic("u", 1);
    let commit = commit_request("g", &member, joined.generation_id, "u", 9, "");
    assert_eq!(commit_error(call(&mut h, 7, 8, commit)), 0);
    assert_eq!(delete_offset(&mut h, 8, "g", "u"), (0, Some(0)));
    assert_eq!(fetch_offset(&mut h, 9, "g", "u").1, -1);
}

#[test]
fn log_append_time_topics_keep_the_brokers_time() {
    let mut h = Harness::new();
    h.send(
        1,
        7,
        create_topics("t", 1, &[("message.timestamp.type", "LogAppendTime")]),
    );
    h.complete_syncs();
    let ResponseKind::CreateTopics(created) = answer(&mut h, 1) else {
        panic!()
    };
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    let now_ms = h.io.wall_ms;
    let ResponseKind::Produce(produced) = call(
        &mut h,
        2,
        9,
        produce("t", 0, -1, build_batch(5, None, &[b"a", b"b"])),
    ) else {
        panic!()
    };
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.log_append_time_ms, now_ms);
    let (error, _, bytes) = fetch_result(call(&mut h, 3, 12, fetch("t", 0, 0, 0)));
    assert_eq!(error, 0);
    let header = odradek_log::batch::validate(&bytes, u32::MAX).expect("a valid batch");
    assert!(header.is_log_append_time());
    assert_eq!((header.max_timestamp, header.base_timestamp), (now_ms, 5));
    // An idempotent producer's retry is answered with its first append's time.
    let idempotent = build_batch(5, Some((42, 0, 0)), &[b"i"]);
    let first = produce_time(call(&mut h, 10, 9, produce("t", 0, -1, idempotent.clone())));
    h.io.wall_ms += 1_000;
    let retried = produce_time(call(&mut h, 11, 9, produce("t", 0, -1, idempotent)));
    assert_eq!((first, retried), (now_ms, now_ms));
    // A CreateTime topic keeps the producer's time and answers -1.
    h.create_topic("c", 1);
    let ResponseKind::Produce(produced) = call(
        &mut h,
        4,
        9,
        produce("c", 0, -1, build_batch(5, None, &[b"a"])),
    ) else {
        panic!()
    };
    assert_eq!(
        produced.responses[0].partition_responses[0].log_append_time_ms,
        -1
    );
    // Only Kafka's two spellings are accepted.
    h.send(
        5,
        7,
        create_topics("bad", 1, &[("message.timestamp.type", "WallClock")]),
    );
    h.complete_syncs();
    let ResponseKind::CreateTopics(refused) = answer(&mut h, 5) else {
        panic!()
    };
    assert_eq!(
        refused.topics[0].error_code,
        ErrorCode::InvalidConfig.code()
    );
}

/// The `log_append_time_ms` of partition 0 of a produce answer, which must be no error.
fn produce_time(response: ResponseKind) -> i64 {
    let ResponseKind::Produce(produced) = response else {
        panic!("{response:?}")
    };
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0, "{partition:?}");
    partition.log_append_time_ms
}

/// `log.message.timestamp.type`, every broker's default changed at run time, reaches the
/// topics without an override (and not one that says CreateTime).
#[test]
fn the_brokers_default_timestamp_type_applies_to_topics_without_an_override() {
    let mut h = Harness::new();
    h.create_topic("plain", 1);
    h.send(
        1,
        7,
        create_topics("own", 1, &[("message.timestamp.type", "CreateTime")]),
    );
    h.complete_syncs();
    h.io.take_response(1).expect("created");
    h.send(
        2,
        1,
        alter_broker_default("log.message.timestamp.type", "LogAppendTime"),
    );
    h.complete_syncs();
    let ResponseKind::IncrementalAlterConfigs(altered) = h.io.take_response(2).unwrap() else {
        panic!()
    };
    assert_eq!(altered.responses[0].error_code, 0, "{altered:?}");
    let now_ms = h.io.wall_ms;
    for (id, topic, stamped) in [(3, "plain", now_ms), (4, "own", -1)] {
        let ResponseKind::Produce(produced) = call(
            &mut h,
            id,
            9,
            produce(topic, 0, -1, build_batch(5, None, &[b"a"])),
        ) else {
            panic!()
        };
        let partition = &produced.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.log_append_time_ms),
            (0, stamped),
            "{topic}"
        );
    }
}
