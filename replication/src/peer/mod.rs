//! What brokers say to each other.
//!
//! Brokers of one cluster exchange exactly one kind of value, a [`PeerMessage`]: a bundle
//! of everything one broker has queued for another since its last flush. Raft traffic of
//! every group the two share (the metadata quorum and each partition) travels in one
//! bundle, so heartbeats for a thousand shared partitions cost one message per flush, not
//! a thousand (docs/replication.md). The bundle also carries what is not Raft:
//!
//! - [`BrokerInfo`]: who the sender is and where clients reach it. Every bundle carries
//!   it, so a broker learns its peers' client endpoints from their first message;
//! - [`LeaderInfo`]: the partitions the sender leads, with their in-sync replicas, so
//!   every broker can answer Metadata requests for every partition;
//! - [`Forward`]: a metadata change asked of the metadata quorum's leader (the
//!   controller) by a broker that is not it, and the controller's answer.
//!
//! Delivery is best effort: a bundle may be lost, delayed or (in the simulator)
//! duplicated or reordered; every protocol that rides on it tolerates that. Bundles on
//! one connection arrive in order in production, but nothing depends on it.
//!
//! On the network a bundle travels in Odradek's own binary format (not Kafka's):
//! [`PeerMessage::encode`] and [`PeerMessage::decode`], described in `peer/codec.rs`.

use crate::raft::Message;
use crate::topics::TopicPartition;

mod codec;
pub use codec::*;

/// A broker's `node.id`. Raft's `NodeId` is the same number as a `u32`.
pub type BrokerId = i32;

/// Which Raft group a message belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupId {
    /// The metadata quorum (`__cluster_metadata-0`).
    Metadata,
    /// One partition of a topic.
    Partition(TopicPartition),
}

/// Raft's id for broker `id` (node ids are never negative: the config refuses them).
pub(crate) fn raft_node_id(id: BrokerId) -> u32 {
    u32::try_from(id).expect("node ids are not negative")
}

/// The broker of Raft member `id`.
pub(crate) fn broker_id(id: u32) -> BrokerId {
    BrokerId::try_from(id).expect("raft ids come from broker ids")
}

/// One Raft message; sender and receiver are the bundle's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMessage {
    /// The group it belongs to.
    pub group: GroupId,
    /// The message.
    pub message: Message,
}

/// The sender and how clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The sender's `node.id`.
    pub id: BrokerId,
    /// Where clients reach it, one endpoint per client listener (from
    /// `advertised.listeners`).
    pub endpoints: Vec<ClientEndpoint>,
}

/// Where clients of one listener reach a broker.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientEndpoint {
    /// The listener's name (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`...): a client that
    /// connected through a listener of this name is told the endpoints of that name.
    pub listener: String,
    /// The host clients connect to.
    pub host: String,
    /// The port clients connect to.
    pub port: i32,
}

/// A partition the sender leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The partition.
    pub partition: TopicPartition,
    /// The epoch of the sender's leadership; a receiver keeps the highest it has seen.
    pub leader_epoch: i32,
    /// The replicas the leader counts as in sync (itself included).
    pub in_sync: Vec<BrokerId>,
    /// The leader's high watermark, for `odradek topics describe`.
    pub high_watermark: i64,
}

/// A metadata change forwarded to the controller, or its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forward {
    /// "Please append this metadata record." `record` is a
    /// [`crate::metadata::MetadataRecord`] in its text form.
    Propose {
        /// The asker's id for the request, echoed in the answer.
        request: u64,
        /// The record, as `MetadataRecord::encode` writes it.
        record: String,
    },
    /// The controller's answer to a [`Forward::Propose`].
    Proposed {
        /// The asker's id.
        request: u64,
        /// `None`: the record is committed in the metadata log at or below
        /// `offset`. `Some(reason)`: refused (not the controller any more, invalid).
        error: Option<String>,
        /// The record's offset in the metadata log, when accepted.
        offset: i64,
    },
}

/// Everything one broker sends another in one go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMessage {
    /// Who sent it and where clients reach it.
    pub broker: Option<BrokerInfo>,
    /// Raft messages of every group the two brokers share.
    pub raft: Vec<RaftMessage>,
    /// Partitions the sender leads (all of them, or only changes).
    pub leaders: Vec<LeaderInfo>,
    /// Metadata changes forwarded to the controller, and answers.
    pub forwards: Vec<Forward>,
}

impl PeerMessage {
    /// Whether there is nothing in it worth sending.
    pub fn is_empty(&self) -> bool {
        self.raft.is_empty() && self.leaders.is_empty() && self.forwards.is_empty()
    }
}
