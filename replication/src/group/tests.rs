//! Unit tests of the group coordinator: each drives requests through a [`Harness`] that
//! plays the node (it appends, commits and fires timers) and checks the answers.
//! Test names cite the KIP or Kafka rule they pin down.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, GroupId, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, RequestKind,
    ResponseKind, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::io::Instant;

use super::records::{GroupMetadataValue, OffsetCommitValue, RecordKey};
use super::*;
use crate::request::Request;

const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;

/// Session and rebalance timeouts the test clients use.
const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const START_WALL_MS: i64 = 1_700_000_000_000;

/// A partition's records as the log holds them: (key, value), `None` value a tombstone.
pub(super) type Records = Vec<(Option<Bytes>, Option<Bytes>)>;
/// OffsetFetch results: (topic, partition) → (offset, leader epoch, metadata, error).
pub(super) type Fetched = BTreeMap<(String, i32), (i64, i32, String, i16)>;

pub(super) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub(super) fn test_config() -> GroupConfig {
    GroupConfig {
        offsets_topic_num_partitions: 1,
        group_min_session_timeout_ms: 1_000,
        group_initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

/// Plays the node: appends what the coordinator asks (to an in-memory log per
/// partition), reports it appended, commits it at once unless told not to, and keeps
/// every answer, checking that no request is answered twice.
pub(super) struct Harness {
    pub(super) coordinator: Coordinator,
    pub(super) now: Now,
    next_id: u64,
    pub(super) answers: BTreeMap<RequestId, ResponseKind>,
    /// Every record appended, per partition, in order.
    pub(super) log: BTreeMap<i32, Records>,
    /// Commit appends as they come (else the test calls `commit`).
    pub(super) auto_commit: bool,
    /// Report appends as they come (else they wait in `unreported`).
    pub(super) auto_append: bool,
    pub(super) unreported: Vec<(i32, WaitId, usize)>,
    pub(super) wakes: Vec<Instant>,
    /// The high watermark reported per partition.
    pub(super) high_watermarks: BTreeMap<i32, i64>,
}

impl Harness {
    pub(super) fn new(config: GroupConfig) -> Harness {
        let partitions = config.offsets_topic_num_partitions;
        let mut harness = Harness {
            coordinator: Coordinator::new(config, 7),
            now: Now {
                instant: Instant::from_nanos(1_000_000_000),
                wall_clock_ms: START_WALL_MS,
            },
            next_id: 0,
            answers: BTreeMap::new(),
            log: BTreeMap::new(),
            auto_commit: true,
            auto_append: true,
            unreported: Vec::new(),
            wakes: Vec::new(),
            high_watermarks: BTreeMap::new(),
        };
        for partition in 0..partitions {
            let effects = harness.coordinator.load(harness.now, partition, Vec::new());
            harness.apply(effects);
        }
        harness
    }

    pub(super) fn apply(&mut self, effects: Vec<Effect>) {
        self.coordinator.check_invariants();
        for effect in effects {
            match effect {
                Effect::Respond { id, response } => {
                    let previous = self.answers.insert(id, response);
                    assert!(previous.is_none(), "{id:?} answered twice");
                }
                Effect::Append {
                    partition,
                    records,
                    wait,
                } => {
                    assert!(!records.is_empty());
                    let log = self.log.entry(partition).or_default();
                    let count = records.len();
                    log.extend(records.into_iter().map(|r| (Some(r.key), r.value)));
                    self.unreported.push((partition, wait, count));
                    if self.auto_append {
                        self.report_appends();
                    }
                }
                Effect::Wake(at) => self.wakes.push(at),
            }
        }
    }

    /// Reports every append not yet reported, with where it landed.
    pub(super) fn report_appends(&mut self) {
        let unreported = std::mem::take(&mut self.unreported);
        // Offsets: appends landed in order, so count from the end of each log.
        let mut ends: BTreeMap<i32, i64> = self
            .log
            .iter()
            .map(|(p, log)| (*p, log.len() as i64))
            .collect();
        let mut landed = Vec::new();
        for (partition, wait, count) in unreported.into_iter().rev() {
            let end = ends.get_mut(&partition).expect("appended");
            let last = *end - 1;
            *end -= count as i64;
            landed.push((partition, wait, last));
        }
        landed.reverse();
        for (partition, wait, last) in landed {
            let effects = self.coordinator.on_appended(self.now, wait, last);
            self.apply(effects);
            if self.auto_commit {
                self.commit(partition);
            }
        }
    }

    /// The high watermark of `partition` reaches its log end.
    pub(super) fn commit(&mut self, partition: i32) {
        let high_watermark = self.log.get(&partition).map_or(0, |log| log.len() as i64);
        self.high_watermarks.insert(partition, high_watermark);
        let effects = self
            .coordinator
            .on_committed(self.now, partition, high_watermark);
        self.apply(effects);
    }

    /// Another node takes over every partition: this one unloads them (answering its
    /// waiters), the successor loads the log, keeping the records that were appended
    /// but not committed or (as a Raft leader without them would) losing them.
    pub(super) fn fail_over_in_place(&mut self, keep_uncommitted: bool) {
        let partitions = self.coordinator.config().offsets_topic_num_partitions;
        for partition in 0..partitions {
            let effects = self.coordinator.unload(partition);
            self.apply(effects);
        }
        self.unreported.clear();
        if !keep_uncommitted {
            for (partition, log) in self.log.iter_mut() {
                let high_watermark = self.high_watermarks.get(partition).copied().unwrap_or(0);
                log.truncate(usize::try_from(high_watermark).expect("non-negative"));
            }
        }
        // The successor draws its own seed (a node takes it from `Io::random`).
        let seed = splitmix64(u64::MAX - self.next_id);
        self.coordinator = Coordinator::new(self.coordinator.config().clone(), seed);
        self.high_watermarks.clear();
        for partition in 0..partitions {
            let records = self.log.get(&partition).cloned().unwrap_or_default();
            let effects = self.coordinator.load(self.now, partition, records);
            self.apply(effects);
            self.commit(partition);
        }
    }

    pub(super) fn send(&mut self, api_version: i16, body: RequestKind) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let request = Request {
            api_version,
            client_id: Some("client".to_string()),
            client_host: "/10.0.0.1".to_string(),
            principal: crate::request::ANONYMOUS.to_string(),
            listener: String::new(),
            body,
        };
        let effects = self.coordinator.handle(self.now, id, &request, "/10.0.0.1");
        self.apply(effects);
        id
    }

    /// Time passes on both clocks; due timers fire.
    pub(super) fn advance(&mut self, ms: i64) {
        self.now.instant = self.now.after_ms(ms);
        self.now.wall_clock_ms += ms;
        self.tick();
    }

    /// Fires the timer, and again while the coordinator asks for a wake-up that is
    /// already due (as the node's timer would).
    pub(super) fn tick(&mut self) {
        for _ in 0..100 {
            let before = self.wakes.len();
            let effects = self.coordinator.on_timer(self.now);
            self.apply(effects);
            if !self.wakes[before..]
                .iter()
                .any(|at| *at <= self.now.instant)
            {
                return;
            }
        }
        panic!("the coordinator keeps asking to be woken now");
    }

    /// How many requests were sent (their ids are 1 to this).
    pub(super) fn sent_requests(&self) -> u64 {
        self.next_id
    }

    pub(super) fn answered(&self, id: RequestId) -> bool {
        self.answers.contains_key(&id)
    }

    pub(super) fn join_answer(&self, id: RequestId) -> &JoinGroupResponse {
        match self.answers.get(&id) {
            Some(ResponseKind::JoinGroup(response)) => response,
            other => panic!("{id:?}: expected a JoinGroup answer, got {other:?}"),
        }
    }

    pub(super) fn sync_answer(&self, id: RequestId) -> &SyncGroupResponse {
        match self.answers.get(&id) {
            Some(ResponseKind::SyncGroup(response)) => response,
            other => panic!("{id:?}: expected a SyncGroup answer, got {other:?}"),
        }
    }

    fn commit_answer(&self, id: RequestId) -> &OffsetCommitResponse {
        match self.answers.get(&id) {
            Some(ResponseKind::OffsetCommit(response)) => response,
            other => panic!("{id:?}: expected an OffsetCommit answer, got {other:?}"),
        }
    }

    // ---- requests ----

    pub(super) fn join_with(
        &mut self,
        api_version: i16,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        protocols: &[(&str, &[u8])],
    ) -> RequestId {
        let timeouts = (SESSION_MS, REBALANCE_MS);
        self.join_timed(
            api_version,
            group,
            member_id,
            instance_id,
            timeouts,
            protocols,
        )
    }

    /// A JoinGroup with (session, rebalance) timeouts of the test's choosing.
    pub(super) fn join_timed(
        &mut self,
        api_version: i16,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        (session_timeout_ms, rebalance_timeout_ms): (i32, i32),
        protocols: &[(&str, &[u8])],
    ) -> RequestId {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(rebalance_timeout_ms)
            .with_member_id(text(member_id))
            .with_group_instance_id(instance_id.map(text))
            .with_protocol_type(text("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(text(name))
                            .with_metadata(Bytes::copy_from_slice(metadata))
                    })
                    .collect(),
            );
        self.send(api_version, RequestKind::JoinGroup(request))
    }

    pub(super) fn join(&mut self, group: &str, member_id: &str) -> RequestId {
        self.join_with(7, group, member_id, None, &[("range", b"m")])
    }

    /// A new dynamic member's first JoinGroup (v7): MEMBER_ID_REQUIRED and its id.
    pub(super) fn new_member_id(&mut self, group: &str) -> String {
        let id = self.join(group, "");
        let answer = self.join_answer(id);
        assert_eq!(answer.error_code, MEMBER_ID_REQUIRED);
        answer.member_id.to_string()
    }

    pub(super) fn sync_with(
        &mut self,
        group: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: &[(&str, &[u8])],
    ) -> RequestId {
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id(generation_id)
            .with_member_id(text(member_id))
            .with_group_instance_id(instance_id.map(text))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(text(member))
                            .with_assignment(Bytes::copy_from_slice(assignment))
                    })
                    .collect(),
            );
        self.send(5, RequestKind::SyncGroup(request))
    }

    pub(super) fn sync(
        &mut self,
        group: &str,
        generation_id: i32,
        member_id: &str,
        assignments: &[(&str, &[u8])],
    ) -> RequestId {
        self.sync_with(group, generation_id, member_id, None, assignments)
    }

    pub(super) fn heartbeat_with(
        &mut self,
        group: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id(generation_id)
            .with_member_id(text(member_id))
            .with_group_instance_id(instance_id.map(text));
        let id = self.send(4, RequestKind::Heartbeat(request));
        match self.answers.get(&id) {
            Some(ResponseKind::Heartbeat(response)) => response.error_code,
            other => panic!("expected a Heartbeat answer, got {other:?}"),
        }
    }

    pub(super) fn heartbeat(&mut self, group: &str, generation_id: i32, member_id: &str) -> i16 {
        self.heartbeat_with(group, generation_id, member_id, None)
    }

    pub(super) fn leave(
        &mut self,
        group: &str,
        members: &[(&str, Option<&str>)],
    ) -> LeaveGroupResponse {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_members(
                members
                    .iter()
                    .map(|(member_id, instance_id)| {
                        MemberIdentity::default()
                            .with_member_id(text(member_id))
                            .with_group_instance_id(instance_id.map(text))
                    })
                    .collect(),
            );
        let id = self.send(4, RequestKind::LeaveGroup(request));
        match self.answers.get(&id) {
            Some(ResponseKind::LeaveGroup(response)) => response.clone(),
            other => panic!("expected a LeaveGroup answer, got {other:?}"),
        }
    }

    pub(super) fn commit_offsets(
        &mut self,
        group: &str,
        generation_id: i32,
        member_id: &str,
        offsets: &[(&str, i32, i64, &str)],
    ) -> RequestId {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset, metadata) in offsets {
            let entry = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(3)
                .with_committed_metadata(Some(text(metadata)));
            match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                Some(existing) => existing.partitions.push(entry),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(text(topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(generation_id)
            .with_member_id(text(member_id))
            .with_topics(topics);
        self.send(8, RequestKind::OffsetCommit(request))
    }

    /// The error codes of an answered OffsetCommit, flattened.
    pub(super) fn commit_codes(&self, id: RequestId) -> Vec<i16> {
        self.commit_answer(id)
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    /// OffsetFetch v7 of one group: (topic, partition) → (offset, leader epoch,
    /// metadata, error), plus the top-level error.
    pub(super) fn fetch(
        &mut self,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
        require_stable: bool,
    ) -> (i16, Fetched) {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_require_stable(require_stable)
            .with_topics(topics.map(|topics| {
                topics
                    .iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(text(topic)))
                            .with_partition_indexes(partitions.to_vec())
                    })
                    .collect()
            }));
        let id = self.send(7, RequestKind::OffsetFetch(request));
        let Some(ResponseKind::OffsetFetch(response)) = self.answers.get(&id) else {
            panic!("expected an OffsetFetch answer");
        };
        let mut offsets = BTreeMap::new();
        for topic in &response.topics {
            for p in &topic.partitions {
                let metadata = p
                    .metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                offsets.insert(
                    (topic.name.0.to_string(), p.partition_index),
                    (
                        p.committed_offset,
                        p.committed_leader_epoch,
                        metadata,
                        p.error_code,
                    ),
                );
            }
        }
        (response.error_code, offsets)
    }

    /// Forms a Stable group of `count` dynamic members (the first is the leader, each
    /// member `i` assigned `p{i}`). Returns the generation and the member ids.
    pub(super) fn form_group(&mut self, group: &str, count: usize) -> (i32, Vec<String>) {
        let members: Vec<String> = (0..count).map(|_| self.new_member_id(group)).collect();
        let joins: Vec<RequestId> = members.iter().map(|m| self.join(group, m)).collect();
        self.tick();
        let generation = self.join_answer(joins[0]).generation_id;
        for join in &joins {
            assert_eq!(self.join_answer(*join).error_code, NONE);
        }
        let assignments: Vec<(String, Vec<u8>)> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), format!("p{i}").into_bytes()))
            .collect();
        let borrowed: Vec<(&str, &[u8])> = assignments
            .iter()
            .map(|(m, a)| (m.as_str(), a.as_slice()))
            .collect();
        let leader = self.join_answer(joins[0]).leader.to_string();
        let leader_sync = self.sync(group, generation, &leader, &borrowed);
        assert_eq!(self.sync_answer(leader_sync).error_code, NONE);
        for member in members.iter().filter(|m| **m != leader) {
            let sync = self.sync(group, generation, member, &[]);
            assert_eq!(self.sync_answer(sync).error_code, NONE);
        }
        assert_eq!(self.state(group), Some(GroupState::Stable));
        (generation, members)
    }

    pub(super) fn state(&self, group: &str) -> Option<GroupState> {
        self.coordinator.group(group).map(|g| g.state())
    }

    pub(super) fn generation(&self, group: &str) -> i32 {
        self.coordinator
            .group(group)
            .expect("group exists")
            .generation_id()
    }
}

fn harness() -> Harness {
    Harness::new(test_config())
}

// ---------------------------------------------------------------------------------
// The join / sync dance.

#[test]
fn one_member_joins_syncs_and_heartbeats() {
    let mut h = harness();
    let member = h.new_member_id("g");
    assert!(member.starts_with("client-"), "member id {member}");
    let join = h.join("g", &member);
    // The initial delay (0 ms here) ends at the next timer, never inside the request.
    assert!(!h.answered(join));
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    h.tick();
    let answer = h.join_answer(join);
    assert_eq!(answer.error_code, NONE);
    assert_eq!(answer.generation_id, 1);
    assert_eq!(answer.leader.as_str(), member);
    assert_eq!(answer.member_id.as_str(), member);
    assert_eq!(
        answer.protocol_type.as_ref().map(|t| t.as_str()),
        Some("consumer")
    );
    assert_eq!(
        answer.protocol_name.as_ref().map(|t| t.as_str()),
        Some("range")
    );
    assert_eq!(answer.members.len(), 1, "the leader gets the member list");
    assert_eq!(answer.members[0].metadata.as_ref(), b"m");
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));

    let sync = h.sync("g", 1, &member, &[(&member, b"all")]);
    let answer = h.sync_answer(sync);
    assert_eq!(answer.error_code, NONE);
    assert_eq!(answer.assignment.as_ref(), b"all");
    assert_eq!(
        answer.protocol_name.as_ref().map(|t| t.as_str()),
        Some("range")
    );
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    assert_eq!(h.heartbeat("g", 1, &member), NONE);
}

#[test]
fn two_members_followers_sync_waits_for_the_leader() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let b = h.new_member_id("g");
    let join_a = h.join("g", &a);
    let join_b = h.join("g", &b);
    h.tick();
    let (answer_a, answer_b) = (h.join_answer(join_a).clone(), h.join_answer(join_b).clone());
    assert_eq!(
        answer_a.leader.as_str(),
        a,
        "the first member to join leads"
    );
    assert_eq!(answer_b.leader.as_str(), a);
    assert_eq!(answer_a.members.len(), 2);
    assert!(
        answer_b.members.is_empty(),
        "only the leader gets the member list"
    );
    assert_eq!(answer_a.generation_id, answer_b.generation_id);

    // The follower's SyncGroup waits for the leader's assignment.
    let sync_b = h.sync("g", 1, &b, &[]);
    assert!(!h.answered(sync_b));
    let sync_a = h.sync("g", 1, &a, &[(&a, b"pa"), (&b, b"pb")]);
    assert_eq!(h.sync_answer(sync_a).assignment.as_ref(), b"pa");
    assert_eq!(h.sync_answer(sync_b).assignment.as_ref(), b"pb");
    assert_eq!(h.heartbeat("g", 1, &a), NONE);
    assert_eq!(h.heartbeat("g", 1, &b), NONE);
}

#[test]
fn three_members_a_new_member_rebalances_a_stable_group() {
    let mut h = harness();
    let (generation, members) = h.form_group("g", 2);
    assert_eq!(generation, 1);
    let c = h.new_member_id("g");
    let join_c = h.join("g", &c);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert!(!h.answered(join_c));
    // The others learn it from their heartbeats, and rejoin.
    assert_eq!(h.heartbeat("g", 1, &members[0]), REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat("g", 1, &members[1]), REBALANCE_IN_PROGRESS);
    let join_a = h.join("g", &members[0]);
    assert!(!h.answered(join_a));
    let join_b = h.join("g", &members[1]);
    // Everyone rejoined: the join phase ends at once, without waiting for a timer.
    for join in [join_a, join_b, join_c] {
        assert_eq!(h.join_answer(join).generation_id, 2);
        assert_eq!(
            h.join_answer(join).leader.as_str(),
            members[0],
            "the leader is kept"
        );
    }
    assert_eq!(h.join_answer(join_a).members.len(), 3);
    let sync_a = h.sync(
        "g",
        2,
        &members[0],
        &[(&members[0], b"0"), (&members[1], b"1"), (&c, b"2")],
    );
    let sync_b = h.sync("g", 2, &members[1], &[]);
    let sync_c = h.sync("g", 2, &c, &[]);
    assert_eq!(h.sync_answer(sync_a).assignment.as_ref(), b"0");
    assert_eq!(h.sync_answer(sync_b).assignment.as_ref(), b"1");
    assert_eq!(h.sync_answer(sync_c).assignment.as_ref(), b"2");
    assert_eq!(h.state("g"), Some(GroupState::Stable));
}

#[test]
fn initial_rebalance_delay_collects_members_into_one_generation() {
    let mut h = Harness::new(GroupConfig {
        group_initial_rebalance_delay_ms: 3_000,
        ..test_config()
    });
    let a = h.new_member_id("g");
    let join_a = h.join("g", &a);
    h.advance(2_000);
    assert!(!h.answered(join_a));
    let b = h.new_member_id("g");
    let join_b = h.join("g", &b);
    // b arrived during the first delay: the delay is taken once more.
    h.advance(1_000);
    assert!(!h.answered(join_a));
    h.advance(3_000);
    assert_eq!(h.join_answer(join_a).generation_id, 1);
    assert_eq!(h.join_answer(join_b).generation_id, 1);
    assert_eq!(h.join_answer(join_a).members.len(), 2);
}

#[test]
fn a_lost_join_answer_is_sent_again_in_completing_rebalance() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let first = h.join("g", &a);
    h.tick();
    assert_eq!(h.join_answer(first).generation_id, 1);
    let again = h.join("g", &a);
    assert_eq!(h.join_answer(again).generation_id, 1);
    assert_eq!(h.join_answer(again).members.len(), 1);
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
}

// ---------------------------------------------------------------------------------
// KIP-394: MEMBER_ID_REQUIRED.

#[test]
fn kip_394_member_id_required_for_v4_and_later_dynamic_members() {
    let mut h = harness();
    for version in [4, 5, 7, 9] {
        let id = h.join_with(version, "g", "", None, &[("range", b"m")]);
        let answer = h.join_answer(id);
        assert_eq!(answer.error_code, MEMBER_ID_REQUIRED, "v{version}");
        assert!(!answer.member_id.is_empty());
        assert_eq!(answer.generation_id, -1);
    }
    // Before v4 the member is admitted at once.
    let old = h.join_with(3, "g2", "", None, &[("range", b"m")]);
    assert!(!h.answered(old));
    h.tick();
    assert_eq!(h.join_answer(old).error_code, NONE);
    // A static member (v5+) is never asked.
    let stat = h.join_with(5, "g3", "", Some("instance"), &[("range", b"m")]);
    assert!(!h.answered(stat));
    h.tick();
    let answer = h.join_answer(stat);
    assert_eq!(answer.error_code, NONE);
    assert!(answer.member_id.starts_with("instance-"));
}

#[test]
fn kip_394_unused_member_ids_lapse_after_the_session_timeout() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 1);
    // A new member gets an id but never comes back: the rebalance it caused is not
    // held up past its session timeout.
    let pending = h.new_member_id("g");
    let join = h.join("g", &members[0]);
    assert!(!h.answered(join), "the pending member is still expected");
    h.advance(i64::from(SESSION_MS));
    assert_eq!(h.join_answer(join).generation_id, 2);
    // Its id is now unknown.
    let late = h.join("g", &pending);
    assert_eq!(h.join_answer(late).error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn join_errors() {
    let mut h = harness();
    let id = h.join("", "");
    assert_eq!(h.join_answer(id).error_code, INVALID_GROUP_ID);
    let id = h.join("nobody", "some-member");
    assert_eq!(h.join_answer(id).error_code, UNKNOWN_MEMBER_ID);
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_session_timeout_ms(10)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default().with_name(text("range")),
        ]);
    let id = h.send(7, RequestKind::JoinGroup(request));
    assert_eq!(h.join_answer(id).error_code, INVALID_SESSION_TIMEOUT);
    // No protocols at all.
    let id = h.join_with(3, "g", "", None, &[]);
    assert_eq!(h.join_answer(id).error_code, INCONSISTENT_GROUP_PROTOCOL);
    // Before v7 a null protocol name goes out as "" (the field is not nullable).
    let id = h.join_with(6, "g", "", None, &[("range", b"m")]);
    assert_eq!(
        h.join_answer(id).protocol_name.as_ref().map(|p| p.as_str()),
        Some("")
    );
}

// ---------------------------------------------------------------------------------
// Protocol selection.

#[test]
fn protocol_selection_takes_the_common_protocol_with_the_most_votes() {
    let mut h = harness();
    let ids: Vec<String> = (0..3).map(|_| h.new_member_id("g")).collect();
    let j0 = h.join_with(
        7,
        "g",
        &ids[0],
        None,
        &[("range", b"r0"), ("roundrobin", b"o0")],
    );
    let j1 = h.join_with(
        7,
        "g",
        &ids[1],
        None,
        &[("roundrobin", b"o1"), ("range", b"r1")],
    );
    let j2 = h.join_with(
        7,
        "g",
        &ids[2],
        None,
        &[("sticky", b"s2"), ("roundrobin", b"o2"), ("range", b"r2")],
    );
    h.tick();
    // Candidates: range and roundrobin (sticky is not common). Votes: range 1,
    // roundrobin 2.
    let answer = h.join_answer(j0).clone();
    assert_eq!(
        answer.protocol_name.as_ref().map(|p| p.as_str()),
        Some("roundrobin")
    );
    let metadata: Vec<&[u8]> = answer.members.iter().map(|m| m.metadata.as_ref()).collect();
    assert_eq!(
        metadata,
        vec![b"o0".as_slice(), b"o1", b"o2"],
        "each member's metadata for the chosen protocol"
    );
    assert_eq!(h.join_answer(j1).protocol_name, answer.protocol_name);
    assert_eq!(h.join_answer(j2).protocol_name, answer.protocol_name);
    // A member that supports none of the group's protocols is refused.
    let id = h.join_with(7, "g", "", None, &[("sticky", b"s")]);
    assert_eq!(h.join_answer(id).error_code, INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn protocol_selection_tie_goes_to_the_leaders_preference() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let b = h.new_member_id("g");
    let ja = h.join_with(7, "g", &a, None, &[("b-first", b""), ("a-first", b"")]);
    h.join_with(7, "g", &b, None, &[("a-first", b""), ("b-first", b"")]);
    h.tick();
    assert_eq!(
        h.join_answer(ja).protocol_name.as_ref().map(|p| p.as_str()),
        Some("b-first")
    );
}

// ---------------------------------------------------------------------------------
// Timeouts.

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_expelled() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    let (a, b) = (&members[0], &members[1]);
    // The leader rejoins (that alone starts a rebalance); b keeps heartbeating but
    // never rejoins.
    let join_a = h.join("g", a);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    for _ in 0..5 {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", 1, b), REBALANCE_IN_PROGRESS);
    }
    assert!(!h.answered(join_a));
    h.advance(i64::from(REBALANCE_MS) - 25_000);
    let answer = h.join_answer(join_a);
    assert_eq!(answer.generation_id, 2);
    assert_eq!(answer.members.len(), 1, "b was expelled");
    assert_eq!(h.heartbeat("g", 1, b), UNKNOWN_MEMBER_ID);
}

#[test]
fn a_silent_member_is_expelled_at_its_session_timeout_and_the_group_rebalances() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    let (a, b) = (&members[0], &members[1]);
    h.advance(i64::from(SESSION_MS) / 2);
    assert_eq!(h.heartbeat("g", 1, a), NONE);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // b has said nothing for a whole session timeout.
    h.advance(i64::from(SESSION_MS) / 2);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat("g", 1, a), REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat("g", 1, b), UNKNOWN_MEMBER_ID);
    let join = h.join("g", a);
    assert_eq!(h.join_answer(join).generation_id, 2);
    assert_eq!(h.join_answer(join).members.len(), 1);
}

#[test]
fn a_follower_that_never_syncs_is_expelled_after_the_rebalance_timeout() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let b = h.new_member_id("g");
    let join_a = h.join("g", &a);
    h.join("g", &b);
    h.tick();
    assert_eq!(h.join_answer(join_a).generation_id, 1);
    h.sync("g", 1, &a, &[(&a, b"x"), (&b, b"y")]);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // b heartbeats (so its session lives) but never sends SyncGroup.
    for _ in 0..7 {
        h.advance(4_000);
        h.heartbeat("g", 1, &a);
        h.heartbeat("g", 1, &b);
    }
    h.advance(3_000);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat("g", 1, &b), UNKNOWN_MEMBER_ID);
}

#[test]
fn a_new_member_that_gives_up_is_dropped_after_five_minutes() {
    // Kafka's NewMemberJoinTimeoutMs: a parked JoinGroup of a new member is dropped
    // after 5 minutes even when the rebalance timeout (here 10) is longer.
    let mut h = harness();
    let timeouts = (SESSION_MS, 600_000);
    let a = h.new_member_id("g");
    let join_a = h.join_timed(7, "g", &a, None, timeouts, &[("range", b"m")]);
    h.tick();
    assert_eq!(h.join_answer(join_a).generation_id, 1);
    h.sync("g", 1, &a, &[]);
    let c = h.new_member_id("g");
    let join_c = h.join_timed(7, "g", &c, None, timeouts, &[("range", b"m")]);
    // a keeps heartbeating but is slow to rejoin (a long poll loop).
    for _ in 0..59 {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", 1, &a), REBALANCE_IN_PROGRESS);
    }
    assert!(!h.answered(join_c));
    h.advance(5_000);
    assert_eq!(h.join_answer(join_c).error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(h.join_answer(join_c).member_id.as_str(), "");
    // a rejoins and forms generation 2 alone.
    let rejoin = h.join_timed(7, "g", &a, None, timeouts, &[("range", b"m")]);
    assert_eq!(h.join_answer(rejoin).generation_id, 2);
    assert_eq!(h.join_answer(rejoin).members.len(), 1);
}

// ---------------------------------------------------------------------------------
// Heartbeat, SyncGroup and OffsetCommit errors.

#[test]
fn heartbeat_errors_in_each_state() {
    let mut h = Harness::new(GroupConfig {
        offsets_topic_num_partitions: 3,
        ..test_config()
    });
    assert_eq!(h.heartbeat("", 0, "m"), INVALID_GROUP_ID);
    assert_eq!(h.heartbeat("unknown", 0, "m"), UNKNOWN_MEMBER_ID);
    // PreparingRebalance: the member's generation is still the old one.
    let a = h.new_member_id("g");
    h.join("g", &a);
    // A member from its JoinGroup on; generation 0 is the group's until the first forms.
    assert_eq!(h.heartbeat("g", 0, &a), REBALANCE_IN_PROGRESS);
    h.tick();
    // CompletingRebalance: heartbeats are fine.
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
    assert_eq!(h.heartbeat("g", 1, &a), NONE);
    assert_eq!(h.heartbeat("g", 0, &a), ILLEGAL_GENERATION);
    assert_eq!(h.heartbeat("g", 1, "stranger"), UNKNOWN_MEMBER_ID);
    h.sync("g", 1, &a, &[]);
    // Stable.
    assert_eq!(h.heartbeat("g", 1, &a), NONE);
    assert_eq!(h.heartbeat("g", 2, &a), ILLEGAL_GENERATION);
    // PreparingRebalance: b joins; a has not rejoined yet.
    let b = h.new_member_id("g");
    let join_b = h.join("g", &b);
    assert!(!h.answered(join_b));
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat("g", 1, &a), REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat("g", 0, &a), ILLEGAL_GENERATION);
    // Empty: everyone left.
    h.leave("g", &[(&a, None)]);
    assert_eq!(
        h.join_answer(join_b).generation_id,
        2,
        "a left: b was the last to wait for"
    );
    h.leave("g", &[(&b, None)]);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    assert_eq!(h.heartbeat("g", 3, &a), UNKNOWN_MEMBER_ID);
    // A group of a partition this node does not lead.
    let other = (0..100)
        .map(|i| format!("group-{i}"))
        .find(|g| Coordinator::partition_for(g, 3) == 2)
        .expect("some group lands on partition 2");
    let effects = h.coordinator.unload(2);
    h.apply(effects);
    assert_eq!(h.heartbeat(&other, 0, "m"), NOT_COORDINATOR);
}

#[test]
fn stale_sync_and_commit_get_illegal_generation() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    let (a, b) = (&members[0], &members[1]);
    // Generation 2 forms while b still holds generation 1.
    h.join("g", a);
    h.join("g", b);
    assert_eq!(h.generation("g"), 2);
    let sync = h.sync("g", 1, b, &[]);
    assert_eq!(h.sync_answer(sync).error_code, ILLEGAL_GENERATION);
    h.sync("g", 2, a, &[(a, b"x")]);
    h.sync("g", 2, b, &[]);
    let commit = h.commit_offsets("g", 1, b, &[("t", 0, 5, "")]);
    assert_eq!(h.commit_codes(commit), vec![ILLEGAL_GENERATION]);
    let commit = h.commit_offsets("g", 2, b, &[("t", 0, 5, "")]);
    assert_eq!(h.commit_codes(commit), vec![NONE]);
    // A commit from a member the group does not know.
    let commit = h.commit_offsets("g", 2, "stranger", &[("t", 0, 6, "")]);
    assert_eq!(h.commit_codes(commit), vec![UNKNOWN_MEMBER_ID]);
}

#[test]
fn sync_during_preparing_rebalance_and_protocol_checks() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    let (a, b) = (&members[0], &members[1]);
    h.join("g", a);
    let sync = h.sync("g", 1, b, &[]);
    assert_eq!(h.sync_answer(sync).error_code, REBALANCE_IN_PROGRESS);
    let join_b = h.join("g", b);
    assert_eq!(h.join_answer(join_b).generation_id, 2);
    // v5: the protocol type and name must be the group's.
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id(2)
        .with_member_id(text(b))
        .with_protocol_type(Some(text("connect")));
    let id = h.send(5, RequestKind::SyncGroup(request));
    assert_eq!(h.sync_answer(id).error_code, INCONSISTENT_GROUP_PROTOCOL);
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id(2)
        .with_member_id(text(b))
        .with_protocol_type(Some(text("consumer")))
        .with_protocol_name(Some(text("roundrobin")));
    let id = h.send(5, RequestKind::SyncGroup(request));
    assert_eq!(h.sync_answer(id).error_code, INCONSISTENT_GROUP_PROTOCOL);
    let sync = h.sync("g", 2, "stranger", &[]);
    assert_eq!(h.sync_answer(sync).error_code, UNKNOWN_MEMBER_ID);
    let sync = h.sync("nobody", 2, b, &[]);
    assert_eq!(h.sync_answer(sync).error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn a_rebalance_during_completing_rebalance_tells_parked_syncs_to_rejoin() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let b = h.new_member_id("g");
    h.join("g", &a);
    h.join("g", &b);
    h.tick();
    let sync_b = h.sync("g", 1, &b, &[]);
    assert!(!h.answered(sync_b));
    let c = h.new_member_id("g");
    h.join("g", &c);
    assert_eq!(h.sync_answer(sync_b).error_code, REBALANCE_IN_PROGRESS);
}

// ---------------------------------------------------------------------------------
// KIP-345: static membership.

fn form_static_group(h: &mut Harness, api_version: i16) -> (String, String) {
    let join_a = h.join_with(api_version, "g", "", Some("ia"), &[("range", b"ma")]);
    let join_b = h.join_with(api_version, "g", "", Some("ib"), &[("range", b"mb")]);
    h.tick();
    let a = h.join_answer(join_a).member_id.to_string();
    let b = h.join_answer(join_b).member_id.to_string();
    h.sync_with("g", 1, &a, Some("ia"), &[(&a, b"pa"), (&b, b"pb")]);
    h.sync_with("g", 1, &b, Some("ib"), &[]);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    (a, b)
}

#[test]
fn kip_345_static_member_rejoin_replaces_its_member_id_without_a_rebalance() {
    let mut h = harness();
    let (a, b) = form_static_group(&mut h, 7);
    // b restarts: it has forgotten its member id but keeps its instance id.
    h.auto_commit = false;
    let rejoin = h.join_with(7, "g", "", Some("ib"), &[("range", b"mb")]);
    assert!(
        !h.answered(rejoin),
        "answered once the new member id is durable"
    );
    h.commit(0);
    let answer = h.join_answer(rejoin).clone();
    assert_eq!(answer.error_code, NONE);
    let new_b = answer.member_id.to_string();
    assert_ne!(new_b, b);
    assert!(new_b.starts_with("ib-"));
    assert_eq!(answer.generation_id, 1, "no rebalance");
    assert_eq!(answer.leader.as_str(), a);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // Its SyncGroup returns the assignment the old id had.
    let sync = h.sync_with("g", 1, &new_b, Some("ib"), &[]);
    assert_eq!(h.sync_answer(sync).assignment.as_ref(), b"pb");
    // The old member id is fenced.
    assert_eq!(h.heartbeat_with("g", 1, &b, Some("ib")), FENCED_INSTANCE_ID);
    assert_eq!(h.heartbeat_with("g", 1, &new_b, Some("ib")), NONE);
    let commit = {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(text(&b))
            .with_group_instance_id(Some(text("ib")))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(text("t")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()]),
            ]);
        h.send(7, RequestKind::OffsetCommit(request))
    };
    assert_eq!(h.commit_codes(commit), vec![FENCED_INSTANCE_ID]);
    // The replacement is in the log: a GroupMetadata record naming the new id.
    let (_, value) = h.log[&0].last().expect("records").clone();
    let value = GroupMetadataValue::decode(&value.expect("not a tombstone")).unwrap();
    assert!(value.members.iter().any(|m| m.member_id == new_b));
    assert!(!value.members.iter().any(|m| m.member_id == b));
}

#[test]
fn kip_345_a_replaced_leader_is_not_told_it_leads_before_v9() {
    let mut h = harness();
    let (a, _) = form_static_group(&mut h, 7);
    let rejoin = h.join_with(7, "g", "", Some("ia"), &[("range", b"ma")]);
    let answer = h.join_answer(rejoin);
    assert_eq!(
        answer.leader.as_str(),
        a,
        "the old id: the new one must not run an assignment"
    );
    assert!(answer.members.is_empty());
    assert!(!answer.skip_assignment);
}

#[test]
fn kip_814_a_returning_static_leader_skips_assignment_on_v9() {
    let mut h = harness();
    let (a, _) = form_static_group(&mut h, 9);
    let rejoin = h.join_with(9, "g", "", Some("ia"), &[("range", b"ma")]);
    let answer = h.join_answer(rejoin);
    let new_a = answer.member_id.to_string();
    assert_ne!(new_a, a);
    assert_eq!(answer.leader.as_str(), new_a);
    assert!(answer.skip_assignment);
    assert_eq!(answer.members.len(), 2);
    assert_eq!(h.generation("g"), 1);
}

#[test]
fn kip_345_static_rejoin_that_changes_the_protocol_rebalances() {
    let mut h = harness();
    let join = h.join_with(
        7,
        "g",
        "",
        Some("ia"),
        &[("range", b"r"), ("roundrobin", b"o")],
    );
    h.tick();
    let a = h.join_answer(join).member_id.to_string();
    h.sync_with("g", 1, &a, Some("ia"), &[(&a, b"x")]);
    assert_eq!(
        h.coordinator.group("g").unwrap().protocol_name(),
        Some("range")
    );
    // Back with another preference: the group's protocol would change, so Kafka
    // rebalances instead of swapping the member id quietly.
    let rejoin = h.join_with(
        7,
        "g",
        "",
        Some("ia"),
        &[("roundrobin", b"o"), ("range", b"r")],
    );
    let answer = h.join_answer(rejoin);
    assert_eq!(answer.generation_id, 2);
    assert_eq!(
        answer.protocol_name.as_ref().map(|p| p.as_str()),
        Some("roundrobin")
    );
    // A protocol the group cannot take at all is refused.
    let refused = h.join_with(7, "g", "", Some("ib"), &[("sticky", b"s")]);
    assert_eq!(
        h.join_answer(refused).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn kip_345_static_member_rejoin_during_completing_rebalance_starts_over() {
    let mut h = harness();
    let join_a = h.join_with(7, "g", "", Some("ia"), &[("range", b"ma")]);
    h.tick();
    let a = h.join_answer(join_a).member_id.to_string();
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
    let sync = h.sync_with("g", 1, &a, Some("ia"), &[]);
    let _ = sync;
    // The sync went through (single member): Stable. Make a fresh CompletingRebalance
    // with two static members instead.
    let join_b = h.join_with(7, "g", "", Some("ib"), &[("range", b"mb")]);
    let join_a2 = h.join_with(7, "g", &a, Some("ia"), &[("range", b"ma")]);
    assert_eq!(h.join_answer(join_a2).generation_id, 2);
    assert_eq!(h.join_answer(join_b).generation_id, 2);
    let b = h.join_answer(join_b).member_id.to_string();
    let parked_sync_b = h.sync_with("g", 2, &b, Some("ib"), &[]);
    assert!(!h.answered(parked_sync_b));
    // b restarts before the leader synced: its parked SyncGroup is fenced and the
    // group rebalances so that the new id gets an assignment.
    let rejoin = h.join_with(7, "g", "", Some("ib"), &[("range", b"mb")]);
    assert_eq!(h.sync_answer(parked_sync_b).error_code, FENCED_INSTANCE_ID);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert!(!h.answered(rejoin));
    let join_a3 = h.join_with(7, "g", &a, Some("ia"), &[("range", b"ma")]);
    assert_eq!(h.join_answer(join_a3).generation_id, 3);
    assert_eq!(h.join_answer(rejoin).generation_id, 3);
}

#[test]
fn kip_345_static_members_are_not_expelled_at_the_end_of_a_join_phase() {
    let mut h = harness();
    // b is static with a session (60 s) longer than the rebalance timeout (30 s).
    let long = (60_000, REBALANCE_MS);
    let join_a = h.join_timed(7, "g", "", Some("ia"), long, &[("range", b"ma")]);
    let join_b = h.join_timed(7, "g", "", Some("ib"), long, &[("range", b"mb")]);
    h.tick();
    let a = h.join_answer(join_a).member_id.to_string();
    let b = h.join_answer(join_b).member_id.to_string();
    h.sync_with("g", 1, &a, Some("ia"), &[(&a, b"pa"), (&b, b"pb")]);
    h.sync_with("g", 1, &b, Some("ib"), &[]);
    // a rejoins; b is restarting and does not.
    let rejoin_a = h.join_timed(7, "g", &a, Some("ia"), long, &[("range", b"ma")]);
    h.advance(i64::from(REBALANCE_MS));
    let answer = h.join_answer(rejoin_a);
    assert_eq!(answer.generation_id, 2);
    assert_eq!(answer.members.len(), 2, "b stays a member of generation 2");
    // b comes back within its session and picks up generation 2.
    assert_eq!(h.heartbeat_with("g", 1, &b, Some("ib")), ILLEGAL_GENERATION);
    let rejoin_b = h.join_timed(7, "g", &b, Some("ib"), long, &[("range", b"mb")]);
    assert_eq!(h.join_answer(rejoin_b).generation_id, 2);
}

#[test]
fn kip_345_leave_group_by_instance_id() {
    let mut h = harness();
    let (a, b) = form_static_group(&mut h, 7);
    let response = h.leave("g", &[("", Some("ib")), ("", Some("nobody"))]);
    assert_eq!(response.error_code, NONE);
    let codes: Vec<(String, Option<String>, i16)> = response
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
                m.error_code,
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (String::new(), Some("ib".to_string()), NONE),
            (String::new(), Some("nobody".to_string()), UNKNOWN_MEMBER_ID),
        ]
    );
    assert_eq!(h.heartbeat_with("g", 1, &b, Some("ib")), UNKNOWN_MEMBER_ID);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    // A member id that does not match the instance id is fenced.
    let response = h.leave("g", &[("wrong", Some("ia"))]);
    assert_eq!(response.members[0].error_code, FENCED_INSTANCE_ID);
    let _ = a;
}

#[test]
fn leave_group_v0_reports_one_error() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_member_id(text("stranger"));
    let id = h.send(0, RequestKind::LeaveGroup(request));
    let Some(ResponseKind::LeaveGroup(response)) = h.answers.get(&id) else {
        panic!("a LeaveGroup answer");
    };
    assert_eq!(response.error_code, UNKNOWN_MEMBER_ID);
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_member_id(text(&members[1]));
    let id = h.send(0, RequestKind::LeaveGroup(request));
    let Some(ResponseKind::LeaveGroup(response)) = h.answers.get(&id) else {
        panic!("a LeaveGroup answer");
    };
    assert_eq!(response.error_code, NONE);
    // The leader learns of the departure and rejoins alone.
    assert_eq!(h.heartbeat("g", 1, &members[0]), REBALANCE_IN_PROGRESS);
    let join = h.join("g", &members[0]);
    assert_eq!(h.join_answer(join).generation_id, 2);
}

#[test]
fn the_last_member_leaving_empties_the_group_and_writes_it_down() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 1);
    h.leave("g", &[(&members[0], None)]);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    assert_eq!(
        h.generation("g"),
        2,
        "Kafka bumps the generation into Empty"
    );
    let (_, value) = h.log[&0].last().cloned().expect("records");
    let value = GroupMetadataValue::decode(&value.expect("a value")).unwrap();
    assert_eq!(value.generation_id, 2);
    assert!(value.members.is_empty());
    assert_eq!(value.protocol_name, None);
    assert_eq!(value.current_state_timestamp_ms, h.now.wall_clock_ms);
}

// ---------------------------------------------------------------------------------
// Offsets.

#[test]
fn an_offset_commit_is_answered_only_after_its_records_are_committed() {
    let mut h = harness();
    let (generation, members) = h.form_group("g", 1);
    h.auto_commit = false;
    h.auto_append = false;
    let commit = h.commit_offsets("g", generation, &members[0], &[("t", 0, 10, "meta")]);
    assert!(!h.answered(commit));
    let (_, wait, _) = *h.unreported.last().expect("an append");
    // Appended, not committed: no answer, and the offset is not visible yet.
    h.report_appends();
    assert!(!h.answered(commit));
    let (_, fetched) = h.fetch("g", Some(&[("t", &[0])]), false);
    assert_eq!(fetched[&("t".to_string(), 0)].0, -1);
    // require_stable sees the commit in flight.
    let (_, fetched) = h.fetch("g", Some(&[("t", &[0])]), true);
    assert_eq!(fetched[&("t".to_string(), 0)].3, UNSTABLE_OFFSET_COMMIT);
    // A high watermark at the record (not past it) releases nothing.
    let last = h.log[&0].len() as i64 - 1;
    let effects = h.coordinator.on_committed(h.now, 0, last);
    h.apply(effects);
    assert!(!h.answered(commit));
    let effects = h.coordinator.on_committed(h.now, 0, last + 1);
    h.apply(effects);
    assert_eq!(h.commit_codes(commit), vec![NONE]);
    let (_, fetched) = h.fetch("g", Some(&[("t", &[0])]), true);
    assert_eq!(
        fetched[&("t".to_string(), 0)],
        (10, 3, "meta".to_string(), NONE)
    );
    let _ = wait;
}

#[test]
fn a_failed_commit_append_answers_not_coordinator_and_keeps_the_old_offset() {
    let mut h = harness();
    let (generation, members) = h.form_group("g", 1);
    let first = h.commit_offsets("g", generation, &members[0], &[("t", 0, 1, "")]);
    assert_eq!(h.commit_codes(first), vec![NONE]);
    h.auto_append = false;
    let second = h.commit_offsets("g", generation, &members[0], &[("t", 0, 2, "")]);
    let (_, wait, _) = h.unreported.pop().expect("an append");
    let effects =
        h.coordinator
            .on_append_failed(h.now, wait, crate::error::ErrorCode::NotLeaderOrFollower);
    h.apply(effects);
    assert_eq!(h.commit_codes(second), vec![NOT_COORDINATOR]);
    let (_, fetched) = h.fetch("g", None, true);
    assert_eq!(fetched[&("t".to_string(), 0)].0, 1);
}

#[test]
fn offset_fetch_returns_commits_with_metadata() {
    let mut h = harness();
    let (generation, members) = h.form_group("g", 1);
    let commit = h.commit_offsets(
        "g",
        generation,
        &members[0],
        &[("t", 0, 100, "first"), ("t", 1, 200, ""), ("u", 0, 7, "x")],
    );
    assert_eq!(h.commit_codes(commit), vec![NONE, NONE, NONE]);
    let (code, fetched) = h.fetch("g", Some(&[("t", &[0, 1, 2]), ("v", &[0])]), false);
    assert_eq!(code, NONE);
    assert_eq!(
        fetched[&("t".to_string(), 0)],
        (100, 3, "first".to_string(), NONE)
    );
    assert_eq!(
        fetched[&("t".to_string(), 1)],
        (200, 3, String::new(), NONE)
    );
    assert_eq!(
        fetched[&("t".to_string(), 2)],
        (-1, -1, String::new(), NONE),
        "never committed"
    );
    assert_eq!(
        fetched[&("v".to_string(), 0)],
        (-1, -1, String::new(), NONE)
    );
    // Null topics: every committed partition.
    let (_, all) = h.fetch("g", None, false);
    assert_eq!(all.len(), 3);
    assert_eq!(all[&("u".to_string(), 0)].2, "x");
    // A group nobody knows: -1 for what was asked.
    let (code, unknown) = h.fetch("nobody", Some(&[("t", &[0])]), false);
    assert_eq!(code, NONE);
    assert_eq!(unknown[&("t".to_string(), 0)].0, -1);
    // A later commit wins.
    h.commit_offsets("g", generation, &members[0], &[("t", 0, 150, "second")]);
    let (_, fetched) = h.fetch("g", Some(&[("t", &[0])]), false);
    assert_eq!(fetched[&("t".to_string(), 0)].2, "second");
}

#[test]
fn offset_fetch_v8_answers_several_groups() {
    let mut h = Harness::new(GroupConfig {
        offsets_topic_num_partitions: 4,
        ..test_config()
    });
    h.commit_offsets("a", -1, "", &[("t", 0, 1, "")]);
    h.commit_offsets("b", -1, "", &[("t", 0, 2, "")]);
    let not_here = (0..100)
        .map(|i| format!("x{i}"))
        .find(|g| Coordinator::partition_for(g, 4) == 3)
        .unwrap();
    let effects = h.coordinator.unload(3);
    h.apply(effects);
    let group = |id: &str, topics: Option<Vec<OffsetFetchRequestTopics>>| {
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text(id)))
            .with_topics(topics)
    };
    let request = OffsetFetchRequest::default().with_groups(vec![
        group("a", None),
        group(
            "b",
            Some(vec![
                OffsetFetchRequestTopics::default()
                    .with_name(TopicName(text("t")))
                    .with_partition_indexes(vec![0, 1]),
            ]),
        ),
        group(&not_here, None),
    ]);
    let id = h.send(8, RequestKind::OffsetFetch(request));
    let Some(ResponseKind::OffsetFetch(response)) = h.answers.get(&id) else {
        panic!("an OffsetFetch answer");
    };
    assert_eq!(response.groups.len(), 3);
    assert_eq!(
        response.groups[0].topics[0].partitions[0].committed_offset,
        1
    );
    let b: Vec<i64> = response.groups[1].topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(b, vec![2, -1]);
    assert_eq!(response.groups[2].error_code, NOT_COORDINATOR);
}

#[test]
fn simple_commits_need_an_empty_group() {
    let mut h = harness();
    // A consumer that assigns itself: generation -1, no member id; the group appears.
    let commit = h.commit_offsets("simple", -1, "", &[("t", 0, 9, "")]);
    assert_eq!(h.commit_codes(commit), vec![NONE]);
    assert_eq!(h.state("simple"), Some(GroupState::Empty));
    assert_eq!(h.fetch("simple", None, false).1[&("t".to_string(), 0)].0, 9);
    // A generation for a group that does not exist.
    let commit = h.commit_offsets("ghost", 3, "m", &[("t", 0, 9, "")]);
    assert_eq!(h.commit_codes(commit), vec![ILLEGAL_GENERATION]);
    assert_eq!(h.state("ghost"), None);
    // Once the group has members, only members commit.
    h.form_group("g", 1);
    let commit = h.commit_offsets("g", -1, "", &[("t", 0, 9, "")]);
    assert_eq!(h.commit_codes(commit), vec![UNKNOWN_MEMBER_ID]);
    // An empty commit is answered at once and creates nothing.
    let request = OffsetCommitRequest::default().with_group_id(GroupId(text("nothing")));
    let id = h.send(8, RequestKind::OffsetCommit(request));
    assert!(h.answered(id));
    assert_eq!(h.state("nothing"), None);
}

#[test]
fn commits_in_completing_rebalance_are_refused_and_metadata_is_bounded() {
    let mut h = harness();
    let a = h.new_member_id("g");
    h.join("g", &a);
    h.tick();
    let commit = h.commit_offsets("g", 1, &a, &[("t", 0, 1, "")]);
    assert_eq!(h.commit_codes(commit), vec![REBALANCE_IN_PROGRESS]);
    h.sync("g", 1, &a, &[]);
    let big = "x".repeat(4097);
    let commit = h.commit_offsets("g", 1, &a, &[("t", 0, 1, &big), ("t", 1, 1, "ok")]);
    assert_eq!(
        h.commit_codes(commit),
        vec![OFFSET_METADATA_TOO_LARGE, NONE]
    );
}

#[test]
fn commits_during_preparing_rebalance_are_allowed() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    h.join("g", &members[0]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let commit = h.commit_offsets("g", 1, &members[1], &[("t", 0, 4, "")]);
    assert_eq!(h.commit_codes(commit), vec![NONE]);
}

#[test]
fn offset_commit_records_use_kafkas_formats() {
    let mut h = harness();
    h.commit_offsets("g", -1, "", &[("t", 2, 42, "md")]);
    let (key, value) = h.log[&0].last().cloned().unwrap();
    assert_eq!(
        RecordKey::decode(&key.unwrap()).unwrap(),
        RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 2
        }
    );
    let value = OffsetCommitValue::decode(&value.unwrap()).unwrap();
    assert_eq!(value.offset, 42);
    assert_eq!(value.leader_epoch, 3);
    assert_eq!(value.metadata, "md");
    assert_eq!(value.commit_timestamp_ms, h.now.wall_clock_ms);
    assert_eq!(value.expire_timestamp_ms, None);
}

// ---------------------------------------------------------------------------------
// DeleteGroups, DescribeGroups, ListGroups.

fn delete(h: &mut Harness, groups: &[&str]) -> RequestId {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| GroupId(text(g))).collect());
    h.send(2, RequestKind::DeleteGroups(request))
}

fn delete_codes(h: &Harness, id: RequestId) -> Vec<(String, i16)> {
    let Some(ResponseKind::DeleteGroups(DeleteGroupsResponse { results, .. })) = h.answers.get(&id)
    else {
        panic!("a DeleteGroups answer");
    };
    results
        .iter()
        .map(|r| (r.group_id.0.to_string(), r.error_code))
        .collect()
}

#[test]
fn delete_groups_refuses_a_group_with_members() {
    let mut h = harness();
    h.form_group("busy", 1);
    h.commit_offsets("idle", -1, "", &[("t", 0, 5, ""), ("t", 1, 6, "")]);
    h.auto_commit = false;
    let id = delete(&mut h, &["busy", "idle", "missing"]);
    assert!(
        !h.answered(id),
        "answered once the tombstones are committed"
    );
    h.commit(0);
    assert_eq!(
        delete_codes(&h, id),
        vec![
            ("busy".to_string(), NON_EMPTY_GROUP),
            ("idle".to_string(), NONE),
            ("missing".to_string(), GROUP_ID_NOT_FOUND),
        ]
    );
    assert_eq!(h.state("idle"), None);
    assert_eq!(
        h.fetch("idle", Some(&[("t", &[0])]), false).1[&("t".to_string(), 0)].0,
        -1
    );
    // Tombstones for both offsets and the group.
    let tombstones: Vec<RecordKey> = h.log[&0]
        .iter()
        .rev()
        .take(3)
        .map(|(k, v)| {
            assert!(v.is_none());
            RecordKey::decode(k.as_ref().unwrap()).unwrap()
        })
        .collect();
    assert!(tombstones.contains(&RecordKey::GroupMetadata {
        group: "idle".into()
    }));
}

#[test]
fn describe_and_list_groups() {
    let mut h = harness();
    let (_, members) = h.form_group("stable", 2);
    h.commit_offsets("simple", -1, "", &[("t", 0, 1, "")]);
    let request = DescribeGroupsRequest::default().with_groups(vec![
        GroupId(text("stable")),
        GroupId(text("simple")),
        GroupId(text("missing")),
    ]);
    let id = h.send(5, RequestKind::DescribeGroups(request));
    let Some(ResponseKind::DescribeGroups(DescribeGroupsResponse { groups, .. })) =
        h.answers.get(&id)
    else {
        panic!("a DescribeGroups answer");
    };
    assert_eq!(groups[0].group_state.as_str(), "Stable");
    assert_eq!(groups[0].protocol_type.as_str(), "consumer");
    assert_eq!(groups[0].protocol_data.as_str(), "range");
    assert_eq!(groups[0].members.len(), 2);
    assert_eq!(groups[0].members[0].member_id.as_str(), members[0]);
    assert_eq!(groups[0].members[0].client_host.as_str(), "/10.0.0.1");
    assert_eq!(groups[0].members[1].member_assignment.as_ref(), b"p1");
    assert_eq!(groups[1].group_state.as_str(), "Empty");
    assert_eq!(groups[1].protocol_type.as_str(), "");
    assert_eq!(groups[2].group_state.as_str(), "Dead");
    assert_eq!(groups[2].error_code, NONE);

    let list = |h: &mut Harness, states: &[&str]| -> Vec<(String, String)> {
        let request = ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|s| text(s)).collect());
        let id = h.send(4, RequestKind::ListGroups(request));
        let Some(ResponseKind::ListGroups(ListGroupsResponse { groups, .. })) = h.answers.get(&id)
        else {
            panic!("a ListGroups answer");
        };
        groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.group_state.to_string()))
            .collect()
    };
    assert_eq!(list(&mut h, &[]).len(), 2);
    assert_eq!(
        list(&mut h, &["Stable"]),
        vec![("stable".to_string(), "Stable".to_string())]
    );
    assert_eq!(
        list(&mut h, &["empty"]),
        vec![("simple".to_string(), "Empty".to_string())]
    );
    assert!(list(&mut h, &["Dead"]).is_empty());
}

// ---------------------------------------------------------------------------------
// Failover.

/// A new leader whose epoch marker is not committed yet calls `begin_loading`: until
/// it loads, every group request is answered COORDINATOR_LOAD_IN_PROGRESS (the client
/// retries this broker) and nothing is appended; `unload` turns that back into
/// NOT_COORDINATOR (the client looks the coordinator up again).
#[test]
fn a_loading_partition_answers_coordinator_load_in_progress() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let join = h.join("g", &a);
    h.tick();
    assert_eq!(h.join_answer(join).generation_id, 1);
    h.sync("g", 1, &a, &[(&a, b"pa")]);
    let appended = h.log[&0].len();

    let effects = h.coordinator.unload(0);
    h.apply(effects);
    h.coordinator.begin_loading(0);
    assert!(h.coordinator.is_loading(0) && !h.coordinator.is_loaded(0));
    assert_eq!(h.heartbeat("g", 1, &a), COORDINATOR_LOAD_IN_PROGRESS);
    let rejoin = h.join("g", &a);
    assert_eq!(
        h.join_answer(rejoin).error_code,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    let sync = h.sync("g", 1, &a, &[(&a, b"other")]);
    assert_eq!(h.sync_answer(sync).error_code, COORDINATOR_LOAD_IN_PROGRESS);
    let commit = h.commit_offsets("g", 1, &a, &[("t", 0, 5, "")]);
    assert_eq!(h.commit_codes(commit), vec![COORDINATOR_LOAD_IN_PROGRESS]);
    assert_eq!(h.fetch("g", None, false).0, COORDINATOR_LOAD_IN_PROGRESS);
    assert_eq!(h.log[&0].len(), appended, "nothing appended while loading");

    // Loaded: the group is back as it was.
    let records = h.log[&0].clone();
    let effects = h.coordinator.load(h.now, 0, records);
    h.apply(effects);
    h.commit(0);
    assert!(!h.coordinator.is_loading(0));
    assert_eq!(h.heartbeat("g", 1, &a), NONE);

    // Leadership lost while loading: NOT_COORDINATOR again.
    let effects = h.coordinator.unload(0);
    h.apply(effects);
    h.coordinator.begin_loading(0);
    let effects = h.coordinator.unload(0);
    h.apply(effects);
    assert!(!h.coordinator.is_loading(0));
    assert_eq!(h.heartbeat("g", 1, &a), NOT_COORDINATOR);
}

/// Replays `h`'s log into a fresh coordinator, as a new leader would.
fn fail_over(h: &Harness, partitions: i32) -> Harness {
    let mut config = h.coordinator.config().clone();
    config.offsets_topic_num_partitions = partitions;
    let mut successor = Harness {
        coordinator: Coordinator::new(config, 99),
        now: h.now,
        next_id: 10_000,
        answers: BTreeMap::new(),
        log: h.log.clone(),
        auto_commit: true,
        auto_append: true,
        unreported: Vec::new(),
        wakes: Vec::new(),
        high_watermarks: BTreeMap::new(),
    };
    for partition in 0..partitions {
        let records = h.log.get(&partition).cloned().unwrap_or_default();
        let effects = successor.coordinator.load(h.now, partition, records);
        successor.apply(effects);
        let high_watermark = h.log.get(&partition).map_or(0, |log| log.len() as i64);
        let effects = successor
            .coordinator
            .on_committed(h.now, partition, high_watermark);
        successor.apply(effects);
    }
    successor
}

#[test]
fn load_after_unload_rebuilds_offsets_and_the_generation_exactly() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 3);
    // A second generation, so that there is history to overwrite.
    h.leave("g", &[(&members[2], None)]);
    let j0 = h.join("g", &members[0]);
    h.join("g", &members[1]);
    assert_eq!(h.join_answer(j0).generation_id, 2);
    h.sync(
        "g",
        2,
        &members[0],
        &[(&members[0], b"A"), (&members[1], b"B")],
    );
    h.sync("g", 2, &members[1], &[]);
    h.commit_offsets("g", 2, &members[0], &[("t", 0, 10, "m0"), ("t", 1, 11, "")]);
    h.commit_offsets("g", 2, &members[1], &[("t", 0, 12, "m1")]);
    h.commit_offsets("simple", -1, "", &[("u", 0, 1, "")]);
    h.commit_offsets("deleted", -1, "", &[("u", 0, 1, "")]);
    delete(&mut h, &["deleted"]);

    // Losing leadership answers nobody (nothing waits) and drops the groups.
    let effects = h.coordinator.unload(0);
    assert!(effects.is_empty());
    assert!(!h.coordinator.is_loaded(0));
    assert_eq!(h.heartbeat("g", 2, &members[0]), NOT_COORDINATOR);

    let mut successor = fail_over(&h, 1);
    let group = successor.coordinator.group("g").expect("restored");
    assert_eq!(group.state(), GroupState::Stable);
    assert_eq!(group.generation_id(), 2);
    assert_eq!(group.leader_id(), Some(members[0].as_str()));
    assert_eq!(group.protocol_name(), Some("range"));
    let restored: Vec<(&str, &[u8])> = group
        .members()
        .into_iter()
        .map(|(id, _, assignment)| (id, assignment.as_ref()))
        .collect();
    assert_eq!(
        restored,
        vec![
            (members[0].as_str(), b"A".as_slice()),
            (members[1].as_str(), b"B")
        ]
    );
    let (_, fetched) = successor.fetch("g", None, false);
    assert_eq!(
        fetched[&("t".to_string(), 0)],
        (12, 3, "m1".to_string(), NONE)
    );
    assert_eq!(fetched[&("t".to_string(), 1)].0, 11);
    assert_eq!(successor.fetch("simple", None, false).1.len(), 1);
    assert_eq!(successor.state("deleted"), None);
    // The members carry on where they were.
    assert_eq!(successor.heartbeat("g", 2, &members[0]), NONE);
    let sync = successor.sync("g", 2, &members[1], &[]);
    assert_eq!(successor.sync_answer(sync).assignment.as_ref(), b"B");
    // And a member that does not heartbeat to the new coordinator is expelled.
    successor.advance(i64::from(SESSION_MS) / 2);
    assert_eq!(successor.heartbeat("g", 2, &members[0]), NONE);
    successor.advance(i64::from(SESSION_MS) / 2 + 1);
    assert_eq!(
        successor.heartbeat("g", 2, &members[0]),
        REBALANCE_IN_PROGRESS
    );
}

#[test]
fn unload_answers_every_waiter_not_coordinator() {
    let mut h = harness();
    let (generation, members) = h.form_group("g", 1);
    let b = h.new_member_id("g");
    let join_b = h.join("g", &b);
    h.auto_commit = false;
    let commit = h.commit_offsets("g", generation, &members[0], &[("t", 0, 1, "")]);
    assert!(!h.answered(join_b) && !h.answered(commit));
    let effects = h.coordinator.unload(0);
    h.apply(effects);
    assert_eq!(h.join_answer(join_b).error_code, NOT_COORDINATOR);
    assert_eq!(h.commit_codes(commit), vec![NOT_COORDINATOR]);
    // A late commit of the lost append changes nothing.
    h.commit(0);
    h.coordinator.check_invariants();
}

// ---------------------------------------------------------------------------------
// Retention (KIP-211).

#[test]
fn kip_211_offsets_of_an_empty_group_expire_after_the_retention() {
    let mut h = Harness::new(GroupConfig {
        offsets_retention_minutes: 60,
        offsets_retention_check_interval_ms: 60_000,
        ..test_config()
    });
    let (generation, members) = h.form_group("g", 1);
    h.commit_offsets("g", generation, &members[0], &[("t", 0, 5, "")]);
    // While the group has members its offsets stay, however old.
    for _ in 0..(70 * 12) {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", generation, &members[0]), NONE);
    }
    assert_eq!(h.fetch("g", None, false).1.len(), 1);
    // Empty from now on: the hour counts from here, not from the commit.
    h.leave("g", &[(&members[0], None)]);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    h.advance(59 * 60_000);
    assert_eq!(h.fetch("g", None, false).1.len(), 1);
    let log_before = h.log[&0].len();
    h.advance(2 * 60_000);
    assert!(h.fetch("g", None, false).1.is_empty());
    assert_eq!(
        h.state("g"),
        None,
        "an Empty group without offsets goes Dead"
    );
    let tombstones: Vec<RecordKey> = h.log[&0][log_before..]
        .iter()
        .map(|(k, v)| {
            assert!(v.is_none(), "expiry writes tombstones");
            RecordKey::decode(k.as_ref().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        tombstones,
        vec![
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 0
            },
            RecordKey::GroupMetadata { group: "g".into() },
        ]
    );
}

#[test]
fn simple_group_offsets_expire_by_commit_time() {
    let mut h = Harness::new(GroupConfig {
        offsets_retention_minutes: 10,
        offsets_retention_check_interval_ms: 60_000,
        ..test_config()
    });
    h.commit_offsets("s", -1, "", &[("t", 0, 1, "")]);
    h.advance(5 * 60_000);
    h.commit_offsets("s", -1, "", &[("t", 1, 1, "")]);
    h.advance(6 * 60_000);
    let left: Vec<(String, i32)> = h.fetch("s", None, false).1.into_keys().collect();
    assert_eq!(left, vec![("t".to_string(), 1)]);
}

#[test]
fn retention_time_of_old_commit_versions_is_written_as_an_expire_timestamp() {
    let mut h = harness();
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("s")))
        .with_retention_time_ms(120_000)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("t")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default().with_committed_offset(3),
                ]),
        ]);
    h.send(2, RequestKind::OffsetCommit(request));
    let (_, value) = h.log[&0].last().cloned().unwrap();
    let value = OffsetCommitValue::decode(&value.unwrap()).unwrap();
    assert_eq!(
        value.expire_timestamp_ms,
        Some(h.now.wall_clock_ms + 120_000)
    );
    h.advance(600_000);
    assert!(h.fetch("s", None, false).1.is_empty());
}

// ---------------------------------------------------------------------------------
// Placement.

#[test]
fn partition_for_matches_kafka() {
    // Java's String.hashCode is s[0]*31^(n-1) + ... + s[n-1] in wrapping int
    // arithmetic. For "my-group" (UTF-16 units 109 121 45 103 114 111 117 112):
    //   m 109 → 109, y → 109*31+121 = 3500, - → 108545, g → 3364998,
    //   r → 104315052, o → 3233766723 (wraps to -1061200573),
    //   u → 1462520722 (mod 2^32), p → 2388469534 → as int -1906497762.
    // Utils.abs(-1906497762) = 1906497762; 1906497762 % 50 = 12.
    // (Masking with 0x7fffffff instead would give 36: Kafka does not do that.)
    assert_eq!(Coordinator::partition_for("my-group", 50), 12);
    // "test-group".hashCode() = 627841412 → 12.
    assert_eq!(Coordinator::partition_for("test-group", 50), 12);
    // "console-consumer-12345".hashCode() = 158455506 → 6.
    assert_eq!(Coordinator::partition_for("console-consumer-12345", 50), 6);
    // "a".hashCode() = 97; "".hashCode() = 0.
    assert_eq!(Coordinator::partition_for("a", 50), 47);
    assert_eq!(Coordinator::partition_for("", 50), 0);
    // "polygenelubricants".hashCode() = Integer.MIN_VALUE, which Utils.abs maps to 0.
    assert_eq!(Coordinator::partition_for("polygenelubricants", 50), 0);
    // Non-ASCII: Java hashes UTF-16 code units ("é" is one unit, 233).
    assert_eq!(Coordinator::partition_for("é", 50), 233 % 50);
    // "😀" is two units, 0xD83D 0xDE00: 55357*31 + 56832 = 1772899.
    assert_eq!(Coordinator::partition_for("😀", 50), 1_772_899 % 50);
}

// ---------------------------------------------------------------------------------
// Failures of the group's own record.

#[test]
fn a_failed_assignment_append_makes_the_members_rejoin() {
    let mut h = harness();
    let a = h.new_member_id("g");
    let b = h.new_member_id("g");
    h.join("g", &a);
    h.join("g", &b);
    h.tick();
    let sync_b = h.sync("g", 1, &b, &[]);
    h.auto_append = false;
    let sync_a = h.sync("g", 1, &a, &[(&a, b"x"), (&b, b"y")]);
    let (_, wait, _) = h.unreported.pop().expect("the group record");
    let effects =
        h.coordinator
            .on_append_failed(h.now, wait, crate::error::ErrorCode::RequestTimedOut);
    h.apply(effects);
    assert_eq!(h.sync_answer(sync_a).error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(h.sync_answer(sync_b).error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
}

#[test]
fn wake_effects_cover_every_deadline() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 1);
    h.wakes.clear();
    // Nothing happens for a while: the coordinator must have asked to be woken no
    // later than the member's session deadline.
    let deadline = h.now.after_ms(i64::from(SESSION_MS));
    let _ = members;
    let wake = h
        .coordinator
        .core
        .wake_requested
        .expect("a wake-up is pending");
    assert!(wake <= deadline);
}

#[test]
fn kip_211_a_stable_consumer_group_expires_only_offsets_of_topics_nobody_subscribes_to() {
    let mut h = Harness::new(GroupConfig {
        offsets_retention_minutes: 1,
        offsets_retention_check_interval_ms: 10_000,
        ..test_config()
    });
    // A ConsumerProtocolSubscription v0: version 0, topics ["t"], null user data.
    let subscription: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
    let a = h.new_member_id("g");
    let join = h.join_with(7, "g", &a, None, &[("range", subscription)]);
    h.tick();
    assert_eq!(h.join_answer(join).generation_id, 1);
    h.sync("g", 1, &a, &[(&a, b"t-0")]);
    h.commit_offsets("g", 1, &a, &[("t", 0, 1, ""), ("u", 0, 2, "")]);
    for _ in 0..20 {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", 1, &a), NONE);
    }
    let left: Vec<(String, i32)> = h.fetch("g", None, false).1.into_keys().collect();
    assert_eq!(
        left,
        vec![("t".to_string(), 0)],
        "u is not subscribed: its offset expired"
    );
}

#[test]
fn group_max_size_turns_new_members_away() {
    let mut h = Harness::new(GroupConfig {
        group_max_size: 2,
        ..test_config()
    });
    let (_, members) = h.form_group("g", 2);
    let id = h.join("g", "");
    let answer = h.join_answer(id);
    assert_eq!(answer.error_code, 81, "GROUP_MAX_SIZE_REACHED");
    assert_eq!(answer.member_id.as_str(), "");
    // Members already in are welcome back.
    let rejoin = h.join("g", &members[0]);
    assert!(!h.answered(rejoin));
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
}

#[test]
fn a_second_join_of_the_same_member_supersedes_the_first() {
    let mut h = harness();
    let (_, members) = h.form_group("g", 2);
    // The leader rejoins (a rebalance), then rejoins again before it ends.
    let first = h.join("g", &members[0]);
    let second = h.join("g", &members[0]);
    // Kafka drops the first callback; every request is answered here.
    assert_eq!(h.join_answer(first).error_code, REBALANCE_IN_PROGRESS);
    assert!(!h.answered(second));
    h.join("g", &members[1]);
    assert_eq!(h.join_answer(second).generation_id, 2);
}

#[test]
fn join_group_v0_uses_the_session_timeout_as_the_rebalance_timeout() {
    let mut h = harness();
    // v0 has no rebalance timeout (and, before v4, no MEMBER_ID_REQUIRED).
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_session_timeout_ms(SESSION_MS)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::from_static(b"m")),
        ]);
    let join = h.send(0, RequestKind::JoinGroup(request));
    h.tick();
    let member = h.join_answer(join).member_id.to_string();
    h.sync("g", 1, &member, &[]);
    let (_, value) = h.log[&0].last().cloned().unwrap();
    let value = GroupMetadataValue::decode(&value.unwrap()).unwrap();
    assert_eq!(value.members[0].rebalance_timeout_ms, SESSION_MS);
    assert_eq!(value.members[0].session_timeout_ms, SESSION_MS);
    assert_eq!(value.members[0].client_id, "client");
    assert_eq!(value.members[0].client_host, "/10.0.0.1");
}
