//! The authorization checks of the group coordinator's requests, made by the node
//! before the coordinator sees them (the coordinator knows groups, not principals).
//!
//! | request | needs | refused with |
//! | --- | --- | --- |
//! | JoinGroup, SyncGroup, Heartbeat, LeaveGroup | READ on the group | GROUP_AUTHORIZATION_FAILED |
//! | OffsetCommit | READ on the group | GROUP_AUTHORIZATION_FAILED on every partition |
//! | OffsetFetch (one group, v0-7) | DESCRIBE on the group | GROUP_AUTHORIZATION_FAILED |
//! | DeleteGroups | DELETE on every group named | GROUP_AUTHORIZATION_FAILED on each |
//! | OffsetDelete | DELETE on the group | GROUP_AUTHORIZATION_FAILED |
//!
//! A request refused here is answered at once. Some are partly refused: the topics of
//! an OffsetCommit the principal may not READ (or an OffsetDelete's) are taken out
//! before the coordinator sees it and answered TOPIC_AUTHORIZATION_FAILED; and some
//! answers show only what the principal may DESCRIBE: ListGroups (unless it may
//! DESCRIBE the cluster) lists those groups only, DescribeGroups and OffsetFetch v8+
//! answer other groups GROUP_AUTHORIZATION_FAILED, OffsetFetch answers other topics
//! TOPIC_AUTHORIZATION_FAILED (or leaves them out when all topics were asked for).
//! Such a request leaves a [`GroupView`] behind, which its answer passes through.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsResponse, HeartbeatResponse, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse, RequestKind, ResponseKind,
    SyncGroupResponse, TopicName,
};

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::group_view::GroupView;
use crate::node::Node;
use crate::request::Request;

impl Node {
    /// The answer to a group request the principal may not make, or `None` if it may.
    pub(crate) fn group_request_refusal(&self, request: &Request) -> Option<ResponseKind> {
        let refused = ErrorCode::GroupAuthorizationFailed.code();
        let may = |operation, group: &str| self.allows_group(request, operation, group);
        let version = request.api_version;
        match &request.body {
            RequestKind::JoinGroup(join) if !may(Operation::Read, join.group_id.as_str()) => {
                let member_id = join.member_id.as_str();
                Some(crate::group::join_error(version, member_id, refused))
            }
            RequestKind::SyncGroup(sync) if !may(Operation::Read, sync.group_id.as_str()) => {
                let response = SyncGroupResponse::default().with_error_code(refused);
                Some(ResponseKind::SyncGroup(response))
            }
            RequestKind::Heartbeat(beat) if !may(Operation::Read, beat.group_id.as_str()) => {
                let response = HeartbeatResponse::default().with_error_code(refused);
                Some(ResponseKind::Heartbeat(response))
            }
            RequestKind::LeaveGroup(leave) if !may(Operation::Read, leave.group_id.as_str()) => {
                let response = LeaveGroupResponse::default().with_error_code(refused);
                Some(ResponseKind::LeaveGroup(response))
            }
            RequestKind::OffsetCommit(commit)
                if !may(Operation::Read, commit.group_id.as_str()) =>
            {
                Some(refused_commit(commit, refused))
            }
            RequestKind::OffsetFetch(fetch)
                if version < 8 && !may(Operation::Describe, fetch.group_id.as_str()) =>
            {
                let response = OffsetFetchResponse::default().with_error_code(refused);
                Some(ResponseKind::OffsetFetch(response))
            }
            RequestKind::OffsetDelete(delete)
                if !may(Operation::Delete, delete.group_id.as_str()) =>
            {
                let response = OffsetDeleteResponse::default().with_error_code(refused);
                Some(ResponseKind::OffsetDelete(response))
            }
            RequestKind::DeleteGroups(delete)
                if (delete.groups_names.iter()).any(|g| !may(Operation::Delete, g.as_str())) =>
            {
                let results = delete.groups_names.iter().map(|group| {
                    let allowed = may(Operation::Delete, group.as_str());
                    DeletableGroupResult::default()
                        .with_group_id(group.clone())
                        .with_error_code(if allowed { 0 } else { refused })
                });
                let response = DeleteGroupsResponse::default().with_results(results.collect());
                Some(ResponseKind::DeleteGroups(response))
            }
            _ => None,
        }
    }
}

impl Node {
    /// `request` with the topics the principal may not READ taken out (OffsetCommit,
    /// OffsetDelete), and the view its answer goes through, if it needs one.
    pub(crate) fn authorized_view(&self, mut request: Request) -> (Request, Option<GroupView>) {
        if self.config.authorizer.is_none() {
            return (request, None);
        }
        let original = request.clone();
        let mut refused_topics = Vec::new();
        let mut may_read = |name: &TopicName, partitions: Vec<i32>| {
            let allowed = self.allows_topic(&original, Operation::Read, name.0.as_str());
            if !allowed {
                refused_topics.push((name.clone(), partitions));
            }
            allowed
        };
        let needs_view = match &mut request.body {
            RequestKind::OffsetCommit(commit) => {
                commit.topics.retain(|topic| {
                    let partitions = topic.partitions.iter().map(|p| p.partition_index);
                    may_read(&topic.name, partitions.collect())
                });
                true
            }
            RequestKind::OffsetDelete(delete) => {
                delete.topics.retain(|topic| {
                    let partitions = topic.partitions.iter().map(|p| p.partition_index);
                    may_read(&topic.name, partitions.collect())
                });
                true
            }
            RequestKind::ListGroups(_) => !self.allows_cluster(&original, Operation::Describe),
            RequestKind::DescribeGroups(_) | RequestKind::OffsetFetch(_) => true,
            _ => false,
        };
        let view = needs_view.then_some(GroupView {
            request: original,
            refused_topics,
        });
        (request, view)
    }

    /// `response` as `view`'s principal may see it.
    pub(crate) fn through_view(&self, view: GroupView, response: ResponseKind) -> ResponseKind {
        let request = &view.request;
        let may_describe = |group: &str| self.allows_group(request, Operation::Describe, group);
        let refused_topic = ErrorCode::TopicAuthorizationFailed.code();
        match response {
            ResponseKind::ListGroups(mut list) => {
                list.groups
                    .retain(|group| may_describe(group.group_id.as_str()));
                ResponseKind::ListGroups(list)
            }
            ResponseKind::DescribeGroups(mut describe) => {
                for group in &mut describe.groups {
                    if !may_describe(group.group_id.as_str()) {
                        *group = DescribedGroup::default()
                            .with_group_id(group.group_id.clone())
                            .with_error_code(ErrorCode::GroupAuthorizationFailed.code())
                            .with_authorized_operations(group.authorized_operations);
                    }
                }
                ResponseKind::DescribeGroups(describe)
            }
            ResponseKind::OffsetFetch(fetch) => {
                ResponseKind::OffsetFetch(self.offset_fetch_view(request, fetch))
            }
            ResponseKind::OffsetCommit(mut commit) => {
                for (name, partitions) in view.refused_topics {
                    let partitions = partitions.into_iter().map(|partition| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(partition)
                            .with_error_code(refused_topic)
                    });
                    commit.topics.push(
                        OffsetCommitResponseTopic::default()
                            .with_name(name)
                            .with_partitions(partitions.collect()),
                    );
                }
                ResponseKind::OffsetCommit(commit)
            }
            ResponseKind::OffsetDelete(mut delete) => {
                for (name, partitions) in view.refused_topics {
                    let partitions = partitions.into_iter().map(|partition| {
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(partition)
                            .with_error_code(refused_topic)
                    });
                    delete.topics.push(
                        OffsetDeleteResponseTopic::default()
                            .with_name(name)
                            .with_partitions(partitions.collect()),
                    );
                }
                ResponseKind::OffsetDelete(delete)
            }
            other => other,
        }
    }

    /// An OffsetFetch answer as the principal may see it: topics it may not DESCRIBE
    /// refused (or left out of an all-topics answer), and at v8+ groups it may not
    /// DESCRIBE refused.
    fn offset_fetch_view(
        &self,
        request: &Request,
        mut fetch: OffsetFetchResponse,
    ) -> OffsetFetchResponse {
        let RequestKind::OffsetFetch(asked) = &request.body else {
            unreachable!("an OffsetFetch answer is for an OffsetFetch")
        };
        let may_describe =
            |topic: &TopicName| self.allows_topic(request, Operation::Describe, topic.0.as_str());
        let refused = ErrorCode::TopicAuthorizationFailed.code();
        if asked.topics.is_none() && asked.groups.is_empty() {
            fetch.topics.retain(|topic| may_describe(&topic.name));
        }
        for topic in fetch.topics.iter_mut().filter(|t| !may_describe(&t.name)) {
            for partition in &mut topic.partitions {
                partition.committed_offset = -1;
                partition.committed_leader_epoch = -1;
                partition.error_code = refused;
            }
        }
        for group in &mut fetch.groups {
            if !self.allows_group(request, Operation::Describe, group.group_id.as_str()) {
                group.topics.clear();
                group.error_code = ErrorCode::GroupAuthorizationFailed.code();
                continue;
            }
            let all_topics =
                (asked.groups.iter()).any(|g| g.group_id == group.group_id && g.topics.is_none());
            if all_topics {
                group.topics.retain(|topic| may_describe(&topic.name));
            }
            for topic in group.topics.iter_mut().filter(|t| !may_describe(&t.name)) {
                for partition in &mut topic.partitions {
                    partition.committed_offset = -1;
                    partition.committed_leader_epoch = -1;
                    partition.error_code = refused;
                }
            }
        }
        fetch
    }
}

/// An OffsetCommit answered `error` on every partition.
fn refused_commit(commit: &OffsetCommitRequest, error: i16) -> ResponseKind {
    let topics = commit.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(error)
        });
        OffsetCommitResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics.collect()))
}
