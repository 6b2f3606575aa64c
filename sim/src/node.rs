//! One simulated broker: the real [`Node`] and the [`SimIo`] it runs on.
//!
//! `SimIo` implements the whole seam (`Disk` through [`SimDisk`], `Io`, `NodeIo`) without
//! touching the world: what the node asks for (timers, responses, syncs started) is
//! collected, and the world turns it into queued events after each `Node::handle`.
//! That keeps the node's view strictly one event at a time, as in production.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::ResponseKind;
use odradek_log::io::{Instant, Io, TimerId};
use odradek_replication::peer::{BrokerId, PeerMessage};
use odradek_replication::{Node, NodeIo, RequestId};

use crate::clock::NodeClock;
use crate::disk::SimDisk;
use crate::rng::{PPM, SimRng, mix};
use crate::trace::Fnv64;

/// BUGGIFY: which sites are on this seed, how often they fire, and how often they did.
#[derive(Debug)]
pub struct Buggify {
    seed: u64,
    fire_ppm: u64,
    active: bool,
    muted: bool,
    fired: BTreeMap<&'static str, u64>,
}

impl Buggify {
    /// Sites fire with `fire_ppm` if on; each site is on for a seed with probability
    /// 1/2, decided by hashing the seed with the site's name (so the decision does not
    /// depend on which site is asked first).
    pub fn new(seed: u64, fire_ppm: u64) -> Buggify {
        Buggify {
            seed,
            fire_ppm,
            active: fire_ppm > 0,
            muted: false,
            fired: BTreeMap::new(),
        }
    }

    /// Switched off after the draw (`--keep-faults`): sites are still asked and draw
    /// as they would, and never fire.
    pub fn mute(&mut self) {
        self.muted = true;
    }

    fn site_on(&self, site: &str) -> bool {
        let mut hash = Fnv64::default();
        hash.bytes(site.as_bytes());
        mix(self.seed, hash.finish()).is_multiple_of(2)
    }

    fn ask(&mut self, rng: &mut SimRng, site: &'static str) -> bool {
        if !self.active || !self.site_on(site) || !rng.chance(self.fire_ppm.min(PPM)) {
            return false;
        }
        if self.muted {
            return false;
        }
        *self.fired.entry(site).or_insert(0) += 1;
        true
    }

    /// Firings per site.
    pub fn fired(&self) -> &BTreeMap<&'static str, u64> {
        &self.fired
    }
}

/// The seam of one simulated node.
pub struct SimIo {
    /// The disk, which survives crashes.
    pub disk: SimDisk,
    /// The node's clock, which survives crashes.
    pub clock: NodeClock,
    rng: SimRng,
    /// BUGGIFY state.
    pub buggify: Buggify,
    /// Timers asked for since the world last looked.
    pub timers: Vec<(Instant, TimerId)>,
    /// Responses given since the world last looked.
    pub responses: Vec<(RequestId, ResponseKind)>,
    /// Bundles the node sent to other brokers, in order.
    pub sent: Vec<(BrokerId, PeerMessage)>,
}

odradek_log::forward_disk!(SimIo => disk);

impl SimIo {
    /// A node's seam.
    pub fn new(disk: SimDisk, clock: NodeClock, rng: SimRng, buggify: Buggify) -> SimIo {
        SimIo {
            disk,
            clock,
            rng,
            buggify,
            timers: Vec::new(),
            responses: Vec::new(),
            sent: Vec::new(),
        }
    }
}

impl Io for SimIo {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn wall_clock_ms(&self) -> i64 {
        self.clock.wall_clock_ms()
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn set_timer(&mut self, at: Instant, timer: TimerId) {
        self.timers.push((at, timer));
    }

    fn buggify(&mut self, site: &'static str) -> bool {
        self.buggify.ask(&mut self.rng, site)
    }
}

impl NodeIo for SimIo {
    fn respond(&mut self, id: RequestId, response: ResponseKind) {
        self.responses.push((id, response));
    }

    fn send(&mut self, to: BrokerId, message: PeerMessage) {
        self.sent.push((to, message));
    }
}

/// A request the node holds: delivered, not answered.
#[derive(Clone, Copy, Debug)]
pub struct HeldRequest {
    /// The client that sent it.
    pub client: u32,
    /// The client's correlation id.
    pub correlation: u64,
    /// A Produce with `acks=0`: must never be answered.
    pub acks_zero: bool,
    /// Records of a Produce (0 for other requests).
    pub produce_records: i64,
    /// A ListOffsets for the latest offset (its answer is the high watermark).
    pub list_offsets_latest: bool,
    /// A Metadata request for every topic (its answer lists every topic known).
    pub metadata_all_topics: bool,
}

/// One simulated broker.
pub struct SimNode {
    /// Index of the node in the world.
    pub index: u32,
    /// The running node, `None` while it is down.
    pub node: Option<Node>,
    /// Its seam (disk and clock survive the node).
    pub io: SimIo,
    /// Bumped at every start; events of an older incarnation are dropped.
    pub incarnation: u64,
    /// Events are not delivered before this global time (a pause).
    pub paused_until_ns: u64,
    /// Requests delivered and not answered.
    pub held: BTreeMap<RequestId, HeldRequest>,
    /// Next request id (unique for the node's life, across incarnations).
    pub next_request: u64,
    /// A restart is scheduled (the node is down and will come back).
    pub restart_scheduled: bool,
    /// A crash (`Some(true)`: power loss) or kill (`Some(false)`) waits for the next
    /// moment the node has writes in flight.
    pub crash_armed: Option<bool>,
    /// Every topic this broker has applied the creation of, in any incarnation (the
    /// simulated workload deletes none): it must never answer as if one did not exist
    /// (issue 15).
    pub topics_applied: BTreeSet<String>,
    /// When the current incarnation started, until its metadata caught up with the
    /// quorum (`None` once it did, or while the node is down).
    pub catching_up_since_ns: Option<u64>,
}

impl SimNode {
    /// A node that has not started yet.
    pub fn new(index: u32, io: SimIo) -> SimNode {
        SimNode {
            index,
            node: None,
            io,
            incarnation: 0,
            paused_until_ns: 0,
            held: BTreeMap::new(),
            next_request: 1,
            restart_scheduled: false,
            crash_armed: None,
            topics_applied: BTreeSet::new(),
            catching_up_since_ns: None,
        }
    }

    /// Whether the node is running.
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }
}
