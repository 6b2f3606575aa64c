//! The consumer-group coordinator: Kafka's classic group protocol as a pure state
//! machine.
//!
//! # What a group coordinator does
//!
//! Consumers that share a `group.id` split the partitions of the topics they read
//! between them. No consumer can do that alone: someone must know who is in the group
//! right now, pick one member to compute the split, hand every member its share, and
//! notice when a member dies so that its partitions move to the others. That someone is
//! the *group coordinator*, a broker. Each group belongs to one partition of the
//! internal topic `__consumer_offsets` ([`Coordinator::partition_for`]), and the broker
//! that leads that partition coordinates the group. Everything the coordinator must not
//! forget (the members of the last generation, their assignments, the committed
//! offsets) is written to that partition, so that after a failover the new leader
//! rebuilds the same groups from the log ([`Coordinator::load`]).
//!
//! # The dance: JoinGroup, SyncGroup, Heartbeat
//!
//! ```text
//!  consumer A (first)        coordinator                        consumer B
//!  ── JoinGroup(member "") ──►  v4+: MEMBER_ID_REQUIRED "A-1" (KIP-394)
//!  ── JoinGroup("A-1") ──────►  parked; rebalance starts            ◄── JoinGroup(..) ──
//!                               ... every known member rejoined, or the rebalance
//!                               timeout fired (the laggards are expelled) ...
//!  ◄── generation 1, leader A, all members' metadata ─┬─ generation 1, leader A ──►
//!  (A runs the assignor)                               │
//!  ── SyncGroup(assignments) ─►  write GroupMetadata   ◄── SyncGroup() ── (parked)
//!                               record; once committed:
//!  ◄── A's assignment ─────────┴──────────────────────── B's assignment ─────────►
//!  ── Heartbeat ─────────────►  NONE, or REBALANCE_IN_PROGRESS: "join again"
//!  ── OffsetCommit ──────────►  write OffsetCommit records; answer once committed
//! ```
//!
//! # The states of a group
//!
//! ```text
//!                 a JoinGroup (first member)
//!   ┌───────┐ ───────────────────────────────► ┌────────────────────┐
//!   │ Empty │                                  │ PreparingRebalance │ ◄────────────────┐
//!   └───────┘ ◄─────────────────────────────── └────────────────────┘                  │
//!       │       the join phase ends and                  │                              │
//!       │       nobody is left                           │ the join phase ends: every   │
//!       │                                                │ member rejoined, or the      │
//!       │ DeleteGroups, or                               │ rebalance timeout fired      │ a member joins, leaves,
//!       │ its offsets expired                            ▼                              │ changes its metadata or
//!       ▼                                     ┌─────────────────────┐                   │ misses its session; the
//!   ┌──────┐                                  │ CompletingRebalance │ ──────────────────┤ leader rejoins; a member
//!   │ Dead │                                  └─────────────────────┘                   │ never sent SyncGroup
//!   └──────┘                                             │                              │
//!   (from any state when the offsets                     │ the leader's SyncGroup       │
//!    partition is unloaded; a Dead                       │ is committed                 │
//!    group is forgotten)                                 ▼                              │
//!                                                   ┌────────┐                          │
//!                                                   │ Stable │ ─────────────────────────┘
//!                                                   └────────┘
//! ```
//!
//! - **Empty**: no members. The group may still hold committed offsets (a consumer that
//!   assigns partitions itself commits with generation -1 and member id ""). Offsets
//!   of an Empty group expire `offsets.retention.minutes` after it became empty
//!   (KIP-211); then the group goes Dead.
//! - **PreparingRebalance**: JoinGroup requests are parked until every known member has
//!   rejoined or the rebalance timeout (the largest of the members') fires; members
//!   that did not rejoin are expelled. Out of Empty, the coordinator first waits
//!   `group.initial.rebalance.delay.ms` so that consumers starting together land in one
//!   generation instead of a rebalance each. Heartbeats answer REBALANCE_IN_PROGRESS.
//! - **CompletingRebalance**: the generation is bumped, the protocol chosen (the one all
//!   members support with the most first-choice votes) and every JoinGroup answered;
//!   the leader alone gets the member list. SyncGroups are parked until the leader's
//!   assignment is durable.
//! - **Stable**: every member has its assignment; it heartbeats within its session
//!   timeout or is expelled, which starts a rebalance.
//!
//! Static members (KIP-345, `group.instance.id`) survive restarts: a static member that
//! rejoins with an empty member id takes over its old member id's place; when the group
//! is Stable and the chosen protocol would not change, that happens without a
//! rebalance. A request with a stale member id for a known instance id is fenced with
//! FENCED_INSTANCE_ID. Static members are not expelled at the end of a join phase,
//! only when their session times out.
//!
//! # Events in, effects out
//!
//! The [`Coordinator`] never reads a clock, never touches the disk and never talks to
//! a socket. Each call takes the time ([`Now`]) and returns [`Effect`]s for the node:
//!
//! ```text
//!   node                                        Coordinator
//!   ────                                        ───────────
//!   group request ── handle(now, id, req) ──►  Effect::Respond(id, response)   send it
//!                                              Effect::Append{partition, records, wait}
//!                                                 append to __consumer_offsets-<partition>,
//!   batch appended ── on_appended(wait, last) ─►  then report where it landed
//!   high watermark ── on_committed(p, hw) ─────►  Respond(...) for what waited on it
//!   timer fired ───── on_timer(now) ───────────►  Effect::Wake(at): call on_timer at `at`
//!   became leader ─── load(now, p, records) ───►  groups rebuilt from the log
//!   lost leadership ─ unload(p) ───────────────►  NOT_COORDINATOR to whoever waited
//! ```
//!
//! An answer that reports something durable (an offset commit, the end of a rebalance)
//! leaves only after its records are committed in `__consumer_offsets`.
//!
//! # Wiring it into a node
//!
//! - Build one with [`Coordinator::new`], the seed from `Io::random`.
//! - When the node becomes leader of `__consumer_offsets` partition `p`, it reads the
//!   partition's records in log order and calls [`Coordinator::load`], then
//!   [`Coordinator::on_committed`] with the partition's high watermark. When it stops
//!   leading `p`, it calls [`Coordinator::unload`].
//! - Requests for which [`Coordinator::handles`] is true go to [`Coordinator::handle`].
//!   FindCoordinator stays with the node: the coordinator of group `g` is the leader of
//!   partition [`Coordinator::partition_for`]`(g, offsets.topic.num.partitions)`.
//! - [`Effect::Respond`] goes to `NodeIo::respond`. [`Effect::Append`] becomes one
//!   record batch (keys always set, a `None` value is a null value: a tombstone)
//!   appended to the partition as its leader; the node then reports the batch's last
//!   offset with [`Coordinator::on_appended`] (or the failure with
//!   [`Coordinator::on_append_failed`]) and every advance of the partition's high
//!   watermark with [`Coordinator::on_committed`]. [`Effect::Wake`] becomes a timer
//!   whose firing calls [`Coordinator::on_timer`].

mod error;
mod membership;
mod offset_delete;
mod offsets;
pub mod records;
mod state;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use odradek_log::io::{Duration, Instant};
use odradek_log::mixing::splitmix64;

use crate::error::ErrorCode;
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;

pub use error::GroupErrorCode;
pub(crate) use membership::join_error;
pub use state::GroupState;

use records::{GroupMetadataValue, MemberMetadataValue, RecordKey};
use state::{CommittedOffset, Group, Parked};

/// The name of the internal topic that holds groups and offsets.
pub const OFFSETS_TOPIC_NAME: &str = "__consumer_offsets";

/// How long a new member's JoinGroup may stay parked before it is dropped (Kafka's
/// `GroupCoordinator.NewMemberJoinTimeoutMs`): a client that gave up waiting would
/// otherwise stay a member for ever.
const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The coordinator's configuration. Field names follow Kafka's broker config keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: how many partitions `__consumer_offsets` has.
    /// Changing it moves groups to other partitions; Kafka forbids it, so do we.
    pub offsets_topic_num_partitions: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub group_max_size: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i32,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: i32,
    /// Deliberate bugs for the simulator's mutation tests (docs/decisions/0005-mutants.md).
    #[cfg(feature = "mutants")]
    pub mutants: GroupMutants,
}

/// The coordinator's deliberate bugs; each must make the simulator fail.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupMutants {
    /// A rebalance keeps the generation number instead of bumping it (after the
    /// first), so members of the old and the new generation cannot be told apart.
    pub keep_generation: bool,
    /// Anything appended is treated as committed at once: OffsetCommit is answered
    /// before its records are durable and replicated.
    pub ack_before_committed: bool,
    /// A new leader of an offsets partition loads its groups at once, from records
    /// that may not be committed yet (the node does not wait for its epoch's marker).
    pub load_before_committed: bool,
}

impl Default for GroupConfig {
    /// Kafka's defaults.
    fn default() -> GroupConfig {
        GroupConfig {
            offsets_topic_num_partitions: 50,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX,
            offsets_retention_minutes: 7 * 24 * 60,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            #[cfg(feature = "mutants")]
            mutants: GroupMutants::default(),
        }
    }
}

impl GroupConfig {
    fn offsets_retention_ms(&self) -> i64 {
        i64::from(self.offsets_retention_minutes) * 60 * 1000
    }
}

/// The node's two clocks when an event happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock: session, rebalance and join timeouts are measured on it.
    pub instant: Instant,
    /// The wall clock (ms since the Unix epoch): commit timestamps and the time a group
    /// became empty are written with it, and offsets retention compares against it,
    /// because those outlive this node (a new coordinator reads them after failover).
    pub wall_clock_ms: i64,
}

impl Now {
    /// `ms` milliseconds after this instant (negative counts as zero).
    fn after_ms(self, ms: i64) -> Instant {
        self.instant + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

/// Identifies one [`Effect::Append`] until its records are committed or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaitId(pub u64);

/// One record for `__consumer_offsets`: the key is always set; a `None` value is a
/// tombstone (the key's group or offset is deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetsRecord {
    /// The record's key ([`records::RecordKey`] bytes).
    pub key: Bytes,
    /// The record's value, or `None` for a tombstone.
    pub value: Option<Bytes>,
}

/// What the coordinator asks the node to do.
// A response is built once and moved to the node; boxing it would only add an
// allocation per answer.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send `response` to request `id`. Every request gets exactly one.
    Respond {
        /// The request answered.
        id: RequestId,
        /// The answer, for the version the request came with.
        response: ResponseKind,
    },
    /// Append `records`, in this order and in the order the effects came, as one batch
    /// to `__consumer_offsets` partition `partition`. Then call
    /// [`Coordinator::on_appended`] with `wait` and the batch's last offset (or
    /// [`Coordinator::on_append_failed`]), and [`Coordinator::on_committed`] as the
    /// partition's high watermark advances.
    Append {
        /// The `__consumer_offsets` partition.
        partition: i32,
        /// The records (never empty).
        records: Vec<OffsetsRecord>,
        /// Names this append in the calls that report on it.
        wait: WaitId,
    },
    /// Call [`Coordinator::on_timer`] at or after this instant. A later `Wake` does
    /// not cancel an earlier one; an early or extra call is harmless.
    Wake(Instant),
}

/// What happens when an append's records are committed.
#[derive(Debug)]
enum Then {
    /// Answer an OffsetCommit and make its offsets visible.
    OffsetCommit {
        parked: Parked,
        group_id: String,
        incarnation: u64,
        /// Per topic, per partition: the error already decided (`Some`) or the offset
        /// staged in this append (`None` plus its entry in `staged`).
        response: offsets::CommitResults,
        staged: Vec<(TopicPartition, CommittedOffset)>,
    },
    /// The leader's SyncGroup: hand out the assignment and go Stable.
    GroupSync {
        group_id: String,
        incarnation: u64,
        generation_id: i32,
        assignment: BTreeMap<String, Bytes>,
    },
    /// A static member replaced its old member id while the group was Stable.
    StaticRejoin(Box<StaticRejoin>),
    /// Tombstones of deleted groups: count down a DeleteGroups answer.
    DeleteGroups { id: RequestId, groups: Vec<String> },
    /// Tombstones of deleted offsets: forget them and answer the OffsetDelete.
    OffsetDelete(Box<offset_delete::PendingOffsetDelete>),
    /// Nothing waits (an empty group's metadata, expired offsets' tombstones).
    Nothing,
}

/// What a static member's replacement needs to answer or undo it.
#[derive(Debug)]
struct StaticRejoin {
    group_id: String,
    incarnation: u64,
    instance_id: String,
    old_member_id: String,
    new_member_id: String,
    parked: Parked,
    /// The member's protocols and timeouts before the rejoin, restored on failure.
    old_protocols: Vec<(String, Bytes)>,
    old_rebalance_timeout_ms: i32,
    old_session_timeout_ms: i32,
    /// The leader before the rejoin: pre-v9 clients are told this leader, so that a
    /// replaced leader does not run an assignment a Stable group would ignore.
    leader_before: Option<String>,
    /// JoinGroup v9+ (KIP-814): a returning static leader is told to skip assignment.
    supports_skip_assignment: bool,
}

/// An append the coordinator waits on.
#[derive(Debug)]
struct Wait {
    partition: i32,
    /// The offset of the batch's last record, once the node reported it.
    last_offset: Option<i64>,
    then: Then,
}

/// A DeleteGroups waiting for its tombstones.
#[derive(Debug)]
struct PendingDelete {
    /// Every group of the request with its result (`None` while its tombstones are in
    /// flight).
    results: Vec<(String, Option<i16>)>,
    waits_outstanding: usize,
}

/// The groups of one `__consumer_offsets` partition this node leads.
#[derive(Debug)]
struct OffsetsPartition {
    groups: BTreeMap<String, Group>,
    /// The last high watermark the node reported (-1 before any).
    high_watermark: i64,
    /// When expired offsets are next looked for.
    next_retention_check: Instant,
}

/// Everything a handler may change besides the groups themselves.
#[derive(Debug)]
struct Core {
    member_id_seed: u64,
    member_ids_issued: u64,
    /// Join order of members and incarnations of groups.
    sequence: u64,
    next_wait_id: u64,
    waits: BTreeMap<WaitId, Wait>,
    deletes: BTreeMap<RequestId, PendingDelete>,
    effects: Vec<Effect>,
    /// The earliest deadline set during this call.
    earliest_new_deadline: Option<Instant>,
    /// The earliest `Wake` handed out that has not fired yet.
    wake_requested: Option<Instant>,
    /// Offsets partitions this node leads but has not loaded yet: their records are
    /// not all known to be committed (see [`Coordinator::begin_loading`]).
    loading: BTreeSet<i32>,
}

impl Core {
    /// COORDINATOR_LOAD_IN_PROGRESS while this node leads `partition` but is still
    /// loading it (the client retries here), else NOT_COORDINATOR (it looks again).
    fn not_loaded(&self, partition: i32) -> GroupErrorCode {
        if self.loading.contains(&partition) {
            GroupErrorCode::CoordinatorLoadInProgress
        } else {
            GroupErrorCode::NotCoordinator
        }
    }
}

/// A handler's view: the time, the configuration and the shared state.
struct Cx<'a> {
    now: Now,
    config: &'a GroupConfig,
    core: &'a mut Core,
}

impl Cx<'_> {
    fn respond(&mut self, id: RequestId, response: ResponseKind) {
        self.core.effects.push(Effect::Respond { id, response });
    }

    /// Notes a new deadline so that the node is woken for it.
    fn deadline(&mut self, at: Instant) {
        let earliest = &mut self.core.earliest_new_deadline;
        if earliest.is_none_or(|earliest| at < earliest) {
            *earliest = Some(at);
        }
    }

    fn next_sequence(&mut self) -> u64 {
        self.core.sequence += 1;
        self.core.sequence
    }

    fn partition_of(&self, group_id: &str) -> i32 {
        Coordinator::partition_for(group_id, self.config.offsets_topic_num_partitions)
    }

    /// Asks the node to append `records` to the group's partition; `then` runs when
    /// they are committed.
    fn append(&mut self, group_id: &str, records: Vec<OffsetsRecord>, then: Then) -> WaitId {
        let partition = self.partition_of(group_id);
        self.append_to(partition, records, then)
    }

    fn append_to(&mut self, partition: i32, records: Vec<OffsetsRecord>, then: Then) -> WaitId {
        assert!(!records.is_empty(), "an append has records");
        self.core.next_wait_id += 1;
        let wait = WaitId(self.core.next_wait_id);
        self.core.waits.insert(
            wait,
            Wait {
                partition,
                last_offset: None,
                then,
            },
        );
        self.core.effects.push(Effect::Append {
            partition,
            records,
            wait,
        });
        wait
    }

    /// A member id Kafka-style: `{client id or instance id}-{uuid}`, the uuid derived
    /// from the seed and a counter instead of the OS's randomness, and never one that
    /// `group` already knows.
    fn new_member_id(&mut self, prefix: &str, group: &Group) -> String {
        loop {
            self.core.member_ids_issued += 1;
            let counter = self.core.member_ids_issued;
            let high = splitmix64(self.core.member_id_seed ^ counter.rotate_left(32));
            let low = splitmix64(high ^ counter);
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&high.to_be_bytes());
            bytes[8..].copy_from_slice(&low.to_be_bytes());
            let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
            let member_id = format!("{prefix}-{uuid}");
            if !group.members.contains_key(&member_id)
                && !group.pending_members.contains_key(&member_id)
            {
                return member_id;
            }
        }
    }

    /// The GroupMetadata record of `group` as it stands, with `assignment` for its
    /// members (Kafka's `groupMetadataValue`).
    fn group_record(group: &Group, assignment: &BTreeMap<String, Bytes>) -> OffsetsRecord {
        let protocol = group.protocol_name.as_deref();
        let members = group
            .members_in_join_order()
            .into_iter()
            .map(|member| MemberMetadataValue {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                session_timeout_ms: member.session_timeout_ms,
                subscription: protocol
                    .map(|protocol| member.metadata(protocol))
                    .expect("a group with members has a protocol"),
                assignment: assignment
                    .get(&member.member_id)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        let value = GroupMetadataValue {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation_id: group.generation_id,
            protocol_name: group.protocol_name.clone(),
            leader: group.leader_id.clone(),
            current_state_timestamp_ms: group.state_timestamp_ms.unwrap_or(-1),
            members,
        };
        OffsetsRecord {
            key: RecordKey::GroupMetadata {
                group: group.group_id.clone(),
            }
            .encode(),
            value: Some(value.encode()),
        }
    }
}

/// A read-only look at one group, for tests, the simulator's invariants and tools.
#[derive(Clone, Copy, Debug)]
pub struct GroupView<'a> {
    group: &'a Group,
}

impl<'a> GroupView<'a> {
    /// The group's state.
    pub fn state(&self) -> GroupState {
        self.group.state
    }

    /// The current generation id.
    pub fn generation_id(&self) -> i32 {
        self.group.generation_id
    }

    /// The leader's member id.
    pub fn leader_id(&self) -> Option<&'a str> {
        self.group.leader_id.as_deref()
    }

    /// The selected protocol of the current generation.
    pub fn protocol_name(&self) -> Option<&'a str> {
        self.group.protocol_name.as_deref()
    }

    /// (member id, group instance id, assignment) of each member, in join order.
    pub fn members(&self) -> Vec<(&'a str, Option<&'a str>, &'a Bytes)> {
        self.group
            .members_in_join_order()
            .into_iter()
            .map(|member| {
                (
                    member.member_id.as_str(),
                    member.group_instance_id.as_deref(),
                    &member.assignment,
                )
            })
            .collect()
    }

    /// The committed offset of a partition (offset, leader epoch, metadata).
    pub fn committed_offset(&self, topic: &str, partition: i32) -> Option<(i64, i32, &'a str)> {
        self.group
            .offsets
            .get(&TopicPartition::new(topic, partition))
            .map(|offset| (offset.offset, offset.leader_epoch, offset.metadata.as_str()))
    }

    /// Every committed offset: (topic, partition) → offset.
    pub fn committed_offsets(&self) -> BTreeMap<(&'a str, i32), i64> {
        self.group
            .offsets
            .iter()
            .map(|(key, offset)| ((key.topic.as_str(), key.partition), offset.offset))
            .collect()
    }
}

/// The coordinator of every group whose `__consumer_offsets` partition this node leads.
#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    partitions: BTreeMap<i32, OffsetsPartition>,
    core: Core,
}

impl Coordinator {
    /// A coordinator that leads no partition yet. `member_id_seed` (from the node's
    /// randomness) makes the member ids it hands out differ between runs.
    pub fn new(config: GroupConfig, member_id_seed: u64) -> Coordinator {
        assert!(config.offsets_topic_num_partitions > 0);
        assert!(config.group_min_session_timeout_ms <= config.group_max_session_timeout_ms);
        assert!(config.offsets_retention_check_interval_ms > 0);
        Coordinator {
            config,
            partitions: BTreeMap::new(),
            core: Core {
                member_id_seed,
                member_ids_issued: 0,
                sequence: 0,
                next_wait_id: 0,
                waits: BTreeMap::new(),
                deletes: BTreeMap::new(),
                effects: Vec::new(),
                earliest_new_deadline: None,
                wake_requested: None,
                loading: BTreeSet::new(),
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition of `group_id`: Kafka's
    /// `Utils.abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode`
    /// (over UTF-16 code units, wrapping) and Kafka's `Utils.abs`, which maps
    /// `Integer.MIN_VALUE` to 0 and is otherwise `Math.abs`. Clients never compute this
    /// (they ask FindCoordinator), but a cluster mixing Kafka's tools and Odradek's
    /// data must agree on it.
    pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
        assert!(partitions > 0, "offsets topic has partitions");
        let hash = group_id.encode_utf16().fold(0i32, |hash, unit| {
            hash.wrapping_mul(31).wrapping_add(i32::from(unit))
        });
        let abs = if hash == i32::MIN { 0 } else { hash.abs() };
        abs % partitions
    }

    /// Whether `request` is one of the group APIs [`Coordinator::handle`] answers.
    /// FindCoordinator is the node's: it knows who leads each offsets partition.
    pub fn handles(request: &RequestKind) -> bool {
        matches!(
            request,
            RequestKind::JoinGroup(_)
                | RequestKind::SyncGroup(_)
                | RequestKind::Heartbeat(_)
                | RequestKind::LeaveGroup(_)
                | RequestKind::OffsetCommit(_)
                | RequestKind::OffsetFetch(_)
                | RequestKind::DescribeGroups(_)
                | RequestKind::ListGroups(_)
                | RequestKind::DeleteGroups(_)
                | RequestKind::OffsetDelete(_)
        )
    }

    /// Whether this node coordinates the groups of offsets partition `partition`.
    pub fn is_loaded(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// The group `group_id`, if this node coordinates it and it exists.
    pub fn group(&self, group_id: &str) -> Option<GroupView<'_>> {
        let partition = Self::partition_for(group_id, self.config.offsets_topic_num_partitions);
        self.partitions
            .get(&partition)?
            .groups
            .get(group_id)
            .map(|group| GroupView { group })
    }

    /// The ids of every group this node coordinates.
    pub fn group_ids(&self) -> Vec<&str> {
        self.partitions
            .values()
            .flat_map(|partition| partition.groups.keys().map(String::as_str))
            .collect()
    }

    /// Handles one group request (see [`Coordinator::handles`]). `client_host` is the
    /// client's address as Kafka shows it (`/127.0.0.1`), or empty when unknown.
    pub fn handle(
        &mut self,
        now: Now,
        id: RequestId,
        request: &Request,
        client_host: &str,
    ) -> Vec<Effect> {
        let api_version = request.api_version;
        let client_id = request.client_id.as_deref().unwrap_or("");
        let parked = Parked { id, api_version };
        match &request.body {
            RequestKind::JoinGroup(join) => {
                self.join_group(now, parked, client_id, client_host, join)
            }
            RequestKind::SyncGroup(sync) => self.sync_group(now, parked, sync),
            RequestKind::Heartbeat(heartbeat) => self.heartbeat(now, parked, heartbeat),
            RequestKind::LeaveGroup(leave) => self.leave_group(now, parked, leave),
            RequestKind::OffsetCommit(commit) => self.offset_commit(now, parked, commit),
            RequestKind::OffsetFetch(fetch) => self.offset_fetch(parked, fetch),
            RequestKind::DescribeGroups(describe) => self.describe_groups(parked, describe),
            RequestKind::ListGroups(list) => self.list_groups(parked, list),
            RequestKind::DeleteGroups(delete) => self.delete_groups(now, parked, delete),
            RequestKind::OffsetDelete(delete) => self.offset_delete(now, parked, delete),
            other => panic!(
                "the node routed a request the group coordinator does not handle: {:?}",
                std::mem::discriminant(other)
            ),
        }
        self.finish()
    }

    /// The node appended `wait`'s records; `last_offset` is the offset of the batch's
    /// last record. If the high watermark is already past it, what waited is released.
    pub fn on_appended(&mut self, now: Now, wait: WaitId, last_offset: i64) -> Vec<Effect> {
        if let Some(entry) = self.core.waits.get_mut(&wait) {
            assert!(entry.last_offset.is_none(), "{wait:?} appended twice");
            entry.last_offset = Some(last_offset);
            let partition = entry.partition;
            let high_watermark = self
                .partitions
                .get(&partition)
                .map_or(-1, |p| p.high_watermark);
            #[cfg(feature = "mutants")]
            let high_watermark = if self.config.mutants.ack_before_committed {
                i64::MAX
            } else {
                high_watermark
            };
            self.release_committed(now, partition, high_watermark);
        }
        self.finish()
    }

    /// The append `wait` failed (or its records were lost before they were committed,
    /// for example by a truncation after a leader change): whoever waited is answered
    /// with Kafka's mapping of `error`.
    pub fn on_append_failed(&mut self, now: Now, wait: WaitId, error: ErrorCode) -> Vec<Effect> {
        if let Some(entry) = self.core.waits.remove(&wait) {
            self.fail(now, entry, error);
        }
        self.finish()
    }

    /// The high watermark of offsets partition `partition` advanced to
    /// `high_watermark` (the first offset not yet committed).
    pub fn on_committed(&mut self, now: Now, partition: i32, high_watermark: i64) -> Vec<Effect> {
        if let Some(loaded) = self.partitions.get_mut(&partition)
            && high_watermark > loaded.high_watermark
        {
            loaded.high_watermark = high_watermark;
            self.release_committed(now, partition, high_watermark);
        }
        self.finish()
    }

    /// Time passed: expels silent members, ends join phases and pending syncs whose
    /// time is up, and expires offsets.
    pub fn on_timer(&mut self, now: Now) -> Vec<Effect> {
        if self
            .core
            .wake_requested
            .is_some_and(|wake| wake <= now.instant)
        {
            self.core.wake_requested = None;
        }
        self.expire(now);
        self.finish()
    }

    /// This node leads offsets partition `partition` but cannot load it yet: until
    /// [`Coordinator::load`] (or [`Coordinator::unload`]) its groups' requests are
    /// answered COORDINATOR_LOAD_IN_PROGRESS instead of NOT_COORDINATOR.
    ///
    /// A new leader's log may end in records no majority holds yet; they become
    /// committed only when the leader's own epoch marker does. Groups rebuilt from
    /// them could answer a JoinGroup or SyncGroup with a generation that a later
    /// leader, lacking those records, hands out again to other members. So the node
    /// loads only once its high watermark has reached its epoch's start.
    pub fn begin_loading(&mut self, partition: i32) {
        assert!(
            !self.partitions.contains_key(&partition),
            "offsets partition {partition} is loaded already"
        );
        self.core.loading.insert(partition);
    }

    /// Whether [`Coordinator::begin_loading`] was called for `partition` and neither
    /// `load` nor `unload` since.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.core.loading.contains(&partition)
    }

    /// This node became the leader of offsets partition `partition`: rebuilds its groups
    /// from `records`, the partition's records in log order (key, value; a `None` value
    /// is a tombstone). Members of loaded groups get fresh session deadlines from
    /// `now`, as Kafka's `onGroupLoaded` does.
    pub fn load(
        &mut self,
        now: Now,
        partition: i32,
        records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>)>,
    ) -> Vec<Effect> {
        assert!(
            (0..self.config.offsets_topic_num_partitions).contains(&partition),
            "offsets partition {partition} out of range"
        );
        assert!(
            !self.partitions.contains_key(&partition),
            "offsets partition {partition} loaded twice"
        );
        self.core.loading.remove(&partition);
        self.load_partition(now, partition, records);
        self.finish()
    }

    /// This node no longer leads offsets partition `partition`: its groups are dropped
    /// and every request waiting on them is answered NOT_COORDINATOR, so that clients
    /// look the coordinator up again.
    pub fn unload(&mut self, partition: i32) -> Vec<Effect> {
        self.core.loading.remove(&partition);
        self.unload_partition(partition);
        self.finish()
    }

    /// Panics if the coordinator's state contradicts itself (TigerBeetle's habit: cheap
    /// enough to call after every event in tests and the simulator).
    pub fn check_invariants(&self) {
        for (partition, loaded) in &self.partitions {
            for (group_id, group) in &loaded.groups {
                assert_eq!(group_id, &group.group_id);
                assert_eq!(
                    Self::partition_for(group_id, self.config.offsets_topic_num_partitions),
                    *partition,
                    "group {group_id} on the wrong partition"
                );
                assert!(!group.is(GroupState::Dead), "a Dead group is kept");
                group.check_invariants();
            }
        }
        for (wait, entry) in &self.core.waits {
            assert!(
                self.partitions.contains_key(&entry.partition),
                "{wait:?} waits on an unloaded partition"
            );
        }
        for (id, delete) in &self.core.deletes {
            assert!(
                delete.waits_outstanding > 0,
                "{id:?} has nothing to wait for"
            );
        }
    }

    /// Ends a public call: asks for a wake-up if a deadline was set that is earlier
    /// than any wake-up already asked for, and hands out the effects.
    fn finish(&mut self) -> Vec<Effect> {
        if let Some(at) = self.core.earliest_new_deadline.take()
            && self.core.wake_requested.is_none_or(|wake| at < wake)
        {
            self.core.wake_requested = Some(at);
            self.core.effects.push(Effect::Wake(at));
        }
        std::mem::take(&mut self.core.effects)
    }

    /// Splits `self` into the partitions and a handler context.
    fn split(&mut self, now: Now) -> (&mut BTreeMap<i32, OffsetsPartition>, Cx<'_>) {
        let Coordinator {
            config,
            partitions,
            core,
        } = self;
        (partitions, Cx { now, config, core })
    }

    /// Releases every wait on `partition` whose records are below `high_watermark`,
    /// in log order.
    fn release_committed(&mut self, now: Now, partition: i32, high_watermark: i64) {
        let mut ready: Vec<(i64, WaitId)> = self
            .core
            .waits
            .iter()
            .filter(|(_, entry)| entry.partition == partition)
            .filter_map(|(wait, entry)| {
                entry
                    .last_offset
                    .filter(|last| *last < high_watermark)
                    .map(|last| (last, *wait))
            })
            .collect();
        ready.sort();
        for (last_offset, wait) in ready {
            let entry = self.core.waits.remove(&wait).expect("listed above");
            self.complete(now, entry, last_offset);
        }
    }

    /// Runs what waited on a committed append.
    fn complete(&mut self, now: Now, entry: Wait, last_offset: i64) {
        match entry.then {
            Then::OffsetCommit {
                parked,
                group_id,
                incarnation,
                response,
                staged,
            } => self.complete_offset_commit(
                parked,
                &group_id,
                incarnation,
                response,
                staged,
                Some(last_offset),
            ),
            Then::GroupSync {
                group_id,
                incarnation,
                generation_id,
                assignment,
            } => self.complete_group_sync(now, &group_id, incarnation, generation_id, assignment),
            Then::StaticRejoin(rejoin) => self.complete_static_rejoin(now, *rejoin, None),
            Then::DeleteGroups { id, groups } => self.complete_delete(id, &groups, None),
            Then::OffsetDelete(pending) => self.complete_offset_delete(*pending, last_offset),
            Then::Nothing => {}
        }
    }

    /// Answers what waited on a failed append.
    fn fail(&mut self, now: Now, entry: Wait, error: ErrorCode) {
        match entry.then {
            Then::OffsetCommit {
                parked,
                group_id,
                incarnation,
                response,
                staged,
            } => {
                let code = error::offset_commit_append_error(error);
                self.fail_offset_commit(parked, &group_id, incarnation, response, staged, code);
            }
            Then::GroupSync {
                group_id,
                incarnation,
                generation_id,
                ..
            } => {
                let code = error::store_group_append_error(error);
                self.fail_group_sync(now, &group_id, incarnation, generation_id, code);
            }
            Then::StaticRejoin(rejoin) => {
                let code = error::store_group_append_error(error);
                self.complete_static_rejoin(now, *rejoin, Some(code));
            }
            Then::DeleteGroups { id, groups } => {
                let code = error::store_group_append_error(error);
                self.complete_delete(id, &groups, Some(code));
            }
            Then::OffsetDelete(pending) => {
                let code = error::offset_commit_append_error(error);
                self.fail_offset_delete(*pending, code);
            }
            Then::Nothing => {}
        }
    }

    /// Drops partition `partition`'s groups, answering NOT_COORDINATOR to every parked
    /// request and waiter (Kafka's `onGroupUnloaded`).
    fn unload_partition(&mut self, partition: i32) {
        let Some(loaded) = self.partitions.remove(&partition) else {
            return;
        };
        let not_coordinator = GroupErrorCode::NotCoordinator.code();
        let now = Now {
            instant: Instant::ZERO,
            wall_clock_ms: 0,
        };
        let mut cx = Cx {
            now,
            config: &self.config,
            core: &mut self.core,
        };
        for group in loaded.groups.into_values() {
            for member in group.members.into_values() {
                if let Some(parked) = member.awaiting_join {
                    let response = membership::join_error(
                        parked.api_version,
                        &member.member_id,
                        not_coordinator,
                    );
                    cx.respond(parked.id, response);
                }
                if let Some(parked) = member.awaiting_sync {
                    cx.respond(parked.id, membership::sync_error(not_coordinator));
                }
            }
        }
        let waits: Vec<WaitId> = self
            .core
            .waits
            .iter()
            .filter(|(_, entry)| entry.partition == partition)
            .map(|(wait, _)| *wait)
            .collect();
        for wait in waits {
            let entry = self.core.waits.remove(&wait).expect("listed above");
            match entry.then {
                Then::OffsetCommit {
                    parked,
                    group_id,
                    incarnation,
                    response,
                    staged,
                } => self.fail_offset_commit(
                    parked,
                    &group_id,
                    incarnation,
                    response,
                    staged,
                    not_coordinator,
                ),
                Then::DeleteGroups { id, groups } => {
                    self.complete_delete(id, &groups, Some(not_coordinator));
                }
                Then::OffsetDelete(pending) => self.fail_offset_delete(*pending, not_coordinator),
                // Their parked requests were answered with the members above.
                Then::GroupSync { .. } | Then::StaticRejoin(_) | Then::Nothing => {}
            }
        }
    }
}
