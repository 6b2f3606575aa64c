//! Offsets and the group administration APIs: OffsetCommit, OffsetFetch,
//! DescribeGroups, ListGroups, DeleteGroups; offsets retention; and rebuilding a
//! partition's groups from its records at failover. Rules are Kafka's
//! `GroupCoordinator`, `GroupMetadataManager` and `GroupMetadata` (3.x).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName,
};

use super::membership::{text, validate_current_member};
use super::records::{GroupMetadataValue, OffsetCommitValue, RecordKey};
use super::state::{CommittedOffset, Group, GroupState, Member, Parked};
use super::{
    Coordinator, Cx, GroupErrorCode, Now, OffsetsPartition, OffsetsRecord, PendingDelete, Then,
};
use crate::request::RequestId;
use crate::topics::TopicPartition;

/// Per topic, per partition: an error decided up front, or `None` for a staged offset.
pub(super) type CommitResults = Vec<(String, Vec<(i32, Option<i16>)>)>;
/// One partition of an OffsetFetch answer: (partition, offset, leader epoch, metadata,
/// error code).
/// Each group's committed offsets, as an offsets partition's records leave them.
type OffsetsByGroup = BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>;

/// Each group's last metadata record (`None`: the group was deleted).
type MetadataByGroup = BTreeMap<String, Option<GroupMetadataValue>>;

type FetchedPartition = (i32, i64, i32, String, i16);
/// One topic of an OffsetFetch answer.
type FetchedTopic = (String, Vec<FetchedPartition>);

/// The type DescribeGroups and ListGroups report for classic groups (KIP-848 names).
const GROUP_TYPE_CLASSIC: &str = "classic";

fn offset_commit_response(results: CommitResults) -> ResponseKind {
    let topics = results
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(TopicName(text(&topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(partition, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(partition)
                                .with_error_code(code.unwrap_or(GroupErrorCode::None.code()))
                        })
                        .collect(),
                )
        })
        .collect();
    ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
}

/// Every partition of an OffsetCommit, none decided yet.
fn commit_results(request: &OffsetCommitRequest) -> CommitResults {
    request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| (partition.partition_index, None))
                .collect();
            (topic.name.0.to_string(), partitions)
        })
        .collect()
}

/// Decides every partition of a commit: `code`.
fn answer_all(results: &mut CommitResults, code: i16) {
    for (_, partitions) in results.iter_mut() {
        for (_, result) in partitions.iter_mut() {
            *result = Some(code);
        }
    }
}

/// Kafka's `storeOffsets`: too-large metadata is refused per partition (in
/// `results`); the rest is staged with its record, and visible once committed.
fn stage_offsets(
    now: Now,
    api_version: i16,
    metadata_max_bytes: usize,
    request: &OffsetCommitRequest,
    results: &mut CommitResults,
) -> (Vec<(TopicPartition, CommittedOffset)>, Vec<OffsetsRecord>) {
    let group_id = request.group_id.0.as_str();
    let commit_timestamp_ms = now.wall_clock_ms;
    let expire_timestamp_ms = (api_version <= 4 && request.retention_time_ms != -1)
        .then(|| commit_timestamp_ms.saturating_add(request.retention_time_ms));
    let mut staged = Vec::new();
    let mut records = Vec::new();
    for (topic, (_, partition_results)) in request.topics.iter().zip(results.iter_mut()) {
        for (partition, (_, result)) in topic.partitions.iter().zip(partition_results.iter_mut()) {
            let metadata = partition
                .committed_metadata
                .as_ref()
                .map(|metadata| metadata.to_string())
                .unwrap_or_default();
            if metadata.len() > metadata_max_bytes {
                *result = Some(GroupErrorCode::OffsetMetadataTooLarge.code());
                continue;
            }
            let key = TopicPartition::new(topic.name.0.as_str(), partition.partition_index);
            let offset = CommittedOffset {
                offset: partition.committed_offset,
                leader_epoch: partition.committed_leader_epoch,
                metadata,
                commit_timestamp_ms,
                expire_timestamp_ms,
                record_offset: -1,
            };
            records.push(offset_record(group_id, &key, &offset));
            staged.push((key, offset));
        }
    }
    (staged, records)
}

impl Cx<'_> {
    /// The group an OffsetCommit goes to, created for a consumer that assigns
    /// partitions itself. `Err`: the error every partition is answered.
    fn group_to_commit_to<'p>(
        &mut self,
        partitions: &'p mut BTreeMap<i32, OffsetsPartition>,
        request: &OffsetCommitRequest,
    ) -> Result<&'p mut Group, i16> {
        let group_id = request.group_id.0.as_str();
        let partition = self.partition_of(group_id);
        let Some(loaded) = partitions.get_mut(&partition) else {
            return Err(self.core.not_loaded(partition).code());
        };
        if !loaded.groups.contains_key(group_id) {
            if request.generation_id_or_member_epoch >= 0 {
                // A commit for a generation of a group that does not exist.
                return Err(GroupErrorCode::IllegalGeneration.code());
            }
            // A consumer that assigns partitions itself: the group exists for its offsets.
            let incarnation = self.next_sequence();
            let group = Group::new(group_id, incarnation, self.now.wall_clock_ms);
            loaded.groups.insert(group_id.to_string(), group);
        }
        Ok(loaded.groups.get_mut(group_id).expect("created above"))
    }

    /// Whether `request` may commit to `group`: Kafka's `validateOffsetCommit`, then
    /// the group's state. A member's commit resets its heartbeat. `Err`: the error
    /// every partition is answered.
    fn validate_offset_commit(
        &mut self,
        group: &mut Group,
        request: &OffsetCommitRequest,
    ) -> Result<(), i16> {
        let member_id = request.member_id.as_str();
        let instance_id = request.group_instance_id.as_ref().map(|id| id.as_str());
        let generation_id = request.generation_id_or_member_epoch;
        // Kafka's `validateOffsetCommit`.
        let error = if group.is(GroupState::Dead) {
            Some(GroupErrorCode::CoordinatorNotAvailable.code())
        } else if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            validate_current_member(group, member_id, instance_id).or_else(|| {
                (generation_id != group.generation_id)
                    .then_some(GroupErrorCode::IllegalGeneration.code())
            })
        } else if !group.is(GroupState::Empty) {
            // Only members commit while the group has members.
            Some(GroupErrorCode::UnknownMemberId.code())
        } else {
            None
        };
        let error = error.or_else(|| match group.state {
            GroupState::Empty => None,
            // Commits stay allowed while preparing a rebalance: the heartbeat tells the
            // member to rejoin.
            GroupState::Stable | GroupState::PreparingRebalance => {
                self.reset_heartbeat(group, member_id);
                None
            }
            GroupState::CompletingRebalance => Some(GroupErrorCode::RebalanceInProgress.code()),
            GroupState::Dead => unreachable!("checked above"),
        });
        match error {
            Some(code) => Err(code),
            None => Ok(()),
        }
    }
}

/// Every partition of `topics` (none if `None`) without an offset, answered `code`.
fn without_offsets(topics: Option<Vec<(String, Vec<i32>)>>, code: i16) -> Vec<FetchedTopic> {
    topics
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|partition| (partition, -1, -1, String::new(), code))
                .collect();
            (topic, partitions)
        })
        .collect()
}

/// One topic of an OffsetFetch v0–v7 answer.
fn response_topic((topic, partitions): FetchedTopic) -> OffsetFetchResponseTopic {
    let partitions = partitions
        .into_iter()
        .map(|(partition, offset, epoch, metadata, code)| {
            OffsetFetchResponsePartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(Some(text(&metadata)))
                .with_error_code(code)
        })
        .collect();
    OffsetFetchResponseTopic::default()
        .with_name(TopicName(text(&topic)))
        .with_partitions(partitions)
}

/// One topic of a group in an OffsetFetch v8+ answer.
fn group_response_topic((topic, partitions): FetchedTopic) -> OffsetFetchResponseTopics {
    let partitions = partitions
        .into_iter()
        .map(|(partition, offset, epoch, metadata, code)| {
            OffsetFetchResponsePartitions::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_metadata(Some(text(&metadata)))
                .with_error_code(code)
        })
        .collect();
    OffsetFetchResponseTopics::default()
        .with_name(TopicName(text(&topic)))
        .with_partitions(partitions)
}

impl Coordinator {
    /// Kafka's `handleCommitOffsets` and `storeOffsets`.
    pub(super) fn offset_commit(
        &mut self,
        now: Now,
        parked: Parked,
        request: &OffsetCommitRequest,
    ) {
        let group_id = request.group_id.0.as_str();
        let mut results = commit_results(request);
        let (partitions, mut cx) = self.split(now);
        if results.iter().all(|(_, partitions)| partitions.is_empty()) {
            // Nothing to commit: answered at once, and no group is created.
            cx.respond(parked.id, offset_commit_response(results));
            return;
        }
        let checked = cx
            .group_to_commit_to(partitions, request)
            .and_then(|group| cx.validate_offset_commit(group, request).map(|()| group));
        let group = match checked {
            Ok(group) => group,
            Err(code) => {
                answer_all(&mut results, code);
                cx.respond(parked.id, offset_commit_response(results));
                return;
            }
        };
        let metadata_max_bytes = usize::try_from(cx.config.offset_metadata_max_bytes).unwrap_or(0);
        let (staged, records) = stage_offsets(
            now,
            parked.api_version,
            metadata_max_bytes,
            request,
            &mut results,
        );
        if staged.is_empty() {
            cx.respond(parked.id, offset_commit_response(results));
            return;
        }
        for (key, _) in &staged {
            *group.pending_offset_commits.entry(key.clone()).or_default() += 1;
        }
        let then = Then::OffsetCommit {
            parked,
            group_id: group_id.to_string(),
            incarnation: group.incarnation,
            response: results,
            staged,
        };
        cx.append(group_id, records, then);
    }

    /// An OffsetCommit's records are committed: the offsets become visible (unless the
    /// group was deleted meanwhile, or a later commit already landed) and the commit is
    /// answered.
    pub(super) fn complete_offset_commit(
        &mut self,
        parked: Parked,
        group_id: &str,
        incarnation: u64,
        response: CommitResults,
        staged: Vec<(TopicPartition, CommittedOffset)>,
        last_offset: Option<i64>,
    ) {
        let record_offset = last_offset.expect("a committed append has an offset");
        if let Some(group) = self.group_mut(group_id, incarnation) {
            for (key, mut offset) in staged {
                release_pending(group, &key);
                offset.record_offset = record_offset;
                let newer = group
                    .offsets
                    .get(&key)
                    .is_none_or(|current| current.record_offset < record_offset);
                if newer {
                    group.offsets.insert(key, offset);
                }
            }
        }
        self.core.effects.push(super::Effect::Respond {
            id: parked.id,
            response: offset_commit_response(response),
        });
    }

    /// An OffsetCommit's append failed: its staged offsets are dropped and every one of
    /// them is answered `code`.
    pub(super) fn fail_offset_commit(
        &mut self,
        parked: Parked,
        group_id: &str,
        incarnation: u64,
        mut response: CommitResults,
        staged: Vec<(TopicPartition, CommittedOffset)>,
        code: i16,
    ) {
        if let Some(group) = self.group_mut(group_id, incarnation) {
            for (key, _) in &staged {
                release_pending(group, key);
            }
        }
        for (_, partitions) in response.iter_mut() {
            for (_, result) in partitions.iter_mut() {
                result.get_or_insert(code);
            }
        }
        self.core.effects.push(super::Effect::Respond {
            id: parked.id,
            response: offset_commit_response(response),
        });
    }

    pub(super) fn group_mut(&mut self, group_id: &str, incarnation: u64) -> Option<&mut Group> {
        let partition = Self::partition_for(group_id, self.config.offsets_topic_num_partitions);
        self.partitions
            .get_mut(&partition)?
            .groups
            .get_mut(group_id)
            .filter(|group| group.incarnation == incarnation)
    }

    /// Kafka's `handleFetchOffsets` / `getOffsets`, one group or (v8+) several.
    pub(super) fn offset_fetch(&mut self, parked: Parked, request: &OffsetFetchRequest) {
        let api_version = parked.api_version;
        let response = if api_version >= 8 {
            self.offset_fetch_groups(request)
        } else {
            self.offset_fetch_group(api_version, request)
        };
        self.core.effects.push(super::Effect::Respond {
            id: parked.id,
            response: ResponseKind::OffsetFetch(response),
        });
    }

    /// OffsetFetch v8+: the offsets of each group asked about, each with its own error.
    fn offset_fetch_groups(&self, request: &OffsetFetchRequest) -> OffsetFetchResponse {
        let groups = request
            .groups
            .iter()
            .map(|group| {
                let topics: Option<Vec<(String, Vec<i32>)>> = group.topics.as_ref().map(|topics| {
                    topics
                        .iter()
                        .map(|topic| (topic.name.0.to_string(), topic.partition_indexes.clone()))
                        .collect()
                });
                let fetched =
                    self.fetch_offsets(group.group_id.0.as_str(), topics, request.require_stable);
                let (code, topics) = match fetched {
                    Ok(topics) => (GroupErrorCode::None.code(), topics),
                    Err(code) => (code, Vec::new()),
                };
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id.clone())
                    .with_error_code(code)
                    .with_topics(topics.into_iter().map(group_response_topic).collect())
            })
            .collect();
        OffsetFetchResponse::default().with_groups(groups)
    }

    /// OffsetFetch v0–v7: the offsets of the one group asked about.
    fn offset_fetch_group(
        &self,
        api_version: i16,
        request: &OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let requested: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|topic| (topic.name.0.to_string(), topic.partition_indexes.clone()))
                .collect()
        });
        let fetched = self.fetch_offsets(
            request.group_id.0.as_str(),
            requested.clone(),
            request.require_stable,
        );
        let (code, topics) = match fetched {
            Ok(topics) => (GroupErrorCode::None.code(), topics),
            // v0–v1 have no top-level error: each requested partition carries it
            // (Kafka's `OffsetFetchRequest.getErrorResponse`). v2+ answer no topics.
            Err(code) if api_version < 2 => (code, without_offsets(requested, code)),
            Err(code) => (code, Vec::new()),
        };
        OffsetFetchResponse::default()
            .with_error_code(code)
            .with_topics(topics.into_iter().map(response_topic).collect())
    }

    /// The offsets of one group: the requested partitions (-1 for those without a
    /// commit), or all of them when `topics` is `None`. `Err` is a group-level error.
    fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Result<Vec<FetchedTopic>, i16> {
        let partition = Self::partition_for(group_id, self.config.offsets_topic_num_partitions);
        let Some(loaded) = self.partitions.get(&partition) else {
            return Err(self.core.not_loaded(partition).code());
        };
        let none = GroupErrorCode::None.code();
        let Some(group) = loaded.groups.get(group_id) else {
            // Kafka answers blindly for a group it does not know: no offsets.
            return Ok(without_offsets(topics, none));
        };
        let topics = topics.unwrap_or_else(|| {
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for key in group.offsets.keys() {
                all.entry(key.topic.clone())
                    .or_default()
                    .push(key.partition);
            }
            all.into_iter().collect()
        });
        Ok(topics
            .into_iter()
            .map(|(topic, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|partition| {
                        let key = TopicPartition::new(topic.as_str(), partition);
                        if require_stable && group.pending_offset_commits.contains_key(&key) {
                            let unstable = GroupErrorCode::UnstableOffsetCommit.code();
                            return (partition, -1, -1, String::new(), unstable);
                        }
                        match group.offsets.get(&key) {
                            Some(offset) => (
                                partition,
                                offset.offset,
                                offset.leader_epoch,
                                offset.metadata.clone(),
                                none,
                            ),
                            None => (partition, -1, -1, String::new(), none),
                        }
                    })
                    .collect();
                (topic, partitions)
            })
            .collect())
    }

    /// Kafka's `handleDescribeGroup`, for each group asked about.
    pub(super) fn describe_groups(&mut self, parked: Parked, request: &DescribeGroupsRequest) {
        let authorized_operations = if request.include_authorized_operations {
            0
        } else {
            i32::MIN
        };
        let groups = request
            .groups
            .iter()
            .map(|group_id| {
                let described = DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_authorized_operations(authorized_operations);
                let partition = Self::partition_for(
                    group_id.0.as_str(),
                    self.config.offsets_topic_num_partitions,
                );
                let Some(loaded) = self.partitions.get(&partition) else {
                    return described.with_error_code(self.core.not_loaded(partition).code());
                };
                let Some(group) = loaded.groups.get(group_id.0.as_str()) else {
                    return described.with_group_state(text(GroupState::Dead.name()));
                };
                // Member metadata and assignments are shown only when Stable (Kafka's
                // `GroupMetadata.summary`).
                let protocol = group
                    .protocol_name
                    .as_deref()
                    .filter(|_| group.is(GroupState::Stable));
                let members = group
                    .members_in_join_order()
                    .into_iter()
                    .map(|member| {
                        let described = DescribedGroupMember::default()
                            .with_member_id(text(&member.member_id))
                            .with_group_instance_id(member.group_instance_id.as_deref().map(text))
                            .with_client_id(text(&member.client_id))
                            .with_client_host(text(&member.client_host));
                        match protocol {
                            Some(protocol) => described
                                .with_member_metadata(member.metadata(protocol))
                                .with_member_assignment(member.assignment.clone()),
                            None => described,
                        }
                    })
                    .collect();
                described
                    .with_group_state(text(group.state.name()))
                    .with_protocol_type(text(group.protocol_type.as_deref().unwrap_or("")))
                    .with_protocol_data(text(protocol.unwrap_or("")))
                    .with_members(members)
            })
            .collect();
        self.core.effects.push(super::Effect::Respond {
            id: parked.id,
            response: ResponseKind::DescribeGroups(
                DescribeGroupsResponse::default().with_groups(groups),
            ),
        });
    }

    /// Kafka's `handleListGroups`: every group this node coordinates, filtered by state
    /// (v4+) and type (v5+), both case-insensitively.
    pub(super) fn list_groups(&mut self, parked: Parked, request: &ListGroupsRequest) {
        let states: Vec<String> = request
            .states_filter
            .iter()
            .map(|state| state.to_ascii_lowercase())
            .collect();
        let types: Vec<String> = request
            .types_filter
            .iter()
            .map(|group_type| group_type.to_ascii_lowercase())
            .collect();
        let groups = self
            .partitions
            .values()
            .flat_map(|loaded| loaded.groups.values())
            .filter(|group| {
                states.is_empty() || states.contains(&group.state.name().to_ascii_lowercase())
            })
            .filter(|_| types.is_empty() || types.iter().any(|t| t == GROUP_TYPE_CLASSIC))
            .map(|group| {
                ListedGroup::default()
                    .with_group_id(GroupId(text(&group.group_id)))
                    .with_protocol_type(text(group.protocol_type.as_deref().unwrap_or("")))
                    .with_group_state(text(group.state.name()))
                    .with_group_type(text(GROUP_TYPE_CLASSIC))
            })
            .collect();
        self.core.effects.push(super::Effect::Respond {
            id: parked.id,
            response: ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(groups)),
        });
    }

    /// Kafka's `handleDeleteGroups`: an Empty group is removed with tombstones for its
    /// offsets and its metadata. Unlike Kafka (which appends them without waiting), the
    /// answer waits until the tombstones are committed, so that a deleted group cannot
    /// come back after a failover.
    pub(super) fn delete_groups(
        &mut self,
        now: Now,
        parked: Parked,
        request: &DeleteGroupsRequest,
    ) {
        let mut seen = BTreeSet::new();
        let mut results: Vec<(String, Option<i16>)> = Vec::new();
        let mut tombstones: BTreeMap<i32, (Vec<OffsetsRecord>, Vec<String>)> = BTreeMap::new();
        let (partitions, mut cx) = self.split(now);
        for group_id in &request.groups_names {
            let group_id = group_id.0.as_str();
            if !seen.insert(group_id) {
                continue;
            }
            let partition = cx.partition_of(group_id);
            let code = match partitions.get_mut(&partition) {
                None => Some(cx.core.not_loaded(partition).code()),
                Some(loaded) => match loaded.groups.get(group_id).map(|group| group.state) {
                    None | Some(GroupState::Dead) => Some(GroupErrorCode::GroupIdNotFound.code()),
                    Some(GroupState::Empty) => {
                        let mut group = loaded.groups.remove(group_id).expect("looked up");
                        group.transition_to(GroupState::Dead, now.wall_clock_ms);
                        let entry = tombstones.entry(partition).or_default();
                        entry.0.extend(group_tombstones(&group));
                        entry.1.push(group_id.to_string());
                        None
                    }
                    Some(_) => Some(GroupErrorCode::NonEmptyGroup.code()),
                },
            };
            results.push((group_id.to_string(), code));
        }
        if tombstones.is_empty() {
            let response = delete_groups_response(results);
            cx.respond(parked.id, response);
            return;
        }
        let waits_outstanding = tombstones.len();
        for (partition, (records, groups)) in tombstones {
            cx.append_to(
                partition,
                records,
                Then::DeleteGroups {
                    id: parked.id,
                    groups,
                },
            );
        }
        cx.core.deletes.insert(
            parked.id,
            PendingDelete {
                results,
                waits_outstanding,
            },
        );
    }

    /// One partition's tombstones of a DeleteGroups are committed (`error` is `None`)
    /// or failed.
    pub(super) fn complete_delete(&mut self, id: RequestId, groups: &[String], error: Option<i16>) {
        let Some(pending) = self.core.deletes.get_mut(&id) else {
            return;
        };
        for (group_id, result) in pending.results.iter_mut() {
            if groups.contains(group_id) {
                *result = Some(error.unwrap_or(GroupErrorCode::None.code()));
            }
        }
        pending.waits_outstanding -= 1;
        if pending.waits_outstanding == 0 {
            let pending = self.core.deletes.remove(&id).expect("looked up");
            let response = delete_groups_response(pending.results);
            self.core
                .effects
                .push(super::Effect::Respond { id, response });
        }
    }

    /// Offsets retention for one partition (Kafka's `cleanupGroupMetadata` with
    /// `removeExpiredOffsets`): expired offsets get tombstones; an Empty group left with
    /// no offsets goes Dead and its metadata gets a tombstone too.
    pub(super) fn expire_offsets(&mut self, now: Now, partition: i32) {
        let (partitions, mut cx) = self.split(now);
        let loaded = partitions.get_mut(&partition).expect("a loaded partition");
        loaded.next_retention_check = now.after_ms(cx.config.offsets_retention_check_interval_ms);
        cx.deadline(loaded.next_retention_check);
        let retention_ms = cx.config.offsets_retention_ms();
        let mut records = Vec::new();
        let mut dead = Vec::new();
        for group in loaded.groups.values_mut() {
            for key in expired_offsets(group, now.wall_clock_ms, retention_ms) {
                group.offsets.remove(&key);
                records.push(OffsetsRecord {
                    key: offset_key(&group.group_id, &key),
                    value: None,
                });
            }
            if group.is(GroupState::Empty) && !group.has_offsets() {
                dead.push(group.group_id.clone());
            }
        }
        for group_id in dead {
            let mut group = loaded.groups.remove(&group_id).expect("listed above");
            group.transition_to(GroupState::Dead, now.wall_clock_ms);
            records.push(OffsetsRecord {
                key: RecordKey::GroupMetadata { group: group_id }.encode(),
                value: None,
            });
        }
        if !records.is_empty() {
            cx.append_to(partition, records, Then::Nothing);
        }
    }

    /// Rebuilds partition `partition`'s groups from its records (Kafka's
    /// `doLoadGroupsAndOffsets`): later records win, tombstones delete, records this
    /// version does not know are skipped.
    pub(super) fn load_partition(
        &mut self,
        now: Now,
        partition: i32,
        records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>)>,
    ) {
        let (offsets, metadata) = read_offsets_records(partition, records);
        let (partitions, mut cx) = self.split(now);
        let mut groups = BTreeMap::new();
        for (group_id, value) in metadata {
            let Some(value) = value else { continue };
            let group = cx.restore_group(now, &group_id, value);
            groups.insert(group_id, group);
        }
        for (group_id, group_offsets) in offsets {
            if group_offsets.is_empty() && !groups.contains_key(&group_id) {
                continue;
            }
            let group = groups.entry(group_id.clone()).or_insert_with(|| {
                let incarnation = cx.next_sequence();
                Group::new(&group_id, incarnation, now.wall_clock_ms)
            });
            group.offsets = group_offsets;
        }
        let next_retention_check = now.after_ms(cx.config.offsets_retention_check_interval_ms);
        cx.deadline(next_retention_check);
        let max_size = usize::try_from(cx.config.group_max_size).unwrap_or(0);
        for group in groups.values_mut() {
            // Kafka's `onGroupLoaded`: a group over `group.max.size` rebalances, which
            // lets the members commit before the extra ones are turned away.
            if group.members.len() > max_size {
                cx.maybe_prepare_rebalance(group);
            }
        }
        partitions.insert(
            partition,
            OffsetsPartition {
                groups,
                high_watermark: -1,
                next_retention_check,
            },
        );
    }
}

/// Kafka's `removeExpiredOffsets`: which offsets of `group` have outlived the
/// retention (KIP-211 rules).
fn expired_offsets(group: &Group, now_ms: i64, retention_ms: i64) -> Vec<TopicPartition> {
    // The time each offset's retention counts from, per group kind; `None`: keep all.
    enum Base {
        /// An Empty group that had members: since it became empty (or, for records
        /// without that timestamp, since the commit).
        BecameEmpty(Option<i64>),
        /// A consumer group: offsets of topics nobody subscribes to, since the commit.
        Unsubscribed(BTreeSet<String>),
        /// A group used only for offsets: since the commit.
        Commit,
    }
    let base = match group.protocol_type.as_deref() {
        Some(_) if group.is(GroupState::Empty) => Base::BecameEmpty(group.state_timestamp_ms),
        Some(super::state::CONSUMER_PROTOCOL_TYPE) if group.is(GroupState::Stable) => {
            match group.subscribed_topics() {
                Some(topics) => Base::Unsubscribed(topics),
                None => return Vec::new(),
            }
        }
        None => Base::Commit,
        Some(_) => return Vec::new(),
    };
    group
        .offsets
        .iter()
        .filter(|(key, _)| !group.pending_offset_commits.contains_key(*key))
        .filter(|(key, offset)| {
            let since = match &base {
                Base::BecameEmpty(at) => at.unwrap_or(offset.commit_timestamp_ms),
                Base::Unsubscribed(topics) if topics.contains(&key.topic) => return false,
                Base::Unsubscribed(_) | Base::Commit => offset.commit_timestamp_ms,
            };
            match offset.expire_timestamp_ms {
                // Commits that carried their own retention (OffsetCommit v2–v4).
                Some(expire_at) => now_ms >= expire_at,
                None => now_ms.saturating_sub(since) >= retention_ms,
            }
        })
        .map(|(key, _)| key.clone())
        .collect()
}

fn release_pending(group: &mut Group, key: &TopicPartition) {
    if let Some(count) = group.pending_offset_commits.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            group.pending_offset_commits.remove(key);
        }
    }
}

pub(super) fn offset_key(group_id: &str, key: &TopicPartition) -> Bytes {
    RecordKey::OffsetCommit {
        group: group_id.to_string(),
        topic: key.topic.clone(),
        partition: key.partition,
    }
    .encode()
}

fn offset_record(group_id: &str, key: &TopicPartition, offset: &CommittedOffset) -> OffsetsRecord {
    let value = OffsetCommitValue {
        offset: offset.offset,
        leader_epoch: offset.leader_epoch,
        metadata: offset.metadata.clone(),
        commit_timestamp_ms: offset.commit_timestamp_ms,
        expire_timestamp_ms: offset.expire_timestamp_ms,
    };
    OffsetsRecord {
        key: offset_key(group_id, key),
        value: Some(value.encode()),
    }
}

/// Tombstones for every offset of `group` and for its metadata.
fn group_tombstones(group: &Group) -> Vec<OffsetsRecord> {
    let offsets = group.offsets.keys().map(|key| OffsetsRecord {
        key: offset_key(&group.group_id, key),
        value: None,
    });
    let metadata = OffsetsRecord {
        key: RecordKey::GroupMetadata {
            group: group.group_id.clone(),
        }
        .encode(),
        value: None,
    };
    offsets.chain([metadata]).collect()
}

fn delete_groups_response(results: Vec<(String, Option<i16>)>) -> ResponseKind {
    let results = results
        .into_iter()
        .map(|(group_id, code)| {
            DeletableGroupResult::default()
                .with_group_id(GroupId(text(&group_id)))
                .with_error_code(code.expect("every group has a result"))
        })
        .collect();
    ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results))
}

impl Cx<'_> {
    /// A group as its last metadata record left it: members with fresh session
    /// deadlines, the leader the record names, Stable if it has members.
    fn restore_group(&mut self, now: Now, group_id: &str, value: GroupMetadataValue) -> Group {
        let incarnation = self.next_sequence();
        let mut group = Group::new(group_id, incarnation, now.wall_clock_ms);
        group.protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol_name.clone();
        group.generation_id = value.generation_id;
        group.state_timestamp_ms = Some(value.current_state_timestamp_ms).filter(|at| *at != -1);
        let protocol = value.protocol_name.clone().unwrap_or_default();
        for member in value.members {
            let session_deadline = now.after_ms(i64::from(member.session_timeout_ms));
            self.deadline(session_deadline);
            let restored = Member {
                member_id: member.member_id,
                group_instance_id: member.group_instance_id,
                client_id: member.client_id,
                client_host: member.client_host,
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                session_timeout_ms: member.session_timeout_ms,
                protocol_type: value.protocol_type.clone(),
                protocols: vec![(protocol.clone(), member.subscription)],
                assignment: member.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline: Some(session_deadline),
                join_sequence: self.next_sequence(),
            };
            group.add_member(restored);
        }
        // `add_member` made the first member leader; the record names the real one.
        if let Some(leader) = value
            .leader
            .filter(|leader| group.members.contains_key(leader))
        {
            group.leader_id = Some(leader);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
        }
        group
    }
}

/// The offsets partition `partition`'s records, folded: each group's committed
/// offsets, and each group's last metadata (`None`: deleted). Records that do not
/// decode are skipped with a warning.
fn read_offsets_records(
    partition: i32,
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>)>,
) -> (OffsetsByGroup, MetadataByGroup) {
    let mut offsets = OffsetsByGroup::new();
    let mut metadata = MetadataByGroup::new();
    for (key, value) in records {
        let Some(key) = key else {
            tracing::warn!("__consumer_offsets-{partition}: a record without a key, skipped");
            continue;
        };
        let key = match RecordKey::decode(&key) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!("__consumer_offsets-{partition}: skipped a record: {error}");
                continue;
            }
        };
        match key {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition: topic_partition,
            } => {
                let key = TopicPartition::new(topic, topic_partition);
                let group_offsets = offsets.entry(group).or_default();
                match value.as_deref().map(OffsetCommitValue::decode) {
                    None => {
                        group_offsets.remove(&key);
                    }
                    Some(Ok(value)) => {
                        let offset = CommittedOffset {
                            offset: value.offset,
                            leader_epoch: value.leader_epoch,
                            metadata: value.metadata,
                            commit_timestamp_ms: value.commit_timestamp_ms,
                            expire_timestamp_ms: value.expire_timestamp_ms,
                            record_offset: -1,
                        };
                        group_offsets.insert(key, offset);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(
                            "__consumer_offsets-{partition}: skipped an offset: {error}"
                        );
                    }
                }
            }
            RecordKey::GroupMetadata { group } => {
                match value.as_deref().map(GroupMetadataValue::decode) {
                    None => {
                        metadata.insert(group, None);
                    }
                    Some(Ok(value)) => {
                        metadata.insert(group, Some(value));
                    }
                    Some(Err(error)) => {
                        tracing::warn!(
                            "__consumer_offsets-{partition}: skipped group {group}: {error}"
                        );
                    }
                }
            }
        }
    }
    (offsets, metadata)
}
