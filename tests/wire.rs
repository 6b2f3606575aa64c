//! Every advertised version of every API, round-tripped against the real binary.
//!
//! This test is what makes "advertise only tested versions" (docs/architecture.md) true: it reads
//! the broker's own ApiVersions answer and fails if any advertised (API, version) pair
//! was not exercised, so widening `src/versions.rs` without a check here fails CI.
//! Requests come from the codec's client side (`support/requests.rs`); responses are
//! decoded with the same version and their error codes and key fields checked.

mod support;

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
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
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    ProduceRequest, RequestKind, ResponseKind, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use support::requests::{RESOURCE_TOPIC, Shape, record_batch, sample, text, topic_name};
use support::wire_client::{Client, RESPONSE_PATIENCE};
use support::{Broker, Port};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Records the (API, version) pairs exercised.
struct Coverage(BTreeSet<(i16, i16)>);

impl Coverage {
    fn mark(&mut self, key: ApiKey, version: i16) {
        self.0.insert((key as i16, version));
    }
}

fn advertised(client: &mut Client) -> Vec<(ApiKey, i16, i16)> {
    let ResponseKind::ApiVersions(response) =
        call_sample(client, ApiKey::ApiVersions, 3, Shape::exhaustive(""))
    else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(response.error_code, 0);
    response
        .api_keys
        .iter()
        .map(|entry| {
            (
                ApiKey::try_from(entry.api_key).unwrap(),
                entry.min_version,
                entry.max_version,
            )
        })
        .collect()
}

/// Sends the sample request of `key` at `version` shaped as `shape`; returns the response.
fn call_sample(client: &mut Client, key: ApiKey, version: i16, shape: Shape<'_>) -> ResponseKind {
    client.call(key, version, &sample(key, version, shape))
}

fn versions(table: &[(ApiKey, i16, i16)], key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let &(_, min, max) = table
        .iter()
        .find(|(k, _, _)| *k == key)
        .unwrap_or_else(|| panic!("{key:?} not advertised"));
    min..=max
}

fn create_topic(client: &mut Client, name: &str, partitions: i32) {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1);
    let request = RequestKind::CreateTopics(
        CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(10_000),
    );
    let ResponseKind::CreateTopics(response) = client.call(ApiKey::CreateTopics, 7, &request)
    else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error_code, 0,
        "creating {name}: {:?}",
        response.topics[0].error_message
    );
}

/// Partition count and error of `name` per Metadata v12, without creating it.
fn describe_topic(client: &mut Client, name: &str) -> (i16, usize) {
    let wanted = MetadataRequestTopic::default().with_name(Some(topic_name(name)));
    let request = RequestKind::Metadata(
        MetadataRequest::default()
            .with_topics(Some(vec![wanted]))
            .with_allow_auto_topic_creation(false),
    );
    let ResponseKind::Metadata(response) = client.call(ApiKey::Metadata, 12, &request) else {
        panic!()
    };
    let topic = &response.topics[0];
    (topic.error_code, topic.partitions.len())
}

#[test]
fn every_advertised_version_of_every_api_round_trips() {
    // Groups form without waiting for more members, on a small offsets topic.
    let broker = Broker::start_with(
        Port::Free,
        &[
            "--override",
            "group.initial.rebalance.delay.ms=0",
            "--override",
            "offsets.topic.num.partitions=3",
            // ACLs in force, every request allowed: the ACL APIs round trip too.
            "--override",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "--override",
            "super.users=User:ANONYMOUS",
        ],
    );
    let mut client = broker.client();
    let table = advertised(&mut client);
    let mut coverage = Coverage(BTreeSet::new());

    for version in versions(&table, ApiKey::ApiVersions) {
        let ResponseKind::ApiVersions(response) = call_sample(
            &mut client,
            ApiKey::ApiVersions,
            version,
            Shape::exhaustive(""),
        ) else {
            panic!()
        };
        assert_eq!(response.error_code, 0);
        assert_eq!(response.api_keys.len(), table.len());
        coverage.mark(ApiKey::ApiVersions, version);
    }

    // CreateTopics: a topic of two partitions per version.
    for version in versions(&table, ApiKey::CreateTopics) {
        let name = format!("created-v{version}");
        let ResponseKind::CreateTopics(response) = call_sample(
            &mut client,
            ApiKey::CreateTopics,
            version,
            Shape::common(&name),
        ) else {
            panic!()
        };
        let [created] = response.topics.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(created.name, topic_name(&name));
        assert_eq!(
            created.error_code, 0,
            "CreateTopics v{version}: {:?}",
            created.error_message
        );
        if version >= 5 {
            assert_eq!(created.num_partitions, 2, "CreateTopics v{version}");
            assert_eq!(created.replication_factor, 1, "CreateTopics v{version}");
        }
        assert_eq!(describe_topic(&mut client, &name), (0, 2));
        coverage.mark(ApiKey::CreateTopics, version);
    }

    // Metadata: the broker itself and one topic.
    for version in versions(&table, ApiKey::Metadata) {
        let ResponseKind::Metadata(response) = call_sample(
            &mut client,
            ApiKey::Metadata,
            version,
            Shape::exhaustive("created-v2"),
        ) else {
            panic!()
        };
        let [me] = response.brokers.as_slice() else {
            panic!("Metadata v{version}: {:?}", response.brokers)
        };
        assert_eq!(me.node_id, BrokerId(1), "Metadata v{version}");
        assert_eq!(me.host.as_str(), "127.0.0.1", "Metadata v{version}");
        assert_eq!(me.port, i32::from(broker.port()), "Metadata v{version}");
        if version >= 1 {
            assert_eq!(response.controller_id, BrokerId(1), "Metadata v{version}");
        }
        if version >= 2 {
            assert!(
                response
                    .cluster_id
                    .as_ref()
                    .is_some_and(|id| !id.is_empty()),
                "Metadata v{version}"
            );
        }
        let [topic] = response.topics.as_slice() else {
            panic!("Metadata v{version}: {:?}", response.topics)
        };
        assert_eq!(topic.error_code, 0, "Metadata v{version}");
        assert_eq!(
            topic.name,
            Some(topic_name("created-v2")),
            "Metadata v{version}"
        );
        assert_eq!(topic.partitions.len(), 2, "Metadata v{version}");
        for partition in &topic.partitions {
            assert_eq!(partition.error_code, 0);
            assert_eq!(partition.leader_id, BrokerId(1));
            assert_eq!(partition.replica_nodes, vec![BrokerId(1)]);
        }
        if version >= 10 {
            assert!(!topic.topic_id.is_nil(), "Metadata v{version}: topic id");
        }
        coverage.mark(ApiKey::Metadata, version);
    }

    // Produce: two records per version to one partition, acks=all.
    create_topic(&mut client, "wire", 1);
    let mut produced: Vec<String> = Vec::new();
    for version in versions(&table, ApiKey::Produce) {
        let ResponseKind::Produce(response) =
            call_sample(&mut client, ApiKey::Produce, version, Shape::common("wire"))
        else {
            panic!()
        };
        let [topic] = response.responses.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(topic.name, topic_name("wire"));
        let [partition] = topic.partition_responses.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(
            partition.error_code, 0,
            "Produce v{version}: {:?}",
            partition.error_message
        );
        assert_eq!(partition.index, 0);
        assert_eq!(
            partition.base_offset,
            produced.len() as i64,
            "Produce v{version}"
        );
        if version >= 5 {
            assert_eq!(partition.log_start_offset, 0, "Produce v{version}");
        }
        produced.push(format!("v{version}-a"));
        produced.push(format!("v{version}-b"));
        coverage.mark(ApiKey::Produce, version);
    }
    let end = produced.len() as i64;

    // Fetch: everything back, read_committed, from offset 0.
    for version in versions(&table, ApiKey::Fetch) {
        let ResponseKind::Fetch(response) =
            call_sample(&mut client, ApiKey::Fetch, version, Shape::common("wire"))
        else {
            panic!()
        };
        assert_eq!(response.error_code, 0, "Fetch v{version}");
        let [topic] = response.responses.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(topic.topic, topic_name("wire"));
        let [partition] = topic.partitions.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(partition.error_code, 0, "Fetch v{version}");
        assert_eq!(partition.high_watermark, end, "Fetch v{version}");
        assert_eq!(
            partition.last_stable_offset, end,
            "Fetch v{version}: read_committed needs the LSO"
        );
        if version >= 5 {
            assert_eq!(partition.log_start_offset, 0, "Fetch v{version}");
        }
        let mut records = partition.records.clone().unwrap_or_default();
        let values: Vec<String> = RecordBatchDecoder::decode_all(&mut records)
            .unwrap()
            .into_iter()
            .flat_map(|set| set.records)
            .map(|record| String::from_utf8(record.value.unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(values, produced, "Fetch v{version}");
        coverage.mark(ApiKey::Fetch, version);
    }

    // ListOffsets: latest and earliest.
    for version in versions(&table, ApiKey::ListOffsets) {
        for (timestamp, expected) in [(-1, end), (-2, 0)] {
            let RequestKind::ListOffsets(request) =
                sample(ApiKey::ListOffsets, version, Shape::common("wire"))
            else {
                panic!()
            };
            let mut partition = ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp);
            if version >= 4 {
                partition = partition.with_current_leader_epoch(-1);
            }
            let request = request.with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic_name("wire"))
                    .with_partitions(vec![partition]),
            ]);
            let ResponseKind::ListOffsets(response) = client.call(
                ApiKey::ListOffsets,
                version,
                &RequestKind::ListOffsets(request),
            ) else {
                panic!()
            };
            let answer = &response.topics[0].partitions[0];
            assert_eq!(
                answer.error_code, 0,
                "ListOffsets v{version} at {timestamp}"
            );
            assert_eq!(
                answer.offset, expected,
                "ListOffsets v{version} at {timestamp}"
            );
        }
        coverage.mark(ApiKey::ListOffsets, version);
    }

    // InitProducerId: an idempotent producer id (kafka-python asks by default).
    for version in versions(&table, ApiKey::InitProducerId) {
        let ResponseKind::InitProducerId(response) = call_sample(
            &mut client,
            ApiKey::InitProducerId,
            version,
            Shape::common(""),
        ) else {
            panic!()
        };
        assert_eq!(response.error_code, 0, "InitProducerId v{version}");
        assert!(response.producer_id.0 >= 0, "InitProducerId v{version}");
        assert!(response.producer_epoch >= 0, "InitProducerId v{version}");
        coverage.mark(ApiKey::InitProducerId, version);
    }

    // DescribeConfigs: the topic's settings, all of them and two by name.
    for version in versions(&table, ApiKey::DescribeConfigs) {
        for exhaustive in [false, true] {
            let ResponseKind::DescribeConfigs(response) = call_sample(
                &mut client,
                ApiKey::DescribeConfigs,
                version,
                Shape {
                    topic: "wire",
                    exhaustive,
                },
            ) else {
                panic!()
            };
            let [result] = response.results.as_slice() else {
                panic!("{response:?}")
            };
            assert_eq!(
                result.error_code, 0,
                "DescribeConfigs v{version}: {:?}",
                result.error_message
            );
            assert_eq!(result.resource_type, RESOURCE_TOPIC);
            assert_eq!(result.resource_name, text("wire"));
            let names: BTreeSet<&str> = result
                .configs
                .iter()
                .map(|config| config.name.as_str())
                .collect();
            assert!(
                names.contains("retention.ms"),
                "DescribeConfigs v{version}: {names:?}"
            );
            if exhaustive {
                assert_eq!(
                    names,
                    BTreeSet::from(["retention.ms", "segment.bytes"]),
                    "DescribeConfigs v{version}"
                );
            }
        }
        coverage.mark(ApiKey::DescribeConfigs, version);
    }

    // AlterConfigs and IncrementalAlterConfigs: retention.ms set (validate-only in
    // the exhaustive shape), then read back.
    for key in [ApiKey::AlterConfigs, ApiKey::IncrementalAlterConfigs] {
        for version in versions(&table, key) {
            for exhaustive in [false, true] {
                let shape = Shape {
                    topic: "wire",
                    exhaustive,
                };
                let errors: Vec<(i16, Option<StrBytes>)> =
                    match call_sample(&mut client, key, version, shape) {
                        ResponseKind::AlterConfigs(response) => response
                            .responses
                            .into_iter()
                            .map(|r| (r.error_code, r.error_message))
                            .collect(),
                        ResponseKind::IncrementalAlterConfigs(response) => response
                            .responses
                            .into_iter()
                            .map(|r| (r.error_code, r.error_message))
                            .collect(),
                        other => panic!("{key:?} v{version}: {other:?}"),
                    };
                assert_eq!(errors, vec![(0, None)], "{key:?} v{version}");
            }
            coverage.mark(key, version);
        }
    }
    let ResponseKind::DescribeConfigs(described) = call_sample(
        &mut client,
        ApiKey::DescribeConfigs,
        4,
        Shape::common("wire"),
    ) else {
        panic!()
    };
    let retention = described.results[0]
        .configs
        .iter()
        .find(|config| config.name.as_str() == "retention.ms")
        .expect("retention.ms described");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.config_source, 1, "a topic override");

    // CreatePartitions: grow a one-partition topic to three.
    for version in versions(&table, ApiKey::CreatePartitions) {
        let name = format!("grown-v{version}");
        create_topic(&mut client, &name, 1);
        let grown = CreatePartitionsTopic::default()
            .with_name(topic_name(&name))
            .with_count(3)
            .with_assignments(None);
        let request = RequestKind::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_topics(vec![grown])
                .with_timeout_ms(10_000),
        );
        let ResponseKind::CreatePartitions(response) =
            client.call(ApiKey::CreatePartitions, version, &request)
        else {
            panic!()
        };
        let [result] = response.results.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(
            result.error_code, 0,
            "CreatePartitions v{version}: {:?}",
            result.error_message
        );
        assert_eq!(
            describe_topic(&mut client, &name),
            (0, 3),
            "CreatePartitions v{version}"
        );
        coverage.mark(ApiKey::CreatePartitions, version);
    }

    // DeleteTopics: each version deletes the topic CreateTopics of some version made.
    let created: Vec<i16> = versions(&table, ApiKey::CreateTopics).collect();
    for (index, version) in versions(&table, ApiKey::DeleteTopics).enumerate() {
        let name = format!("created-v{}", created[index % created.len()]);
        if describe_topic(&mut client, &name).0 != 0 {
            create_topic(&mut client, &name, 2);
        }
        let ResponseKind::DeleteTopics(response) = call_sample(
            &mut client,
            ApiKey::DeleteTopics,
            version,
            Shape::common(&name),
        ) else {
            panic!()
        };
        let [result] = response.responses.as_slice() else {
            panic!("{response:?}")
        };
        assert_eq!(
            result.error_code, 0,
            "DeleteTopics v{version}: {:?}",
            result.error_message
        );
        assert_eq!(
            result.name,
            Some(topic_name(&name)),
            "DeleteTopics v{version}"
        );
        assert_eq!(
            describe_topic(&mut client, &name).0,
            UNKNOWN_TOPIC_OR_PARTITION,
            "DeleteTopics v{version}"
        );
        coverage.mark(ApiKey::DeleteTopics, version);
    }

    group_round_trips(&mut client, i32::from(broker.port()), &table, &mut coverage);
    admin_round_trips(
        &mut client,
        i32::from(broker.port()),
        end,
        &table,
        &mut coverage,
    );

    acl_round_trips(&mut client, &table, &mut coverage);
    security_round_trips(&mut client, &table, &mut coverage);

    let mut missing = Vec::new();
    for &(key, min, max) in &table {
        for version in min..=max {
            if !coverage.0.contains(&(key as i16, version)) {
                missing.push(format!("{key:?} v{version}"));
            }
        }
    }
    assert!(missing.is_empty(), "advertised but not tested: {missing:?}");
}

#[test]
fn acks_0_produce_gets_no_response_and_does_not_block_the_next_one() {
    let broker = Broker::start();
    let mut client = broker.client();
    create_topic(&mut client, "fire-and-forget", 1);
    for version in [3, 9] {
        let partition = PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(record_batch(&["x"], 1)));
        let topic = TopicProduceData::default()
            .with_name(topic_name("fire-and-forget"))
            .with_partition_data(vec![partition]);
        let request = ProduceRequest::default()
            .with_acks(0)
            .with_timeout_ms(1000)
            .with_topic_data(vec![topic]);
        client.send(ApiKey::Produce, version, &RequestKind::Produce(request));
        // The next response on the wire belongs to the next request.
        let ResponseKind::ApiVersions(response) =
            call_sample(&mut client, ApiKey::ApiVersions, 0, Shape::common(""))
        else {
            panic!()
        };
        assert_eq!(response.error_code, 0);
    }
    // Both records landed (acks=0 still writes; nothing acknowledged it).
    let deadline = std::time::Instant::now() + RESPONSE_PATIENCE;
    loop {
        let RequestKind::ListOffsets(request) =
            sample(ApiKey::ListOffsets, 7, Shape::common("fire-and-forget"))
        else {
            panic!()
        };
        let ResponseKind::ListOffsets(response) =
            client.call(ApiKey::ListOffsets, 7, &RequestKind::ListOffsets(request))
        else {
            panic!()
        };
        if response.topics[0].partitions[0].offset == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "acks=0 records never became visible"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn records_survive_a_restart() {
    let mut broker = Broker::start();
    let mut client = broker.client();
    let request = sample(ApiKey::Produce, 9, Shape::common("durable"));
    // Auto-created by the produce's metadata request first.
    let wanted = MetadataRequestTopic::default().with_name(Some(topic_name("durable")));
    client.call(
        ApiKey::Metadata,
        9,
        &RequestKind::Metadata(
            MetadataRequest::default()
                .with_topics(Some(vec![wanted]))
                .with_allow_auto_topic_creation(true),
        ),
    );
    let ResponseKind::Produce(response) = client.call(ApiKey::Produce, 9, &request) else {
        panic!()
    };
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    drop(client);
    assert!(broker.signal_and_wait("TERM").success());

    broker.restart();
    let mut client = broker.client();
    let ResponseKind::Fetch(response) =
        call_sample(&mut client, ApiKey::Fetch, 12, Shape::common("durable"))
    else {
        panic!()
    };
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.high_watermark, 2);
    let mut records: Bytes = partition.records.clone().unwrap_or_default();
    let count: usize = RecordBatchDecoder::decode_all(&mut records)
        .unwrap()
        .iter()
        .map(|set| set.records.len())
        .sum();
    assert_eq!(count, 2);
}

/// A long-polling Fetch holds back the answers to everything pipelined behind it, even
/// ones the front end answers itself: Kafka clients match responses by order.
#[test]
fn responses_keep_request_order_behind_a_long_poll() {
    let broker = Broker::start();
    let mut client = broker.client();
    create_topic(&mut client, "quiet", 1);
    let RequestKind::Fetch(fetch) = sample(ApiKey::Fetch, 12, Shape::common("quiet")) else {
        panic!()
    };
    let fetch = RequestKind::Fetch(fetch.with_max_wait_ms(400).with_min_bytes(1));
    let api_versions = sample(ApiKey::ApiVersions, 3, Shape::common(""));
    let metadata = sample(ApiKey::Metadata, 12, Shape::common("quiet"));

    let started = std::time::Instant::now();
    let first = client.send(ApiKey::Fetch, 12, &fetch);
    let second = client.send(ApiKey::ApiVersions, 3, &api_versions);
    let third = client.send(ApiKey::Metadata, 12, &metadata);
    let ResponseKind::Fetch(response) = client.receive(ApiKey::Fetch, 12, first) else {
        panic!()
    };
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(350),
        "the fetch waited for data"
    );
    assert!(matches!(
        client.receive(ApiKey::ApiVersions, 3, second),
        ResponseKind::ApiVersions(_)
    ));
    assert!(matches!(
        client.receive(ApiKey::Metadata, 12, third),
        ResponseKind::Metadata(_)
    ));
}

const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_MEMBER_ID: i16 = 25;
const NON_EMPTY_GROUP: i16 = 68;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

fn group(name: &str) -> GroupId {
    GroupId(text(name))
}

/// FindCoordinator at `version` for `key`, retried while the offsets topic is being
/// created; returns (node id, port).
fn find_coordinator(client: &mut Client, version: i16, key: &str) -> (i32, i32) {
    for _ in 0..100 {
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request = request.with_coordinator_keys(vec![text(key)]);
        } else {
            request = request.with_key(text(key));
        }
        let ResponseKind::FindCoordinator(response) = client.call(
            ApiKey::FindCoordinator,
            version,
            &RequestKind::FindCoordinator(request),
        ) else {
            panic!()
        };
        let (error, node, port) = if version >= 4 {
            let [entry] = response.coordinators.as_slice() else {
                panic!("FindCoordinator v{version}: {response:?}")
            };
            assert_eq!(entry.key.as_str(), key, "FindCoordinator v{version}");
            (entry.error_code, entry.node_id.0, entry.port)
        } else {
            (response.error_code, response.node_id.0, response.port)
        };
        if error == COORDINATOR_NOT_AVAILABLE {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        assert_eq!(error, 0, "FindCoordinator v{version}");
        return (node, port);
    }
    panic!("FindCoordinator v{version}: the coordinator never became available");
}

/// JoinGroup at `version` as a lone member of `name`: returns (member id, generation).
/// v4+ go through KIP-394's MEMBER_ID_REQUIRED round first.
fn join(client: &mut Client, version: i16, name: &str) -> (String, i32) {
    let protocol = JoinGroupRequestProtocol::default()
        .with_name(text("range"))
        .with_metadata(Bytes::from_static(b"subscription"));
    let request = |member_id: &str| {
        let mut request = JoinGroupRequest::default()
            .with_group_id(group(name))
            .with_session_timeout_ms(30_000)
            .with_member_id(text(member_id))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![protocol.clone()]);
        if version >= 1 {
            request = request.with_rebalance_timeout_ms(30_000);
        }
        if version >= 8 {
            request = request.with_reason(Some(text("wire test")));
        }
        RequestKind::JoinGroup(request)
    };
    let call = |client: &mut Client, member_id: &str| {
        let ResponseKind::JoinGroup(response) =
            client.call(ApiKey::JoinGroup, version, &request(member_id))
        else {
            panic!()
        };
        response
    };
    let mut response = call(client, "");
    if version >= 4 {
        assert_eq!(
            response.error_code, MEMBER_ID_REQUIRED,
            "JoinGroup v{version}: KIP-394"
        );
        assert!(!response.member_id.is_empty(), "JoinGroup v{version}");
        let member_id = response.member_id.as_str().to_string();
        response = call(client, &member_id);
    }
    assert_eq!(response.error_code, 0, "JoinGroup v{version}");
    assert_eq!(response.generation_id, 1, "JoinGroup v{version}");
    assert_eq!(
        response.leader, response.member_id,
        "JoinGroup v{version}: alone, so leader"
    );
    assert_eq!(
        response.members.len(),
        1,
        "JoinGroup v{version}: the leader sees the members"
    );
    assert_eq!(response.members[0].metadata.as_ref(), b"subscription");
    if version >= 7 {
        assert_eq!(
            response.protocol_name.as_ref().map(|p| p.as_str()),
            Some("range")
        );
        assert_eq!(
            response.protocol_type.as_ref().map(|p| p.as_str()),
            Some("consumer")
        );
    } else {
        assert_eq!(
            response.protocol_name.as_ref().map(|p| p.as_str()),
            Some("range")
        );
    }
    (
        response.member_id.as_str().to_string(),
        response.generation_id,
    )
}

/// Every advertised version of the group APIs, each in a real exchange: a group per
/// JoinGroup version goes through join, sync, heartbeat, commit, fetch, describe,
/// list, leave and delete.
fn group_round_trips(
    client: &mut Client,
    port: i32,
    table: &[(ApiKey, i16, i16)],
    coverage: &mut Coverage,
) {
    create_topic(client, "group-data", 2);
    for version in versions(table, ApiKey::FindCoordinator) {
        let (node, coordinator_port) = find_coordinator(client, version, "wire-group");
        assert_eq!(node, 1, "FindCoordinator v{version}: the only broker");
        assert_eq!(coordinator_port, port, "FindCoordinator v{version}");
        coverage.mark(ApiKey::FindCoordinator, version);
    }
    let joins: Vec<i16> = versions(table, ApiKey::JoinGroup).collect();
    let syncs: Vec<i16> = versions(table, ApiKey::SyncGroup).collect();
    let heartbeats: Vec<i16> = versions(table, ApiKey::Heartbeat).collect();
    let commits: Vec<i16> = versions(table, ApiKey::OffsetCommit).collect();
    let fetches: Vec<i16> = versions(table, ApiKey::OffsetFetch).collect();
    let describes: Vec<i16> = versions(table, ApiKey::DescribeGroups).collect();
    let leaves: Vec<i16> = versions(table, ApiKey::LeaveGroup).collect();
    let deletes: Vec<i16> = versions(table, ApiKey::DeleteGroups).collect();
    // One group per step of the longest list, each using that step's version of
    // every API (wrapping around the shorter lists).
    let rounds = [
        joins.len(),
        syncs.len(),
        heartbeats.len(),
        commits.len(),
        fetches.len(),
        describes.len(),
        leaves.len(),
        deletes.len(),
    ]
    .into_iter()
    .max()
    .unwrap();
    let mut names = Vec::new();
    for round in 0..rounds {
        let name = format!("wire-group-{round}");
        let pick = |list: &[i16]| list[round % list.len()];
        let (join_v, sync_v, beat_v) = (pick(&joins), pick(&syncs), pick(&heartbeats));
        let (commit_v, fetch_v, describe_v) = (pick(&commits), pick(&fetches), pick(&describes));
        let (leave_v, delete_v) = (pick(&leaves), pick(&deletes));

        let (member, generation) = join(client, join_v, &name);
        coverage.mark(ApiKey::JoinGroup, join_v);

        let mut sync = SyncGroupRequest::default()
            .with_group_id(group(&name))
            .with_generation_id(generation)
            .with_member_id(text(&member))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(text(&member))
                    .with_assignment(Bytes::from_static(b"all of group-data")),
            ]);
        if sync_v >= 5 {
            sync = sync
                .with_protocol_type(Some(text("consumer")))
                .with_protocol_name(Some(text("range")));
        }
        let ResponseKind::SyncGroup(synced) =
            client.call(ApiKey::SyncGroup, sync_v, &RequestKind::SyncGroup(sync))
        else {
            panic!()
        };
        assert_eq!(synced.error_code, 0, "SyncGroup v{sync_v}");
        assert_eq!(
            synced.assignment.as_ref(),
            b"all of group-data",
            "SyncGroup v{sync_v}"
        );
        coverage.mark(ApiKey::SyncGroup, sync_v);

        let heartbeat = |member: &str| {
            RequestKind::Heartbeat(
                HeartbeatRequest::default()
                    .with_group_id(group(&name))
                    .with_generation_id(generation)
                    .with_member_id(text(member)),
            )
        };
        let ResponseKind::Heartbeat(beat) =
            client.call(ApiKey::Heartbeat, beat_v, &heartbeat(&member))
        else {
            panic!()
        };
        assert_eq!(beat.error_code, 0, "Heartbeat v{beat_v}");
        let ResponseKind::Heartbeat(stranger) =
            client.call(ApiKey::Heartbeat, beat_v, &heartbeat("nobody"))
        else {
            panic!()
        };
        assert_eq!(
            stranger.error_code, UNKNOWN_MEMBER_ID,
            "Heartbeat v{beat_v}"
        );
        coverage.mark(ApiKey::Heartbeat, beat_v);

        let offset = 10 + i64::try_from(round).unwrap();
        let mut commit = OffsetCommitRequest::default()
            .with_group_id(group(&name))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(&member))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name("group-data"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(offset)
                            .with_committed_metadata(Some(text("wire"))),
                    ]),
            ]);
        if commit_v <= 4 {
            commit = commit.with_retention_time_ms(-1);
        }
        let ResponseKind::OffsetCommit(committed) = client.call(
            ApiKey::OffsetCommit,
            commit_v,
            &RequestKind::OffsetCommit(commit),
        ) else {
            panic!()
        };
        assert_eq!(
            committed.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{commit_v}"
        );
        coverage.mark(ApiKey::OffsetCommit, commit_v);

        let mut fetch = OffsetFetchRequest::default();
        if fetch_v <= 7 {
            fetch = fetch.with_group_id(group(&name)).with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(topic_name("group-data"))
                    .with_partition_indexes(vec![0, 1]),
            ]));
        } else {
            fetch = fetch.with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(group(&name))
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(topic_name("group-data"))
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            ]);
        }
        let ResponseKind::OffsetFetch(fetched) = client.call(
            ApiKey::OffsetFetch,
            fetch_v,
            &RequestKind::OffsetFetch(fetch),
        ) else {
            panic!()
        };
        let partitions: Vec<(i32, i64, Option<String>)> = if fetch_v <= 7 {
            assert_eq!(fetched.error_code, 0, "OffsetFetch v{fetch_v}");
            fetched.topics[0]
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.committed_offset,
                        p.metadata.as_ref().map(|m| m.as_str().to_string()),
                    )
                })
                .collect()
        } else {
            let [one] = fetched.groups.as_slice() else {
                panic!("OffsetFetch v{fetch_v}: {fetched:?}")
            };
            assert_eq!(one.error_code, 0, "OffsetFetch v{fetch_v}");
            one.topics[0]
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.committed_offset,
                        p.metadata.as_ref().map(|m| m.as_str().to_string()),
                    )
                })
                .collect()
        };
        assert_eq!(
            partitions,
            vec![
                (0, -1, Some(String::new())),
                (1, offset, Some("wire".to_string()))
            ],
            "OffsetFetch v{fetch_v}: nothing for 0, the commit for 1"
        );
        coverage.mark(ApiKey::OffsetFetch, fetch_v);

        let ResponseKind::DescribeGroups(described) = client.call(
            ApiKey::DescribeGroups,
            describe_v,
            &RequestKind::DescribeGroups(
                DescribeGroupsRequest::default().with_groups(vec![group(&name)]),
            ),
        ) else {
            panic!()
        };
        let [described] = described.groups.as_slice() else {
            panic!("DescribeGroups v{describe_v}")
        };
        assert_eq!(described.error_code, 0, "DescribeGroups v{describe_v}");
        assert_eq!(
            described.group_state.as_str(),
            "Stable",
            "DescribeGroups v{describe_v}"
        );
        assert_eq!(
            described.protocol_data.as_str(),
            "range",
            "DescribeGroups v{describe_v}"
        );
        let [described_member] = described.members.as_slice() else {
            panic!("DescribeGroups v{describe_v}: one member")
        };
        assert_eq!(described_member.member_id.as_str(), member);
        assert_eq!(described_member.client_host.as_str(), "/127.0.0.1");
        assert_eq!(
            described_member.member_assignment.as_ref(),
            b"all of group-data",
            "DescribeGroups v{describe_v}"
        );
        coverage.mark(ApiKey::DescribeGroups, describe_v);

        let leave = if leave_v <= 2 {
            LeaveGroupRequest::default()
                .with_group_id(group(&name))
                .with_member_id(text(&member))
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group(&name))
                .with_members(vec![
                    MemberIdentity::default().with_member_id(text(&member)),
                ])
        };
        // A group with a member cannot be deleted; once it left, it can.
        if round % 2 == 0 {
            let ResponseKind::DeleteGroups(refused) = client.call(
                ApiKey::DeleteGroups,
                delete_v,
                &RequestKind::DeleteGroups(
                    DeleteGroupsRequest::default().with_groups_names(vec![group(&name)]),
                ),
            ) else {
                panic!()
            };
            assert_eq!(
                refused.results[0].error_code, NON_EMPTY_GROUP,
                "DeleteGroups v{delete_v}"
            );
        }
        let ResponseKind::LeaveGroup(left) =
            client.call(ApiKey::LeaveGroup, leave_v, &RequestKind::LeaveGroup(leave))
        else {
            panic!()
        };
        assert_eq!(left.error_code, 0, "LeaveGroup v{leave_v}");
        if leave_v >= 3 {
            assert_eq!(left.members[0].error_code, 0, "LeaveGroup v{leave_v}");
        }
        coverage.mark(ApiKey::LeaveGroup, leave_v);
        names.push(name);
    }

    // ListGroups: every group, Empty now that its member left.
    for version in versions(table, ApiKey::ListGroups) {
        let mut request = ListGroupsRequest::default();
        if version >= 4 {
            request = request.with_states_filter(vec![text("Empty")]);
        }
        let ResponseKind::ListGroups(listed) = client.call(
            ApiKey::ListGroups,
            version,
            &RequestKind::ListGroups(request),
        ) else {
            panic!()
        };
        assert_eq!(listed.error_code, 0, "ListGroups v{version}");
        let mut ids: Vec<String> = listed
            .groups
            .iter()
            .map(|g| g.group_id.as_str().to_string())
            .collect();
        ids.sort();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(ids, expected, "ListGroups v{version}");
        for listed in &listed.groups {
            assert_eq!(
                listed.protocol_type.as_str(),
                "consumer",
                "ListGroups v{version}"
            );
            if version >= 4 {
                assert_eq!(
                    listed.group_state.as_str(),
                    "Empty",
                    "ListGroups v{version}"
                );
            }
        }
        coverage.mark(ApiKey::ListGroups, version);
    }

    // DeleteGroups: every version deletes an empty group; the group is gone after.
    for (index, version) in versions(table, ApiKey::DeleteGroups).enumerate() {
        let name = &names[index];
        let ResponseKind::DeleteGroups(deleted) = client.call(
            ApiKey::DeleteGroups,
            version,
            &RequestKind::DeleteGroups(
                DeleteGroupsRequest::default().with_groups_names(vec![group(name)]),
            ),
        ) else {
            panic!()
        };
        let [result] = deleted.results.as_slice() else {
            panic!("DeleteGroups v{version}")
        };
        assert_eq!(result.group_id.as_str(), name.as_str());
        assert_eq!(result.error_code, 0, "DeleteGroups v{version}");
        let ResponseKind::DescribeGroups(gone) = client.call(
            ApiKey::DescribeGroups,
            5,
            &RequestKind::DescribeGroups(
                DescribeGroupsRequest::default().with_groups(vec![group(name)]),
            ),
        ) else {
            panic!()
        };
        assert_eq!(
            gone.groups[0].group_state.as_str(),
            "Dead",
            "after DeleteGroups v{version}"
        );
        coverage.mark(ApiKey::DeleteGroups, version);
    }
}

/// Every advertised version of OffsetForLeaderEpoch, DescribeCluster, DescribeLogDirs,
/// OffsetDelete and DeleteRecords, against topic `wire` (one partition, `end` records,
/// written in leader epoch 1) and a group that committed an offset of it.
fn admin_round_trips(
    client: &mut Client,
    port: i32,
    end: i64,
    table: &[(ApiKey, i16, i16)],
    coverage: &mut Coverage,
) {
    for version in versions(table, ApiKey::OffsetForLeaderEpoch) {
        let ResponseKind::OffsetForLeaderEpoch(response) = call_sample(
            client,
            ApiKey::OffsetForLeaderEpoch,
            version,
            Shape::common("wire"),
        ) else {
            panic!()
        };
        let answer = &response.topics[0].partitions[0];
        assert_eq!(
            (answer.error_code, answer.leader_epoch, answer.end_offset),
            (0, 1, end),
            "OffsetForLeaderEpoch v{version}"
        );
        coverage.mark(ApiKey::OffsetForLeaderEpoch, version);
    }
    for version in versions(table, ApiKey::DescribeCluster) {
        let ResponseKind::DescribeCluster(response) = call_sample(
            client,
            ApiKey::DescribeCluster,
            version,
            Shape::common("wire"),
        ) else {
            panic!()
        };
        assert_eq!(response.error_code, 0, "DescribeCluster v{version}");
        assert!(
            !response.cluster_id.is_empty(),
            "DescribeCluster v{version}"
        );
        assert_eq!(
            response.controller_id,
            BrokerId(1),
            "DescribeCluster v{version}"
        );
        assert_eq!(response.cluster_authorized_operations, i32::MIN);
        let [me] = response.brokers.as_slice() else {
            panic!("DescribeCluster v{version}: {response:?}")
        };
        assert_eq!(
            (me.broker_id, me.host.as_str(), me.port, me.rack.is_none()),
            (BrokerId(1), "127.0.0.1", port, true),
            "DescribeCluster v{version}"
        );
        coverage.mark(ApiKey::DescribeCluster, version);
    }
    for version in versions(table, ApiKey::DescribeLogDirs) {
        let ResponseKind::DescribeLogDirs(response) = call_sample(
            client,
            ApiKey::DescribeLogDirs,
            version,
            Shape::common("wire"),
        ) else {
            panic!()
        };
        let [dir] = response.results.as_slice() else {
            panic!("DescribeLogDirs v{version}: {response:?}")
        };
        assert_eq!(dir.error_code, 0, "DescribeLogDirs v{version}");
        assert!(
            dir.log_dir.starts_with('/'),
            "{:?}: an absolute path",
            dir.log_dir
        );
        let wire = dir
            .topics
            .iter()
            .find(|topic| topic.name == topic_name("wire"))
            .unwrap_or_else(|| panic!("DescribeLogDirs v{version}: no wire in {dir:?}"));
        assert!(
            wire.partitions[0].partition_size > 0,
            "DescribeLogDirs v{version}"
        );
        coverage.mark(ApiKey::DescribeLogDirs, version);
    }
    // OffsetDelete: the sample deletes group-wire's offset of wire-0, committed first.
    for version in versions(table, ApiKey::OffsetDelete) {
        find_coordinator(client, 3, "group-wire");
        let commit = OffsetCommitRequest::default()
            .with_group_id(group("group-wire"))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name("wire"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1),
                    ]),
            ]);
        let ResponseKind::OffsetCommit(committed) =
            client.call(ApiKey::OffsetCommit, 8, &RequestKind::OffsetCommit(commit))
        else {
            panic!()
        };
        assert_eq!(committed.topics[0].partitions[0].error_code, 0);
        let ResponseKind::OffsetDelete(response) =
            call_sample(client, ApiKey::OffsetDelete, version, Shape::common("wire"))
        else {
            panic!()
        };
        assert_eq!(response.error_code, 0, "OffsetDelete v{version}");
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "OffsetDelete v{version}"
        );
        let ResponseKind::OffsetFetch(fetched) =
            call_sample(client, ApiKey::OffsetFetch, 5, Shape::common("wire"))
        else {
            panic!()
        };
        assert_eq!(
            fetched.topics[0].partitions[0].committed_offset, -1,
            "after OffsetDelete v{version}"
        );
        coverage.mark(ApiKey::OffsetDelete, version);
    }
    delete_records_round_trips(client, end, table, coverage);
}

/// Every advertised version of DeleteRecords: version `v` deletes `wire-0` below
/// `v + 1`, and the log starts there afterwards (what ListOffsets says earliest).
fn delete_records_round_trips(
    client: &mut Client,
    end: i64,
    table: &[(ApiKey, i16, i16)],
    coverage: &mut Coverage,
) {
    for version in versions(table, ApiKey::DeleteRecords) {
        let below = i64::from(version) + 1;
        assert!(below <= end, "wire has {end} records");
        let ResponseKind::DeleteRecords(response) = call_sample(
            client,
            ApiKey::DeleteRecords,
            version,
            Shape::common("wire"),
        ) else {
            panic!()
        };
        let answer = &response.topics[0].partitions[0];
        assert_eq!(
            (answer.error_code, answer.low_watermark),
            (0, below),
            "DeleteRecords v{version}"
        );
        assert_eq!(
            earliest_offset(client, "wire"),
            below,
            "after DeleteRecords v{version}"
        );
        coverage.mark(ApiKey::DeleteRecords, version);
    }
}

/// Every advertised version of CreateAcls, DescribeAcls and DeleteAcls: version `v`
/// creates a binding on topic `acl-v<v>`, describes it and deletes it.
fn acl_round_trips(client: &mut Client, table: &[(ApiKey, i16, i16)], coverage: &mut Coverage) {
    let created: Vec<i16> = versions(table, ApiKey::CreateAcls).collect();
    for &version in &created {
        let topic = format!("acl-v{version}");
        let ResponseKind::CreateAcls(response) =
            call_sample(client, ApiKey::CreateAcls, version, Shape::common(&topic))
        else {
            panic!()
        };
        assert_eq!(response.results.len(), 1, "CreateAcls v{version}");
        let result = &response.results[0];
        assert_eq!(
            result.error_code, 0,
            "CreateAcls v{version}: {:?}",
            result.error_message
        );
        coverage.mark(ApiKey::CreateAcls, version);
    }
    for (index, version) in versions(table, ApiKey::DescribeAcls).enumerate() {
        let topic = format!("acl-v{}", created[index % created.len()]);
        let ResponseKind::DescribeAcls(response) = call_sample(
            client,
            ApiKey::DescribeAcls,
            version,
            Shape::exhaustive(&topic),
        ) else {
            panic!()
        };
        assert_eq!(response.error_code, 0, "DescribeAcls v{version}");
        let acls: Vec<_> = response.resources.iter().flat_map(|r| &r.acls).collect();
        assert_eq!(acls.len(), 1, "DescribeAcls v{version}: {response:?}");
        assert_eq!(acls[0].principal.as_str(), "User:alice");
        coverage.mark(ApiKey::DescribeAcls, version);
    }
    for (index, version) in versions(table, ApiKey::DeleteAcls).enumerate() {
        let topic = format!("acl-v{}", created[index % created.len()]);
        let ResponseKind::DeleteAcls(response) =
            call_sample(client, ApiKey::DeleteAcls, version, Shape::common(&topic))
        else {
            panic!()
        };
        let result = &response.filter_results[0];
        assert_eq!(result.error_code, 0, "DeleteAcls v{version}");
        assert_eq!(result.matching_acls.len(), 1, "DeleteAcls v{version}");
        coverage.mark(ApiKey::DeleteAcls, version);
    }
}

/// Partition 0 of `topic`'s earliest offset, as ListOffsets v7 answers it.
fn earliest_offset(client: &mut Client, topic: &str) -> i64 {
    use kafka_protocol::messages::ListOffsetsRequest;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2),
                ]),
        ]);
    let ResponseKind::ListOffsets(listed) =
        client.call(ApiKey::ListOffsets, 7, &RequestKind::ListOffsets(request))
    else {
        panic!()
    };
    let answer = &listed.topics[0].partitions[0];
    assert_eq!(answer.error_code, 0, "ListOffsets earliest of {topic}");
    answer.offset
}

/// The SASL and SCRAM APIs on this PLAINTEXT listener: SaslHandshake and
/// SaslAuthenticate are answered ILLEGAL_SASL_STATE (34) as Kafka answers them on a
/// listener without SASL; a SCRAM credential is stored and described; there are no
/// client quotas.
fn security_round_trips(
    client: &mut Client,
    table: &[(ApiKey, i16, i16)],
    coverage: &mut Coverage,
) {
    for key in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
        for version in versions(table, key) {
            let error_code = match call_sample(client, key, version, Shape::common("wire")) {
                ResponseKind::SaslHandshake(response) => response.error_code,
                ResponseKind::SaslAuthenticate(response) => response.error_code,
                other => panic!("{other:?}"),
            };
            assert_eq!(error_code, 34, "{key:?} v{version}");
            coverage.mark(key, version);
        }
    }
    for version in versions(table, ApiKey::AlterUserScramCredentials) {
        let key = ApiKey::AlterUserScramCredentials;
        let ResponseKind::AlterUserScramCredentials(response) =
            call_sample(client, key, version, Shape::common("scram-user"))
        else {
            panic!()
        };
        assert_eq!(response.results.len(), 1, "{response:?}");
        assert_eq!(response.results[0].error_code, 0, "{response:?}");
        coverage.mark(key, version);
    }
    for version in versions(table, ApiKey::DescribeUserScramCredentials) {
        let key = ApiKey::DescribeUserScramCredentials;
        let ResponseKind::DescribeUserScramCredentials(response) =
            call_sample(client, key, version, Shape::common("scram-user"))
        else {
            panic!()
        };
        let infos = &response.results[0].credential_infos;
        assert_eq!(infos.len(), 1, "{response:?}");
        assert_eq!((infos[0].mechanism, infos[0].iterations), (1, 4096));
        coverage.mark(key, version);
    }
    for version in versions(table, ApiKey::DescribeClientQuotas) {
        let key = ApiKey::DescribeClientQuotas;
        let ResponseKind::DescribeClientQuotas(response) =
            call_sample(client, key, version, Shape::common("wire"))
        else {
            panic!()
        };
        assert_eq!(response.error_code, 0);
        assert_eq!(response.entries, Some(Vec::new()));
        coverage.mark(key, version);
    }
}
