//! The simulated world: one seeded event queue, global time, nodes, clients, the
//! network between them, the nemesis that breaks things, and the checks that run
//! after every step.
//!
//! ```text
//!   BinaryHeap<(time, seq)> ──pop──► node event ──► Node::handle ──► SimIo buffers
//!        ▲                              │                            (timers, syncs, responses)
//!        │                              ▼                                    │
//!        └──── schedule ◄──── checks (invariants) ◄──────────────────────────┘
//!                                       │
//!   client event ──► Client state machine ──► requests through the Network
//!   nemesis event ──► crash / kill / pause / restart / partition / clog / ENOSPC / clock
//! ```
//!
//! Ties in time are broken by insertion order, so the run is a pure function of the
//! seed. Nothing here reads a clock, spawns a thread or touches the OS.
//!
//! # Fault model (process) and BUGGIFY
//!
//! - **crash** (power loss): the `Node` is dropped mid-flight; the disk keeps its
//!   durable state plus a random subset of unsynced writes, torn at sector granularity
//!   (`disk.rs`); in-flight requests are lost (their clients see the connection drop)
//!   and pending syncs never complete. The node is restarted after a seeded delay with
//!   `Node::open` on the same disk.
//! - **kill** (process crash): the same, but the page cache survives: unsynced writes
//!   stay readable, and syncs already issued still complete in the "kernel".
//! - **pause** (a GC-like stall): no event reaches the node for a while; then they
//!   arrive in a burst, in their original order.
//! - **restart**: a clean `Node::shutdown` and a new `Node::open`.
//! - **fatal**: when the node declares itself unable to go on (`Node::fatal`, after its
//!   metadata log failed a sync), the supervisor restarts it like a kill.
//! - A failure of `Node::open` is a finding unless an injected disk fault fired while
//!   it ran (then recovery may legitimately be impossible for now: it is retried, and
//!   succeeds once faults heal).
//! - **wipe** (clusters of three or more, once per run, [`World::wipe`]): a power loss,
//!   and the disk is replaced by an empty one nobody formatted (the world formats
//!   every cluster broker once before its first start, as the operator's
//!   `odradek format`). The broker must refuse to start on it, for good; the others
//!   must keep every acknowledged record and finish the workload without it.
//! - **BUGGIFY**: core code asks `Io::buggify(site)`; a site is on for a seed with
//!   probability 1/2 and then fires with the seed's rate (`node.rs`). Sites:
//!   `produce-early-roll`, `fetch-short-read`, `producer-id-new-block`,
//!   `maintenance-early`.
//!
//! # Checks after every step
//!
//! - `Node::check_invariants()` (the node's own assertions);
//! - per partition, the high watermark and log start offset a node reports never go
//!   back within one incarnation, and never fall below an acknowledged offset, across
//!   restarts too (also checked on the node's state right after it opens);
//! - every batch a fetch returns passes its CRC and lies wholly below the high
//!   watermark reported with it;
//! - no response to a request that was never delivered (or was answered already);
//!   a Produce with `acks=0` is never answered;
//! - after the final reads: every acknowledged record is at its acknowledged offset;
//! - in a cluster: the checks of `check_leaders`, `check_votes_durable` and
//!   `check_cluster_at_end`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use kafka_protocol::messages::{RequestKind, ResponseKind};
use odradek_log::io::{Instant, IoId, TimerId};
use odradek_model::groups::GroupHistory;
use odradek_model::history::{Call, History, Outcome, PartitionKey, Reply};
use odradek_replication::peer::PeerMessage;
use odradek_replication::raft::Message;
use odradek_replication::replica::{decode_hard_state, hard_state_paths, newest_hard_state};
use odradek_replication::{
    Event as NodeEvent, Node, NodeConfig, NodeError, Request, RequestId, TopicPartition,
};

use crate::client::Client;
use crate::clock::{NodeClock, WALL_STEP_MS_MAX};
use crate::disk::SimDisk;
use crate::faults::{FaultClass, FaultPlan, Nemesis};
use crate::group::GroupMember;
use crate::network::{Endpoint, Network};
use crate::node::{Buggify, HeldRequest, SimIo, SimNode};
use crate::records::decode_batches;
use crate::rng::{SimRng, mix};
use crate::timeline::{TimelineEvent, TimelineKind};
use crate::trace::{Fnv64, Trace, TraceKind};
use crate::workload::{
    Admin, Consumer, Ctx, FinalReader, MetadataClient, Outgoing, Phase, Producer, Shared,
    WorkloadPlan,
};

const MS: u64 = 1_000_000;

/// Random streams, so adding draws to one part does not shift the others.
mod stream {
    pub const PLAN: u64 = 1;
    pub const WORLD: u64 = 2;
    pub const CLIENTS: u64 = 3;
    /// Media rot: whether a seed has it, when it strikes and where (its own stream,
    /// so that seeds drawn before it existed keep their plans and workloads).
    pub const ROT: u64 = 4;
    /// Misdirected writes, likewise.
    pub const MISDIRECT: u64 = 5;
    /// The disk wipe, likewise.
    pub const WIPE: u64 = 6;
    pub const NODE_BASE: u64 = 100;
}

/// One queued event.
#[derive(Debug)]
enum Event {
    NodeStart {
        node: u32,
    },
    NodeTimer {
        node: u32,
        incarnation: u64,
        at: Instant,
        timer: TimerId,
    },
    NodeSync {
        node: u32,
        incarnation: u64,
        io: IoId,
    },
    /// A bundle from another broker arrives.
    PeerDelivery {
        node: u32,
        from: u32,
        message: Box<PeerMessage>,
    },
    NodeRequest {
        node: u32,
        client: u32,
        correlation: u64,
        acks_zero: bool,
        request: Box<Request>,
    },
    ClientResponse {
        client: u32,
        correlation: u64,
        response: Box<ResponseKind>,
    },
    ClientLost {
        client: u32,
        correlation: u64,
        why: &'static str,
    },
    ClientWake {
        client: u32,
    },
    Nemesis(Nemesis),
    /// Media rot strikes ([`World::rot`]).
    Rot,
    /// A misdirected write is armed ([`World::misdirect`]).
    Misdirect,
    /// A broker loses its disk ([`World::wipe`]).
    Wipe,
    /// An armed crash or kill that found no writes in flight strikes now.
    CrashNow {
        node: u32,
    },
    Heal,
    LivenessDeadline,
}

struct Queued {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Queued) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Queued) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Queued) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Events processed at most in one run: a bound that turns a livelock in the
/// simulated code into a failure instead of a hang.
pub const EVENTS_MAX: u64 = 50_000_000;

/// Per node incarnation `(node, incarnation)`: the highest `(high watermark, log start
/// offset)` it reported for one partition.
type Reported = BTreeMap<(u32, u64), (i64, i64)>;

/// Where media rot may strike a batch's record data on `disk` (node `index`): the
/// batches of [`crate::disk::durable_record_data`] in data partitions whose replicas
/// rot has struck on this node only, if at all.
fn record_rot_candidates(
    disk: &odradek_log::mem_disk::MemDisk,
    index: u32,
    rot_targets: &BTreeMap<String, u32>,
) -> Vec<(String, u64, u64)> {
    crate::disk::durable_record_data(disk)
        .into_iter()
        .filter(|(path, _, _)| {
            let dir = path.split_once('/').map_or("", |(dir, _)| dir);
            rot_targets.get(dir).is_none_or(|&target| target == index)
        })
        .collect()
}

/// Where media rot may strike a synced-through record on `disk`: a slot whose loss
/// leaves the record vouching for as much as before (the older slot, or either when
/// both say the same), so that no damaged batch becomes one recovery takes for a
/// torn write.
fn synced_record_rot_candidates(disk: &odradek_log::mem_disk::MemDisk) -> Vec<(String, u64, u64)> {
    let name = odradek_log::synced::SYNCED_THROUGH_FILE;
    let mut candidates = Vec::new();
    for path in disk.file_paths() {
        if !path.ends_with(&format!("/{name}")) {
            continue;
        }
        let Some(bytes) = disk.durable_contents(&path) else {
            continue;
        };
        let Some(answer) = odradek_log::synced::synced_through(&bytes) else {
            continue;
        };
        let slots = odradek_log::synced::decode_slots(&bytes);
        for k in 0..2u64 {
            if slots[k as usize].is_some()
                && slots[1 - k as usize].is_some_and(|(_, offset)| offset >= answer)
            {
                let (start, len) = odradek_log::synced::slot_range(k);
                candidates.push((path.clone(), start, len));
            }
        }
    }
    candidates
}

/// Where media rot may strike a segment's index files on `disk`: either file of a
/// sealed segment of a data partition whose batches all lie below the partition's
/// durable synced-through record, so that the record still proves them durable when
/// recovery no longer trusts the index files.
fn index_rot_candidates(disk: &odradek_log::mem_disk::MemDisk) -> Vec<(String, u64, u64)> {
    let paths = disk.file_paths();
    let mut candidates = Vec::new();
    for path in &paths {
        let Some(stem) = path.strip_suffix(".log") else {
            continue;
        };
        let Some((dir, name)) = stem.split_once('/') else {
            continue;
        };
        if dir.starts_with("__") {
            continue;
        }
        let synced_through = crate::disk::durable_synced_through(disk, dir);
        // The segment ends where the next one begins.
        let Ok(base) = name.parse::<i64>() else {
            continue;
        };
        let next_base = paths
            .iter()
            .filter_map(|other| other.strip_prefix(&format!("{dir}/"))?.strip_suffix(".log"))
            .filter_map(|other| other.parse::<i64>().ok())
            .filter(|&other| other > base)
            .min();
        if next_base.is_none_or(|next| next > synced_through) {
            continue;
        }
        for suffix in ["index", "timeindex"] {
            let index_path = format!("{stem}.{suffix}");
            if let Some(bytes) = disk.durable_contents(&index_path)
                && !bytes.is_empty()
            {
                candidates.push((index_path, 0, bytes.len() as u64));
            }
        }
    }
    candidates
}

/// Where media rot may strike a Raft hard state on `disk`: either copy of a group
/// (partition or metadata) whose two copies hold the same state now, so that the other
/// one answers for it (decision 0010, item 4).
fn hard_state_rot_candidates(disk: &odradek_log::mem_disk::MemDisk) -> Vec<(String, u64, u64)> {
    let name = odradek_replication::replica::HARD_STATE_FILE;
    let copy = odradek_replication::replica::HARD_STATE_COPY_FILE;
    let mut candidates = Vec::new();
    for path in disk.file_paths() {
        let Some(dir) = path.strip_suffix(&format!("/{name}")) else {
            continue;
        };
        let copy_path = format!("{dir}/{copy}");
        let (Some(first), Some(second)) = (
            disk.durable_contents(&path),
            disk.durable_contents(&copy_path),
        ) else {
            continue;
        };
        if first == second && decode_hard_state(&first).is_some() {
            candidates.push((path.clone(), 0, first.len() as u64));
            candidates.push((copy_path, 0, second.len() as u64));
        }
    }
    candidates
}

/// The hard state a restart of the node would read for `group`: the newer valid one of
/// its two durable copies.
fn durable_hard_state(
    disk: &odradek_log::mem_disk::MemDisk,
    group: &odradek_replication::peer::GroupId,
) -> Option<odradek_replication::raft::HardState> {
    let [first, second] = hard_state_paths(group).map(|path| disk.durable_contents(&path));
    newest_hard_state(first.as_deref(), second.as_deref())
}

/// Salt for the draw of how many group members a seed has.
const GROUP_MEMBERS_SALT: u64 = 0x67_726f_7570;

/// Salt for the directory ids of a cluster's brokers (hashed from the seed).
const DIRECTORY_ID_SALT: u64 = 0x64_6972_6964;

/// What the world needs to build a run.
pub struct WorldConfig {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Faults allowed.
    pub faults: crate::faults::FaultSet,
    /// Length of the safety phase.
    pub duration_ns: u64,
    /// Bound of the liveness phase.
    pub liveness_bound_ns: u64,
    /// Idempotent producers (else plain ones whose retries may duplicate).
    pub idempotent: bool,
    /// Syncs lie (mutant).
    pub fsync_lies: bool,
    /// Keep the trace as text.
    pub keep_trace: bool,
    /// Print the trace as it goes.
    pub echo_trace: bool,
    /// Classes switched off after the plan is drawn (`None`: keep what the seed drew).
    pub keep_faults: Option<crate::faults::FaultSet>,
    /// Nemesis events from this number on are skipped.
    pub nemeses_max: Option<u64>,
    /// Nemesis events skipped by number.
    pub nemesis_skip: BTreeSet<u64>,
    /// Add consumer-group members to the workload.
    pub groups: bool,
    /// The node configuration's log mutants.
    #[cfg(feature = "mutants")]
    pub mutants: odradek_log::mutants::Mutants,
    /// The group coordinator's mutants.
    #[cfg(feature = "mutants")]
    pub group_mutants: odradek_replication::group::GroupMutants,
    /// The Raft groups' mutants.
    #[cfg(feature = "mutants")]
    pub raft_mutants: odradek_replication::raft::RaftMutants,
}

/// How a run ended, before the history checkers ran.
#[derive(Debug)]
pub enum Ending {
    /// The final reads completed.
    Complete,
    /// A safety check failed.
    Safety(String),
    /// The liveness phase did not finish in time.
    Liveness(String),
}

/// The simulated world.
pub struct World {
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    rng: SimRng,
    client_rng: SimRng,
    nodes: Vec<SimNode>,
    node_config: NodeConfig,
    clients: Vec<Client>,
    client_wake_ns: Vec<u64>,
    network: Network,
    /// The history every client records into.
    pub history: History,
    /// What consumer-group members were told (empty without `--groups`).
    pub groups: GroupHistory,
    /// State the clients share.
    pub shared: Shared,
    /// The trace.
    pub trace: Trace,
    /// The seed's fault plan.
    pub plan: FaultPlan,
    /// The seed's workload.
    pub workload: WorkloadPlan,
    counters: BTreeMap<&'static str, u64>,
    violation: Option<String>,
    next_correlation: u64,
    seed: u64,
    duration_ns: u64,
    liveness_bound_ns: u64,
    liveness_deadline_ns: u64,
    /// High watermark and log start offset each node incarnation reported, per partition.
    reported: BTreeMap<TopicPartition, Reported>,
    /// Offset after the last acknowledged record, per partition.
    acknowledged_end: BTreeMap<TopicPartition, i64>,
    /// Topics whose creation was acknowledged.
    topics_acknowledged: BTreeSet<String>,
    ending: Option<Ending>,
    events: u64,
    /// What the nemesis and the supervisor did, for people (not hashed).
    pub timeline: Vec<TimelineEvent>,
    /// The client that invoked each operation of the history, by index.
    operation_clients: Vec<u32>,
    /// Nemesis events drawn so far (skipped ones too): the next one's number.
    nemeses_drawn: u64,
    /// Nemesis events applied.
    nemeses_applied: u64,
    nemeses_max: Option<u64>,
    nemesis_skip: BTreeSet<u64>,
    /// The client whose response failed a check, if one did.
    violation_client: Option<u32>,
    /// Operations a failed check concerns, with why.
    violation_marks: BTreeMap<usize, String>,
    /// In a cluster: per partition (and [`metadata_key`] for the metadata quorum),
    /// the node that led it in each epoch it was led in.
    leaders: BTreeMap<TopicPartition, BTreeMap<i32, u32>>,
    /// The key of the metadata quorum in `leaders`, built once.
    metadata_key: TopicPartition,
    /// Draws of media rot: when, which node, which byte.
    rot_rng: SimRng,
    /// Per partition directory, the one node whose replica rot (or a misdirected
    /// write) may strike.
    rot_targets: BTreeMap<String, u32>,
    /// Draws of misdirected writes: when, which node, which partition, where to.
    misdirect_rng: SimRng,
    /// Draws of the disk wipe: when, which node.
    wipe_rng: SimRng,
    /// The broker whose disk was wiped (at most one per run): it stays down.
    wiped: Option<u32>,
    /// In a cluster: for each restart (not a broker's first start), the simulated
    /// milliseconds until its metadata caught up with the quorum.
    catch_up_ms: Vec<u64>,
}

impl World {
    /// Builds the world of one seed: draws the fault plan and the workload, creates
    /// nodes and clients, and schedules the first events.
    pub fn new(config: &WorldConfig) -> World {
        let seed = config.seed;
        let mut plan_rng = SimRng::new(seed, stream::PLAN);
        let mut plan = FaultPlan::draw(&config.faults, &mut plan_rng);
        let mut rot_rng = SimRng::new(seed, stream::ROT);
        plan.draw_rot(&config.faults, config.nodes, &mut rot_rng);
        let mut misdirect_rng = SimRng::new(seed, stream::MISDIRECT);
        plan.draw_misdirect(&config.faults, config.nodes, &mut misdirect_rng);
        let mut wipe_rng = SimRng::new(seed, stream::WIPE);
        plan.draw_wipe(&config.faults, config.nodes, &mut wipe_rng);
        if let Some(keep) = &config.keep_faults {
            plan.keep_only(keep);
        }
        let workload = WorkloadPlan::draw(&mut plan_rng, config.idempotent);
        let mut log = odradek_log::LogConfig {
            segment_bytes: plan_rng.pick(&[16 << 10, 64 << 10, 1 << 20, 1 << 30]),
            segment_ms: plan_rng.pick(&[2_000, 10_000, 7 * 24 * 3_600_000]),
            // Retention off: deleting acknowledged records by time or size is Kafka's
            // rule, and the checkers would call it a lost write (next increment).
            retention_ms: -1,
            retention_bytes: -1,
            index_interval_bytes: plan_rng.pick(&[128, 1024, 4096]) as u32,
            ..odradek_log::LogConfig::default()
        };
        #[cfg(feature = "mutants")]
        {
            log.mutants = config.mutants;
        }
        log.max_message_bytes = log.max_message_bytes.max(1 << 20);
        let mut node_config = NodeConfig {
            auto_create_topics_enable: false,
            log,
            retention_check_interval_ms: plan_rng.pick(&[500, 5_000, 60_000]) as i64,
            ..NodeConfig::default()
        };
        // How long a new group waits for more members before its first generation;
        // Kafka's 3 s default keeps a group from forming at all when the node crashes
        // every few seconds. A hash of the seed, not a draw: the stream is unchanged.
        node_config.group.group_initial_rebalance_delay_ms =
            [0, 300, 3_000][(mix(seed, GROUP_MEMBERS_SALT + 1) % 3) as usize];
        #[cfg(feature = "mutants")]
        {
            node_config.group.mutants = config.group_mutants;
            node_config.raft_mutants = config.raft_mutants;
        }
        let mut nodes = Vec::new();
        for index in 0..config.nodes {
            let node_stream = stream::NODE_BASE + u64::from(index) * 10;
            let mut node_rng = SimRng::new(seed, node_stream);
            let mut drift = if plan.drift_ppm_max > 0 {
                node_rng.range(0, 2 * plan.drift_ppm_max as u64 + 1) as i64 - plan.drift_ppm_max
            } else {
                0
            };
            if plan.is_muted(FaultClass::Drift) {
                drift = 0;
            }
            let clock = NodeClock::new(drift, node_rng.below(1_000_000_000_000));
            let mut disk = SimDisk::new(
                SimRng::new(seed, node_stream + 1),
                node_rng.next_u64(),
                plan.disk.clone(),
            );
            disk.set_fsync_lies(config.fsync_lies);
            let mut buggify = Buggify::new(mix(seed, node_stream + 3), plan.buggify_ppm);
            if plan.is_muted(FaultClass::Buggify) {
                buggify.mute();
            }
            let io = SimIo::new(disk, clock, SimRng::new(seed, node_stream + 2), buggify);
            nodes.push(SimNode::new(index, io));
        }
        if config.nodes > 1 {
            // The operator formats each broker's directory once, before its first start
            // (a broker alone formats its own). The directory id is hashed from the seed
            // and no cluster id is named (the quorum's first leader draws one), so that
            // no random stream of the seed has a draw more than before the format step.
            for node in &mut nodes {
                let node_id = node.index as i32 + 1;
                let salt = DIRECTORY_ID_SALT + 2 * u64::from(node.index);
                let directory_id = odradek_replication::identity::encode_id([
                    mix(seed, salt),
                    mix(seed, salt + 1),
                ]);
                node.io.disk.set_faults_active(false);
                odradek_replication::identity::format(&mut node.io, node_id, None, directory_id)
                    .expect("an empty simulated disk formats");
                node.io.disk.set_faults_active(true);
            }
            node_config.voters = (1..=config.nodes as i32).collect();
            // Every seed's workload creates its topics with replication factor
            // min(3, nodes); more members for __consumer_offsets would only be slower.
            node_config.offsets_topic_replication_factor = config.nodes.min(3) as i16;
        }
        let mut shared = Shared::new(workload.topics.clone());
        shared.nodes = config.nodes;
        let mut clients = vec![Client::Admin(Admin::new())];
        for _ in 0..workload.producers {
            clients.push(Client::Producer(Producer::new(
                &mut shared,
                &workload,
                -1,
                workload.idempotent,
            )));
        }
        if workload.acks_zero_producer {
            clients.push(Client::Producer(Producer::new(
                &mut shared,
                &workload,
                0,
                false,
            )));
        }
        for consumer in 0..workload.consumers {
            let isolation = (consumer % 2) as i8;
            clients.push(Client::Consumer(Consumer::new(
                &mut shared,
                &workload,
                isolation,
            )));
        }
        if config.groups {
            // Drawn from the seed by hashing, not from the plan's stream: switching
            // groups on leaves every other draw of the seed as it was.
            let members = 2 + mix(seed, GROUP_MEMBERS_SALT) % 2;
            for _ in 0..members {
                clients.push(Client::GroupMember(GroupMember::new(&workload)));
            }
        }
        clients.push(Client::FinalReader(FinalReader::new(
            &mut shared,
            &workload,
        )));
        if config.nodes > 1 {
            clients.push(Client::Metadata(MetadataClient::new()));
        }
        let client_count = clients.len();
        let mut world = World {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng: SimRng::new(seed, stream::WORLD),
            client_rng: SimRng::new(seed, stream::CLIENTS),
            nodes,
            node_config,
            clients,
            client_wake_ns: vec![u64::MAX; client_count],
            network: if config.nodes > 1 {
                Network::new(plan.network.clone()).with_peers()
            } else {
                Network::new(plan.network.clone())
            },
            history: History::new(),
            groups: GroupHistory::default(),
            shared,
            trace: Trace::new(config.keep_trace, config.echo_trace),
            plan,
            workload,
            counters: BTreeMap::new(),
            violation: None,
            next_correlation: 1,
            seed,
            duration_ns: config.duration_ns,
            liveness_bound_ns: config.liveness_bound_ns,
            liveness_deadline_ns: u64::MAX,
            reported: BTreeMap::new(),
            acknowledged_end: BTreeMap::new(),
            topics_acknowledged: BTreeSet::new(),
            catch_up_ms: Vec::new(),
            ending: None,
            events: 0,
            timeline: Vec::new(),
            operation_clients: Vec::new(),
            nemeses_drawn: 0,
            nemeses_applied: 0,
            nemeses_max: config.nemeses_max,
            nemesis_skip: config.nemesis_skip.clone(),
            violation_client: None,
            violation_marks: BTreeMap::new(),
            leaders: BTreeMap::new(),
            metadata_key: metadata_key(),
            rot_rng,
            rot_targets: BTreeMap::new(),
            misdirect_rng,
            wipe_rng,
            wiped: None,
        };
        for counter in PROCESS_COUNTERS {
            world.counters.insert(counter, 0);
        }
        for node in 0..config.nodes {
            world.schedule(0, Event::NodeStart { node });
        }
        for client in 0..client_count as u32 {
            world.schedule_wake(client, MS);
        }
        world.schedule_nemeses();
        world.schedule(world.duration_ns, Event::Heal);
        world
    }

    /// Runs to the end: the final reads complete, a check fails, or the liveness
    /// bound passes.
    pub fn run(&mut self) -> Ending {
        while self.ending.is_none() {
            let Some(Reverse(queued)) = self.queue.pop() else {
                self.ending = Some(Ending::Liveness(
                    "the event queue ran dry before the final reads completed".to_string(),
                ));
                break;
            };
            assert!(queued.at >= self.now, "time went back");
            self.now = queued.at;
            self.events += 1;
            if self.events > EVENTS_MAX {
                self.ending = Some(Ending::Liveness(format!(
                    "more than {EVENTS_MAX} events: a livelock?"
                )));
                break;
            }
            self.handle(queued.event);
            if let Some(violation) = self.violation.take() {
                self.ending = Some(Ending::Safety(violation));
            }
        }
        if let Some(Ending::Liveness(message)) = &self.ending {
            let message = message.clone();
            self.note(TimelineKind::Violation(message));
        }
        self.ending.take().expect("set by the loop")
    }

    /// Global time now.
    pub fn now_ns(&self) -> u64 {
        self.now
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Every fault counter: process and nemesis counters, each node's disk, the
    /// network, BUGGIFY firings.
    pub fn fault_counters(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = self
            .counters
            .iter()
            .map(|(name, count)| (name.to_string(), *count))
            .collect();
        for (name, count) in self.network.counters() {
            *all.entry(name.to_string()).or_insert(0) += count;
        }
        for node in &self.nodes {
            for (name, count) in node.io.disk.counters() {
                *all.entry(name.to_string()).or_insert(0) += count;
            }
            for (site, count) in node.io.buggify.fired() {
                *all.entry(format!("buggify.{site}")).or_insert(0) += count;
            }
        }
        all
    }

    /// For each restart of a cluster broker, the simulated milliseconds until its
    /// metadata caught up with the quorum (restarts that never did are left out).
    pub fn catch_up_ms(&self) -> &[u64] {
        &self.catch_up_ms
    }

    /// Counters of client behaviour (retries, seeks, ...).
    pub fn client_stats(&self) -> BTreeMap<String, u64> {
        self.shared
            .stats
            .iter()
            .map(|(name, count)| (name.to_string(), *count))
            .collect()
    }

    /// The sim-side final check: every acknowledged record is in the final reads at
    /// the offset it was acknowledged with. (The model's checkers do this and much
    /// more; this one needs nothing but the history and runs even without them.)
    pub fn check_final_reads(&mut self) -> Result<(), String> {
        for operation in self.history.operations() {
            let (Call::Send { value }, Some(Outcome::Ok(Reply::Sent { offset }))) =
                (&operation.call, &operation.outcome)
            else {
                continue;
            };
            let found = self
                .shared
                .final_values
                .get(&operation.partition)
                .and_then(|values| values.get(offset));
            if found != Some(value) {
                self.violation_marks.insert(
                    operation.index,
                    "acknowledged, and not found at its offset by the final reads".to_string(),
                );
                return Err(format!(
                    "acknowledged record lost: value {value} acknowledged at {}-{} offset {offset}, the final read found {found:?} there",
                    operation.partition.topic, operation.partition.partition
                ));
            }
        }
        Ok(())
    }

    fn schedule(&mut self, at: u64, event: Event) {
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn schedule_wake(&mut self, client: u32, at: u64) {
        let scheduled = &mut self.client_wake_ns[client as usize];
        // One pending wake-up per client is enough: an earlier one replaces a later
        // one (the later one then runs as a harmless extra tick).
        if *scheduled > self.now && *scheduled <= at {
            return;
        }
        *scheduled = at;
        self.schedule(at, Event::ClientWake { client });
    }

    fn count(&mut self, name: &'static str) {
        *self.counters.entry(name).or_insert(0) += 1;
    }

    fn fail(&mut self, violation: String) {
        if self.violation.is_none() {
            self.timeline.push(TimelineEvent {
                at_ns: self.now,
                kind: TimelineKind::Violation(violation.clone()),
            });
            self.violation = Some(violation);
        }
    }

    /// A check of a response `client` was sent failed.
    fn fail_response(&mut self, client: u32, violation: String) {
        if self.violation.is_none() {
            self.violation_client = Some(client);
        }
        self.fail(violation);
    }

    fn note(&mut self, kind: TimelineKind) {
        self.timeline.push(TimelineEvent {
            at_ns: self.now,
            kind,
        });
    }

    /// Nemesis events applied so far (skipped ones and repairs not counted).
    pub fn nemeses_applied(&self) -> u64 {
        self.nemeses_applied
    }

    /// The client that invoked operation `index`.
    pub fn operation_client(&self, index: usize) -> Option<u32> {
        self.operation_clients.get(index).copied()
    }

    /// A short name of each client: `client 3 (consumer)`.
    pub fn client_names(&self) -> Vec<String> {
        self.clients
            .iter()
            .enumerate()
            .map(|(index, client)| {
                let role = match client {
                    Client::Admin(_) => "admin",
                    Client::Producer(_) => "producer",
                    Client::Consumer(_) => "consumer",
                    Client::FinalReader(_) => "final reader",
                    Client::GroupMember(_) => "group member",
                    Client::Metadata(_) => "metadata",
                };
                format!("client {index} ({role})")
            })
            .collect()
    }

    /// The operations the failed check of the world concerns, with why: the
    /// operations in flight on the client whose response failed a check, an
    /// acknowledged send the final reads did not find, the acknowledged sends a
    /// restarted node no longer had, the operations still waiting when the liveness
    /// bound passed. Empty if no world check failed.
    pub fn violation_marks(&self, liveness: bool) -> BTreeMap<usize, String> {
        let mut marks = self.violation_marks.clone();
        if liveness {
            for operation in self.history.operations() {
                if operation.completed_at.is_none() {
                    marks.insert(
                        operation.index,
                        "still waiting when the liveness bound passed".to_string(),
                    );
                }
            }
        }
        let at = self.timeline.iter().find_map(|event| match event.kind {
            TimelineKind::Violation(_) => Some(event.at_ns),
            _ => None,
        });
        if let (Some(client), Some(at)) = (self.violation_client, at) {
            for operation in self.history.operations() {
                let in_flight = operation.invoked_at <= at
                    && operation
                        .completed_at
                        .is_none_or(|completed| completed >= at);
                if in_flight && self.operation_client(operation.index) == Some(client) {
                    marks.entry(operation.index).or_insert_with(|| {
                        format!("in flight on client {client} when a check of its response failed")
                    });
                }
            }
        }
        marks
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::NodeStart { node } => self.start_node(node),
            Event::NodeTimer {
                node,
                incarnation,
                at,
                timer,
            } => self.node_timer(node, incarnation, at, timer),
            Event::NodeSync {
                node,
                incarnation,
                io,
            } => self.node_sync(node, incarnation, io),
            Event::NodeRequest {
                node,
                client,
                correlation,
                acks_zero,
                request,
            } => self.node_request(node, client, correlation, acks_zero, request),
            Event::PeerDelivery {
                node,
                from,
                message,
            } => self.peer_delivery(node, from, message),
            Event::ClientResponse {
                client,
                correlation,
                response,
            } => {
                self.trace.event(
                    self.now,
                    TraceKind::ClientResponse,
                    &[u64::from(client), correlation],
                );
                self.trace.line(self.now, || {
                    format!("client {client} <- response #{correlation}")
                });
                self.with_client(client, |c, ctx| c.on_response(ctx, correlation, &response));
            }
            Event::ClientLost {
                client,
                correlation,
                why,
            } => {
                self.trace.event(
                    self.now,
                    TraceKind::ClientLost,
                    &[u64::from(client), correlation],
                );
                self.trace.line(self.now, || {
                    format!("client {client} lost #{correlation}: {why}")
                });
                self.with_client(client, |c, ctx| c.on_lost(ctx, correlation, why));
            }
            Event::ClientWake { client } => {
                if self.client_wake_ns[client as usize] == self.now {
                    self.client_wake_ns[client as usize] = u64::MAX;
                }
                self.trace
                    .event(self.now, TraceKind::ClientWake, &[u64::from(client)]);
                self.with_client(client, |c, ctx| c.tick(ctx));
            }
            Event::Nemesis(nemesis) => self.nemesis(nemesis),
            Event::Rot => self.rot(),
            Event::Misdirect => self.misdirect(),
            Event::Wipe => self.wipe(),
            Event::CrashNow { node } => {
                if self.shared.phase == Phase::Safety {
                    self.crash_armed_node(node);
                }
            }
            Event::Heal => self.heal(),
            Event::LivenessDeadline => {
                if self.shared.phase != Phase::Done {
                    let stuck: Vec<String> = self
                        .clients
                        .iter()
                        .filter(|c| !c.is_done(&self.shared))
                        .map(Client::describe)
                        .collect();
                    let nodes: Vec<String> = self
                        .nodes
                        .iter()
                        .map(|n| match &n.node {
                            Some(node) => {
                                let metadata = node.metadata();
                                format!(
                                    "node {} up (incarnation {}, fatal {:?}, topics {:?}, metadata {} e{} hw {} applied {} leo {} durable {})",
                                    n.index,
                                    n.incarnation,
                                    node.fatal(),
                                    node.cluster().topics.keys().collect::<Vec<_>>(),
                                    if metadata.is_leader() { "L" } else { "F" },
                                    metadata.raft().leader_epoch(),
                                    metadata.raft().high_watermark(),
                                    metadata.applied_offset(),
                                    metadata.log().log_end_offset(),
                                    metadata.log().durable_offset()
                                )
                            }
                            None => format!("node {} down", n.index),
                        })
                        .collect();
                    let replicas = if self.nodes.len() > 1 {
                        format!("; replicas: {}", self.describe_replicas())
                    } else {
                        String::new()
                    };
                    self.ending = Some(Ending::Liveness(format!(
                        "not done {} ms after faults healed (phase {:?}); nodes: {}{replicas}; waiting: {}",
                        self.liveness_bound_ns / MS,
                        self.shared.phase,
                        nodes.join(", "),
                        stuck.join(" | ")
                    )));
                }
            }
        }
    }

    // ----- clients -----------------------------------------------------------------

    fn with_client(&mut self, client: u32, f: impl FnOnce(&mut Client, &mut Ctx<'_>)) {
        let mut ctx = Ctx {
            now: self.now,
            rng: &mut self.client_rng,
            history: &mut self.history,
            groups: &mut self.groups,
            shared: &mut self.shared,
            out: Vec::new(),
            wakes: Vec::new(),
            next_correlation: &mut self.next_correlation,
        };
        f(&mut self.clients[client as usize], &mut ctx);
        let Ctx { out, wakes, .. } = ctx;
        let invoked = self.history.operations().len();
        self.operation_clients.resize(invoked, client);
        for outgoing in out {
            self.client_send(client, outgoing);
        }
        if let Some(&at) = wakes.iter().min() {
            self.schedule_wake(client, at);
        }
        self.advance_phase();
    }

    fn client_send(&mut self, client: u32, outgoing: Outgoing) {
        let Outgoing {
            correlation,
            node,
            request,
            acks_zero,
            timeout_ns,
        } = outgoing;
        if let Some(timeout) = timeout_ns {
            self.schedule(
                self.now + timeout,
                Event::ClientLost {
                    client,
                    correlation,
                    why: "request timed out",
                },
            );
        }
        let arrivals = self.network.send(
            &mut self.rng,
            self.now,
            Endpoint::Client(client),
            Endpoint::Node(node),
            !acks_zero,
        );
        self.trace.event(
            self.now,
            TraceKind::ClientSend,
            &[u64::from(client), correlation, arrivals.len() as u64],
        );
        self.trace.line(self.now, || {
            format!(
                "client {client} -> node {node} #{correlation} {:?} ({} copies)",
                api_name(&request.body),
                arrivals.len()
            )
        });
        let request = Box::new(request);
        for at in arrivals {
            self.schedule(
                at,
                Event::NodeRequest {
                    node,
                    client,
                    correlation,
                    acks_zero,
                    request: request.clone(),
                },
            );
        }
    }

    /// Moves the phases on once everyone has finished what the current one asks.
    fn advance_phase(&mut self) {
        match self.shared.phase {
            Phase::Liveness => {
                let done = self
                    .clients
                    .iter()
                    .all(|c| matches!(c, Client::FinalReader(_)) || c.is_done(&self.shared));
                if done {
                    self.shared.phase = Phase::FinalRead;
                    self.note(TimelineKind::Phase("final reads"));
                    self.trace
                        .event(self.now, TraceKind::Phase, &[Phase::FinalRead as u64]);
                    self.trace
                        .line(self.now, || "phase: final reads".to_string());
                    for client in 0..self.clients.len() as u32 {
                        self.schedule_wake(client, self.now);
                    }
                }
            }
            Phase::FinalRead => {
                if self.clients.iter().all(|c| c.is_done(&self.shared)) {
                    if self.nodes.len() > 1 {
                        self.check_cluster_at_end();
                    }
                    self.shared.phase = Phase::Done;
                    self.note(TimelineKind::Phase("done"));
                    self.trace
                        .event(self.now, TraceKind::Phase, &[Phase::Done as u64]);
                    self.trace.line(self.now, || "phase: done".to_string());
                    self.ending = Some(Ending::Complete);
                }
            }
            Phase::Safety | Phase::Done => {}
        }
    }

    // ----- nodes -------------------------------------------------------------------

    fn start_node(&mut self, index: u32) {
        let now = self.now;
        let sim_node = &mut self.nodes[index as usize];
        sim_node.restart_scheduled = false;
        if sim_node.is_up() {
            return;
        }
        sim_node.io.clock.advance_to(now);
        sim_node.io.disk.set_recovering(true);
        sim_node.io.disk.take_fired();
        let mut config = self.node_config.clone();
        config.node_id = index as i32 + 1;
        config.advertised_port = 9092 + index as i32;
        let opened = Node::open(&mut sim_node.io, config);
        sim_node.io.disk.set_recovering(false);
        let faults_during_open = sim_node.io.disk.take_fired();
        self.trace.event(
            now,
            TraceKind::NodeStart,
            &[u64::from(index), u64::from(opened.is_ok())],
        );
        match opened {
            Ok(node) => {
                let cluster = self.nodes.len() > 1;
                let sim_node = &mut self.nodes[index as usize];
                sim_node.incarnation += 1;
                sim_node.node = Some(node);
                let restart = cluster && sim_node.incarnation > 1;
                sim_node.catching_up_since_ns = restart.then_some(now);
                sim_node.paused_until_ns = 0;
                let incarnation = sim_node.incarnation;
                self.note(TimelineKind::NodeUp {
                    node: index,
                    incarnation,
                });
                self.trace.line(now, || {
                    format!("node {index} started (incarnation {incarnation})")
                });
                self.check_after_open(index);
                self.after_node_step(index);
            }
            Err(error) => {
                self.note(TimelineKind::NodeStartFailed {
                    node: index,
                    error: error.to_string(),
                });
                self.trace
                    .line(now, || format!("node {index} failed to start: {error}"));
                if self.wiped == Some(index) && matches!(error, NodeError::Unformatted { .. }) {
                    // What it must do: it stays down for good.
                    self.count("process.wipe-refused");
                } else if faults_during_open > 0 {
                    // Recovery may be impossible while faults are injected: retry.
                    self.count("process.start-failed-by-fault");
                    let delay = self.rng.log_range(MS, 2_000 * MS);
                    self.schedule_restart(index, now + delay);
                } else {
                    self.fail(format!(
                        "node {index} failed to start with no injected fault during start-up: {error}"
                    ));
                }
            }
        }
    }

    fn schedule_restart(&mut self, index: u32, at: u64) {
        let node = &mut self.nodes[index as usize];
        if node.restart_scheduled {
            return;
        }
        node.restart_scheduled = true;
        self.schedule(at, Event::NodeStart { node: index });
    }

    /// Whether an event for `index` of `incarnation` should be delivered now; puts it
    /// back (returns false) while the node is paused.
    fn node_ready(&self, index: u32, incarnation: u64) -> bool {
        let node = &self.nodes[index as usize];
        node.is_up() && node.incarnation == incarnation
    }

    fn node_timer(&mut self, index: u32, incarnation: u64, at: Instant, timer: TimerId) {
        if !self.node_ready(index, incarnation) {
            return;
        }
        let now = self.now;
        let node = &mut self.nodes[index as usize];
        if node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.schedule(
                until,
                Event::NodeTimer {
                    node: index,
                    incarnation,
                    at,
                    timer,
                },
            );
            return;
        }
        node.io.clock.advance_to(now);
        if node.io.clock.now() < at {
            // The clock stalled or runs slow: not due yet on the node's own clock.
            let again = node.io.clock.global_time_of(at).max(now + 1);
            self.schedule(
                again,
                Event::NodeTimer {
                    node: index,
                    incarnation,
                    at,
                    timer,
                },
            );
            return;
        }
        self.trace
            .event(now, TraceKind::NodeTimer, &[u64::from(index), timer.0]);
        self.deliver(index, NodeEvent::Timer(timer));
    }

    fn node_sync(&mut self, index: u32, incarnation: u64, io: IoId) {
        let now = self.now;
        let node = &mut self.nodes[index as usize];
        let current = node.is_up() && node.incarnation == incarnation;
        if current && node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.schedule(
                until,
                Event::NodeSync {
                    node: index,
                    incarnation,
                    io,
                },
            );
            return;
        }
        // The device finishes the flush whether or not the process that asked for it
        // is still there (after a power loss `MemDisk` forgot it: `None`).
        let Some(completion) = node.io.disk.complete(io) else {
            return;
        };
        if !current {
            return;
        }
        node.io.clock.advance_to(now);
        self.trace.event(
            now,
            TraceKind::NodeSync,
            &[u64::from(index), io.0, u64::from(completion.result.is_ok())],
        );
        self.trace.line(now, || {
            format!("node {index} sync {} done: {:?}", io.0, completion.result)
        });
        self.deliver(index, NodeEvent::Disk(completion));
    }

    fn node_request(
        &mut self,
        index: u32,
        client: u32,
        correlation: u64,
        acks_zero: bool,
        request: Box<Request>,
    ) {
        let now = self.now;
        let node = &mut self.nodes[index as usize];
        if !node.is_up() {
            // Connection refused: the client learns it after a round trip.
            self.trace.event(
                now,
                TraceKind::NodeRequest,
                &[u64::from(index), correlation, 0],
            );
            self.refuse(index, client, correlation);
            return;
        }
        if node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.schedule(
                until,
                Event::NodeRequest {
                    node: index,
                    client,
                    correlation,
                    acks_zero,
                    request,
                },
            );
            return;
        }
        node.io.clock.advance_to(now);
        let id = RequestId(node.next_request);
        node.next_request += 1;
        node.held.insert(
            id,
            HeldRequest {
                client,
                correlation,
                acks_zero,
                produce_records: produce_records(&request.body),
                list_offsets_latest: list_offsets_latest(&request.body),
                metadata_all_topics: matches!(
                    &request.body,
                    RequestKind::Metadata(metadata) if metadata.topics.is_none()
                ),
            },
        );
        self.trace.event(
            now,
            TraceKind::NodeRequest,
            &[u64::from(index), correlation, id.0],
        );
        self.trace.line(now, || {
            format!(
                "node {index} <- client {client} #{correlation} as request {} {}",
                id.0,
                api_name(&request.body)
            )
        });
        self.deliver(
            index,
            NodeEvent::Client {
                id,
                request: *request,
            },
        );
    }

    /// Raft's durability rule for votes, checked on the disk: a granted vote leaves
    /// only once the voter's hard state file durably holds it (that epoch and that
    /// candidate, or a later epoch). A voter that forgot a vote in a crash could vote
    /// twice in one epoch.
    fn check_votes_durable(&mut self, index: u32, to: i32, message: &PeerMessage) {
        for raft in &message.raft {
            let Message::VoteResponse(vote) = &raft.message else {
                continue;
            };
            if !vote.granted || vote.pre_vote {
                continue;
            }
            let durable =
                durable_hard_state(self.nodes[index as usize].io.disk.inner(), &raft.group);
            let covered = durable.is_some_and(|state| {
                state.leader_epoch > vote.leader_epoch
                    || (state.leader_epoch == vote.leader_epoch
                        && state.voted_for == u32::try_from(to).ok())
            });
            if durable.is_some_and(|state| state.recovering) {
                self.fail(format!(
                    "node {index} granted its vote in epoch {} of {:?} to broker {to} while recovering from lost records (decision 0010)",
                    vote.leader_epoch, raft.group
                ));
            }
            if !covered {
                self.fail(format!(
                    "node {index} granted its vote in epoch {} of {:?} to broker {to} before the vote was durable (durable hard state: {durable:?})",
                    vote.leader_epoch, raft.group
                ));
            }
        }
    }

    /// A bundle node `index` sent to broker `to` goes on the network.
    fn peer_send(&mut self, index: u32, to: i32, message: PeerMessage) {
        self.check_votes_durable(index, to, &message);
        let Some(target) = u32::try_from(to - 1)
            .ok()
            .filter(|&t| (t as usize) < self.nodes.len() && t != index)
        else {
            self.fail(format!(
                "node {index} sent a bundle to broker {to}, not a peer"
            ));
            return;
        };
        let arrivals = self.network.send(
            &mut self.rng,
            self.now,
            Endpoint::Node(index),
            Endpoint::Node(target),
            true,
        );
        self.trace.event(
            self.now,
            TraceKind::PeerSend,
            &[u64::from(index), u64::from(target), arrivals.len() as u64],
        );
        self.trace.line(self.now, || {
            format!(
                "node {index} -> node {target}: {} raft, {} leaders, {} forwards ({} copies)",
                message.raft.len(),
                message.leaders.len(),
                message.forwards.len(),
                arrivals.len()
            )
        });
        let message = Box::new(message);
        for at in arrivals {
            self.schedule(
                at,
                Event::PeerDelivery {
                    node: target,
                    from: index,
                    message: message.clone(),
                },
            );
        }
    }

    /// A bundle arrives at node `index`: lost if it is down (the connection broke),
    /// held while it is paused.
    fn peer_delivery(&mut self, index: u32, from: u32, message: Box<PeerMessage>) {
        let now = self.now;
        let node = &mut self.nodes[index as usize];
        if !node.is_up() {
            return;
        }
        if node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.schedule(
                until,
                Event::PeerDelivery {
                    node: index,
                    from,
                    message,
                },
            );
            return;
        }
        node.io.clock.advance_to(now);
        self.trace.event(
            now,
            TraceKind::PeerDelivery,
            &[u64::from(index), u64::from(from)],
        );
        self.deliver(
            index,
            NodeEvent::Peer {
                from: from as i32 + 1,
                message: *message,
            },
        );
    }

    fn refuse(&mut self, index: u32, client: u32, correlation: u64) {
        let arrivals = self.network.send(
            &mut self.rng,
            self.now,
            Endpoint::Node(index),
            Endpoint::Client(client),
            false,
        );
        if let Some(&at) = arrivals.first() {
            self.schedule(
                at,
                Event::ClientLost {
                    client,
                    correlation,
                    why: "connection refused or reset",
                },
            );
        }
    }

    fn deliver(&mut self, index: u32, event: NodeEvent) {
        let sim_node = &mut self.nodes[index as usize];
        let node = sim_node.node.as_mut().expect("delivered to a running node");
        node.handle(&mut sim_node.io, event);
        node.check_invariants();
        self.after_node_step(index);
    }

    /// Turns what the node asked for into events, and checks what it answered.
    fn after_node_step(&mut self, index: u32) {
        if self.nodes.len() > 1 {
            self.check_leaders(index);
        }
        let now = self.now;
        let sim_node = &mut self.nodes[index as usize];
        let incarnation = sim_node.incarnation;
        let timers = std::mem::take(&mut sim_node.io.timers);
        let responses = std::mem::take(&mut sim_node.io.responses);
        let sent = std::mem::take(&mut sim_node.io.sent);
        let syncs = sim_node.io.disk.take_started();
        let syncs_started = !syncs.is_empty();
        let mut scheduled = Vec::new();
        for (at, timer) in timers {
            let global = sim_node.io.clock.global_time_of(at);
            scheduled.push((
                global,
                Event::NodeTimer {
                    node: index,
                    incarnation,
                    at,
                    timer,
                },
            ));
        }
        for io in syncs {
            let latency = sim_node.io.disk.sync_latency_ns();
            scheduled.push((
                now + latency,
                Event::NodeSync {
                    node: index,
                    incarnation,
                    io,
                },
            ));
        }
        for (at, event) in scheduled {
            self.schedule(at, event);
        }
        for (id, response) in responses {
            self.node_responded(index, id, response);
        }
        // After the answers are checked: an answer may have been computed before a
        // creation the same step applied.
        let sim_node = &mut self.nodes[index as usize];
        if let Some(node) = &sim_node.node {
            let topics = node.cluster().topics.keys();
            sim_node.topics_applied.extend(topics.cloned());
            if node.metadata().caught_up()
                && let Some(since) = sim_node.catching_up_since_ns.take()
            {
                self.catch_up_ms.push((now - since) / MS);
            }
        }
        for (to, message) in sent {
            self.peer_send(index, to, message);
        }
        if syncs_started && self.nodes[index as usize].crash_armed.is_some() {
            self.crash_armed_node(index);
            return;
        }
        let fatal = self.nodes[index as usize]
            .node
            .as_ref()
            .and_then(|n| n.fatal().map(str::to_string));
        if let Some(reason) = fatal {
            // The driver exits and the supervisor starts the node again.
            self.trace
                .line(now, || format!("node {index} fatal: {reason}"));
            self.count("process.fatal-exit");
            self.stop_node(index, false, format!("fatal exit: {reason}"));
            let delay = self.rng.log_range(MS, 1_000 * MS);
            self.schedule_restart(index, now + delay);
        }
    }

    fn node_responded(&mut self, index: u32, id: RequestId, response: ResponseKind) {
        let now = self.now;
        let sim_node = &mut self.nodes[index as usize];
        let incarnation = sim_node.incarnation;
        let Some(held) = sim_node.held.remove(&id) else {
            self.fail(format!(
                "node {index} answered request {} that it was never sent or answered already",
                id.0
            ));
            return;
        };
        if held.acks_zero {
            self.fail_response(
                held.client,
                format!("node {index} answered an acks=0 produce (request {})", id.0),
            );
            return;
        }
        self.check_response(index, incarnation, &held, &response);
        self.check_known_topics(index, &held, &response);
        let digest = response_digest(&response);
        self.trace.event(
            now,
            TraceKind::NodeResponse,
            &[u64::from(index), held.correlation, digest],
        );
        self.trace.line(now, || {
            format!(
                "node {index} -> client {} #{} {}",
                held.client,
                held.correlation,
                describe_response(&response)
            )
        });
        let arrivals = self.network.send(
            &mut self.rng,
            now,
            Endpoint::Node(index),
            Endpoint::Client(held.client),
            true,
        );
        let response = Box::new(response);
        for at in arrivals {
            self.schedule(
                at,
                Event::ClientResponse {
                    client: held.client,
                    correlation: held.correlation,
                    response: response.clone(),
                },
            );
        }
    }

    /// The per-response checks (see the module documentation).
    fn check_response(
        &mut self,
        index: u32,
        incarnation: u64,
        held: &HeldRequest,
        response: &ResponseKind,
    ) {
        match response {
            ResponseKind::Produce(produce) => {
                for topic in &produce.responses {
                    for partition in &topic.partition_responses {
                        if partition.error_code != 0 {
                            continue;
                        }
                        let key = TopicPartition::new(topic.name.0.to_string(), partition.index);
                        let end = partition.base_offset + held.produce_records;
                        let acknowledged = self.acknowledged_end.entry(key).or_insert(0);
                        *acknowledged = (*acknowledged).max(end);
                    }
                }
            }
            ResponseKind::Fetch(fetch) => {
                for topic in &fetch.responses {
                    for data in &topic.partitions {
                        if data.error_code != 0 {
                            continue;
                        }
                        let key =
                            TopicPartition::new(topic.topic.0.to_string(), data.partition_index);
                        self.check_reported(
                            held.client,
                            index,
                            incarnation,
                            &key,
                            data.high_watermark,
                            data.log_start_offset,
                        );
                        let records = data.records.clone().unwrap_or_default();
                        match decode_batches(&records) {
                            Err(reason) => self.fail_response(
                                held.client,
                                format!(
                                    "node {index} served a batch of {}-{} that fails its checks: {reason}",
                                    key.topic, key.partition
                                ),
                            ),
                            Ok(batches) => {
                                for batch in batches {
                                    if batch.header.last_offset() >= data.high_watermark {
                                        self.fail_response(
                                            held.client,
                                            format!(
                                                "node {index} served offsets {}..={} of {}-{} above the high watermark {}",
                                                batch.header.base_offset,
                                                batch.header.last_offset(),
                                                key.topic,
                                                key.partition,
                                                data.high_watermark
                                            ),
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
            ResponseKind::ListOffsets(list) => {
                if !held.list_offsets_latest {
                    return;
                }
                for topic in &list.topics {
                    for data in &topic.partitions {
                        if data.error_code != 0 {
                            continue;
                        }
                        let key =
                            TopicPartition::new(topic.name.0.to_string(), data.partition_index);
                        self.check_reported(held.client, index, incarnation, &key, data.offset, -1);
                    }
                }
            }
            ResponseKind::CreateTopics(created) => {
                for topic in &created.topics {
                    if topic.error_code == 0 {
                        self.topics_acknowledged.insert(topic.name.0.to_string());
                    }
                }
            }
            _ => {}
        }
    }

    /// A broker never answers as if a topic did not exist (UNKNOWN_TOPIC_OR_PARTITION,
    /// or left out of a Metadata answer for every topic) when it applied that topic's
    /// creation before, in this incarnation or an earlier one, and the creation was
    /// acknowledged (issue 15). A broker that never heard of a topic may say so, as
    /// Kafka's brokers do while metadata propagates (decision 0011).
    fn check_known_topics(&mut self, index: u32, held: &HeldRequest, response: &ResponseKind) {
        let applied = &self.nodes[index as usize].topics_applied;
        let acknowledged = &self.topics_acknowledged;
        let known = |topic: &str| acknowledged.contains(topic) && applied.contains(topic);
        let unknown = |error: i16| {
            error == odradek_replication::error::ErrorCode::UnknownTopicOrPartition.code()
        };
        let mut denied: Vec<String> = Vec::new();
        match response {
            ResponseKind::Metadata(metadata) => {
                let listed: BTreeSet<&str> = metadata
                    .topics
                    .iter()
                    .filter(|t| !unknown(t.error_code))
                    .filter_map(|t| t.name.as_ref().map(|name| name.0.as_str()))
                    .collect();
                for topic in &metadata.topics {
                    let name = topic.name.as_ref().map_or("", |name| name.0.as_str());
                    if unknown(topic.error_code) && known(name) {
                        denied.push(name.to_string());
                    }
                }
                if held.metadata_all_topics {
                    let missing = acknowledged.intersection(applied);
                    denied.extend(missing.filter(|t| !listed.contains(t.as_str())).cloned());
                }
            }
            ResponseKind::Produce(produce) => {
                for topic in &produce.responses {
                    if topic
                        .partition_responses
                        .iter()
                        .any(|p| unknown(p.error_code))
                        && known(topic.name.0.as_str())
                    {
                        denied.push(topic.name.0.to_string());
                    }
                }
            }
            ResponseKind::Fetch(fetch) => {
                for topic in &fetch.responses {
                    if topic.partitions.iter().any(|p| unknown(p.error_code))
                        && known(topic.topic.0.as_str())
                    {
                        denied.push(topic.topic.0.to_string());
                    }
                }
            }
            ResponseKind::ListOffsets(list) => {
                for topic in &list.topics {
                    if topic.partitions.iter().any(|p| unknown(p.error_code))
                        && known(topic.name.0.as_str())
                    {
                        denied.push(topic.name.0.to_string());
                    }
                }
            }
            _ => {}
        }
        if let Some(topic) = denied.first() {
            let violation = format!(
                "node {index} answered as if topic {topic} did not exist, though it had \
                 applied its acknowledged creation before"
            );
            self.fail_response(held.client, violation);
        }
    }

    /// In a cluster, after every step of node `index`: at most one leader per
    /// partition and epoch, and a node that starts leading a partition holds every
    /// acknowledged offset of it (Raft's leader completeness: an acknowledged record
    /// was committed, so every later leader has it).
    fn check_leaders(&mut self, index: u32) {
        let Some(node) = self.nodes[index as usize].node.as_ref() else {
            return;
        };
        let leaders = &self.leaders;
        let known = |key: &TopicPartition, epoch: i32| {
            leaders.get(key).and_then(|epochs| epochs.get(&epoch)) == Some(&index)
        };
        let mut leading = Vec::new();
        let metadata = node.metadata().raft();
        if metadata.check_leader().is_ok() && !known(&self.metadata_key, metadata.leader_epoch()) {
            // What the quorum has acknowledged are topics, not offsets: the offset
            // check below is vacuous for it.
            leading.push((self.metadata_key.clone(), metadata.leader_epoch(), i64::MAX));
        }
        for (key, partition) in node.partitions() {
            if partition.is_leader() && !known(key, partition.leader_epoch) {
                leading.push((
                    key.clone(),
                    partition.leader_epoch,
                    partition.log.log_end_offset(),
                ));
            }
        }
        for (key, epoch, end) in leading {
            let epochs = self.leaders.entry(key.clone()).or_default();
            if let Some(&other) = epochs.get(&epoch) {
                self.fail(format!(
                    "two leaders of {}-{} in epoch {epoch}: node {other} and node {index}",
                    key.topic, key.partition
                ));
                continue;
            }
            epochs.insert(epoch, index);
            let acknowledged = self.acknowledged_end.get(&key).copied().unwrap_or(0);
            if end < acknowledged {
                self.mark_lost_sends(
                    &key.topic,
                    Some(key.partition),
                    end,
                    &format!(
                        "acknowledged, and missing from node {index}, the leader of epoch {epoch}"
                    ),
                );
                self.fail(format!(
                    "node {index} leads {}-{} in epoch {epoch} with log end offset {end}, below the acknowledged offset {acknowledged}; replicas: {}",
                    key.topic,
                    key.partition,
                    self.describe_partition(&key)
                ));
            }
        }
    }

    /// The metadata high watermark of the controller (the quorum leader of the
    /// highest epoch running), or `i64::MAX` if none runs.
    fn controller_high_watermark(&self) -> i64 {
        self.nodes
            .iter()
            .filter_map(|sim_node| sim_node.node.as_ref())
            .map(|node| node.metadata().raft())
            .filter(|raft| raft.check_leader().is_ok())
            .max_by_key(|raft| raft.leader_epoch())
            .map_or(i64::MAX, |raft| raft.high_watermark())
    }

    /// Each workload partition's replicas, for a liveness report: per node, `L` (leads)
    /// or `F`, the epoch, the high watermark and the log end offset, and `failed` if
    /// its log failed.
    fn describe_replicas(&self) -> String {
        let mut parts = Vec::new();
        for key in self.workload.partitions() {
            let key = TopicPartition::new(key.topic.clone(), key.partition);
            parts.push(self.describe_partition(&key));
        }
        parts.join(" ")
    }

    /// One partition's replicas: see [`World::describe_replicas`].
    fn describe_partition(&self, key: &TopicPartition) -> String {
        {
            let replicas: Vec<String> = self
                .nodes
                .iter()
                .filter_map(|sim_node| {
                    let partition = sim_node.node.as_ref()?.partition(key)?;
                    Some(format!(
                        "n{} {} e{} hw {} leo {}{}",
                        sim_node.index,
                        if partition.is_leader() { "L" } else { "F" },
                        partition.leader_epoch,
                        partition.high_watermark,
                        partition.log.log_end_offset(),
                        if partition.is_offline() {
                            " offline"
                        } else {
                            ""
                        }
                    ))
                })
                .collect();
            format!("{}-{} [{}]", key.topic, key.partition, replicas.join(", "))
        }
    }

    /// Whether node `index` answered for `key` as a leader that a newer one has
    /// replaced without its knowing (partitioned away, say): such a stale leader may
    /// report an older high watermark, as a Kafka leader may, and clients read less.
    fn is_stale_leader(&self, index: u32, key: &TopicPartition) -> bool {
        let Some(partition) = self.nodes[index as usize]
            .node
            .as_ref()
            .and_then(|node| node.partition(key))
        else {
            return false;
        };
        self.leaders
            .get(key)
            .and_then(|epochs| epochs.last_key_value())
            .is_some_and(|(&max, _)| partition.leader_epoch < max)
    }

    /// Marks, for the timeline, the acknowledged sends of `topic` (one partition of
    /// it, or all) at or above `from_offset` with why they are lost.
    fn mark_lost_sends(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        from_offset: i64,
        why: &str,
    ) {
        if self.violation.is_some() {
            return;
        }
        for operation in self.history.operations() {
            let Some(Outcome::Ok(Reply::Sent { offset })) = operation.outcome else {
                continue;
            };
            if operation.partition.topic == topic
                && partition.is_none_or(|p| p == operation.partition.partition)
                && offset >= from_offset
            {
                self.violation_marks
                    .insert(operation.index, why.to_string());
            }
        }
    }

    /// In a cluster, once the final reads are done: every running node knows every
    /// acknowledged topic, and the replicas of each partition hold the same batches
    /// (offsets, epochs, CRCs) below the high watermarks they share.
    fn check_cluster_at_end(&mut self) {
        let mut problems = Vec::new();
        let mut keys: BTreeSet<TopicPartition> = BTreeSet::new();
        for sim_node in &self.nodes {
            let Some(node) = sim_node.node.as_ref() else {
                continue;
            };
            // A broker that restarted a moment ago may not have learnt the quorum's
            // high watermark yet; the controller, and any broker that applied
            // everything the controller committed, must know every acknowledged topic.
            let metadata = node.metadata();
            if metadata.is_leader() || metadata.applied_offset() >= self.controller_high_watermark()
            {
                for topic in &self.topics_acknowledged {
                    if !node.cluster().topics.contains_key(topic) {
                        problems.push(format!(
                            "at the end node {} (metadata applied to offset {}) does not know the acknowledged topic {topic}",
                            sim_node.index,
                            metadata.applied_offset()
                        ));
                    }
                }
            }
            keys.extend(node.partitions().map(|(key, _)| key.clone()));
        }
        let mut latent_rot = 0;
        let mut losses = 0;
        for key in keys {
            let mut replicas = Vec::new();
            for sim_node in &mut self.nodes {
                let index = sim_node.index;
                let Some(node) = sim_node.node.as_mut() else {
                    continue;
                };
                let Some(high_watermark) = node.partition(&key).map(|p| p.high_watermark) else {
                    continue;
                };
                let rotted = self
                    .rot_targets
                    .get(&format!("{}-{}", key.topic, key.partition))
                    == Some(&index);
                let group = odradek_replication::peer::GroupId::Partition(key.clone());
                losses += durable_hard_state(sim_node.io.disk.inner(), &group)
                    .map_or(0, |state| state.losses);
                match node.committed_batches(&mut sim_node.io, &key) {
                    Some(batches) => replicas.push((index, high_watermark, batches)),
                    // Rot nobody read yet: the replica never served it and has not
                    // needed it (the final reads went through the leaders).
                    None if rotted => latent_rot += 1,
                    None => problems.push(format!(
                        "at the end node {index} cannot read its replica of {}-{}",
                        key.topic, key.partition
                    )),
                }
            }
            let Some(common) = replicas.iter().map(|(_, hw, _)| *hw).min() else {
                continue;
            };
            let below = |batches: &[(i64, i64, i32, u32)]| -> Vec<(i64, i64, i32, u32)> {
                batches
                    .iter()
                    .filter(|batch| batch.1 < common)
                    .copied()
                    .collect()
            };
            let Some((first, _, first_batches)) = replicas.first() else {
                continue;
            };
            let expected = below(first_batches);
            for (index, _, batches) in &replicas[1..] {
                let found = below(batches);
                if found != expected {
                    let at = expected
                        .iter()
                        .zip(&found)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("{a:?} against {b:?}"))
                        .unwrap_or_else(|| {
                            format!("{} batches against {}", expected.len(), found.len())
                        });
                    problems.push(format!(
                        "replicas of {}-{} on nodes {first} and {index} differ below their common high watermark {common}: (base, last, epoch, crc) {at}",
                        key.topic, key.partition
                    ));
                }
            }
        }
        for _ in 0..latent_rot {
            self.count("disk.rot-unread-at-end");
        }
        // Replicas that found damage and cut their logs to recover (decision 0010).
        for _ in 0..losses {
            self.count("repl.replica-repairs");
        }
        if let Some(problem) = problems.into_iter().next() {
            self.fail(problem);
        }
    }

    /// A high watermark (and maybe a log start offset, -1 if not reported) a node
    /// incarnation reported for `key`.
    fn check_reported(
        &mut self,
        client: u32,
        index: u32,
        incarnation: u64,
        key: &TopicPartition,
        high_watermark: i64,
        log_start_offset: i64,
    ) {
        let acknowledged = self.acknowledged_end.get(key).copied().unwrap_or(0);
        if high_watermark < acknowledged && !self.is_stale_leader(index, key) {
            self.fail_response(
                client,
                format!(
                    "node {index} reported high watermark {high_watermark} for {}-{}, below the acknowledged offset {acknowledged}",
                    key.topic, key.partition
                ),
            );
        }
        if !self.reported.contains_key(key) {
            self.reported.insert(key.clone(), BTreeMap::new());
        }
        let entry = self
            .reported
            .get_mut(key)
            .expect("inserted above")
            .entry((index, incarnation))
            .or_insert((high_watermark, log_start_offset));
        if high_watermark < entry.0 {
            let before = entry.0;
            self.fail_response(
                client,
                format!(
                    "node {index} (incarnation {incarnation}) high watermark of {}-{} went back from {before} to {high_watermark}",
                    key.topic, key.partition
                ),
            );
            return;
        }
        if log_start_offset >= 0 && log_start_offset < entry.1 {
            let before = entry.1;
            self.fail_response(
                client,
                format!(
                    "node {index} (incarnation {incarnation}) log start offset of {}-{} went back from {before} to {log_start_offset}",
                    key.topic, key.partition
                ),
            );
            return;
        }
        entry.0 = high_watermark;
        entry.1 = entry.1.max(log_start_offset);
    }

    /// Right after a start: every acknowledged topic exists and no partition's high
    /// watermark is below an acknowledged offset.
    fn check_after_open(&mut self, index: u32) {
        if self.nodes.len() > 1 {
            // A restarted broker may lag (the records and topics it missed are in a
            // quorum of the others): the cluster checks are `check_leaders` and
            // `check_cluster_at_end`.
            return;
        }
        let node = self.nodes[index as usize]
            .node
            .as_ref()
            .expect("just opened");
        // Each problem with what it lost: sends of (topic, partition, or every
        // partition) acknowledged at or above an offset.
        let mut problems: Vec<(String, LostSends)> = Vec::new();
        for topic in &self.topics_acknowledged {
            if !node.cluster().topics.contains_key(topic) {
                problems.push((
                    format!("acknowledged topic {topic} is gone after a restart"),
                    LostSends {
                        topic: topic.clone(),
                        partition: None,
                        from_offset: 0,
                    },
                ));
            }
        }
        for (key, acknowledged) in &self.acknowledged_end {
            let (problem, from_offset) = match node.partition(key) {
                Some(partition) if partition.high_watermark < *acknowledged => (
                    format!(
                        "after a restart {}-{} has high watermark {}, below the acknowledged offset {acknowledged}",
                        key.topic, key.partition, partition.high_watermark
                    ),
                    partition.high_watermark,
                ),
                Some(_) => continue,
                None => (
                    format!(
                        "after a restart {}-{} (with acknowledged records) is missing",
                        key.topic, key.partition
                    ),
                    0,
                ),
            };
            let lost = LostSends {
                topic: key.topic.clone(),
                partition: Some(key.partition),
                from_offset,
            };
            problems.push((problem, lost));
        }
        if let Some((problem, lost)) = problems.into_iter().next() {
            self.mark_lost_sends(
                &lost.topic,
                lost.partition,
                lost.from_offset,
                &format!("acknowledged, and gone after node {index} restarted"),
            );
            self.fail(format!("node {index}: {problem}"));
        }
    }

    /// Stops a node: `power_loss` crashes its disk too.
    fn stop_node(&mut self, index: u32, power_loss: bool, why: String) {
        self.note(TimelineKind::NodeDown { node: index, why });
        let crash_seed = self.rng.next_u64();
        let sim_node = &mut self.nodes[index as usize];
        sim_node.node = None;
        sim_node.paused_until_ns = 0;
        sim_node.crash_armed = None;
        sim_node.io.timers.clear();
        sim_node.io.responses.clear();
        sim_node.io.sent.clear();
        if power_loss {
            sim_node.io.disk.crash(crash_seed);
        }
        // Syncs issued before a kill still complete in the kernel (`node_sync`);
        // after a power loss MemDisk forgot them.
        let held = std::mem::take(&mut sim_node.held);
        for request in held.values() {
            self.refuse(index, request.client, request.correlation);
        }
    }

    /// Fires an armed crash or kill on a running node.
    fn crash_armed_node(&mut self, index: u32) {
        let Some(power_loss) = self.nodes[index as usize].crash_armed.take() else {
            return;
        };
        if !self.nodes[index as usize].is_up() {
            return;
        }
        let now = self.now;
        self.trace.event(
            now,
            TraceKind::Crash,
            &[u64::from(index), u64::from(power_loss)],
        );
        self.trace.line(now, || {
            format!(
                "node {index} {}",
                if power_loss {
                    "loses power"
                } else {
                    "is killed"
                }
            )
        });
        self.count(if power_loss {
            "process.crash"
        } else {
            "process.kill"
        });
        let why = if power_loss { "power loss" } else { "killed" };
        self.stop_node(index, power_loss, why.to_string());
        let delay = self.rng.log_range(MS, 3_000 * MS);
        self.schedule_restart(index, now + delay);
    }

    // ----- the nemesis -------------------------------------------------------------

    fn schedule_nemeses(&mut self) {
        let plan = &self.plan;
        let kinds = [
            (plan.crash_every_ns, Nemesis::Crash),
            (plan.kill_every_ns, Nemesis::Kill),
            (plan.pause_every_ns, Nemesis::Pause),
            (plan.restart_every_ns, Nemesis::Restart),
            (plan.partition_every_ns, Nemesis::Partition),
            (plan.clog_every_ns, Nemesis::Clog),
            (plan.enospc_every_ns, Nemesis::DiskFull),
            (plan.clock_step_every_ns, Nemesis::ClockStep),
            (plan.wall_step_every_ns, Nemesis::WallStep),
        ];
        for (every, nemesis) in kinds {
            if every.is_some() {
                self.schedule_next(nemesis);
            }
        }
        self.schedule_on_own_stream(Nemesis::Rot);
        self.schedule_on_own_stream(Nemesis::Misdirect);
        self.schedule_on_own_stream(Nemesis::Wipe);
    }

    /// Schedules the next event of a class drawn from a stream of its own (rot,
    /// misdirected writes), from that stream.
    fn schedule_on_own_stream(&mut self, nemesis: Nemesis) {
        let (every, rng, event) = match nemesis {
            Nemesis::Rot => (self.plan.rot_every_ns, &mut self.rot_rng, Event::Rot),
            Nemesis::Misdirect => (
                self.plan.misdirect_every_ns,
                &mut self.misdirect_rng,
                Event::Misdirect,
            ),
            Nemesis::Wipe => (self.plan.wipe_after_ns, &mut self.wipe_rng, Event::Wipe),
            _ => unreachable!("{nemesis:?} draws from the world's stream"),
        };
        let Some(mean) = every else {
            return;
        };
        let at = self.now + rng.range(1, 2 * mean);
        if at < self.duration_ns {
            self.schedule(at, event);
        }
    }

    /// Misdirected write (disk fault model, `disk.rs`): arms one node's disk so that
    /// its next write into a segment of one data partition lands on the record data
    /// of a durable batch (as [`World::rot`] picks them) instead, and its own place
    /// keeps what it held. Both partitions are then this node's to be damaged for the
    /// whole run (`rot_targets`), so that the other replicas can repair them. Every
    /// draw comes from the misdirect stream. What the node must do: what it must do
    /// for rot, for the batch that never landed (acknowledged maybe, as its sync
    /// succeeded) as for the one overwritten.
    fn misdirect(&mut self) {
        if self.shared.phase != Phase::Safety {
            return;
        }
        self.schedule_on_own_stream(Nemesis::Misdirect);
        let now = self.now;
        let index = self.misdirect_rng.below(self.nodes.len() as u64) as u32;
        let pick_dir = self.misdirect_rng.next_u64();
        let pick_landing = self.misdirect_rng.next_u64();
        let muted = self.plan.is_muted(FaultClass::Misdirect);
        let disk = self.nodes[index as usize].io.disk.inner();
        let dirs: Vec<String> = disk
            .file_paths()
            .iter()
            .filter(|path| path.ends_with(".log"))
            .filter_map(|path| path.split_once('/').map(|(dir, _)| dir.to_string()))
            .filter(|dir| !dir.starts_with("__"))
            .filter(|dir| {
                self.rot_targets
                    .get(dir)
                    .is_none_or(|&target| target == index)
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let landings = if self.wiped.is_some() {
            Vec::new()
        } else {
            record_rot_candidates(disk, index, &self.rot_targets)
        };
        let detail = if dirs.is_empty() || landings.is_empty() {
            "nothing to misdirect".to_string()
        } else if muted {
            "skipped: its class is switched off".to_string()
        } else {
            let dir = dirs[(pick_dir % dirs.len() as u64) as usize].clone();
            let landing = landings[(pick_landing % landings.len() as u64) as usize].clone();
            let landing_dir = landing.0.split_once('/').map_or("", |(d, _)| d).to_string();
            self.rot_targets.insert(dir.clone(), index);
            self.rot_targets.insert(landing_dir, index);
            let detail = format!(
                "the next write into {dir}/ lands on {} at byte {}",
                landing.0, landing.1
            );
            self.nodes[index as usize]
                .io
                .disk
                .arm_misdirect(dir, landing);
            self.count("disk.misdirect-armed");
            self.trace.event(
                now,
                TraceKind::Misdirect,
                &[u64::from(index), pick_dir, pick_landing],
            );
            detail
        };
        self.note_own_stream(Nemesis::Misdirect, index, muted, detail);
    }

    /// Disk wipe (process fault model, at the top of this file): one broker's disk is
    /// lost for good, once per run. The broker loses power and its disk is replaced by
    /// an empty one that nobody formatted. What the broker must do: refuse to start on
    /// it (`NodeError::Unformatted`), so that it never votes or acknowledges again as
    /// the member it was. What the others must do: go on without it and keep every
    /// acknowledged record, as a majority of every group it was in is left. Every
    /// draw comes from the wipe stream. The wipe waits while another node's replica
    /// may hold damage (rot or a misdirected write struck it, `rot_targets`): with one
    /// replica lost and another recovering, a group of three has one left. For the
    /// same reason rot and misdirected writes strike no record data after it.
    fn wipe(&mut self) {
        if self.shared.phase != Phase::Safety || self.wiped.is_some() {
            return;
        }
        let now = self.now;
        let mut index = self.wipe_rng.below(self.nodes.len() as u64) as u32;
        if self.wipe_rng.below(2) == 0 {
            // Half the time the broker that holds the most: the one whose loss leaves
            // the others with the least.
            let held = |node: &SimNode| {
                node.node.as_ref().map_or(0, |n| {
                    n.partitions()
                        .map(|(_, p)| p.log.log_end_offset())
                        .sum::<i64>()
                })
            };
            if let Some(most) = self
                .nodes
                .iter()
                .max_by_key(|node| (held(node), Reverse(node.index)))
            {
                index = most.index;
            }
        }
        let memdisk_seed = self.wipe_rng.next_u64();
        let delay = self.wipe_rng.log_range(MS, 3_000 * MS);
        let muted = self.plan.is_muted(FaultClass::Wipe);
        let damaged_elsewhere = self
            .rot_targets
            .iter()
            .find(|&(_, &owner)| owner != index)
            .map(|(dir, &owner)| (dir.clone(), owner));
        let detail = if let Some((dir, owner)) = damaged_elsewhere {
            self.schedule_on_own_stream(Nemesis::Wipe);
            format!("waits: node {owner}'s replica of {dir} may hold damage")
        } else if muted {
            "skipped: its class is switched off".to_string()
        } else {
            self.wiped = Some(index);
            self.count("process.wipe");
            self.trace
                .event(now, TraceKind::Wipe, &[u64::from(index), memdisk_seed]);
            if self.nodes[index as usize].is_up() {
                self.stop_node(index, true, "disk lost".to_string());
            }
            self.nodes[index as usize].io.disk.wipe(memdisk_seed);
            self.schedule_restart(index, now + delay);
            "power loss; the disk is replaced by an empty, unformatted one".to_string()
        };
        self.note_own_stream(Nemesis::Wipe, index, muted, detail);
    }

    /// Media rot (disk fault model, `disk.rs`): one bit changes at rest. In five
    /// strikes of eight it hits a durable batch's record data in a data partition,
    /// where recovery can tell it was durable (the segment's durable index files or
    /// the partition's synced-through record say so), in any segment, the active one
    /// included; in two, one copy of a Raft hard state whose other copy holds the same
    /// state; in one, the slot of a synced-through record that the other slot makes
    /// up for, or an index file of a sealed segment that record covers whole. Every
    /// draw comes from the rot stream. Rot strikes
    /// the record data of only one replica per partition for the whole run: two
    /// damaged copies of one committed batch out of three are more than three replicas
    /// can repair. What the node must do: never serve the batch, and repair it from
    /// the other replicas without letting its vote elect a leader that lacks records
    /// it helped commit; read the hard state from the copy that is whole
    /// (decision 0010).
    fn rot(&mut self) {
        if self.shared.phase != Phase::Safety {
            return;
        }
        self.schedule_on_own_stream(Nemesis::Rot);
        let now = self.now;
        let index = self.rot_rng.below(self.nodes.len() as u64) as u32;
        let pick = self.rot_rng.next_u64();
        let bit = self.rot_rng.below(8) as u8;
        // Two strikes in eight hit a hard state, one a synced-through record slot or an
        // index file, the rest record data.
        let kind = self.rot_rng.below(8);
        let hard_state = kind < 2;
        let record_file = kind == 2;
        let muted = self.plan.is_muted(FaultClass::Rot);
        let disk = self.nodes[index as usize].io.disk.inner();
        let candidates = if hard_state {
            hard_state_rot_candidates(disk)
        } else if record_file {
            let mut candidates = synced_record_rot_candidates(disk);
            candidates.extend(index_rot_candidates(disk));
            candidates
        } else if self.wiped.is_some() {
            Vec::new()
        } else {
            record_rot_candidates(disk, index, &self.rot_targets)
        };
        let detail = if candidates.is_empty() {
            "nothing to rot".to_string()
        } else if muted {
            "skipped: its class is switched off".to_string()
        } else {
            let (path, start, len) = candidates[(pick % candidates.len() as u64) as usize].clone();
            let byte = start + (pick >> 32) % len;
            if hard_state {
                self.count("disk.rot-hard-state");
            } else if record_file && path.ends_with("index") {
                self.count("disk.rot-index");
            } else if record_file {
                self.count("disk.rot-synced-record");
            } else {
                // Record data: this replica's copy of the partition is the damaged one.
                let dir = path.split_once('/').map_or("", |(dir, _)| dir).to_string();
                let later_segment = disk.file_paths().into_iter().any(|other| {
                    other.starts_with(&format!("{dir}/")) && other.ends_with(".log") && other > path
                });
                if !later_segment {
                    // Only the synced-through record proves it durable.
                    self.count("disk.rot-active-segment");
                }
                self.rot_targets.insert(dir, index);
            }
            self.nodes[index as usize]
                .io
                .disk
                .rot(&path, byte, 1 << bit);
            self.count("disk.rot");
            self.trace
                .event(now, TraceKind::Rot, &[u64::from(index), byte]);
            format!("{path} byte {byte} bit {bit}")
        };
        self.note_own_stream(Nemesis::Rot, index, muted, detail);
    }

    /// Traces and notes an event of a class drawn from a stream of its own (rot,
    /// misdirected writes, the wipe) on node `index`.
    fn note_own_stream(&mut self, nemesis: Nemesis, index: u32, muted: bool, detail: String) {
        let name = nemesis.class().map_or("?", FaultClass::name);
        self.trace.line(self.now, || {
            format!("nemesis: {name} on node {index}: {detail}")
        });
        self.note(TimelineKind::Nemesis {
            number: None,
            nemesis,
            node: index,
            skipped: muted,
            until_ns: None,
            detail,
        });
    }

    fn mean_interval(&self, nemesis: Nemesis) -> Option<u64> {
        let plan = &self.plan;
        match nemesis {
            Nemesis::Crash => plan.crash_every_ns,
            Nemesis::Kill => plan.kill_every_ns,
            Nemesis::Pause => plan.pause_every_ns,
            Nemesis::Restart => plan.restart_every_ns,
            Nemesis::Partition => plan.partition_every_ns,
            Nemesis::Clog => plan.clog_every_ns,
            Nemesis::DiskFull => plan.enospc_every_ns,
            Nemesis::ClockStep => plan.clock_step_every_ns,
            Nemesis::WallStep => plan.wall_step_every_ns,
            Nemesis::Repair
            | Nemesis::DiskSpace
            | Nemesis::Rot
            | Nemesis::Misdirect
            | Nemesis::Wipe => None,
        }
    }

    fn schedule_next(&mut self, nemesis: Nemesis) {
        let Some(mean) = self.mean_interval(nemesis) else {
            return;
        };
        let at = self.now + self.rng.range(1, 2 * mean);
        if at < self.duration_ns {
            self.schedule(at, Event::Nemesis(nemesis));
        }
    }

    fn nemesis(&mut self, nemesis: Nemesis) {
        if self.shared.phase != Phase::Safety {
            return;
        }
        let now = self.now;
        let index = self.rng.below(self.nodes.len() as u64) as u32;
        let follow_up = matches!(nemesis, Nemesis::Repair | Nemesis::DiskSpace);
        let number = (!follow_up).then(|| {
            self.nemeses_drawn += 1;
            self.nemeses_drawn - 1
        });
        let muted = nemesis
            .class()
            .is_some_and(|class| self.plan.is_muted(class));
        if let Some(number) = number
            && (muted
                || self.nemeses_max.is_some_and(|max| number >= max)
                || self.nemesis_skip.contains(&number))
        {
            // Drawn, not applied (`--nemesis-skip`, `--nemeses-max`, or a class
            // switched off by `--keep-faults`): the run is the same up to here; the
            // next event of this kind is still scheduled.
            self.trace.event(
                now,
                TraceKind::NemesisSkipped,
                &[nemesis.tag(), u64::from(index), number],
            );
            self.trace.line(now, || {
                format!("nemesis #{number}: {nemesis:?} on node {index} skipped")
            });
            self.note(TimelineKind::Nemesis {
                number: Some(number),
                nemesis,
                node: index,
                skipped: true,
                until_ns: None,
                detail: if muted {
                    "skipped: its class is switched off".to_string()
                } else {
                    "skipped".to_string()
                },
            });
            self.schedule_next(nemesis);
            return;
        }
        if !follow_up {
            self.nemeses_applied += 1;
        }
        self.trace
            .event(now, TraceKind::Nemesis, &[nemesis.tag(), u64::from(index)]);
        self.trace
            .line(now, || format!("nemesis: {nemesis:?} on node {index}"));
        let mut until_ns = None;
        let detail: String = match nemesis {
            Nemesis::Crash | Nemesis::Kill => {
                if self.nodes[index as usize].is_up() {
                    // Armed, not fired: the crash strikes the next time the node starts
                    // a sync (writes in flight, the interesting moment), or after a
                    // short while anyway.
                    self.nodes[index as usize].crash_armed = Some(nemesis == Nemesis::Crash);
                    let fallback = now + self.rng.log_range(10 * MS, 1_000 * MS);
                    self.schedule(fallback, Event::CrashNow { node: index });
                    format!(
                        "armed: strikes at the node's next sync, at the latest at {} ms",
                        fallback / MS
                    )
                } else {
                    "the node is down: nothing to do".to_string()
                }
            }
            Nemesis::Restart => {
                let sim_node = &mut self.nodes[index as usize];
                if let Some(node) = sim_node.node.as_mut() {
                    node.shutdown(&mut sim_node.io);
                    self.count("process.restart");
                    self.stop_node(index, false, "clean restart".to_string());
                    let delay = self.rng.log_range(MS, 500 * MS);
                    self.schedule_restart(index, now + delay);
                    "clean shutdown, then open".to_string()
                } else {
                    "the node is down: nothing to do".to_string()
                }
            }
            Nemesis::Pause => {
                let sim_node = &mut self.nodes[index as usize];
                if sim_node.is_up() {
                    let until = now + self.rng.log_range(10 * MS, 3_000 * MS);
                    sim_node.paused_until_ns = sim_node.paused_until_ns.max(until);
                    until_ns = Some(sim_node.paused_until_ns);
                    self.count("process.pause");
                    "no events reach the node until then".to_string()
                } else {
                    "the node is down: nothing to do".to_string()
                }
            }
            Nemesis::Partition if self.nodes.len() > 1 && self.rng.below(2) == 0 => {
                let (how, cut) = self.partition_peers(index);
                let until = now + self.rng.log_range(50 * MS, 5_000 * MS);
                let repair_at = until.min(self.duration_ns);
                self.schedule(repair_at, Event::Nemesis(Nemesis::Repair));
                until_ns = Some(repair_at);
                format!("{how}: {cut} links between brokers cut")
            }
            Nemesis::Partition => {
                let node = Endpoint::Node(index);
                let clients = self.clients.len() as u32;
                let mode = self.rng.below(3);
                let mut cut = 0;
                for client in 0..clients {
                    let all = mode != 1;
                    if !all && self.rng.below(2) == 0 {
                        continue;
                    }
                    let client = Endpoint::Client(client);
                    // Mode 2 is asymmetric: requests still arrive, responses are lost.
                    if mode != 2 {
                        self.network.cut(client, node);
                    }
                    self.network.cut(node, client);
                    cut += 1;
                }
                if cut > 0 {
                    self.count(match mode {
                        0 => "net.partition-isolate",
                        1 => "net.partition-some",
                        _ => "net.partition-asymmetric",
                    });
                }
                let until = now + self.rng.log_range(50 * MS, 5_000 * MS);
                let repair_at = until.min(self.duration_ns);
                self.schedule(repair_at, Event::Nemesis(Nemesis::Repair));
                until_ns = Some(repair_at);
                let how = match mode {
                    0 => "isolated from every client",
                    1 => "cut from some clients",
                    _ => "responses to every client lost (asymmetric)",
                };
                format!("{how}: {cut} clients")
            }
            Nemesis::Repair => {
                self.network.repair();
                "every cut link repaired".to_string()
            }
            Nemesis::Clog if self.nodes.len() > 1 && self.rng.below(2) == 0 => {
                let peers = self.nodes.len() as u64;
                let other = (index + 1 + self.rng.below(peers - 1) as u32) % peers as u32;
                let until = now + self.rng.log_range(10 * MS, 3_000 * MS);
                self.network
                    .hold(Endpoint::Node(index), Endpoint::Node(other), until);
                self.count("peer.clog");
                until_ns = Some(until);
                format!("link node {index} -> node {other} held")
            }
            Nemesis::Clog => {
                let client = self.rng.below(self.clients.len() as u64) as u32;
                let node = Endpoint::Node(index);
                let towards_node = self.rng.below(2) == 0;
                let (from, to) = if towards_node {
                    (Endpoint::Client(client), node)
                } else {
                    (node, Endpoint::Client(client))
                };
                let until = now + self.rng.log_range(10 * MS, 3_000 * MS);
                self.network.hold(from, to, until);
                self.count("net.clog");
                until_ns = Some(until);
                if towards_node {
                    format!("link client {client} -> node {index} held")
                } else {
                    format!("link node {index} -> client {client} held")
                }
            }
            Nemesis::DiskFull => {
                self.nodes[index as usize].io.disk.set_full(true);
                self.count("disk.enospc-episode");
                let until = now + self.rng.log_range(10 * MS, 2_000 * MS);
                self.schedule(until, Event::Nemesis(Nemesis::DiskSpace));
                until_ns = Some(until);
                "writes fail with ENOSPC".to_string()
            }
            Nemesis::DiskSpace => {
                for node in &mut self.nodes {
                    node.io.disk.set_full(false);
                }
                "disks have space again".to_string()
            }
            Nemesis::ClockStep => {
                let clock = &mut self.nodes[index as usize].io.clock;
                clock.advance_to(now);
                if self.rng.below(2) == 0 {
                    let step = self.rng.log_range(MS, 5_000 * MS);
                    clock.step_forward(step);
                    self.count("clock.step");
                    format!("monotonic clock steps {} ms forward", step / MS)
                } else {
                    let until = now + self.rng.log_range(MS, 2_000 * MS);
                    clock.stall_until(until);
                    self.count("clock.stall");
                    until_ns = Some(until);
                    "monotonic clock stalls".to_string()
                }
            }
            Nemesis::Rot => unreachable!("rot has its own event (World::rot)"),
            Nemesis::Misdirect => unreachable!("it has its own event (World::misdirect)"),
            Nemesis::Wipe => unreachable!("it has its own event (World::wipe)"),
            Nemesis::WallStep => {
                let clock = &mut self.nodes[index as usize].io.clock;
                let step =
                    self.rng.range(0, 2 * WALL_STEP_MS_MAX as u64 + 1) as i64 - WALL_STEP_MS_MAX;
                clock.step_wall(step);
                self.count("clock.wall-step");
                format!("wall clock steps {step} ms")
            }
        };
        self.note(TimelineKind::Nemesis {
            number,
            nemesis,
            node: index,
            skipped: false,
            until_ns,
            detail,
        });
        if !follow_up {
            self.schedule_next(nemesis);
        }
    }

    /// Cuts links between brokers around node `index`, one of four ways; returns how
    /// and how many directed links were cut.
    fn partition_peers(&mut self, index: u32) -> (&'static str, u32) {
        let nodes = self.nodes.len() as u32;
        let mode = self.rng.below(4);
        let mut cut = 0;
        let mut cut_link = |network: &mut Network, from: u32, to: u32| {
            network.cut(Endpoint::Node(from), Endpoint::Node(to));
            cut += 1;
        };
        let how = match mode {
            0 => {
                for other in (0..nodes).filter(|&o| o != index) {
                    cut_link(&mut self.network, index, other);
                    cut_link(&mut self.network, other, index);
                }
                "one broker isolated from its peers"
            }
            1 => {
                // Two halves: `index` and a random set of others against the rest.
                let mut side: Vec<bool> = (0..nodes).map(|_| self.rng.below(2) == 0).collect();
                side[index as usize] = true;
                for a in 0..nodes {
                    for b in 0..nodes {
                        if side[a as usize] != side[b as usize] {
                            cut_link(&mut self.network, a, b);
                        }
                    }
                }
                "brokers split in two"
            }
            2 => {
                // Asymmetric: what the broker sends is lost, what it receives arrives.
                let outgoing = self.rng.below(2) == 0;
                for other in (0..nodes).filter(|&o| o != index) {
                    if outgoing {
                        cut_link(&mut self.network, index, other);
                    } else {
                        cut_link(&mut self.network, other, index);
                    }
                }
                if outgoing {
                    "one broker's outgoing peer links cut"
                } else {
                    "one broker's incoming peer links cut"
                }
            }
            _ => {
                for a in 0..nodes {
                    for b in 0..nodes {
                        if a != b && self.rng.below(3) == 0 {
                            cut_link(&mut self.network, a, b);
                        }
                    }
                }
                "random directed peer links cut"
            }
        };
        self.count(match mode {
            0 => "peer.partition-isolate",
            1 => "peer.partition-halves",
            2 => "peer.partition-asymmetric",
            _ => "peer.partition-random",
        });
        (how, cut)
    }

    /// The end of the safety phase: every fault heals, down nodes come back, nodes
    /// that took a partition offline (or could not open one) are restarted, and the
    /// liveness clock starts.
    fn heal(&mut self) {
        let now = self.now;
        self.shared.phase = Phase::Liveness;
        self.note(TimelineKind::Phase("liveness"));
        self.trace
            .event(now, TraceKind::Phase, &[Phase::Liveness as u64]);
        self.trace
            .line(now, || "phase: faults heal, liveness".to_string());
        self.network.heal();
        for index in 0..self.nodes.len() as u32 {
            let sim_node = &mut self.nodes[index as usize];
            sim_node.io.disk.set_faults_active(false);
            sim_node.crash_armed = None;
            sim_node.io.clock.heal(now);
            sim_node.paused_until_ns = sim_node.paused_until_ns.min(now);
            let unhealthy = sim_node.node.as_ref().map(|node| {
                node.fatal().is_some()
                    || node.cluster().topics.values().any(|topic| {
                        (0..topic.partitions).any(|p| {
                            node.partition(&TopicPartition::new(topic.name.clone(), p))
                                .is_none_or(|partition| partition.is_offline())
                        })
                    })
            });
            match unhealthy {
                Some(true) => {
                    // An offline partition stays offline until a restart runs recovery
                    // (decision 0003): the operator's (here the supervisor's) job.
                    self.count("process.heal-restart");
                    self.stop_node(
                        index,
                        false,
                        "restarted at heal (a partition offline)".to_string(),
                    );
                    self.schedule_restart(index, now);
                }
                Some(false) => {}
                // A broker whose disk was wiped refused to start: it is gone for good.
                None if self.wiped == Some(index) => {}
                None => self.schedule_restart(index, now),
            }
        }
        self.liveness_deadline_ns = now + self.liveness_bound_ns;
        self.schedule(self.liveness_deadline_ns, Event::LivenessDeadline);
        for client in 0..self.clients.len() as u32 {
            self.schedule_wake(client, now);
        }
    }
}

/// Acknowledged sends a check after a restart found missing: those of `topic` (one
/// partition of it, or all) at or above `from_offset`.
struct LostSends {
    topic: String,
    partition: Option<i32>,
    from_offset: i64,
}

/// Names of the process and nemesis counters, always printed (zero too).
const PROCESS_COUNTERS: &[&str] = &[
    "process.crash",
    "process.kill",
    "process.pause",
    "process.restart",
    "process.fatal-exit",
    "process.heal-restart",
    "process.start-failed-by-fault",
    "process.wipe",
    "process.wipe-refused",
    "net.clog",
    "disk.enospc-episode",
    "clock.step",
    "clock.stall",
    "clock.wall-step",
];

/// Records in a one-partition Produce (what the response's base offset covers).
fn produce_records(body: &RequestKind) -> i64 {
    let RequestKind::Produce(produce) = body else {
        return 0;
    };
    let mut count = 0;
    for topic in &produce.topic_data {
        for partition in &topic.partition_data {
            if let Some(records) = &partition.records
                && let Ok(header) = odradek_log::batch::BatchHeader::parse(records)
            {
                count += i64::from(header.record_count);
            }
        }
    }
    count
}

/// Whether a ListOffsets asks for the latest offset (the high watermark).
fn list_offsets_latest(body: &RequestKind) -> bool {
    let RequestKind::ListOffsets(list) = body else {
        return false;
    };
    list.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .all(|p| p.timestamp == -1)
}

/// A hash of what matters in a response, for the trace.
fn response_digest(response: &ResponseKind) -> u64 {
    let mut hash = Fnv64::default();
    match response {
        ResponseKind::Produce(produce) => {
            hash.word(1);
            for topic in &produce.responses {
                for partition in &topic.partition_responses {
                    hash.word(partition.error_code as u64);
                    hash.word(partition.base_offset as u64);
                }
            }
        }
        ResponseKind::Fetch(fetch) => {
            hash.word(2);
            hash.word(fetch.error_code as u64);
            for topic in &fetch.responses {
                for data in &topic.partitions {
                    hash.word(data.error_code as u64);
                    hash.word(data.high_watermark as u64);
                    hash.word(data.log_start_offset as u64);
                    if let Some(records) = &data.records {
                        hash.bytes(records);
                    }
                }
            }
        }
        ResponseKind::ListOffsets(list) => {
            hash.word(3);
            for topic in &list.topics {
                for data in &topic.partitions {
                    hash.word(data.error_code as u64);
                    hash.word(data.offset as u64);
                }
            }
        }
        ResponseKind::CreateTopics(created) => {
            hash.word(4);
            for topic in &created.topics {
                hash.word(topic.error_code as u64);
            }
        }
        ResponseKind::InitProducerId(init) => {
            hash.word(5);
            hash.word(init.error_code as u64);
            hash.word(init.producer_id.0 as u64);
            hash.word(init.producer_epoch as u64);
        }
        _ => hash.word(6),
    }
    hash.finish()
}

/// One line about a response, for the text trace.
fn describe_response(response: &ResponseKind) -> String {
    match response {
        ResponseKind::Produce(produce) => {
            let parts: Vec<String> = produce
                .responses
                .iter()
                .flat_map(|t| {
                    t.partition_responses.iter().map(move |p| {
                        format!(
                            "{}-{} error {} base {}",
                            t.name.0, p.index, p.error_code, p.base_offset
                        )
                    })
                })
                .collect();
            format!("Produce [{}]", parts.join(", "))
        }
        ResponseKind::Fetch(fetch) => {
            let parts: Vec<String> = fetch
                .responses
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        format!(
                            "{}-{} error {} hw {} bytes {}",
                            t.topic.0,
                            p.partition_index,
                            p.error_code,
                            p.high_watermark,
                            p.records.as_ref().map_or(0, |r| r.len())
                        )
                    })
                })
                .collect();
            format!("Fetch [{}]", parts.join(", "))
        }
        ResponseKind::ListOffsets(list) => {
            let parts: Vec<String> = list
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        format!(
                            "{}-{} error {} offset {}",
                            t.name.0, p.partition_index, p.error_code, p.offset
                        )
                    })
                })
                .collect();
            format!("ListOffsets [{}]", parts.join(", "))
        }
        ResponseKind::CreateTopics(created) => {
            let parts: Vec<String> = created
                .topics
                .iter()
                .map(|t| format!("{} error {}", t.name.0, t.error_code))
                .collect();
            format!("CreateTopics [{}]", parts.join(", "))
        }
        ResponseKind::InitProducerId(init) => format!(
            "InitProducerId error {} id {} epoch {}",
            init.error_code, init.producer_id.0, init.producer_epoch
        ),
        _ => "other".to_string(),
    }
}

impl World {
    /// The seed this world runs.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The history so far, with the partitions of the workload (for reports).
    pub fn partitions(&self) -> Vec<PartitionKey> {
        self.workload.partitions()
    }
}

/// The name of a request's API, for the text trace.
fn api_name(body: &RequestKind) -> &'static str {
    match body {
        RequestKind::Produce(_) => "Produce",
        RequestKind::Fetch(_) => "Fetch",
        RequestKind::ListOffsets(_) => "ListOffsets",
        RequestKind::CreateTopics(_) => "CreateTopics",
        RequestKind::InitProducerId(_) => "InitProducerId",
        RequestKind::Metadata(_) => "Metadata",
        RequestKind::FindCoordinator(_) => "FindCoordinator",
        RequestKind::JoinGroup(_) => "JoinGroup",
        RequestKind::SyncGroup(_) => "SyncGroup",
        RequestKind::Heartbeat(_) => "Heartbeat",
        RequestKind::OffsetCommit(_) => "OffsetCommit",
        RequestKind::OffsetFetch(_) => "OffsetFetch",
        _ => "other",
    }
}

/// The key the cluster checks use for the metadata quorum: Kafka's name for its log.
fn metadata_key() -> TopicPartition {
    TopicPartition::new("__cluster_metadata", 0)
}
