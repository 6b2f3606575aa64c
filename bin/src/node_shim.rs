//! STAND-IN, to be deleted: the node interface of `odradek_replication::node` as agreed,
//! until that module lands. Only ApiVersions and malformed-input handling are real while
//! this file exists; the stand-in node answers nothing else.

use kafka_protocol::messages::{RequestKind, ResponseKind};
use odradek_log::io::{DiskCompletion, Io, TimerId};

/// Identifies one client request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A decoded client request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub api_version: i16,
    pub client_id: Option<String>,
    pub body: RequestKind,
}

/// Everything that can happen to a node.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Client { id: RequestId, request: Request },
    Timer(TimerId),
    Disk(DiskCompletion),
}

/// The seam as the node sees it.
pub trait NodeIo: Io {
    fn respond(&mut self, id: RequestId, response: ResponseKind);
}

/// The node's configuration (the fields the front end fills).
#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    pub node_id: i32,
    pub advertised_host: String,
    pub advertised_port: i32,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NodeError(String);

/// A node that answers nothing.
pub struct Node;

impl Node {
    pub fn open(_io: &mut impl NodeIo, _config: NodeConfig) -> Result<Node, NodeError> {
        Ok(Node)
    }
    pub fn handle(&mut self, _io: &mut impl NodeIo, _event: Event) {}
    pub fn shutdown(&mut self, _io: &mut impl NodeIo) {}
    pub fn fatal(&self) -> Option<&str> {
        None
    }
}
