//! What brokers tell each other besides Raft: where clients reach them, and which
//! partitions they lead with which in-sync replicas. Brokers outside a partition's
//! replica set learn its leader only this way (for Metadata answers and forwarding),
//! and followers learn the ISR.

use crate::node::{Node, NodeIo, quorum_voters};
use crate::peer::{BrokerId, BrokerInfo, LeaderInfo, PeerMessage};
use crate::peer_directory::endpoint_of;

impl Node {
    /// Counts a Raft tick, and gossips every so many of them.
    pub(crate) fn gossip_on_tick(&mut self, io: &mut impl NodeIo) {
        if self.peers.tick() {
            self.gossip(io);
        }
    }

    /// Notes what broker `from`'s bundle says of itself and of the partitions it leads
    /// (taking the leaderships out of `message`).
    pub(crate) fn note_gossip(&mut self, from: BrokerId, message: &mut PeerMessage) {
        if let Some(info) = &message.broker
            && info.id == from
        {
            self.peers.note_endpoints(from, &info.endpoints);
        }
        for info in std::mem::take(&mut message.leaders) {
            if self.cluster.topics.contains_key(&info.partition.topic) {
                self.peers.note_leader(from, info);
            }
        }
    }

    /// Tells every other broker where clients reach this one and which partitions it
    /// leads, with their in-sync replicas.
    fn gossip(&mut self, io: &mut impl NodeIo) {
        let lag_ticks = self.replica_lag_ticks();
        let mut leaders = Vec::new();
        for (key, partition) in self.partitions.iter_mut() {
            if partition.is_leader() {
                leaders.push(LeaderInfo {
                    partition: key.clone(),
                    leader_epoch: partition.leader_epoch(),
                    in_sync: partition.in_sync_replicas(io, lag_ticks),
                    high_watermark: partition.high_watermark(),
                });
            }
        }
        for to in quorum_voters(&self.config) {
            if to != self.config.node_id {
                self.outbox.announce(to, &leaders);
            }
        }
    }

    /// Sends every bundle collected during the event, one per broker.
    pub(crate) fn flush_outbox(&mut self, io: &mut impl NodeIo) {
        let config = &self.config;
        let sender = || BrokerInfo {
            id: config.node_id,
            endpoints: config.endpoints.clone(),
        };
        for (to, message) in self.outbox.take(sender) {
            io.send(to, message);
        }
    }

    /// Every broker a client of `listener` can be sent to, as (id, host, port): this
    /// one, and each peer that said where clients of that listener reach it.
    pub(crate) fn client_endpoints(&self, listener: &str) -> Vec<(BrokerId, String, i32)> {
        let own = endpoint_of(&self.config.endpoints, listener)
            .or_else(|| self.config.endpoints.first())
            .map(|endpoint| (self.config.node_id, endpoint));
        let mut endpoints: Vec<(BrokerId, String, i32)> = own
            .into_iter()
            .chain(self.peers.endpoints(listener))
            .map(|(id, endpoint)| (id, endpoint.host.clone(), endpoint.port))
            .collect();
        endpoints.sort();
        endpoints
    }
}
