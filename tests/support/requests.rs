//! Sample requests for every API and version the broker serves, built with the codec's
//! client side. Every field and array that a version has is filled in, so an encoded
//! sample exercises the whole layout of its version. Shared by the wire round-trip test
//! (`tests/wire.rs`) and by the structural check's unit tests (`bin/src/guard.rs`, which
//! includes this file by path).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Kafka's config resource type for a topic.
pub const RESOURCE_TOPIC: i8 = 2;

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from(name.to_string()))
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from(value.to_string())
}

/// One RecordBatch v2 holding `values`, as a producer sends it (base offset 0).
pub fn record_batch(values: &[&str], timestamp_ms: i64) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: -1,
            timestamp: timestamp_ms,
            key: Some(Bytes::from(format!("key-{index}"))),
            value: Some(Bytes::from(value.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// What a sample should look like.
#[derive(Clone, Copy, Debug)]
pub struct Shape<'a> {
    /// The topic every topic-level field names.
    pub topic: &'a str,
    /// Fill in optional arrays and nullable fields too (for layout tests), or keep the
    /// request to what a client sends in the common case (for round trips).
    pub exhaustive: bool,
}

impl<'a> Shape<'a> {
    /// What a client sends in the common case, naming `topic`.
    pub fn common(topic: &'a str) -> Shape<'a> {
        Shape {
            topic,
            exhaustive: false,
        }
    }

    /// Every optional array and nullable field filled in, naming `topic`.
    pub fn exhaustive(topic: &'a str) -> Shape<'a> {
        Shape {
            topic,
            exhaustive: true,
        }
    }
}

/// A request of `key` at `version` shaped as `shape` says.
pub fn sample(key: ApiKey, version: i16, shape: Shape<'_>) -> RequestKind {
    let v = version;
    let Shape { topic, exhaustive } = shape;
    match key {
        ApiKey::ApiVersions => {
            let mut request = ApiVersionsRequest::default();
            if v >= 3 {
                request = request
                    .with_client_software_name(text("odradek-test"))
                    .with_client_software_version(text("1.0"));
            }
            RequestKind::ApiVersions(request)
        }
        ApiKey::Produce => {
            let partition = PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(record_batch(
                    &[&format!("v{v}-a"), &format!("v{v}-b")],
                    1_700_000_000_000,
                )));
            let topic_data = TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![partition]);
            let mut request = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(10_000)
                .with_topic_data(vec![topic_data]);
            if exhaustive {
                request = request.with_transactional_id(Some(text("tx").into()));
            }
            RequestKind::Produce(request)
        }
        ApiKey::Fetch => {
            let mut partition = FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20);
            if v >= 9 {
                partition = partition.with_current_leader_epoch(-1);
            }
            if v >= 12 {
                partition = partition.with_last_fetched_epoch(-1);
            }
            if v >= 5 {
                partition = partition.with_log_start_offset(-1);
            }
            let fetch_topic = FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![partition]);
            let mut request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(100)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_isolation_level(1)
                .with_topics(vec![fetch_topic]);
            if v >= 7 {
                request = request.with_session_id(0).with_session_epoch(-1);
                if exhaustive {
                    let forgotten = ForgottenTopic::default()
                        .with_topic(topic_name("gone"))
                        .with_partitions(vec![1, 2]);
                    request = request.with_forgotten_topics_data(vec![forgotten]);
                }
            }
            if v >= 11 && exhaustive {
                request = request.with_rack_id(text("rack-a"));
            }
            if v >= 12 && exhaustive {
                request = request.with_cluster_id(Some(text("cluster")));
            }
            RequestKind::Fetch(request)
        }
        ApiKey::ListOffsets => {
            let mut partition = ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1);
            if v >= 4 {
                partition = partition.with_current_leader_epoch(-1);
            }
            let list_topic = ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![partition]);
            let mut request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![list_topic]);
            if v >= 2 {
                request = request.with_isolation_level(1);
            }
            RequestKind::ListOffsets(request)
        }
        ApiKey::Metadata => {
            let wanted = MetadataRequestTopic::default().with_name(Some(topic_name(topic)));
            let mut request = MetadataRequest::default().with_topics(Some(vec![wanted]));
            if v >= 4 {
                request = request.with_allow_auto_topic_creation(true);
            }
            if v >= 8 && exhaustive {
                request = request.with_include_topic_authorized_operations(true);
            }
            RequestKind::Metadata(request)
        }
        ApiKey::CreateTopics => {
            let config = CreatableTopicConfig::default()
                .with_name(text("retention.ms"))
                .with_value(Some(text("3600000")));
            let mut creatable = CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_configs(vec![config]);
            creatable = if exhaustive {
                let assignment = CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1)]);
                creatable
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![assignment])
            } else {
                creatable.with_num_partitions(2).with_replication_factor(1)
            };
            RequestKind::CreateTopics(
                CreateTopicsRequest::default()
                    .with_topics(vec![creatable])
                    .with_timeout_ms(10_000),
            )
        }
        ApiKey::DeleteTopics => {
            let request = DeleteTopicsRequest::default().with_timeout_ms(10_000);
            let request = if v >= 6 {
                request.with_topics(vec![
                    DeleteTopicState::default().with_name(Some(topic_name(topic))),
                ])
            } else {
                request.with_topic_names(vec![topic_name(topic)])
            };
            RequestKind::DeleteTopics(request)
        }
        ApiKey::InitProducerId => {
            // An idempotent producer sends a null transactional id; a transactional one
            // names itself (only the exhaustive shape, which is never sent to a broker).
            let transactional_id = exhaustive.then(|| text("tx").into());
            let mut request = InitProducerIdRequest::default()
                .with_transactional_id(transactional_id)
                .with_transaction_timeout_ms(60_000);
            if v >= 3 {
                request = request
                    .with_producer_id((-1).into())
                    .with_producer_epoch(-1);
            }
            RequestKind::InitProducerId(request)
        }
        ApiKey::DescribeConfigs => {
            let keys = exhaustive.then(|| vec![text("retention.ms"), text("segment.bytes")]);
            let resource = DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(text(topic))
                .with_configuration_keys(keys);
            let mut request = DescribeConfigsRequest::default().with_resources(vec![resource]);
            if v >= 3 && exhaustive {
                request = request.with_include_documentation(true);
            }
            RequestKind::DescribeConfigs(request)
        }
        ApiKey::CreatePartitions => {
            let mut grown = CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(3);
            if exhaustive {
                grown = grown.with_assignments(Some(vec![
                    CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]),
                ]));
            }
            RequestKind::CreatePartitions(
                CreatePartitionsRequest::default()
                    .with_topics(vec![grown])
                    .with_timeout_ms(10_000),
            )
        }
        other => panic!("no sample for {other:?}"),
    }
}
