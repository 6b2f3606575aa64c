//! Who a connection is and what protects it: the security protocol of the client
//! listener (Kafka's `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`) and the
//! principal each connection's requests carry to the node, which authorizes them.

pub mod base64;
pub mod sasl;
pub mod scram;

use anyhow::bail;
use odradek_replication::request::ANONYMOUS;

mod distinguished_name;
pub mod tls;

/// A listener's security protocol, as `listener.security.protocol.map` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityProtocol {
    /// No encryption, no authentication: every connection is `User:ANONYMOUS`.
    Plaintext,
    /// TLS; with `ssl.client.auth` the client certificate's subject is the principal.
    Ssl,
    /// SASL authentication on a plain connection.
    SaslPlaintext,
    /// SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, in Kafka's order.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses Kafka's name (any case).
    pub fn parse(name: &str) -> anyhow::Result<SecurityProtocol> {
        match SecurityProtocol::ALL
            .iter()
            .find(|protocol| protocol.name().eq_ignore_ascii_case(name))
        {
            Some(protocol) => Ok(*protocol),
            None => bail!(
                "unknown security protocol {name:?} (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
            ),
        }
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one connection has established about its client: the principal its requests
/// carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    principal: String,
}

impl Session {
    /// A connection that authenticates no one (`User:ANONYMOUS`).
    pub fn anonymous() -> Session {
        Session {
            principal: ANONYMOUS.to_string(),
        }
    }

    /// A connection whose client proved it is `principal` (`User:CN=alice,O=Odradek`
    /// for an mTLS client certificate).
    pub fn authenticated(principal: String) -> Session {
        assert!(
            principal.starts_with("User:"),
            "a principal has a type: {principal}"
        );
        Session { principal }
    }

    /// A connection authenticated as `user` (SASL): `User:<user>`.
    pub fn user(user: &str) -> Session {
        Session {
            principal: format!("User:{user}"),
        }
    }

    /// The principal, as ACLs name it (`User:alice`).
    pub fn principal(&self) -> &str {
        &self.principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_by_their_kafka_names_in_any_case() {
        for protocol in SecurityProtocol::ALL {
            assert_eq!(SecurityProtocol::parse(protocol.name()).unwrap(), protocol);
        }
        assert_eq!(
            SecurityProtocol::parse("sasl_ssl").unwrap(),
            SecurityProtocol::SaslSsl
        );
        assert!(SecurityProtocol::parse("TLS").is_err());
    }
}
