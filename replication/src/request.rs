//! What the driver hands the node for each client request: the request decoded, and
//! the id its answer is matched back to. A leaf: every module that takes or answers
//! requests imports it, and it imports nothing of the crate.

use kafka_protocol::messages::RequestKind;

/// The principal of a connection that did not authenticate (Kafka's `User:ANONYMOUS`).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Identifies one client request; allocated by the driver, unique for the node's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A decoded client request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The API version the client used; responses are encoded with the same version.
    pub api_version: i16,
    /// The client's `client.id`, for logs.
    pub client_id: Option<String>,
    /// The client's address as Kafka shows it in group descriptions (`/127.0.0.1`),
    /// or empty when the driver does not know it.
    pub client_host: String,
    /// Who sent it, as ACLs name principals (`User:alice`): the user the connection
    /// authenticated as, or [`ANONYMOUS`] on a listener that authenticates no one.
    pub principal: String,
    /// The name of the listener it came through (`PLAINTEXT`, `SASL_SSL`, ...): its
    /// answers name brokers by their endpoints of that listener. Empty: the first.
    pub listener: String,
    /// The request itself.
    pub body: RequestKind,
}
