//! Membership: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, and the timers that end join
//! phases and expel silent members. The rules are Kafka's `GroupCoordinator` (3.x,
//! classic protocol); comments name the Kafka method a step comes from.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ResponseKind, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::io::Instant;

use super::state::{Group, GroupState, JoinDeadline, Member, Parked};
use super::{
    Coordinator, Cx, GroupErrorCode, NEW_MEMBER_JOIN_TIMEOUT_MS, Now, OffsetsPartition,
    StaticRejoin, Then,
};

/// How many rounds of due deadlines one timer call runs at most (see
/// `Coordinator::expire`); what is left is due at the next call.
const EXPIRE_ROUNDS_MAX: usize = 8;

pub(super) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A JoinGroup's fields, normalised across versions.
pub(super) struct JoinRequest<'a> {
    pub(super) parked: Parked,
    pub(super) member_id: &'a str,
    pub(super) group_instance_id: Option<&'a str>,
    pub(super) client_id: &'a str,
    pub(super) client_host: &'a str,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) session_timeout_ms: i32,
    pub(super) protocol_type: &'a str,
    pub(super) protocols: Vec<(String, Bytes)>,
    /// KIP-394 (v4+): a new dynamic member must first get its member id.
    pub(super) require_known_member_id: bool,
    /// KIP-814 (v9+): a returning static leader may be told to skip assignment.
    pub(super) supports_skip_assignment: bool,
}

/// What a JoinGroup answer says.
struct JoinAnswer<'a> {
    error: i16,
    generation_id: i32,
    protocol_type: Option<&'a str>,
    protocol_name: Option<&'a str>,
    leader: &'a str,
    skip_assignment: bool,
    member_id: &'a str,
    members: Vec<JoinGroupResponseMember>,
}

fn join_response(api_version: i16, answer: JoinAnswer<'_>) -> ResponseKind {
    // Before v7 the protocol name is not nullable: Kafka sends "" for none.
    let protocol_name = match answer.protocol_name {
        Some(name) => Some(text(name)),
        None if api_version < 7 => Some(StrBytes::default()),
        None => None,
    };
    ResponseKind::JoinGroup(
        JoinGroupResponse::default()
            .with_error_code(answer.error)
            .with_generation_id(answer.generation_id)
            .with_protocol_type(answer.protocol_type.map(text))
            .with_protocol_name(protocol_name)
            .with_leader(text(answer.leader))
            .with_skip_assignment(answer.skip_assignment)
            .with_member_id(text(answer.member_id))
            .with_members(answer.members),
    )
}

/// A JoinGroup error (Kafka's `JoinGroupResult(memberId, error)`).
pub(crate) fn join_error(api_version: i16, member_id: &str, error: i16) -> ResponseKind {
    join_response(
        api_version,
        JoinAnswer {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: "",
            skip_assignment: false,
            member_id,
            members: Vec::new(),
        },
    )
}

/// The member list the leader gets (Kafka's `currentMemberMetadata`), in join order.
fn member_list(group: &Group) -> Vec<JoinGroupResponseMember> {
    let protocol = group
        .protocol_name
        .as_deref()
        .expect("a formed generation has a protocol");
    group
        .members_in_join_order()
        .into_iter()
        .map(|member| {
            JoinGroupResponseMember::default()
                .with_member_id(text(&member.member_id))
                .with_group_instance_id(member.group_instance_id.as_deref().map(text))
                .with_metadata(member.metadata(protocol))
        })
        .collect()
}

/// A successful JoinGroup answer for `member_id` in the current generation.
fn join_success(
    api_version: i16,
    group: &Group,
    member_id: &str,
    with_members: bool,
    skip_assignment: bool,
    leader: &str,
) -> ResponseKind {
    join_response(
        api_version,
        JoinAnswer {
            error: GroupErrorCode::None.code(),
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.as_deref(),
            protocol_name: group.protocol_name.as_deref(),
            leader,
            skip_assignment,
            member_id,
            members: if with_members {
                member_list(group)
            } else {
                Vec::new()
            },
        },
    )
}

pub(super) fn sync_error(error: i16) -> ResponseKind {
    ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(error))
}

fn sync_success(group: &Group, assignment: Bytes) -> ResponseKind {
    ResponseKind::SyncGroup(
        SyncGroupResponse::default()
            .with_protocol_type(group.protocol_type.as_deref().map(text))
            .with_protocol_name(group.protocol_name.as_deref().map(text))
            .with_assignment(assignment),
    )
}

fn heartbeat_response(error: i16) -> ResponseKind {
    ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(error))
}

/// Kafka's `validateCurrentMember`: an instance id must map to this member id (else
/// FENCED_INSTANCE_ID, or UNKNOWN_MEMBER_ID if unknown), and the member must exist.
pub(super) fn validate_current_member(
    group: &Group,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Option<i16> {
    if let Some(instance_id) = group_instance_id {
        match group.static_members.get(instance_id) {
            Some(current) if current != member_id => {
                return Some(GroupErrorCode::FencedInstanceId.code());
            }
            Some(_) => {}
            None => return Some(GroupErrorCode::UnknownMemberId.code()),
        }
    }
    if group.members.contains_key(member_id) {
        None
    } else {
        Some(GroupErrorCode::UnknownMemberId.code())
    }
}

impl Coordinator {
    pub(super) fn join_group(
        &mut self,
        now: Now,
        parked: Parked,
        client_id: &str,
        client_host: &str,
        request: &JoinGroupRequest,
    ) {
        let api_version = parked.api_version;
        let group_id = request.group_id.0.as_str();
        let member_id = request.member_id.as_str();
        let (partitions, mut cx) = self.split(now);
        let error = |cx: &mut Cx<'_>, code: GroupErrorCode| {
            cx.respond(parked.id, join_error(api_version, member_id, code.code()));
        };
        if group_id.is_empty() {
            return error(&mut cx, GroupErrorCode::InvalidGroupId);
        }
        let partition = cx.partition_of(group_id);
        let Some(loaded) = partitions.get_mut(&partition) else {
            let code = cx.core.not_loaded(partition);
            return error(&mut cx, code);
        };
        let session_timeout_ms = request.session_timeout_ms;
        if session_timeout_ms < cx.config.group_min_session_timeout_ms
            || session_timeout_ms > cx.config.group_max_session_timeout_ms
        {
            return error(&mut cx, GroupErrorCode::InvalidSessionTimeout);
        }
        // A group is created by a member without an id; a member with an id for a group
        // that does not exist is unknown (Kafka's `getOrMaybeCreateGroup`).
        if !loaded.groups.contains_key(group_id) {
            if !member_id.is_empty() {
                return error(&mut cx, GroupErrorCode::UnknownMemberId);
            }
            let incarnation = cx.next_sequence();
            let group = Group::new(group_id, incarnation, now.wall_clock_ms);
            loaded.groups.insert(group_id.to_string(), group);
        }
        let group = loaded.groups.get_mut(group_id).expect("created above");
        let group_instance_id = request.group_instance_id.as_ref().map(|id| id.as_str());
        let join = JoinRequest {
            parked,
            member_id,
            group_instance_id,
            client_id,
            client_host,
            // v0 has no rebalance timeout: the session timeout serves as one.
            rebalance_timeout_ms: if api_version == 0 {
                session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            session_timeout_ms,
            protocol_type: request.protocol_type.as_str(),
            protocols: request
                .protocols
                .iter()
                .map(|protocol| (protocol.name.to_string(), protocol.metadata.clone()))
                .collect(),
            require_known_member_id: api_version >= 4 && group_instance_id.is_none(),
            supports_skip_assignment: api_version >= 9,
        };
        cx.join(group, &join);
    }

    pub(super) fn sync_group(&mut self, now: Now, parked: Parked, request: &SyncGroupRequest) {
        let group_id = request.group_id.0.as_str();
        let (partitions, mut cx) = self.split(now);
        let error = |cx: &mut Cx<'_>, code: GroupErrorCode| {
            cx.respond(parked.id, sync_error(code.code()));
        };
        if group_id.is_empty() {
            return error(&mut cx, GroupErrorCode::InvalidGroupId);
        }
        let partition = cx.partition_of(group_id);
        let Some(loaded) = partitions.get_mut(&partition) else {
            let code = cx.core.not_loaded(partition);
            return error(&mut cx, code);
        };
        let Some(group) = loaded.groups.get_mut(group_id) else {
            return error(&mut cx, GroupErrorCode::UnknownMemberId);
        };
        cx.sync(group, parked, request);
    }

    pub(super) fn heartbeat(&mut self, now: Now, parked: Parked, request: &HeartbeatRequest) {
        let group_id = request.group_id.0.as_str();
        let (partitions, mut cx) = self.split(now);
        let code = 'code: {
            if group_id.is_empty() {
                break 'code GroupErrorCode::InvalidGroupId.code();
            }
            let partition = cx.partition_of(group_id);
            let Some(loaded) = partitions.get_mut(&partition) else {
                break 'code cx.core.not_loaded(partition).code();
            };
            let Some(group) = loaded.groups.get_mut(group_id) else {
                break 'code GroupErrorCode::UnknownMemberId.code();
            };
            cx.heartbeat(group, request)
        };
        cx.respond(parked.id, heartbeat_response(code));
    }

    pub(super) fn leave_group(&mut self, now: Now, parked: Parked, request: &LeaveGroupRequest) {
        let api_version = parked.api_version;
        let leaving = leaving_members(api_version, request);
        let (partitions, mut cx) = self.split(now);
        let (top_level, members) =
            cx.leave_members(partitions, request.group_id.0.as_str(), leaving);
        let response = leave_group_response(api_version, top_level, members);
        cx.respond(parked.id, ResponseKind::LeaveGroup(response));
    }

    /// The leader's assignment is committed: hand it out and go Stable, if the group
    /// is still in the generation it was written for (Kafka's `storeGroup` callback in
    /// `doSyncGroup`).
    pub(super) fn complete_group_sync(
        &mut self,
        now: Now,
        group_id: &str,
        incarnation: u64,
        generation_id: i32,
        assignment: BTreeMap<String, Bytes>,
    ) {
        let (partitions, mut cx) = self.split(now);
        let Some(group) = partitions
            .get_mut(&cx.partition_of(group_id))
            .and_then(|loaded| loaded.groups.get_mut(group_id))
            .filter(|group| group.incarnation == incarnation)
        else {
            return;
        };
        if group.is(GroupState::CompletingRebalance) && group.generation_id == generation_id {
            cx.set_and_propagate_assignment(group, &assignment);
            group.transition_to(GroupState::Stable, now.wall_clock_ms);
        }
    }

    /// The leader's assignment could not be stored: every member rejoins.
    pub(super) fn fail_group_sync(
        &mut self,
        now: Now,
        group_id: &str,
        incarnation: u64,
        generation_id: i32,
        code: i16,
    ) {
        let (partitions, mut cx) = self.split(now);
        let Some(group) = partitions
            .get_mut(&cx.partition_of(group_id))
            .and_then(|loaded| loaded.groups.get_mut(group_id))
            .filter(|group| group.incarnation == incarnation)
        else {
            return;
        };
        if group.is(GroupState::CompletingRebalance) && group.generation_id == generation_id {
            cx.reset_and_propagate_assignment_error(group, code);
            cx.maybe_prepare_rebalance(group);
        }
    }

    /// A static member's replacement is committed (`error` is `None`) or failed: answer
    /// its JoinGroup, or undo the replacement (Kafka's `updateStaticMemberAndRebalance`
    /// callback).
    pub(super) fn complete_static_rejoin(
        &mut self,
        now: Now,
        rejoin: StaticRejoin,
        error: Option<i16>,
    ) {
        let (partitions, mut cx) = self.split(now);
        let Some(group) = partitions
            .get_mut(&cx.partition_of(&rejoin.group_id))
            .and_then(|loaded| loaded.groups.get_mut(&rejoin.group_id))
            .filter(|group| group.incarnation == rejoin.incarnation)
        else {
            return;
        };
        let Some(member) = group.members.get_mut(&rejoin.new_member_id) else {
            return;
        };
        // A rebalance that started meanwhile may have answered the JoinGroup already.
        if member.awaiting_join != Some(rejoin.parked) {
            return;
        }
        member.awaiting_join = None;
        match error {
            None => cx.answer_static_rejoin(group, &rejoin),
            Some(code) => cx.undo_static_rejoin(group, rejoin, code),
        }
    }

    /// Runs every deadline that has passed: KIP-394 member ids that were never used,
    /// silent members, join phases and pending syncs; then offsets retention.
    pub(super) fn expire(&mut self, now: Now) {
        // A deadline may set another one that is already due (a zero initial delay
        // taken again): run rounds until none is due, so that the node need not call
        // back at once. Each round ends a join phase or removes someone, so few run.
        for _ in 0..EXPIRE_ROUNDS_MAX {
            self.expire_round(now);
            let due = self.partitions.values().any(|loaded| {
                loaded.next_retention_check <= now.instant
                    || loaded
                        .groups
                        .values()
                        .any(|group| group.next_deadline().is_some_and(|at| at <= now.instant))
            });
            if !due {
                break;
            }
        }
        // Ask to be woken for the earliest deadline left.
        let earliest = self
            .partitions
            .values()
            .flat_map(|loaded| {
                loaded
                    .groups
                    .values()
                    .filter_map(Group::next_deadline)
                    .chain([loaded.next_retention_check])
            })
            .min();
        if let Some(at) = earliest {
            let (_, mut cx) = self.split(now);
            cx.deadline(at);
        }
    }

    fn expire_round(&mut self, now: Now) {
        let partition_ids: Vec<i32> = self.partitions.keys().copied().collect();
        for partition in partition_ids {
            let (partitions, mut cx) = self.split(now);
            let loaded = partitions.get_mut(&partition).expect("listed above");
            for group in loaded.groups.values_mut() {
                if group
                    .next_deadline()
                    .is_some_and(|deadline| deadline <= now.instant)
                {
                    cx.expire_group(group);
                }
            }
            if loaded.next_retention_check <= now.instant {
                self.expire_offsets(now, partition);
            }
        }
    }
}

/// A member a LeaveGroup names: its member id and instance id.
type Leaving = (String, Option<String>);
/// A member of a LeaveGroup with its error code.
type Left = (String, Option<String>, i16);

/// The members a LeaveGroup names: v0–v2 one; v3+ a batch, possibly by instance id
/// only (KIP-345).
fn leaving_members(api_version: i16, request: &LeaveGroupRequest) -> Vec<Leaving> {
    if api_version < 3 {
        vec![(request.member_id.to_string(), None)]
    } else {
        request
            .members
            .iter()
            .map(|member| {
                (
                    member.member_id.to_string(),
                    member.group_instance_id.as_ref().map(|id| id.to_string()),
                )
            })
            .collect()
    }
}

/// The LeaveGroup answer: the top-level error and each member's.
fn leave_group_response(
    api_version: i16,
    top_level: i16,
    members: Vec<Left>,
) -> LeaveGroupResponse {
    if api_version < 3 {
        // One error only: the top-level one, else the member's (Kafka's
        // `LeaveGroupResponse` for v0–v2).
        let code = if top_level != GroupErrorCode::None.code() {
            top_level
        } else {
            members
                .iter()
                .map(|(_, _, code)| *code)
                .find(|code| *code != GroupErrorCode::None.code())
                .unwrap_or(GroupErrorCode::None.code())
        };
        LeaveGroupResponse::default().with_error_code(code)
    } else {
        LeaveGroupResponse::default()
            .with_error_code(top_level)
            .with_members(
                members
                    .into_iter()
                    .map(|(member_id, instance_id, code)| {
                        MemberResponse::default()
                            .with_member_id(text(&member_id))
                            .with_group_instance_id(instance_id.as_deref().map(text))
                            .with_error_code(code)
                    })
                    .collect(),
            )
    }
}

/// Removes the dynamic members that did not rejoin in the join phase.
fn expel_laggards(group: &mut Group) {
    let laggards: Vec<String> = group
        .members
        .values()
        .filter(|member| member.awaiting_join.is_none() && member.group_instance_id.is_none())
        .map(|member| member.member_id.clone())
        .collect();
    for member_id in laggards {
        let member = group.remove_member(&member_id).expect("listed above");
        assert!(
            member.awaiting_sync.is_none(),
            "a SyncGroup parked in a join phase"
        );
    }
}

/// Kafka's `acceptJoiningMember`: whether `group.max.size` lets `member_id` in.
fn accept_joining_member(group: &Group, member_id: &str, group_max_size: i32) -> bool {
    let max = usize::try_from(group_max_size).unwrap_or(0);
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            let awaiting = group
                .members
                .values()
                .filter(|member| member.awaiting_join.is_some())
                .count();
            group
                .members
                .get(member_id)
                .is_some_and(|member| member.awaiting_join.is_some())
                || awaiting < max
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max
        }
    }
}

impl Cx<'_> {
    /// Kafka's `handleJoinGroup` once the group exists.
    fn join(&mut self, group: &mut Group, join: &JoinRequest<'_>) {
        if !accept_joining_member(group, join.member_id, self.config.group_max_size) {
            group.remove_member(join.member_id);
            let response = join_error(
                join.parked.api_version,
                "",
                GroupErrorCode::GroupMaxSizeReached.code(),
            );
            self.respond(join.parked.id, response);
        } else if join.member_id.is_empty() {
            self.join_new_member(group, join);
        } else {
            self.join_current_member(group, join);
        }
        if group.is(GroupState::PreparingRebalance) {
            self.try_complete_join(group);
        }
    }

    /// Kafka's `doNewMemberJoinGroup`.
    fn join_new_member(&mut self, group: &mut Group, join: &JoinRequest<'_>) {
        let api_version = join.parked.api_version;
        let names: Vec<&str> = join
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        if group.is(GroupState::Dead) {
            let code = GroupErrorCode::CoordinatorNotAvailable.code();
            self.respond(join.parked.id, join_error(api_version, "", code));
            return;
        }
        if !group.supports_protocols(join.protocol_type, &names) {
            let code = GroupErrorCode::InconsistentGroupProtocol.code();
            self.respond(join.parked.id, join_error(api_version, "", code));
            return;
        }
        let prefix = join.group_instance_id.unwrap_or(join.client_id);
        let new_member_id = self.new_member_id(prefix, group);
        match join.group_instance_id {
            Some(instance_id) => match group.static_members.get(instance_id).cloned() {
                Some(old_member_id) => {
                    self.update_static_member_and_rebalance(
                        group,
                        &old_member_id,
                        &new_member_id,
                        instance_id,
                        join,
                    );
                }
                None => self.add_member_and_rebalance(group, &new_member_id, join),
            },
            None if join.require_known_member_id => {
                // KIP-394: remember the id, and forget it if it is not used within a
                // session timeout.
                let deadline = self.now.after_ms(i64::from(join.session_timeout_ms));
                group
                    .pending_members
                    .insert(new_member_id.clone(), deadline);
                self.deadline(deadline);
                let code = GroupErrorCode::MemberIdRequired.code();
                self.respond(
                    join.parked.id,
                    join_error(api_version, &new_member_id, code),
                );
            }
            None => self.add_member_and_rebalance(group, &new_member_id, join),
        }
    }

    /// Kafka's `doCurrentMemberJoinGroup`.
    fn join_current_member(&mut self, group: &mut Group, join: &JoinRequest<'_>) {
        let api_version = join.parked.api_version;
        let member_id = join.member_id;
        let names: Vec<&str> = join
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let error = |cx: &mut Self, code: GroupErrorCode| {
            cx.respond(
                join.parked.id,
                join_error(api_version, member_id, code.code()),
            );
        };
        if group.is(GroupState::Dead) {
            return error(self, GroupErrorCode::CoordinatorNotAvailable);
        }
        if !group.supports_protocols(join.protocol_type, &names) {
            return error(self, GroupErrorCode::InconsistentGroupProtocol);
        }
        if group.pending_members.contains_key(member_id) {
            // A KIP-394 member back with its id. Pending members are never static:
            // Kafka treats the combination as a bug (an IllegalStateException).
            if join.group_instance_id.is_some() {
                return error(self, GroupErrorCode::UnknownServerError);
            }
            self.add_member_and_rebalance(group, member_id, join);
            return;
        }
        if let Some(code) = validate_current_member(group, member_id, join.group_instance_id) {
            self.respond(join.parked.id, join_error(api_version, member_id, code));
            return;
        }
        let member = &group.members[member_id];
        match group.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(group, join),
            GroupState::CompletingRebalance => {
                if member.matches(&join.protocols) {
                    // The member lost the JoinGroup answer: send it again.
                    let is_leader = group.is_leader(member_id);
                    let leader = group.leader_id.as_deref().unwrap_or("");
                    let response =
                        join_success(api_version, group, member_id, is_leader, false, leader);
                    self.respond(join.parked.id, response);
                } else {
                    self.update_member_and_rebalance(group, join);
                }
            }
            GroupState::Stable => {
                // The leader rejoining forces a rebalance: that is how a consumer
                // leader reacts to topic metadata changes that its members' metadata
                // does not show.
                if group.is_leader(member_id) || !member.matches(&join.protocols) {
                    self.update_member_and_rebalance(group, join);
                } else {
                    let leader = group.leader_id.as_deref().unwrap_or("");
                    let response =
                        join_success(api_version, group, member_id, false, false, leader);
                    self.respond(join.parked.id, response);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                error(self, GroupErrorCode::UnknownMemberId);
            }
        }
    }

    /// Kafka's `addMemberAndRebalance`.
    fn add_member_and_rebalance(
        &mut self,
        group: &mut Group,
        member_id: &str,
        join: &JoinRequest<'_>,
    ) {
        // A new member cannot heartbeat while its JoinGroup is parked; if the client
        // gave up, its JoinGroup is dropped after this long instead of holding the
        // rebalance for ever.
        let deadline = self.now.after_ms(NEW_MEMBER_JOIN_TIMEOUT_MS);
        let member = Member {
            member_id: member_id.to_string(),
            group_instance_id: join.group_instance_id.map(str::to_string),
            client_id: join.client_id.to_string(),
            client_host: join.client_host.to_string(),
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            session_timeout_ms: join.session_timeout_ms,
            protocol_type: join.protocol_type.to_string(),
            protocols: join.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(join.parked),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline: Some(deadline),
            join_sequence: self.next_sequence(),
        };
        if group.is(GroupState::PreparingRebalance) && group.generation_id == 0 {
            group.new_member_added = true;
        }
        group.add_member(member);
        self.deadline(deadline);
        self.maybe_prepare_rebalance(group);
    }

    /// Takes the member's new protocols and timeouts and parks its JoinGroup. A
    /// JoinGroup already parked for it is superseded: Kafka drops it unanswered; here
    /// every request is answered, with REBALANCE_IN_PROGRESS (the client rejoins).
    fn update_member(&mut self, group: &mut Group, join: &JoinRequest<'_>, member_id: &str) {
        let member = group.members.get_mut(member_id).expect("a current member");
        member.protocols = join.protocols.clone();
        member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        member.session_timeout_ms = join.session_timeout_ms;
        if let Some(superseded) = member.awaiting_join.replace(join.parked) {
            let code = GroupErrorCode::RebalanceInProgress.code();
            self.respond(
                superseded.id,
                join_error(superseded.api_version, member_id, code),
            );
        }
    }

    /// Kafka's `updateMemberAndRebalance`.
    fn update_member_and_rebalance(&mut self, group: &mut Group, join: &JoinRequest<'_>) {
        self.update_member(group, join, join.member_id);
        self.maybe_prepare_rebalance(group);
    }

    /// Kafka's `updateStaticMemberAndRebalance` (KIP-345): the static member takes the
    /// new member id; in a Stable group whose protocol would not change, that is
    /// written down and answered without a rebalance.
    fn update_static_member_and_rebalance(
        &mut self,
        group: &mut Group,
        old_member_id: &str,
        new_member_id: &str,
        instance_id: &str,
        join: &JoinRequest<'_>,
    ) {
        let leader_before = group.leader_id.clone();
        let (fenced_join, fenced_sync) =
            group.replace_static_member(instance_id, old_member_id, new_member_id);
        let fenced = GroupErrorCode::FencedInstanceId.code();
        if let Some(parked) = fenced_join {
            self.respond(
                parked.id,
                join_error(parked.api_version, old_member_id, fenced),
            );
        }
        if let Some(parked) = fenced_sync {
            self.respond(parked.id, sync_error(fenced));
        }
        self.reset_heartbeat(group, new_member_id);
        let member = &group.members[new_member_id];
        let old_protocols = member.protocols.clone();
        let old_rebalance_timeout_ms = member.rebalance_timeout_ms;
        let old_session_timeout_ms = member.session_timeout_ms;
        self.update_member(group, join, new_member_id);
        match group.state {
            GroupState::Stable => {
                let selected = group.select_protocol();
                if group.protocol_name.as_deref() == Some(selected.as_str()) {
                    let assignment: BTreeMap<String, Bytes> = group
                        .members
                        .values()
                        .map(|member| (member.member_id.clone(), member.assignment.clone()))
                        .collect();
                    let record = Cx::group_record(group, &assignment);
                    let rejoin = StaticRejoin {
                        group_id: group.group_id.clone(),
                        incarnation: group.incarnation,
                        instance_id: instance_id.to_string(),
                        old_member_id: old_member_id.to_string(),
                        new_member_id: new_member_id.to_string(),
                        parked: join.parked,
                        old_protocols,
                        old_rebalance_timeout_ms,
                        old_session_timeout_ms,
                        leader_before,
                        supports_skip_assignment: join.supports_skip_assignment,
                    };
                    self.append(
                        &group.group_id,
                        vec![record],
                        Then::StaticRejoin(Box::new(rejoin)),
                    );
                } else {
                    self.maybe_prepare_rebalance(group);
                }
            }
            // The leader may already hold the old member id in its assignment: start
            // over so that the new id gets one.
            GroupState::CompletingRebalance => self.prepare_rebalance(group),
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                unreachable!("a known static member in an {:?} group", group.state)
            }
        }
    }

    /// A static member's replacement is committed: its JoinGroup is answered with the
    /// current generation.
    fn answer_static_rejoin(&mut self, group: &Group, rejoin: &StaticRejoin) {
        let api_version = rejoin.parked.api_version;
        let response = if rejoin.supports_skip_assignment {
            let is_leader = group.is_leader(&rejoin.new_member_id);
            let leader = group.leader_id.as_deref().unwrap_or("");
            join_success(
                api_version,
                group,
                &rejoin.new_member_id,
                is_leader,
                is_leader,
                leader,
            )
        } else {
            let leader_before = rejoin.leader_before.as_deref().unwrap_or("");
            join_success(
                api_version,
                group,
                &rejoin.new_member_id,
                false,
                false,
                leader_before,
            )
        };
        self.respond(rejoin.parked.id, response);
    }

    /// A static member's replacement could not be stored: the old member id takes its
    /// place back, with its protocols and timeouts, and the JoinGroup is answered `code`.
    fn undo_static_rejoin(&mut self, group: &mut Group, rejoin: StaticRejoin, code: i16) {
        let member = group
            .members
            .get_mut(&rejoin.new_member_id)
            .expect("the rejoined member");
        member.protocols = rejoin.old_protocols;
        member.rebalance_timeout_ms = rejoin.old_rebalance_timeout_ms;
        member.session_timeout_ms = rejoin.old_session_timeout_ms;
        let (fenced_join, fenced_sync) = group.replace_static_member(
            &rejoin.instance_id,
            &rejoin.new_member_id,
            &rejoin.old_member_id,
        );
        assert!(fenced_join.is_none() && fenced_sync.is_none());
        self.reset_heartbeat(group, &rejoin.old_member_id);
        let response = join_response(
            rejoin.parked.api_version,
            JoinAnswer {
                error: code,
                generation_id: group.generation_id,
                protocol_type: group.protocol_type.as_deref(),
                protocol_name: group.protocol_name.as_deref(),
                leader: rejoin.leader_before.as_deref().unwrap_or(""),
                skip_assignment: false,
                member_id: "",
                members: Vec::new(),
            },
        );
        self.respond(rejoin.parked.id, response);
    }

    /// Kafka's `maybePrepareRebalance`.
    pub(super) fn maybe_prepare_rebalance(&mut self, group: &mut Group) {
        if group.can_rebalance() {
            self.prepare_rebalance(group);
        }
    }

    /// Kafka's `prepareRebalance`: parked SyncGroups are told to rejoin, the join phase
    /// starts with its deadline.
    fn prepare_rebalance(&mut self, group: &mut Group) {
        if group.is(GroupState::CompletingRebalance) {
            let code = GroupErrorCode::RebalanceInProgress.code();
            self.reset_and_propagate_assignment_error(group, code);
        }
        group.pending_sync.clear();
        group.sync_deadline = None;
        let deadline = if group.is(GroupState::Empty) {
            let delay_ms = i64::from(self.config.group_initial_rebalance_delay_ms);
            let remaining_ms = (i64::from(group.rebalance_timeout_ms()) - delay_ms).max(0);
            JoinDeadline::Initial {
                at: self.now.after_ms(delay_ms),
                delay_ms,
                remaining_ms,
            }
        } else {
            JoinDeadline::Rebalance {
                at: self.now.after_ms(i64::from(group.rebalance_timeout_ms())),
            }
        };
        group.join_deadline = Some(deadline);
        self.deadline(deadline.at());
        group.transition_to(GroupState::PreparingRebalance, self.now.wall_clock_ms);
        self.try_complete_join(group);
    }

    /// Ends the join phase now if every member rejoined (Kafka's `tryCompleteJoin`).
    /// The initial delay never ends early.
    fn try_complete_join(&mut self, group: &mut Group) {
        if group.is(GroupState::PreparingRebalance)
            && matches!(group.join_deadline, Some(JoinDeadline::Rebalance { .. }))
            && group.has_all_members_joined()
        {
            self.complete_join(group);
        }
    }

    /// Kafka's `onCompleteJoin`: expel the dynamic members that did not rejoin, form the
    /// next generation and answer every parked JoinGroup.
    fn complete_join(&mut self, group: &mut Group) {
        assert!(group.is(GroupState::PreparingRebalance));
        expel_laggards(group);
        if !group.maybe_elect_new_joined_leader() && !group.members.is_empty() {
            // Only static members are left and none rejoined: wait another rebalance
            // timeout; their sessions expire meanwhile if they are gone.
            let at = self.now.after_ms(i64::from(group.rebalance_timeout_ms()));
            group.join_deadline = Some(JoinDeadline::Rebalance { at });
            self.deadline(at);
            return;
        }
        group.join_deadline = None;
        self.init_next_generation(group);
    }

    /// Kafka's `initNextGeneration`: the generation is bumped; an empty group goes
    /// Empty, else the protocol is chosen and the sync phase starts.
    fn init_next_generation(&mut self, group: &mut Group) {
        #[cfg(feature = "mutants")]
        let keep_generation = self.config.mutants.keep_generation && group.generation_id > 0;
        #[cfg(not(feature = "mutants"))]
        let keep_generation = false;
        if !keep_generation {
            group.generation_id += 1;
        }
        group.pending_sync.clear();
        if group.members.is_empty() {
            group.protocol_name = None;
            group.transition_to(GroupState::Empty, self.now.wall_clock_ms);
            // Written so that a failover knows when the group became empty (offsets
            // retention counts from then). Nobody waits on it.
            let record = Cx::group_record(group, &BTreeMap::new());
            self.append(&group.group_id, vec![record], Then::Nothing);
            return;
        }
        group.protocol_name = Some(group.select_protocol());
        group.transition_to(GroupState::CompletingRebalance, self.now.wall_clock_ms);
        self.answer_joins(group);
        let at = self.now.after_ms(i64::from(group.rebalance_timeout_ms()));
        group.sync_deadline = Some(at);
        self.deadline(at);
    }

    /// Answers every parked JoinGroup of the new generation (the leader alone gets the
    /// member list), in join order, and waits for every member's SyncGroup.
    fn answer_joins(&mut self, group: &mut Group) {
        let leader = group
            .leader_id
            .clone()
            .expect("a formed generation has a leader");
        let member_ids: Vec<String> = group
            .members_in_join_order()
            .into_iter()
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in member_ids {
            if let Some(parked) = group.members[&member_id].awaiting_join {
                let is_leader = member_id == leader;
                let response = join_success(
                    parked.api_version,
                    group,
                    &member_id,
                    is_leader,
                    false,
                    &leader,
                );
                self.respond(parked.id, response);
            }
            let member = group.members.get_mut(&member_id).expect("listed above");
            member.awaiting_join = None;
            member.is_new = false;
            self.reset_heartbeat(group, &member_id);
            group.pending_sync.insert(member_id);
        }
    }

    /// Kafka's `completeAndScheduleNextHeartbeatExpiration`.
    pub(super) fn reset_heartbeat(&mut self, group: &mut Group, member_id: &str) {
        let member = group.members.get_mut(member_id).expect("a current member");
        let at = self.now.after_ms(i64::from(member.session_timeout_ms));
        member.heartbeat_deadline = Some(at);
        self.deadline(at);
    }

    /// Kafka's `resetAndPropagateAssignmentError`: every parked SyncGroup gets `code`.
    fn reset_and_propagate_assignment_error(&mut self, group: &mut Group, code: i16) {
        assert!(group.is(GroupState::CompletingRebalance));
        let member_ids: Vec<String> = group.members.keys().cloned().collect();
        for member_id in member_ids {
            let member = group.members.get_mut(&member_id).expect("listed above");
            member.assignment = Bytes::new();
            if let Some(parked) = member.awaiting_sync.take() {
                self.respond(parked.id, sync_error(code));
                self.reset_heartbeat(group, &member_id);
            }
        }
    }

    /// Kafka's `setAndPropagateAssignment`: every member gets its share; parked
    /// SyncGroups are answered.
    fn set_and_propagate_assignment(
        &mut self,
        group: &mut Group,
        assignment: &BTreeMap<String, Bytes>,
    ) {
        assert!(group.is(GroupState::CompletingRebalance));
        let member_ids: Vec<String> = group.members.keys().cloned().collect();
        for member_id in member_ids {
            let member = group.members.get_mut(&member_id).expect("listed above");
            member.assignment = assignment.get(&member_id).cloned().unwrap_or_default();
            if let Some(parked) = member.awaiting_sync.take() {
                let share = member.assignment.clone();
                self.respond(parked.id, sync_success(group, share));
                self.reset_heartbeat(group, &member_id);
            }
        }
    }

    /// Kafka's `doSyncGroup`.
    fn sync(&mut self, group: &mut Group, parked: Parked, request: &SyncGroupRequest) {
        let member_id = request.member_id.as_str();
        let instance_id = request.group_instance_id.as_ref().map(|id| id.as_str());
        let error = |cx: &mut Self, code: i16| cx.respond(parked.id, sync_error(code));
        if group.is(GroupState::Dead) {
            return error(self, GroupErrorCode::CoordinatorNotAvailable.code());
        }
        if let Some(code) = validate_current_member(group, member_id, instance_id) {
            return error(self, code);
        }
        if request.generation_id != group.generation_id {
            return error(self, GroupErrorCode::IllegalGeneration.code());
        }
        // v5+: the member says which protocol type and name it thinks the group has.
        let inconsistent = request.protocol_type.as_ref().is_some_and(|protocol_type| {
            group.protocol_type.as_deref() != Some(protocol_type.as_str())
        }) || request
            .protocol_name
            .as_ref()
            .is_some_and(|name| group.protocol_name.as_deref() != Some(name.as_str()));
        if inconsistent {
            return error(self, GroupErrorCode::InconsistentGroupProtocol.code());
        }
        match group.state {
            GroupState::Empty => error(self, GroupErrorCode::UnknownMemberId.code()),
            GroupState::PreparingRebalance => {
                error(self, GroupErrorCode::RebalanceInProgress.code())
            }
            GroupState::CompletingRebalance => {
                let member = group.members.get_mut(member_id).expect("validated above");
                if let Some(superseded) = member.awaiting_sync.replace(parked) {
                    let code = GroupErrorCode::RebalanceInProgress.code();
                    self.respond(superseded.id, sync_error(code));
                }
                self.remove_pending_sync(group, member_id);
                if group.is_leader(member_id) {
                    // Members the leader left out get an empty assignment.
                    let mut assignment: BTreeMap<String, Bytes> = group
                        .members
                        .keys()
                        .map(|member_id| (member_id.clone(), Bytes::new()))
                        .collect();
                    for entry in &request.assignments {
                        if let Some(share) = assignment.get_mut(entry.member_id.as_str()) {
                            *share = entry.assignment.clone();
                        }
                    }
                    let record = Cx::group_record(group, &assignment);
                    let then = Then::GroupSync {
                        group_id: group.group_id.clone(),
                        incarnation: group.incarnation,
                        generation_id: group.generation_id,
                        assignment,
                    };
                    self.append(&group.group_id, vec![record], then);
                }
            }
            GroupState::Stable => {
                self.remove_pending_sync(group, member_id);
                let share = group.members[member_id].assignment.clone();
                self.respond(parked.id, sync_success(group, share));
                self.reset_heartbeat(group, member_id);
            }
            GroupState::Dead => unreachable!("checked above"),
        }
    }

    fn remove_pending_sync(&mut self, group: &mut Group, member_id: &str) {
        group.pending_sync.remove(member_id);
        if group.pending_sync.is_empty() {
            group.sync_deadline = None;
        }
    }

    /// Kafka's `handleHeartbeat` once the group exists: the error code to answer.
    fn heartbeat(&mut self, group: &mut Group, request: &HeartbeatRequest) -> i16 {
        let member_id = request.member_id.as_str();
        let instance_id = request.group_instance_id.as_ref().map(|id| id.as_str());
        if group.is(GroupState::Dead) {
            return GroupErrorCode::CoordinatorNotAvailable.code();
        }
        if let Some(code) = validate_current_member(group, member_id, instance_id) {
            return code;
        }
        if request.generation_id != group.generation_id {
            return GroupErrorCode::IllegalGeneration.code();
        }
        match group.state {
            GroupState::Empty => GroupErrorCode::UnknownMemberId.code(),
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reset_heartbeat(group, member_id);
                GroupErrorCode::None.code()
            }
            GroupState::PreparingRebalance => {
                self.reset_heartbeat(group, member_id);
                GroupErrorCode::RebalanceInProgress.code()
            }
            GroupState::Dead => unreachable!("checked above"),
        }
    }

    /// A LeaveGroup once its fields are read: the top-level error code, and each
    /// leaving member with its own.
    fn leave_members(
        &mut self,
        partitions: &mut BTreeMap<i32, OffsetsPartition>,
        group_id: &str,
        leaving: Vec<Leaving>,
    ) -> (i16, Vec<Left>) {
        if group_id.is_empty() {
            return (GroupErrorCode::InvalidGroupId.code(), Vec::new());
        }
        let partition = self.partition_of(group_id);
        let Some(loaded) = partitions.get_mut(&partition) else {
            return (self.core.not_loaded(partition).code(), Vec::new());
        };
        let Some(group) = loaded.groups.get_mut(group_id) else {
            let unknown = GroupErrorCode::UnknownMemberId.code();
            let members = leaving
                .into_iter()
                .map(|(member_id, instance_id)| (member_id, instance_id, unknown))
                .collect();
            return (GroupErrorCode::None.code(), members);
        };
        let members = leaving
            .into_iter()
            .map(|(member_id, instance_id)| {
                let code = self.leave(group, &member_id, instance_id.as_deref());
                (member_id, instance_id, code)
            })
            .collect();
        (GroupErrorCode::None.code(), members)
    }

    /// One member of a LeaveGroup (Kafka's `handleLeaveGroup`): the member's error code.
    fn leave(&mut self, group: &mut Group, member_id: &str, instance_id: Option<&str>) -> i16 {
        if group.is(GroupState::Dead) {
            return GroupErrorCode::CoordinatorNotAvailable.code();
        }
        if member_id.is_empty() {
            // KIP-345: an administrator removes a static member by instance id.
            let current = instance_id.and_then(|id| group.static_members.get(id).cloned());
            return match current {
                Some(current) => {
                    self.remove_member_and_update_group(group, &current);
                    GroupErrorCode::None.code()
                }
                None => GroupErrorCode::UnknownMemberId.code(),
            };
        }
        if group.pending_members.remove(member_id).is_some() {
            self.try_complete_join(group);
            return GroupErrorCode::None.code();
        }
        if let Some(code) = validate_current_member(group, member_id, instance_id) {
            return code;
        }
        self.remove_member_and_update_group(group, member_id);
        GroupErrorCode::None.code()
    }

    /// Kafka's `removeMemberAndUpdateGroup`. The member's parked JoinGroup is answered
    /// UNKNOWN_MEMBER_ID; Kafka leaves a parked SyncGroup unanswered, here it gets
    /// UNKNOWN_MEMBER_ID too (every request is answered once).
    pub(super) fn remove_member_and_update_group(&mut self, group: &mut Group, member_id: &str) {
        let member = group.remove_member(member_id).expect("a current member");
        let unknown = GroupErrorCode::UnknownMemberId.code();
        if let Some(parked) = member.awaiting_join {
            self.respond(parked.id, join_error(parked.api_version, "", unknown));
        }
        if let Some(parked) = member.awaiting_sync {
            self.respond(parked.id, sync_error(unknown));
        }
        match group.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(group)
            }
            GroupState::PreparingRebalance => self.try_complete_join(group),
        }
    }

    /// Runs the group's deadlines that have passed, in this order: KIP-394 ids, silent
    /// members, the join phase, then the sync phase.
    fn expire_group(&mut self, group: &mut Group) {
        let now = self.now.instant;
        self.expire_pending_members(group, now);
        self.expire_heartbeats(group, now);
        self.expire_join_phase(group, now);
        self.expire_pending_sync(group, now);
    }

    /// KIP-394 ids never used (Kafka's pending `DelayedHeartbeat`).
    fn expire_pending_members(&mut self, group: &mut Group, now: Instant) {
        let lapsed: Vec<String> = group
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(member_id, _)| member_id.clone())
            .collect();
        if !lapsed.is_empty() {
            for member_id in &lapsed {
                group.pending_members.remove(member_id);
            }
            self.try_complete_join(group);
        }
    }

    /// Silent members (Kafka's `onExpireHeartbeat`). Each removal may end a join
    /// phase and reset the others' deadlines, so each is checked again.
    fn expire_heartbeats(&mut self, group: &mut Group, now: Instant) {
        let expired: Vec<String> = group
            .members
            .values()
            .filter(|member| member.heartbeat_deadline.is_some_and(|at| at <= now))
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in expired {
            let Some(member) = group.members.get_mut(&member_id) else {
                continue;
            };
            if member.heartbeat_deadline.is_none_or(|at| at > now) {
                continue;
            }
            if member.is_waiting_on_coordinator() {
                // Parked in a rebalance: its deadline restarts when the rebalance
                // answers it.
                member.heartbeat_deadline = None;
            } else {
                self.remove_member_and_update_group(group, &member_id);
            }
        }
    }

    /// The join phase's deadline (Kafka's `DelayedJoin` / `InitialDelayedJoin`).
    fn expire_join_phase(&mut self, group: &mut Group, now: Instant) {
        if group.is(GroupState::PreparingRebalance)
            && let Some(deadline) = group.join_deadline
            && deadline.at() <= now
        {
            match deadline {
                JoinDeadline::Initial {
                    delay_ms,
                    remaining_ms,
                    ..
                } if group.new_member_added && remaining_ms != 0 => {
                    // More members arrived during the delay: wait once more, within
                    // the rebalance timeout.
                    group.new_member_added = false;
                    let next_delay_ms =
                        i64::from(self.config.group_initial_rebalance_delay_ms).min(remaining_ms);
                    let next = JoinDeadline::Initial {
                        at: self.now.after_ms(next_delay_ms),
                        delay_ms: next_delay_ms,
                        remaining_ms: (remaining_ms - delay_ms).max(0),
                    };
                    group.join_deadline = Some(next);
                    self.deadline(next.at());
                }
                _ => self.complete_join(group),
            }
        }
    }

    /// Members that never sent SyncGroup (Kafka's `onExpirePendingSync`).
    fn expire_pending_sync(&mut self, group: &mut Group, now: Instant) {
        if let Some(at) = group.sync_deadline
            && at <= now
        {
            group.sync_deadline = None;
            let in_sync_phase =
                group.is(GroupState::CompletingRebalance) || group.is(GroupState::Stable);
            if in_sync_phase && !group.pending_sync.is_empty() {
                let missing: Vec<String> = group.pending_sync.iter().cloned().collect();
                let unknown = GroupErrorCode::UnknownMemberId.code();
                for member_id in missing {
                    let member = group
                        .remove_member(&member_id)
                        .expect("pending sync is a member");
                    if let Some(parked) = member.awaiting_join {
                        self.respond(parked.id, join_error(parked.api_version, "", unknown));
                    }
                }
                self.prepare_rebalance(group);
            }
        }
    }
}
