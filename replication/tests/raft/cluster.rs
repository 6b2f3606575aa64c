//! A deterministic, randomized cluster of Raft groups: the harness and its checks.
//!
//! # Fault model (drawn per seed, swarm style: each seed also draws the rates)
//!
//! - Network: every message takes 1..=`delay_max` ticks (so messages reorder), may be
//!   lost, may be delivered twice (the copy up to three delays late). Partitions come
//!   and go: one node isolated, the cluster split in two, one-way link cuts, random
//!   symmetric cuts. A message crossing a cut is dropped when sent and when delivered.
//! - Disk: a log sync takes 1..=`sync_delay_max` ticks and a hard-state write
//!   1..=`persist_delay_max` ticks. A crash loses everything not durable: the log goes
//!   back to the image of its last completed sync (truncations after it are undone too),
//!   and the hard state to its last completed write.
//! - Process: a node crashes and restarts after 1..=`downtime_max` ticks; a power loss
//!   crashes every node at once. Clocks drift: a node sometimes misses a tick.
//! - Retention: a node sometimes drops a committed, durable prefix of its log, so lagging
//!   followers must be reset to the leader's log start.
//! - Clients: proposals to whichever node believes it leads.
//!
//! # Checks, after every event
//!
//! - Election safety: at most one leader per epoch, over the whole run (Raft §5.2).
//! - A voter never grants two candidates in one epoch (the reason for durable votes).
//! - Durability rule: when a message leaves a node, the node's *durable* hard state
//!   already covers it (its epoch; for a vote grant, the vote).
//! - State machine safety: every entry any node ever had below its high watermark is
//!   recorded; every node that later has that offset below its high watermark has the
//!   identical entry (Log Matching for the committed prefix, §5.3, §5.4.3).
//! - Leader completeness (§5.4): when a node becomes leader, its log holds every
//!   recorded committed entry at or above its log start, identical.
//! - No committed entry is cut: a node never truncates below the high watermark it had.
//! - The high watermark never goes back within one incarnation of a node.
//! - Liveness: after the fault phase everything heals (all nodes up, no cuts, no loss);
//!   within `LIVENESS_TICKS_MAX` ticks one leader is followed by all, and a new proposal
//!   is committed and present on every node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use bytes::Bytes;
use odradek_replication::raft::{
    AppendResult, Entry, Envelope, HardState, Message, NodeId, Proposed, Raft, RaftConfig,
    RaftInit, RaftLog, Role, StorageError,
};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng as _, SeedableRng as _};

use super::mem_log::MemLog;

/// The log of one simulated node as the harness drives and inspects it: the
/// vector-backed [`MemLog`], or the real storage (`PartitionRaftLog` over a
/// `PartitionLog` on a `MemDisk`, in `partition_log.rs`). The cluster, its nemesis and
/// its checks are the same for both.
pub trait HarnessLog: Sized {
    /// What the core is handed for one call.
    type View<'a>: RaftLog
    where
        Self: 'a;

    /// The empty log of node `node_id`; `seed` seeds whatever the log draws itself
    /// (what a crash keeps), so that the cluster's own draws stay those of `MemLog`.
    fn create(seed: u64, node_id: NodeId) -> Self;

    /// The log as the core sees it, for one call.
    fn view(&mut self) -> Self::View<'_>;

    /// The payload of a proposal of `records` records, unique by `text`.
    fn proposal(&self, records: u32, text: &str) -> Bytes;

    /// The entries whose base offset is in `[from, to)`, as the log holds them now.
    fn entries(&mut self, from: i64, to: i64) -> Vec<Entry>;

    /// The entry starting at `base_offset`, if the log holds one.
    fn entry_at(&mut self, base_offset: i64) -> Option<Entry> {
        self.entries(base_offset, base_offset + 1).pop()
    }

    /// The lowest offset cut by a truncation or a reset since the last call.
    fn take_lowest_cut(&mut self) -> Option<i64>;

    fn sync_in_flight(&self) -> bool;

    /// Starts a sync of everything appended so far; false if one is in flight.
    fn begin_sync(&mut self) -> bool;

    /// The sync in flight completed.
    fn complete_sync(&mut self);

    /// After a completed sync: appended offsets are still not durable, and only a new
    /// sync will cover them (a real log's round covers a bounded number of segments).
    fn wants_sync(&self) -> bool {
        false
    }

    /// Power failure: what is not durable may be lost; the log is as recovered.
    fn crash(&mut self);

    /// Right after [`HarnessLog::crash`]: the medium destroyed durable entries, and
    /// recovery cut the log at an entry boundary `draw` picks. The offset cut at; `None`
    /// if nothing was cut (or the log does not model it).
    fn lose_durable_suffix(&mut self, _draw: u64) -> Option<i64> {
        None
    }

    /// Retention of a committed, durable prefix below `limit` (the high watermark);
    /// `draw` picks where. True if the log start moved.
    fn compact_below(&mut self, limit: i64, draw: &mut dyn FnMut() -> u64) -> bool;

    /// Truncations that removed something, and resets, for the statistics.
    fn truncations(&self) -> u64;
    fn resets(&self) -> u64;
}

/// A `&mut L` handed to the core as a [`RaftLog`].
pub struct LogRef<'a, L>(pub &'a mut L);

impl<L: RaftLog> RaftLog for LogRef<'_, L> {
    fn start_offset(&self) -> i64 {
        self.0.start_offset()
    }
    fn end_offset(&self) -> i64 {
        self.0.end_offset()
    }
    fn durable_end_offset(&self) -> i64 {
        self.0.durable_end_offset()
    }
    fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.0.epoch_at(offset)
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.0.end_offset_for_epoch(epoch)
    }
    fn read(&mut self, from: i64, bytes_max: u64) -> Result<Vec<Entry>, StorageError> {
        self.0.read(from, bytes_max)
    }
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.0.append(entries)
    }
    fn append_leader_marker(&mut self, leader_epoch: i32) -> Result<(), StorageError> {
        self.0.append_leader_marker(leader_epoch)
    }
    fn truncate(&mut self, end_offset: i64) -> Result<(), StorageError> {
        self.0.truncate(end_offset)
    }
    fn reset(&mut self, start_offset: i64, epoch_before_start: i32) -> Result<(), StorageError> {
        self.0.reset(start_offset, epoch_before_start)
    }
}

impl HarnessLog for MemLog {
    type View<'a> = LogRef<'a, MemLog>;

    fn create(_seed: u64, _node_id: NodeId) -> MemLog {
        MemLog::new()
    }

    fn view(&mut self) -> LogRef<'_, MemLog> {
        LogRef(self)
    }

    fn proposal(&self, _records: u32, text: &str) -> Bytes {
        Bytes::from(text.to_string())
    }

    fn entries(&mut self, from: i64, to: i64) -> Vec<Entry> {
        self.current
            .entries
            .iter()
            .filter(|entry| entry.base_offset >= from && entry.base_offset < to)
            .cloned()
            .collect()
    }

    fn entry_at(&mut self, base_offset: i64) -> Option<Entry> {
        self.current.entry_at(base_offset).cloned()
    }

    fn take_lowest_cut(&mut self) -> Option<i64> {
        self.lowest_cut.take()
    }

    fn sync_in_flight(&self) -> bool {
        MemLog::sync_in_flight(self)
    }

    fn begin_sync(&mut self) -> bool {
        MemLog::begin_sync(self)
    }

    fn complete_sync(&mut self) {
        MemLog::complete_sync(self)
    }

    fn crash(&mut self) {
        MemLog::crash(self)
    }

    fn lose_durable_suffix(&mut self, draw: u64) -> Option<i64> {
        MemLog::lose_durable_suffix(self, draw)
    }

    fn compact_below(&mut self, limit: i64, draw: &mut dyn FnMut() -> u64) -> bool {
        if MemLog::sync_in_flight(self) {
            return false;
        }
        let limit = limit.min(self.durable_end_offset());
        let candidates = self.boundaries_up_to(limit);
        if candidates.is_empty() {
            return false;
        }
        let at = candidates[(draw() % candidates.len() as u64) as usize];
        self.compact(at);
        true
    }

    fn truncations(&self) -> u64 {
        self.truncations
    }

    fn resets(&self) -> u64 {
        self.resets
    }
}

/// Ticks the healed cluster gets to elect a leader and commit a new proposal.
pub const LIVENESS_TICKS_MAX: u64 = 600;

/// Messages in flight at once; more means a message storm (a feedback loop of answers).
pub const NETWORK_MESSAGES_MAX: usize = 20_000;

/// The Raft settings of the harness: small appends, so that pipelining and partial
/// reads happen on short logs.
// With the `mutants` feature the config has one more field, left at its default.
#[allow(clippy::needless_update)]
pub fn harness_config() -> RaftConfig {
    RaftConfig {
        election_timeout_ticks: 10,
        heartbeat_interval_ticks: 2,
        retransmit_timeout_ticks: 6,
        append_bytes_max: 48,
        appends_in_flight_max: 3,
        ..RaftConfig::default()
    }
}

/// The fault rates of one run. Probabilities are per tick unless said otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    pub nodes: u32,
    /// Ticks of the fault phase.
    pub ticks: u64,
    pub delay_max: u64,
    /// Per message.
    pub loss: f64,
    /// Per message.
    pub duplicate: f64,
    pub partition: f64,
    pub crash: f64,
    pub power_loss: f64,
    pub downtime_max: u64,
    pub propose: f64,
    pub sync_delay_max: u64,
    pub persist_delay_max: u64,
    pub compact: f64,
    /// Per node and tick.
    pub tick_skip: f64,
    /// Per crash: the node also loses durable entries it acknowledged (rot found at
    /// recovery), and restarts recovering (decision 0010). Never while another node
    /// is recovering: two damaged copies of one entry are beyond what three replicas
    /// can repair.
    pub lose: f64,
}

impl FaultPlan {
    /// Rates drawn from `seed` (swarm testing: some seeds are calm, some brutal).
    pub fn draw(seed: u64, nodes: u32, ticks: u64) -> FaultPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_fa17);
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let pick = |low: f64, high: f64, u: f64| low + (high - low) * u;
        FaultPlan {
            nodes,
            ticks,
            delay_max: 1 + (unit() * 5.0) as u64,
            loss: pick(0.0, 0.15, unit()),
            duplicate: pick(0.0, 0.1, unit()),
            partition: pick(0.0, 0.03, unit()),
            crash: pick(0.0, 0.02, unit()),
            power_loss: pick(0.0, 0.002, unit()),
            downtime_max: 1 + (unit() * 40.0) as u64,
            propose: pick(0.05, 0.6, unit()),
            sync_delay_max: 1 + (unit() * 8.0) as u64,
            persist_delay_max: 1 + (unit() * 6.0) as u64,
            compact: pick(0.0, 0.01, unit()),
            tick_skip: pick(0.0, 0.1, unit()),
            // Drawn last, so the rates above are what they were before it existed.
            lose: if unit() < 0.5 {
                0.0
            } else {
                pick(0.0, 0.5, unit())
            },
        }
    }
}

/// What went wrong, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub tick: u64,
    pub kind: ViolationKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    TwoLeadersInOneEpoch,
    DoubleVote,
    SentBeforeDurable,
    CommittedEntryDiffers,
    LeaderMissesCommittedEntry,
    CommittedEntryCut,
    HighWatermarkWentBack,
    Liveness,
    MessageStorm,
    Panic,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at tick {}: {}", self.kind, self.tick, self.detail)
    }
}

/// Counters that show the faults and the protocol actually did something.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    pub crashes: u64,
    pub power_losses: u64,
    pub partitions: u64,
    pub compactions: u64,
    pub elections_won: u64,
    pub proposals: u64,
    pub committed_offset: i64,
    pub divergences: u64,
    pub truncations: u64,
    pub resets: u64,
    /// Crashes that also lost durable entries.
    pub losses: u64,
    pub liveness_ticks: u64,
    /// A hash of the run's event order (determinism).
    pub trace_hash: u64,
}

struct SimNode<L> {
    id: NodeId,
    raft: Option<Raft<u32>>,
    log: L,
    durable_hard_state: HardState,
    hard_state_writes: VecDeque<(u64, HardState)>,
    sync_due: Option<u64>,
    sync_wanted: bool,
    restart_at: Option<u64>,
    /// The high watermark this incarnation last showed.
    high_watermark_seen: i64,
    /// The epoch this incarnation was last seen leading.
    leading_epoch_seen: Option<i32>,
}

#[derive(Clone, Debug)]
enum Event {
    Tick(usize),
    Persisted(usize),
    Synced(usize),
    Deliver(Envelope<u32>),
    Propose(usize),
}

/// The cluster, its nodes' logs of type `L`.
pub struct Cluster<L: HarnessLog = MemLog> {
    plan: FaultPlan,
    config: RaftConfig,
    rng: ChaCha8Rng,
    now: u64,
    nodes: Vec<SimNode<L>>,
    network: BTreeMap<(u64, u64), Envelope<u32>>,
    sequence: u64,
    blocked: BTreeSet<(NodeId, NodeId)>,
    proposal_counter: u64,
    /// Checks of the durability rule itself (off: only its consequences are checked).
    pub check_durability_rule: bool,
    leaders: BTreeMap<i32, NodeId>,
    committed: BTreeMap<i64, Entry>,
    votes: BTreeMap<(NodeId, i32), NodeId>,
    pub stats: Stats,
}

fn voters(count: u32) -> BTreeSet<NodeId> {
    (1..=count).collect()
}

impl<L: HarnessLog> Cluster<L> {
    pub fn new(seed: u64, plan: FaultPlan, config: RaftConfig) -> Cluster<L> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut nodes = Vec::new();
        for id in 1..=plan.nodes {
            let mut log = L::create(seed ^ (u64::from(id) << 56), id);
            let init = RaftInit {
                group: 0,
                node_id: id,
                voters: voters(plan.nodes),
                hard_state: HardState::default(),
                random_seed: rng.next_u64(),
            };
            let raft = Raft::new(config.clone(), init, &log.view()).expect("valid group");
            nodes.push(SimNode {
                id,
                raft: Some(raft),
                log,
                durable_hard_state: HardState::default(),
                hard_state_writes: VecDeque::new(),
                sync_due: None,
                sync_wanted: false,
                restart_at: None,
                high_watermark_seen: 0,
                leading_epoch_seen: None,
            });
        }
        Cluster {
            plan,
            config,
            rng,
            now: 0,
            nodes,
            network: BTreeMap::new(),
            sequence: 0,
            blocked: BTreeSet::new(),
            proposal_counter: 0,
            check_durability_rule: true,
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            votes: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0
            && ((self.rng.next_u64() >> 11) as f64) < probability * (1u64 << 53) as f64
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.rng.next_u64() % bound
    }

    fn violation(&self, kind: ViolationKind, detail: String) -> Violation {
        Violation {
            tick: self.now,
            kind,
            detail,
        }
    }

    fn trace(&mut self, a: u64, b: u64) {
        let mut hash = self.stats.trace_hash ^ a.wrapping_mul(0x100_0000_01b3);
        hash = hash.rotate_left(17) ^ b;
        self.stats.trace_hash = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// The fault phase, then the liveness phase.
    pub fn run(&mut self) -> Result<(), Violation> {
        for _ in 0..self.plan.ticks {
            self.run_tick(true)?;
        }
        self.heal_and_check_liveness()
    }

    fn run_tick(&mut self, faults: bool) -> Result<(), Violation> {
        self.now += 1;
        if faults {
            self.nemesis()?;
        }
        for index in 0..self.nodes.len() {
            if self.nodes[index]
                .restart_at
                .is_some_and(|at| at <= self.now)
            {
                self.restart(index)?;
            }
        }
        let mut events = Vec::new();
        for index in 0..self.nodes.len() {
            let skip = self.plan.tick_skip;
            let node = &self.nodes[index];
            if node.raft.is_none() {
                continue;
            }
            if node
                .hard_state_writes
                .front()
                .is_some_and(|&(due, _)| due <= self.now)
            {
                events.push(Event::Persisted(index));
            }
            if node.sync_due.is_some_and(|due| due <= self.now) {
                events.push(Event::Synced(index));
            }
            if !(faults && self.chance(skip)) {
                events.push(Event::Tick(index));
            }
        }
        while let Some(entry) = self.network.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            events.push(Event::Deliver(entry.remove()));
        }
        if faults && self.chance(self.plan.propose) {
            let index = self.below(self.nodes.len() as u64) as usize;
            events.push(Event::Propose(index));
        }
        // Same-tick events in a random order.
        for i in (1..events.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            events.swap(i, j);
        }
        for event in events {
            self.apply(event)?;
        }
        Ok(())
    }

    fn apply(&mut self, event: Event) -> Result<(), Violation> {
        let index = match event {
            Event::Tick(index) => {
                self.trace(1, index as u64);
                let node = &mut self.nodes[index];
                let Some(raft) = node.raft.as_mut() else {
                    return Ok(());
                };
                raft.tick(&mut node.log.view());
                index
            }
            Event::Persisted(index) => {
                self.trace(2, index as u64);
                let node = &mut self.nodes[index];
                let Some(raft) = node.raft.as_mut() else {
                    return Ok(());
                };
                let (_, hard_state) = node.hard_state_writes.pop_front().expect("due");
                node.durable_hard_state = hard_state;
                raft.on_hard_state_persisted(&mut node.log.view(), hard_state);
                index
            }
            Event::Synced(index) => {
                self.trace(3, index as u64);
                let node = &mut self.nodes[index];
                let Some(raft) = node.raft.as_mut() else {
                    return Ok(());
                };
                node.sync_due = None;
                // A reset since the sync began made it moot (a reset is durable at once).
                if node.log.sync_in_flight() {
                    node.log.complete_sync();
                }
                if node.log.wants_sync() {
                    node.sync_wanted = true;
                }
                raft.on_log_synced(&mut node.log.view());
                index
            }
            Event::Deliver(envelope) => {
                let index = (envelope.to - 1) as usize;
                if self.blocked.contains(&(envelope.from, envelope.to)) {
                    self.stats.messages_dropped += 1;
                    return Ok(());
                }
                self.trace(4, u64::from(envelope.from) << 32 | u64::from(envelope.to));
                let node = &mut self.nodes[index];
                let Some(raft) = node.raft.as_mut() else {
                    self.stats.messages_dropped += 1;
                    return Ok(());
                };
                if matches!(
                    envelope.message,
                    Message::AppendResponse(ref r) if matches!(r.result, AppendResult::Diverged { .. })
                ) {
                    self.stats.divergences += 1;
                }
                self.stats.messages_delivered += 1;
                raft.step(&mut node.log.view(), envelope.from, envelope.message);
                index
            }
            Event::Propose(index) => {
                self.trace(5, index as u64);
                if self.propose(index).is_none() {
                    return Ok(());
                }
                index
            }
        };
        self.drain(index)?;
        self.check_node(index)
    }

    /// Proposes a unique batch at node `index` if it leads.
    fn propose(&mut self, index: usize) -> Option<Proposed> {
        self.proposal_counter += 1;
        let records = 1 + self.below(3) as u32;
        let counter = self.proposal_counter;
        let node = &mut self.nodes[index];
        let raft = node.raft.as_mut()?;
        raft.check_leader().ok()?;
        let text = format!("n{}e{}#{counter}", node.id, raft.leader_epoch());
        let data = node.log.proposal(records, &text);
        let proposed = raft.propose(&mut node.log.view(), records, data).ok()?;
        self.stats.proposals += 1;
        Some(proposed)
    }

    /// Carries out what node `index` asked for.
    fn drain(&mut self, index: usize) -> Result<(), Violation> {
        let Some(raft) = self.nodes[index].raft.as_mut() else {
            return Ok(());
        };
        let ready = raft.take_ready();
        if let Some(hard_state) = ready.hard_state {
            let delay = 1 + self.below(self.plan.persist_delay_max);
            let node = &mut self.nodes[index];
            let after = node.hard_state_writes.back().map_or(0, |&(due, _)| due);
            node.hard_state_writes
                .push_back(((self.now + delay).max(after), hard_state));
        }
        if ready.sync_log {
            self.nodes[index].sync_wanted = true;
        }
        if self.nodes[index].sync_wanted && self.nodes[index].sync_due.is_none() {
            let delay = 1 + self.below(self.plan.sync_delay_max);
            let node = &mut self.nodes[index];
            if node.log.begin_sync() {
                node.sync_due = Some(self.now + delay);
                node.sync_wanted = false;
            }
        }
        for envelope in ready.messages {
            self.check_send(index, &envelope)?;
            self.send(envelope)?;
        }
        Ok(())
    }

    fn send(&mut self, envelope: Envelope<u32>) -> Result<(), Violation> {
        self.stats.messages_sent += 1;
        if self.network.len() >= NETWORK_MESSAGES_MAX {
            let detail = format!("{} messages in flight", self.network.len());
            return Err(self.violation(ViolationKind::MessageStorm, detail));
        }
        if self.blocked.contains(&(envelope.from, envelope.to)) || self.chance(self.plan.loss) {
            self.stats.messages_dropped += 1;
            return Ok(());
        }
        if self.chance(self.plan.duplicate) {
            let late = 1 + self.below(3 * self.plan.delay_max);
            self.sequence += 1;
            self.network
                .insert((self.now + late, self.sequence), envelope.clone());
        }
        let delay = 1 + self.below(self.plan.delay_max);
        self.sequence += 1;
        self.network
            .insert((self.now + delay, self.sequence), envelope);
        Ok(())
    }

    /// The durability rule and vote uniqueness, checked on every message leaving a node.
    fn check_send(&mut self, index: usize, envelope: &Envelope<u32>) -> Result<(), Violation> {
        let durable = self.nodes[index].durable_hard_state;
        let from = envelope.from;
        // The sender's own epoch, for messages that speak in it.
        let (own_epoch, grant) = match &envelope.message {
            Message::Append(append) => (Some(append.leader_epoch), None),
            Message::AppendResponse(response) => (Some(response.leader_epoch), None),
            Message::Vote(vote) => ((!vote.pre_vote).then_some(vote.leader_epoch), None),
            Message::VoteResponse(response) if response.pre_vote => {
                ((!response.granted).then_some(response.leader_epoch), None)
            }
            Message::VoteResponse(response) => (
                Some(response.leader_epoch),
                response.granted.then_some(response.leader_epoch),
            ),
        };
        if let Some(epoch) = grant {
            let candidate = envelope.to;
            match self.votes.insert((from, epoch), candidate) {
                Some(earlier) if earlier != candidate => {
                    return Err(self.violation(
                        ViolationKind::DoubleVote,
                        format!("node {from} voted for {earlier} and {candidate} in epoch {epoch}"),
                    ));
                }
                _ => {}
            }
            let vote = HardState {
                leader_epoch: epoch,
                voted_for: Some(candidate),
                ..HardState::default()
            };
            if self.check_durability_rule && !durable.covers(&vote) {
                return Err(self.violation(
                    ViolationKind::SentBeforeDurable,
                    format!(
                        "node {from} granted {candidate} in epoch {epoch} with durable {durable:?}"
                    ),
                ));
            }
        }
        if let Some(epoch) = own_epoch
            && self.check_durability_rule
            && durable.leader_epoch < epoch
        {
            return Err(self.violation(
                ViolationKind::SentBeforeDurable,
                format!(
                    "node {from} sent {:?} in epoch {epoch} with durable {durable:?}",
                    envelope.message
                ),
            ));
        }
        Ok(())
    }

    /// The safety checks on node `index` after it handled an event.
    fn check_node(&mut self, index: usize) -> Result<(), Violation> {
        let node = &mut self.nodes[index];
        let Some(raft) = node.raft.as_ref() else {
            return Ok(());
        };
        let id = node.id;
        let high_watermark = raft.high_watermark();
        if let Some(cut) = node.log.take_lowest_cut()
            && cut < node.high_watermark_seen
        {
            let detail = format!(
                "node {id} cut its log at {cut}, below its high watermark {}",
                node.high_watermark_seen
            );
            return Err(self.violation(ViolationKind::CommittedEntryCut, detail));
        }
        if high_watermark < node.high_watermark_seen {
            let detail = format!(
                "node {id}: high watermark {} -> {high_watermark}",
                node.high_watermark_seen
            );
            return Err(self.violation(ViolationKind::HighWatermarkWentBack, detail));
        }
        let from = node.high_watermark_seen.max(node.log.view().start_offset());
        node.high_watermark_seen = high_watermark;
        let newly_committed: Vec<Entry> = if from < high_watermark {
            node.log.entries(from, high_watermark)
        } else {
            Vec::new()
        };
        let leading = (raft.role() == Role::Leader).then(|| raft.leader_epoch());
        for entry in newly_committed {
            self.record_committed(id, entry)?;
        }
        self.stats.committed_offset = self.stats.committed_offset.max(high_watermark);
        if let Some(epoch) = leading {
            if let Some(&other) = self.leaders.get(&epoch)
                && other != id
            {
                let detail = format!("nodes {other} and {id} both lead epoch {epoch}");
                return Err(self.violation(ViolationKind::TwoLeadersInOneEpoch, detail));
            }
            self.leaders.insert(epoch, id);
            let node = &mut self.nodes[index];
            if node.leading_epoch_seen != Some(epoch) {
                node.leading_epoch_seen = Some(epoch);
                self.stats.elections_won += 1;
                self.check_leader_completeness(index, epoch)?;
            }
        }
        Ok(())
    }

    fn record_committed(&mut self, id: NodeId, entry: Entry) -> Result<(), Violation> {
        if let Some(known) = self.committed.get(&entry.base_offset) {
            if *known != entry {
                let detail =
                    format!("node {id} committed {entry:?}, but {known:?} was committed there");
                return Err(self.violation(ViolationKind::CommittedEntryDiffers, detail));
            }
            return Ok(());
        }
        let overlaps_before = self
            .committed
            .range(..entry.base_offset)
            .next_back()
            .is_some_and(|(_, before)| before.last_offset >= entry.base_offset);
        let overlaps_after = self
            .committed
            .range(entry.base_offset + 1..entry.end_offset())
            .next()
            .is_some();
        if overlaps_before || overlaps_after {
            let detail =
                format!("node {id} committed {entry:?}, overlapping other committed entries");
            return Err(self.violation(ViolationKind::CommittedEntryDiffers, detail));
        }
        self.committed.insert(entry.base_offset, entry);
        Ok(())
    }

    fn check_leader_completeness(&mut self, index: usize, epoch: i32) -> Result<(), Violation> {
        let node = &mut self.nodes[index];
        let start_offset = node.log.view().start_offset();
        let held: BTreeMap<i64, Entry> = node
            .log
            .entries(start_offset, i64::MAX)
            .into_iter()
            .map(|entry| (entry.base_offset, entry))
            .collect();
        for (base_offset, entry) in self.committed.range(start_offset..) {
            if held.get(base_offset) != Some(entry) {
                let has = held
                    .range(..=base_offset)
                    .next_back()
                    .map(|(_, entry)| entry)
                    .filter(|held| held.last_offset >= *base_offset);
                let detail = format!(
                    "node {} leads epoch {epoch} without committed {entry:?} (has {has:?})",
                    node.id
                );
                return Err(self.violation(ViolationKind::LeaderMissesCommittedEntry, detail));
            }
        }
        Ok(())
    }

    fn nemesis(&mut self) -> Result<(), Violation> {
        if self.chance(self.plan.partition) {
            self.repartition();
        }
        if self.chance(self.plan.crash) {
            let index = self.below(self.nodes.len() as u64) as usize;
            self.crash(index);
        }
        if self.chance(self.plan.power_loss) {
            self.stats.power_losses += 1;
            for index in 0..self.nodes.len() {
                self.crash(index);
            }
        }
        if self.chance(self.plan.compact) {
            let index = self.below(self.nodes.len() as u64) as usize;
            self.compact(index);
        }
        Ok(())
    }

    fn repartition(&mut self) {
        self.stats.partitions += 1;
        self.blocked.clear();
        let ids: Vec<NodeId> = voters(self.plan.nodes).into_iter().collect();
        match self.below(5) {
            0 => {} // heal
            1 => {
                let alone = ids[self.below(ids.len() as u64) as usize];
                for &other in &ids {
                    if other != alone {
                        self.blocked.insert((alone, other));
                        self.blocked.insert((other, alone));
                    }
                }
            }
            2 => {
                let side: Vec<bool> = ids.iter().map(|_| self.rng.next_u64() & 1 == 1).collect();
                for (i, &a) in ids.iter().enumerate() {
                    for (j, &b) in ids.iter().enumerate() {
                        if side[i] != side[j] {
                            self.blocked.insert((a, b));
                        }
                    }
                }
            }
            3 => {
                for &a in &ids {
                    for &b in &ids {
                        if a != b && self.chance(0.3) {
                            self.blocked.insert((a, b));
                        }
                    }
                }
            }
            _ => {
                for &a in &ids {
                    for &b in &ids {
                        if a < b && self.chance(0.3) {
                            self.blocked.insert((a, b));
                            self.blocked.insert((b, a));
                        }
                    }
                }
            }
        }
    }

    fn crash(&mut self, index: usize) {
        let downtime = 1 + self.below(self.plan.downtime_max);
        let node = &mut self.nodes[index];
        if node.raft.is_none() {
            return;
        }
        self.stats.crashes += 1;
        node.raft = None;
        node.log.crash();
        node.hard_state_writes.clear();
        node.sync_due = None;
        node.sync_wanted = false;
        node.restart_at = Some(self.now + downtime);
        let others_recovering = self
            .nodes
            .iter()
            .enumerate()
            .any(|(other, node)| other != index && node.durable_hard_state.recovering);
        if !others_recovering && self.chance(self.plan.lose) {
            let draw = self.rng.next_u64();
            let node = &mut self.nodes[index];
            if node.log.lose_durable_suffix(draw).is_some() {
                // What the owner does when recovery finds acknowledged entries gone:
                // the flag and the count are durable before the member starts again.
                let hard_state = node.durable_hard_state;
                node.durable_hard_state = HardState {
                    recovering: true,
                    losses: hard_state.losses + 1,
                    ..hard_state
                };
                self.stats.losses += 1;
            }
        }
    }

    fn restart(&mut self, index: usize) -> Result<(), Violation> {
        let seed = self.rng.next_u64();
        let nodes = self.plan.nodes;
        let node = &mut self.nodes[index];
        node.restart_at = None;
        let init = RaftInit {
            group: 0,
            node_id: node.id,
            voters: voters(nodes),
            hard_state: node.durable_hard_state,
            random_seed: seed,
        };
        let raft = Raft::new(self.config.clone(), init, &node.log.view()).expect("valid group");
        node.high_watermark_seen = raft.high_watermark();
        node.leading_epoch_seen = None;
        node.raft = Some(raft);
        self.drain(index)?;
        self.check_node(index)
    }

    fn compact(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let Some(raft) = node.raft.as_ref() else {
            return;
        };
        let limit = raft.high_watermark();
        let rng = &mut self.rng;
        if node.log.compact_below(limit, &mut || rng.next_u64()) {
            self.stats.compactions += 1;
        }
    }

    /// Heals everything and waits for a leader that everyone follows, a committed new
    /// proposal on every node, and no member left recovering.
    fn heal_and_check_liveness(&mut self) -> Result<(), Violation> {
        self.blocked.clear();
        self.plan.loss = 0.0;
        self.plan.duplicate = 0.0;
        let healed_at = self.now;
        for index in 0..self.nodes.len() {
            if self.nodes[index].raft.is_none() {
                self.restart(index)?;
            }
        }
        let mut pending: Option<(usize, Proposed)> = None;
        while self.now - healed_at < LIVENESS_TICKS_MAX {
            self.run_tick(false)?;
            let Some(leader) = self.stable_leader() else {
                continue;
            };
            let epoch = self.nodes[leader].raft.as_ref().expect("up").leader_epoch();
            if pending.is_none_or(|(at, proposed)| at != leader || proposed.leader_epoch != epoch) {
                pending = self.propose(leader).map(|proposed| (leader, proposed));
                self.drain(leader)?;
                self.check_node(leader)?;
            }
            if let Some((_, proposed)) = pending
                && self.committed_everywhere(&proposed)
            {
                self.stats.liveness_ticks = self.now - healed_at;
                return Ok(());
            }
        }
        let states: Vec<String> = self
            .nodes
            .iter_mut()
            .map(|node| {
                let raft = node.raft.as_ref().expect("up");
                format!(
                    "node {}: {:?} epoch {} leader {:?} hw {} end {}",
                    node.id,
                    raft.role(),
                    raft.leader_epoch(),
                    raft.leader_id(),
                    raft.high_watermark(),
                    node.log.view().end_offset()
                )
            })
            .collect();
        Err(self.violation(
            ViolationKind::Liveness,
            format!(
                "no committed proposal {LIVENESS_TICKS_MAX} ticks after healing: {}",
                states.join("; ")
            ),
        ))
    }

    /// The node that leads and that every node follows in its epoch, if any.
    fn stable_leader(&self) -> Option<usize> {
        let leader = self.nodes.iter().position(|node| {
            node.raft
                .as_ref()
                .is_some_and(|raft| raft.role() == Role::Leader)
        })?;
        let raft = self.nodes[leader].raft.as_ref()?;
        let epoch = raft.leader_epoch();
        let id = raft.node_id();
        self.nodes
            .iter()
            .all(|node| {
                node.raft
                    .as_ref()
                    .is_some_and(|r| r.leader_epoch() == epoch && r.leader_id() == Some(id))
            })
            .then_some(leader)
    }

    /// And every member that lost entries was restored (it votes again).
    fn committed_everywhere(&mut self, proposed: &Proposed) -> bool {
        self.nodes.iter_mut().all(|node| {
            node.raft.as_ref().is_some_and(|raft| {
                raft.high_watermark() > proposed.last_offset
                    && !node.durable_hard_state.recovering
                    && node
                        .log
                        .entry_at(proposed.base_offset)
                        .is_some_and(|entry| entry.leader_epoch == proposed.leader_epoch)
            })
        })
    }
}

/// Runs one seed; a panic inside the core counts as a violation.
pub fn run_seed(seed: u64, plan: FaultPlan, config: RaftConfig) -> Result<Stats, Violation> {
    run_seed_with(seed, plan, config, true)
}

pub fn run_seed_with(
    seed: u64,
    plan: FaultPlan,
    config: RaftConfig,
    check_durability_rule: bool,
) -> Result<Stats, Violation> {
    run_seed_on::<MemLog>(seed, plan, config, check_durability_rule)
}

/// Runs one seed with logs of type `L`; a panic inside the core counts as a violation.
pub fn run_seed_on<L: HarnessLog>(
    seed: u64,
    plan: FaultPlan,
    config: RaftConfig,
    check_durability_rule: bool,
) -> Result<Stats, Violation> {
    let outcome = std::panic::catch_unwind(move || {
        let mut cluster = Cluster::<L>::new(seed, plan, config);
        cluster.check_durability_rule = check_durability_rule;
        cluster.run().map(|()| {
            let mut stats = cluster.stats.clone();
            for node in &cluster.nodes {
                stats.truncations += node.log.truncations();
                stats.resets += node.log.resets();
            }
            stats
        })
    });
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Violation {
                tick: 0,
                kind: ViolationKind::Panic,
                detail: message,
            })
        }
    }
}
