//! `odradek-replication`: the broker node as a pure state machine over the Io seam.
//!
//! ```text
//!   driver (bin/ or sim/)                       odradek-replication
//!   ─────────────────────                       ───────────────────
//!   decoded Kafka request ── Event::Client ──►  Node::handle (the router)
//!   peer bundle           ── Event::Peer   ──►      ├─► handlers: produce, fetch, list_offsets, admin,
//!   fsync finished        ── Event::Disk   ──►      │             producer_ids, group_hosting,
//!                                                   │             offset_for_leader_epoch,
//!                                                   │             describe_cluster, describe_log_dirs
//!   timer due             ── Event::Timer  ──►      ├─► drive: every Replica (partition, offsets
//!                                                   │          partition, metadata log) → Raft, log
//!   NodeIo::respond / send ◄────────────────────────┘   end of event: settle driven, flush outbox
//! ```
//!
//! - [`node`]: the [`Node`] (a router), its events, configuration and the [`NodeIo`]
//!   seam; [`request`]: a client request and its id; [`node_error`]: why a node cannot
//!   start.
//! - [`replica`]: one member of one Raft group on this broker, with its log; `drive`
//!   drives them all the same way, `outbox` collects what goes to each broker, `driven`
//!   what the router settles at the end of an event; [`hard_state`]: votes on disk.
//! - The node's other state, each a type with private fields: `waiting` (produces and
//!   fetches waiting on partitions), `metadata_waits` (requests waiting on the metadata
//!   log, topic changes not applied yet), `io_waits` (disk operations and timers in
//!   flight), `group_host` (the coordinator, its queued effects, loaded partitions),
//!   `producer_id_pool`.
//! - [`metadata`]: the metadata log (topics, producer ids) and the state it builds.
//! - [`raft`]: the Raft core of one replicated group (a partition or the metadata log),
//!   a pure state machine.
//! - [`group`]: the consumer-group coordinator (Kafka's classic group protocol and
//!   committed offsets in `__consumer_offsets`), a pure state machine; `group_hosting`
//!   wires it into the node (FindCoordinator, routing, appends, loading on leadership).
//! - [`peer`]: the bundles brokers send each other; `gossip` and `peer_directory`: what
//!   they say of themselves; `forward` and `pending_forwards`: creations forwarded to
//!   the controller.
//! - [`topics`]: topic names, ids and per-topic configuration.
//! - [`error`]: Kafka error codes and where our errors map to them.
//!
//! Nothing here touches the OS: see `log/src/io.rs` for the seam's contract.
#![deny(missing_docs)]

pub mod acl;
mod acls;
mod acls_answer;
mod admin;
mod alter_configs;
mod authorize;
pub mod commit_point;
mod config_answer;
mod controller;
mod delete_records;
mod describe_cluster;
mod describe_configs;
mod describe_log_dirs;
mod drive;
mod driven;
pub mod dynamic_config;
pub mod error;
mod fetch;
mod forward;
mod gossip;
pub mod group;
mod group_authorization;
mod group_host;
mod group_hosting;
mod group_view;
pub mod hard_state;
pub mod identity;
mod io_waits;
mod list_offsets;
mod log_cleaner;
pub mod metadata;
mod metadata_waits;
pub mod node;
pub mod node_error;
mod offset_for_leader_epoch;
mod outbox;
pub mod peer;
mod peer_directory;
mod pending_forwards;
mod produce;
mod producer_id_pool;
mod producer_ids;
pub mod raft;
mod records_answer;
pub mod replica;
pub mod request;
pub mod scram;
mod scram_answer;
pub mod topics;
mod user_scram;
mod waiting;

pub use node::{Event, Node, NodeConfig, NodeIo};
pub use node_error::NodeError;
pub use request::{Request, RequestId};
pub use topics::TopicPartition;
