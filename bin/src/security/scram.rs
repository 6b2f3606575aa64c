//! The server side of one SCRAM exchange (RFC 5802 §5, RFC 7677), without channel
//! binding, as Kafka speaks it inside SaslAuthenticate:
//!
//! ```text
//! client-first  n,[a=authzid],n=user,r=cnonce            ─► look up the credential
//! server-first  r=cnonce+snonce,s=salt,i=iterations       ◄─
//! client-final  c=base64(gs2 header),r=cnonce+snonce,p=proof ─► check nonce, binding,
//! server-final  v=ServerSignature                         ◄─    proof against StoredKey
//! ```
//!
//! Pure: the server nonce and the credentials are handed in.

use odradek_replication::scram::{ScramCredential, ScramMechanism, same_bytes};

use super::base64;

/// Why an exchange failed. The client is told [`ScramError::client_message`] only, the
/// same for an unknown user and a wrong password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// A message did not follow RFC 5802's grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding was asked for, or an extension Kafka's delegation tokens use.
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// No credential for this user and mechanism.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The authorization id names another user.
    #[error("authorization id {authzid:?} is not the user {user:?}")]
    AuthzidMismatch {
        /// The user that logs in.
        user: String,
        /// The id it asked to act as.
        authzid: String,
    },
    /// The client-final nonce is not the one the server sent.
    #[error("client-final nonce differs from the server-first nonce")]
    NonceMismatch,
    /// The channel-binding attribute does not repeat the gs2 header.
    #[error("channel binding does not match the client-first gs2 header")]
    ChannelBindingMismatch,
    /// The proof does not match the stored key.
    #[error("wrong password for {0:?}")]
    BadProof(String),
}

impl ScramError {
    /// What the client reads in SaslAuthenticate's error message.
    pub fn client_message(&self) -> String {
        match self {
            ScramError::UnknownUser(_) | ScramError::BadProof(_) => {
                "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM".to_string()
            }
            other => format!("Authentication failed: {other}"),
        }
    }
}

/// An exchange after the server-first message: what client-final is checked against.
#[derive(Debug)]
pub struct ServerFirstSent {
    mechanism: ScramMechanism,
    user: String,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Answers client-first: `server_nonce` must be printable ASCII without commas.
pub fn client_first(
    mechanism: ScramMechanism,
    message: &[u8],
    server_nonce: &str,
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
) -> Result<(ServerFirstSent, Vec<u8>), ScramError> {
    let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (gs2_header, authzid, client_first_bare) = split_gs2_header(message)?;
    let mut attributes = client_first_bare.split(',');
    let user = attribute(attributes.next(), 'n')?;
    let user = decode_sasl_name(user)?;
    let client_nonce = attribute(attributes.next(), 'r')?;
    if client_nonce.is_empty() {
        return Err(ScramError::Malformed("empty client nonce"));
    }
    for extension in attributes {
        if extension.starts_with("tokenauth=") {
            return Err(ScramError::Unsupported("delegation tokens"));
        }
    }
    if let Some(authzid) = authzid
        && authzid != user
    {
        return Err(ScramError::AuthzidMismatch { user, authzid });
    }
    let credential = lookup(&user).ok_or_else(|| ScramError::UnknownUser(user.clone()))?;
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        base64::encode(&credential.salt),
        credential.iterations
    );
    let reply = server_first.clone().into_bytes();
    let sent = ServerFirstSent {
        mechanism,
        user,
        credential,
        gs2_header: gs2_header.to_string(),
        client_first_bare: client_first_bare.to_string(),
        server_first,
        nonce,
    };
    Ok((sent, reply))
}

impl ServerFirstSent {
    /// Checks client-final; on success the user and the server-final message.
    pub fn client_final(self, message: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut attributes = without_proof.split(',');
        let binding = attribute(attributes.next(), 'c')?;
        let nonce = attribute(attributes.next(), 'r')?;
        // RFC 5802 wants the server-first nonce itself. librdkafka sends its client
        // nonce once more in front of it, and Kafka accepts any nonce that ends with the
        // server-first nonce, so that is the rule here too: the server's fresh part must
        // be there, at the end.
        if !nonce.ends_with(&self.nonce) {
            return Err(ScramError::NonceMismatch);
        }
        if base64::decode(binding).as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::ChannelBindingMismatch);
        }
        let proof = base64::decode(proof).ok_or(ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let mechanism = self.mechanism;
        let credential = &self.credential;
        let client_signature = mechanism.hmac_of(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::BadProof(self.user));
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if !same_bytes(&mechanism.hash_of(&client_key), &credential.stored_key) {
            return Err(ScramError::BadProof(self.user));
        }
        let server_signature = mechanism.hmac_of(&credential.server_key, auth_message.as_bytes());
        let reply = format!("v={}", base64::encode(&server_signature)).into_bytes();
        Ok((self.user, reply))
    }
}

/// Splits `n,[a=authzid],rest` into the header (with its trailing comma), the authzid
/// and the client-first-bare message.
fn split_gs2_header(message: &str) -> Result<(&str, Option<String>, &str), ScramError> {
    let Some(rest) = message.strip_prefix("n,") else {
        return Err(if message.starts_with("y,") || message.starts_with("p=") {
            ScramError::Unsupported("channel binding")
        } else {
            ScramError::Malformed("gs2 header must start with n,")
        });
    };
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no gs2 header"))?;
    let authzid = match authzid {
        "" => None,
        given => Some(decode_sasl_name(attribute(Some(given), 'a')?)?),
    };
    let header_len = message.len() - bare.len();
    Ok((&message[..header_len], authzid, bare))
}

/// The value of attribute `name` (`name=value`).
fn attribute(field: Option<&str>, name: char) -> Result<&str, ScramError> {
    let field = field.ok_or(ScramError::Malformed("missing attribute"))?;
    let mut prefix = [0; 4];
    let prefix = name.encode_utf8(&mut prefix);
    field
        .strip_prefix(&*prefix)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or(ScramError::Malformed("unexpected attribute"))
}

/// RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign, any other `=` is wrong.
fn decode_sasl_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escaped = rest.get(at..at + 3);
        match escaped {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference: RFC 7677 §3, the SCRAM-SHA-256 example exchange.
    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn pencil() -> ScramCredential {
        let salt = base64::decode(SALT).unwrap();
        ScramCredential::from_password(ScramMechanism::Sha256, "pencil", &salt, 4096)
    }

    fn first(message: &str) -> Result<(ServerFirstSent, Vec<u8>), ScramError> {
        client_first(
            ScramMechanism::Sha256,
            message.as_bytes(),
            SERVER_NONCE,
            |user| (user == "user").then(pencil),
        )
    }

    #[test]
    fn rfc_7677_exchange() {
        let (sent, reply) = first(CLIENT_FIRST).unwrap();
        assert_eq!(String::from_utf8(reply).unwrap(), SERVER_FIRST);
        let (user, reply) = sent.client_final(CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(user, "user");
        assert_eq!(String::from_utf8(reply).unwrap(), SERVER_FINAL);
    }

    #[test]
    fn a_wrong_password_fails_the_proof() {
        let salt = base64::decode(SALT).unwrap();
        let other = ScramCredential::from_password(ScramMechanism::Sha256, "pen", &salt, 4096);
        let (sent, _) = client_first(
            ScramMechanism::Sha256,
            CLIENT_FIRST.as_bytes(),
            SERVER_NONCE,
            |_| Some(other),
        )
        .unwrap();
        assert_eq!(
            sent.client_final(CLIENT_FINAL.as_bytes()).unwrap_err(),
            ScramError::BadProof("user".to_string())
        );
    }

    #[test]
    fn a_changed_nonce_or_binding_is_refused() {
        let (sent, _) = first(CLIENT_FIRST).unwrap();
        let other_nonce = CLIENT_FINAL.replace("r=rOpr", "r=xOpr");
        assert_eq!(
            sent.client_final(other_nonce.as_bytes()).unwrap_err(),
            ScramError::NonceMismatch
        );
        let (sent, _) = first(CLIENT_FIRST).unwrap();
        let no_server_nonce = CLIENT_FINAL.replace("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "");
        assert_eq!(
            sent.client_final(no_server_nonce.as_bytes()).unwrap_err(),
            ScramError::NonceMismatch
        );
        let (sent, _) = first(CLIENT_FIRST).unwrap();
        let other_binding = CLIENT_FINAL.replace("c=biws", "c=eSws");
        assert_eq!(
            sent.client_final(other_binding.as_bytes()).unwrap_err(),
            ScramError::ChannelBindingMismatch
        );
    }

    #[test]
    fn bad_client_first_messages() {
        assert_eq!(
            first("n,,n=nobody,r=abc").unwrap_err(),
            ScramError::UnknownUser("nobody".to_string())
        );
        assert!(matches!(
            first("y,,n=user,r=abc").unwrap_err(),
            ScramError::Unsupported(_)
        ));
        assert!(matches!(
            first("n,,n=user,r=abc,tokenauth=true").unwrap_err(),
            ScramError::Unsupported(_)
        ));
        assert!(matches!(
            first("n,a=admin,n=user,r=abc").unwrap_err(),
            ScramError::AuthzidMismatch { .. }
        ));
        assert!(first("n,a=user,n=user,r=abc").is_ok());
        assert!(matches!(
            first("n,,n=us=er,r=abc").unwrap_err(),
            ScramError::Malformed(_)
        ));
        assert!(matches!(
            first("n,,r=abc").unwrap_err(),
            ScramError::Malformed(_)
        ));
    }

    #[test]
    fn sasl_names_unescape() {
        assert_eq!(decode_sasl_name("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(decode_sasl_name("a=").is_err());
        assert!(decode_sasl_name("").is_err());
    }
}
