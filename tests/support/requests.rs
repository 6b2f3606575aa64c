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
    ApiKey, ApiVersionsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, RequestKind, SyncGroupRequest,
    TopicName,
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

/// The group every group-level field of a sample names: `group-<topic>`.
pub fn group_id(topic: &str) -> GroupId {
    GroupId(StrBytes::from(format!("group-{topic}")))
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from(value.to_string())
}

/// One RecordBatch v2 holding `values`, as a producer sends it (base offset 0): keys
/// `key-0`, `key-1`, ..., every record created at `timestamp_ms`.
pub fn record_batch(values: &[&str], timestamp_ms: i64) -> Bytes {
    spread_batch(values, timestamp_ms, 0)
}

/// [`record_batch`] whose records were created `step_ms` apart, the first at `first_ms`.
pub fn spread_batch(values: &[&str], first_ms: i64, step_ms: i64) -> Bytes {
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
            // A plain producer's batch has base sequence -1; the encoder keeps records
            // in one batch only while offset - sequence stays the same.
            sequence: index as i32 - 1,
            timestamp: first_ms + step_ms * index as i64,
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
        ApiKey::AlterConfigs => {
            use kafka_protocol::messages::alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            let mut configs = vec![
                AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("3600000"))),
            ];
            if exhaustive {
                configs.push(
                    AlterableConfig::default()
                        .with_name(text("segment.ms"))
                        .with_value(Some(text("86400000"))),
                );
            }
            let resource = AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(text(topic))
                .with_configs(configs);
            RequestKind::AlterConfigs(
                kafka_protocol::messages::AlterConfigsRequest::default()
                    .with_resources(vec![resource])
                    .with_validate_only(exhaustive),
            )
        }
        ApiKey::IncrementalAlterConfigs => {
            use kafka_protocol::messages::incremental_alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            let mut configs = vec![
                AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(text("3600000"))),
            ];
            if exhaustive {
                configs.push(
                    AlterableConfig::default()
                        .with_name(text("segment.ms"))
                        .with_config_operation(1),
                );
                configs.push(
                    AlterableConfig::default()
                        .with_name(text("cleanup.policy"))
                        .with_config_operation(2)
                        .with_value(Some(text("delete"))),
                );
            }
            let resource = AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(text(topic))
                .with_configs(configs);
            RequestKind::IncrementalAlterConfigs(
                kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![resource])
                    .with_validate_only(exhaustive),
            )
        }
        ApiKey::CreatePartitions => {
            // No assignments is null, as clients send it (the codec's default, an
            // empty list, is INVALID_REPLICA_ASSIGNMENT to Kafka and Odradek alike).
            let mut grown = CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(3)
                .with_assignments(None);
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
        ApiKey::FindCoordinator => {
            let mut request = FindCoordinatorRequest::default();
            if v >= 4 {
                request = request.with_coordinator_keys(vec![group_id(topic).0]);
            } else {
                request = request.with_key(group_id(topic).0);
            }
            RequestKind::FindCoordinator(request)
        }
        ApiKey::JoinGroup => {
            let protocol = JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::from_static(b"\0\x01subscription"));
            let mut request = JoinGroupRequest::default()
                .with_group_id(group_id(topic))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![protocol]);
            if v >= 1 {
                request = request.with_rebalance_timeout_ms(30_000);
            }
            if exhaustive {
                request = request.with_member_id(text("member-1"));
                if v >= 5 {
                    request = request.with_group_instance_id(Some(text("instance-1")));
                }
                if v >= 8 {
                    request = request.with_reason(Some(text("testing")));
                }
            }
            RequestKind::JoinGroup(request)
        }
        ApiKey::SyncGroup => {
            let assignment = SyncGroupRequestAssignment::default()
                .with_member_id(text("member-1"))
                .with_assignment(Bytes::from_static(b"\0\x01assignment"));
            let mut request = SyncGroupRequest::default()
                .with_group_id(group_id(topic))
                .with_generation_id(1)
                .with_member_id(text("member-1"))
                .with_assignments(vec![assignment]);
            if exhaustive && v >= 3 {
                request = request.with_group_instance_id(Some(text("instance-1")));
            }
            if exhaustive && v >= 5 {
                request = request
                    .with_protocol_type(Some(text("consumer")))
                    .with_protocol_name(Some(text("range")));
            }
            RequestKind::SyncGroup(request)
        }
        ApiKey::Heartbeat => {
            let mut request = HeartbeatRequest::default()
                .with_group_id(group_id(topic))
                .with_generation_id(1)
                .with_member_id(text("member-1"));
            if exhaustive && v >= 3 {
                request = request.with_group_instance_id(Some(text("instance-1")));
            }
            RequestKind::Heartbeat(request)
        }
        ApiKey::LeaveGroup => {
            let mut request = LeaveGroupRequest::default().with_group_id(group_id(topic));
            if v <= 2 {
                request = request.with_member_id(text("member-1"));
            } else {
                let mut member = MemberIdentity::default().with_member_id(text("member-1"));
                if exhaustive {
                    member = member.with_group_instance_id(Some(text("instance-1")));
                    if v >= 5 {
                        member = member.with_reason(Some(text("testing")));
                    }
                }
                request = request.with_members(vec![member]);
            }
            RequestKind::LeaveGroup(request)
        }
        ApiKey::OffsetCommit => {
            let mut partition = OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)
                .with_committed_metadata(exhaustive.then(|| text("metadata")));
            if v >= 6 {
                partition = partition.with_committed_leader_epoch(1);
            }
            let mut request = OffsetCommitRequest::default()
                .with_group_id(group_id(topic))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![partition]),
                ]);
            if v <= 4 {
                request = request.with_retention_time_ms(-1);
            }
            if exhaustive && v >= 7 {
                request = request.with_group_instance_id(Some(text("instance-1")));
            }
            RequestKind::OffsetCommit(request)
        }
        ApiKey::OffsetFetch => {
            let mut request = OffsetFetchRequest::default();
            if v <= 7 {
                request = request
                    .with_group_id(group_id(topic))
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopic::default()
                            .with_name(topic_name(topic))
                            .with_partition_indexes(vec![0]),
                    ]));
            } else {
                request = request.with_groups(vec![
                    OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(topic))
                        .with_topics(Some(vec![
                            OffsetFetchRequestTopics::default()
                                .with_name(topic_name(topic))
                                .with_partition_indexes(vec![0]),
                        ])),
                ]);
            }
            if exhaustive && v >= 7 {
                request = request.with_require_stable(true);
            }
            RequestKind::OffsetFetch(request)
        }
        ApiKey::DescribeGroups => {
            let mut request = DescribeGroupsRequest::default().with_groups(vec![group_id(topic)]);
            if exhaustive && v >= 3 {
                request = request.with_include_authorized_operations(true);
            }
            RequestKind::DescribeGroups(request)
        }
        ApiKey::ListGroups => {
            let mut request = ListGroupsRequest::default();
            if exhaustive && v >= 4 {
                request = request.with_states_filter(vec![text("Stable")]);
            }
            if exhaustive && v >= 5 {
                request = request.with_types_filter(vec![text("classic")]);
            }
            RequestKind::ListGroups(request)
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![group_id(topic)]),
        ),
        ApiKey::OffsetForLeaderEpoch
        | ApiKey::DescribeCluster
        | ApiKey::DescribeLogDirs
        | ApiKey::OffsetDelete
        | ApiKey::DeleteRecords => admin_sample(key, v, shape),
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => acl_sample(key, shape),
        ApiKey::SaslHandshake
        | ApiKey::SaslAuthenticate
        | ApiKey::AlterUserScramCredentials
        | ApiKey::DescribeUserScramCredentials
        | ApiKey::DescribeClientQuotas => sasl_sample(key, shape),
        other => panic!("no sample for {other:?}"),
    }
}

/// [`sample`] of the ACL APIs (the same at versions 1 to 3): ALLOW READ on the topic
/// for `User:alice` from any host, and filters for it (exhaustive: every text given;
/// common: principal and host null, any operation and permission).
fn acl_sample(key: ApiKey, shape: Shape<'_>) -> RequestKind {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
    let Shape { topic, exhaustive } = shape;
    // Kafka's codes: TOPIC, LITERAL, READ, ALLOW; 1 is ANY in a filter.
    let (resource, literal, read, allow, any) = (2, 3, 3, 3, 1);
    let principal = exhaustive.then(|| text("User:alice"));
    let host = exhaustive.then(|| text("*"));
    let (operation, permission) = if exhaustive {
        (read, allow)
    } else {
        (any, any)
    };
    match key {
        ApiKey::CreateAcls => {
            RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
                AclCreation::default()
                    .with_resource_type(resource)
                    .with_resource_name(text(topic))
                    .with_resource_pattern_type(literal)
                    .with_principal(text("User:alice"))
                    .with_host(text("*"))
                    .with_operation(read)
                    .with_permission_type(allow),
            ]))
        }
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(resource)
                .with_resource_name_filter(Some(text(topic)))
                .with_pattern_type_filter(literal)
                .with_principal_filter(principal)
                .with_host_filter(host)
                .with_operation(operation)
                .with_permission_type(permission),
        ),
        ApiKey::DeleteAcls => {
            RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_type_filter(resource)
                    .with_resource_name_filter(Some(text(topic)))
                    .with_pattern_type_filter(literal)
                    .with_principal_filter(principal)
                    .with_host_filter(host)
                    .with_operation(operation)
                    .with_permission_type(permission),
            ]))
        }
        other => panic!("no ACL sample for {other:?}"),
    }
}

/// [`sample`] of the SASL APIs: a PLAIN handshake, a PLAIN token, a SCRAM-SHA-256
/// credential for a user named like the topic (4096 iterations), and a description of
/// that user.
fn sasl_sample(key: ApiKey, shape: Shape<'_>) -> RequestKind {
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::{
        AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
        SaslAuthenticateRequest, SaslHandshakeRequest,
    };
    let topic = shape.topic;
    match key {
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
        ),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0u\0p")),
        ),
        ApiKey::AlterUserScramCredentials => RequestKind::AlterUserScramCredentials(
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(text(topic))
                    .with_mechanism(1)
                    .with_iterations(4096)
                    .with_salt(Bytes::from_static(b"salt"))
                    .with_salted_password(Bytes::from_static(&[7; 32])),
            ]),
        ),
        ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![UserName::default().with_name(text(topic))])),
        ),
        ApiKey::DescribeClientQuotas => {
            use kafka_protocol::messages::DescribeClientQuotasRequest;
            use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
            RequestKind::DescribeClientQuotas(
                DescribeClientQuotasRequest::default().with_components(vec![
                    ComponentData::default()
                        .with_entity_type(text("user"))
                        .with_match_type(0)
                        .with_match(Some(text(topic))),
                ]),
            )
        }
        other => panic!("no SASL sample for {other:?}"),
    }
}

/// [`sample`] of the admin APIs: OffsetForLeaderEpoch (partition 0 of the topic, its
/// epoch 1 as the current one), DescribeCluster, DescribeLogDirs (the topic's partition
/// 0, or every partition when not exhaustive), OffsetDelete (partition 0 of the topic
/// from the group named like it), DeleteRecords (partition 0 of the topic below offset
/// `v + 1`, so that each version moves the start one further).
fn admin_sample(key: ApiKey, v: i16, shape: Shape<'_>) -> RequestKind {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::{
        DescribeClusterRequest, DescribeLogDirsRequest, OffsetDeleteRequest,
        OffsetForLeaderEpochRequest,
    };
    let Shape { topic, exhaustive } = shape;
    match key {
        ApiKey::OffsetForLeaderEpoch => {
            let mut request = OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(1)
                            .with_leader_epoch(1),
                    ]),
            ]);
            if v >= 3 {
                request = request.with_replica_id(BrokerId(-1));
            }
            RequestKind::OffsetForLeaderEpoch(request)
        }
        ApiKey::DescribeCluster => {
            let mut request = DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(exhaustive);
            if exhaustive && v >= 2 {
                request = request.with_include_fenced_brokers(true);
            }
            RequestKind::DescribeCluster(request)
        }
        ApiKey::DescribeLogDirs => {
            let topics = exhaustive.then(|| {
                vec![
                    DescribableLogDirTopic::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![0]),
                ]
            });
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(topics))
        }
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(group_id(topic))
                .with_topics(vec![
                    OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![
                            OffsetDeleteRequestPartition::default().with_partition_index(0),
                        ]),
                ]),
        ),
        ApiKey::DeleteRecords => {
            use kafka_protocol::messages::DeleteRecordsRequest;
            use kafka_protocol::messages::delete_records_request::{
                DeleteRecordsPartition, DeleteRecordsTopic,
            };
            RequestKind::DeleteRecords(
                DeleteRecordsRequest::default()
                    .with_topics(vec![
                        DeleteRecordsTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(vec![
                                DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(i64::from(v) + 1),
                            ]),
                    ])
                    .with_timeout_ms(30_000),
            )
        }
        other => panic!("no admin sample for {other:?}"),
    }
}
