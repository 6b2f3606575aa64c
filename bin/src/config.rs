//! Broker configuration with Kafka's key names, from a `server.properties`-style file,
//! `--override key=value` flags and the dedicated flags, in that order (later wins).
//!
//! Keys Kafka has but Odradek does not use (`zookeeper.connect`, `num.network.threads`,
//! ...) are accepted with a one-line warning, so an existing `server.properties` works
//! as it is. A value that does not parse is an error naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use odradek_log::partition::LogConfig;

/// Everything `odradek broker` is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `node.id` (or `broker.id`).
    pub node_id: i32,
    /// Where to listen: `host:port` (from `listeners`, or `--listen`).
    pub listen: String,
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
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: i32,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: i64,
    /// `max.connections`.
    pub max_connections: i32,
}

const HOUR_MS: i64 = 60 * 60 * 1000;

impl Default for BrokerConfig {
    /// Kafka's defaults, except where Odradek's single-node default differs (the
    /// listen address and data directory of DESIGN §8, and `max.connections`, which
    /// Kafka leaves unbounded).
    fn default() -> BrokerConfig {
        BrokerConfig {
            node_id: 1,
            listen: "127.0.0.1:9092".to_string(),
            advertised: None,
            data_dir: PathBuf::from("./odradek-data"),
            num_partitions: 1,
            auto_create_topics_enable: true,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            log: LogConfig::default(),
            retention_check_interval_ms: 300_000,
            socket_request_max_bytes: 104_857_600,
            connections_max_idle_ms: 600_000,
            max_connections: 10_000,
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
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "group.initial.rebalance.delay.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "process.roles",
    "controller.quorum.voters",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "log.cleanup.policy",
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
        if !KNOWN_KEYS.contains(&key) {
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
        if let Some(value) = self.raw("listeners") {
            config.listen = listener_address("listeners", value)?;
        }
        if let Some(value) = self.raw("advertised.listeners") {
            let address = listener_address("advertised.listeners", value)?;
            config.advertised = Some(split_host_port("advertised.listeners", &address)?);
        }
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
        Ok(config)
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
    "socket.request.max.bytes",
    "connections.max.idle.ms",
    "max.connections",
];

/// The `host:port` of the PLAINTEXT listener in a Kafka listener list
/// (`PLAINTEXT://host:port[,NAME://host:port...]`).
fn listener_address(key: &str, value: &str) -> anyhow::Result<String> {
    let mut others = Vec::new();
    for listener in value
        .split(',')
        .map(str::trim)
        .filter(|listener| !listener.is_empty())
    {
        let Some((name, address)) = listener.split_once("://") else {
            bail!("{key}: {listener:?} is not of the form PLAINTEXT://host:port");
        };
        if name.eq_ignore_ascii_case("PLAINTEXT") {
            split_host_port(key, address)?;
            return Ok(address.to_string());
        }
        others.push(name.to_string());
    }
    if others.is_empty() {
        bail!("{key}: no listener given");
    }
    bail!(
        "{key}: only a PLAINTEXT listener is supported (no TLS or SASL yet), got {}",
        others.join(", ")
    )
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
        let error = build(&["listeners=SASL_PLAINTEXT://localhost:9092"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("PLAINTEXT listener"), "{error}");
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
}
