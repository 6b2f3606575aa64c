//! Client-side errors: what went wrong talking to a broker, with Kafka error codes shown
//! by their protocol name, e.g. `UNKNOWN_TOPIC_OR_PARTITION (3)`.
//!
//! One enum for the whole client: the connection layer (I/O, framing, version
//! negotiation) and the broker's own answers (`Kafka`). `is_retriable` keeps the two
//! kinds of broker error apart the way Kafka's `Errors.java` does.

use std::fmt;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

/// A Kafka error code, displayed as `NAME (code)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    /// The topic or partition does not exist (on this broker).
    pub const UNKNOWN_TOPIC_OR_PARTITION: ErrorCode = ErrorCode(3);
    /// The broker does not serve this API version.
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(35);
    /// CreateTopics on a name that is taken.
    pub const TOPIC_ALREADY_EXISTS: ErrorCode = ErrorCode(36);

    /// Whether the code means success.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Kafka's protocol name for the code, `UNKNOWN_TOPIC_OR_PARTITION` style; codes this
    /// client does not know are `UNKNOWN_ERROR_CODE`.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".to_string(),
            Some(ResponseError::Unknown(_)) => "UNKNOWN_ERROR_CODE".to_string(),
            Some(known) => screaming_snake(&format!("{known:?}")),
        }
    }

    /// Whether Kafka classes the error as retriable (the request may succeed if sent again).
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (index, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Everything that can go wrong in the client.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    Io {
        /// `host:port` of the broker.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connection is closed (by either side) and the request has no answer.
    Closed {
        /// `host:port` of the broker.
        address: String,
        /// Why, as far as known.
        reason: String,
    },
    /// The broker sent bytes this client cannot make sense of.
    Protocol {
        /// `host:port` of the broker.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// The broker does not serve any version of an API this client can speak.
    UnsupportedApi {
        /// The API.
        api: ApiKey,
        /// `host:port` of the broker.
        address: String,
    },
    /// The broker answered with an error code.
    Kafka {
        /// What the request was about (`create topic orders`, `produce to orders-0`).
        context: String,
        /// The code.
        code: ErrorCode,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// Anything else (bad arguments to a client call, no broker known, ...).
    Other(String),
}

impl ClientError {
    /// A broker error with `context`.
    pub fn kafka(context: impl Into<String>, code: i16, message: Option<&str>) -> ClientError {
        ClientError::Kafka {
            context: context.into(),
            code: ErrorCode(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again (maybe after a metadata refresh) could help.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => code.is_retriable(),
            ClientError::Io { .. } | ClientError::Closed { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io { address, source } => write!(f, "broker {address}: {source}"),
            ClientError::Closed { address, reason } => {
                write!(f, "broker {address}: connection closed: {reason}")
            }
            ClientError::Protocol { address, reason } => {
                write!(f, "broker {address}: protocol error: {reason}")
            }
            ClientError::UnsupportedApi { api, address } => write!(
                f,
                "broker {address} does not support any version of {api:?} this client speaks"
            ),
            ClientError::Kafka {
                context,
                code,
                message,
            } => {
                write!(f, "{context}: {code}")?;
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            ClientError::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result of a client call.
pub type ClientResult<T> = Result<T, ClientError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_by_protocol_name() {
        assert_eq!(ErrorCode(3).to_string(), "UNKNOWN_TOPIC_OR_PARTITION (3)");
        assert_eq!(ErrorCode(38).to_string(), "INVALID_REPLICATION_FACTOR (38)");
        assert_eq!(ErrorCode(-1).to_string(), "UNKNOWN_SERVER_ERROR (-1)");
        assert_eq!(ErrorCode(36).to_string(), "TOPIC_ALREADY_EXISTS (36)");
        assert_eq!(ErrorCode(0).to_string(), "NONE (0)");
        assert_eq!(ErrorCode(9999).to_string(), "UNKNOWN_ERROR_CODE (9999)");
    }

    #[test]
    fn retriable_follows_kafka() {
        assert!(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.is_retriable());
        assert!(ErrorCode(6).is_retriable()); // NOT_LEADER_OR_FOLLOWER
        assert!(!ErrorCode::TOPIC_ALREADY_EXISTS.is_retriable());
        assert!(!ErrorCode(9999).is_retriable());
    }

    #[test]
    fn kafka_error_shows_context_code_and_message() {
        let error = ClientError::kafka("create topic orders", 38, Some("only one broker"));
        assert_eq!(
            error.to_string(),
            "create topic orders: INVALID_REPLICATION_FACTOR (38): only one broker"
        );
        let error = ClientError::kafka("create topic orders", 38, Some(""));
        assert_eq!(
            error.to_string(),
            "create topic orders: INVALID_REPLICATION_FACTOR (38)"
        );
    }
}
