//! ACLs through the node: CreateAcls, DescribeAcls and DeleteAcls write and read the
//! bindings of the metadata log, and every API checks its principal against them.
//!
//! A real [`Node`] over an in-memory disk, driven one request at a time with any
//! principal (the driver would give it the connection's authenticated user), so these
//! tests set User:alice against User:bob, which real clients cannot do before SASL.

use bytes::Bytes;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateTopicsRequest, DeleteAclsRequest, DescribeAclsRequest, FetchRequest,
    GroupId, InitProducerIdRequest, JoinGroupRequest, MetadataRequest, ProduceRequest, ProducerId,
    RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::build_batch;
use odradek_log::io::{Disk, Instant, Io, TimerId};
use odradek_log::mem_disk::MemDisk;
use odradek_replication::acl::Authorizer;
use odradek_replication::error::ErrorCode;
use odradek_replication::peer::{BrokerId, PeerMessage};
use odradek_replication::{Event, Node, NodeConfig, NodeIo, Request, RequestId};

const ADMIN: &str = "User:admin";
const ALICE: &str = "User:alice";
const BOB: &str = "User:bob";

// Kafka's codes: resource types, pattern types, operations, permissions.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

struct TestIo {
    disk: MemDisk,
    random: u64,
    responses: Vec<(RequestId, ResponseKind)>,
}

odradek_log::forward_disk!(TestIo => disk);

impl Io for TestIo {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
    fn wall_clock_ms(&self) -> i64 {
        1_700_000_000_000
    }
    fn random(&mut self) -> u64 {
        self.random = self
            .random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1);
        self.random
    }
    fn set_timer(&mut self, _at: Instant, _timer: TimerId) {}
}

impl NodeIo for TestIo {
    fn respond(&mut self, id: RequestId, response: ResponseKind) {
        assert!(
            self.responses.iter().all(|(r, _)| *r != id),
            "answered twice"
        );
        self.responses.push((id, response));
    }
    fn send(&mut self, to: BrokerId, message: PeerMessage) {
        panic!("a single node sent {message:?} to broker {to}");
    }
}

struct Harness {
    node: Node,
    io: TestIo,
    config: NodeConfig,
    next_id: u64,
}

impl Harness {
    /// A single broker with the authorizer on, `User:admin` its super user.
    fn new(authorizer: Option<Authorizer>) -> Harness {
        let mut io = TestIo {
            disk: MemDisk::new(3),
            random: 3,
            responses: Vec::new(),
        };
        io.disk.sync_dir_now("").expect("root");
        let config = NodeConfig {
            authorizer,
            ..NodeConfig::default()
        };
        let node = Node::open(&mut io, config.clone()).expect("opens");
        Harness {
            node,
            io,
            config,
            next_id: 1,
        }
    }

    fn secured() -> Harness {
        Harness::new(Some(Authorizer::new([ADMIN.to_string()], false)))
    }

    /// [`Harness::secured`] with a small offsets topic, for the group APIs.
    fn secured_groups() -> Harness {
        let mut io = TestIo {
            disk: MemDisk::new(5),
            random: 5,
            responses: Vec::new(),
        };
        io.disk.sync_dir_now("").expect("root");
        let mut config = NodeConfig {
            authorizer: Some(Authorizer::new([ADMIN.to_string()], false)),
            ..NodeConfig::default()
        };
        config.group.offsets_topic_num_partitions = 2;
        let node = Node::open(&mut io, config.clone()).expect("opens");
        Harness {
            node,
            io,
            config,
            next_id: 1,
        }
    }

    /// Sends `body` as `principal`, completes the syncs it starts, returns the answer.
    fn call(&mut self, principal: &str, version: i16, body: RequestKind) -> ResponseKind {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let request = Request {
            api_version: version,
            client_id: None,
            client_host: "/10.0.0.1".into(),
            principal: principal.into(),
            listener: String::new(),
            body,
        };
        self.node
            .handle(&mut self.io, Event::Client { id, request });
        loop {
            let done = self.io.disk.complete_all_syncs();
            if done.is_empty() {
                break;
            }
            for completion in done {
                self.node.handle(&mut self.io, Event::Disk(completion));
            }
        }
        self.node.check_invariants();
        let at = self.io.responses.iter().position(|(r, _)| *r == id);
        self.io.responses.remove(at.expect("answered")).1
    }

    fn restart(self) -> Harness {
        let Harness {
            mut node,
            mut io,
            config,
            next_id,
        } = self;
        node.shutdown(&mut io);
        io.responses.clear();
        let node = Node::open(&mut io, config.clone()).expect("reopens");
        Harness {
            node,
            io,
            config,
            next_id,
        }
    }

    /// Creates ACLs as the super user; each must be accepted.
    fn grant(&mut self, bindings: &[(i8, &str, i8, &str, i8, i8)]) {
        let response = self.call(ADMIN, 3, create_acls(bindings));
        let ResponseKind::CreateAcls(created) = response else {
            panic!("not a CreateAcls answer")
        };
        for result in created.results {
            assert_eq!(result.error_code, 0, "{:?}", result.error_message);
        }
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// (resource type, name, pattern type, principal, operation, permission), host `*`.
fn create_acls(bindings: &[(i8, &str, i8, &str, i8, i8)]) -> RequestKind {
    let creations = bindings
        .iter()
        .map(|(kind, name, pattern, who, op, permission)| {
            AclCreation::default()
                .with_resource_type(*kind)
                .with_resource_name(text(name))
                .with_resource_pattern_type(*pattern)
                .with_principal(text(who))
                .with_host(text("*"))
                .with_operation(*op)
                .with_permission_type(*permission)
        });
    RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(creations.collect()))
}

fn describe_acls(kind: i8, name: Option<&str>, pattern: i8) -> RequestKind {
    RequestKind::DescribeAcls(
        DescribeAclsRequest::default()
            .with_resource_type_filter(kind)
            .with_resource_name_filter(name.map(text))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY),
    )
}

/// The (name, pattern, principal, operation, permission) DescribeAcls answers.
fn described(response: ResponseKind) -> Vec<(String, i8, String, i8, i8)> {
    let ResponseKind::DescribeAcls(described) = response else {
        panic!("not a DescribeAcls answer")
    };
    assert_eq!(described.error_code, 0, "{:?}", described.error_message);
    let mut acls = Vec::new();
    for resource in described.resources {
        for acl in resource.acls {
            acls.push((
                resource.resource_name.to_string(),
                resource.pattern_type,
                acl.principal.to_string(),
                acl.operation,
                acl.permission_type,
            ));
        }
    }
    acls
}

fn create_topic(name: &str) -> RequestKind {
    RequestKind::CreateTopics(
        CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_num_partitions(1)
                    .with_replication_factor(-1),
            ]),
    )
}

fn produce(topic: &str) -> RequestKind {
    let records = build_batch(1, None, &[b"v"]);
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(text(topic)))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::from(records))),
                    ]),
            ]),
    )
}

fn produce_error(response: ResponseKind) -> i16 {
    let ResponseKind::Produce(response) = response else {
        panic!("not a produce answer")
    };
    response.responses[0].partition_responses[0].error_code
}

fn fetch_error(response: ResponseKind) -> i16 {
    let ResponseKind::Fetch(response) = response else {
        panic!("not a fetch answer")
    };
    response.responses[0].partitions[0].error_code
}

fn fetch(topic: &str) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(text(topic)))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(-1)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    )
}

/// The topics a Metadata answer names, with their errors.
fn metadata_topics(
    h: &mut Harness,
    principal: &str,
    topics: Option<&[&str]>,
) -> Vec<(String, i16)> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let topics = topics.map(|topics| {
        (topics.iter())
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(text(t)))))
            .collect()
    });
    let request = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false);
    let ResponseKind::Metadata(response) = h.call(principal, 12, RequestKind::Metadata(request))
    else {
        panic!("not a metadata answer")
    };
    (response.topics.into_iter())
        .map(|t| {
            (
                t.name.map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
            )
        })
        .collect()
}

const TOPIC_DENIED: i16 = ErrorCode::TopicAuthorizationFailed as i16;

#[test]
fn acl_requests_are_security_disabled_without_an_authorizer() {
    let mut h = Harness::new(None);
    let response = h.call(
        ADMIN,
        3,
        create_acls(&[(TOPIC, "t", LITERAL, ALICE, READ, ALLOW)]),
    );
    let ResponseKind::CreateAcls(created) = response else {
        panic!()
    };
    assert_eq!(
        created.results[0].error_code,
        ErrorCode::SecurityDisabled as i16
    );
    let ResponseKind::DescribeAcls(described) = h.call(ADMIN, 3, describe_acls(ANY, None, ANY))
    else {
        panic!()
    };
    assert_eq!(described.error_code, ErrorCode::SecurityDisabled as i16);
    // Without an authorizer everyone may do everything.
    h.call(BOB, 7, create_topic("t"));
    assert_eq!(produce_error(h.call(BOB, 9, produce("t"))), 0);
}

#[test]
fn bindings_are_created_described_by_filter_deleted_and_survive_a_restart() {
    let mut h = Harness::secured();
    h.grant(&[
        (TOPIC, "orders", LITERAL, ALICE, READ, ALLOW),
        (TOPIC, "ord", PREFIXED, BOB, WRITE, ALLOW),
        (TOPIC, "*", LITERAL, BOB, DESCRIBE, DENY),
        (GROUP, "g", LITERAL, ALICE, READ, ALLOW),
    ]);
    // Bad bindings are refused one by one, the others go on.
    let response = h.call(
        ADMIN,
        3,
        create_acls(&[
            (CLUSTER, "not-the-cluster", LITERAL, ALICE, DESCRIBE, ALLOW),
            (TOPIC, "x", MATCH, ALICE, READ, ALLOW),
            (TOPIC, "x", LITERAL, "alice", READ, ALLOW),
        ]),
    );
    let ResponseKind::CreateAcls(created) = response else {
        panic!()
    };
    let invalid = ErrorCode::InvalidRequest as i16;
    assert!(
        created.results.iter().all(|r| r.error_code == invalid),
        "{created:?}"
    );
    // MATCH finds every binding that applies to the name: literal, wildcard, prefix.
    let matching = described(h.call(ADMIN, 3, describe_acls(TOPIC, Some("orders"), MATCH)));
    assert_eq!(matching.len(), 3, "{matching:?}");
    // A literal filter finds the exact pattern only.
    let literal = described(h.call(ADMIN, 3, describe_acls(TOPIC, Some("orders"), LITERAL)));
    assert_eq!(
        literal,
        [("orders".into(), LITERAL, ALICE.into(), READ, ALLOW)]
    );
    assert_eq!(
        described(h.call(ADMIN, 2, describe_acls(ANY, None, ANY))).len(),
        4
    );
    // Only the super user (nobody else has ALTER on the cluster) may change ACLs.
    let response = h.call(
        ALICE,
        3,
        create_acls(&[(TOPIC, "t", LITERAL, ALICE, WRITE, ALLOW)]),
    );
    let ResponseKind::CreateAcls(created) = response else {
        panic!()
    };
    let refused = ErrorCode::ClusterAuthorizationFailed as i16;
    assert_eq!(created.results[0].error_code, refused);
    let mut h = h.restart();
    assert_eq!(
        described(h.call(ADMIN, 1, describe_acls(ANY, None, ANY))).len(),
        4
    );
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(text("orders")))
        .with_pattern_type_filter(MATCH)
        .with_principal_filter(Some(text(BOB)))
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let request = DeleteAclsRequest::default().with_filters(vec![filter]);
    let ResponseKind::DeleteAcls(deleted) = h.call(ADMIN, 3, RequestKind::DeleteAcls(request))
    else {
        panic!()
    };
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 2);
    let mut h = h.restart();
    let left = described(h.call(ADMIN, 3, describe_acls(ANY, None, ANY)));
    let principals: Vec<&str> = left.iter().map(|acl| acl.2.as_str()).collect();
    assert_eq!(principals, [ALICE, ALICE], "{left:?}");
}

#[test]
fn produce_fetch_and_metadata_check_the_topic_and_deny_wins() {
    let mut h = Harness::secured();
    h.call(ADMIN, 7, create_topic("t"));
    h.call(ADMIN, 7, create_topic("logs-app"));
    h.grant(&[
        (TOPIC, "t", LITERAL, ALICE, WRITE, ALLOW),
        (TOPIC, "logs-", PREFIXED, BOB, READ, ALLOW),
    ]);
    assert_eq!(produce_error(h.call(ALICE, 9, produce("t"))), 0);
    assert_eq!(produce_error(h.call(BOB, 9, produce("t"))), TOPIC_DENIED);
    // WRITE does not give READ; the prefixed READ is bob's, on logs-* only.
    assert_eq!(fetch_error(h.call(ALICE, 12, fetch("t"))), TOPIC_DENIED);
    assert_eq!(fetch_error(h.call(BOB, 12, fetch("logs-app"))), 0);
    assert_eq!(fetch_error(h.call(BOB, 12, fetch("t"))), TOPIC_DENIED);
    // All topics: each sees what it may describe (WRITE and READ imply DESCRIBE).
    assert_eq!(metadata_topics(&mut h, ALICE, None), [("t".into(), 0)]);
    assert_eq!(metadata_topics(&mut h, BOB, None), [("logs-app".into(), 0)]);
    assert_eq!(metadata_topics(&mut h, ADMIN, None).len(), 2);
    // A named topic it may not describe is refused, whether it exists or not.
    let named = metadata_topics(&mut h, BOB, Some(&["t", "absent"]));
    assert_eq!(
        named,
        [("t".into(), TOPIC_DENIED), ("absent".into(), TOPIC_DENIED)]
    );
    // DENY wins over ALLOW.
    h.grant(&[(TOPIC, "t", LITERAL, ALICE, WRITE, DENY)]);
    assert_eq!(produce_error(h.call(ALICE, 9, produce("t"))), TOPIC_DENIED);
    // Creating topics needs CREATE.
    let ResponseKind::CreateTopics(created) = h.call(ALICE, 7, create_topic("new")) else {
        panic!()
    };
    assert_eq!(created.topics[0].error_code, TOPIC_DENIED);
}

#[test]
fn idempotent_producers_need_idempotent_write_or_write_on_some_topic() {
    let mut h = Harness::secured();
    let init = || {
        RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
    };
    let error = |response: ResponseKind| {
        let ResponseKind::InitProducerId(response) = response else {
            panic!()
        };
        response.error_code
    };
    let refused = ErrorCode::ClusterAuthorizationFailed as i16;
    assert_eq!(error(h.call(ALICE, 4, init())), refused);
    h.grant(&[(TOPIC, "t-", PREFIXED, ALICE, WRITE, ALLOW)]);
    assert_eq!(error(h.call(ALICE, 4, init())), 0);
    // A DENY covering the only topic pattern alice may write takes it back.
    h.grant(&[(TOPIC, "t", PREFIXED, ALICE, WRITE, DENY)]);
    assert_eq!(error(h.call(ALICE, 4, init())), refused);
}

#[test]
fn a_group_member_needs_read_on_the_group() {
    let mut h = Harness::secured();
    let join = || {
        RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(text("g")))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(text("range"))
                        .with_metadata(Bytes::from_static(b"m")),
                ]),
        )
    };
    let error = |response: ResponseKind| {
        let ResponseKind::JoinGroup(response) = response else {
            panic!()
        };
        response.error_code
    };
    let refused = ErrorCode::GroupAuthorizationFailed as i16;
    assert_eq!(error(h.call(ALICE, 5, join())), refused);
    assert_eq!(error(h.call(ALICE, 9, join())), refused);
    h.grant(&[(GROUP, "g", LITERAL, ALICE, READ, ALLOW)]);
    assert_ne!(error(h.call(ALICE, 9, join())), refused);
}

#[test]
fn offset_commits_need_read_on_the_topic_and_list_groups_shows_what_may_be_described() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        FindCoordinatorRequest, ListGroupsRequest, OffsetCommitRequest,
    };
    let mut h = Harness::secured_groups();
    h.call(ADMIN, 7, create_topic("t"));
    h.grant(&[(GROUP, "g", LITERAL, ALICE, READ, ALLOW)]);
    let find = RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(text("g")));
    let ResponseKind::FindCoordinator(found) = h.call(ALICE, 3, find.clone()) else {
        panic!()
    };
    assert_eq!(found.error_code, 0, "{:?}", found.error_message);
    let ResponseKind::FindCoordinator(found) = h.call(BOB, 3, find) else {
        panic!()
    };
    assert_eq!(found.error_code, ErrorCode::GroupAuthorizationFailed as i16);
    let commit = || {
        RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(text("g")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(text("t")))
                        .with_partitions(vec![
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]),
        )
    };
    let error = |response: ResponseKind| {
        let ResponseKind::OffsetCommit(response) = response else {
            panic!()
        };
        response.topics[0].partitions[0].error_code
    };
    assert_eq!(error(h.call(ALICE, 8, commit())), TOPIC_DENIED);
    assert_eq!(
        error(h.call(BOB, 8, commit())),
        ErrorCode::GroupAuthorizationFailed as i16
    );
    h.grant(&[(TOPIC, "t", LITERAL, ALICE, READ, ALLOW)]);
    assert_eq!(error(h.call(ALICE, 8, commit())), 0);
    let groups = |h: &mut Harness, principal: &str| {
        let list = RequestKind::ListGroups(ListGroupsRequest::default());
        let ResponseKind::ListGroups(listed) = h.call(principal, 4, list) else {
            panic!()
        };
        let names = listed.groups.iter().map(|g| g.group_id.to_string());
        names.collect::<Vec<String>>()
    };
    assert_eq!(groups(&mut h, ALICE), ["g"]);
    assert!(groups(&mut h, BOB).is_empty());
    assert_eq!(groups(&mut h, ADMIN), ["g"]);
}
