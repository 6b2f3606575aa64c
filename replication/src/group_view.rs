//! What a group request's answer must go through before it is sent, kept by the node
//! while the coordinator works on the request (group_authorization.rs builds and
//! applies it). A leaf, so the node can hold views without importing their logic.

use kafka_protocol::messages::TopicName;

use crate::request::Request;

/// A group request's view: the request as the client sent it (its principal and what
/// it asked), and the topics taken out of it before the coordinator saw it.
pub(crate) struct GroupView {
    pub(crate) request: Request,
    /// Topics taken out of an OffsetCommit or OffsetDelete, with their partitions.
    pub(crate) refused_topics: Vec<(TopicName, Vec<i32>)>,
}
