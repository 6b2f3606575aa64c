//! Every advertised version of every API, round-tripped against the real binary.
//!
//! This test is what makes "advertise only tested versions" (DESIGN §5) true: it reads
//! the broker's own ApiVersions answer and fails if any advertised (API, version) pair
//! was not exercised, so widening `src/versions.rs` without a check here fails CI.
//! Requests come from the codec's client side (`support/requests.rs`); responses are
//! decoded with the same version and their error codes and key fields checked.

mod support;

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, MetadataRequest,
    ProduceRequest, RequestKind, ResponseKind,
};
use kafka_protocol::records::RecordBatchDecoder;
use support::Broker;
use support::requests::{RESOURCE_TOPIC, Shape, record_batch, sample, text, topic_name};
use support::wire_client::{Client, RESPONSE_PATIENCE};

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
    let broker = Broker::start();
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

    // CreatePartitions: grow a one-partition topic to three.
    for version in versions(&table, ApiKey::CreatePartitions) {
        let name = format!("grown-v{version}");
        create_topic(&mut client, &name, 1);
        let grown = CreatePartitionsTopic::default()
            .with_name(topic_name(&name))
            .with_count(3);
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
