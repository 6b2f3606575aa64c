//! One group's state: its members, generation, protocol and committed offsets, and the
//! rules that only look at the group itself (Kafka's `GroupMetadata` and
//! `MemberMetadata`). Everything that answers requests or writes records lives in the
//! coordinator's handlers; this file never produces an effect.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use odradek_log::io::Instant;

use crate::request::RequestId;
use crate::topics::TopicPartition;

/// The states of a classic group (Kafka's `GroupState`); see the module docs for the
/// diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members. Offsets may still be stored (and expire after the retention).
    Empty,
    /// Waiting for the members to (re)join before the next generation.
    PreparingRebalance,
    /// The new generation is formed; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Being removed (deleted, expired or unloaded).
    Dead,
}

impl GroupState {
    /// Kafka's name of the state, as DescribeGroups and ListGroups spell it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may enter this one from (Kafka's `validPreviousStates`).
    fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Empty => &[PreparingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A request the coordinator holds until it can answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parked {
    /// The driver's id of the request.
    pub(crate) id: RequestId,
    /// The version the response is encoded with.
    pub(crate) api_version: i16,
}

/// A committed offset of one partition, as the group holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) offset: i64,
    /// -1 when the client sent none.
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp_ms: i64,
    /// The commit's explicit expiry (OffsetCommit v2–v4 `retention_time_ms`).
    pub(crate) expire_timestamp_ms: Option<i64>,
    /// Where the record sits in `__consumer_offsets` (-1 for offsets loaded at
    /// failover, which are older than anything appended since). A completion only
    /// replaces an offset written before it (Kafka's `CommitRecordMetadataAndOffset`).
    pub(crate) record_offset: i64,
}

/// One member of a group (Kafka's `MemberMetadata`).
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocol_type: String,
    /// (protocol name, metadata), in the member's order of preference.
    pub(crate) protocols: Vec<(String, Bytes)>,
    /// What the leader assigned in the current generation (empty until SyncGroup).
    pub(crate) assignment: Bytes,
    /// The member's JoinGroup, parked until the rebalance completes.
    pub(crate) awaiting_join: Option<Parked>,
    /// The member's SyncGroup, parked until the leader's assignment is stored.
    pub(crate) awaiting_sync: Option<Parked>,
    /// Joined during the current rebalance and has not been part of a generation yet.
    pub(crate) is_new: bool,
    /// When the member is expelled unless it heartbeats (or is parked in a
    /// rebalance). `None` while no heartbeat is expected.
    pub(crate) heartbeat_deadline: Option<Instant>,
    /// When the member joined (a coordinator-wide counter): the leader is the earliest
    /// joined member, and the leader's member list is in this order.
    pub(crate) join_sequence: u64,
}

impl Member {
    /// The member's metadata for `protocol` (empty if it does not support it).
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether `protocols` is exactly what the member sent last time (names, metadata
    /// and order), Kafka's `MemberMetadata.matches`.
    pub(crate) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols.as_slice() == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> &'a str {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
            .expect("a member supports every candidate protocol's group")
    }

    /// Kafka's `hasSatisfiedHeartbeat` for a member whose deadline passed: a member that
    /// has been in a generation and is parked in JoinGroup or SyncGroup is waiting on
    /// the coordinator, not silent.
    pub(crate) fn is_waiting_on_coordinator(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }
}

/// When the join phase of a rebalance ends (Kafka's `DelayedJoin` and
/// `InitialDelayedJoin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinDeadline {
    /// A rebalance of a group that had members: it ends when every member rejoined, or
    /// at `at` (the largest rebalance timeout), expelling who did not.
    Rebalance { at: Instant },
    /// The first rebalance out of Empty waits `group.initial.rebalance.delay.ms` for
    /// more members, and again while new members keep arriving, up to the rebalance
    /// timeout in all. It never ends early.
    Initial {
        at: Instant,
        /// This wait's length.
        delay_ms: i64,
        /// What is left of the rebalance timeout after this wait.
        remaining_ms: i64,
    },
}

impl JoinDeadline {
    pub(crate) fn at(self) -> Instant {
        match self {
            JoinDeadline::Rebalance { at } | JoinDeadline::Initial { at, .. } => at,
        }
    }
}

/// One group (Kafka's `GroupMetadata`).
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) group_id: String,
    /// Distinguishes this group from a later one with the same id (after a delete), so
    /// that a completion for the old one does not touch the new one.
    pub(crate) incarnation: u64,
    pub(crate) state: GroupState,
    /// When the group entered its state (wall clock ms); `None` for groups loaded from
    /// records older than GroupMetadataValue v2.
    pub(crate) state_timestamp_ms: Option<i64>,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation_id: i32,
    pub(crate) leader_id: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id of the static members.
    pub(crate) static_members: BTreeMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pub(crate) pending_members: BTreeMap<String, Instant>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub(crate) pending_sync: BTreeSet<String>,
    /// A new member joined during the initial delay (extends it).
    pub(crate) new_member_added: bool,
    pub(crate) join_deadline: Option<JoinDeadline>,
    /// When members still in `pending_sync` are expelled (Kafka's `DelayedSync`).
    pub(crate) sync_deadline: Option<Instant>,
    pub(crate) offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// Commits appended but not yet committed, per partition (Kafka's
    /// `pendingOffsetCommits`): they make OffsetFetch with `require_stable` answer
    /// UNSTABLE_OFFSET_COMMIT and keep the partition's offset from expiring.
    pub(crate) pending_offset_commits: BTreeMap<TopicPartition, u32>,
}

impl Group {
    /// A new group with no members, in Empty.
    pub(crate) fn new(group_id: &str, incarnation: u64, wall_clock_ms: i64) -> Group {
        Group {
            group_id: group_id.to_string(),
            incarnation,
            state: GroupState::Empty,
            state_timestamp_ms: Some(wall_clock_ms),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            join_deadline: None,
            sync_deadline: None,
            offsets: BTreeMap::new(),
            pending_offset_commits: BTreeMap::new(),
        }
    }

    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    /// Moves to `state`, stamping the time; panics on a transition Kafka forbids.
    pub(crate) fn transition_to(&mut self, state: GroupState, wall_clock_ms: i64) {
        assert!(
            state.valid_previous_states().contains(&self.state),
            "group {}: illegal transition {:?} -> {:?}",
            self.group_id,
            self.state,
            state
        );
        self.state = state;
        self.state_timestamp_ms = Some(wall_clock_ms);
    }

    /// Whether a rebalance may start from the current state.
    pub(crate) fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous_states()
            .contains(&self.state)
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// How many members support `protocol`.
    fn supporters(&self, protocol: &str) -> usize {
        self.members
            .values()
            .filter(|member| member.protocols.iter().any(|(name, _)| name == protocol))
            .count()
    }

    /// Whether a member with these protocols may join (Kafka's `supportsProtocols`): an
    /// Empty group takes any non-empty protocol type and list; otherwise the type must
    /// match and at least one protocol must be supported by every current member.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[&str]) -> bool {
        if self.is(GroupState::Empty) {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|protocol| self.supporters(protocol) == self.members.len())
        }
    }

    /// The protocols every member supports.
    fn candidate_protocols(&self) -> BTreeSet<&str> {
        let Some(first) = self.members.values().next() else {
            return BTreeSet::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.supporters(name) == self.members.len())
            .collect()
    }

    /// The protocol of the next generation (Kafka's `selectProtocol`): each member votes
    /// for its most preferred protocol among those all members support; the most votes
    /// win. Kafka breaks a tie by hash-map order; here the leader's (earliest joined
    /// member's) preference breaks it, so that the choice is deterministic.
    pub(crate) fn select_protocol(&self) -> String {
        assert!(
            !self.members.is_empty(),
            "cannot select a protocol for an empty group"
        );
        let candidates = self.candidate_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            *votes.entry(member.vote(&candidates)).or_default() += 1;
        }
        let most = votes.values().copied().max().expect("at least one vote");
        let tie_breaker = self
            .leader_id
            .as_ref()
            .and_then(|leader| self.members.get(leader))
            .or_else(|| self.members_in_join_order().into_iter().next())
            .expect("a non-empty group has a first member");
        tie_breaker
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| votes.get(name) == Some(&most))
            .unwrap_or_else(|| {
                votes
                    .iter()
                    .find(|(_, count)| **count == most)
                    .map(|(name, _)| *name)
                    .expect("a protocol has the most votes")
            })
            .to_string()
    }

    /// Members ordered by when they joined.
    pub(crate) fn members_in_join_order(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|member| member.join_sequence);
        members
    }

    /// The largest rebalance timeout of the members (Kafka's `rebalanceTimeoutMs`).
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|member| member.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Every member is parked in JoinGroup and no KIP-394 member id is outstanding.
    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.members
            .values()
            .all(|member| member.awaiting_join.is_some())
            && self.pending_members.is_empty()
    }

    /// Adds a member; the first member sets the protocol type and the first member
    /// without a leader becomes leader.
    pub(crate) fn add_member(&mut self, member: Member) {
        if let Some(instance_id) = &member.group_instance_id {
            let previous = self
                .static_members
                .insert(instance_id.clone(), member.member_id.clone());
            assert!(
                previous.is_none(),
                "static member {instance_id} added twice to group {}",
                self.group_id
            );
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        assert_eq!(
            self.protocol_type.as_deref(),
            Some(member.protocol_type.as_str())
        );
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.pending_members.remove(&member.member_id);
        let previous = self.members.insert(member.member_id.clone(), member);
        assert!(previous.is_none(), "member added twice");
    }

    /// Removes a member; a removed leader is replaced by the earliest joined member.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(member) = &removed
            && let Some(instance_id) = &member.group_instance_id
        {
            self.static_members.remove(instance_id);
        }
        if self.is_leader(member_id) {
            self.leader_id = self
                .members_in_join_order()
                .first()
                .map(|member| member.member_id.clone());
        }
        self.pending_members.remove(member_id);
        self.pending_sync.remove(member_id);
        removed
    }

    /// KIP-345: the static member `instance_id` now has member id `new_member_id`;
    /// everything else about it is kept. Returns its JoinGroup and SyncGroup that were
    /// parked under the old id: they are answered FENCED_INSTANCE_ID.
    pub(crate) fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) -> (Option<Parked>, Option<Parked>) {
        let mut member = self
            .members
            .remove(old_member_id)
            .expect("replacing a member that exists");
        let fenced = (member.awaiting_join.take(), member.awaiting_sync.take());
        member.member_id = new_member_id.to_string();
        self.members.insert(new_member_id.to_string(), member);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_string());
        }
        if self.pending_sync.remove(old_member_id) {
            self.pending_sync.insert(new_member_id.to_string());
        }
        self.static_members
            .insert(instance_id.to_string(), new_member_id.to_string());
        fenced
    }

    /// Before the join phase ends: keeps the leader if it rejoined, else makes the
    /// earliest joined member that rejoined the leader. False if nobody rejoined (or
    /// there is no leader).
    pub(crate) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader_id) = self.leader_id.clone() else {
            return false;
        };
        let leader_rejoined = self
            .members
            .get(&leader_id)
            .is_some_and(|leader| leader.awaiting_join.is_some());
        if leader_rejoined {
            return true;
        }
        let joined = self
            .members_in_join_order()
            .into_iter()
            .find(|member| member.awaiting_join.is_some())
            .map(|member| member.member_id.clone());
        match joined {
            Some(member_id) => {
                self.leader_id = Some(member_id);
                true
            }
            None => false,
        }
    }

    /// The topics the members subscribe to, for `protocol_type` "consumer" when the
    /// subscriptions parse (Kafka's `computeSubscribedTopics`): the topic list is the
    /// prefix every ConsumerProtocolSubscription version shares. `None` when unknown.
    pub(crate) fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(consumer_subscription_topics(&member.metadata(protocol))?);
        }
        Some(topics)
    }

    /// Whether the group has offsets, committed or in flight.
    pub(crate) fn has_offsets(&self) -> bool {
        !self.offsets.is_empty() || !self.pending_offset_commits.is_empty()
    }

    /// The earliest of the group's deadlines.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let members = self
            .members
            .values()
            .filter_map(|member| member.heartbeat_deadline);
        let pending = self.pending_members.values().copied();
        let join = self.join_deadline.map(JoinDeadline::at);
        members
            .chain(pending)
            .chain(join)
            .chain(self.sync_deadline)
            .min()
    }

    /// Panics if the group contradicts itself.
    pub(crate) fn check_invariants(&self) {
        for (instance_id, member_id) in &self.static_members {
            let member = self.members.get(member_id);
            assert!(
                member.is_some_and(|m| m.group_instance_id.as_deref() == Some(instance_id)),
                "group {}: static member {instance_id} maps to {member_id}, not a member",
                self.group_id
            );
        }
        for (member_id, member) in &self.members {
            assert_eq!(member_id, &member.member_id);
            if let Some(instance_id) = &member.group_instance_id {
                assert_eq!(self.static_members.get(instance_id), Some(member_id));
            }
            assert!(!self.pending_members.contains_key(member_id));
            if member.awaiting_join.is_some() {
                assert!(
                    self.is(GroupState::PreparingRebalance) || self.is(GroupState::Stable),
                    "group {}: a JoinGroup parked in {:?}",
                    self.group_id,
                    self.state
                );
            }
            if member.awaiting_sync.is_some() {
                assert!(
                    self.is(GroupState::CompletingRebalance),
                    "group {}: a SyncGroup parked in {:?}",
                    self.group_id,
                    self.state
                );
            }
        }
        match &self.leader_id {
            Some(leader) => assert!(self.members.contains_key(leader) || self.members.is_empty()),
            None => assert!(self.members.is_empty()),
        }
        for member_id in &self.pending_sync {
            assert!(self.members.contains_key(member_id));
        }
        match self.state {
            GroupState::Empty => {
                assert!(
                    self.members.is_empty(),
                    "group {}: Empty with members",
                    self.group_id
                );
                assert!(self.join_deadline.is_none());
            }
            GroupState::PreparingRebalance => assert!(self.join_deadline.is_some()),
            GroupState::CompletingRebalance | GroupState::Stable => {
                assert!(!self.members.is_empty());
                assert!(self.protocol_name.is_some());
                assert!(self.join_deadline.is_none());
            }
            GroupState::Dead => {}
        }
        if !self.is(GroupState::PreparingRebalance) {
            assert!(self.join_deadline.is_none());
        }
        assert!(self.generation_id >= 0);
    }
}

/// The protocol type of Kafka's consumers.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics of a ConsumerProtocolSubscription (`int16` version, then an array of
/// strings; later versions only append fields).
fn consumer_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let read_i16 = |at: usize| -> Option<i16> {
        Some(i16::from_be_bytes(
            metadata.get(at..at + 2)?.try_into().ok()?,
        ))
    };
    let version = read_i16(0)?;
    if version < 0 {
        return None;
    }
    let count = i32::from_be_bytes(metadata.get(2..6)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    let mut at = 6;
    let mut topics = Vec::with_capacity(count.min(metadata.len()));
    for _ in 0..count {
        let length = usize::try_from(read_i16(at)?).ok()?;
        let raw = metadata.get(at + 2..at + 2 + length)?;
        topics.push(std::str::from_utf8(raw).ok()?.to_string());
        at += 2 + length;
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_subscription_topics_parse_the_shared_prefix() {
        // Version 1, topics ["a", "bc"], then user data and owned partitions we ignore.
        let mut metadata = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        metadata.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            consumer_subscription_topics(&metadata),
            Some(vec!["a".to_string(), "bc".to_string()])
        );
        assert_eq!(consumer_subscription_topics(&metadata[..9]), None);
        assert_eq!(consumer_subscription_topics(b"junk"), None);
    }
}
