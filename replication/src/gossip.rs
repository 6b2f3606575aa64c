//! What brokers tell each other besides Raft: where clients reach them, and which
//! partitions they lead with which in-sync replicas. Brokers outside a partition's
//! replica set learn its leader only this way (for Metadata answers and forwarding),
//! and followers learn the ISR.

use crate::node::{Node, NodeIo, quorum_voters};
use crate::peer::{BrokerId, BrokerInfo, LeaderInfo, PeerMessage};

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
            self.peers.note_endpoint(from, &info.host, info.port);
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
            host: config.advertised_host.clone(),
            port: config.advertised_port,
        };
        for (to, message) in self.outbox.take(sender) {
            io.send(to, message);
        }
    }

    /// Every broker clients can be sent to, as (id, host, port): this one, and each
    /// peer that said where clients reach it.
    pub(crate) fn client_endpoints(&self) -> Vec<(BrokerId, String, i32)> {
        let mut endpoints = vec![(
            self.config.node_id,
            self.config.advertised_host.clone(),
            self.config.advertised_port,
        )];
        endpoints.extend(
            self.peers
                .endpoints()
                .map(|(id, host, port)| (id, host.to_string(), port)),
        );
        endpoints.sort();
        endpoints
    }
}
