//! Broker configuration with Kafka's key names, from a `server.properties`-style file,
//! `--override key=value` flags and the dedicated flags, in that order (later wins).
//!
//! Keys Kafka has but Odradek does not use (`zookeeper.connect`, `num.network.threads`,
//! ...) are accepted with a one-line warning, so an existing `server.properties` works
//! as it is. A value that does not parse is an error naming the key.
//!
//! ## A cluster
//!
//! A broker is one of a cluster when it is given the cluster's voters, exactly as a
//! KRaft broker is (`controller.quorum.voters`, or `--voters`):
//!
//! ```text
//! node.id=1
//! listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093
//! controller.listener.names=CONTROLLER
//! controller.quorum.voters=1@broker-1:9093,2@broker-2:9093,3@broker-3:9093
//! log.dirs=/var/lib/odradek
//! ```
//!
//! Every voter is a broker that also serves clients (Kafka's combined mode,
//! `process.roles=broker,controller`). Brokers talk to each other on the peer listener:
//! the listener of `listeners` named in `controller.listener.names` (`CONTROLLER` when
//! that key is not set), or `--peer-listen`. There is no separate `peer.listener` key:
//! Kafka's form says the same thing, and one way to say it leaves no precedence to
//! explain. Without a peer listener, a broker listens for peers on its own voter
//! entry's address. The rules, each an error at start-up when broken:
//!
//! - voter ids are unique and 0 or more, addresses are unique and have a port;
//! - `node.id` is one of the voters;
//! - the peer listener is not the client listener.
//!
//! A peer listener whose port differs from this node's voter entry is only a warning:
//! behind port mapping (containers) or a proxy the address others dial is not the one
//! bound. Without voters the broker is the single-node broker it always was: no peer
//! listener is opened, and a `CONTROLLER` listener in the file is ignored with a warning
//! (Kafka's own quick-start file has one, for a quorum of one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use odradek_log::partition::LogConfig;
use odradek_replication::acl::Authorizer;
use odradek_replication::dynamic_config::{topic_synonym, validate_broker_value};
use odradek_replication::group::GroupConfig;
use odradek_replication::topics::TopicConfig;

use crate::security::SecurityProtocol;
use crate::security::sasl::{self, SaslConfig};
use crate::security::tls::{self, TlsSettings};

/// Everything `odradek broker` is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `node.id` (or `broker.id`).
    pub node_id: i32,
    /// Where to listen: `host:port` (from `listeners`, or `--listen`).
    pub listen: String,
    /// The client listener's name in `listeners` (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`...).
    pub listener_name: String,
    /// Its security protocol (`listener.security.protocol.map`).
    pub listener_protocol: SecurityProtocol,
    /// The client listener's `ssl.*` settings (read when its protocol is SSL or
    /// SASL_SSL; see `crate::security::tls`).
    pub tls: TlsSettings,
    /// The client listeners of `listeners` after the first (the one above), each
    /// served the same way on its own port, each told its own endpoints.
    pub extra_listeners: Vec<Listener>,
    /// What clients are told to connect to (`advertised.listeners`); `None` means the
    /// listen address (with the real port if it was 0).
    pub advertised: Option<(String, u16)>,
    /// `log.dirs` (or `log.dir`, or `--data-dir`): only one directory is supported.
    pub data_dir: PathBuf,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// Broker-wide defaults of the storage engine: `log.segment.bytes`, `log.roll.ms`,
    /// `log.retention.ms`, `log.retention.bytes`, `message.max.bytes`,
    /// `log.index.interval.bytes`.
    pub log: LogConfig,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`.
    pub log_cleaner_backoff_ms: i64,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: i32,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: i64,
    /// `max.connections`.
    pub max_connections: i32,
    /// `controller.quorum.voters` (or `--voters`), sorted by id: every broker of the
    /// cluster, this one included. Empty: a single-node broker.
    pub voters: Vec<Voter>,
    /// Where to listen for other brokers: the controller listener of `listeners`, or
    /// `--peer-listen`. After [`BrokerConfig::resolve_cluster`], `Some` exactly when
    /// there are voters (this node's voter address unless set).
    pub peer_listen: Option<String>,
    /// The peer (controller) listener's security protocol
    /// (`listener.security.protocol.map`; PLAINTEXT when unmapped or not in `listeners`).
    pub peer_protocol: SecurityProtocol,
    /// The peer listener's `ssl.*` settings (`listener.name.<controller>.ssl.*` winning),
    /// read when `peer_protocol` is SSL: both ends of a peer link present and check them.
    pub peer_tls: TlsSettings,
    /// `raft.tick.ms`: how often every Raft group ticks (Odradek's own key).
    pub raft_tick_ms: i64,
    /// `controller.quorum.election.timeout.ms`: a follower that hears from no leader
    /// for this long (up to twice this, randomised) starts an election. Applies to
    /// every Raft group, partitions included.
    pub election_timeout_ms: i64,
    /// The group coordinator's settings: `offsets.topic.num.partitions`,
    /// `group.min.session.timeout.ms`, `group.max.session.timeout.ms`,
    /// `group.initial.rebalance.delay.ms`, `group.max.size`, `offsets.retention.minutes`,
    /// `offsets.retention.check.interval.ms`, `offset.metadata.max.bytes`.
    pub group: GroupConfig,
    /// `offsets.topic.replication.factor` (capped at the number of brokers).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i32,
    /// `authorizer.class.name` (Kafka's StandardAuthorizer or empty), with
    /// `super.users` and `allow.everyone.if.no.acl.found`; `None`: no authorization.
    pub authorizer: Option<Authorizer>,
    /// SASL on the client listener (used when it is `SASL_PLAINTEXT` or `SASL_SSL`).
    pub sasl: SaslConfig,
}

impl BrokerConfig {
    /// Every client listener, the first (`listen`, `listener_name`...) first.
    pub fn client_listeners(&self) -> Vec<Listener> {
        let first = Listener {
            name: self.listener_name.clone(),
            address: self.listen.clone(),
            protocol: self.listener_protocol,
            advertised: self.advertised.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
        };
        std::iter::once(first)
            .chain(self.extra_listeners.iter().cloned())
            .collect()
    }
}

/// One entry of `controller.quorum.voters`: `ID@HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    /// The voter's `node.id`.
    pub id: i32,
    /// The host other brokers dial.
    pub host: String,
    /// The port of its peer listener.
    pub port: u16,
}

impl Voter {
    /// `host:port`, with an IPv6 host in brackets: what `connect` and `bind` take.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Voter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.address())
    }
}

const HOUR_MS: i64 = 60 * 60 * 1000;

impl Default for BrokerConfig {
    /// Kafka's defaults, except where Odradek's single-node default differs (the
    /// listen address and data directory the README starts with, and `max.connections`, which
    /// Kafka leaves unbounded).
    fn default() -> BrokerConfig {
        BrokerConfig {
            node_id: 1,
            listen: "127.0.0.1:9092".to_string(),
            listener_name: "PLAINTEXT".to_string(),
            listener_protocol: SecurityProtocol::Plaintext,
            tls: TlsSettings::default(),
            extra_listeners: Vec::new(),
            advertised: None,
            data_dir: PathBuf::from("./odradek-data"),
            num_partitions: 1,
            auto_create_topics_enable: true,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            log: LogConfig::default(),
            retention_check_interval_ms: 300_000,
            log_cleaner_enable: true,
            log_cleaner_backoff_ms: 15_000,
            socket_request_max_bytes: 104_857_600,
            connections_max_idle_ms: 600_000,
            max_connections: 10_000,
            voters: Vec::new(),
            peer_listen: None,
            peer_protocol: SecurityProtocol::Plaintext,
            peer_tls: TlsSettings::default(),
            raft_tick_ms: 100,
            election_timeout_ms: 1000,
            group: GroupConfig::default(),
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            authorizer: None,
            sasl: SaslConfig::default(),
        }
    }
}

/// Kafka broker keys that are accepted and ignored, with a warning. Not exhaustive:
/// any other unknown key is ignored with a warning too; these are only known to be
/// harmless, so the warning says so.
const IGNORED_KEYS: &[&str] = &[
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "zookeeper.session.timeout.ms",
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "process.roles",
    "controller.quorum.bootstrap.servers",
    "inter.broker.listener.name",
    "delete.topic.enable",
];

/// One source of settings: the file, an override, or a flag, for error messages.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// A line of a properties file.
    File(&'a Path, usize),
    /// `--override`.
    Override,
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path, line) => write!(f, "{}:{line}", path.display()),
            Source::Override => write!(f, "--override"),
        }
    }
}

/// Parses Java-properties text: `key=value`, `key: value` or `key value` per line,
/// `#`/`!` comments, a trailing `\` continues a line. Returns (line number, key, value).
pub fn parse_properties(text: &str) -> Vec<(usize, String, String)> {
    let mut entries = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        let (start, mut logical) = match pending.take() {
            Some((start, so_far)) => (start, so_far + line),
            None => {
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                (index + 1, line.to_string())
            }
        };
        let continued = logical.ends_with('\\') && !logical.ends_with("\\\\");
        if continued {
            logical.pop();
            pending = Some((start, logical));
            continue;
        }
        let separator = logical.find(['=', ':', ' ', '\t']);
        let (key, value) = match separator {
            Some(at) => {
                let value = logical[at + 1..].trim_start();
                let value = value.strip_prefix(['=', ':']).unwrap_or(value);
                (logical[..at].trim_end(), value.trim())
            }
            None => (logical.as_str(), ""),
        };
        entries.push((start, key.to_string(), value.to_string()));
    }
    if let Some((start, logical)) = pending {
        let (key, value) = logical.split_once('=').unwrap_or((logical.as_str(), ""));
        entries.push((start, key.trim().to_string(), value.trim().to_string()));
    }
    entries
}

/// Settings collected from every source before they are interpreted (time keys have
/// precedence rules across keys, so they are resolved at the end).
#[derive(Default)]
pub struct Builder {
    values: BTreeMap<String, (String, String)>,
    warnings: Vec<String>,
}

impl Builder {
    /// Adds the settings of a properties file.
    pub fn file(&mut self, path: &Path) -> anyhow::Result<&mut Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        for (line, key, value) in parse_properties(&text) {
            self.set(Source::File(path, line), &key, &value)?;
        }
        Ok(self)
    }

    /// Adds one `key=value` override.
    pub fn override_pair(&mut self, pair: &str) -> anyhow::Result<&mut Self> {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--override {pair:?}: expected key=value");
        };
        self.set(Source::Override, key.trim(), value.trim())?;
        Ok(self)
    }

    fn set(&mut self, source: Source<'_>, key: &str, value: &str) -> anyhow::Result<()> {
        if key.is_empty() {
            bail!("{source}: empty key");
        }
        if INTER_BROKER_SECURITY_KEYS.contains(&key) {
            self.warnings.push(format!(
                "{source}: {key}={value} has no effect: brokers talk to each other over \
                 odradek's own peer transport, not Kafka's protocol, so there is no \
                 inter-broker SASL or TLS to configure"
            ));
            return Ok(());
        }
        if !KNOWN_KEYS.contains(&key) && !tls::is_tls_key(key) && !is_sasl_listener_key(key) {
            let why = if IGNORED_KEYS.contains(&key) {
                "not used by odradek"
            } else {
                "unknown key"
            };
            self.warnings
                .push(format!("{source}: ignoring {key} ({why})"));
            return Ok(());
        }
        self.values
            .insert(key.to_string(), (source.to_string(), value.to_string()));
        Ok(())
    }

    /// Lines to log once logging is set up.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Interprets the settings over Kafka's defaults.
    pub fn build(&self) -> anyhow::Result<BrokerConfig> {
        let mut config = BrokerConfig::default();
        self.build_node(&mut config)?;
        self.build_data_dir(&mut config)?;
        self.build_topic_defaults(&mut config)?;
        self.build_log(&mut config)?;
        self.build_connections(&mut config)?;
        self.build_group(&mut config)?;
        self.build_tls(&mut config);
        config.authorizer = self.build_authorizer()?;
        self.build_sasl(&mut config)?;
        Ok(config)
    }

    /// SASL's keys, for the client listener: the `listener.name.<listener>.` form wins
    /// over the plain key, as in Kafka. PLAIN's users come from PlainLoginModule's JAAS
    /// configuration (`listener.name.<l>.plain.sasl.jaas.config`, then `sasl.jaas.config`).
    fn build_sasl(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        config.sasl = self.sasl_settings(&config.listener_name)?;
        for listener in &mut config.extra_listeners {
            listener.sasl = self.sasl_settings(&listener.name)?;
        }
        Ok(())
    }

    /// The SASL settings of the client listener `name`.
    fn sasl_settings(&self, name: &str) -> anyhow::Result<SaslConfig> {
        let mut settings = SaslConfig::default();
        let prefix = format!("listener.name.{}.", name.to_lowercase());
        let mechanisms_key = format!("{prefix}sasl.enabled.mechanisms");
        for key in [mechanisms_key.as_str(), "sasl.enabled.mechanisms"] {
            if let Some(value) = self.raw(key) {
                settings.mechanisms = sasl::parse_mechanisms(key, value)?;
                break;
            }
        }
        let jaas_key = format!("{prefix}plain.sasl.jaas.config");
        for key in [jaas_key.as_str(), "sasl.jaas.config"] {
            if let Some(value) = self.raw(key) {
                settings.plain_users = sasl::parse_jaas_plain_users(key, value)?;
                break;
            }
        }
        if let Some(value) = self.non_negative::<i64>("connections.max.reauth.ms")? {
            settings.reauth_ms = value;
        }
        Ok(settings)
    }

    /// The node's id, its listeners, its cluster's voters and Raft's timing.
    fn build_node(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        if let Some(id) = self
            .parse::<i32>("node.id")?
            .or(self.parse::<i32>("broker.id")?)
        {
            if id < 0 {
                bail!(
                    "{}: node.id must be 0 or more, got {id}",
                    self.source_of("node.id", "broker.id")
                );
            }
            config.node_id = id;
        }
        let controller_names: Vec<String> = match self.raw("controller.listener.names") {
            Some(value) => value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect(),
            None => vec!["CONTROLLER".to_string()],
        };
        let protocols = match self.raw("listener.security.protocol.map") {
            Some(value) => parse_protocol_map(value)?,
            None => default_protocol_map(),
        };
        if let Some(value) = self.raw("listeners") {
            let mut listeners = Listeners::parse(value, &controller_names, &protocols)?;
            let first = listeners.clients.remove(0);
            config.listen = first.address;
            config.listener_name = first.name;
            config.listener_protocol = first.protocol;
            config.extra_listeners = listeners.clients;
            for listener in &mut config.extra_listeners {
                listener.tls = TlsSettings::collect(&listener.name, |key| self.raw(key));
            }
            config.peer_listen = listeners.peer.as_ref().map(|peer| peer.address.clone());
            if let Some(peer) = listeners.peer {
                config.peer_protocol = peer.protocol;
                config.peer_tls = TlsSettings::collect(&peer.name, |key| self.raw(key));
            }
        }
        if let Some(value) = self.raw("controller.quorum.voters") {
            config.voters = parse_voters("controller.quorum.voters", value)?;
        }
        if let Some(value) = self.positive::<i64>("raft.tick.ms")? {
            config.raft_tick_ms = value;
        }
        if let Some(value) = self.positive::<i64>("controller.quorum.election.timeout.ms")? {
            config.election_timeout_ms = value;
        }
        if let Some(value) = self.raw("advertised.listeners") {
            let advertised = Advertised::parse(value)?;
            let single = config.extra_listeners.is_empty();
            config.advertised = advertised.of(&config.listener_name, single)?;
            for listener in &mut config.extra_listeners {
                listener.advertised = advertised.of(&listener.name, false)?;
            }
        }
        Ok(())
    }

    /// The client listener's TLS settings, kept as given: `crate::security::tls`
    /// reads them when the listener's protocol needs them.
    fn build_tls(&self, config: &mut BrokerConfig) {
        config.tls = TlsSettings::collect(&config.listener_name, |key| self.raw(key));
    }

    /// The data directory (one).
    fn build_data_dir(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        if let Some(value) = self.raw("log.dirs").or(self.raw("log.dir")) {
            let dirs: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|dir| !dir.is_empty())
                .collect();
            match dirs.as_slice() {
                [dir] => config.data_dir = PathBuf::from(dir),
                [] => bail!("log.dirs: empty"),
                _ => bail!("log.dirs: only one data directory is supported, got {value:?}"),
            }
        }
        Ok(())
    }

    /// What a topic gets unless it says otherwise.
    fn build_topic_defaults(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        if let Some(value) = self.positive::<i32>("num.partitions")? {
            config.num_partitions = value;
        }
        if let Some(value) = self.parse::<bool>("auto.create.topics.enable")? {
            config.auto_create_topics_enable = value;
        }
        if let Some(value) = self.positive::<i16>("default.replication.factor")? {
            config.default_replication_factor = value;
        }
        if let Some(value) = self.positive::<i32>("min.insync.replicas")? {
            config.min_insync_replicas = value;
        }
        Ok(())
    }

    /// The log's segments, retention and limits.
    fn build_log(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        if let Some(value) = self.positive::<u64>("log.segment.bytes")? {
            config.log.segment_bytes = value;
        }
        if let Some(ms) = self.positive::<i64>("log.roll.ms")? {
            config.log.segment_ms = ms;
        } else if let Some(hours) = self.positive::<i64>("log.roll.hours")? {
            config.log.segment_ms = hours.saturating_mul(HOUR_MS);
        }
        if let Some(ms) = self.retention("log.retention.ms", 1)? {
            config.log.retention_ms = ms;
        } else if let Some(ms) = self.retention("log.retention.minutes", 60_000)? {
            config.log.retention_ms = ms;
        } else if let Some(ms) = self.retention("log.retention.hours", HOUR_MS)? {
            config.log.retention_ms = ms;
        }
        if let Some(value) = self.parse::<i64>("log.retention.bytes")? {
            config.log.retention_bytes = if value < 0 { -1 } else { value };
        }
        if let Some(value) = self.positive::<i32>("message.max.bytes")? {
            config.log.max_message_bytes = value.unsigned_abs();
        }
        if let Some(value) = self.non_negative::<i32>("log.index.interval.bytes")? {
            config.log.index_interval_bytes = value.unsigned_abs();
        }
        if let Some(value) = self.positive::<i64>("log.retention.check.interval.ms")? {
            config.retention_check_interval_ms = value;
        }
        self.build_cleaner(config)
    }

    /// Compaction and timestamps: the topic defaults (`log.cleanup.policy`,
    /// `log.cleaner.*` for a topic's `cleanup.policy`, `delete.retention.ms`, ...,
    /// `log.message.timestamp.type`) and the cleaner itself.
    fn build_cleaner(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        let mut entries = Vec::new();
        for key in [
            "log.cleanup.policy",
            "log.cleaner.delete.retention.ms",
            "log.cleaner.min.cleanable.ratio",
            "log.cleaner.min.compaction.lag.ms",
            "log.cleaner.max.compaction.lag.ms",
            "log.message.timestamp.type",
        ] {
            let Some(value) = self.raw(key) else { continue };
            let topic_key = topic_synonym(key).expect("a broker synonym of a topic key");
            validate_broker_value(key, value).map_err(|message| anyhow::anyhow!(message))?;
            entries.push((topic_key, value));
        }
        let defaults = TopicConfig::from_entries(entries).expect("each value validated");
        config.log = defaults.effective(&config.log);
        if let Some(value) = self.parse::<bool>("log.cleaner.enable")? {
            config.log_cleaner_enable = value;
        }
        if let Some(value) = self.positive::<i64>("log.cleaner.backoff.ms")? {
            config.log_cleaner_backoff_ms = value;
        }
        Ok(())
    }

    /// The client connections' limits.
    fn build_connections(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        if let Some(value) = self.positive::<i32>("socket.request.max.bytes")? {
            config.socket_request_max_bytes = value;
        }
        if let Some(value) = self.parse::<i64>("connections.max.idle.ms")? {
            // Kafka treats -1 as "never"; a day is as good as never for a client.
            config.connections_max_idle_ms = if value < 0 { i64::MAX } else { value.max(1) };
        }
        if let Some(value) = self.positive::<i32>("max.connections")? {
            config.max_connections = value;
        }
        Ok(())
    }

    /// `authorizer.class.name`: Kafka's StandardAuthorizer turns ACLs on, empty (the
    /// default) leaves every request allowed, anything else is refused. `super.users`
    /// (`User:a;User:b`) and `allow.everyone.if.no.acl.found` configure it.
    fn build_authorizer(&self) -> anyhow::Result<Option<Authorizer>> {
        let class = self.raw("authorizer.class.name").unwrap_or_default().trim();
        let super_users: Vec<String> = self
            .raw("super.users")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|user| !user.is_empty())
            .map(str::to_string)
            .collect();
        for user in &super_users {
            if !user
                .split_once(':')
                .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
            {
                bail!("super.users: {user:?} is not a principal of the form User:name");
            }
        }
        let allow_if_no_acl = self
            .parse::<bool>("allow.everyone.if.no.acl.found")?
            .unwrap_or(false);
        match class {
            "" => Ok(None),
            STANDARD_AUTHORIZER => Ok(Some(Authorizer::new(super_users, allow_if_no_acl))),
            other => bail!(
                "authorizer.class.name: {other:?} is not supported; odradek runs Kafka's {STANDARD_AUTHORIZER} (or none, when empty)"
            ),
        }
    }

    /// The group coordinator's keys.
    fn build_group(&self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        if let Some(value) = self.positive::<i16>("offsets.topic.replication.factor")? {
            config.offsets_topic_replication_factor = value;
        }
        if let Some(value) = self.positive::<i32>("offsets.topic.segment.bytes")? {
            config.offsets_topic_segment_bytes = value;
        }
        let group = &mut config.group;
        if let Some(value) = self.positive::<i32>("offsets.topic.num.partitions")? {
            group.offsets_topic_num_partitions = value;
        }
        if let Some(value) = self.positive::<i32>("group.min.session.timeout.ms")? {
            group.group_min_session_timeout_ms = value;
        }
        if let Some(value) = self.positive::<i32>("group.max.session.timeout.ms")? {
            group.group_max_session_timeout_ms = value;
        }
        if group.group_min_session_timeout_ms > group.group_max_session_timeout_ms {
            bail!(
                "group.min.session.timeout.ms ({}) is above group.max.session.timeout.ms ({})",
                group.group_min_session_timeout_ms,
                group.group_max_session_timeout_ms
            );
        }
        if let Some(value) = self.non_negative::<i32>("group.initial.rebalance.delay.ms")? {
            group.group_initial_rebalance_delay_ms = value;
        }
        if let Some(value) = self.positive::<i32>("group.max.size")? {
            group.group_max_size = value;
        }
        if let Some(value) = self.positive::<i32>("offsets.retention.minutes")? {
            group.offsets_retention_minutes = value;
        }
        if let Some(value) = self.positive::<i64>("offsets.retention.check.interval.ms")? {
            group.offsets_retention_check_interval_ms = value;
        }
        if let Some(value) = self.non_negative::<i32>("offset.metadata.max.bytes")? {
            group.offset_metadata_max_bytes = value;
        }
        Ok(())
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(_, value)| value.as_str())
    }

    fn source_of(&self, key: &str, alternative: &str) -> String {
        self.values
            .get(key)
            .or(self.values.get(alternative))
            .map(|(source, _)| source.clone())
            .unwrap_or_default()
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> anyhow::Result<Option<T>> {
        let Some((source, value)) = self.values.get(key) else {
            return Ok(None);
        };
        match value.parse() {
            Ok(parsed) => Ok(Some(parsed)),
            Err(_) => bail!(
                "{source}: invalid value {value:?} for {key} (expected {})",
                type_name::<T>()
            ),
        }
    }

    fn positive<T: std::str::FromStr + PartialOrd + Default + std::fmt::Display>(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<T>> {
        let value = self.parse::<T>(key)?;
        if let Some(value) = &value
            && *value <= T::default()
        {
            bail!(
                "{}: {key} must be greater than 0, got {value}",
                self.source_of(key, key)
            );
        }
        Ok(value)
    }

    fn non_negative<T: std::str::FromStr + PartialOrd + Default + std::fmt::Display>(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<T>> {
        let value = self.parse::<T>(key)?;
        if let Some(value) = &value
            && *value < T::default()
        {
            bail!(
                "{}: {key} must be 0 or more, got {value}",
                self.source_of(key, key)
            );
        }
        Ok(value)
    }

    /// A retention time in `unit_ms` units; any negative value means "forever" (-1).
    fn retention(&self, key: &str, unit_ms: i64) -> anyhow::Result<Option<i64>> {
        Ok(self.parse::<i64>(key)?.map(|value| {
            if value < 0 {
                -1
            } else {
                value.saturating_mul(unit_ms)
            }
        }))
    }
}

fn type_name<T>() -> &'static str {
    match std::any::type_name::<T>() {
        "bool" => "true or false",
        "i16" | "i32" | "i64" => "an integer",
        "u64" => "a positive integer",
        other => other,
    }
}

/// Keys about security between brokers, which do not apply to odradek's peer links.
const INTER_BROKER_SECURITY_KEYS: &[&str] = &[
    "security.inter.broker.protocol",
    "sasl.mechanism.inter.broker.protocol",
];

/// Whether `key` is a listener-prefixed SASL key (`listener.name.<l>.sasl.enabled.mechanisms`,
/// `listener.name.<l>.<mechanism>.sasl.jaas.config`).
fn is_sasl_listener_key(key: &str) -> bool {
    key.strip_prefix("listener.name.").is_some_and(|rest| {
        rest.ends_with(".sasl.enabled.mechanisms") || rest.ends_with(".sasl.jaas.config")
    })
}

/// Every key this broker interprets.
const KNOWN_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "auto.create.topics.enable",
    "default.replication.factor",
    "min.insync.replicas",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "message.max.bytes",
    "log.index.interval.bytes",
    "log.retention.check.interval.ms",
    "log.cleanup.policy",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.enable",
    "log.cleaner.backoff.ms",
    "log.message.timestamp.type",
    "socket.request.max.bytes",
    "connections.max.idle.ms",
    "max.connections",
    "controller.quorum.voters",
    "controller.listener.names",
    "listener.security.protocol.map",
    "raft.tick.ms",
    "controller.quorum.election.timeout.ms",
    "offsets.topic.replication.factor",
    "offsets.topic.num.partitions",
    "offsets.topic.segment.bytes",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.initial.rebalance.delay.ms",
    "group.max.size",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "offset.metadata.max.bytes",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "connections.max.reauth.ms",
];

/// The one `authorizer.class.name` odradek runs: Kafka's KRaft authorizer.
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The `(name, host:port)` pairs of a Kafka listener list
/// (`PLAINTEXT://host:port[,NAME://host:port...]`), each address checked.
fn parse_listeners(key: &str, value: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut listeners = Vec::new();
    for listener in value
        .split(',')
        .map(str::trim)
        .filter(|listener| !listener.is_empty())
    {
        let Some((name, address)) = listener.split_once("://") else {
            bail!("{key}: {listener:?} is not of the form PLAINTEXT://host:port");
        };
        split_host_port(key, address)?;
        listeners.push((name.to_string(), address.to_string()));
    }
    if listeners.is_empty() {
        bail!("{key}: no listener given");
    }
    Ok(listeners)
}

/// `advertised.listeners`: what clients of each listener are told to connect to.
struct Advertised {
    entries: Vec<(String, String)>,
}

impl Advertised {
    fn parse(value: &str) -> anyhow::Result<Advertised> {
        Ok(Advertised {
            entries: parse_listeners("advertised.listeners", value)?,
        })
    }

    /// The `(host, port)` of the client listener `name`: its entry, or, when it is the
    /// broker's `only` client listener, the one entry there is. `None`: the listener
    /// advertises the address it is bound to.
    fn of(&self, name: &str, only: bool) -> anyhow::Result<Option<(String, u16)>> {
        let key = "advertised.listeners";
        let entry = self
            .entries
            .iter()
            .find(|(listener, _)| listener.eq_ignore_ascii_case(name));
        let address = match (entry, self.entries.as_slice()) {
            (Some((_, address)), _) => address,
            (None, [(_, address)]) if only => address,
            (None, _) if !only => return Ok(None),
            (None, _) => bail!(
                "{key}: no entry for the client listener {name} among {}",
                names(&self.entries)
            ),
        };
        Ok(Some(split_host_port(key, address)?))
    }
}

fn names(listeners: &[(String, String)]) -> String {
    let names: Vec<&str> = listeners.iter().map(|(name, _)| name.as_str()).collect();
    names.join(", ")
}

/// Kafka's default `listener.security.protocol.map`: each protocol's own name.
fn default_protocol_map() -> BTreeMap<String, SecurityProtocol> {
    SecurityProtocol::ALL
        .iter()
        .map(|protocol| (protocol.name().to_string(), *protocol))
        .collect()
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`); names are kept
/// upper-case, as Kafka compares them.
fn parse_protocol_map(value: &str) -> anyhow::Result<BTreeMap<String, SecurityProtocol>> {
    let key = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let Some((name, protocol)) = entry.split_once(':') else {
            bail!("{key}: {entry:?} is not of the form NAME:PROTOCOL");
        };
        let protocol = SecurityProtocol::parse(protocol.trim())
            .with_context(|| format!("{key}: {entry:?}"))?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// One client listener of `listeners`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Its name (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`...).
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// What its clients are told to connect to (`advertised.listeners`); `None`: the
    /// address it is bound to.
    pub advertised: Option<(String, u16)>,
    /// Its `ssl.*` settings (`listener.name.<name>.ssl.*` over `ssl.*`), read when
    /// its protocol is SSL or SASL_SSL.
    pub tls: TlsSettings,
    /// Its SASL settings, used when its protocol is SASL_PLAINTEXT or SASL_SSL.
    pub sasl: SaslConfig,
}

/// The listeners of `listeners`: those that serve clients (at least one), and the peer
/// (controller) listener, if any.
struct Listeners {
    clients: Vec<Listener>,
    peer: Option<Listener>,
}

impl Listeners {
    /// The client listeners (those not named in `controller.listener.names`) and the
    /// peer listener (the one that is). A listener name without a security protocol, or
    /// twice, is an error, as in Kafka.
    fn parse(
        value: &str,
        controller_names: &[String],
        protocols: &BTreeMap<String, SecurityProtocol>,
    ) -> anyhow::Result<Listeners> {
        let key = "listeners";
        let listeners = parse_listeners(key, value)?;
        let mut clients: Vec<Listener> = Vec::new();
        let mut peer = None;
        for (name, address) in &listeners {
            let is_controller = controller_names
                .iter()
                .any(|controller| controller.eq_ignore_ascii_case(name));
            if is_controller {
                if peer.is_some() {
                    bail!(
                        "{key}: more than one controller listener ({}): odradek listens for peers on one",
                        controller_names.join(", ")
                    );
                }
                peer = Some(Listener {
                    name: name.clone(),
                    address: address.clone(),
                    protocol: protocols
                        .get(&name.to_ascii_uppercase())
                        .copied()
                        .unwrap_or(SecurityProtocol::Plaintext),
                    advertised: None,
                    tls: TlsSettings::default(),
                    sasl: SaslConfig::default(),
                });
                continue;
            }
            let Some(protocol) = protocols.get(&name.to_ascii_uppercase()) else {
                bail!(
                    "{key}: listener {name} is not named in controller.listener.names ({}) \
                     and has no security protocol in listener.security.protocol.map",
                    controller_names.join(", ")
                );
            };
            if clients
                .iter()
                .any(|client| client.name.eq_ignore_ascii_case(name))
            {
                bail!("{key}: listener {name} is named twice");
            }
            clients.push(Listener {
                name: name.clone(),
                address: address.clone(),
                protocol: *protocol,
                advertised: None,
                tls: TlsSettings::default(),
                sasl: SaslConfig::default(),
            });
        }
        match clients.is_empty() {
            false => Ok(Listeners { clients, peer }),
            true => bail!(
                "{key}: no client listener (every odradek broker serves clients; there are \
                 no controller-only nodes), got {}",
                names(&listeners)
            ),
        }
    }
}

/// Parses a voter list, Kafka's `controller.quorum.voters` form
/// `ID@HOST:PORT[,ID@HOST:PORT...]` (`ID@[v6]:PORT` too), sorted by id. `key` names
/// the setting or flag in errors.
pub fn parse_voters(key: &str, value: &str) -> anyhow::Result<Vec<Voter>> {
    let mut voters: Vec<Voter> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            bail!("{key}: empty entry in {value:?} (expected ID@HOST:PORT,ID@HOST:PORT,...)");
        }
        let Some((id, address)) = entry.split_once('@') else {
            bail!("{key}: {entry:?} is not of the form ID@HOST:PORT");
        };
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{key}: {entry:?}: the voter id is not an integer"))?;
        if !(0..1024).contains(&id) {
            // Producer ids of a cluster carry the broker id in their low 10 bits.
            bail!("{key}: {entry:?}: a voter id must be between 0 and 1023");
        }
        let (host, port) = split_host_port(key, address)?;
        if host.is_empty() {
            bail!("{key}: {entry:?}: a voter needs a host other brokers can dial");
        }
        if port == 0 {
            bail!("{key}: {entry:?}: port 0 cannot be dialled");
        }
        let voter = Voter { id, host, port };
        if let Some(other) = voters.iter().find(|other| other.id == id) {
            bail!("{key}: voter id {id} appears twice ({other} and {voter})");
        }
        if let Some(other) = voters
            .iter()
            .find(|other| other.host == voter.host && other.port == voter.port)
        {
            bail!(
                "{key}: voters {} and {} have the same address {}",
                other.id,
                id,
                voter.address()
            );
        }
        voters.push(voter);
    }
    voters.sort_by_key(|voter| voter.id);
    Ok(voters)
}

/// Splits `host:port` (`[v6]:port` too); an empty host means every interface.
pub fn split_host_port(key: &str, address: &str) -> anyhow::Result<(String, u16)> {
    let Some((host, port)) = address.rsplit_once(':') else {
        bail!("{key}: {address:?} has no port");
    };
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("{key}: invalid port in {address:?}"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host.to_string(), port))
}

impl BrokerConfig {
    /// Checks the cluster settings once every source (file, overrides, flags) is in,
    /// and fills in the peer listener (see the module documentation). Returns warnings
    /// to log.
    pub fn resolve_cluster(&mut self) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
        if self.election_timeout_ms < self.raft_tick_ms {
            bail!(
                "controller.quorum.election.timeout.ms ({}) must be at least raft.tick.ms ({})",
                self.election_timeout_ms,
                self.raft_tick_ms
            );
        }
        if self.voters.is_empty() {
            if let Some(peer) = self.peer_listen.take() {
                warnings.push(format!(
                    "ignoring the controller listener {peer}: without \
                     controller.quorum.voters (--voters) this is a single-node broker"
                ));
            }
            return Ok(warnings);
        }
        let ids: Vec<String> = self.voters.iter().map(|v| v.id.to_string()).collect();
        let Some(own) = self.voters.iter().find(|voter| voter.id == self.node_id) else {
            bail!(
                "node.id {} is not one of the voters ({}): every broker of a cluster is a voter",
                self.node_id,
                ids.join(", ")
            );
        };
        let peer = self.peer_listen.clone().unwrap_or_else(|| own.address());
        let (peer_host, peer_port) = split_host_port("peer listener", &peer)?;
        if peer_port != own.port {
            warnings.push(format!(
                "the peer listener {peer} is not on the port of this node's voter entry {own}: \
                 fine behind port mapping or a proxy, otherwise other brokers cannot reach this one"
            ));
        }
        let (client_host, client_port) = split_host_port("listen", &self.listen)?;
        if peer_port != 0 && peer_port == client_port && peer_host == client_host {
            bail!(
                "the peer listener and the client listener are the same address {peer}: \
                 give them different ports"
            );
        }
        self.peer_listen = Some(peer);
        Ok(warnings)
    }

    /// `controller.quorum.election.timeout.ms` in ticks of `raft.tick.ms`, rounded up.
    pub fn election_timeout_ticks(&self) -> u64 {
        let timeout_ms = u64::try_from(self.election_timeout_ms).unwrap_or(1);
        let tick_ms = u64::try_from(self.raft_tick_ms).unwrap_or(1).max(1);
        timeout_ms.div_ceil(tick_ms).max(1)
    }

    /// `connections.max.idle.ms` as a duration.
    pub fn idle(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.connections_max_idle_ms).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(lines: &[&str]) -> anyhow::Result<BrokerConfig> {
        let mut builder = Builder::default();
        for line in lines {
            builder.override_pair(line)?;
        }
        builder.build()
    }

    #[test]
    fn the_standard_authorizer_turns_acls_on_and_other_authorizers_are_refused() {
        assert_eq!(build(&[]).unwrap().authorizer, None);
        assert_eq!(build(&["authorizer.class.name="]).unwrap().authorizer, None);
        let config = build(&[
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin; User:ops",
            "allow.everyone.if.no.acl.found=true",
        ])
        .unwrap();
        let expected = Authorizer::new(["User:admin".into(), "User:ops".into()], true);
        assert_eq!(config.authorizer, Some(expected));
        let error = build(&["authorizer.class.name=kafka.security.authorizer.AclAuthorizer"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("AclAuthorizer") && error.contains("StandardAuthorizer"),
            "{error}"
        );
        let error = build(&["super.users=admin"]).unwrap_err().to_string();
        assert!(error.contains("super.users"), "{error}");
    }

    #[test]
    fn properties_syntax() {
        let text = "# comment\n! also\n\nbroker.id=3\nlisteners : PLAINTEXT://h:1\nlog.dirs /d\nlong=a\\\n  b\nempty=\n";
        let entries: Vec<_> = parse_properties(text)
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect();
        let pairs = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            entries,
            vec![
                pairs("broker.id", "3"),
                pairs("listeners", "PLAINTEXT://h:1"),
                pairs("log.dirs", "/d"),
                pairs("long", "ab"),
                pairs("empty", ""),
            ]
        );
    }

    #[test]
    fn the_server_properties_of_a_kafka_tutorial_is_accepted() {
        // From the shared seeds: every key either configures something or is ignored.
        let text = "broker.id=1\nlisteners=PLAINTEXT://localhost:9092\nlog.dirs=/var/kafka-logs\n\
                    zookeeper.connect=localhost:2181\nlog.retention.hours=168\n\
                    log.retention.bytes=1073741824\nlog.segment.bytes=1073741824\n\
                    default.replication.factor=3\nmin.insync.replicas=2\nnum.network.threads=3\n\
                    num.io.threads=8\nsocket.send.buffer.bytes=102400\n\
                    socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\n";
        let mut builder = Builder::default();
        for (line, key, value) in parse_properties(text) {
            builder
                .set(
                    Source::File(Path::new("server.properties"), line),
                    &key,
                    &value,
                )
                .unwrap();
        }
        let config = builder.build().unwrap();
        assert_eq!(config.node_id, 1);
        assert_eq!(config.listen, "localhost:9092");
        assert_eq!(config.data_dir, PathBuf::from("/var/kafka-logs"));
        assert_eq!(config.log.retention_ms, 168 * HOUR_MS);
        assert_eq!(config.log.retention_bytes, 1 << 30);
        assert_eq!(config.default_replication_factor, 3);
        assert_eq!(config.min_insync_replicas, 2);
        assert_eq!(builder.warnings().len(), 5, "{:?}", builder.warnings());
        assert!(
            builder
                .warnings()
                .iter()
                .all(|w| w.contains("not used by odradek"))
        );
    }

    #[test]
    fn time_keys_follow_kafkas_precedence() {
        let config = build(&["log.retention.hours=1", "log.retention.minutes=2"]).unwrap();
        assert_eq!(config.log.retention_ms, 120_000);
        let config = build(&["log.retention.hours=1", "log.retention.ms=5"]).unwrap();
        assert_eq!(config.log.retention_ms, 5);
        let config = build(&[
            "log.cleanup.policy=compact,delete",
            "log.cleaner.min.cleanable.ratio=0.25",
            "log.cleaner.backoff.ms=500",
            "offsets.topic.segment.bytes=65536",
        ])
        .unwrap();
        assert_eq!(
            config.log.cleanup_policy,
            odradek_log::partition::CleanupPolicy::CompactDelete
        );
        assert_eq!(config.log.min_cleanable_dirty_ratio_per_mille, 250);
        assert_eq!(config.log_cleaner_backoff_ms, 500);
        assert_eq!(config.offsets_topic_segment_bytes, 65536);
        let error = build(&["log.cleanup.policy=sometimes"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("log.cleanup.policy"), "{error}");
        let config = build(&["log.message.timestamp.type=LogAppendTime"]).unwrap();
        assert!(config.log.log_append_time);
        let error = build(&["log.message.timestamp.type=Sometimes"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("log.message.timestamp.type"), "{error}");
        let config = build(&["log.retention.ms=-1"]).unwrap();
        assert_eq!(config.log.retention_ms, -1);
        let config = build(&["log.roll.hours=2"]).unwrap();
        assert_eq!(config.log.segment_ms, 2 * HOUR_MS);
    }

    #[test]
    fn bad_values_name_the_key() {
        let error = build(&["num.partitions=many"]).unwrap_err().to_string();
        assert!(error.contains("num.partitions"), "{error}");
        let error = build(&["num.partitions=0"]).unwrap_err().to_string();
        assert!(error.contains("num.partitions"), "{error}");
        let error = build(&["listeners=LOCAL://localhost:9092"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("listener.security.protocol.map"), "{error}");
        let error = build(&["log.dirs=/a,/b"]).unwrap_err().to_string();
        assert!(error.contains("log.dirs"), "{error}");
        assert!(build(&["auto.create.topics.enable=yes"]).is_err());
        assert!(build(&["no-equals-sign"]).is_err());
    }

    #[test]
    fn listeners() {
        let config = build(&[
            "listeners=PLAINTEXT://:9093",
            "advertised.listeners=PLAINTEXT://broker.example:19093",
        ])
        .unwrap();
        assert_eq!(config.listen, ":9093");
        assert_eq!(
            config.advertised,
            Some(("broker.example".to_string(), 19093))
        );
        assert_eq!(
            split_host_port("k", "[::1]:9092").unwrap(),
            ("::1".to_string(), 9092)
        );
    }

    fn cluster(lines: &[&str]) -> anyhow::Result<(BrokerConfig, Vec<String>)> {
        let mut config = build(lines)?;
        let warnings = config.resolve_cluster()?;
        Ok((config, warnings))
    }

    fn error_of(lines: &[&str]) -> String {
        format!("{:#}", cluster(lines).unwrap_err())
    }

    #[test]
    fn a_kraft_combined_mode_file_configures_a_cluster() {
        let (config, warnings) = cluster(&[
            "process.roles=broker,controller",
            "node.id=2",
            "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
            "controller.listener.names=CONTROLLER",
            "controller.quorum.voters=3@h3:9093,1@h1:9093,2@h2:9093",
            "log.dirs=/var/lib/odradek",
        ])
        .unwrap();
        assert_eq!(warnings, Vec::<String>::new());
        assert_eq!(config.node_id, 2);
        assert_eq!(config.listen, "0.0.0.0:9092");
        assert_eq!(config.peer_listen.as_deref(), Some("0.0.0.0:9093"));
        let voters: Vec<String> = config.voters.iter().map(Voter::to_string).collect();
        assert_eq!(
            voters,
            ["1@h1:9093", "2@h2:9093", "3@h3:9093"],
            "sorted by id"
        );
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/odradek"));
    }

    #[test]
    fn the_controller_listener_is_the_one_controller_listener_names_names() {
        let (config, _) = cluster(&[
            "node.id=1",
            "listeners=PLAINTEXT://:9092,RAFT://:7000",
            "controller.listener.names=RAFT",
            "controller.quorum.voters=1@localhost:7000",
        ])
        .unwrap();
        assert_eq!(config.peer_listen.as_deref(), Some(":7000"));
        // CONTROLLER is not a controller listener when another name is configured.
        let error = error_of(&[
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "controller.listener.names=RAFT",
        ]);
        assert!(
            error.contains("listener CONTROLLER is not named"),
            "{error}"
        );
        let error = error_of(&["listeners=PLAINTEXT://:9092,plaintext://:9094"]);
        assert!(error.contains("named twice"), "{error}");
        let config = build(&[
            "listeners=PLAINTEXT://:9092,EXTERNAL://:9094,CONTROLLER://:9093",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
            "advertised.listeners=EXTERNAL://broker.example:19094",
        ])
        .unwrap();
        assert_eq!(
            (config.listen.as_str(), config.advertised.as_ref()),
            (":9092", None)
        );
        let external = &config.extra_listeners[0];
        assert_eq!(
            (external.name.as_str(), external.address.as_str()),
            ("EXTERNAL", ":9094")
        );
        assert_eq!(
            external.advertised,
            Some(("broker.example".to_string(), 19094))
        );
        let error = error_of(&["listeners=CONTROLLER://:9093"]);
        assert!(error.contains("no controller-only nodes"), "{error}");
        let config = build(&[
            "listeners=EXTERNAL://:9094,CONTROLLER://:9093",
            "listener.security.protocol.map=EXTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "advertised.listeners=EXTERNAL://broker.example:9094",
        ])
        .unwrap();
        assert_eq!(config.listener_name, "EXTERNAL");
        assert_eq!(config.listener_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            config.advertised,
            Some(("broker.example".to_string(), 9094))
        );
        let error = error_of(&["listener.security.protocol.map=EXTERNAL:TLS"]);
        assert!(error.contains("EXTERNAL:TLS"), "{error}");
        let error = error_of(&["listeners=CONTROLLER://:9093,CONTROLLER://:9094"]);
        assert!(
            error.contains("more than one controller listener"),
            "{error}"
        );
    }

    #[test]
    fn without_a_controller_listener_peers_are_heard_on_the_voter_address() {
        let (config, warnings) = cluster(&[
            "node.id=3",
            "controller.quorum.voters=1@10.0.0.1:9093,2@10.0.0.2:9093,3@[::1]:9093",
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.peer_listen.as_deref(), Some("[::1]:9093"));
    }

    #[test]
    fn without_voters_a_broker_is_a_single_node_and_opens_no_peer_listener() {
        let (config, warnings) = cluster(&["node.id=1"]).unwrap();
        assert_eq!(config.voters, Vec::new());
        assert_eq!(config.peer_listen, None);
        assert!(warnings.is_empty());
        // Kafka's own quick-start file names a CONTROLLER listener for its quorum of one.
        let (config, warnings) = cluster(&[
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "controller.quorum.bootstrap.servers=localhost:9093",
        ])
        .unwrap();
        assert_eq!(config.peer_listen, None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("single-node broker"), "{warnings:?}");
    }

    #[test]
    fn voter_lists_are_checked() {
        let voters = |value: &str| format!("{:#}", parse_voters("--voters", value).unwrap_err());
        assert!(voters("1@h:1,1@g:2").contains("voter id 1 appears twice"));
        assert!(voters("-1@h:1").contains("between 0 and 1023"));
        assert!(voters("1024@h:1").contains("between 0 and 1023"));
        assert!(voters("x@h:1").contains("not an integer"));
        assert!(voters("1@h:1,2@h:1").contains("same address h:1"));
        assert!(voters("1@h:0").contains("port 0"));
        assert!(voters("1@:9093").contains("host"));
        assert!(voters("1@h").contains("no port"));
        assert!(voters("h:9093").contains("ID@HOST:PORT"));
        assert!(voters("1@h:1,,2@g:1").contains("empty entry"));
        assert!(voters("").contains("empty entry"));
        let error = error_of(&["controller.quorum.voters=1@h:1,x"]);
        assert!(error.starts_with("controller.quorum.voters:"), "{error}");
    }

    #[test]
    fn cluster_rules_are_checked() {
        let error = error_of(&["node.id=4", "controller.quorum.voters=1@h:1,2@g:1"]);
        assert!(
            error.contains("node.id 4 is not one of the voters (1, 2)"),
            "{error}"
        );
        let error = error_of(&[
            "listeners=PLAINTEXT://h:9092,CONTROLLER://h:9092",
            "controller.quorum.voters=1@h:9092",
        ]);
        assert!(error.contains("same address"), "{error}");
        let error = error_of(&[
            "raft.tick.ms=500",
            "controller.quorum.election.timeout.ms=100",
        ]);
        assert!(error.contains("at least raft.tick.ms"), "{error}");
        // A peer port other than the voter entry's is only a warning (port mapping).
        let (config, warnings) = cluster(&[
            "listeners=PLAINTEXT://:9092,CONTROLLER://:19093",
            "controller.quorum.voters=1@h:9093",
        ])
        .unwrap();
        assert_eq!(config.peer_listen.as_deref(), Some(":19093"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("not on the port"), "{warnings:?}");
    }

    #[test]
    fn election_timeouts_become_ticks() {
        let (config, _) = cluster(&[]).unwrap();
        assert_eq!(
            config.election_timeout_ticks(),
            10,
            "Kafka's 1000 ms over 100 ms ticks"
        );
        let (config, _) = cluster(&[
            "raft.tick.ms=30",
            "controller.quorum.election.timeout.ms=100",
        ])
        .unwrap();
        assert_eq!(config.raft_tick_ms, 30);
        assert_eq!(config.election_timeout_ticks(), 4, "rounded up");
    }

    #[test]
    fn each_listener_gets_its_own_tls_settings_and_protocol() {
        let config = build(&[
            "listeners=SSL://:9094,CONTROLLER://:9093",
            "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL",
            "ssl.keystore.location=/shared.pem",
            "listener.name.controller.ssl.keystore.location=/peer.pem",
        ])
        .unwrap();
        assert_eq!(config.listener_protocol, SecurityProtocol::Ssl);
        assert_eq!(config.peer_protocol, SecurityProtocol::Ssl);
        let peer = format!("{:?}", config.peer_tls);
        assert!(
            peer.contains("listener.name.controller.ssl.keystore.location"),
            "{peer}"
        );
        let client = format!("{:?}", config.tls);
        assert!(client.contains("\"ssl.keystore.location\""), "{client}");
        // An unmapped controller listener is plain, as before.
        let config = build(&["listeners=PLAINTEXT://:9092,CONTROLLER://:9093"]).unwrap();
        assert_eq!(config.peer_protocol, SecurityProtocol::Plaintext);
    }
}
