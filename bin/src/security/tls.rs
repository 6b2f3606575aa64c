//! TLS with rustls (ring): the broker's side of an `SSL` (or `SASL_SSL`) listener, and
//! the client side odradek's own tools use, both configured with Kafka's PEM settings.
//!
//! ```text
//!  TCP accept ─► ServerTls::accept (handshake, bounded by ssl.handshake.timeout.ms)
//!                 ├─ ok: Session (User:<subject DN> with a client certificate,
//!                 │      else User:ANONYMOUS) and the TLS stream ─► server::connection
//!                 └─ failed or too slow: logged once with the client address, closed
//! ```
//!
//! Keys read (each may also be given as `listener.name.<listener>.<key>`, which wins):
//! `ssl.keystore.type` (PEM), `ssl.keystore.location` (a PEM file with the private key
//! and the certificate chain) or `ssl.keystore.certificate.chain` + `ssl.keystore.key`
//! (PEM text in the property), `ssl.key.password` (encrypted keys are refused),
//! `ssl.truststore.type` (PEM), `ssl.truststore.location` or
//! `ssl.truststore.certificates`, `ssl.client.auth` (`required`, `requested`, `none`),
//! `ssl.enabled.protocols` (`TLSv1.2`, `TLSv1.3`) and Odradek's own
//! `ssl.handshake.timeout.ms`. Every problem is a configuration error naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream as ClientTlsStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info};

use super::Session;
use super::distinguished_name::subject_of_certificate;

/// How long a client may take to finish its TLS handshake unless
/// `ssl.handshake.timeout.ms` says otherwise: a client that connects and never
/// finishes holds a connection slot no longer than this.
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// Bytes read from a keystore or truststore file at most: PEM files are small.
const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The `ssl.*` keys a listener's TLS reads.
pub const TLS_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.handshake.timeout.ms",
];

/// Whether `key` is one of [`TLS_KEYS`], plain or as `listener.name.<name>.<key>`.
pub fn is_tls_key(key: &str) -> bool {
    if TLS_KEYS.contains(&key) {
        return true;
    }
    key.strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(name, key)| !name.is_empty() && TLS_KEYS.contains(&key))
}

/// The TLS settings of one listener, as configured: for each key, the key as written
/// (the listener-prefixed one if set) and its value. Values are never printed: a
/// private key may be among them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    values: BTreeMap<&'static str, (String, String)>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&String> = self.values.values().map(|(key, _)| key).collect();
        f.debug_struct("TlsSettings").field("keys", &keys).finish()
    }
}

impl TlsSettings {
    /// The settings of listener `listener_name` from `lookup` (key → value):
    /// `listener.name.<lower-case name>.<key>` wins over `<key>`, as in Kafka.
    pub fn collect<'a>(listener_name: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        let prefix = format!("listener.name.{}.", listener_name.to_ascii_lowercase());
        let mut values = BTreeMap::new();
        for key in TLS_KEYS {
            let prefixed = format!("{prefix}{key}");
            if let Some(value) = lookup(&prefixed) {
                values.insert(*key, (prefixed, value.to_string()));
            } else if let Some(value) = lookup(key) {
                values.insert(*key, (key.to_string(), value.to_string()));
            }
        }
        TlsSettings { values }
    }

    /// Settings given directly (a client's `--command-config`), keys unprefixed.
    pub fn from_pairs(pairs: &BTreeMap<String, String>) -> Self {
        Self::collect("", |key| pairs.get(key).map(String::as_str))
    }

    /// `(key as written, value)` of `key`, if set.
    fn get(&self, key: &'static str) -> Option<(&str, &str)> {
        self.values
            .get(key)
            .map(|(written, value)| (written.as_str(), value.as_str()))
    }

    /// The key as written for `key` (the plain key if it is not set).
    fn written(&self, key: &'static str) -> String {
        self.get(key)
            .map_or_else(|| key.to_string(), |(written, _)| written.to_string())
    }
}

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A client certificate is asked for; one that is sent must be valid.
    Requested,
    /// A valid client certificate is needed.
    Required,
}

/// The broker's TLS for one listener.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    client_auth: ClientAuth,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl ServerTls {
    /// Reads the keystore, truststore and options of `settings`; any problem is an
    /// error naming its key.
    pub fn from_settings(settings: &TlsSettings) -> anyhow::Result<ServerTls> {
        ServerTls::with_client_auth(settings, client_auth(settings)?)
    }

    /// [`ServerTls::from_settings`] with `client_auth` whatever `ssl.client.auth` says.
    fn with_client_auth(
        settings: &TlsSettings,
        client_auth: ClientAuth,
    ) -> anyhow::Result<ServerTls> {
        let (chain, key) = keystore(settings)?.ok_or_else(|| {
            anyhow!(
                "an SSL listener needs a keystore: set ssl.keystore.location (a PEM file \
                 with the key and certificate chain) or ssl.keystore.certificate.chain and \
                 ssl.keystore.key"
            )
        })?;
        let roots = truststore(settings)?;
        let provider = ring_provider();
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&enabled_protocols(settings)?)
            .context("ssl.enabled.protocols")?;
        let builder = match (client_auth, roots) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => bail!(
                "{}={}: a truststore is needed to check client certificates: set \
                 ssl.truststore.location or ssl.truststore.certificates",
                settings.written("ssl.client.auth"),
                client_auth_name(client_auth)
            ),
            (auth, Some(roots)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match auth {
                    ClientAuth::Requested => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().with_context(|| {
                    format!(
                        "{}: cannot check client certificates",
                        settings.written("ssl.truststore.location")
                    )
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).with_context(|| {
            format!(
                "{}: the key and certificate chain do not make a usable keystore",
                keystore_key_name(settings)
            )
        })?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: handshake_timeout(settings)?,
            client_auth,
        })
    }

    /// Runs the handshake with the client at `peer`, bounded by the handshake timeout.
    /// `None` (logged once with the address) when it fails or takes too long.
    pub async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(TlsStream<TcpStream>, Session)> {
        let handshake = self.acceptor.accept(stream);
        let stream = match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                info!(%peer, "TLS handshake failed, closing: {error}");
                return None;
            }
            Err(_) => {
                info!(%peer, timeout = ?self.handshake_timeout, "TLS handshake not finished in time, closing");
                return None;
            }
        };
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first());
        match certificate.map(|certificate| session_of_certificate(certificate)) {
            None => Some((stream, Session::anonymous())),
            Some(Ok(session)) => {
                debug!(%peer, principal = session.principal(), "TLS client certificate verified");
                Some((stream, session))
            }
            Some(Err(error)) => {
                info!(%peer, "client certificate subject unreadable, closing: {error:#}");
                None
            }
        }
    }
}

/// TLS on the links between brokers: each broker presents its keystore's certificate
/// and checks the other's against its truststore, whichever side dialled.
pub struct PeerTls {
    server: ServerTls,
    client: ClientTls,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    /// Reads the peer listener's keystore and truststore (both needed).
    pub fn from_settings(settings: &TlsSettings) -> anyhow::Result<PeerTls> {
        Ok(PeerTls {
            server: ServerTls::with_client_auth(settings, ClientAuth::Required)?,
            client: ClientTls::from_settings(settings)?,
        })
    }

    /// The listener's side: a handshake that needs a trusted broker certificate.
    /// `None` (logged once) when it fails or takes too long.
    pub async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        self.server
            .accept(stream, peer)
            .await
            .map(|(stream, _)| stream)
    }

    /// The dialler's side: checks that the broker's certificate names `host`.
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<ClientTlsStream<TcpStream>> {
        self.client.connect(host, stream).await
    }
}

/// The session of a client that presented `certificate` (verified): `User:` and its
/// subject in RFC 2253 form, as Kafka's default principal builder names it.
pub fn session_of_certificate(certificate: &[u8]) -> anyhow::Result<Session> {
    let subject = subject_of_certificate(certificate)?;
    Ok(Session::authenticated(format!("User:{subject}")))
}

/// The client side of TLS for odradek's own tools.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// A client that trusts the truststore of `settings` (required) and presents its
    /// keystore (if any) for mTLS.
    pub fn from_settings(settings: &TlsSettings) -> anyhow::Result<ClientTls> {
        let roots = truststore(settings)?.ok_or_else(|| {
            anyhow!(
                "SSL needs a truststore to check the broker: set ssl.truststore.location or \
                 ssl.truststore.certificates (PEM)"
            )
        })?;
        let provider = ring_provider();
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&enabled_protocols(settings)?)
            .context("ssl.enabled.protocols")?
            .with_root_certificates(roots);
        let config = match keystore(settings)? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .with_context(|| keystore_key_name(settings))?,
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the handshake with the broker at `host`, checking its certificate names it.
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<ClientTlsStream<TcpStream>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {error}"))
        })?;
        self.connector.connect(name, stream).await
    }
}

/// The key `ssl.keystore.key` or `ssl.keystore.location`, whichever was given, as
/// written.
fn keystore_key_name(settings: &TlsSettings) -> String {
    match settings.get("ssl.keystore.key") {
        Some((key, _)) => key.to_string(),
        None => settings.written("ssl.keystore.location"),
    }
}

/// The certificate chain and private key of the keystore, if one is configured.
fn keystore(
    settings: &TlsSettings,
) -> anyhow::Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    check_pem_type(settings, "ssl.keystore.type")?;
    let location = settings.get("ssl.keystore.location");
    let chain = settings.get("ssl.keystore.certificate.chain");
    let key = settings.get("ssl.keystore.key");
    let (chain_source, chain_text, key_source, key_text) = match (location, chain, key) {
        (None, None, None) => return Ok(None),
        (Some((name, path)), None, None) => {
            let text = read_pem_file(name, path)?;
            let source = format!("{name}={path}");
            (source.clone(), text.clone(), source, text)
        }
        (None, Some((chain_name, chain)), Some((key_name, key))) => (
            chain_name.to_string(),
            chain.to_string(),
            key_name.to_string(),
            key.to_string(),
        ),
        (Some((name, _)), _, _) => bail!(
            "{name}: give either a keystore file or ssl.keystore.certificate.chain and \
             ssl.keystore.key, not both"
        ),
        (None, Some((name, _)), None) | (None, None, Some((name, _))) => {
            bail!("{name}: ssl.keystore.certificate.chain and ssl.keystore.key go together")
        }
    };
    let chain = certificates(&chain_source, &chain_text)?;
    let key = private_key(settings, &key_source, &key_text)?;
    Ok(Some((chain, key)))
}

/// The trusted certificates of the truststore, if one is configured.
fn truststore(settings: &TlsSettings) -> anyhow::Result<Option<RootCertStore>> {
    check_pem_type(settings, "ssl.truststore.type")?;
    let (source, text) = match (
        settings.get("ssl.truststore.location"),
        settings.get("ssl.truststore.certificates"),
    ) {
        (None, None) => return Ok(None),
        (Some((name, path)), None) => (format!("{name}={path}"), read_pem_file(name, path)?),
        (None, Some((name, text))) => (name.to_string(), text.to_string()),
        (Some((name, _)), Some(_)) => {
            bail!("{name}: give either a truststore file or ssl.truststore.certificates, not both")
        }
    };
    let mut roots = RootCertStore::empty();
    for certificate in certificates(&source, &text)? {
        roots
            .add(certificate)
            .with_context(|| format!("{source}: a certificate cannot be trusted"))?;
    }
    Ok(Some(roots))
}

/// Refuses keystore and truststore types other than PEM.
fn check_pem_type(settings: &TlsSettings, key: &'static str) -> anyhow::Result<()> {
    match settings.get(key) {
        Some((_, value)) if value.trim().eq_ignore_ascii_case("PEM") => Ok(()),
        Some((name, value)) => bail!(
            "{name}={value}: odradek reads PEM keystores and truststores only (set {key}=PEM; \
             convert a JKS or PKCS12 store to PEM, e.g. with keytool and openssl)"
        ),
        None => Ok(()),
    }
}

/// Reads a PEM file named by `key`.
fn read_pem_file(key: &str, path: &str) -> anyhow::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("{key}: cannot open {path}"))?;
    let mut bytes = Vec::new();
    file.take(PEM_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{key}: cannot read {path}"))?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        bail!("{key}: {path} is over {PEM_FILE_BYTES_MAX} bytes: not a PEM keystore");
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow!(
            "{key}: {path} is not PEM text (odradek reads PEM; JKS and PKCS12 files are not read)"
        )
    })?;
    if !text.contains("-----BEGIN ") {
        bail!(
            "{key}: {path} holds no PEM section (odradek reads PEM; JKS and PKCS12 files are not read)"
        );
    }
    Ok(text)
}

/// Rewrites PEM sections in the shape the parser reads: markers on their own lines and
/// base64 without spaces, so PEM given in one property line (its line breaks lost to a
/// `\` continuation or written as `\n`) reads as well as a file.
fn normalized_pem(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after_begin = &rest[begin + "-----BEGIN ".len()..];
        let Some(label_end) = after_begin.find("-----") else {
            break;
        };
        let label = &after_begin[..label_end];
        let body_and_rest = &after_begin[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_and_rest.find(&end_marker) else {
            break;
        };
        let body: String = body_and_rest[..end]
            .replace("\\n", "")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(&end_marker);
        out.push('\n');
        rest = &body_and_rest[end + end_marker.len()..];
    }
    out
}

/// Every certificate in PEM `text`; at least one.
fn certificates(source: &str, text: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(normalized_pem(text).as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow!("{source}: bad PEM: {error}"))?;
    if certificates.is_empty() {
        bail!("{source}: no PEM certificate (-----BEGIN CERTIFICATE-----) found");
    }
    Ok(certificates)
}

/// The one private key in PEM `text` (PKCS#8, PKCS#1 or SEC1), unencrypted.
fn private_key(
    settings: &TlsSettings,
    source: &str,
    text: &str,
) -> anyhow::Result<PrivateKeyDer<'static>> {
    let normalized = normalized_pem(text);
    if normalized.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        let password = match settings.get("ssl.key.password") {
            Some((name, _)) => format!(" ({name} is not used)"),
            None => String::new(),
        };
        bail!(
            "{source}: the private key is encrypted; odradek cannot decrypt keys{password}: \
             give an unencrypted PKCS#8 key (e.g. openssl pkcs8 -topk8 -nocrypt) and keep \
             the file readable by the broker only"
        );
    }
    let mut keys = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(normalized.as_bytes()) {
        let (kind, der) = section.map_err(|error| anyhow!("{source}: bad PEM: {error}"))?;
        if let Some(key) = PrivateKeyDer::from_pem(kind, der) {
            keys.push(key);
        }
    }
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => bail!("{source}: no PEM private key (-----BEGIN PRIVATE KEY-----) found"),
        count => bail!("{source}: {count} private keys found, expected one"),
    }
}

/// rustls on ring, the workspace's choice (no C toolchain beyond ring's, no OpenSSL).
/// rustls 0.23.48 deprecates ring's provider because it offers no post-quantum key
/// exchange; X25519 and the NIST curves are what Kafka's clients offer today.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `ssl.client.auth`; `none` unless set.
fn client_auth(settings: &TlsSettings) -> anyhow::Result<ClientAuth> {
    let Some((name, value)) = settings.get("ssl.client.auth") else {
        return Ok(ClientAuth::None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(ClientAuth::None),
        "requested" => Ok(ClientAuth::Requested),
        "required" => Ok(ClientAuth::Required),
        _ => bail!("{name}={value}: expected required, requested or none"),
    }
}

fn client_auth_name(auth: ClientAuth) -> &'static str {
    match auth {
        ClientAuth::None => "none",
        ClientAuth::Requested => "requested",
        ClientAuth::Required => "required",
    }
}

/// `ssl.enabled.protocols`: TLSv1.2 and TLSv1.3 unless set. Older versions in the
/// list are left out (rustls does not speak them); a list of only those is an error.
fn enabled_protocols(
    settings: &TlsSettings,
) -> anyhow::Result<Vec<&'static SupportedProtocolVersion>> {
    let Some((name, value)) = settings.get("ssl.enabled.protocols") else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut versions = Vec::new();
    for protocol in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match protocol {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            "TLSv1" | "TLSv1.1" | "SSLv3" => {}
            other => bail!("{name}: unknown protocol {other:?} (expected TLSv1.2, TLSv1.3)"),
        }
    }
    if versions.is_empty() {
        bail!("{name}={value}: none of TLSv1.2 and TLSv1.3 enabled (rustls speaks no older TLS)");
    }
    Ok(versions)
}

/// `ssl.handshake.timeout.ms` (Odradek's own key).
fn handshake_timeout(settings: &TlsSettings) -> anyhow::Result<Duration> {
    let Some((name, value)) = settings.get("ssl.handshake.timeout.ms") else {
        return Ok(HANDSHAKE_TIMEOUT_DEFAULT);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => bail!("{name}={value}: expected a positive number of milliseconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> TlsSettings {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        TlsSettings::collect("EXTERNAL", |key| map.get(key).map(String::as_str))
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        format!(
            "{:#}",
            ServerTls::from_settings(&settings(pairs)).unwrap_err()
        )
    }

    struct Pki {
        ca_pem: String,
        chain_pem: String,
        key_pem: String,
        client_der: Vec<u8>,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::OrganizationName, "Odradek");
        name.push(rcgen::DnType::OrganizationalUnitName, "eng");
        name.push(rcgen::DnType::CommonName, "alice");
        client_params.distinguished_name = name;
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        Pki {
            ca_pem: ca.pem(),
            chain_pem: server.pem(),
            key_pem: server_key.serialize_pem(),
            client_der: client.der().to_vec(),
        }
    }

    #[test]
    fn tls_keys_are_known_plain_and_listener_prefixed() {
        assert!(is_tls_key("ssl.keystore.location"));
        assert!(is_tls_key("listener.name.external.ssl.client.auth"));
        assert!(!is_tls_key(
            "listener.name.external.sasl.enabled.mechanisms"
        ));
        assert!(!is_tls_key("listener.name..ssl.client.auth"));
        assert!(!is_tls_key("ssl.nonsense"));
    }

    #[test]
    fn the_listener_prefixed_key_wins() {
        let settings = settings(&[
            ("ssl.client.auth", "none"),
            ("listener.name.external.ssl.client.auth", "required"),
        ]);
        assert_eq!(
            settings.get("ssl.client.auth"),
            Some(("listener.name.external.ssl.client.auth", "required"))
        );
        assert!(!format!("{settings:?}").contains("required"));
    }

    #[test]
    fn inline_pem_on_one_line_makes_a_server() {
        let pki = pki();
        let one_line = |pem: &str| pem.replace('\n', " ");
        let tls = ServerTls::from_settings(&settings(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", &one_line(&pki.chain_pem)),
            ("ssl.keystore.key", &one_line(&pki.key_pem)),
            ("ssl.truststore.certificates", &pki.ca_pem),
            ("ssl.client.auth", "required"),
        ]))
        .unwrap();
        assert!(format!("{tls:?}").contains("Required"), "{tls:?}");
    }

    #[test]
    fn a_client_certificate_names_its_principal_in_rfc_2253_order() {
        let session = session_of_certificate(&pki().client_der).unwrap();
        assert_eq!(session.principal(), "User:CN=alice,OU=eng,O=Odradek");
    }

    #[test]
    fn bad_keystores_are_errors_naming_the_key() {
        let pki = pki();
        let error = error_of(&[]);
        assert!(error.contains("needs a keystore"), "{error}");
        let error = error_of(&[("listener.name.external.ssl.keystore.type", "JKS")]);
        assert!(
            error.contains("listener.name.external.ssl.keystore.type=JKS"),
            "{error}"
        );
        assert!(error.contains("PEM"), "{error}");
        let error = error_of(&[("ssl.keystore.location", "/nonexistent/key.pem")]);
        assert!(
            error.contains("ssl.keystore.location: cannot open /nonexistent/key.pem"),
            "{error}"
        );
        let error = error_of(&[
            (
                "ssl.keystore.certificate.chain",
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
            ),
            ("ssl.keystore.key", &pki.key_pem),
        ]);
        assert!(
            error.contains("ssl.keystore.certificate.chain: bad PEM"),
            "{error}"
        );
        let error = error_of(&[
            ("ssl.keystore.certificate.chain", &pki.chain_pem),
            (
                "ssl.keystore.key",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            ),
            ("ssl.key.password", "secret"),
        ]);
        assert!(
            error.contains("ssl.keystore.key: the private key is encrypted"),
            "{error}"
        );
        assert!(error.contains("unencrypted PKCS#8"), "{error}");
        let error = error_of(&[("ssl.keystore.certificate.chain", &pki.chain_pem)]);
        assert!(error.contains("go together"), "{error}");
    }

    #[test]
    fn bad_options_are_errors_naming_the_key() {
        let pki = pki();
        let keystore = [
            ("ssl.keystore.certificate.chain", pki.chain_pem.as_str()),
            ("ssl.keystore.key", pki.key_pem.as_str()),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = keystore.to_vec();
            pairs.extend_from_slice(extra);
            error_of(&pairs)
        };
        let error = with(&[("ssl.client.auth", "maybe")]);
        assert!(error.contains("ssl.client.auth=maybe"), "{error}");
        let error = with(&[("ssl.client.auth", "required")]);
        assert!(error.contains("a truststore is needed"), "{error}");
        let error = with(&[("ssl.enabled.protocols", "TLSv1.1")]);
        assert!(error.contains("ssl.enabled.protocols"), "{error}");
        let error = with(&[("ssl.handshake.timeout.ms", "0")]);
        assert!(error.contains("ssl.handshake.timeout.ms=0"), "{error}");
        let mismatched = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let error = error_of(&[
            ("ssl.keystore.certificate.chain", &pki.chain_pem),
            ("ssl.keystore.key", &mismatched),
        ]);
        assert!(error.contains("ssl.keystore.key"), "{error}");
    }
}
