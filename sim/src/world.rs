//! The simulated world: one seeded event queue, global time, nodes, clients, the
//! network between them, the nemesis that breaks things, and the checks that run
//! after every step. The world composes its parts and routes events between them:
//! the queue and time (`scheduler.rs`, the events it holds: `event.rs`), the nemesis
//! that plans and injects faults (`nemesis.rs`), the supervision of the nodes'
//! processes (`supervision.rs`) and the checks (`checks.rs`).
//!
//! ```text
//!   Scheduler<(time, seq)> ──pop──► node event ──► Node::handle ──► SimIo buffers
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
//! - **wipe** (clusters of three or more, once per run, `FaultInjector::wipe` in `nemesis.rs`): a power loss,
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
//! - with the compaction workload: every Fetch answer of the compacted partition, and
//!   each replica's committed log at the end, pass `compaction_check.rs`'s rules.
//! - with the config-change workload: a lone broker's applied configs after it opens,
//!   and every broker's at the end, pass `config_check.rs`'s rules.
//! - with the delete-records workload: every Fetch and DeleteRecords answer to its
//!   client, and every broker at the end, pass `trim_check.rs`'s rules.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{RequestKind, ResponseKind};
use odradek_log::io::{Instant, IoId, TimerId};
use odradek_model::groups::GroupHistory;
use odradek_model::history::{History, PartitionKey};
use odradek_replication::peer::PeerMessage;
use odradek_replication::{Event as NodeEvent, NodeConfig, Request, RequestId, TopicPartition};

use crate::checks::{Checker, describe_partition};
use crate::client::Client;
use crate::clock::NodeClock;
use crate::compaction::{COMPACTED_TOPIC, CompactionPlan, KeyedClient};
use crate::compaction_check::{CompactionChecker, KeyedHistory, TombstoneExpiry};
use crate::config_changes::{ConfigClient, ConfigPlan, config_resources};
use crate::config_check::ConfigHistory;
use crate::counters::Counters;
use crate::disk::SimDisk;
use crate::event::Event;
use crate::faults::{FaultClass, FaultPlan, Nemesis};
use crate::group::GroupMember;
use crate::nemesis::{FaultInjector, Injected, NodeEffect, PlanConfig, Targets};
use crate::network::{Endpoint, Network};
use crate::node::{Buggify, HeldRequest, SimIo, SimNode};
use crate::rng::{SimRng, mix};
use crate::scheduler::Scheduler;
use crate::supervision::{Opened, Supervisor};
use crate::timeline::{TimelineEvent, TimelineKind};
use crate::trace::{Fnv64, Trace, TraceKind};
use crate::trim::{TrimClient, TrimPlan};
use crate::workload::{
    Admin, Consumer, Ctx, FinalReader, MetadataClient, Outgoing, Phase, Producer, Shared,
    WorkloadPlan,
};

const MS: u64 = 1_000_000;

/// Random streams, so adding draws to one part does not shift the others (the plan's
/// and those of the classes drawn on their own: `nemesis::stream`).
mod stream {
    pub const WORLD: u64 = 2;
    pub const CLIENTS: u64 = 3;
    pub const NODE_BASE: u64 = 100;
}

/// Events processed at most in one run: a bound that turns a livelock in the
/// simulated code into a failure instead of a hang.
pub const EVENTS_MAX: u64 = 50_000_000;

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
    /// The compaction workload: `Some(true)` in every seed, `Some(false)` in none,
    /// `None` in one seed in three, by its draw.
    pub compaction: Option<bool>,
    /// The config-change workload: `Some(true)` in every seed, `Some(false)` in none,
    /// `None` in one seed in three, by its draw.
    pub config_changes: Option<bool>,
    /// The delete-records workload, as `compaction` (its own draw).
    pub delete_records: Option<bool>,
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
    /// Global time and the queued events.
    queue: Scheduler<Event>,
    rng: SimRng,
    client_rng: SimRng,
    /// The nodes, their processes and disks.
    nodes: Supervisor,
    clients: Vec<Client>,
    client_wake_ns: Vec<u64>,
    network: Network,
    /// The seed's faults, planned and injected.
    faults: FaultInjector,
    /// What the checks remember, and the first violation.
    checks: Checker,
    /// The history every client records into.
    pub history: History,
    /// What consumer-group members were told (empty without `--groups`).
    pub groups: GroupHistory,
    /// State the clients share.
    pub shared: Shared,
    /// The trace.
    pub trace: Trace,
    /// The seed's workload.
    pub workload: WorkloadPlan,
    counters: Counters,
    next_correlation: u64,
    seed: u64,
    duration_ns: u64,
    liveness_bound_ns: u64,
    ending: Option<Ending>,
    /// What the nemesis and the supervisor did, for people (not hashed).
    pub timeline: Vec<TimelineEvent>,
    /// The client that invoked each operation of the history, by index.
    operation_clients: Vec<u32>,
    /// The seed's compaction workload and its checker, if it has one.
    compaction: Option<(CompactionPlan, CompactionChecker)>,
    /// The seed's config-change workload, if it has one.
    config_plan: Option<ConfigPlan>,
}

impl World {
    /// Builds the world of one seed: draws the fault plan and the workload, creates
    /// nodes and clients, and schedules the first events.
    pub fn new(config: &WorldConfig) -> World {
        let seed = config.seed;
        let mut plan_rng = SimRng::new(seed, crate::nemesis::stream::PLAN);
        let plan_config = PlanConfig {
            seed,
            nodes: config.nodes,
            faults: &config.faults,
            keep_faults: config.keep_faults.as_ref(),
            nemeses_max: config.nemeses_max,
            nemesis_skip: config.nemesis_skip.clone(),
        };
        let faults = FaultInjector::draw(plan_config, &mut plan_rng);
        let workload = WorkloadPlan::draw(&mut plan_rng, config.idempotent);
        let mut node_config = draw_node_config(config, &mut plan_rng);
        let compaction_plan = draw_compaction(config, &mut node_config);
        let mut nodes = build_nodes(config, faults.plan());
        if config.nodes > 1 {
            format_cluster(seed, &mut nodes);
            node_config.voters = (1..=config.nodes as i32).collect();
            // Every seed's workload creates its topics with replication factor
            // min(3, nodes); more members for __consumer_offsets would only be slower.
            node_config.offsets_topic_replication_factor = config.nodes.min(3) as i16;
        }
        let mut shared = Shared::new(workload.topics.clone());
        shared.nodes = config.nodes;
        let mut clients = build_clients(config, &workload, &mut shared);
        let compaction = compaction_plan
            .map(|plan| add_compaction(config, faults.plan(), plan, &mut shared, &mut clients));
        let config_plan = add_config_changes(config, &mut shared, &mut clients);
        if let Some(plan) = TrimPlan::draw(seed, config.delete_records) {
            clients.push(Client::Trim(Box::new(TrimClient::new(seed, &plan))));
        }
        let network = Network::new(faults.plan().network.clone());
        let mut world = World {
            queue: Scheduler::new(),
            rng: SimRng::new(seed, stream::WORLD),
            client_rng: SimRng::new(seed, stream::CLIENTS),
            nodes: Supervisor::new(nodes, node_config),
            client_wake_ns: vec![u64::MAX; clients.len()],
            clients,
            network: if config.nodes > 1 {
                network.with_peers()
            } else {
                network
            },
            faults,
            checks: Checker::new(),
            history: History::new(),
            groups: GroupHistory::default(),
            shared,
            trace: Trace::new(config.keep_trace, config.echo_trace),
            workload,
            counters: Counters::with_zeroes(PROCESS_COUNTERS),
            next_correlation: 1,
            seed,
            duration_ns: config.duration_ns,
            liveness_bound_ns: config.liveness_bound_ns,
            ending: None,
            timeline: Vec::new(),
            operation_clients: Vec::new(),
            compaction,
            config_plan,
        };
        world.schedule_first_events(config.nodes);
        world
    }

    /// The first events: every node starts, every client wakes, the nemesis's first
    /// events, the heal at the end of the safety phase.
    fn schedule_first_events(&mut self, nodes: u32) {
        for node in 0..nodes {
            self.queue.schedule(0, Event::NodeStart { node });
        }
        for client in 0..self.clients.len() as u32 {
            self.schedule_wake(client, MS);
        }
        let (faults, mut targets) = self.targets();
        faults.schedule_first(&mut targets);
        self.queue.schedule(self.duration_ns, Event::Heal);
    }

    /// The nemesis, and what it may break.
    fn targets(&mut self) -> (&mut FaultInjector, Targets<'_>) {
        let targets = Targets {
            now: self.queue.now(),
            rng: &mut self.rng,
            nodes: &mut self.nodes,
            network: &mut self.network,
            queue: &mut self.queue,
            counters: &mut self.counters,
            trace: &mut self.trace,
            clients: self.clients.len() as u32,
            duration_ns: self.duration_ns,
        };
        (&mut self.faults, targets)
    }

    /// Runs to the end: the final reads complete, a check fails, or the liveness
    /// bound passes.
    pub fn run(&mut self) -> Ending {
        while self.ending.is_none() {
            let Some(event) = self.queue.pop() else {
                self.ending = Some(Ending::Liveness(
                    "the event queue ran dry before the final reads completed".to_string(),
                ));
                break;
            };
            if self.queue.events() > EVENTS_MAX {
                self.ending = Some(Ending::Liveness(format!(
                    "more than {EVENTS_MAX} events: a livelock?"
                )));
                break;
            }
            self.handle(event);
            if let Some(violation) = self.checks.take_violation() {
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
        self.queue.now()
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.queue.events()
    }

    /// Every fault counter: process and nemesis counters, each node's disk, the
    /// network, BUGGIFY firings.
    pub fn fault_counters(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = self
            .counters
            .iter()
            .map(|(name, count)| (name.to_string(), count))
            .collect();
        for (name, count) in self.network.counters() {
            *all.entry(name.to_string()).or_insert(0) += count;
        }
        for node in self.nodes.iter() {
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
        self.nodes.catch_up_ms()
    }

    /// The seed's fault plan.
    pub fn plan(&self) -> &FaultPlan {
        self.faults.plan()
    }

    /// The sim-side final check: every acknowledged record is in the final reads at
    /// the offset it was acknowledged with. (The model's checkers do this and much
    /// more; this one needs nothing but the history and runs even without them.)
    pub fn check_final_reads(&mut self) -> Result<(), String> {
        self.checks
            .check_final_reads(&self.history, &self.shared.final_values)
    }

    /// Counters of client behaviour (retries, seeks, ...).
    pub fn client_stats(&self) -> BTreeMap<String, u64> {
        self.shared
            .stats
            .iter()
            .map(|(name, count)| (name.to_string(), *count))
            .collect()
    }

    fn schedule_wake(&mut self, client: u32, at: u64) {
        let scheduled = &mut self.client_wake_ns[client as usize];
        // One pending wake-up per client is enough: an earlier one replaces a later
        // one (the later one then runs as a harmless extra tick).
        if *scheduled > self.queue.now() && *scheduled <= at {
            return;
        }
        *scheduled = at;
        self.queue.schedule(at, Event::ClientWake { client });
    }

    fn count(&mut self, name: &'static str) {
        self.counters.count(name);
    }

    /// A check failed (the first failure ends the run).
    fn fail(&mut self, violation: String) {
        self.checks.fail(violation);
        self.note_violation();
    }

    /// Puts a violation the checker recorded since the last call on the timeline.
    fn note_violation(&mut self) {
        if let Some(violation) = self.checks.violation_to_note() {
            self.note(TimelineKind::Violation(violation));
        }
    }

    /// A check of a response `client` was sent failed.
    fn fail_response(&mut self, client: u32, violation: String) {
        self.checks.fail_response(client, violation);
        self.note_violation();
    }

    fn note(&mut self, kind: TimelineKind) {
        self.timeline.push(TimelineEvent {
            at_ns: self.queue.now(),
            kind,
        });
    }

    /// Nemesis events applied so far (skipped ones and repairs not counted).
    pub fn nemeses_applied(&self) -> u64 {
        self.faults.applied()
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
                    Client::Keyed(_) => "keyed (compaction)",
                    Client::Config(_) => "config changes",
                    Client::Trim(_) => "trim (delete records)",
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
        let mut marks = self.checks.violation_marks().clone();
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
        if let (Some(client), Some(at)) = (self.checks.violation_client(), at) {
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
            } => self.client_response(client, correlation, &response),
            Event::ClientLost {
                client,
                correlation,
                why,
            } => self.client_lost(client, correlation, why),
            Event::ClientWake { client } => self.client_wake(client),
            Event::Nemesis(_) | Event::Rot | Event::Misdirect | Event::Wipe
                if self.shared.phase != Phase::Safety => {}
            Event::Nemesis(nemesis) => self.nemesis(nemesis),
            Event::Rot => self.own_stream_fault(FaultInjector::rot),
            Event::Misdirect => self.own_stream_fault(FaultInjector::misdirect),
            Event::Wipe => {
                let (faults, mut targets) = self.targets();
                if let Some(injected) = faults.wipe(&mut targets) {
                    self.after_injection(injected);
                }
            }
            Event::CrashNow { node } => {
                if self.shared.phase == Phase::Safety {
                    self.crash_armed_node(node);
                }
            }
            Event::Heal => self.heal(),
            Event::LivenessDeadline => {
                if self.shared.phase != Phase::Done {
                    self.ending = Some(Ending::Liveness(self.liveness_report()));
                }
            }
        }
    }

    /// What was not done when the liveness bound passed: the phase, the nodes, the
    /// replicas of a cluster, what each client waits for.
    fn liveness_report(&self) -> String {
        let stuck: Vec<String> = self
            .clients
            .iter()
            .filter(|c| !c.is_done(&self.shared))
            .map(Client::describe)
            .collect();
        let replicas = if self.nodes.is_cluster() {
            format!("; replicas: {}", self.describe_replicas())
        } else {
            String::new()
        };
        format!(
            "not done {} ms after faults healed (phase {:?}); nodes: {}{replicas}; waiting: {}",
            self.liveness_bound_ns / MS,
            self.shared.phase,
            self.nodes.describe().join(", "),
            stuck.join(" | ")
        )
    }

    // ----- clients -----------------------------------------------------------------

    /// A response reaches `client`.
    fn client_response(&mut self, client: u32, correlation: u64, response: &ResponseKind) {
        let now = self.queue.now();
        self.trace.event(
            now,
            TraceKind::ClientResponse,
            &[u64::from(client), correlation],
        );
        self.trace.line(now, || {
            format!("client {client} <- response #{correlation}")
        });
        self.with_client(client, |c, ctx| c.on_response(ctx, correlation, response));
    }

    /// `client` loses a request: it timed out, or its connection broke.
    fn client_lost(&mut self, client: u32, correlation: u64, why: &'static str) {
        let now = self.queue.now();
        self.trace.event(
            now,
            TraceKind::ClientLost,
            &[u64::from(client), correlation],
        );
        self.trace.line(now, || {
            format!("client {client} lost #{correlation}: {why}")
        });
        self.with_client(client, |c, ctx| c.on_lost(ctx, correlation, why));
    }

    /// A wake-up `client` asked for comes due.
    fn client_wake(&mut self, client: u32) {
        let now = self.queue.now();
        if self.client_wake_ns[client as usize] == now {
            self.client_wake_ns[client as usize] = u64::MAX;
        }
        self.trace
            .event(now, TraceKind::ClientWake, &[u64::from(client)]);
        self.with_client(client, |c, ctx| c.tick(ctx));
    }

    // ----- clients -----------------------------------------------------------------

    fn with_client(&mut self, client: u32, f: impl FnOnce(&mut Client, &mut Ctx<'_>)) {
        let mut ctx = Ctx {
            now: self.queue.now(),
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
            self.queue.schedule(
                self.queue.now() + timeout,
                Event::ClientLost {
                    client,
                    correlation,
                    why: "request timed out",
                },
            );
        }
        let arrivals = self.network.send(
            &mut self.rng,
            self.queue.now(),
            Endpoint::Client(client),
            Endpoint::Node(node),
            !acks_zero,
        );
        if arrivals.len() > 1 {
            if let Some(history) = self.shared.compaction.as_mut() {
                history.duplicated(correlation);
            }
            if let Some(history) = self.shared.config_changes.as_mut() {
                history.duplicated(correlation);
            }
        }
        self.trace.event(
            self.queue.now(),
            TraceKind::ClientSend,
            &[u64::from(client), correlation, arrivals.len() as u64],
        );
        self.trace.line(self.queue.now(), || {
            format!(
                "client {client} -> node {node} #{correlation} {:?} ({} copies)",
                api_name(&request.body),
                arrivals.len()
            )
        });
        let request = Box::new(request);
        for at in arrivals {
            self.queue.schedule(
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
                    self.trace.event(
                        self.queue.now(),
                        TraceKind::Phase,
                        &[Phase::FinalRead as u64],
                    );
                    self.trace
                        .line(self.queue.now(), || "phase: final reads".to_string());
                    for client in 0..self.clients.len() as u32 {
                        self.schedule_wake(client, self.queue.now());
                    }
                }
            }
            Phase::FinalRead => {
                if self.clients.iter().all(|c| c.is_done(&self.shared)) {
                    if self.nodes.is_cluster() {
                        self.check_cluster_at_end();
                    }
                    self.check_compacted_replicas_at_end();
                    self.check_configs_at_end();
                    self.check_trimmed_at_end();
                    self.shared.phase = Phase::Done;
                    self.note(TimelineKind::Phase("done"));
                    self.trace
                        .event(self.queue.now(), TraceKind::Phase, &[Phase::Done as u64]);
                    self.trace
                        .line(self.queue.now(), || "phase: done".to_string());
                    self.ending = Some(Ending::Complete);
                }
            }
            Phase::Safety | Phase::Done => {}
        }
    }

    // ----- nodes -------------------------------------------------------------------

    fn start_node(&mut self, index: u32) {
        let now = self.queue.now();
        let opened = self.nodes.open(index, now);
        if matches!(opened, Opened::AlreadyUp) {
            return;
        }
        let ok = matches!(opened, Opened::Up { .. });
        self.trace.event(
            now,
            TraceKind::NodeStart,
            &[u64::from(index), u64::from(ok)],
        );
        match opened {
            Opened::AlreadyUp => {}
            Opened::Up { incarnation } => {
                self.note(TimelineKind::NodeUp {
                    node: index,
                    incarnation,
                });
                self.trace.line(now, || {
                    format!("node {index} started (incarnation {incarnation})")
                });
                self.checks
                    .check_after_open(self.nodes.as_slice(), &self.history, index);
                self.note_violation();
                self.check_configs_after_open(index);
                self.after_node_step(index);
            }
            Opened::Failed {
                error,
                faults_during_open,
            } => self.start_failed(index, &error, faults_during_open),
        }
    }

    /// Node `index` failed to open: the wiped broker must; with a disk fault during
    /// recovery it may (retried later); else a finding.
    fn start_failed(
        &mut self,
        index: u32,
        error: &odradek_replication::NodeError,
        faults_during_open: u64,
    ) {
        let now = self.queue.now();
        self.note(TimelineKind::NodeStartFailed {
            node: index,
            error: error.to_string(),
        });
        self.trace
            .line(now, || format!("node {index} failed to start: {error}"));
        if self.nodes.refused_wiped_disk(index, error) {
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

    /// Starts node `index` again at `at`, unless a restart is pending already.
    fn schedule_restart(&mut self, index: u32, at: u64) {
        if self.nodes.claim_restart(index) {
            self.queue.schedule(at, Event::NodeStart { node: index });
        }
    }

    /// Whether an event for `index` of `incarnation` should be delivered now; puts it
    /// back (returns false) while the node is paused.
    fn node_ready(&self, index: u32, incarnation: u64) -> bool {
        let node = self.nodes.node(index);
        node.is_up() && node.incarnation == incarnation
    }

    fn node_timer(&mut self, index: u32, incarnation: u64, at: Instant, timer: TimerId) {
        if !self.node_ready(index, incarnation) {
            return;
        }
        let now = self.queue.now();
        let node = self.nodes.node_mut(index);
        if node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.queue.schedule(
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
            self.queue.schedule(
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
        let now = self.queue.now();
        let node = self.nodes.node_mut(index);
        let current = node.is_up() && node.incarnation == incarnation;
        if current && node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.queue.schedule(
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
        let now = self.queue.now();
        let node = self.nodes.node_mut(index);
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
            self.queue.schedule(
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
        let held = held_request(client, correlation, acks_zero, &request.body);
        node.held.insert(id, held);
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

    /// A bundle node `index` sent to broker `to` goes on the network.
    fn peer_send(&mut self, index: u32, to: i32, message: PeerMessage) {
        let disk = self.nodes.node(index).io.disk.inner();
        self.checks.check_votes_durable(disk, index, to, &message);
        self.note_violation();
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
            self.queue.now(),
            Endpoint::Node(index),
            Endpoint::Node(target),
            true,
        );
        self.trace.event(
            self.queue.now(),
            TraceKind::PeerSend,
            &[u64::from(index), u64::from(target), arrivals.len() as u64],
        );
        self.trace.line(self.queue.now(), || {
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
            self.queue.schedule(
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
        let now = self.queue.now();
        let node = self.nodes.node_mut(index);
        if !node.is_up() {
            return;
        }
        if node.paused_until_ns > now {
            let until = node.paused_until_ns;
            self.queue.schedule(
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
            self.queue.now(),
            Endpoint::Node(index),
            Endpoint::Client(client),
            false,
        );
        if let Some(&at) = arrivals.first() {
            self.queue.schedule(
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
        let sim_node = self.nodes.node_mut(index);
        let node = sim_node.node.as_mut().expect("delivered to a running node");
        node.handle(&mut sim_node.io, event);
        node.check_invariants();
        self.after_node_step(index);
    }

    /// Turns what the node asked for into events, and checks what it answered.
    fn after_node_step(&mut self, index: u32) {
        if self.nodes.is_cluster() {
            self.checks
                .check_leaders(self.nodes.as_slice(), &self.history, index);
            self.note_violation();
        }
        self.observe_cleaning_point(index);
        self.observe_trim_point(index);
        let now = self.queue.now();
        let sim_node = self.nodes.node_mut(index);
        let responses = std::mem::take(&mut sim_node.io.responses);
        let sent = std::mem::take(&mut sim_node.io.sent);
        let syncs_started = self.schedule_timers_and_syncs(index);
        for (id, response) in responses {
            self.node_responded(index, id, response);
        }
        // After the answers are checked: an answer may have been computed before a
        // creation the same step applied.
        self.nodes.after_step(index, now);
        for (to, message) in sent {
            self.peer_send(index, to, message);
        }
        if syncs_started && self.nodes.node(index).crash_armed.is_some() {
            self.crash_armed_node(index);
            return;
        }
        if let Some(reason) = self.nodes.fatal(index) {
            // The driver exits and the supervisor starts the node again.
            self.trace
                .line(now, || format!("node {index} fatal: {reason}"));
            self.count("process.fatal-exit");
            self.stop_node(index, false, format!("fatal exit: {reason}"));
            let delay = self.rng.log_range(MS, 1_000 * MS);
            self.schedule_restart(index, now + delay);
        }
    }

    /// Schedules the timers node `index` asked for (at the global time its clock
    /// reaches them) and the completions of the syncs it started (after the disk's
    /// latency); returns whether it started any sync.
    fn schedule_timers_and_syncs(&mut self, index: u32) -> bool {
        let now = self.queue.now();
        let sim_node = self.nodes.node_mut(index);
        let incarnation = sim_node.incarnation;
        let timers = std::mem::take(&mut sim_node.io.timers);
        let syncs = sim_node.io.disk.take_started();
        let syncs_started = !syncs.is_empty();
        let mut scheduled = Vec::new();
        for (at, timer) in timers {
            let global = sim_node.io.clock.global_time_of(at);
            let event = Event::NodeTimer {
                node: index,
                incarnation,
                at,
                timer,
            };
            scheduled.push((global, event));
        }
        for io in syncs {
            let latency = sim_node.io.disk.sync_latency_ns();
            let event = Event::NodeSync {
                node: index,
                incarnation,
                io,
            };
            scheduled.push((now + latency, event));
        }
        for (at, event) in scheduled {
            self.queue.schedule(at, event);
        }
        syncs_started
    }

    fn node_responded(&mut self, index: u32, id: RequestId, response: ResponseKind) {
        let now = self.queue.now();
        let sim_node = self.nodes.node_mut(index);
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
        self.checks
            .check_response(self.nodes.as_slice(), index, incarnation, &held, &response);
        let applied = &self.nodes.node(index).topics_applied;
        self.checks
            .check_known_topics(applied, index, &held, &response);
        self.check_compacted_fetch(index, held.client, &response);
        self.check_trim_answer(index, held.client, held.correlation, &response);
        self.note_violation();
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
            self.queue.schedule(
                at,
                Event::ClientResponse {
                    client: held.client,
                    correlation: held.correlation,
                    response: response.clone(),
                },
            );
        }
    }

    /// Each workload partition's replicas, for a liveness report: per node, `L` (leads)
    /// or `F`, the epoch, the high watermark and the log end offset, and `offline` if
    /// its log failed.
    fn describe_replicas(&self) -> String {
        let mut parts = Vec::new();
        for key in self.workload.partitions() {
            let key = TopicPartition::new(key.topic.clone(), key.partition);
            parts.push(describe_partition(self.nodes.as_slice(), &key));
        }
        parts.join(" ")
    }

    /// In a cluster, once the final reads are done: see [`Checker::check_cluster_at_end`].
    fn check_cluster_at_end(&mut self) {
        let rot_targets = self.faults.rot_targets();
        let end = self
            .checks
            .check_cluster_at_end(self.nodes.as_mut_slice(), rot_targets);
        self.counters.add("disk.rot-unread-at-end", end.latent_rot);
        self.counters
            .add("repl.replica-repairs", end.replica_repairs);
        self.note_violation();
    }

    /// Stops a node: `power_loss` crashes its disk too. Its clients lose what it held.
    fn stop_node(&mut self, index: u32, power_loss: bool, why: String) {
        self.note(TimelineKind::NodeDown { node: index, why });
        let crash_seed = self.rng.next_u64();
        let held = self.nodes.stop(index, power_loss, crash_seed);
        for request in held.values() {
            self.refuse(index, request.client, request.correlation);
        }
    }

    /// Fires an armed crash or kill on a running node.
    fn crash_armed_node(&mut self, index: u32) {
        let Some(power_loss) = self.nodes.take_armed_crash(index) else {
            return;
        };
        let now = self.queue.now();
        self.trace.event(
            now,
            TraceKind::Crash,
            &[u64::from(index), u64::from(power_loss)],
        );
        let why = if power_loss { "power loss" } else { "killed" };
        self.trace.line(now, || {
            let what = if power_loss {
                "loses power"
            } else {
                "is killed"
            };
            format!("node {index} {what}")
        });
        self.count(if power_loss {
            "process.crash"
        } else {
            "process.kill"
        });
        self.stop_node(index, power_loss, why.to_string());
        let delay = self.rng.log_range(MS, 3_000 * MS);
        self.schedule_restart(index, now + delay);
    }

    // ----- the nemesis -------------------------------------------------------------

    /// A nemesis event of a class on the world's stream.
    fn nemesis(&mut self, nemesis: Nemesis) {
        let (faults, mut targets) = self.targets();
        let injected = faults.inject(nemesis, &mut targets);
        let schedule_next = injected.schedule_next;
        self.after_injection(injected);
        if schedule_next {
            let (faults, mut targets) = self.targets();
            faults.schedule_next(nemesis, &mut targets);
        }
    }

    /// An event of a class drawn on its own stream (rot, misdirected writes).
    fn own_stream_fault(&mut self, inject: fn(&mut FaultInjector, &mut Targets<'_>) -> Injected) {
        let (faults, mut targets) = self.targets();
        let injected = inject(faults, &mut targets);
        self.after_injection(injected);
    }

    /// What follows a nemesis event for the node's process, then its timeline entry.
    fn after_injection(&mut self, injected: Injected) {
        let now = self.queue.now();
        match injected.then {
            None => {}
            Some(NodeEffect::Restart { node, delay_ns }) => {
                self.stop_node(node, false, "clean restart".to_string());
                let delay = self.rng.log_range(delay_ns.0, delay_ns.1);
                self.schedule_restart(node, now + delay);
            }
            Some(NodeEffect::Wipe {
                node,
                memdisk_seed,
                restart_at,
            }) => {
                if self.nodes.node(node).is_up() {
                    self.stop_node(node, true, "disk lost".to_string());
                }
                self.nodes.wipe(node, memdisk_seed);
                self.schedule_restart(node, restart_at);
            }
        }
        self.note(injected.note);
    }

    // ----- the nemesis -------------------------------------------------------------

    /// The end of the safety phase: every fault heals, down nodes come back, nodes
    /// that took a partition offline (or could not open one) are restarted, and the
    /// liveness clock starts.
    fn heal(&mut self) {
        let now = self.queue.now();
        self.shared.phase = Phase::Liveness;
        self.note(TimelineKind::Phase("liveness"));
        self.trace
            .event(now, TraceKind::Phase, &[Phase::Liveness as u64]);
        self.trace
            .line(now, || "phase: faults heal, liveness".to_string());
        self.network.heal();
        for index in 0..self.nodes.len() as u32 {
            match self.nodes.heal(index, now) {
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
                None if self.nodes.wiped() == Some(index) => {}
                None => self.schedule_restart(index, now),
            }
        }
        self.queue
            .schedule(now + self.liveness_bound_ns, Event::LivenessDeadline);
        for client in 0..self.clients.len() as u32 {
            self.schedule_wake(client, now);
        }
    }
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

/// What the world keeps of a request a node is handling, to route and check its answer.
fn held_request(client: u32, correlation: u64, acks_zero: bool, body: &RequestKind) -> HeldRequest {
    HeldRequest {
        client,
        correlation,
        acks_zero,
        produce_records: produce_records(body),
        list_offsets_latest: list_offsets_latest(body),
        metadata_all_topics: matches!(
            body,
            RequestKind::Metadata(metadata) if metadata.topics.is_none()
        ),
    }
}

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
    /// Remembers node `index`'s cleaning point of the compacted partition: the
    /// checker needs the highest any replica ever had (a follower copies a cleaned
    /// leader's batches, so its own may be lower than what it lacks).
    fn observe_cleaning_point(&mut self, index: u32) {
        let Some((_, checker)) = self.compaction.as_mut() else {
            return;
        };
        let key = TopicPartition::new(COMPACTED_TOPIC.to_string(), 0);
        if let Some(node) = self.nodes.node(index).node.as_ref()
            && let Some(partition) = node.partition(&key)
        {
            checker.observe_cleaned_through(partition.log().cleaned_through());
        }
    }

    /// The compaction checker's rules on a Fetch answer of the compacted partition.
    fn check_compacted_fetch(&mut self, index: u32, client: u32, response: &ResponseKind) {
        let (Some((_, checker)), Some(history)) =
            (self.compaction.as_mut(), self.shared.compaction.as_ref())
        else {
            return;
        };
        let ResponseKind::Fetch(fetch) = response else {
            return;
        };
        let data = fetch
            .responses
            .iter()
            .filter(|topic| topic.topic.0.as_str() == COMPACTED_TOPIC)
            .flat_map(|topic| &topic.partitions)
            .find(|data| data.error_code == 0);
        let Some(data) = data else {
            return;
        };
        let records = data.records.clone().unwrap_or_default();
        // A batch that fails its checks is the response check's finding.
        let Ok(batches) = crate::records::decode_batches(&records) else {
            return;
        };
        let who = format!("a fetch answered by node {index}");
        if let Err(violation) = checker.check_read(history, &who, self.queue.now(), &batches) {
            self.checks.fail_response(client, violation);
        }
    }

    /// At the end, each replica's committed log of the compacted partition is one
    /// more read: replicas agree where they both hold a record, and keep what they
    /// must.
    fn check_compacted_replicas_at_end(&mut self) {
        let (Some((_, checker)), Some(history)) =
            (self.compaction.as_mut(), self.shared.compaction.as_ref())
        else {
            return;
        };
        let key = TopicPartition::new(COMPACTED_TOPIC.to_string(), 0);
        let now = self.queue.now();
        for index in 0..self.nodes.as_slice().len() as u32 {
            let sim_node = self.nodes.node_mut(index);
            let Some(node) = sim_node.node.as_mut() else {
                continue;
            };
            let Some(log) = node.committed_log(&mut sim_node.io, &key) else {
                continue;
            };
            let who = format!("node {index}'s replica at the end");
            let checked = crate::records::decode_batches(&log)
                .and_then(|batches| checker.check_read(history, &who, now, &batches));
            if let Err(violation) = checked {
                self.checks.fail(violation);
                return;
            }
        }
    }

    /// The workload's summary, with the compaction workload's and its checker's.
    pub fn workload_summary(&self) -> String {
        let mut text = self.workload.summary();
        if let (Some((plan, checker)), Some(history)) =
            (self.compaction.as_ref(), self.shared.compaction.as_ref())
        {
            text.push_str(&format!(
                "; {}; {} keyed writes acknowledged, {}",
                plan.summary(),
                history.acknowledged_count(),
                checker.summary()
            ));
        }
        if let (Some(plan), Some(history)) = (
            self.config_plan.as_ref(),
            self.shared.config_changes.as_ref(),
        ) {
            text.push_str(&format!("; {}; {}", plan.summary(), history.summary()));
        }
        if let Some(client) = self.trim_client() {
            text.push_str(&format!("; {}", client.summary()));
        }
        text
    }

    /// A lone broker applies everything durable as it opens: its configs must show
    /// every change acknowledged so far (`config_check.rs`, rule (a)).
    fn check_configs_after_open(&mut self, index: u32) {
        let Some(history) = self.shared.config_changes.as_ref() else {
            return;
        };
        if self.nodes.is_cluster() {
            return;
        }
        let Some(node) = self.nodes.node(index).node.as_ref() else {
            return;
        };
        let who = format!("node {index} right after it opened");
        if let Err(violation) = history.check_node(&who, node) {
            self.fail(violation);
        }
    }

    /// At the end: the caught-up brokers' configs are explained by the changes and
    /// agree, and every replica runs with its topic's applied settings.
    fn check_configs_at_end(&mut self) {
        let Some(history) = self.shared.config_changes.as_ref() else {
            return;
        };
        let nodes = self.nodes.as_slice();
        let resources = config_resources(nodes.len() as u32);
        let high_watermark = crate::checks::controller_high_watermark(nodes);
        let checked =
            crate::config_check::check_caught_up(history, nodes, &resources, high_watermark)
                .and_then(|()| crate::config_check::check_replica_configs(nodes));
        if let Err(violation) = checked {
            self.fail(violation);
        }
    }

    /// The delete-records workload's client, if the seed has one.
    fn trim_client(&self) -> Option<&TrimClient> {
        self.clients.iter().find_map(|client| match client {
            Client::Trim(trim) => Some(&**trim),
            _ => None,
        })
    }

    /// The delete-records checker's rules on an answer to its client (`trim_check.rs`).
    fn check_trim_answer(
        &mut self,
        index: u32,
        client: u32,
        correlation: u64,
        response: &ResponseKind,
    ) {
        let single_broker = !self.nodes.is_cluster();
        let Some(Client::Trim(trim)) = self.clients.get_mut(client as usize) else {
            return;
        };
        let checked = trim
            .checker_mut()
            .check_answer(index, single_broker, correlation, response);
        if let Err(violation) = checked {
            self.checks.fail_response(client, violation);
        }
    }

    /// Node `index`'s deletion point of the trimmed partition never goes back against
    /// what it or another broker had applied at the same metadata offset.
    fn observe_trim_point(&mut self, index: u32) {
        let Some(node) = self.nodes.node(index).node.as_ref() else {
            return;
        };
        let Some(trim) = self.clients.iter_mut().find_map(|client| match client {
            Client::Trim(trim) => Some(trim),
            _ => None,
        }) else {
            return;
        };
        if let Err(violation) = trim.checker_mut().observe_point(index, node) {
            self.checks.fail(violation);
        }
    }

    /// The delete-records checker's rules on every broker at the end.
    fn check_trimmed_at_end(&mut self) {
        let Some(trim) = self.clients.iter_mut().find_map(|client| match client {
            Client::Trim(trim) => Some(trim),
            _ => None,
        }) else {
            return;
        };
        if let Err(violation) = trim.checker_mut().check_at_end(self.nodes.as_mut_slice()) {
            self.checks.fail(violation);
        }
    }

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

/// The nodes' configuration, drawn from the plan's stream after the workload.
fn draw_node_config(config: &WorldConfig, plan_rng: &mut SimRng) -> NodeConfig {
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
        [0, 300, 3_000][(mix(config.seed, GROUP_MEMBERS_SALT + 1) % 3) as usize];
    #[cfg(feature = "mutants")]
    {
        node_config.group.mutants = config.group_mutants;
        node_config.raft_mutants = config.raft_mutants;
    }
    node_config
}

/// The seed's compaction workload, if it has one, and the brokers' cleaner settings
/// for it.
fn draw_compaction(config: &WorldConfig, node_config: &mut NodeConfig) -> Option<CompactionPlan> {
    let plan = CompactionPlan::draw(config.seed, config.compaction)?;
    // The cleaner must run many times within a seed, in small steps, so that reads and
    // crashes meet passes half done.
    node_config.log_cleaner_backoff_ms = plan.cleaner_backoff_ms;
    node_config.log_cleaner_step_bytes = plan.cleaner_step_bytes;
    Some(plan)
}

/// The seed's config-change workload, if it has one, with its client and history.
/// The compaction workload's client and the history its checker reads; its checker.
fn add_compaction(
    config: &WorldConfig,
    faults: &FaultPlan,
    plan: CompactionPlan,
    shared: &mut Shared,
    clients: &mut Vec<Client>,
) -> (CompactionPlan, CompactionChecker) {
    shared.compacted_topic = Some((COMPACTED_TOPIC.to_string(), plan.topic_configs()));
    shared.compaction = Some(KeyedHistory::default());
    clients.push(Client::Keyed(Box::new(KeyedClient::new(
        config.seed,
        &plan,
    ))));
    let checker = CompactionChecker::new(tombstone_expiry(config, faults, &plan));
    (plan, checker)
}

/// The config-change workload's client and its history, if the seed has it; its plan.
fn add_config_changes(
    config: &WorldConfig,
    shared: &mut Shared,
    clients: &mut Vec<Client>,
) -> Option<ConfigPlan> {
    let plan = ConfigPlan::draw(config.seed, config.config_changes)?;
    shared.config_changes = Some(ConfigHistory::default());
    clients.push(Client::Config(Box::new(ConfigClient::new(
        config.seed,
        &plan,
    ))));
    Some(plan)
}

/// When the compaction checker lets a tombstone go: after `delete.retention.ms` on
/// one broker whose clock only drifts; at any time when clocks step or several
/// brokers stamp delete horizons with clocks that differ.
fn tombstone_expiry(
    config: &WorldConfig,
    plan: &FaultPlan,
    compaction: &CompactionPlan,
) -> TombstoneExpiry {
    let clock_steps = plan.clock_step_every_ns.is_some() || plan.wall_step_every_ns.is_some();
    if config.nodes > 1 || clock_steps {
        TombstoneExpiry::Anytime
    } else {
        TombstoneExpiry::after(compaction.delete_retention_ms, crate::clock::DRIFT_PPM_MAX)
    }
}

/// The nodes, each with its clock, disk and BUGGIFY drawn from its own streams.
fn build_nodes(config: &WorldConfig, plan: &FaultPlan) -> Vec<SimNode> {
    let seed = config.seed;
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
    nodes
}

/// The operator formats each cluster broker's directory once, before its first start
/// (a broker alone formats its own). The directory id is hashed from the seed and no
/// cluster id is named (the quorum's first leader draws one), so that no random
/// stream of the seed has a draw more than before the format step.
fn format_cluster(seed: u64, nodes: &mut [SimNode]) {
    for node in nodes {
        let node_id = node.index as i32 + 1;
        let salt = DIRECTORY_ID_SALT + 2 * u64::from(node.index);
        let directory_id =
            odradek_replication::identity::encode_id([mix(seed, salt), mix(seed, salt + 1)]);
        node.io.disk.set_faults_active(false);
        odradek_replication::identity::format(&mut node.io, node_id, None, directory_id)
            .expect("an empty simulated disk formats");
        node.io.disk.set_faults_active(true);
    }
}

/// The clients of the workload, in the order their indexes name them.
fn build_clients(
    config: &WorldConfig,
    workload: &WorkloadPlan,
    shared: &mut Shared,
) -> Vec<Client> {
    let mut clients = vec![Client::Admin(Admin::new())];
    for _ in 0..workload.producers {
        let producer = Producer::new(shared, workload, -1, workload.idempotent);
        clients.push(Client::Producer(producer));
    }
    if workload.acks_zero_producer {
        clients.push(Client::Producer(Producer::new(shared, workload, 0, false)));
    }
    for consumer in 0..workload.consumers {
        let isolation = (consumer % 2) as i8;
        clients.push(Client::Consumer(Consumer::new(shared, workload, isolation)));
    }
    if config.groups {
        // Drawn from the seed by hashing, not from the plan's stream: switching
        // groups on leaves every other draw of the seed as it was.
        let members = 2 + mix(config.seed, GROUP_MEMBERS_SALT) % 2;
        for _ in 0..members {
            clients.push(Client::GroupMember(GroupMember::new(workload)));
        }
    }
    clients.push(Client::FinalReader(FinalReader::new(shared, workload)));
    if config.nodes > 1 {
        clients.push(Client::Metadata(MetadataClient::new()));
    }
    clients
}
