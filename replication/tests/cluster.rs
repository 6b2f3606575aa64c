//! Three brokers in one process: the metadata quorum elects a controller, a topic with
//! replication factor 3 is created through it, an acks=all write commits on a quorum,
//! the partition leader dies, a new one is elected and keeps every acknowledged
//! record, and the dead broker comes back and catches up.
//!
//! The world is hand-driven and deterministic: bundles are delivered after every
//! step, every sync completes, and the clock moves one Raft tick at a time. The
//! simulator runs the same nodes under faults; this test shows the happy path works
//! end to end through the real request handlers.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, FetchRequest, FindCoordinatorRequest, GroupId,
    JoinGroupRequest, MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetFetchRequest,
    ProduceRequest, RequestKind, ResponseKind, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::{BatchHeader, build_batch};
use odradek_log::io::{Disk, Duration, Instant, Io, TimerId};
use odradek_log::mem_disk::MemDisk;
use odradek_replication::group::GroupConfig;
use odradek_replication::identity;
use odradek_replication::peer::ClientEndpoint;
use odradek_replication::peer::{BrokerId, PeerMessage};
use odradek_replication::{Event, Node, NodeConfig, NodeError, NodeIo, Request, RequestId};

struct BrokerIo {
    disk: MemDisk,
    now: Instant,
    wall_ms: i64,
    random: u64,
    timers: Vec<(Instant, TimerId)>,
    responses: Vec<(RequestId, ResponseKind)>,
    sent: Vec<(BrokerId, PeerMessage)>,
}

odradek_log::forward_disk!(BrokerIo => disk);

impl Io for BrokerIo {
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
        self.random >> 11
    }
    fn set_timer(&mut self, at: Instant, timer: TimerId) {
        self.timers.push((at, timer));
    }
}

impl NodeIo for BrokerIo {
    fn respond(&mut self, id: RequestId, response: ResponseKind) {
        self.responses.push((id, response));
    }
    fn send(&mut self, to: BrokerId, message: PeerMessage) {
        self.sent.push((to, message));
    }
}

struct Broker {
    io: BrokerIo,
    node: Option<Node>,
}

struct Cluster {
    brokers: BTreeMap<i32, Broker>,
    next_request: u64,
    /// A broker cut off from the others: bundles to and from it are dropped.
    isolated: Option<i32>,
}

fn config(node_id: i32) -> NodeConfig {
    NodeConfig {
        node_id,
        // Two client listeners: an internal one (the first, which requests that name
        // none are answered with) and an external one on another host and port.
        endpoints: vec![
            ClientEndpoint {
                listener: "PLAINTEXT".to_string(),
                host: "127.0.0.1".to_string(),
                port: 9090 + node_id,
            },
            ClientEndpoint {
                listener: "EXTERNAL".to_string(),
                host: format!("broker-{node_id}.example"),
                port: 19090 + node_id,
            },
        ],
        voters: vec![1, 2, 3],
        // The cleaner looks for dirty logs every half second, not Kafka's 15 s.
        log_cleaner_backoff_ms: 500,
        group: GroupConfig {
            offsets_topic_num_partitions: 3,
            group_initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        },
        ..NodeConfig::default()
    }
}

impl Cluster {
    fn new() -> Cluster {
        let mut brokers = BTreeMap::new();
        for id in 1..=3 {
            let mut io = BrokerIo {
                disk: MemDisk::new(u64::try_from(id).unwrap()),
                now: Instant::ZERO,
                wall_ms: 1_700_000_000_000,
                random: u64::try_from(id).unwrap() * 7919,
                timers: Vec::new(),
                responses: Vec::new(),
                sent: Vec::new(),
            };
            io.disk.sync_dir_now("").expect("root");
            let directory_id = identity::random_id(&mut io);
            identity::format(&mut io, id, Some("test-cluster"), directory_id).expect("formats");
            let node = Node::open(&mut io, config(id)).expect("opens");
            brokers.insert(
                id,
                Broker {
                    io,
                    node: Some(node),
                },
            );
        }
        Cluster {
            brokers,
            next_request: 1,
            isolated: None,
        }
    }

    /// Delivers bundles and completes syncs until nothing moves.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            let ids: Vec<i32> = self.brokers.keys().copied().collect();
            for &id in &ids {
                let broker = self.brokers.get_mut(&id).unwrap();
                let Some(node) = broker.node.as_mut() else {
                    broker.io.sent.clear();
                    continue;
                };
                for completion in broker.io.disk.complete_all_syncs() {
                    moved = true;
                    node.handle(&mut broker.io, Event::Disk(completion));
                }
            }
            let mut bundles = Vec::new();
            for (&from, broker) in self.brokers.iter_mut() {
                for (to, message) in broker.io.sent.drain(..) {
                    bundles.push((from, to, message));
                }
            }
            for (from, to, message) in bundles {
                moved = true;
                if self.isolated.is_some_and(|cut| cut == from || cut == to) {
                    continue;
                }
                let Some(broker) = self.brokers.get_mut(&to) else {
                    continue;
                };
                if let Some(node) = broker.node.as_mut() {
                    node.handle(&mut broker.io, Event::Peer { from, message });
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the cluster never settled");
    }

    /// One Raft tick of time on every broker, then settle.
    fn tick(&mut self) {
        for broker in self.brokers.values_mut() {
            broker.io.now = broker.io.now + Duration::from_millis(100);
            broker.io.wall_ms += 100;
            let now = broker.io.now;
            let (due, later): (Vec<_>, Vec<_>) =
                broker.io.timers.drain(..).partition(|(at, _)| *at <= now);
            broker.io.timers = later;
            if let Some(node) = broker.node.as_mut() {
                for (_, timer) in due {
                    node.handle(&mut broker.io, Event::Timer(timer));
                }
            }
        }
        self.settle();
    }

    fn request(&mut self, to: i32, version: i16, body: RequestKind) -> u64 {
        self.request_via(to, "", version, body)
    }

    /// [`Cluster::request`] as if it came through the client listener `listener`.
    fn request_via(&mut self, to: i32, listener: &str, version: i16, body: RequestKind) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        let broker = self.brokers.get_mut(&to).unwrap();
        let node = broker.node.as_mut().expect("up");
        node.handle(
            &mut broker.io,
            Event::Client {
                id: RequestId(id),
                request: Request {
                    api_version: version,
                    client_id: None,
                    client_host: String::new(),
                    principal: odradek_replication::request::ANONYMOUS.to_string(),
                    listener: listener.to_string(),
                    body,
                },
            },
        );
        self.settle();
        id
    }

    fn response(&mut self, to: i32, id: u64) -> Option<ResponseKind> {
        let io = &mut self.brokers.get_mut(&to).unwrap().io;
        let at = io.responses.iter().position(|(r, _)| *r == RequestId(id))?;
        Some(io.responses.remove(at).1)
    }

    /// Ticks until `to` answers request `id`.
    fn wait(&mut self, to: i32, id: u64) -> ResponseKind {
        for _ in 0..200 {
            if let Some(response) = self.response(to, id) {
                return response;
            }
            self.tick();
        }
        panic!("broker {to} never answered request {id}");
    }

    fn metadata(&mut self, at: i32, topic: &str) -> MetadataResponse {
        let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name(topic))),
        ])));
        let id = self.request(at, 12, body);
        match self.wait(at, id) {
            ResponseKind::Metadata(response) => response,
            other => panic!("{other:?}"),
        }
    }

    /// Ticks until a broker that is up names as the controller a broker that leads
    /// the metadata quorum, and every broker that is up has caught up with the quorum
    /// (until then a broker answers LEADER_NOT_AVAILABLE for topics it does not know);
    /// returns the controller. (A broker that knows no controller names itself, so
    /// that admin clients ask it and are told NOT_CONTROLLER.)
    fn controller(&mut self) -> i32 {
        for _ in 0..100 {
            let up: Vec<i32> = self
                .brokers
                .iter()
                .filter(|(_, b)| b.node.is_some())
                .map(|(&id, _)| id)
                .collect();
            let controller = self.metadata(up[0], "none").controller_id.0;
            let leads = self
                .brokers
                .get(&controller)
                .and_then(|b| b.node.as_ref())
                .is_some_and(|node| node.metadata().is_leader());
            let caught_up = self
                .brokers
                .values()
                .filter_map(|b| b.node.as_ref())
                .all(|node| node.metadata().caught_up());
            if leads && caught_up {
                return controller;
            }
            self.tick();
        }
        panic!("no controller elected");
    }

    /// Ticks until broker `at` names a leader for partition 0 of `topic`.
    fn leader(&mut self, at: i32, topic: &str) -> (i32, i32) {
        for _ in 0..100 {
            let response = self.metadata(at, topic);
            let Some(partition) = response.topics[0].partitions.first() else {
                self.tick();
                continue;
            };
            if partition.error_code == 0 && partition.leader_id.0 >= 0 {
                return (partition.leader_id.0, partition.leader_epoch);
            }
            self.tick();
        }
        panic!("no leader for {topic}");
    }
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn produce(topic: &str, value: &[u8]) -> RequestKind {
    produce_batch(topic, build_batch(1_000, None, &[value]))
}

/// An acks=all produce of `batch` to partition 0 of `topic`.
fn produce_batch(topic: &str, batch: Vec<u8>) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::from(batch))),
                    ]),
            ]),
    )
}

fn produce_result(response: ResponseKind) -> (i16, i64) {
    let ResponseKind::Produce(response) = response else {
        panic!("not a produce response")
    };
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// The offsets of the data (non-control) batches a fetch from offset 0 returns.
fn data_offsets(cluster: &mut Cluster, at: i32, topic: &str) -> Vec<i64> {
    let (error_code, bytes) = fetch_at(cluster, at, topic, 0);
    assert_eq!(error_code, 0);
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).expect("whole batches");
        if !header.is_control() {
            offsets.push(header.base_offset);
        }
        at += usize::try_from(header.size_bytes()).unwrap();
    }
    offsets
}

/// A CreateTopics request for `topic` with one partition.
fn create_topic_request(
    topic: &str,
    replication_factor: i16,
    configs: Vec<CreatableTopicConfig>,
) -> RequestKind {
    RequestKind::CreateTopics(
        CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(1)
                    .with_replication_factor(replication_factor)
                    .with_configs(configs),
            ]),
    )
}

/// Creates `topic` with one partition, replication factor 3 and one config, through
/// the controller.
fn create_replicated(
    cluster: &mut Cluster,
    controller: i32,
    topic: &str,
    config: &'static str,
    value: &'static str,
) {
    let create = create_topic_request(
        topic,
        3,
        vec![
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str(config))
                .with_value(Some(StrBytes::from_static_str(value))),
        ],
    );
    let id = cluster.request(controller, 7, create);
    let ResponseKind::CreateTopics(created) = cluster.wait(controller, id) else {
        panic!()
    };
    assert_eq!(created.topics[0].error_code, 0);
}

/// A consumer's fetch of partition 0 of `topic` from `offset`: its error code and
/// records.
fn fetch_at(cluster: &mut Cluster, at: i32, topic: &str, offset: i64) -> (i16, Bytes) {
    let body = RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(offset)
                            .with_current_leader_epoch(-1)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    );
    let id = cluster.request(at, 12, body);
    let ResponseKind::Fetch(response) = cluster.wait(at, id) else {
        panic!("not a fetch response")
    };
    let partition = &response.responses[0].partitions[0];
    (
        partition.error_code,
        partition.records.clone().unwrap_or_default(),
    )
}

#[test]
fn three_brokers_elect_replicate_fail_over_and_catch_up() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();

    // A non-controller refuses topic creation; the controller accepts RF 3.
    let create = |rf: i16| create_topic_request("orders", rf, Vec::new());
    let other = if controller == 1 { 2 } else { 1 };
    let id = cluster.request(other, 7, create(3));
    let ResponseKind::CreateTopics(refused) = cluster.wait(other, id) else {
        panic!()
    };
    assert_eq!(refused.topics[0].error_code, 41, "NOT_CONTROLLER");
    let id = cluster.request(controller, 7, create(4));
    let ResponseKind::CreateTopics(too_many) = cluster.wait(controller, id) else {
        panic!()
    };
    assert_eq!(
        too_many.topics[0].error_code, 38,
        "INVALID_REPLICATION_FACTOR"
    );
    let id = cluster.request(controller, 7, create(3));
    let ResponseKind::CreateTopics(created) = cluster.wait(controller, id) else {
        panic!()
    };
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );

    // A second topic that demands all three replicas in sync for acks=all.
    create_replicated(
        &mut cluster,
        controller,
        "strict",
        "min.insync.replicas",
        "3",
    );

    // Every broker learns the topic and its leader; all three hold a replica.
    let (leader, epoch) = cluster.leader(3, "orders");
    for at in 1..=3 {
        let response = cluster.metadata(at, "orders");
        assert_eq!(response.brokers.len(), 3, "broker {at} knows every broker");
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.leader_id.0, leader);
        let mut replicas: Vec<i32> = partition.replica_nodes.iter().map(|b| b.0).collect();
        replicas.sort_unstable();
        assert_eq!(replicas, vec![1, 2, 3]);
    }

    // Followers refuse writes; the leader takes acks=all writes once a quorum has them.
    let follower = if leader == 1 { 2 } else { 1 };
    let id = cluster.request(follower, 9, produce("orders", b"nope"));
    assert_eq!(
        produce_result(cluster.wait(follower, id)).0,
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    let mut acknowledged = Vec::new();
    for value in [b"a", b"b", b"c"] {
        let id = cluster.request(leader, 9, produce("orders", value));
        let (error, offset) = produce_result(cluster.wait(leader, id));
        assert_eq!(error, 0);
        acknowledged.push(offset);
    }

    // With all three in sync the strict topic takes acks=all writes.
    let strict_before = cluster.leader(3, "strict").0;
    let id = cluster.request(strict_before, 9, produce("strict", b"w"));
    assert_eq!(produce_result(cluster.wait(strict_before, id)).0, 0);

    // The leader dies. Another broker is elected in a newer epoch and serves every
    // acknowledged record; writes go on.
    cluster.brokers.get_mut(&leader).unwrap().node = None;
    let survivor = if leader == 3 { 1 } else { 3 };
    let mut ticks = 0;
    let (new_leader, new_epoch) = loop {
        let (named, epoch) = cluster.leader(survivor, "orders");
        if named != leader {
            break (named, epoch);
        }
        ticks += 1;
        assert!(ticks < 100, "no new leader elected");
        cluster.tick();
    };
    // Elected within a few election timeouts (10 ticks of 100 ms each).
    assert!(ticks <= 40, "a new leader took {ticks} ticks");
    assert!(new_epoch > epoch, "epoch {new_epoch} after {epoch}");
    let id = cluster.request(new_leader, 9, produce("orders", b"d"));
    let (error, offset) = produce_result(cluster.wait(new_leader, id));
    assert_eq!(error, 0);
    acknowledged.push(offset);
    assert_eq!(
        data_offsets(&mut cluster, new_leader, "orders"),
        acknowledged
    );

    // With a replica gone, min.insync.replicas=3 refuses acks=all writes once the dead
    // follower has lagged for replica.lag.time.max.ms (30 s: 300 ticks); acks=1 goes on.
    let mut strict_leader = cluster.leader(survivor, "strict").0;
    while strict_leader == leader {
        cluster.tick();
        strict_leader = cluster.leader(survivor, "strict").0;
    }
    for _ in 0..310 {
        cluster.tick();
    }
    let strict_leader = cluster.leader(survivor, "strict").0;
    let id = cluster.request(strict_leader, 9, produce("strict", b"x"));
    assert_eq!(
        produce_result(cluster.wait(strict_leader, id)).0,
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    let mut acks_one = produce("strict", b"y");
    if let RequestKind::Produce(request) = &mut acks_one {
        request.acks = 1;
    }
    let id = cluster.request(strict_leader, 9, acks_one);
    assert_eq!(produce_result(cluster.wait(strict_leader, id)).0, 0);

    // The dead broker restarts after a crash (unsynced writes lost) and catches up.
    {
        let broker = cluster.brokers.get_mut(&leader).unwrap();
        broker.io.disk.crash(99);
        broker.io.timers.clear();
        broker.io.responses.clear();
        broker.io.sent.clear();
        broker.node = Some(Node::open(&mut broker.io, config(leader)).expect("reopens"));
    }
    for _ in 0..30 {
        cluster.tick();
    }
    let end = |cluster: &Cluster, id: i32| {
        let node = cluster.brokers[&id].node.as_ref().unwrap();
        let key = odradek_replication::TopicPartition::new("orders", 0);
        node.partition(&key)
            .map(|p| (p.log().log_end_offset(), p.high_watermark()))
    };
    let reference = end(&cluster, new_leader);
    assert!(reference.is_some());
    assert_eq!(
        end(&cluster, leader),
        reference,
        "the restarted broker caught up"
    );
}

/// FindCoordinator v3 for `group` at broker `at`, asked again (a tick apart) while
/// the answer is COORDINATOR_NOT_AVAILABLE; returns the coordinator's id.
fn find_coordinator(cluster: &mut Cluster, at: i32, group: &str) -> i32 {
    for _ in 0..200 {
        let body = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
        );
        let id = cluster.request(at, 3, body);
        let ResponseKind::FindCoordinator(response) = cluster.wait(at, id) else {
            panic!("not a find-coordinator response")
        };
        match response.error_code {
            0 => return response.node_id.0,
            15 => cluster.tick(), // COORDINATOR_NOT_AVAILABLE: created or elected soon
            other => panic!("FindCoordinator at {at}: error {other}"),
        }
    }
    panic!("broker {at} never named a coordinator for {group}");
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// A member joins `group` alone at `coordinator` (JoinGroup v3: before KIP-394),
/// syncs, and returns (member id, generation).
fn join_alone(cluster: &mut Cluster, coordinator: i32, group: &str) -> (String, i32) {
    let join = RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(group_id(group))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ]),
    );
    let id = cluster.request(coordinator, 3, join);
    let ResponseKind::JoinGroup(joined) = cluster.wait(coordinator, id) else {
        panic!("not a join response")
    };
    assert_eq!(joined.error_code, 0, "JoinGroup");
    let member = joined.member_id.as_str().to_string();
    assert_eq!(joined.leader.as_str(), member, "alone, so the leader");
    let sync = RequestKind::SyncGroup(
        SyncGroupRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(joined.member_id.clone())
                    .with_assignment(Bytes::from_static(b"everything")),
            ]),
    );
    let id = cluster.request(coordinator, 3, sync);
    let ResponseKind::SyncGroup(synced) = cluster.wait(coordinator, id) else {
        panic!("not a sync response")
    };
    assert_eq!(synced.error_code, 0, "SyncGroup");
    assert_eq!(synced.assignment.as_ref(), b"everything");
    (member, joined.generation_id)
}

/// OffsetFetch v5 of partition 0 of `topic` for `group` at `coordinator`:
/// (error, offset, metadata).
fn fetch_offset(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    topic: &str,
) -> (i16, i64, String) {
    let body = RequestKind::OffsetFetch(
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(name(topic))
                    .with_partition_indexes(vec![0]),
            ])),
    );
    let id = cluster.request(coordinator, 5, body);
    let ResponseKind::OffsetFetch(response) = cluster.wait(coordinator, id) else {
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

#[test]
fn any_broker_starts_creations_and_committed_offsets_survive_the_coordinator() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    let other = if controller == 1 { 2 } else { 1 };

    // Auto-creation at a broker that is not the controller is forwarded to it: the
    // Metadata request is answered once the topic exists there.
    let response = cluster.metadata(other, "auto-created");
    assert_eq!(
        response.topics[0].error_code, 0,
        "created through the controller"
    );
    assert_eq!(response.topics[0].partitions.len(), 1);
    assert!(
        cluster.brokers[&controller]
            .node
            .as_ref()
            .unwrap()
            .cluster()
            .topics
            .contains_key("auto-created")
    );

    // A topic with one replica: the brokers without one learn its leader from the
    // leader's gossip (within a second), so every broker can route clients to it.
    let single = create_topic_request("single", 1, Vec::new());
    let id = cluster.request(controller, 7, single);
    let ResponseKind::CreateTopics(created) = cluster.wait(controller, id) else {
        panic!()
    };
    assert_eq!(created.topics[0].error_code, 0);
    let (single_leader, _) = cluster.leader(controller, "single");
    for _ in 0..20 {
        cluster.tick();
    }
    for at in 1..=3 {
        let response = cluster.metadata(at, "single");
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0, "broker {at} knows the leader");
        assert_eq!(partition.leader_id.0, single_leader, "broker {at}");
        assert_eq!(partition.replica_nodes.len(), 1);
        assert_eq!(response.brokers.len(), 3, "broker {at} knows every broker");
    }

    // The first FindCoordinator, at a non-controller too, creates __consumer_offsets
    // (replication factor 3, capped at the three brokers) and names its leader.
    let coordinator = find_coordinator(&mut cluster, other, "readers");
    let offsets = &cluster.brokers[&other]
        .node
        .as_ref()
        .unwrap()
        .cluster()
        .topics["__consumer_offsets"];
    assert_eq!(offsets.partitions, 3);
    for at in 1..=3 {
        assert_eq!(
            find_coordinator(&mut cluster, at, "readers"),
            coordinator,
            "every broker agrees"
        );
    }

    // A member joins, syncs and commits; the commit is answered once a quorum holds it.
    let (member, generation) = join_alone(&mut cluster, coordinator, "readers");
    let commit = RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(group_id("readers"))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(StrBytes::from_string(member))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(name("auto-created"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(42)
                            .with_committed_metadata(Some(StrBytes::from_static_str("note"))),
                    ]),
            ]),
    );
    let id = cluster.request(coordinator, 5, commit);
    let ResponseKind::OffsetCommit(committed) = cluster.wait(coordinator, id) else {
        panic!("not an offset-commit response")
    };
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        fetch_offset(&mut cluster, coordinator, "readers", "auto-created"),
        (0, 42, "note".to_string())
    );

    // The coordinator's broker dies. Another broker leads the offsets partition, loads
    // the group from its replica and returns the acknowledged commit.
    cluster.brokers.get_mut(&coordinator).unwrap().node = None;
    let survivor = if coordinator == 3 { 2 } else { 3 };
    let mut new_coordinator = coordinator;
    for _ in 0..100 {
        new_coordinator = find_coordinator(&mut cluster, survivor, "readers");
        if new_coordinator != coordinator {
            break;
        }
        cluster.tick();
    }
    assert_ne!(new_coordinator, coordinator, "a new coordinator took over");
    assert_eq!(
        fetch_offset(&mut cluster, new_coordinator, "readers", "auto-created"),
        (0, 42, "note".to_string()),
        "the commit survived the coordinator"
    );
    // The group itself was rebuilt from the new leader's replica.
    let group_known = cluster.brokers[&new_coordinator]
        .node
        .as_ref()
        .unwrap()
        .coordinator()
        .group("readers")
        .is_some();
    assert!(group_known, "the group was loaded from the log");
}

/// A controller cut off from the others appends a CreateTopics and a CreatePartitions
/// record that never commit; a new controller is elected, and when the old one comes
/// back its records are cut. The requests it held are answered NOT_CONTROLLER (retry),
/// never success for a topic or partitions that do not exist.
#[test]
fn admin_changes_cut_by_a_controller_change_are_not_acknowledged() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    let create = |topic: &str| create_topic_request(topic, 3, Vec::new());
    let id = cluster.request(controller, 7, create("kept"));
    let ResponseKind::CreateTopics(created) = cluster.wait(controller, id) else {
        panic!()
    };
    assert_eq!(created.topics[0].error_code, 0);

    eprintln!(
        "controller {controller} next request {}",
        cluster.next_request
    );
    cluster.isolated = Some(controller);
    let create_id = cluster.request(controller, 7, create("cut"));
    let more = RequestKind::CreatePartitions(
        CreatePartitionsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("kept"))
                    .with_count(4)
                    .with_assignments(None),
            ]),
    );
    let partitions_id = cluster.request(controller, 3, more);
    let mut new_controller = -1;
    for _ in 0..100 {
        cluster.tick();
        let other = if controller == 1 { 2 } else { 1 };
        let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
        let id = cluster.request(other, 12, body);
        let ResponseKind::Metadata(response) = cluster.wait(other, id) else {
            panic!()
        };
        let named = response.controller_id.0;
        if named >= 0 && named != controller {
            new_controller = named;
            break;
        }
    }
    assert!(new_controller > 0, "the other two elect a controller");
    assert!(cluster.response(controller, create_id).is_none());
    assert!(cluster.response(controller, partitions_id).is_none());

    cluster.isolated = None;
    let ResponseKind::CreateTopics(cut) = cluster.wait(controller, create_id) else {
        panic!()
    };
    assert_eq!(cut.topics[0].error_code, 41, "NOT_CONTROLLER, not success");
    let ResponseKind::CreatePartitions(cut) = cluster.wait(controller, partitions_id) else {
        panic!()
    };
    assert_eq!(cut.results[0].error_code, 41, "NOT_CONTROLLER, not success");
    for at in 1..=3 {
        let kept = cluster.metadata(at, "kept");
        assert_eq!(kept.topics[0].partitions.len(), 1, "broker {at}");
    }
}

/// Decision 0010 end to end: the leader's disk rots a committed batch in a sealed
/// segment. A consumer's fetch of it finds the damage on every read; the leader marks
/// itself recovering, cuts its log there and starts again as a member that does not
/// vote. The other two elect a leader, which restores it; afterwards all three hold
/// the same log and every record is readable.
#[test]
fn a_replica_whose_disk_rots_a_committed_batch_is_repaired_from_the_others() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    create_replicated(&mut cluster, controller, "rotting", "segment.bytes", "512");
    let (leader, epoch) = cluster.leader(controller, "rotting");
    for i in 0..12u8 {
        let id = cluster.request(leader, 7, produce("rotting", &[i; 100]));
        let (error_code, _) = produce_result(cluster.wait(leader, id));
        assert_eq!(error_code, 0);
    }
    let written = data_offsets(&mut cluster, leader, "rotting");
    assert_eq!(written.len(), 12);

    // Rot the last byte but one of the leader's first segment: record data of its
    // last batch, which ends just below the second segment's base offset.
    let key = odradek_replication::TopicPartition::new("rotting", 0);
    let disk = &mut cluster.brokers.get_mut(&leader).unwrap().io.disk;
    let mut segments: Vec<String> = disk
        .file_paths()
        .into_iter()
        .filter(|path| path.starts_with("rotting-0/") && path.ends_with(".log"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    let first_len = disk.durable_contents(&segments[0]).unwrap().len() as u64;
    assert!(disk.corrupt_stored(&segments[0], first_len - 2, 0x04));
    let second_base: i64 = segments[1]["rotting-0/".len()..segments[1].len() - 4]
        .parse()
        .unwrap();
    let damaged = second_base - 1;

    // A fetch of the damaged batch fails (KAFKA_STORAGE_ERROR), and the leader, at
    // its next drive, cuts its log there and starts again recovering.
    let (error_code, _) = fetch_at(&mut cluster, leader, "rotting", damaged);
    assert_eq!(error_code, 56);
    cluster.tick();
    let node = cluster.brokers[&leader].node.as_ref().unwrap();
    let partition = node.partition(&key).unwrap();
    assert!(partition.is_recovering());
    assert!(!partition.is_leader());
    assert!(partition.log().log_end_offset() <= damaged);

    // The others elect a new leader; it restores the damaged replica.
    let mut restored = false;
    for _ in 0..100 {
        cluster.tick();
        let node = cluster.brokers[&leader].node.as_ref().unwrap();
        if !node.partition(&key).unwrap().is_recovering() {
            restored = true;
            break;
        }
    }
    assert!(restored, "broker {leader} was never restored");
    let (new_leader, new_epoch) = cluster.leader(controller, "rotting");
    assert!(new_epoch > epoch);
    assert_ne!(new_leader, leader, "a recovering replica does not lead");
    assert_eq!(data_offsets(&mut cluster, new_leader, "rotting"), written);
    let (error_code, bytes) = fetch_at(&mut cluster, new_leader, "rotting", damaged);
    assert_eq!((error_code, bytes.is_empty()), (0, false));

    // Its log is the leader's again, byte for byte below the high watermark, and its
    // hard state remembers the loss.
    let mut committed = Vec::new();
    for id in [leader, new_leader] {
        let broker = cluster.brokers.get_mut(&id).unwrap();
        let node = broker.node.as_mut().unwrap();
        committed.push(node.committed_batches(&mut broker.io.disk, &key).unwrap());
    }
    let common = committed[0].len().min(committed[1].len());
    assert!(committed[0].iter().any(|batch| batch.0 == damaged));
    assert_eq!(committed[0][..common], committed[1][..common]);
    let disk = &cluster.brokers[&leader].io.disk;
    let [first, second] = odradek_replication::hard_state::hard_state_paths(
        &odradek_replication::peer::GroupId::Partition(key.clone()),
    )
    .map(|path| disk.durable_contents(&path));
    let hard_state =
        odradek_replication::hard_state::newest_hard_state(first.as_deref(), second.as_deref())
            .unwrap();
    assert_eq!((hard_state.recovering, hard_state.losses), (false, 1));
}

#[test]
fn a_broker_whose_disk_is_lost_refuses_to_start_and_the_others_go_on() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    create_replicated(
        &mut cluster,
        controller,
        "orders",
        "min.insync.replicas",
        "2",
    );
    let (leader, _) = cluster.leader(controller, "orders");
    let id = cluster.request(leader, 9, produce("orders", b"before"));
    let (error_code, before) = produce_result(cluster.wait(leader, id));
    assert_eq!(error_code, 0);
    // The quorum's leader names the cluster id every broker was formatted with.
    let response = cluster.metadata(leader, "orders");
    assert_eq!(
        response.cluster_id.as_ref().map(|id| id.to_string()),
        Some("test-cluster".to_string())
    );

    // The partition leader's disk is lost, and a new empty one takes its place.
    let lost = leader;
    {
        let broker = cluster.brokers.get_mut(&lost).unwrap();
        broker.node = None;
        broker.io.disk = MemDisk::new(77);
        broker.io.disk.sync_dir_now("").expect("root");
        broker.io.timers.clear();
        broker.io.responses.clear();
        broker.io.sent.clear();
        let error = Node::open(&mut broker.io, config(lost))
            .err()
            .expect("refuses");
        assert!(
            matches!(error, NodeError::Unformatted { node_id } if node_id == lost),
            "{error}"
        );
        assert!(error.to_string().contains("odradek format"), "{error}");
        // It wrote nothing: the next start refuses the same way.
        assert!(broker.io.disk.read_dir("").unwrap().is_empty());
    }

    // The two that are left elect a leader, keep the record and take new ones.
    let survivor = if lost == 1 { 2 } else { 1 };
    let mut new_leader = cluster.leader(survivor, "orders").0;
    while new_leader == lost {
        cluster.tick();
        new_leader = cluster.leader(survivor, "orders").0;
    }
    let id = cluster.request(new_leader, 9, produce("orders", b"after"));
    let (error_code, after) = produce_result(cluster.wait(new_leader, id));
    assert_eq!(error_code, 0);
    assert!(after > before);
    assert_eq!(
        data_offsets(&mut cluster, new_leader, "orders"),
        vec![before, after]
    );

    // A directory that holds data, or was formatted already, is not formatted again.
    let broker = cluster.brokers.get_mut(&new_leader).unwrap();
    let error =
        identity::format(&mut broker.io, new_leader, None, "d".to_string()).expect_err("refuses");
    assert!(
        matches!(error, NodeError::AlreadyFormatted { node_id } if node_id == new_leader),
        "{error}"
    );
    broker.io.disk.remove_file("meta.properties").unwrap();
    let error =
        identity::format(&mut broker.io, new_leader, None, "d".to_string()).expect_err("refuses");
    assert!(matches!(error, NodeError::NotEmpty { .. }), "{error}");
}

/// Metadata for `topic` at broker `at`, without auto-creation: the topic's error code
/// and partition count, and the controller named.
fn describe_topic(cluster: &mut Cluster, at: i32, topic: &str) -> (i16, usize, i32) {
    let body = RequestKind::Metadata(
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(topic))),
            ]))
            .with_allow_auto_topic_creation(false),
    );
    let id = cluster.request(at, 12, body);
    let ResponseKind::Metadata(response) = cluster.wait(at, id) else {
        panic!("not a metadata response")
    };
    let topic = &response.topics[0];
    (
        topic.error_code,
        topic.partitions.len(),
        response.controller_id.0,
    )
}

impl Cluster {
    /// Broker `id` loses power (unsynced writes are lost) and starts again.
    fn power_cycle(&mut self, id: i32) {
        let broker = self.brokers.get_mut(&id).unwrap();
        broker.io.disk.crash(u64::try_from(id).unwrap() * 31);
        broker.io.timers.clear();
        broker.io.responses.clear();
        broker.io.sent.clear();
        broker.node = Some(Node::open(&mut broker.io, config(id)).expect("reopens"));
    }
}

#[test]
fn a_restarted_broker_knows_its_topics_before_any_leader_speaks_and_calls_none_unknown() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    const LEADER_NOT_AVAILABLE: i16 = 5;
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    let restarted = if controller == 1 { 2 } else { 1 };
    create_replicated(&mut cluster, controller, "orders", "retention.ms", "60000");
    for _ in 0..5 {
        cluster.tick();
    }
    assert_eq!(describe_topic(&mut cluster, restarted, "orders").0, 0);
    let commit_point = format!(
        "__cluster_metadata-0/{}",
        odradek_replication::commit_point::COMMIT_POINT_FILE
    );
    let broker = cluster.brokers.get_mut(&restarted).unwrap();
    assert!(broker.io.disk.exists(&commit_point));

    // It starts again cut off from the others: no leader can teach it anything. It
    // knows the topic from its own log, up to the commit point it saved.
    cluster.isolated = Some(restarted);
    cluster.power_cycle(restarted);
    for _ in 0..30 {
        cluster.tick();
        let node = cluster.brokers[&restarted].node.as_ref().unwrap();
        assert!(!node.metadata().caught_up(), "nobody taught it");
        let (error, partitions, named) = describe_topic(&mut cluster, restarted, "orders");
        assert_eq!((error, partitions), (0, 1), "it knows the topic it knew");
        assert_eq!(named, restarted, "knowing no controller, it names itself");
        // A topic it never heard of may have been created meanwhile: not unknown.
        let never = describe_topic(&mut cluster, restarted, "never-created").0;
        assert_eq!(never, LEADER_NOT_AVAILABLE);
        let id = cluster.request(restarted, 9, produce("never-created", b"x"));
        let (error, _) = produce_result(cluster.wait(restarted, id));
        assert_eq!(error, NOT_LEADER_OR_FOLLOWER, "no auto-creation either");
    }
    let id = cluster.request(restarted, 9, produce("orders", b"x"));
    assert_eq!(
        produce_result(cluster.wait(restarted, id)).0,
        NOT_LEADER_OR_FOLLOWER
    );

    // Without its commit point it knows no topic until a leader speaks, and still
    // calls none unknown.
    let disk = &mut cluster.brokers.get_mut(&restarted).unwrap().io.disk;
    disk.remove_file(&commit_point).unwrap();
    disk.sync_dir_now("__cluster_metadata-0").unwrap();
    cluster.power_cycle(restarted);
    cluster.tick();
    assert_eq!(
        describe_topic(&mut cluster, restarted, "orders").0,
        LEADER_NOT_AVAILABLE
    );

    // Back with the others: it catches up, and then a topic that does not exist is
    // unknown, one that does is served, and the real controller is named.
    cluster.isolated = None;
    let controller = cluster.controller();
    assert_eq!(describe_topic(&mut cluster, restarted, "orders").0, 0);
    let (never, _, named) = describe_topic(&mut cluster, restarted, "never-created");
    assert_eq!(never, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(named, controller);
}

/// Metadata naming no topic, as admin clients send to find the controller, sent to
/// broker `at`; its request id.
fn ask_for_controller(cluster: &mut Cluster, at: i32) -> u64 {
    let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(Vec::new())));
    cluster.request(at, 12, body)
}

#[test]
fn a_request_for_the_controller_waits_for_an_election_and_is_answered_with_its_winner() {
    let mut cluster = Cluster::new();
    // Cut off from the start, broker 3 never learns a leader: its request is answered
    // after twice the longest election timeout (4 s), naming itself.
    cluster.isolated = Some(3);
    let first = ask_for_controller(&mut cluster, 1);
    let cut_off = ask_for_controller(&mut cluster, 3);
    assert!(cluster.response(1, first).is_none(), "no controller yet");
    let mut ticks = 0;
    let answer = loop {
        if let Some(response) = cluster.response(1, first) {
            break response;
        }
        cluster.tick();
        ticks += 1;
        assert!(ticks < 40, "no election within 4 s");
    };
    let ResponseKind::Metadata(answer) = answer else {
        panic!("not a metadata response")
    };
    let named = answer.controller_id.0;
    let leads = cluster.brokers[&named]
        .node
        .as_ref()
        .unwrap()
        .metadata()
        .is_leader();
    assert!(leads, "broker {named} was named, and leads the quorum");
    assert!(cluster.response(3, cut_off).is_none());
    for _ in ticks..39 {
        cluster.tick();
    }
    assert!(cluster.response(3, cut_off).is_none(), "waits up to 4 s");
    cluster.tick();
    cluster.tick();
    let Some(ResponseKind::Metadata(alone)) = cluster.response(3, cut_off) else {
        panic!("broker 3 never answered")
    };
    assert_eq!(alone.controller_id.0, 3, "knowing none, it names itself");
}

/// OffsetCommit v5 of partition 0 of `topic` by a group that only commits (generation
/// -1, no member id); its error.
fn commit_without_membership(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    let commit = RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset),
                    ]),
            ]),
    );
    let id = cluster.request(coordinator, 5, commit);
    let ResponseKind::OffsetCommit(committed) = cluster.wait(coordinator, id) else {
        panic!("not an offset-commit response")
    };
    committed.topics[0].partitions[0].error_code
}

/// KIP-496: the tombstones OffsetDelete writes are replicated like commits, so the
/// broker that takes over the group after its coordinator dies has the offset deleted
/// and the other one kept.
#[test]
fn kip_496_deleted_offsets_stay_deleted_when_the_coordinator_moves() {
    use kafka_protocol::messages::OffsetDeleteRequest;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let mut cluster = Cluster::new();
    let coordinator = find_coordinator(&mut cluster, 1, "auditors");
    assert_eq!(
        commit_without_membership(&mut cluster, coordinator, "auditors", "kept", 5),
        0
    );
    assert_eq!(
        commit_without_membership(&mut cluster, coordinator, "auditors", "dropped", 7),
        0
    );
    let delete = RequestKind::OffsetDelete(
        OffsetDeleteRequest::default()
            .with_group_id(group_id("auditors"))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(name("dropped"))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0),
                    ]),
            ]),
    );
    let id = cluster.request(coordinator, 0, delete);
    let ResponseKind::OffsetDelete(deleted) = cluster.wait(coordinator, id) else {
        panic!("not an offset-delete response")
    };
    assert_eq!(deleted.error_code, 0);
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        fetch_offset(&mut cluster, coordinator, "auditors", "dropped").1,
        -1
    );

    cluster.brokers.get_mut(&coordinator).unwrap().node = None;
    let survivor = if coordinator == 3 { 2 } else { 3 };
    let mut new_coordinator = coordinator;
    for _ in 0..100 {
        new_coordinator = find_coordinator(&mut cluster, survivor, "auditors");
        if new_coordinator != coordinator {
            break;
        }
        cluster.tick();
    }
    assert_ne!(new_coordinator, coordinator, "a new coordinator took over");
    assert_eq!(
        fetch_offset(&mut cluster, new_coordinator, "auditors", "dropped").1,
        -1,
        "the deletion survived the coordinator"
    );
    assert_eq!(
        fetch_offset(&mut cluster, new_coordinator, "auditors", "kept").1,
        5
    );
}

/// OffsetForLeaderEpoch v4 for partition 0 of `topic` at broker `at`: (error, leader
/// epoch, end offset).
fn epoch_end(
    cluster: &mut Cluster,
    at: i32,
    topic: &str,
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
                    .with_topic(name(topic))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(current_leader_epoch)
                            .with_leader_epoch(leader_epoch),
                    ]),
            ]),
    );
    let id = cluster.request(at, 4, body);
    let ResponseKind::OffsetForLeaderEpoch(response) = cluster.wait(at, id) else {
        panic!("not an offset-for-leader-epoch response")
    };
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.leader_epoch, answer.end_offset)
}

/// KIP-320 across a leader change: a follower does not answer; the new leader says the
/// old epoch ended where its own epoch began (its leader marker), which is past every
/// record the old leader acknowledged, so a consumer at any of them finds no
/// truncation; a client still naming the old epoch as current is fenced.
#[test]
fn kip_320_the_new_leader_answers_where_the_old_epoch_ended() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    create_replicated(&mut cluster, controller, "epochs", "retention.ms", "-1");
    let (leader, epoch) = cluster.leader(controller, "epochs");
    let mut acknowledged_end = 0;
    for value in [b"a", b"b"] {
        let id = cluster.request(leader, 9, produce("epochs", value));
        let (error, offset) = produce_result(cluster.wait(leader, id));
        assert_eq!(error, 0);
        acknowledged_end = offset + 1;
    }
    let follower = if leader == 1 { 2 } else { 1 };
    assert_eq!(
        epoch_end(&mut cluster, follower, "epochs", epoch, epoch).0,
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    let end_before = epoch_end(&mut cluster, leader, "epochs", epoch, epoch);
    assert_eq!(end_before, (0, epoch, acknowledged_end));

    cluster.brokers.get_mut(&leader).unwrap().node = None;
    let survivor = if leader == 3 { 1 } else { 3 };
    let (new_leader, new_epoch) = loop {
        let (named, new_epoch) = cluster.leader(survivor, "epochs");
        if named != leader {
            break (named, new_epoch);
        }
        cluster.tick();
    };
    assert!(new_epoch > epoch);
    let new_epoch_start = {
        let node = cluster.brokers[&new_leader].node.as_ref().unwrap();
        let key = odradek_replication::TopicPartition::new("epochs", 0);
        let partition = node.partition(&key).expect("a replica");
        // The new leader's marker is the first entry of its epoch.
        partition.log().log_end_offset() - 1
    };
    assert!(new_epoch_start >= acknowledged_end);
    assert_eq!(
        epoch_end(&mut cluster, new_leader, "epochs", new_epoch, epoch),
        (0, epoch, new_epoch_start)
    );
    assert_eq!(
        epoch_end(&mut cluster, new_leader, "epochs", epoch, epoch).0,
        75,
        "FENCED_LEADER_EPOCH"
    );
}

/// An acks=all produce of one keyed record to partition 0 of `topic`.
fn produce_keyed(topic: &str, key: &[u8], value: &[u8]) -> RequestKind {
    let batch = odradek_log::batch::build_batch_with_keys(1_000, None, [(Some(key), value)]);
    produce_batch(topic, batch)
}

/// Broker `at`'s replica of partition 0 of `topic` below its high watermark: its
/// end, checked contiguous from the log start, and the newest value of every key.
fn replica_contents(
    cluster: &mut Cluster,
    at: i32,
    topic: &str,
) -> (i64, BTreeMap<Vec<u8>, Vec<u8>>) {
    let broker = cluster.brokers.get_mut(&at).unwrap();
    let node = broker.node.as_mut().expect("up");
    let key = odradek_replication::TopicPartition::new(topic, 0);
    let log = node
        .committed_log(&mut broker.io.disk, &key)
        .expect("readable");
    let mut next = node.partition(&key).unwrap().log().log_start_offset();
    let mut rest = &log[..];
    while !rest.is_empty() {
        let header = BatchHeader::parse(rest).unwrap();
        assert_eq!(
            header.base_offset, next,
            "broker {at}: a gap before {}",
            header.base_offset
        );
        next = header.last_offset() + 1;
        rest = &rest[header.size_bytes() as usize..];
    }
    let mut newest = BTreeMap::new();
    odradek_log::batch::for_each_record(&log, |record| {
        newest.insert(record.key.unwrap().to_vec(), record.value.unwrap().to_vec());
        Ok::<(), odradek_log::batch::RecordsError>(())
    })
    .unwrap();
    (next, newest)
}

#[test]
fn a_follower_cut_off_while_the_leader_compacted_catches_up_through_the_fillers() {
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "512"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]
    .map(|(name, value)| {
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_value(Some(StrBytes::from_static_str(value)))
    });
    let id = cluster.request(
        controller,
        7,
        create_topic_request("kv", 3, configs.to_vec()),
    );
    let ResponseKind::CreateTopics(created) = cluster.wait(controller, id) else {
        panic!()
    };
    assert_eq!(created.topics[0].error_code, 0);
    let (leader, _) = cluster.leader(1, "kv");
    let behind = if leader == 1 { 2 } else { 1 };

    // Half the updates reach everyone; the other half only the leader and one follower.
    for round in 0..160u32 {
        if round == 80 {
            cluster.isolated = Some(behind);
        }
        let key = format!("k{}", round % 5);
        let value = format!("v{round}");
        let id = cluster.request(
            leader,
            9,
            produce_keyed("kv", key.as_bytes(), value.as_bytes()),
        );
        let (code, _) = produce_result(cluster.wait(leader, id));
        assert_eq!(code, 0, "round {round}");
    }
    // The leader cleans below its high watermark, far above the cut-off follower.
    for _ in 0..100 {
        cluster.tick();
    }
    let (leader_end, leader_newest) = replica_contents(&mut cluster, leader, "kv");
    let key = odradek_replication::TopicPartition::new("kv", 0);
    let leader_log = cluster.brokers[&leader]
        .node
        .as_ref()
        .unwrap()
        .partition(&key)
        .unwrap()
        .log();
    assert!(
        leader_log.first_dirty_offset().is_some(),
        "the leader cleaned"
    );
    assert_eq!(leader_newest.len(), 5);

    cluster.isolated = None;
    for _ in 0..100 {
        cluster.tick();
    }
    let (behind_end, behind_newest) = replica_contents(&mut cluster, behind, "kv");
    assert!(behind_end >= leader_end, "{behind_end} < {leader_end}");
    assert_eq!(behind_newest, leader_newest);
    for (index, key) in ["k0", "k1", "k2", "k3", "k4"].iter().enumerate() {
        let value = format!("v{}", 155 + index);
        assert_eq!(
            leader_newest.get(key.as_bytes()),
            Some(&value.into_bytes()),
            "{key}"
        );
    }
}

/// A DeleteRecords of partition 0 of `topic` below `offset`, sent to broker `at`: its
/// error code and low watermark.
fn delete_records(cluster: &mut Cluster, at: i32, topic: &str, offset: i64) -> (i16, i64) {
    use kafka_protocol::messages::DeleteRecordsRequest;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let body = RequestKind::DeleteRecords(
        DeleteRecordsRequest::default()
            .with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(offset),
                    ]),
            ])
            .with_timeout_ms(30_000),
    );
    let id = cluster.request(at, 2, body);
    let ResponseKind::DeleteRecords(response) = cluster.wait(at, id) else {
        panic!("not a DeleteRecords response")
    };
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.low_watermark)
}

/// Broker `at`'s replica of partition 0 of `topic`: the log start clients see, and its
/// log's own (whole segments).
fn starts(cluster: &Cluster, at: i32, topic: &str) -> (i64, i64) {
    let node = cluster.brokers[&at].node.as_ref().expect("up");
    let key = odradek_replication::TopicPartition::new(topic, 0);
    let replica = node.partition(&key).expect("a replica");
    (replica.log_start_offset(), replica.log().log_start_offset())
}

/// DeleteRecords is taken by the partition's leader only, moves the start clients see
/// on every replica (through the metadata log), deletes the whole segments below it,
/// and holds across a follower's restart and a leader change.
#[test]
fn delete_records_moves_every_replicas_start_and_survives_restarts_and_failover() {
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    create_replicated(&mut cluster, controller, "trim", "segment.bytes", "512");
    let (leader, _) = cluster.leader(controller, "trim");
    let mut end = 0;
    for round in 0..60u32 {
        let id = cluster.request(leader, 9, produce("trim", format!("v{round}").as_bytes()));
        let (error, offset) = produce_result(cluster.wait(leader, id));
        assert_eq!(error, 0);
        end = offset + 1;
    }
    let follower = if leader == 1 { 2 } else { 1 };
    assert_eq!(
        delete_records(&mut cluster, follower, "trim", 40).0,
        NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(
        delete_records(&mut cluster, leader, "trim", end + 1).0,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(delete_records(&mut cluster, leader, "trim", 40), (0, 40));
    // An older offset changes nothing and says where the start is.
    assert_eq!(delete_records(&mut cluster, leader, "trim", 10), (0, 40));
    for _ in 0..10 {
        cluster.tick();
    }
    for at in 1..=3 {
        let (visible, own) = starts(&cluster, at, "trim");
        assert_eq!(visible, 40, "broker {at}");
        assert!(
            own > 0 && own <= 40,
            "broker {at}: segments below 40 go, {own}"
        );
    }
    assert_eq!(
        fetch_at(&mut cluster, leader, "trim", 39).0,
        OFFSET_OUT_OF_RANGE
    );
    let (error, records) = fetch_at(&mut cluster, leader, "trim", 40);
    assert_eq!(error, 0);
    assert!(!records.is_empty());

    cluster.power_cycle(follower);
    for _ in 0..10 {
        cluster.tick();
    }
    assert_eq!(starts(&cluster, follower, "trim").0, 40, "after a restart");

    cluster.brokers.get_mut(&leader).unwrap().node = None;
    let new_leader = loop {
        let (named, _) = cluster.leader(follower, "trim");
        if named != leader {
            break named;
        }
        cluster.tick();
    };
    assert_eq!(starts(&cluster, new_leader, "trim").0, 40, "the new leader");
    // -1: everything committed.
    let (error, low) = delete_records(&mut cluster, new_leader, "trim", -1);
    assert_eq!(error, 0);
    assert!(low >= end, "{low} < {end}");
}

/// A compact-only topic keeps every key's newest record: DeleteRecords is refused as
/// Kafka refuses it.
#[test]
fn delete_records_on_a_compact_only_topic_is_a_policy_violation() {
    const POLICY_VIOLATION: i16 = 44;
    let mut cluster = Cluster::new();
    let controller = cluster.controller();
    create_replicated(&mut cluster, controller, "kv", "cleanup.policy", "compact");
    let (leader, _) = cluster.leader(controller, "kv");
    let id = cluster.request(leader, 9, produce_keyed("kv", b"k", b"v"));
    assert_eq!(produce_result(cluster.wait(leader, id)).0, 0);
    assert_eq!(
        delete_records(&mut cluster, leader, "kv", 1),
        (POLICY_VIOLATION, -1)
    );
    assert_eq!(starts(&cluster, leader, "kv").0, 0);
}

/// The brokers a Metadata answer lists, as (id, host, port), for a client of `listener`.
fn brokers_via(cluster: &mut Cluster, at: i32, listener: &str) -> Vec<(i32, String, i32)> {
    let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(Vec::new())));
    let id = cluster.request_via(at, listener, 12, body);
    let ResponseKind::Metadata(response) = cluster.wait(at, id) else {
        panic!("not a metadata response")
    };
    response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect()
}

#[test]
fn each_client_listener_is_told_the_brokers_endpoints_of_that_listener() {
    let mut cluster = Cluster::new();
    cluster.controller();
    for _ in 0..20 {
        cluster.tick(); // every broker has gossiped its endpoints
    }
    for at in 1..=3 {
        let external = brokers_via(&mut cluster, at, "EXTERNAL");
        let wanted: Vec<(i32, String, i32)> = (1..=3)
            .map(|id| (id, format!("broker-{id}.example"), 19090 + id))
            .collect();
        assert_eq!(external, wanted, "at broker {at}");
        // Listener names compare without case; no listener named means the first.
        assert_eq!(brokers_via(&mut cluster, at, "external"), wanted);
        let internal: Vec<(i32, String, i32)> = (1..=3)
            .map(|id| (id, "127.0.0.1".to_string(), 9090 + id))
            .collect();
        assert_eq!(brokers_via(&mut cluster, at, "PLAINTEXT"), internal);
        assert_eq!(brokers_via(&mut cluster, at, ""), internal);
    }
    // The coordinator's endpoint follows the listener too.
    let coordinator = find_coordinator(&mut cluster, 1, "listeners");
    let body = RequestKind::FindCoordinator(
        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("listeners")),
    );
    let id = cluster.request_via(2, "EXTERNAL", 3, body);
    let ResponseKind::FindCoordinator(found) = cluster.wait(2, id) else {
        panic!("not a find-coordinator response")
    };
    assert_eq!(found.node_id.0, coordinator);
    assert_eq!(found.port, 19090 + coordinator);
    assert_eq!(found.host.as_str(), format!("broker-{coordinator}.example"));
}
