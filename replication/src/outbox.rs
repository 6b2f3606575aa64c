//! The bundles a node collects for each other broker during one event, sent at its
//! end: every group's Raft messages, forwarded proposals and leadership gossip to one
//! broker share one bundle (so a broker's heartbeats for thousands of partitions are one
//! message, not thousands).

use std::collections::{BTreeMap, BTreeSet};

use crate::peer::{
    BrokerId, BrokerInfo, Forward, GroupId, LeaderInfo, PeerMessage, RaftMessage, broker_id,
};
use crate::raft::Envelope;

/// Bundles being collected, by destination broker.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bundles: BTreeMap<BrokerId, PeerMessage>,
    /// Brokers that get a bundle even if it is empty (it says where clients reach us).
    announce_to: BTreeSet<BrokerId>,
}

impl Outbox {
    /// Group `group`'s member's messages, each to its broker.
    pub(crate) fn push_raft(&mut self, group: &GroupId, envelopes: Vec<Envelope<GroupId>>) {
        for envelope in envelopes {
            self.bundle(broker_id(envelope.to)).raft.push(RaftMessage {
                group: group.clone(),
                message: envelope.message,
            });
        }
    }

    /// A forwarded proposal, or its answer, for broker `to`.
    pub(crate) fn push_forward(&mut self, to: BrokerId, forward: Forward) {
        self.bundle(to).forwards.push(forward);
    }

    /// This broker's leaderships for broker `to`; its bundle goes out even if empty.
    pub(crate) fn announce(&mut self, to: BrokerId, leaders: &[LeaderInfo]) {
        self.bundle(to).leaders.extend(leaders.iter().cloned());
        self.announce_to.insert(to);
    }

    fn bundle(&mut self, to: BrokerId) -> &mut PeerMessage {
        self.bundles.entry(to).or_default()
    }

    /// The bundles to send now, each signed with `sender()` (where clients reach this
    /// broker, built only if there is a bundle); the outbox is empty afterwards. Empty
    /// bundles are left out unless they announce.
    pub(crate) fn take(
        &mut self,
        sender: impl FnOnce() -> BrokerInfo,
    ) -> Vec<(BrokerId, PeerMessage)> {
        if self.bundles.is_empty() {
            self.announce_to.clear();
            return Vec::new();
        }
        let sender = sender();
        let announce_to = std::mem::take(&mut self.announce_to);
        std::mem::take(&mut self.bundles)
            .into_iter()
            .filter(|(to, message)| !message.is_empty() || announce_to.contains(to))
            .map(|(to, mut message)| {
                message.broker = Some(sender.clone());
                (to, message)
            })
            .collect()
    }
}
