//! The broker node, one event at a time, over an in-memory disk.
//!
//! Each test drives a real [`Node`] through [`TestIo`]: a `MemDisk`, a clock that moves
//! only when the test says so, timers the test fires, and every response captured. No
//! threads and no wall clock, so each test is exact and repeatable.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest,
    InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest, ProducerId,
    RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::build_batch;
use odradek_log::io::{Disk, DiskError, Duration, Instant, Io, TimerId};
use odradek_log::mem_disk::MemDisk;
use odradek_replication::error::ErrorCode;
use odradek_replication::peer::{BrokerId, PeerMessage};
use odradek_replication::{Event, Node, NodeConfig, NodeIo, Request, RequestId};

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
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(NodeConfig::default())
    }

    fn with_config(config: NodeConfig) -> Harness {
        let mut io = TestIo::new(7);
        io.disk.sync_dir_now("").expect("root");
        let node = Node::open(&mut io, config).expect("opens");
        Harness { node, io }
    }

    fn send(&mut self, id: u64, version: i16, body: RequestKind) {
        let request = Request {
            api_version: version,
            client_id: None,
            client_host: String::new(),
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
        let Harness { mut io, .. } = self;
        io.disk.crash(seed);
        io.responses.clear();
        io.timers.clear();
        let node = Node::open(&mut io, NodeConfig::default()).expect("reopens after crash");
        Harness { node, io }
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

#[test]
fn produce_to_a_missing_topic_creates_it_when_auto_create_is_on() {
    let mut h = Harness::new();
    h.send(1, 9, produce("auto", 0, -1, build_batch(1, None, &[b"v"])));
    h.complete_syncs();
    assert_eq!(
        produce_result(h.io.take_response(1).expect("answered")),
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
