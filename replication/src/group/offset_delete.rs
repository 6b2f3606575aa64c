//! OffsetDelete (API 47, KIP-496): forget a group's committed offsets of some
//! partitions, as `kafka-consumer-groups --delete-offsets` asks.
//!
//! ```text
//!  OffsetDelete(group, topics) ─► group exists? (GROUP_ID_NOT_FOUND)
//!                                 members, but not a consumer group? (NON_EMPTY_GROUP)
//!                                 per topic: a member subscribes to it?
//!                                     yes ─► GROUP_SUBSCRIBED_TO_TOPIC for its partitions
//!                                     no  ─► a tombstone for each partition with an offset
//!  tombstones committed ──────────► offsets written before them are forgotten; answered
//! ```
//!
//! The tombstones go through the same append path as commits, so a restart or a new
//! coordinator replays them and the offsets stay deleted. The offsets stay visible
//! until the tombstones are committed (a failed append deletes nothing), and then only
//! those written before the tombstones go: a commit appended after them survives.

use std::collections::BTreeSet;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind};

use super::offsets::offset_key;
use super::state::{CONSUMER_PROTOCOL_TYPE, Group, GroupState, Parked};
use super::{Coordinator, Cx, GroupErrorCode, Now, OffsetsPartition, OffsetsRecord, Then};
use crate::request::RequestId;
use crate::topics::TopicPartition;

/// What an OffsetDelete waits for: its tombstones, then this answer.
#[derive(Debug)]
pub(super) struct PendingOffsetDelete {
    id: RequestId,
    group_id: String,
    incarnation: u64,
    /// The partitions whose offsets the tombstones delete.
    deleted: Vec<TopicPartition>,
    response: OffsetDeleteResponse,
}

fn top_level_error(code: GroupErrorCode) -> ResponseKind {
    ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_error_code(code.code()))
}

impl Coordinator {
    /// Kafka's `deleteOffsets`: answered at once when nothing is to be deleted, else
    /// once the tombstones are committed.
    pub(super) fn offset_delete(
        &mut self,
        now: Now,
        parked: Parked,
        request: &OffsetDeleteRequest,
    ) {
        let group_id = request.group_id.0.as_str();
        let (partitions, mut cx) = self.split(now);
        let group = match group_to_delete_from(partitions, &cx, group_id) {
            Ok(group) => group,
            Err(code) => return cx.respond(parked.id, top_level_error(code)),
        };
        let (response, deleted) = plan_deletion(group, request);
        if deleted.is_empty() {
            return cx.respond(parked.id, ResponseKind::OffsetDelete(response));
        }
        let records = deleted
            .iter()
            .map(|key| OffsetsRecord {
                key: offset_key(group_id, key),
                value: None,
            })
            .collect();
        let pending = PendingOffsetDelete {
            id: parked.id,
            group_id: group_id.to_string(),
            incarnation: group.incarnation,
            deleted,
            response,
        };
        cx.append(group_id, records, Then::OffsetDelete(Box::new(pending)));
    }

    /// The tombstones are committed, the last at `last_offset`: the offsets written
    /// before them are gone, and the request is answered.
    pub(super) fn complete_offset_delete(
        &mut self,
        pending: PendingOffsetDelete,
        last_offset: i64,
    ) {
        if let Some(group) = self.group_mut(&pending.group_id, pending.incarnation) {
            for key in &pending.deleted {
                if group
                    .offsets
                    .get(key)
                    .is_some_and(|offset| offset.record_offset < last_offset)
                {
                    group.offsets.remove(key);
                }
            }
        }
        self.core.effects.push(super::Effect::Respond {
            id: pending.id,
            response: ResponseKind::OffsetDelete(pending.response),
        });
    }

    /// The tombstones were not appended (or their partition was unloaded): nothing is
    /// deleted, and the request is answered `code`.
    pub(super) fn fail_offset_delete(&mut self, pending: PendingOffsetDelete, code: i16) {
        let response = OffsetDeleteResponse::default().with_error_code(code);
        self.core.effects.push(super::Effect::Respond {
            id: pending.id,
            response: ResponseKind::OffsetDelete(response),
        });
    }
}

/// The group whose offsets may be deleted, or the group-level error (Kafka's
/// `validateOffsetDelete` for classic groups).
fn group_to_delete_from<'p>(
    partitions: &'p mut std::collections::BTreeMap<i32, OffsetsPartition>,
    cx: &Cx<'_>,
    group_id: &str,
) -> Result<&'p mut Group, GroupErrorCode> {
    if group_id.is_empty() {
        return Err(GroupErrorCode::InvalidGroupId);
    }
    let partition = cx.partition_of(group_id);
    let Some(loaded) = partitions.get_mut(&partition) else {
        return Err(cx.core.not_loaded(partition));
    };
    let group = loaded
        .groups
        .get_mut(group_id)
        .filter(|group| !group.is(GroupState::Dead))
        .ok_or(GroupErrorCode::GroupIdNotFound)?;
    // Members of a group that is not a consumer group share offsets in ways the
    // coordinator cannot see, so only an empty one may lose them.
    let consumer = group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
    if !group.is(GroupState::Empty) && !consumer {
        return Err(GroupErrorCode::NonEmptyGroup);
    }
    Ok(group)
}

/// The answer for every partition asked, and the partitions to write tombstones for:
/// those with an offset, committed or in flight, of topics no member subscribes to.
fn plan_deletion(
    group: &Group,
    request: &OffsetDeleteRequest,
) -> (OffsetDeleteResponse, Vec<TopicPartition>) {
    // An Empty group subscribes to nothing; a consumer group whose subscriptions do
    // not parse is taken to subscribe to nothing too, as Kafka takes it.
    let subscribed = group.subscribed_topics().unwrap_or_default();
    let mut deleted = BTreeSet::new();
    let mut response = OffsetDeleteResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let refused = subscribed.contains(name);
        let mut partitions = Vec::new();
        for partition in &topic.partitions {
            let key = TopicPartition::new(name, partition.partition_index);
            let code = if refused {
                GroupErrorCode::GroupSubscribedToTopic
            } else {
                if group.offsets.contains_key(&key)
                    || group.pending_offset_commits.contains_key(&key)
                {
                    deleted.insert(key);
                }
                GroupErrorCode::None
            };
            partitions.push(
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(code.code()),
            );
        }
        response.topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    (response, deleted.into_iter().collect())
}
