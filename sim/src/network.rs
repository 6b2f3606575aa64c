//! The simulated network: between clients and nodes, and between the brokers of a
//! cluster (the Raft and forwarding bundles each node sends its peers).
//!
//! # Fault model (network)
//!
//! A message travels on a directed link `from -> to`. Kafka runs over TCP, so a real
//! "lost message" is a broken connection; the clients here treat a missing response
//! like Kafka clients treat a request timeout (close, retry), which is what matters.
//! Between brokers a bundle is best effort: Raft repeats what matters (heartbeats,
//! retransmits, new elections), so a lost, late, duplicated or reordered bundle must
//! never break safety, only delay progress.
//!
//! Every fault below applies to both kinds of link, drawn from the same per-seed
//! rates; the counters of links between two brokers are named `peer.*` instead of
//! `net.*` so a run shows which side was hit.
//!
//! - **delay**: every message takes a seeded latency in `[delay_min, delay_max]`;
//! - **reordering**: with `reorder_ppm` a message takes an extra delay, so it overtakes
//!   or is overtaken by its neighbours;
//! - **loss**: with `loss_ppm` a message is dropped;
//! - **duplication**: with `duplicate_ppm` a message is delivered twice (a replayed
//!   request reaches the node as two requests; a client ignores a second response);
//! - **clogging / hold and release**: a link is held until a drawn release time;
//!   messages sent meanwhile are delivered at the release, in a burst;
//! - **partitions**: a link is cut, in one direction or both: isolate a node from some
//!   or all clients, or the asymmetric case in which requests still arrive but
//!   responses are lost. In a cluster also between brokers: isolate one broker from
//!   every peer, split the brokers into two halves, cut one broker's outgoing (or
//!   incoming) peer links only (asymmetric), or cut a random set of directed peer
//!   links (`nemesis.rs` draws them).
//!
//! All of it is active in the safety phase only; [`Network::heal`] restores a perfect
//! network with ordinary delays.

use std::collections::{BTreeMap, BTreeSet};

use crate::rng::SimRng;

/// One end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// Client process `n`.
    Client(u32),
    /// Node `n`.
    Node(u32),
}

/// The network faults of one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Shortest one-way delay.
    pub delay_min_ns: u64,
    /// Longest ordinary one-way delay.
    pub delay_max_ns: u64,
    /// Chance a message is dropped.
    pub loss_ppm: u64,
    /// Chance a message is delivered twice.
    pub duplicate_ppm: u64,
    /// Chance a message is delayed extra (reordering).
    pub reorder_ppm: u64,
    /// Classes switched off after the draw (`--keep-faults`).
    pub muted: NetworkMuted,
}

/// Network fault classes switched off after the seed drew them (`--keep-faults`):
/// their random draws are still made, so the stream stays as it was for the classes
/// kept, and their effects are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkMuted {
    /// Loss.
    pub loss: bool,
    /// Duplication.
    pub duplicate: bool,
    /// Reordering (extra delays; ordinary delays back to the default range).
    pub reorder: bool,
}

impl Default for NetworkFaults {
    fn default() -> NetworkFaults {
        NetworkFaults {
            delay_min_ns: 50_000,
            delay_max_ns: 500_000,
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            muted: NetworkMuted::default(),
        }
    }
}

/// Counters of the network's faults (names as printed in `faults:`).
pub const NETWORK_COUNTERS: &[&str] = &[
    "net.drop-loss",
    "net.drop-partition",
    "net.duplicate",
    "net.reorder",
    "net.held",
];

/// Counters of the links between brokers (printed for clusters).
pub const PEER_COUNTERS: &[&str] = &[
    "peer.drop-loss",
    "peer.drop-partition",
    "peer.duplicate",
    "peer.reorder",
    "peer.held",
];

/// Links, their faults, and what the faults did.
pub struct Network {
    faults: NetworkFaults,
    active: bool,
    cut: BTreeSet<(Endpoint, Endpoint)>,
    held_until_ns: BTreeMap<(Endpoint, Endpoint), u64>,
    counters: BTreeMap<&'static str, u64>,
}

impl Network {
    /// A network with the seed's faults (active from the start).
    pub fn new(faults: NetworkFaults) -> Network {
        Network {
            faults,
            active: true,
            cut: BTreeSet::new(),
            held_until_ns: BTreeMap::new(),
            counters: NETWORK_COUNTERS.iter().map(|name| (*name, 0)).collect(),
        }
    }

    /// When the message sent now on `from -> to` arrives: no time if it is lost, two if
    /// it is duplicated (only if `may_duplicate`: duplication models a replay by the
    /// sender's stack, and an `acks=0` producer never resends anything).
    pub fn send(
        &mut self,
        rng: &mut SimRng,
        now_ns: u64,
        from: Endpoint,
        to: Endpoint,
        may_duplicate: bool,
    ) -> Vec<u64> {
        let mut arrivals = Vec::new();
        let peer = matches!((from, to), (Endpoint::Node(_), Endpoint::Node(_)));
        let name = |client: &'static str, between_brokers: &'static str| {
            if peer { between_brokers } else { client }
        };
        if self.cut.contains(&(from, to)) {
            self.count(name("net.drop-partition", "peer.drop-partition"));
            return arrivals;
        }
        if self.active && rng.chance(self.faults.loss_ppm) && !self.faults.muted.loss {
            self.count(name("net.drop-loss", "peer.drop-loss"));
            return arrivals;
        }
        let copies = if may_duplicate
            && self.active
            && rng.chance(self.faults.duplicate_ppm)
            && !self.faults.muted.duplicate
        {
            self.count(name("net.duplicate", "peer.duplicate"));
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = rng.range(
                self.faults.delay_min_ns,
                self.faults.delay_max_ns.max(self.faults.delay_min_ns + 1),
            );
            if self.active && rng.chance(self.faults.reorder_ppm) {
                let extra = rng.log_range(1_000_000, 200_000_000);
                if !self.faults.muted.reorder {
                    delay += extra;
                    self.count(name("net.reorder", "peer.reorder"));
                }
            }
            let mut at = now_ns + delay;
            if let Some(&until) = self.held_until_ns.get(&(from, to))
                && until > at
            {
                at = until + rng.below(1000);
                self.count(name("net.held", "peer.held"));
            }
            arrivals.push(at);
        }
        arrivals
    }

    /// Also prints the counters of links between brokers (a cluster has them).
    pub fn with_peers(mut self) -> Network {
        for name in PEER_COUNTERS {
            self.counters.entry(name).or_insert(0);
        }
        self
    }

    /// Cuts `from -> to`.
    pub fn cut(&mut self, from: Endpoint, to: Endpoint) {
        self.cut.insert((from, to));
    }

    /// Whether `from -> to` is cut.
    pub fn is_cut(&self, from: Endpoint, to: Endpoint) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Restores every cut link.
    pub fn repair(&mut self) {
        self.cut.clear();
    }

    /// Holds `from -> to` until `until_ns` (then releases it: the messages sent
    /// meanwhile arrive together).
    pub fn hold(&mut self, from: Endpoint, to: Endpoint, until_ns: u64) {
        let entry = self.held_until_ns.entry((from, to)).or_insert(0);
        *entry = (*entry).max(until_ns);
    }

    /// Ends every fault: links repaired and released, loss and duplication off.
    pub fn heal(&mut self) {
        self.active = false;
        self.cut.clear();
        self.held_until_ns.clear();
    }

    /// The counters of faults that fired.
    pub fn counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.counters
    }

    fn count(&mut self, name: &'static str) {
        *self.counters.entry(name).or_insert(0) += 1;
    }
}
