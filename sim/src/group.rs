//! Consumer-group members: clients that read through a consumer group, the way a
//! Kafka consumer with `group.id` and `subscribe` does, and record what the group
//! told them in a `GroupHistory` for [`odradek_model::groups::check_groups`].
//!
//! ```text
//!  Find ──FindCoordinator──► Join ──JoinGroup──► (MEMBER_ID_REQUIRED: join again)
//!                                   │ leader: range-assign every partition
//!                                   ▼
//!                             Sync ──SyncGroup──► assignment ─► record it
//!                                   ▼
//!                           Offsets ──OffsetFetch──► positions (none: earliest)
//!                                   ▼
//!   Stable: one request at a time: Heartbeat when due, OffsetCommit when due,
//!           else Fetch the next assigned partition (a Poll in the main history)
//!   REBALANCE_IN_PROGRESS ─► commit what was consumed, then Join again
//!   ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID ─► Join again (a new member id for the latter)
//!   NOT_COORDINATOR, COORDINATOR_*, lost request ─► Find again
//! ```
//!
//! What is recorded, and as what:
//! - a SyncGroup answer without error: an [`Assignment`](odradek_model::groups::Assignment);
//! - each partition of an OffsetCommit: `Ok` without error; `Fail` for the errors the
//!   coordinator returns before writing anything (wrong generation or member, a
//!   rebalance under way, the coordinator still loading); `Indefinite` for everything
//!   else (a lost request, NOT_COORDINATOR: the coordinator may have appended the
//!   commit before it lost its partition, a timeout);
//! - each partition of an OffsetFetch answered without error: a `Fetched`;
//! - each fetch of records: a `Poll` in the main history, on a process of its own per
//!   assigned partition and generation (each such lane reads sequentially).
//!
//! The assignment bytes are the workload's own (`topic:partition,...`): the broker keeps
//! them opaque, so any encoding will do.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, RequestKind, ResponseKind, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use odradek_model::groups::CommitOutcome;
use odradek_model::history::{Call, Outcome, PartitionKey, ProcessId, Reply};

use crate::workload::{
    Ctx, FETCH_VERSION, LIST_OFFSETS_VERSION, MS, Phase, Shared, WorkloadPlan, fetch_partition,
    fetch_request, list_offsets_partition, list_offsets_request, polled_records, topic_name,
};

/// API versions the members speak.
const FIND_COORDINATOR_VERSION: i16 = 3;
/// JoinGroup v5: KIP-394's MEMBER_ID_REQUIRED round, and group instance ids.
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const OFFSET_COMMIT_VERSION: i16 = 5;
const OFFSET_FETCH_VERSION: i16 = 5;

/// Group error codes the members tell apart.
mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
}

/// The group every member of a seed joins.
pub const GROUP: &str = "sim-group";

/// A member's session timeout (the broker's minimum is 6 s).
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long a join phase may wait for this member.
const REBALANCE_TIMEOUT_MS: i32 = 10_000;
/// Heartbeats go out this often while Stable.
const HEARTBEAT_INTERVAL_NS: u64 = 1_000 * MS;
/// Positions are committed this often while Stable.
const COMMIT_INTERVAL_NS: u64 = 150 * MS;

/// One assigned partition.
struct Lane {
    key: PartitionKey,
    /// Next offset to read; `None` until the committed offset is known.
    position: Option<i64>,
    /// The history process its polls are recorded on.
    process: ProcessId,
    /// Highest high watermark a fetch in the liveness phase reported.
    liveness_high_watermark: Option<i64>,
    /// Highest high watermark any fetch of this lane reported.
    known_high_watermark: i64,
    /// Position last acknowledged as committed.
    committed: Option<i64>,
}

enum State {
    /// Looking for the coordinator.
    Find,
    /// Joining (or rejoining) the group.
    Join,
    /// Joined generation `generation`; syncing.
    Sync,
    /// Reading the committed offsets of the assignment.
    Offsets,
    /// Consuming.
    Stable,
    /// Committing before rejoining (a rebalance started).
    CommitThenJoin,
}

/// What the member waits for; one request at a time.
enum Pending {
    Find(u64),
    Join(u64),
    Sync(u64),
    Offsets {
        correlation: u64,
        invoked_at: u64,
    },
    Heartbeat(u64),
    Commit {
        correlation: u64,
        /// (partition, offset, history index) per committed partition.
        commits: Vec<(PartitionKey, i64, usize)>,
    },
    Poll {
        correlation: u64,
        lane: usize,
        op: usize,
        offset: i64,
    },
    Seek {
        correlation: u64,
        lane: usize,
    },
}

impl Pending {
    fn correlation(&self) -> u64 {
        match self {
            Pending::Find(c) | Pending::Join(c) | Pending::Sync(c) | Pending::Heartbeat(c) => *c,
            Pending::Offsets { correlation, .. }
            | Pending::Commit { correlation, .. }
            | Pending::Poll { correlation, .. }
            | Pending::Seek { correlation, .. } => *correlation,
        }
    }
}

/// One member of [`GROUP`], subscribed to every topic of the plan.
pub struct GroupMember {
    plan: WorkloadPlan,
    state: State,
    pending: Option<Pending>,
    /// The node that coordinates the group, once found.
    coordinator: Option<u32>,
    member_id: String,
    generation: i32,
    lanes: Vec<Lane>,
    next_lane: usize,
    next_heartbeat: u64,
    next_commit: u64,
    /// Whether a commit was acknowledged after every lane caught up in the liveness
    /// phase.
    settled: bool,
}

impl GroupMember {
    /// A member that has not joined yet.
    pub fn new(plan: &WorkloadPlan) -> GroupMember {
        GroupMember {
            plan: plan.clone(),
            state: State::Find,
            pending: None,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            lanes: Vec::new(),
            next_lane: 0,
            next_heartbeat: 0,
            next_commit: 0,
            settled: false,
        }
    }

    /// Whether the member did what the liveness phase asks: it is in a generation,
    /// caught up on every partition it owns, and committed that.
    pub fn is_done(&self, shared: &Shared) -> bool {
        shared.phase >= Phase::Liveness && matches!(self.state, State::Stable) && self.settled
    }

    /// For a liveness failure report.
    pub fn describe(&self) -> String {
        let state = match self.state {
            State::Find => "finding the coordinator",
            State::Join => "joining",
            State::Sync => "syncing",
            State::Offsets => "fetching offsets",
            State::Stable => "stable",
            State::CommitThenJoin => "committing before a rejoin",
        };
        let lanes: Vec<String> = self
            .lanes
            .iter()
            .map(|l| {
                format!(
                    "{} at {:?} (high watermark {:?})",
                    l.key, l.position, l.liveness_high_watermark
                )
            })
            .collect();
        format!(
            "group member {}: {state}, generation {}, settled {}, lanes [{}]",
            self.member_id,
            self.generation,
            self.settled,
            lanes.join(", ")
        )
    }

    fn group_id() -> GroupId {
        GroupId(StrBytes::from_static_str(GROUP))
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, body: RequestKind, version: i16, timeout_ns: u64) -> u64 {
        // Without a coordinator, any broker (as a client rotates through its bootstrap
        // list): one that is down for good must not keep the group from forming.
        let node = match self.coordinator {
            Some(node) => node,
            None => ctx.shared.any_node(),
        };
        ctx.send_to(node, body, version, Some(timeout_ns))
    }

    /// A timer came due: send the next request if none is in flight.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.shared.topics_ready {
            ctx.wake_at(ctx.now + 20 * MS);
            return;
        }
        if self.pending.is_some() {
            return;
        }
        match self.state {
            State::Find => self.find_coordinator(ctx),
            State::Join => self.join(ctx),
            State::Sync | State::Offsets => {
                unreachable!("sync and offset fetches are sent as their predecessor answers")
            }
            State::CommitThenJoin => {
                if !self.commit(ctx) {
                    self.state = State::Join;
                    ctx.wake_at(ctx.now);
                }
            }
            State::Stable => self.tick_stable(ctx),
        }
    }

    /// Asks any broker which one coordinates the group.
    fn find_coordinator(&mut self, ctx: &mut Ctx<'_>) {
        let body = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str(GROUP))
                .with_key_type(0),
        );
        // Any broker answers FindCoordinator.
        self.coordinator = None;
        let timeout = self.plan.request_timeout_ns;
        let correlation = self.send(ctx, body, FIND_COORDINATOR_VERSION, timeout);
        self.pending = Some(Pending::Find(correlation));
    }

    /// Sends JoinGroup with this member's subscription.
    fn join(&mut self, ctx: &mut Ctx<'_>) {
        let subscription = self.subscription();
        let body = RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(Self::group_id())
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(subscription),
                ]),
        );
        // A join waits for the whole join phase (Kafka's client allows the
        // rebalance timeout plus a margin).
        let join_timeout =
            self.plan.request_timeout_ns + (REBALANCE_TIMEOUT_MS as u64 + 5_000) * MS;
        let correlation = self.send(ctx, body, JOIN_GROUP_VERSION, join_timeout);
        self.pending = Some(Pending::Join(correlation));
    }

    /// A member of a generation: a heartbeat when one is due, else a commit when one is
    /// due, else a poll of its partitions.
    fn tick_stable(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.now >= self.next_heartbeat {
            let body = RequestKind::Heartbeat(
                HeartbeatRequest::default()
                    .with_group_id(Self::group_id())
                    .with_generation_id(self.generation)
                    .with_member_id(StrBytes::from_string(self.member_id.clone())),
            );
            let timeout = self.plan.request_timeout_ns;
            let correlation = self.send(ctx, body, HEARTBEAT_VERSION, timeout);
            self.pending = Some(Pending::Heartbeat(correlation));
            self.next_heartbeat = ctx.now + HEARTBEAT_INTERVAL_NS;
            return;
        }
        if ctx.now >= self.next_commit {
            self.next_commit = ctx.now + COMMIT_INTERVAL_NS;
            if self.commit(ctx) {
                return;
            }
        }
        if self.lanes.is_empty() {
            // Nothing to read: in the liveness phase, being in a generation is
            // all a member without partitions can do.
            if ctx.shared.phase >= Phase::Liveness {
                self.settled = true;
            }
            let at = self.next_heartbeat.min(self.next_commit);
            ctx.wake_at(at);
            return;
        }
        self.poll(ctx);
    }

    /// Sends an OffsetCommit of every lane's position that moved since its last
    /// acknowledged commit. Returns whether one was sent.
    fn commit(&mut self, ctx: &mut Ctx<'_>) -> bool {
        // Once caught up in the liveness phase, commit every position (moved or not)
        // so that an acknowledged commit proves the member settled.
        let settling = ctx.shared.phase >= Phase::Liveness && !self.settled && self.caught_up();
        let mut commits = Vec::new();
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for lane in &self.lanes {
            let Some(position) = lane.position else {
                continue;
            };
            if lane.committed == Some(position) && !settling {
                continue;
            }
            let index = ctx.groups.commits.len() + commits.len();
            commits.push((lane.key.clone(), position, index));
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(lane.key.partition)
                .with_committed_offset(position);
            match topics
                .iter_mut()
                .find(|t| t.name.0.as_str() == lane.key.topic)
            {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(&lane.key.topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        if commits.is_empty() {
            return false;
        }
        for (key, offset, _) in &commits {
            ctx.groups.commit(
                GROUP,
                &self.member_id,
                self.generation,
                key.clone(),
                *offset,
                ctx.now,
                u64::MAX,
                CommitOutcome::Indefinite,
            );
        }
        let body = RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(Self::group_id())
                .with_generation_id_or_member_epoch(self.generation)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_topics(topics),
        );
        let timeout = self.plan.request_timeout_ns;
        let correlation = self.send(ctx, body, OFFSET_COMMIT_VERSION, timeout);
        self.pending = Some(Pending::Commit {
            correlation,
            commits,
        });
        true
    }

    fn poll(&mut self, ctx: &mut Ctx<'_>) {
        let lane = self.next_lane % self.lanes.len();
        self.next_lane = (lane + 1) % self.lanes.len();
        let Some(offset) = self.lanes[lane].position else {
            ctx.wake_at(ctx.now + MS);
            return;
        };
        let key = self.lanes[lane].key.clone();
        let op = ctx.invoke(self.lanes[lane].process, &key, Call::Poll { offset });
        // One partition per fetch: a caught-up partition must not make a member with a
        // backlog elsewhere wait out max_wait_ms on every round (a real consumer
        // fetches all its partitions in one request). After healing, read big.
        let backlog_elsewhere = self.lanes.iter().enumerate().any(|(index, other)| {
            index != lane
                && other
                    .position
                    .is_some_and(|p| p < other.known_high_watermark)
        });
        let max_wait_ms = if backlog_elsewhere {
            0
        } else {
            self.plan.fetch_max_wait_ms
        };
        let max_bytes = if ctx.shared.phase >= Phase::Liveness {
            1 << 20
        } else {
            64 << 10
        };
        let request = fetch_request(&key, offset, max_wait_ms, 0, max_bytes);
        let timeout = self.plan.request_timeout_ns + self.plan.fetch_max_wait_ms as u64 * MS;
        // Records come from the partition's leader, not from the coordinator.
        let correlation = ctx.send_to_leader(&key, request, FETCH_VERSION, Some(timeout));
        self.pending = Some(Pending::Poll {
            correlation,
            lane,
            op,
            offset,
        });
    }

    /// The member's subscription: every topic of the plan, in the workload's encoding.
    fn subscription(&self) -> Bytes {
        let names: Vec<&str> = self.plan.topics.iter().map(|(t, _)| t.as_str()).collect();
        Bytes::from(names.join(","))
    }

    /// Kafka's range assignor over the plan's topics: per topic, partitions in order,
    /// split into contiguous runs over the members sorted by id, the first members
    /// taking one more when the split is uneven.
    fn assign(&self, members: &[String]) -> Vec<(String, Bytes)> {
        let mut sorted: Vec<String> = members.to_vec();
        sorted.sort();
        let mut owned: Vec<Vec<String>> = vec![Vec::new(); sorted.len()];
        for (topic, count) in &self.plan.topics {
            let count = usize::try_from(*count).unwrap_or(0);
            let per = count / sorted.len();
            let extra = count % sorted.len();
            let mut next = 0;
            for (index, owned) in owned.iter_mut().enumerate() {
                let take = per + usize::from(index < extra);
                for partition in next..next + take {
                    owned.push(format!("{topic}:{partition}"));
                }
                next += take;
            }
        }
        sorted
            .into_iter()
            .zip(owned)
            .map(|(member, owned)| (member, Bytes::from(owned.join(","))))
            .collect()
    }

    fn rejoin(&mut self, ctx: &mut Ctx<'_>, forget_member_id: bool) {
        if forget_member_id {
            self.member_id.clear();
        }
        self.lanes.clear();
        self.settled = false;
        self.state = State::Join;
        ctx.shared.count("group.rejoin");
        let at = ctx.backoff();
        ctx.wake_at(at);
    }

    fn refind(&mut self, ctx: &mut Ctx<'_>) {
        self.state = State::Find;
        self.lanes.clear();
        self.settled = false;
        ctx.shared.count("group.refind");
        let at = ctx.backoff();
        ctx.wake_at(at);
    }

    /// A response arrived.
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if self.pending.as_ref().map(Pending::correlation) != Some(correlation) {
            ctx.shared.count("client.late-response");
            return;
        }
        match self.pending.take().expect("checked") {
            Pending::Find(_) => self.on_found(ctx, response),
            Pending::Join(_) => self.on_joined(ctx, response),
            Pending::Sync(_) => {
                let ResponseKind::SyncGroup(synced) = response else {
                    unreachable!("answered in kind")
                };
                match synced.error_code {
                    code::NONE => self.assigned(ctx, &synced.assignment),
                    code::UNKNOWN_MEMBER_ID => self.rejoin(ctx, true),
                    code::NOT_COORDINATOR
                    | code::COORDINATOR_NOT_AVAILABLE
                    | code::COORDINATOR_LOAD_IN_PROGRESS => self.refind(ctx),
                    _ => self.rejoin(ctx, false),
                }
            }
            Pending::Offsets { invoked_at, .. } => {
                self.on_offsets_fetched(ctx, response, invoked_at)
            }
            Pending::Heartbeat(_) => self.on_heartbeat(ctx, response),
            Pending::Commit { commits, .. } => self.on_committed(ctx, response, commits),
            Pending::Poll {
                lane, op, offset, ..
            } => self.on_polled(ctx, response, lane, op, offset),
            Pending::Seek { lane, .. } => {
                if let Some((code::NONE, offset)) = list_offsets_partition(response)
                    && offset >= 0
                {
                    // A new process: the lane's reads no longer follow on.
                    let process = ctx.shared.process();
                    self.lanes[lane].position = Some(offset);
                    self.lanes[lane].process = process;
                }
                ctx.wake_at(ctx.now + MS);
            }
        }
    }

    /// FindCoordinator answered: join through the coordinator, or ask again later.
    fn on_found(&mut self, ctx: &mut Ctx<'_>, response: &ResponseKind) {
        let ResponseKind::FindCoordinator(found) = response else {
            unreachable!("answered in kind")
        };
        if found.error_code == code::NONE && found.node_id.0 >= 1 {
            // Node ids are 1-based; the world's nodes are indexed from 0.
            self.coordinator = Some(u32::try_from(found.node_id.0 - 1).unwrap_or(0));
            self.state = State::Join;
            ctx.wake_at(ctx.now);
        } else {
            let at = ctx.backoff();
            ctx.wake_at(at);
        }
    }

    /// JoinGroup answered: the leader assigns the partitions, and every member syncs.
    fn on_joined(&mut self, ctx: &mut Ctx<'_>, response: &ResponseKind) {
        let ResponseKind::JoinGroup(joined) = response else {
            unreachable!("answered in kind")
        };
        match joined.error_code {
            code::NONE => {
                self.member_id = joined.member_id.as_str().to_string();
                self.generation = joined.generation_id;
                let assignments = if joined.leader == joined.member_id {
                    let members: Vec<String> = joined
                        .members
                        .iter()
                        .map(|m| m.member_id.as_str().to_string())
                        .collect();
                    self.assign(&members)
                } else {
                    Vec::new()
                };
                let body = RequestKind::SyncGroup(
                    SyncGroupRequest::default()
                        .with_group_id(Self::group_id())
                        .with_generation_id(self.generation)
                        .with_member_id(joined.member_id.clone())
                        .with_assignments(
                            assignments
                                .into_iter()
                                .map(|(member, assignment)| {
                                    SyncGroupRequestAssignment::default()
                                        .with_member_id(StrBytes::from_string(member))
                                        .with_assignment(assignment)
                                })
                                .collect(),
                        ),
                );
                let timeout =
                    self.plan.request_timeout_ns + (REBALANCE_TIMEOUT_MS as u64 + 5_000) * MS;
                let correlation = self.send(ctx, body, SYNC_GROUP_VERSION, timeout);
                self.pending = Some(Pending::Sync(correlation));
                self.state = State::Sync;
            }
            code::MEMBER_ID_REQUIRED => {
                self.member_id = joined.member_id.as_str().to_string();
                ctx.wake_at(ctx.now);
            }
            code::UNKNOWN_MEMBER_ID => self.rejoin(ctx, true),
            code::NOT_COORDINATOR
            | code::COORDINATOR_NOT_AVAILABLE
            | code::COORDINATOR_LOAD_IN_PROGRESS => self.refind(ctx),
            _ => self.rejoin(ctx, false),
        }
    }

    /// OffsetFetch answered: each lane starts from its committed offset (or the
    /// earliest), recorded in the group history.
    fn on_offsets_fetched(&mut self, ctx: &mut Ctx<'_>, response: &ResponseKind, invoked_at: u64) {
        let ResponseKind::OffsetFetch(fetched) = response else {
            unreachable!("answered in kind")
        };
        match fetched.error_code {
            code::NONE => {}
            code::NOT_COORDINATOR
            | code::COORDINATOR_NOT_AVAILABLE
            | code::COORDINATOR_LOAD_IN_PROGRESS => return self.refind(ctx),
            _ => return self.rejoin(ctx, false),
        }
        for topic in &fetched.topics {
            for partition in &topic.partitions {
                let key = PartitionKey {
                    topic: topic.name.0.as_str().to_string(),
                    partition: partition.partition_index,
                };
                if partition.error_code != code::NONE {
                    continue;
                }
                let committed =
                    (partition.committed_offset >= 0).then_some(partition.committed_offset);
                ctx.groups
                    .fetched(GROUP, key.clone(), committed, invoked_at, ctx.now);
                if committed.is_some() {
                    ctx.shared.count("group.offset-fetched");
                }
                if let Some(lane) = self.lanes.iter_mut().find(|l| l.key == key) {
                    // No committed offset: auto.offset.reset=earliest.
                    lane.position = Some(committed.unwrap_or(0));
                    lane.committed = committed;
                }
            }
        }
        if self.lanes.iter().any(|l| l.position.is_none()) {
            // A partition the answer left out: ask again.
            self.fetch_offsets(ctx);
            return;
        }
        self.state = State::Stable;
        ctx.wake_at(ctx.now);
    }

    /// Heartbeat answered: carry on, or join again as the coordinator asks.
    fn on_heartbeat(&mut self, ctx: &mut Ctx<'_>, response: &ResponseKind) {
        let ResponseKind::Heartbeat(beat) = response else {
            unreachable!("answered in kind")
        };
        match beat.error_code {
            code::NONE => ctx.wake_at(ctx.now),
            code::REBALANCE_IN_PROGRESS => {
                // Eager protocol: commit what was consumed, give everything up,
                // join again.
                self.state = State::CommitThenJoin;
                ctx.wake_at(ctx.now);
            }
            code::UNKNOWN_MEMBER_ID => self.rejoin(ctx, true),
            code::ILLEGAL_GENERATION => self.rejoin(ctx, false),
            _ => self.refind(ctx),
        }
    }

    /// OffsetCommit answered: each commit's outcome goes into the group history, then
    /// the member carries on or joins again as the worst error asks.
    fn on_committed(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: &ResponseKind,
        commits: Vec<(PartitionKey, i64, usize)>,
    ) {
        let ResponseKind::OffsetCommit(committed) = response else {
            unreachable!("answered in kind")
        };
        let mut all_ok = true;
        let mut worst = code::NONE;
        for (key, offset, index) in commits {
            let error = committed
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == key.topic)
                .and_then(|t| {
                    t.partitions
                        .iter()
                        .find(|p| p.partition_index == key.partition)
                })
                .map_or(code::NOT_COORDINATOR, |p| p.error_code);
            let outcome = match error {
                code::NONE => CommitOutcome::Ok,
                code::ILLEGAL_GENERATION
                | code::UNKNOWN_MEMBER_ID
                | code::REBALANCE_IN_PROGRESS
                | code::COORDINATOR_LOAD_IN_PROGRESS => CommitOutcome::Fail,
                _ => CommitOutcome::Indefinite,
            };
            let record = &mut ctx.groups.commits[index];
            record.completed_at = ctx.now;
            record.outcome = outcome;
            if outcome == CommitOutcome::Ok {
                ctx.shared.count("group.commit-ok");
                if let Some(lane) = self.lanes.iter_mut().find(|l| l.key == key) {
                    lane.committed = Some(offset);
                }
            } else {
                all_ok = false;
                worst = error;
            }
        }
        if all_ok && ctx.shared.phase >= Phase::Liveness && self.caught_up() {
            self.settled = true;
        }
        match (&self.state, worst) {
            (State::CommitThenJoin, _) => {
                self.state = State::Join;
                ctx.wake_at(ctx.now);
            }
            (_, code::NONE) => ctx.wake_at(ctx.now),
            (_, code::REBALANCE_IN_PROGRESS) => self.rejoin(ctx, false),
            (_, code::ILLEGAL_GENERATION) => self.rejoin(ctx, false),
            (_, code::UNKNOWN_MEMBER_ID) => self.rejoin(ctx, true),
            _ => self.refind(ctx),
        }
    }

    /// A poll answered: the records complete the operation, or the lane seeks back to
    /// the earliest offset when its position is out of range.
    fn on_polled(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: &ResponseKind,
        lane: usize,
        op: usize,
        offset: i64,
    ) {
        let (error, high_watermark, records) =
            fetch_partition(response).expect("a fetch answered with a fetch response");
        match error {
            code::NONE => match polled_records(&records, offset) {
                Ok(records) => {
                    if let Some((last, _)) = records.last() {
                        self.lanes[lane].position = Some(last + 1);
                    }
                    let known = &mut self.lanes[lane].known_high_watermark;
                    *known = (*known).max(high_watermark);
                    if ctx.shared.phase >= Phase::Liveness {
                        let known = &mut self.lanes[lane].liveness_high_watermark;
                        *known = Some(known.unwrap_or(0).max(high_watermark));
                    }
                    ctx.complete(op, Outcome::Ok(Reply::Polled { records }));
                    let at = ctx.now + ctx.rng.below(5 * MS);
                    ctx.wake_at(at);
                }
                Err(reason) => {
                    ctx.complete(op, Outcome::Fail(reason));
                    let at = ctx.backoff();
                    ctx.wake_at(at);
                }
            },
            code::OFFSET_OUT_OF_RANGE => {
                ctx.complete(op, Outcome::Fail("offset out of range".into()));
                let request = list_offsets_request(&self.lanes[lane].key, -2);
                let key = self.lanes[lane].key.clone();
                let correlation = ctx.send_to_leader(
                    &key,
                    request,
                    LIST_OFFSETS_VERSION,
                    Some(self.plan.request_timeout_ns),
                );
                self.pending = Some(Pending::Seek { correlation, lane });
            }
            error => {
                ctx.complete(op, Outcome::Fail(format!("error {error}")));
                let at = ctx.backoff();
                ctx.wake_at(at);
            }
        }
    }

    /// Every lane read up to the high watermark a liveness-phase fetch reported.
    fn caught_up(&self) -> bool {
        self.lanes.iter().all(|lane| {
            matches!((lane.position, lane.liveness_high_watermark), (Some(p), Some(hw)) if p >= hw)
        })
    }

    fn assigned(&mut self, ctx: &mut Ctx<'_>, assignment: &Bytes) {
        let text = String::from_utf8_lossy(assignment);
        let mut partitions = BTreeSet::new();
        for entry in text.split(',').filter(|e| !e.is_empty()) {
            if let Some((topic, partition)) = entry.rsplit_once(':')
                && let Ok(partition) = partition.parse::<i32>()
            {
                partitions.insert(PartitionKey {
                    topic: topic.to_string(),
                    partition,
                });
            }
        }
        ctx.groups.assigned(
            GROUP,
            &self.member_id,
            self.generation,
            partitions.iter().cloned().collect(),
            ctx.now,
        );
        ctx.shared.count("group.assigned");
        self.lanes = partitions
            .into_iter()
            .map(|key| Lane {
                key,
                position: None,
                process: ctx.shared.process(),
                liveness_high_watermark: None,
                known_high_watermark: 0,
                committed: None,
            })
            .collect();
        self.next_lane = 0;
        self.settled = false;
        self.next_heartbeat = ctx.now + HEARTBEAT_INTERVAL_NS;
        self.next_commit = ctx.now + COMMIT_INTERVAL_NS;
        if self.lanes.is_empty() {
            self.state = State::Stable;
            ctx.wake_at(ctx.now);
        } else {
            self.fetch_offsets(ctx);
        }
    }

    fn fetch_offsets(&mut self, ctx: &mut Ctx<'_>) {
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for lane in &self.lanes {
            match topics
                .iter_mut()
                .find(|t| t.name.0.as_str() == lane.key.topic)
            {
                Some(topic) => topic.partition_indexes.push(lane.key.partition),
                None => topics.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(&lane.key.topic))
                        .with_partition_indexes(vec![lane.key.partition]),
                ),
            }
        }
        let body = RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_group_id(Self::group_id())
                .with_topics(Some(topics)),
        );
        let timeout = self.plan.request_timeout_ns;
        let invoked_at = ctx.now;
        let correlation = self.send(ctx, body, OFFSET_FETCH_VERSION, timeout);
        self.pending = Some(Pending::Offsets {
            correlation,
            invoked_at,
        });
        self.state = State::Offsets;
    }

    /// A request was lost (timeout, broken connection, the coordinator's node down).
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        if self.pending.as_ref().map(Pending::correlation) != Some(correlation) {
            return;
        }
        match self.pending.take().expect("checked") {
            Pending::Poll { op, .. } => {
                ctx.complete(op, Outcome::Indefinite("lost".to_string()));
                let at = ctx.backoff();
                ctx.wake_at(at);
                return;
            }
            Pending::Seek { .. } => {
                let at = ctx.backoff();
                ctx.wake_at(at);
                return;
            }
            Pending::Commit { commits, .. } => {
                // Indefinite, as recorded at the invocation; the run's end time marks
                // when the member stopped waiting.
                for (_, _, index) in commits {
                    ctx.groups.commits[index].completed_at = u64::MAX;
                }
            }
            _ => {}
        }
        // Anything the coordinator should have answered: find it again.
        self.refind(ctx);
    }
}
