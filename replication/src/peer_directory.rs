//! What this broker knows of the others from their gossip (`gossip.rs`): where clients
//! reach each, and which partitions each leads with which in-sync replicas, for
//! partitions whose Raft group this broker may not be in.

use std::collections::BTreeMap;

use crate::peer::{BrokerId, ClientEndpoint, LeaderInfo};
use crate::topics::TopicPartition;

/// Every how many Raft ticks a broker gossips its leaderships (once a second by
/// default).
const GOSSIP_EVERY_TICKS: u64 = 10;

/// A partition leader as another broker announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteLeader {
    /// The broker that leads it.
    pub(crate) leader: BrokerId,
    /// In this epoch.
    pub(crate) leader_epoch: i32,
    /// With these replicas in sync.
    pub(crate) in_sync: Vec<BrokerId>,
}

/// The endpoint of `listener` among `endpoints` (names compare without case, as
/// Kafka's listener names do), or the first endpoint when `listener` is empty (a
/// request whose listener the driver did not say).
pub(crate) fn endpoint_of<'a>(
    endpoints: &'a [ClientEndpoint],
    listener: &str,
) -> Option<&'a ClientEndpoint> {
    if listener.is_empty() {
        return endpoints.first();
    }
    endpoints
        .iter()
        .find(|endpoint| endpoint.listener.eq_ignore_ascii_case(listener))
}

/// The peers as their gossip describes them.
#[derive(Debug, Default)]
pub(crate) struct PeerDirectory {
    /// Where clients reach each peer, per listener.
    endpoints: BTreeMap<BrokerId, Vec<ClientEndpoint>>,
    /// The newest leadership announced for each partition.
    leaders: BTreeMap<TopicPartition, RemoteLeader>,
    /// Raft ticks since start, to gossip every so many.
    ticks: u64,
}

impl PeerDirectory {
    /// Counts a Raft tick; whether it is time to gossip.
    pub(crate) fn tick(&mut self) -> bool {
        let due = self.ticks.is_multiple_of(GOSSIP_EVERY_TICKS);
        self.ticks += 1;
        due
    }

    /// Broker `id` says clients reach it at `endpoints`.
    pub(crate) fn note_endpoints(&mut self, id: BrokerId, endpoints: &[ClientEndpoint]) {
        if self.endpoints.get(&id).map(Vec::as_slice) != Some(endpoints) {
            self.endpoints.insert(id, endpoints.to_vec());
        }
    }

    /// Where clients of `listener` reach each peer that said so, as (id, endpoint). A
    /// peer without an endpoint of that listener is left out, as Kafka leaves out
    /// brokers without the listener a client came through.
    pub(crate) fn endpoints<'a>(
        &'a self,
        listener: &'a str,
    ) -> impl Iterator<Item = (BrokerId, &'a ClientEndpoint)> + 'a {
        self.endpoints.iter().filter_map(move |(&id, endpoints)| {
            endpoint_of(endpoints, listener).map(|endpoint| (id, endpoint))
        })
    }

    /// Broker `from` leads `info.partition`: kept unless a newer epoch is known.
    pub(crate) fn note_leader(&mut self, from: BrokerId, info: LeaderInfo) {
        let newer = self
            .leaders
            .get(&info.partition)
            .is_none_or(|known| known.leader_epoch <= info.leader_epoch);
        if newer {
            let leader = RemoteLeader {
                leader: from,
                leader_epoch: info.leader_epoch,
                in_sync: info.in_sync,
            };
            self.leaders.insert(info.partition, leader);
        }
    }

    /// The leader of `key` last announced, if any.
    pub(crate) fn leader_of(&self, key: &TopicPartition) -> Option<&RemoteLeader> {
        self.leaders.get(key)
    }

    /// Forgets the leaders of a deleted topic's partitions.
    pub(crate) fn forget_topic(&mut self, topic: &str) {
        self.leaders.retain(|key, _| key.topic != topic);
    }
}
