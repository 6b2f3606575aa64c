//! Metadata and topic administration (CreateTopics, DeleteTopics, CreatePartitions).
//!
//! Changes (a topic created or deleted, partitions added, producer ids reserved) go
//! through the metadata log: the request appends a record and is answered once the
//! record is durable and applied (see [`crate::metadata`]). A Metadata or Produce request
//! that names a missing topic, with `auto.create.topics.enable` on, creates it the same
//! way and is then handled again, so the client sees the topic at once instead of a
//! LEADER_NOT_AVAILABLE and a retry.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsResponse, CreateTopicsResponse, DeleteTopicsResponse,
    MetadataRequest, MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::forward::Creation;
use crate::group::OFFSETS_TOPIC_NAME;
use crate::metadata::{MetadataAppendError, MetadataRecord};
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo, quorum_voters};
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;
use crate::topics::{
    TOPIC_PARTITIONS_MAX, Topic, TopicConfig, TopicId, place_replicas, validate_topic_name,
};

/// Kafka's "authorized operations were not asked for" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// A CreateTopics answer for one topic, refused with `code`.
fn refused(result: CreatableTopicResult, code: ErrorCode, message: String) -> CreatableTopicResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(text(message)))
}

/// A partition's leadership in a Metadata answer.
struct Leadership {
    error: ErrorCode,
    leader: Option<i32>,
    leader_epoch: i32,
    in_sync: Vec<i32>,
}

impl Leadership {
    /// No leader known, for `error`.
    fn unknown(error: ErrorCode, leader_epoch: i32) -> Leadership {
        Leadership {
            error,
            leader: None,
            leader_epoch,
            in_sync: Vec::new(),
        }
    }
}

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(text(name))
}

fn uuid_of(id: TopicId) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(id.high, id.low)
}

impl Node {
    /// If any of `names` is a legal topic that does not exist, starts creating it
    /// (auto-create) and parks the request until the creation is durable. Returns
    /// whether the request was parked.
    pub(crate) fn auto_create_then_redispatch(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: &Request,
        names: &[String],
    ) -> bool {
        if !self.metadata.caught_up() {
            // Its metadata may be older than the cluster's: the topic may exist
            // (decision 0011). The request is answered with a retriable error.
            return false;
        }
        // The request waits for the last local append, or for one forward: if several
        // topics are forwarded, the others are usually applied by then, and a topic
        // still missing is answered as unknown (the client retries).
        let mut wait_for: Option<Creation> = None;
        for name in names {
            if self.cluster.topics.contains_key(name) || validate_topic_name(name).is_err() {
                continue;
            }
            let started = if name == OFFSETS_TOPIC_NAME {
                self.begin_create_offsets_topic(io)
            } else {
                let partitions = self.config.num_partitions;
                let rf = self.config.default_replication_factor;
                let record =
                    self.create_topic_record(io, name, partitions, rf, &TopicConfig::default());
                self.append_or_forward_creation(io, name, record).ok()
            };
            // A creation that could not start is answered as unknown topic by the
            // normal path.
            wait_for = match (wait_for, started) {
                (None, started) => started,
                (Some(Creation::Appended(a)), Some(Creation::Appended(b))) => {
                    Some(Creation::Appended(a.max(b)))
                }
                (Some(Creation::Appended(_)), Some(forwarded)) => Some(forwarded),
                (kept, _) => kept,
            };
        }
        match wait_for {
            Some(creation) => {
                self.wait_for_creation(id, creation, MetadataWait::Redispatch(request.clone()));
                true
            }
            None => false,
        }
    }

    /// Appends a create-topic record. Returns its offset.
    pub(crate) fn begin_create_topic(
        &mut self,
        io: &mut impl NodeIo,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        config: TopicConfig,
    ) -> Result<i64, (ErrorCode, String)> {
        let record = self.create_topic_record(io, name, partitions, replication_factor, &config);
        let offset = self
            .append_metadata(io, record)
            .map_err(|error| (error.error_code(), error.to_string()))?;
        self.topic_changes.note_creating(name, offset);
        Ok(offset)
    }

    /// A create-topic record with a new id, its replicas placed over every broker.
    pub(crate) fn create_topic_record(
        &self,
        io: &mut impl NodeIo,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        config: &TopicConfig,
    ) -> MetadataRecord {
        let id = TopicId::random(io.random(), io.random());
        let brokers = quorum_voters(&self.config);
        let rf = usize::try_from(replication_factor).unwrap_or(1).max(1);
        MetadataRecord::CreateTopic {
            name: name.to_string(),
            id,
            partitions,
            replicas: place_replicas(&brokers, 0..partitions, rf, placement_start(name)),
            config: config.overrides().clone(),
        }
    }

    pub(crate) fn handle_metadata(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
        auto_create: bool,
    ) {
        let RequestKind::Metadata(metadata) = &request.body else {
            unreachable!("routed by kind")
        };
        let wanted = self.wanted_topics(metadata, request.api_version);
        let auto_creates = (request.api_version < 4 || metadata.allow_auto_topic_creation)
            && self.config.auto_create_topics_enable;
        // Named topics the principal may not DESCRIBE, or may not create when they
        // would be auto-created, are answered TOPIC_AUTHORIZATION_FAILED.
        let refused = |name: &String| {
            !self.allows_topic(&request, Operation::Describe, name)
                || (auto_creates
                    && !self.cluster.topics.contains_key(name)
                    && !self.may_create_topic(&request, name))
        };
        let (refused, wanted): (Vec<String>, Option<Vec<String>>) = match wanted {
            Some(names) => {
                let (refused, allowed) = names.into_iter().partition(refused);
                (refused, Some(allowed))
            }
            None => (Vec::new(), None),
        };
        if auto_create
            && auto_creates
            && let Some(names) = &wanted
            && self.auto_create_then_redispatch(io, id, &request, names)
        {
            return;
        }
        let include_topic_operations = metadata.include_topic_authorized_operations;
        let mut response = self.metadata_response_header(&request.listener);
        // All topics: those the principal may not DESCRIBE are left out.
        let names: Vec<String> = match wanted {
            Some(names) => names,
            None => (self.cluster.topics.keys())
                .filter(|name| self.allows_topic(&request, Operation::Describe, name))
                .cloned()
                .collect(),
        };
        for name in names {
            let topic = self.topic_metadata(io, &name, include_topic_operations);
            response.topics.push(topic);
        }
        for name in refused {
            let refused = MetadataResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            response.topics.push(refused);
        }
        io.respond(id, ResponseKind::Metadata(response));
    }

    /// Whether `request`'s principal may create topic `name`: CREATE on the cluster or
    /// on the topic.
    pub(crate) fn may_create_topic(&self, request: &Request, name: &str) -> bool {
        self.allows_cluster(request, Operation::Create)
            || self.allows_topic(request, Operation::Create, name)
    }

    /// The topics a Metadata request names, `None` for all. v0: an empty list means
    /// all topics; v1+: null means all, empty means none.
    fn wanted_topics(&self, metadata: &MetadataRequest, api_version: i16) -> Option<Vec<String>> {
        match &metadata.topics {
            None => None,
            Some(topics) if topics.is_empty() && api_version == 0 => None,
            Some(topics) => Some(
                topics
                    .iter()
                    .map(|t| match &t.name {
                        Some(name) => name.0.as_str().to_string(),
                        None => self.resolve_topic_name(&TopicName::default(), t.topic_id),
                    })
                    .collect(),
            ),
        }
    }

    /// A Metadata answer with the brokers, the cluster id and the controller, and no
    /// topics yet.
    fn metadata_response_header(&self, listener: &str) -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(
                self.client_endpoints(listener)
                    .into_iter()
                    .map(|(id, host, port)| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(id))
                            .with_host(text(host))
                            .with_port(port)
                    })
                    .collect(),
            )
            .with_cluster_id(self.cluster.cluster_id.clone().map(text))
            .with_controller_id(BrokerId(self.controller_to_name()))
            .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
    }

    /// One topic of a Metadata answer: an error if it does not exist (or may exist and
    /// this broker has not caught up), else each partition with its leader.
    fn topic_metadata(
        &mut self,
        io: &mut impl NodeIo,
        name: &str,
        include_topic_operations: bool,
    ) -> MetadataResponseTopic {
        let mut topic_response = MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_is_internal(name == OFFSETS_TOPIC_NAME)
            .with_topic_authorized_operations(if include_topic_operations {
                0
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            });
        let Some(topic) = self.cluster.topics.get(name) else {
            let error = if validate_topic_name(name).is_err() {
                ErrorCode::InvalidTopicException
            } else if !self.metadata.caught_up() {
                // It may exist: the client retries (decision 0011).
                ErrorCode::LeaderNotAvailable
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            topic_response.error_code = error.code();
            return topic_response;
        };
        topic_response.topic_id = uuid_of(topic.id);
        let partitions: Vec<(i32, Vec<i32>)> = (0..topic.partitions)
            .map(|partition| (partition, topic.replicas_of(partition, self.config.node_id)))
            .collect();
        for (partition, replicas) in partitions {
            let key = TopicPartition::new(name, partition);
            let leadership = self.partition_leadership(io, &key, &replicas);
            let offline = if leadership.error == ErrorCode::KafkaStorageError {
                vec![BrokerId(self.config.node_id)]
            } else {
                vec![]
            };
            topic_response.partitions.push(
                MetadataResponsePartition::default()
                    .with_error_code(leadership.error.code())
                    .with_partition_index(partition)
                    .with_leader_id(BrokerId(leadership.leader.unwrap_or(-1)))
                    .with_leader_epoch(leadership.leader_epoch)
                    .with_replica_nodes(replicas.iter().map(|&id| BrokerId(id)).collect())
                    .with_isr_nodes(leadership.in_sync.iter().map(|&id| BrokerId(id)).collect())
                    .with_offline_replicas(offline),
            );
        }
        topic_response
    }

    /// Who leads partition `key` as this broker knows it. Every broker hosting a
    /// replica knows its partition's leader from Raft; a broker outside the replica set
    /// knows what the leader last announced (gossip), if anything.
    fn partition_leadership(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
        replicas: &[i32],
    ) -> Leadership {
        let lag_ticks = self.replica_lag_ticks();
        let remote = self.peers.leader_of(key);
        let Some(p) = self.partitions.get_mut(key) else {
            return match remote {
                Some(remote) => Leadership {
                    error: ErrorCode::None,
                    leader: Some(remote.leader),
                    leader_epoch: remote.leader_epoch,
                    in_sync: remote.in_sync.clone(),
                },
                None => Leadership::unknown(ErrorCode::LeaderNotAvailable, -1),
            };
        };
        if p.log().failure().is_some() {
            return Leadership::unknown(ErrorCode::KafkaStorageError, p.leader_epoch());
        }
        let Some(leader) = p.leader() else {
            return Leadership::unknown(ErrorCode::LeaderNotAvailable, p.leader_epoch());
        };
        let in_sync = if p.is_leader() {
            p.in_sync_replicas(io, lag_ticks)
        } else {
            // The leader's gossip, if it is about this epoch.
            remote
                .filter(|r| r.leader_epoch == p.leader_epoch())
                .map_or_else(|| replicas.to_vec(), |r| r.in_sync.clone())
        };
        Leadership {
            error: ErrorCode::None,
            leader: Some(leader),
            leader_epoch: p.leader_epoch(),
            in_sync,
        }
    }

    /// The broker a Metadata answer names as the controller: the metadata quorum's
    /// leader, or, while none is known, this broker itself (KRaft brokers name a live
    /// broker there too). Naming nobody (-1) made librdkafka's admin client wait for a
    /// controller without asking again (issue 15). A request that looks for the
    /// controller waits for an election first (`controller.rs`), so this broker is
    /// named only when the quorum has had no leader for a while: an admin request
    /// sent here then gets NOT_CONTROLLER.
    fn controller_to_name(&self) -> i32 {
        self.metadata
            .raft()
            .leader_id()
            .map_or(self.config.node_id, crate::peer::broker_id)
    }

    pub(crate) fn handle_create_topics(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::CreateTopics(create) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = CreateTopicsResponse::default();
        let mut wait_for: Option<i64> = None;
        let mut seen = BTreeMap::new();
        for topic in &create.topics {
            let name = topic.name.0.as_str().to_string();
            *seen.entry(name.clone()).or_insert(0) += 1;
        }
        for topic in &create.topics {
            let duplicated = seen[topic.name.0.as_str()] > 1;
            if !self.may_create_topic(&request, topic.name.0.as_str()) {
                let result = CreatableTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
                let message = format!("{} may not create this topic", request.principal);
                let code = ErrorCode::TopicAuthorizationFailed;
                response.topics.push(refused(result, code, message));
                continue;
            }
            let (result, wait) = self.create_topic(io, topic, duplicated, create.validate_only);
            if let Some(offset) = wait {
                wait_for = Some(wait_for.map_or(offset, |w| w.max(offset)));
            }
            response.topics.push(result);
        }
        match wait_for {
            Some(offset) => self.wait_then_fill_topic_ids(id, offset, response),
            None => io.respond(id, ResponseKind::CreateTopics(response)),
        }
    }

    /// One topic of a CreateTopics request: its answer, and the metadata offset the
    /// answer must wait for, if any.
    fn create_topic(
        &mut self,
        io: &mut impl NodeIo,
        topic: &CreatableTopic,
        duplicated: bool,
        validate_only: bool,
    ) -> (CreatableTopicResult, Option<i64>) {
        let name = topic.name.0.as_str().to_string();
        // -1 asks for the broker's defaults.
        let partitions = Some(topic.num_partitions)
            .filter(|&n| n != -1)
            .unwrap_or(self.config.num_partitions);
        let replication_factor = Some(topic.replication_factor)
            .filter(|&n| n != -1)
            .unwrap_or(self.config.default_replication_factor);
        let configs = topic
            .configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.as_ref().map_or("", |v| v.as_str())));
        let checked = if duplicated {
            Err((
                ErrorCode::InvalidRequest,
                format!("topic {name} appears more than once in the request"),
            ))
        } else {
            let assignments = topic.assignments.len();
            self.check_new_topic(&name, partitions, replication_factor, assignments, configs)
        };
        let mut result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let mut wait = None;
        if let Err((ErrorCode::TopicAlreadyExists, _)) = &checked
            && !self.cluster.topics.contains_key(&name)
            && let Some(offset) = self.topic_changes.creation(&name)
        {
            // "Already exists" on the word of a record not yet committed: answered
            // once it is applied, and only if the topic is there then.
            wait = Some(offset);
        }
        let config = match checked {
            Err((code, message)) => return (refused(result, code, message), wait),
            Ok(config) => config,
        };
        let partitions = if topic.assignments.is_empty() {
            partitions
        } else {
            topic.assignments.len() as i32
        };
        result.num_partitions = partitions;
        result.replication_factor = replication_factor;
        result.configs = Some(self.created_topic_configs(&config));
        if validate_only {
            // Kafka answers an id the topic would have had.
            result.topic_id = uuid_of(TopicId::random(io.random(), io.random()));
            return (result, wait);
        }
        match self.begin_create_topic(io, &name, partitions, replication_factor, config) {
            // The id is assigned when the record is applied; read it back then.
            Ok(offset) => (result, Some(wait.map_or(offset, |w: i64| w.max(offset)))),
            Err((code, message)) => (refused(result, code, message), wait),
        }
    }

    /// CreateTopics answers carry topic ids (v7+); they are known once the records are
    /// applied, so the response is completed then.
    fn wait_then_fill_topic_ids(
        &mut self,
        id: RequestId,
        offset: i64,
        response: CreateTopicsResponse,
    ) {
        // Topic ids were drawn when the records were built; fill them in now from the
        // pending records so the answer is complete when it is released.
        let mut response = response;
        for result in &mut response.topics {
            if result.error_code == 0
                && let Some(uuid) = self.pending_topic_id(result.name.0.as_str())
            {
                result.topic_id = uuid;
            }
        }
        self.metadata_waits.wait(
            offset,
            id,
            MetadataWait::Respond(ResponseKind::CreateTopics(response)),
        );
    }

    fn pending_topic_id(&self, name: &str) -> Option<uuid::Uuid> {
        self.metadata
            .pending_records()
            .find_map(|record| match record {
                MetadataRecord::CreateTopic { name: n, id, .. } if n == name => Some(uuid_of(*id)),
                _ => None,
            })
    }

    /// The replicas a CreatePartitions request assigns to the new partitions, if it
    /// names them: one list per new partition (Kafka's INVALID_REPLICA_ASSIGNMENT
    /// otherwise), each of the topic's replication factor in distinct known brokers.
    fn check_new_assignments(
        &self,
        existing: &Topic,
        topic: &CreatePartitionsTopic,
    ) -> Result<Option<Vec<Vec<i32>>>, (ErrorCode, String)> {
        let Some(assignments) = &topic.assignments else {
            return Ok(None);
        };
        let new = usize::try_from(topic.count - existing.partitions).unwrap_or(0);
        let invalid = |message: String| Err((ErrorCode::InvalidReplicaAssignment, message));
        if assignments.len() != new {
            return invalid(format!(
                "{} assignments for {new} new partitions",
                assignments.len()
            ));
        }
        let brokers = quorum_voters(&self.config);
        let rf = existing.replicas_of(0, self.config.node_id).len();
        let mut replicas = Vec::with_capacity(new);
        for assignment in assignments {
            let ids: Vec<i32> = assignment.broker_ids.iter().map(|id| id.0).collect();
            let distinct: BTreeSet<i32> = ids.iter().copied().collect();
            if ids.len() != rf || distinct.len() != rf || !ids.iter().all(|id| brokers.contains(id))
            {
                return invalid(format!(
                    "assignment {ids:?} is not {rf} distinct brokers of {brokers:?}"
                ));
            }
            replicas.push(ids);
        }
        Ok(Some(replicas))
    }

    /// Validates a new topic against the rules and the current state.
    fn check_new_topic<'a>(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: usize,
        configs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, (ErrorCode, String)> {
        validate_topic_name(name).map_err(|m| (ErrorCode::InvalidTopicException, m))?;
        if name == OFFSETS_TOPIC_NAME && !self.cluster.topics.contains_key(name) {
            return Err((
                ErrorCode::InvalidRequest,
                format!(
                    "{OFFSETS_TOPIC_NAME} is internal: the broker creates it when a consumer group first needs it"
                ),
            ));
        }
        if self.cluster.topics.contains_key(name) || self.topic_changes.creation(name).is_some() {
            return Err((
                ErrorCode::TopicAlreadyExists,
                format!("topic {name} already exists"),
            ));
        }
        if self.topic_changes.is_deleting(name) {
            return Err((
                ErrorCode::TopicAlreadyExists,
                format!("topic {name} is being deleted; try again"),
            ));
        }
        // Kafka's rule: '.' and '_' become the same character in metric names, so two
        // topics that differ only there cannot both exist.
        let metric_name = |topic: &str| topic.replace('.', "_");
        if let Some(existing) = self
            .cluster
            .topics
            .keys()
            .chain(self.topic_changes.creating())
            .find(|existing| metric_name(existing) == metric_name(name))
        {
            return Err((
                ErrorCode::InvalidTopicException,
                format!(
                    "topic {name} collides with existing topic {existing} ('.' and '_' are one character in metric names)"
                ),
            ));
        }
        if assignments == 0 && !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
            return Err((
                ErrorCode::InvalidPartitions,
                format!(
                    "number of partitions must be between 1 and {TOPIC_PARTITIONS_MAX}, not {partitions}"
                ),
            ));
        }
        let brokers = quorum_voters(&self.config).len();
        if replication_factor < 1 || usize::try_from(replication_factor).unwrap_or(0) > brokers {
            return Err((
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "replication factor {replication_factor} is impossible: this cluster has {brokers} broker{}",
                    if brokers == 1 { "" } else { "s" }
                ),
            ));
        }
        TopicConfig::from_entries(configs)
    }

    pub(crate) fn handle_delete_topics(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DeleteTopics(delete) = &request.body else {
            unreachable!("routed by kind")
        };
        // v0-5 name topics in `topic_names`; v6+ in `topics`, by name or by id.
        let mut wanted: Vec<(Option<String>, uuid::Uuid)> = delete
            .topic_names
            .iter()
            .map(|n| (Some(n.0.as_str().to_string()), uuid::Uuid::nil()))
            .collect();
        wanted.extend(delete.topics.iter().map(|t| {
            (
                t.name.as_ref().map(|n| n.0.as_str().to_string()),
                t.topic_id,
            )
        }));
        let mut response = DeleteTopicsResponse::default();
        let mut wait_for: Option<i64> = None;
        for (name, topic_id) in wanted {
            let named = name.clone().or_else(|| {
                let name = self.resolve_topic_name(&TopicName::default(), topic_id);
                Some(name).filter(|name| !name.is_empty())
            });
            if let Some(named) = named
                && !self.allows_topic(&request, Operation::Delete, &named)
            {
                let result = DeletableTopicResult::default()
                    .with_name(name.as_deref().map(topic_name))
                    .with_topic_id(topic_id)
                    .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                    .with_error_message(Some(text(format!(
                        "{} may not delete this topic",
                        request.principal
                    ))));
                response.responses.push(result);
                continue;
            }
            let (result, wait) = self.delete_topic(io, name, topic_id);
            if let Some(offset) = wait {
                wait_for = Some(wait_for.map_or(offset, |w| w.max(offset)));
            }
            response.responses.push(result);
        }
        match wait_for {
            Some(offset) => {
                self.metadata_waits.wait(
                    offset,
                    id,
                    MetadataWait::Respond(ResponseKind::DeleteTopics(response)),
                );
            }
            None => io.respond(id, ResponseKind::DeleteTopics(response)),
        }
    }

    /// One topic of a DeleteTopics request, named or by id: its answer, and the
    /// metadata offset the answer must wait for, if a deletion was appended.
    fn delete_topic(
        &mut self,
        io: &mut impl NodeIo,
        name: Option<String>,
        topic_id: uuid::Uuid,
    ) -> (DeletableTopicResult, Option<i64>) {
        let found: Option<Topic> = match &name {
            Some(name) => self.cluster.topics.get(name).cloned(),
            None => {
                let (high, low) = topic_id.as_u64_pair();
                self.cluster
                    .topics
                    .values()
                    .find(|t| t.id == TopicId { high, low })
                    .cloned()
            }
        };
        let mut result = DeletableTopicResult::default()
            .with_name(name.as_deref().map(topic_name))
            .with_topic_id(topic_id);
        let mut refuse = |code: ErrorCode, message: String| {
            result.error_code = code.code();
            result.error_message = Some(text(message));
        };
        let topic = match found {
            None if name.is_some() => {
                refuse(ErrorCode::UnknownTopicOrPartition, "no such topic".into());
                return (result, None);
            }
            None => {
                refuse(ErrorCode::UnknownTopicId, "no such topic".into());
                return (result, None);
            }
            Some(topic) if self.topic_changes.is_deleting(&topic.name) => {
                let message = "topic is already being deleted".into();
                refuse(ErrorCode::UnknownTopicOrPartition, message);
                return (result, None);
            }
            Some(topic) if topic.name == OFFSETS_TOPIC_NAME => {
                let message = format!(
                    "{OFFSETS_TOPIC_NAME} is internal: it holds every group's committed offsets"
                );
                refuse(ErrorCode::InvalidRequest, message);
                return (result, None);
            }
            Some(topic) => topic,
        };
        result.name = Some(topic_name(&topic.name));
        result.topic_id = uuid_of(topic.id);
        let record = MetadataRecord::DeleteTopic {
            name: topic.name.clone(),
            id: topic.id,
        };
        match self.append_metadata(io, record) {
            Ok(offset) => {
                self.topic_changes.note_deleting(&topic.name);
                (result, Some(offset))
            }
            Err(error) => {
                result.error_code = error.error_code().code();
                result.error_message = Some(text(error.to_string()));
                (result, None)
            }
        }
    }

    pub(crate) fn handle_create_partitions(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::CreatePartitions(create) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = CreatePartitionsResponse::default();
        let mut wait_for: Option<i64> = None;
        let mut counts: Vec<(String, i32)> = Vec::new();
        for topic in &create.topics {
            let name = topic.name.0.as_str().to_string();
            let mut result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let checked = if self.allows_topic(&request, Operation::Alter, &name) {
                self.check_partitions_growth(&name, topic)
            } else {
                let message = format!("{} may not alter this topic", request.principal);
                Err((ErrorCode::TopicAuthorizationFailed, message))
            };
            match checked {
                Err((code, message)) => {
                    result.error_code = code.code();
                    result.error_message = Some(text(message));
                }
                Ok(_) if create.validate_only => {}
                Ok(assigned) => match self.grow_partitions(io, &name, topic.count, assigned) {
                    Ok(offset) => {
                        wait_for = Some(wait_for.map_or(offset, |w| w.max(offset)));
                        counts.push((name.clone(), topic.count));
                    }
                    Err(error) => {
                        result.error_code = error.error_code().code();
                        result.error_message = Some(text(error.to_string()));
                    }
                },
            }
            response.results.push(result);
        }
        match wait_for {
            Some(offset) => {
                self.metadata_waits.wait(
                    offset,
                    id,
                    MetadataWait::RespondPartitions(response, counts),
                );
            }
            None => io.respond(id, ResponseKind::CreatePartitions(response)),
        }
    }

    /// Whether topic `name` may grow to `topic.count` partitions, with the explicit
    /// assignments of the new ones if the request gives them.
    fn check_partitions_growth(
        &self,
        name: &str,
        topic: &CreatePartitionsTopic,
    ) -> Result<Option<Vec<Vec<i32>>>, (ErrorCode, String)> {
        match self.cluster.topics.get(name) {
            None => Err((
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            )),
            Some(_) if name == OFFSETS_TOPIC_NAME => Err((
                ErrorCode::InvalidRequest,
                format!(
                    "{OFFSETS_TOPIC_NAME} is internal: more partitions would move groups to other coordinators"
                ),
            )),
            Some(_) if self.topic_changes.is_deleting(name) => Err((
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {name} is being deleted"),
            )),
            Some(existing) if topic.count <= existing.partitions => Err((
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name} has {} partitions; the new count must be larger, not {}",
                    existing.partitions, topic.count
                ),
            )),
            Some(_) if topic.count > TOPIC_PARTITIONS_MAX => Err((
                ErrorCode::InvalidPartitions,
                format!("number of partitions must be at most {TOPIC_PARTITIONS_MAX}"),
            )),
            Some(existing) => self.check_new_assignments(existing, topic),
        }
    }

    /// Appends the record that grows topic `name` to `count` partitions, placing the
    /// new replicas (or taking `assigned`). The offset to wait for.
    fn grow_partitions(
        &mut self,
        io: &mut impl NodeIo,
        name: &str,
        count: i32,
        assigned: Option<Vec<Vec<i32>>>,
    ) -> Result<i64, MetadataAppendError> {
        let existing = &self.cluster.topics[name];
        let rf = existing.replicas_of(0, self.config.node_id).len();
        let replicas = if existing.replicas.is_empty() {
            Vec::new()
        } else if let Some(assigned) = assigned {
            assigned
        } else {
            let brokers = quorum_voters(&self.config);
            place_replicas(
                &brokers,
                existing.partitions..count,
                rf,
                placement_start(name),
            )
        };
        let record = MetadataRecord::CreatePartitions {
            name: name.to_string(),
            partitions: count,
            replicas,
        };
        self.append_metadata(io, record)
    }
}

/// Where a topic's replica placement starts: a hash of its name, so topics created
/// one after another do not all lead on the first broker (Kafka draws it at random;
/// a hash keeps the simulator's runs reproducible without a random draw).
fn placement_start(name: &str) -> usize {
    name.bytes().fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    })
}
