//! Node supervision: the brokers' processes as an operator's supervisor sees them. It
//! owns the nodes and their configuration, opens a node (counting its incarnations),
//! stops one (a power loss crashes its disk too), keeps at most one restart pending
//! per node, fires armed crashes, knows the broker whose disk was wiped (it stays down
//! for good), and measures how long a restarted cluster broker takes to catch up.
//! When to do each is the world's and the nemesis's call.

use std::collections::BTreeMap;

use odradek_replication::peer::ClientEndpoint;
use odradek_replication::{Node, NodeConfig, NodeError, RequestId, TopicPartition};

use crate::node::{HeldRequest, SimNode};

const MS: u64 = 1_000_000;

/// The nodes and what the supervisor knows of them.
pub(crate) struct Supervisor {
    nodes: Vec<SimNode>,
    /// What every node opens with (its id and port set per node).
    config: NodeConfig,
    /// The broker whose disk was wiped (at most one per run): it stays down.
    wiped: Option<u32>,
    /// In a cluster: for each restart (not a broker's first start), the simulated
    /// milliseconds until its metadata caught up with the quorum.
    catch_up_ms: Vec<u64>,
}

/// How an attempt to open a node went.
pub(crate) enum Opened {
    /// It was running already: nothing done.
    AlreadyUp,
    /// It runs, in this incarnation.
    Up {
        /// Its incarnation, from 1.
        incarnation: u64,
    },
    /// `Node::open` failed.
    Failed {
        /// Why.
        error: NodeError,
        /// Injected disk faults that fired while it ran.
        faults_during_open: u64,
    },
}

impl Supervisor {
    /// Supervises `nodes`, each opened with `config`.
    pub(crate) fn new(nodes: Vec<SimNode>, config: NodeConfig) -> Supervisor {
        Supervisor {
            nodes,
            config,
            wiped: None,
            catch_up_ms: Vec::new(),
        }
    }

    /// Nodes supervised.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the nodes are a cluster (more than one broker).
    pub(crate) fn is_cluster(&self) -> bool {
        self.nodes.len() > 1
    }

    /// Node `index`.
    pub(crate) fn node(&self, index: u32) -> &SimNode {
        &self.nodes[index as usize]
    }

    /// Node `index`, to deliver to or break.
    pub(crate) fn node_mut(&mut self, index: u32) -> &mut SimNode {
        &mut self.nodes[index as usize]
    }

    /// Every node, in index order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, SimNode> {
        self.nodes.iter()
    }

    /// Every node, in index order, to break.
    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, SimNode> {
        self.nodes.iter_mut()
    }

    /// Every node, for the checks.
    pub(crate) fn as_slice(&self) -> &[SimNode] {
        &self.nodes
    }

    /// Every node, for the end-of-run checks (reading a replica goes through its Io).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [SimNode] {
        &mut self.nodes
    }

    /// The broker whose disk was wiped, if one was.
    pub(crate) fn wiped(&self) -> Option<u32> {
        self.wiped
    }

    /// For each restart of a cluster broker, the simulated milliseconds until its
    /// metadata caught up with the quorum.
    pub(crate) fn catch_up_ms(&self) -> &[u64] {
        &self.catch_up_ms
    }

    /// Opens node `index` on its disk at `now`, unless it runs.
    pub(crate) fn open(&mut self, index: u32, now: u64) -> Opened {
        let cluster = self.is_cluster();
        let sim_node = &mut self.nodes[index as usize];
        sim_node.restart_scheduled = false;
        if sim_node.is_up() {
            return Opened::AlreadyUp;
        }
        sim_node.io.clock.advance_to(now);
        sim_node.io.disk.set_recovering(true);
        sim_node.io.disk.take_fired();
        let mut config = self.config.clone();
        config.node_id = index as i32 + 1;
        config.endpoints = vec![ClientEndpoint {
            listener: "PLAINTEXT".to_string(),
            host: "127.0.0.1".to_string(),
            port: 9092 + index as i32,
        }];
        let opened = Node::open(&mut sim_node.io, config);
        sim_node.io.disk.set_recovering(false);
        let faults_during_open = sim_node.io.disk.take_fired();
        let node = match opened {
            Ok(node) => node,
            Err(error) => {
                return Opened::Failed {
                    error,
                    faults_during_open,
                };
            }
        };
        sim_node.incarnation += 1;
        sim_node.node = Some(node);
        let restart = cluster && sim_node.incarnation > 1;
        sim_node.catching_up_since_ns = restart.then_some(now);
        sim_node.paused_until_ns = 0;
        Opened::Up {
            incarnation: sim_node.incarnation,
        }
    }

    /// Whether a failed open of node `index` is the wiped broker refusing its empty
    /// disk, as it must.
    pub(crate) fn refused_wiped_disk(&self, index: u32, error: &NodeError) -> bool {
        self.wiped == Some(index) && matches!(error, NodeError::Unformatted { .. })
    }

    /// Claims the one pending restart of node `index`: false if one is pending.
    pub(crate) fn claim_restart(&mut self, index: u32) -> bool {
        let node = &mut self.nodes[index as usize];
        if node.restart_scheduled {
            return false;
        }
        node.restart_scheduled = true;
        true
    }

    /// Stops node `index` (`crash_seed` picks what a power loss keeps of its unsynced
    /// writes, if `power_loss`); returns the requests it held, whose clients lose them.
    pub(crate) fn stop(
        &mut self,
        index: u32,
        power_loss: bool,
        crash_seed: u64,
    ) -> BTreeMap<RequestId, HeldRequest> {
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
        std::mem::take(&mut sim_node.held)
    }

    /// Marks node `index` as the broker whose disk is lost for good, and gives it an
    /// empty, unformatted disk seeded with `memdisk_seed` (stop it first).
    pub(crate) fn wipe(&mut self, index: u32, memdisk_seed: u64) {
        self.wiped = Some(index);
        self.nodes[index as usize].io.disk.wipe(memdisk_seed);
    }

    /// The crash armed on node `index`, disarmed: whether it is a power loss; `None`
    /// if none was armed or the node is down.
    pub(crate) fn take_armed_crash(&mut self, index: u32) -> Option<bool> {
        let node = &mut self.nodes[index as usize];
        let power_loss = node.crash_armed.take()?;
        node.is_up().then_some(power_loss)
    }

    /// After a step of node `index`: the topics it applied, and whether a restarted
    /// broker's metadata caught up (measured from its start).
    pub(crate) fn after_step(&mut self, index: u32, now: u64) {
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
    }

    /// Why node `index` declared itself unable to go on, if it did.
    pub(crate) fn fatal(&self, index: u32) -> Option<String> {
        let node = self.nodes[index as usize].node.as_ref()?;
        node.fatal().map(str::to_string)
    }

    /// Faults heal on node `index` at `now`: its disk faults stop, an armed crash is
    /// disarmed, its clock heals, a pause ends. Returns whether it runs unhealthy (fatal,
    /// or a partition offline or unopened), `None` if it is down.
    pub(crate) fn heal(&mut self, index: u32, now: u64) -> Option<bool> {
        let sim_node = &mut self.nodes[index as usize];
        sim_node.io.disk.set_faults_active(false);
        sim_node.crash_armed = None;
        sim_node.io.clock.heal(now);
        sim_node.paused_until_ns = sim_node.paused_until_ns.min(now);
        sim_node.node.as_ref().map(|node| {
            node.fatal().is_some()
                || node.cluster().topics.values().any(|topic| {
                    (0..topic.partitions).any(|p| {
                        node.partition(&TopicPartition::new(topic.name.clone(), p))
                            .is_none_or(|partition| partition.is_offline())
                    })
                })
        })
    }

    /// Each node's state, for a liveness failure report.
    pub(crate) fn describe(&self) -> Vec<String> {
        self.nodes.iter().map(describe_node).collect()
    }
}

/// One node's state: up (incarnation, fatal, topics, its metadata replica) or down.
fn describe_node(n: &SimNode) -> String {
    let Some(node) = &n.node else {
        return format!("node {} down", n.index);
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::NodeClock;
    use crate::disk::{DiskFaults, SimDisk};
    use crate::node::{Buggify, SimIo};
    use crate::rng::SimRng;

    /// One broker on an empty, fault-free disk (a broker alone formats its own).
    fn one_broker() -> Supervisor {
        let disk = SimDisk::new(SimRng::new(1, 1), 1, DiskFaults::default());
        let io = SimIo::new(
            disk,
            NodeClock::new(0, 0),
            SimRng::new(1, 2),
            Buggify::new(1, 0),
        );
        Supervisor::new(vec![SimNode::new(0, io)], NodeConfig::default())
    }

    #[test]
    fn each_open_after_a_stop_is_a_new_incarnation() {
        let mut nodes = one_broker();
        assert!(matches!(nodes.open(0, 0), Opened::Up { incarnation: 1 }));
        assert!(matches!(nodes.open(0, MS), Opened::AlreadyUp));
        let held = nodes.stop(0, true, 42);
        assert!(held.is_empty());
        assert!(!nodes.node(0).is_up());
        assert!(matches!(
            nodes.open(0, 2 * MS),
            Opened::Up { incarnation: 2 }
        ));
    }

    #[test]
    fn one_restart_pending_at_a_time() {
        let mut nodes = one_broker();
        assert!(nodes.claim_restart(0));
        assert!(!nodes.claim_restart(0), "one is pending");
        let _ = nodes.open(0, 0);
        assert!(nodes.claim_restart(0), "the open took the pending one");
    }

    #[test]
    fn an_armed_crash_fires_once_and_only_on_a_running_node() {
        let mut nodes = one_broker();
        nodes.node_mut(0).crash_armed = Some(true);
        assert_eq!(nodes.take_armed_crash(0), None, "down: nothing to crash");
        assert_eq!(nodes.node(0).crash_armed, None, "disarmed");
        let _ = nodes.open(0, 0);
        nodes.node_mut(0).crash_armed = Some(false);
        assert_eq!(nodes.take_armed_crash(0), Some(false));
        assert_eq!(nodes.take_armed_crash(0), None);
    }

    #[test]
    fn a_wiped_broker_starts_over_on_an_empty_disk() {
        let mut nodes = one_broker();
        let _ = nodes.open(0, 0);
        let _ = nodes.stop(0, true, 7);
        assert_eq!(nodes.wiped(), None);
        nodes.wipe(0, 9);
        assert_eq!(nodes.wiped(), Some(0));
        assert!(nodes.node(0).io.disk.inner().file_paths().is_empty());
    }
}
