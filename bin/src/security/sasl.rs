//! SASL on a `SASL_PLAINTEXT` listener (KIP-43, KIP-152, KIP-368): which mechanisms
//! are enabled, who the PLAIN users are, and one connection's authentication.
//!
//! ```text
//! connect ─► ApiVersions* ─► SaslHandshake(mechanism) ─► SaslAuthenticate(token)+ ─► authenticated
//!                 any other request before that: the connection closes
//! authenticated ─► (session_lifetime_ms later) SaslHandshake + SaslAuthenticate again,
//!                  same user; a request after the session expired closes the connection
//! ```
//!
//! SaslHandshake v0, where the tokens follow as bare size-prefixed frames, is not
//! served: every client tested here (librdkafka, the Java client, kafka-python 3,
//! aiokafka) sends v1 and SaslAuthenticate when the broker offers them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_replication::scram::{ScramCredential, ScramMechanism, same_bytes};
use tokio::sync::watch;

use super::base64;
use super::scram::{self, ServerFirstSent};

/// Kafka's `UNSUPPORTED_SASL_MECHANISM`.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's `ILLEGAL_SASL_STATE`.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// Kafka's `SASL_AUTHENTICATION_FAILED`.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// How long a connection may take from its first byte to a finished authentication.
/// A client that never finishes is closed then, so it holds a connection slot no
/// longer than this.
pub const AUTHENTICATION_TIME_MAX: Duration = Duration::from_secs(10);

/// Random bytes in a SCRAM server nonce (base64-encoded on the wire).
const SERVER_NONCE_BYTES: usize = 24;

/// A SASL mechanism this broker can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mechanism {
    /// RFC 4616: user and password in clear, checked against the JAAS `user_NAME` list.
    Plain,
    /// RFC 5802/7677 against the credentials in the metadata log.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(scram) => scram.name(),
        }
    }

    /// Parses a mechanism name as `sasl.enabled.mechanisms` lists it.
    pub fn parse(name: &str) -> anyhow::Result<Mechanism> {
        if name == "PLAIN" {
            return Ok(Mechanism::Plain);
        }
        if let Some(scram) = ScramMechanism::from_name(name) {
            return Ok(Mechanism::Scram(scram));
        }
        match name {
            "GSSAPI" | "OAUTHBEARER" => {
                bail!(
                    "SASL mechanism {name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 are)"
                )
            }
            _ => bail!("unknown SASL mechanism {name:?}"),
        }
    }
}

/// The broker's SASL settings for its client listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms` (or its `listener.name.` form).
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users: the `user_NAME="password"` entries of PlainLoginModule's JAAS
    /// configuration.
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms`: 0 means sessions never expire.
    pub reauth_ms: i64,
}

impl Default for SaslConfig {
    /// Kafka's default mechanism is GSSAPI, which is not served; SCRAM needs no broker
    /// configuration and never sends a password, so it is the default here.
    fn default() -> SaslConfig {
        SaslConfig {
            mechanisms: vec![
                Mechanism::Scram(ScramMechanism::Sha256),
                Mechanism::Scram(ScramMechanism::Sha512),
            ],
            plain_users: BTreeMap::new(),
            reauth_ms: 0,
        }
    }
}

/// Parses `sasl.enabled.mechanisms`: a comma-separated list.
pub fn parse_mechanisms(key: &str, value: &str) -> anyhow::Result<Vec<Mechanism>> {
    let mut mechanisms = Vec::new();
    for name in value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let mechanism =
            Mechanism::parse(name).map_err(|error| anyhow::anyhow!("{key}: {error}"))?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        bail!("{key}: no mechanism given");
    }
    Ok(mechanisms)
}

/// The `user_NAME="password"` entries of a JAAS configuration for Kafka's
/// PlainLoginModule (`... PlainLoginModule required username=".." user_alice="..";`).
/// A configuration for another login module has no PLAIN users.
pub fn parse_jaas_plain_users(key: &str, value: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut words = value.trim().trim_end_matches(';').trim_end();
    let mut module = "";
    for _ in 0..2 {
        let (word, rest) = words.split_once(char::is_whitespace).unwrap_or((words, ""));
        if module.is_empty() {
            module = word;
        }
        words = rest.trim_start();
    }
    let mut users = BTreeMap::new();
    if !module.ends_with("PlainLoginModule") {
        return Ok(users);
    }
    while !words.is_empty() {
        let Some((name, rest)) = words.split_once('=') else {
            bail!("{key}: expected name=\"value\" at {words:?}");
        };
        let (value, rest) = jaas_value(key, rest.trim_start())?;
        if let Some(user) = name.trim().strip_prefix("user_") {
            users.insert(user.to_string(), value);
        }
        words = rest.trim_start();
    }
    Ok(users)
}

/// One JAAS option value, quoted (with `\` escapes) or bare, and what follows it.
fn jaas_value<'a>(key: &str, text: &'a str) -> anyhow::Result<(String, &'a str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        return Ok((text[..end].to_string(), &text[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &quoted[at + 1..])),
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            other => value.push(other),
        }
    }
    bail!("{key}: unterminated quoted value")
}

/// The SCRAM credentials of every user, as the node last published them.
pub type ScramCredentials = BTreeMap<(String, ScramMechanism), ScramCredential>;

/// What every connection of a SASL listener shares: the settings, the latest SCRAM
/// credentials and the random source for server nonces.
#[derive(Clone)]
pub struct SaslServer {
    config: Arc<SaslConfig>,
    scram: watch::Receiver<Arc<ScramCredentials>>,
    random: Arc<ring::rand::SystemRandom>,
}

impl SaslServer {
    /// Serves `config`'s mechanisms with the credentials `scram` publishes.
    pub fn new(config: SaslConfig, scram: watch::Receiver<Arc<ScramCredentials>>) -> SaslServer {
        SaslServer {
            config: Arc::new(config),
            scram,
            random: Arc::new(ring::rand::SystemRandom::new()),
        }
    }

    fn mechanism_names(&self) -> Vec<StrBytes> {
        self.config
            .mechanisms
            .iter()
            .map(|mechanism| StrBytes::from_static_str(mechanism.name()))
            .collect()
    }

    fn server_nonce(&self) -> String {
        let mut bytes = [0; SERVER_NONCE_BYTES];
        ring::rand::SecureRandom::fill(&*self.random, &mut bytes)
            .expect("the OS random source works");
        base64::encode(&bytes)
    }

    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let credentials = Arc::clone(&self.scram.borrow());
        credentials.get(&(user.to_string(), mechanism)).cloned()
    }
}

/// Where one connection's authentication stands.
#[derive(Debug)]
enum Step {
    /// Waiting for SaslHandshake.
    Start,
    /// The mechanism is chosen; waiting for its first token.
    Chosen(Mechanism),
    /// SCRAM's server-first message is sent; waiting for client-final.
    ScramFinal(Box<ServerFirstSent>),
}

/// What the connection does after a SASL answer.
#[derive(Debug)]
pub enum Next<T> {
    /// Send the answer and go on.
    Continue(T),
    /// Send the answer, then close: the reason is logged.
    Close(T, String),
}

/// Where a connection's authentication stands for a request other than SASL's own.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// Authenticated and within the session lifetime.
    Open,
    /// Not authenticated yet.
    NotAuthenticated,
    /// The session lifetime ended without re-authentication.
    Expired,
}

/// A failed step: the reason to log, and what the client is told if not
/// `Authentication failed: <reason>`.
type Failure = (String, Option<String>);

/// A step that went through: the user once the exchange ends, and the token to send.
type StepDone = (Option<String>, Vec<u8>);

/// One connection's SASL authentication (and re-authentication).
pub struct Authenticator {
    server: SaslServer,
    step: Step,
    user: Option<String>,
    expires_at: Option<Instant>,
}

impl Authenticator {
    /// A connection that has authenticated no one yet.
    pub fn new(server: SaslServer) -> Authenticator {
        Authenticator {
            server,
            step: Step::Start,
            user: None,
            expires_at: None,
        }
    }

    /// The authenticated user, once there is one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether no exchange is under way (none started, or the last one ended).
    pub fn exchange_finished(&self) -> bool {
        matches!(self.step, Step::Start)
    }

    /// Whether a non-SASL request may be served at `now`.
    pub fn gate(&self, now: Instant) -> Gate {
        match (&self.user, self.expires_at) {
            (None, _) => Gate::NotAuthenticated,
            (Some(_), Some(expires_at)) if now >= expires_at => Gate::Expired,
            (Some(_), _) => Gate::Open,
        }
    }

    /// Answers SaslHandshake; an unknown or disabled mechanism closes the connection
    /// after the answer, as Kafka does.
    pub fn handshake(&mut self, request: &SaslHandshakeRequest) -> Next<SaslHandshakeResponse> {
        let response =
            SaslHandshakeResponse::default().with_mechanisms(self.server.mechanism_names());
        if !matches!(self.step, Step::Start) {
            let reason = "SaslHandshake in the middle of an authentication".to_string();
            return Next::Close(response.with_error_code(ILLEGAL_SASL_STATE), reason);
        }
        let name = request.mechanism.as_str();
        let enabled = self
            .server
            .config
            .mechanisms
            .iter()
            .copied()
            .find(|mechanism| mechanism.name() == name);
        match enabled {
            Some(mechanism) => {
                self.step = Step::Chosen(mechanism);
                Next::Continue(response)
            }
            None => Next::Close(
                response.with_error_code(UNSUPPORTED_SASL_MECHANISM),
                format!("SASL mechanism {name:?} is not enabled"),
            ),
        }
    }

    /// Answers SaslAuthenticate; a failure closes the connection after the answer.
    pub fn authenticate(
        &mut self,
        request: &SaslAuthenticateRequest,
        now: Instant,
    ) -> Next<SaslAuthenticateResponse> {
        let token = &request.auth_bytes[..];
        let outcome = match std::mem::replace(&mut self.step, Step::Start) {
            Step::Start => Err(("SaslAuthenticate before SaslHandshake".to_string(), None)),
            Step::Chosen(Mechanism::Plain) => {
                self.plain(token).map(|user| (Some(user), Vec::new()))
            }
            Step::Chosen(Mechanism::Scram(mechanism)) => self.scram_first(mechanism, token),
            Step::ScramFinal(sent) => sent
                .client_final(token)
                .map(|(user, reply)| (Some(user), reply))
                .map_err(|error| (error.to_string(), Some(error.client_message()))),
        };
        match outcome {
            Ok((None, reply)) => {
                Next::Continue(SaslAuthenticateResponse::default().with_auth_bytes(reply.into()))
            }
            Ok((Some(user), reply)) => self.finish(user, reply, now),
            Err((reason, message)) => {
                let message = message.unwrap_or_else(|| format!("Authentication failed: {reason}"));
                Next::Close(failed(message), reason)
            }
        }
    }

    /// RFC 4616: `[authzid] NUL user NUL password`.
    fn plain(&self, token: &[u8]) -> Result<String, Failure> {
        let malformed = || ("malformed PLAIN token".to_string(), None);
        let text = std::str::from_utf8(token).map_err(|_| malformed())?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if user.is_empty() || password.is_empty() {
            return Err(malformed());
        }
        if !authzid.is_empty() && authzid != user {
            let reason = format!("authorization id {authzid:?} is not the user {user:?}");
            return Err((reason, None));
        }
        let known = self.server.config.plain_users.get(user);
        let matches =
            known.is_some_and(|expected| same_bytes(expected.as_bytes(), password.as_bytes()));
        if !matches {
            let reason = format!("invalid credentials for {user:?} with PLAIN");
            let message = "Authentication failed: Invalid username or password".to_string();
            return Err((reason, Some(message)));
        }
        Ok(user.to_string())
    }

    fn scram_first(
        &mut self,
        mechanism: ScramMechanism,
        token: &[u8],
    ) -> Result<StepDone, Failure> {
        let nonce = self.server.server_nonce();
        let lookup = |user: &str| self.server.scram_credential(user, mechanism);
        match scram::client_first(mechanism, token, &nonce, lookup) {
            Ok((sent, reply)) => {
                self.step = Step::ScramFinal(Box::new(sent));
                Ok((None, reply))
            }
            Err(error) => Err((error.to_string(), Some(error.client_message()))),
        }
    }

    /// A login succeeded: the first one sets the user, a re-authentication must keep it.
    fn finish(
        &mut self,
        user: String,
        reply: Vec<u8>,
        now: Instant,
    ) -> Next<SaslAuthenticateResponse> {
        if let Some(current) = &self.user
            && *current != user
        {
            let reason = format!("re-authentication as {user:?} on a connection of {current:?}");
            return Next::Close(
                failed(
                    "Authentication failed: re-authentication must keep the principal".to_string(),
                ),
                reason,
            );
        }
        self.user = Some(user);
        let reauth_ms = self.server.config.reauth_ms;
        self.expires_at = (reauth_ms > 0).then(|| now + Duration::from_millis(reauth_ms as u64));
        Next::Continue(
            SaslAuthenticateResponse::default()
                .with_auth_bytes(reply.into())
                .with_session_lifetime_ms(reauth_ms),
        )
    }
}

fn failed(message: String) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(SASL_AUTHENTICATION_FAILED)
        .with_error_message(Some(StrBytes::from_string(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_plain_users() {
        let value = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="al\"ice";"#;
        let users = parse_jaas_plain_users("k", value).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["admin"], "admin-secret");
        assert_eq!(users["alice"], "al\"ice");
        let scram = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="a" password="b";"#;
        assert!(parse_jaas_plain_users("k", scram).unwrap().is_empty());
        assert!(parse_jaas_plain_users("k", r#"x.PlainLoginModule required user_a="b"#).is_err());
    }

    #[test]
    fn mechanisms_parse() {
        assert_eq!(
            parse_mechanisms("k", "PLAIN, SCRAM-SHA-512").unwrap(),
            [Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha512)]
        );
        assert!(parse_mechanisms("k", "GSSAPI").is_err());
        assert!(parse_mechanisms("k", "").is_err());
    }

    fn plain_authenticator(reauth_ms: i64) -> Authenticator {
        let config = SaslConfig {
            mechanisms: vec![Mechanism::Plain],
            plain_users: [
                ("alice".to_string(), "secret".to_string()),
                ("bob".to_string(), "pw".to_string()),
            ]
            .into(),
            reauth_ms,
        };
        let (_, scram) = watch::channel(Arc::new(ScramCredentials::new()));
        Authenticator::new(SaslServer::new(config, scram))
    }

    fn login(
        auth: &mut Authenticator,
        token: &[u8],
        now: Instant,
    ) -> Next<SaslAuthenticateResponse> {
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        assert!(matches!(auth.handshake(&handshake), Next::Continue(_)));
        auth.authenticate(
            &SaslAuthenticateRequest::default().with_auth_bytes(token.to_vec().into()),
            now,
        )
    }

    #[test]
    fn plain_logins_and_kip_368_reauthentication() {
        let now = Instant::now();
        let mut auth = plain_authenticator(1000);
        assert_eq!(auth.gate(now), Gate::NotAuthenticated);
        let Next::Continue(response) = login(&mut auth, b"\0alice\0secret", now) else {
            panic!()
        };
        assert_eq!(response.session_lifetime_ms, 1000);
        assert_eq!(auth.gate(now), Gate::Open);
        assert_eq!(auth.gate(now + Duration::from_millis(1000)), Gate::Expired);
        let later = now + Duration::from_millis(900);
        assert!(matches!(
            login(&mut auth, b"alice\0alice\0secret", later),
            Next::Continue(_)
        ));
        assert_eq!(auth.gate(now + Duration::from_millis(1500)), Gate::Open);
        assert!(
            matches!(login(&mut auth, b"\0bob\0pw", later), Next::Close(..)),
            "another user"
        );
    }

    #[test]
    fn plain_failures_close() {
        for token in [
            &b"\0alice\0wrong"[..],
            b"\0nobody\0secret",
            b"bob\0alice\0secret",
            b"alice",
        ] {
            let mut auth = plain_authenticator(0);
            let Next::Close(response, _) = login(&mut auth, token, Instant::now()) else {
                panic!()
            };
            assert_eq!(response.error_code, SASL_AUTHENTICATION_FAILED);
            assert_eq!(auth.gate(Instant::now()), Gate::NotAuthenticated);
        }
        let mut auth = plain_authenticator(0);
        let scram = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256"));
        let Next::Close(response, _) = auth.handshake(&scram) else {
            panic!()
        };
        assert_eq!(response.error_code, UNSUPPORTED_SASL_MECHANISM);
        assert_eq!(response.mechanisms, [StrBytes::from_static_str("PLAIN")]);
    }
}
