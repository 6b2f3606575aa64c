//! Topics: legal names, per-topic configuration, and the registry the node keeps.
//!
//! A topic's configuration is a set of overrides (what CreateTopics set) on top of the
//! broker's defaults; [`TopicConfig::effective`] turns both into the [`LogConfig`] its
//! partitions run with. Keys and meanings are Kafka's topic-level configs.

use std::collections::BTreeMap;

use odradek_log::partition::{CleanupPolicy, LogConfig};

use crate::error::ErrorCode;

/// Longest legal topic name (Kafka's limit, from the 255-byte file name limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most partitions one topic may have; bounds the files a CreateTopics can open.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;
/// The internal topic that holds the cluster's metadata records. Reserved.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// A topic as the node knows it once its creation record is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    /// The topic's name.
    pub name: String,
    /// The topic's id (Kafka's topic UUID), as two halves.
    pub id: TopicId,
    /// Number of partitions, numbered `0..partitions`.
    pub partitions: i32,
    /// Per-topic configuration overrides.
    pub config: TopicConfig,
    /// Each partition's replicas, preferred leader first; empty for a topic created
    /// before replication (every partition on the one node of that cluster).
    pub replicas: Vec<Vec<i32>>,
    /// Where DeleteRecords moved each partition's log start offset (only partitions it
    /// moved): records below it are gone for clients on every replica.
    pub deleted_below: BTreeMap<i32, i64>,
}

impl Topic {
    /// The offset below which DeleteRecords removed partition `partition`'s records
    /// (0 if it never did).
    pub fn deleted_below(&self, partition: i32) -> i64 {
        self.deleted_below.get(&partition).copied().unwrap_or(0)
    }

    /// The brokers holding partition `partition`; `[node_id]` for a topic from before
    /// replication, whose partitions all live on the node that created them.
    pub fn replicas_of(&self, partition: i32, node_id: i32) -> Vec<i32> {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.replicas.get(index))
            .cloned()
            .unwrap_or_else(|| vec![node_id])
    }
}

/// Kafka's placement without racks: partition `p`'s replicas are `rf` brokers in a
/// row of the sorted broker list, starting at `(start + p) % n`, so leaders spread
/// over the brokers. `start` comes from the caller (a hash of the topic name here,
/// random in Kafka).
pub fn place_replicas(
    brokers: &[i32],
    partitions: std::ops::Range<i32>,
    rf: usize,
    start: usize,
) -> Vec<Vec<i32>> {
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    let n = sorted.len().max(1);
    partitions
        .map(|p| {
            let first = (start + usize::try_from(p).unwrap_or(0)) % n;
            (0..rf.min(sorted.len()))
                .map(|i| sorted[(first + i) % n])
                .collect()
        })
        .collect()
}

/// A topic's UUID as two big-endian halves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId {
    /// The first 8 bytes.
    pub high: u64,
    /// The last 8 bytes.
    pub low: u64,
}

impl TopicId {
    /// A random version-4 UUID from two random words.
    pub fn random(high: u64, low: u64) -> TopicId {
        // Set the version (4) and variant (10xx) bits as RFC 4122 says.
        let high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        TopicId { high, low }
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:016x}{:016x}", self.high, self.low)
    }

    /// Parses [`TopicId::to_hex`]'s output.
    pub fn from_hex(text: &str) -> Option<TopicId> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let high = u64::from_str_radix(&text[..16], 16).ok()?;
        let low = u64::from_str_radix(&text[16..], 16).ok()?;
        Some(TopicId { high, low })
    }

    /// Whether this is the all-zero id Kafka uses for "no id".
    pub fn is_zero(self) -> bool {
        self.high == 0 && self.low == 0
    }
}

/// Checks a topic name against Kafka's rules: 1 to 249 characters of
/// `[a-zA-Z0-9._-]`, not `.` or `..`, and not reserved.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".to_string());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "topic name is longer than {TOPIC_NAME_BYTES_MAX} characters"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be '{name}'"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "topic name contains illegal character {bad:?}; legal are [a-zA-Z0-9._-]"
        ));
    }
    if name == METADATA_TOPIC {
        return Err(format!("topic name {METADATA_TOPIC} is reserved"));
    }
    Ok(())
}

/// The directory of one partition's log, relative to the data directory (Kafka's layout).
pub fn partition_dir(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// How a topic-level config value is typed, for validation and DescribeConfigs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// Free text from a fixed set.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// A decimal number (`min.cleanable.dirty.ratio`).
    Double,
    /// Comma-separated values from a fixed set (`cleanup.policy`).
    List,
}

impl ConfigType {
    /// Kafka's DescribeConfigs `config_type` number.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// One topic-level configuration key Odradek understands.
#[derive(Clone, Copy, Debug)]
pub struct ConfigKey {
    /// Kafka's name for it.
    pub name: &'static str,
    /// Its type.
    pub config_type: ConfigType,
    /// What it does, for DescribeConfigs documentation.
    pub documentation: &'static str,
}

/// Every topic-level key CreateTopics accepts, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIG_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        documentation: "'delete' removes old segments by retention; 'compact' keeps the newest record of every key; 'compact,delete' does both.",
    },
    ConfigKey {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        documentation: "How long a compacted topic keeps a tombstone after the cleaner first passes it.",
    },
    ConfigKey {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        documentation: "Share of a compacted log that must be uncleaned before the cleaner runs.",
    },
    ConfigKey {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        documentation: "A record stays uncompacted at least this long.",
    },
    ConfigKey {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        documentation: "A record is compacted at the latest after this long, however clean the log.",
    },
    ConfigKey {
        name: "compression.type",
        config_type: ConfigType::String,
        documentation: "Only 'producer' is supported: batches are stored as the producer compressed them.",
    },
    ConfigKey {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        documentation: "Largest record batch the topic accepts, in bytes.",
    },
    ConfigKey {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        documentation: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the leader's clock when it is appended.",
    },
    ConfigKey {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        documentation: "Replicas that must have a write before acks=all succeeds.",
    },
    ConfigKey {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        documentation: "Delete old segments while the partition is larger than this; -1 for no limit.",
    },
    ConfigKey {
        name: "retention.ms",
        config_type: ConfigType::Long,
        documentation: "Delete segments whose newest record is older than this; -1 for no limit.",
    },
    ConfigKey {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        documentation: "Roll to a new segment file at this size.",
    },
    ConfigKey {
        name: "segment.ms",
        config_type: ConfigType::Long,
        documentation: "Roll to a new segment file after this long.",
    },
    ConfigKey {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        documentation: "Bytes between entries of the sparse offset index.",
    },
    ConfigKey {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        documentation: "Only 'false' is supported: an out-of-sync replica never becomes leader.",
    },
];

/// Smallest `segment.bytes` accepted: room for a header and a small batch.
pub const SEGMENT_BYTES_MIN: i64 = 512;

/// Per-topic configuration overrides, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Validates `entries` (key, value) and builds the overrides.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, (ErrorCode, String)> {
        let mut overrides = BTreeMap::new();
        for (key, value) in entries {
            validate_config_value(key, value)
                .map_err(|message| (ErrorCode::InvalidConfig, message))?;
            overrides.insert(key.to_string(), value.to_string());
        }
        Ok(TopicConfig { overrides })
    }

    /// The overrides, sorted by key.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// The overrides in `values` that validate; the others are skipped (a record's
    /// values were validated before it was written: see `dynamic_config.rs`).
    pub fn from_valid(mut values: BTreeMap<String, String>) -> TopicConfig {
        values.retain(|key, value| validate_config_value(key, value).is_ok());
        TopicConfig { overrides: values }
    }

    /// The value set for `key` on this topic, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.overrides.get(key).map(String::as_str)
    }

    /// The log configuration the topic's partitions use: broker defaults with
    /// this topic's overrides applied.
    pub fn effective(&self, defaults: &LogConfig) -> LogConfig {
        let mut config = defaults.clone();
        let long = |key: &str| self.get(key).and_then(|v| v.parse::<i64>().ok());
        if let Some(v) = long("segment.bytes") {
            config.segment_bytes = v as u64;
        }
        if let Some(v) = long("segment.ms") {
            config.segment_ms = v;
        }
        if let Some(v) = long("retention.ms") {
            config.retention_ms = v;
        }
        if let Some(v) = long("retention.bytes") {
            config.retention_bytes = v;
        }
        if let Some(v) = long("max.message.bytes") {
            config.max_message_bytes = v as u32;
        }
        if let Some(v) = long("index.interval.bytes") {
            config.index_interval_bytes = v as u32;
        }
        if let Some(policy) = self.get("cleanup.policy").and_then(parse_cleanup_policy) {
            config.cleanup_policy = policy;
        }
        if let Some(v) = long("delete.retention.ms") {
            config.delete_retention_ms = v;
        }
        if let Some(v) = self
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.parse::<f64>().ok())
        {
            config.min_cleanable_dirty_ratio_per_mille = (v * 1000.0).round() as u32;
        }
        if let Some(v) = long("min.compaction.lag.ms") {
            config.min_compaction_lag_ms = v;
        }
        if let Some(v) = long("max.compaction.lag.ms") {
            config.max_compaction_lag_ms = v;
        }
        if let Some(v) = self.get("message.timestamp.type") {
            config.log_append_time = v == "LogAppendTime";
        }
        config
    }
}

/// `message.timestamp.type` as Kafka spells it.
fn timestamp_type_text(log_append_time: bool) -> &'static str {
    if log_append_time {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

/// The value a key has when no topic overrides it, as text.
pub fn default_config_value(key: &str, defaults: &LogConfig, min_insync_replicas: i32) -> String {
    match key {
        "cleanup.policy" => cleanup_policy_text(defaults.cleanup_policy).to_string(),
        "delete.retention.ms" => defaults.delete_retention_ms.to_string(),
        "min.cleanable.dirty.ratio" => {
            (f64::from(defaults.min_cleanable_dirty_ratio_per_mille) / 1000.0).to_string()
        }
        "min.compaction.lag.ms" => defaults.min_compaction_lag_ms.to_string(),
        "max.compaction.lag.ms" => defaults.max_compaction_lag_ms.to_string(),
        "compression.type" => "producer".to_string(),
        "max.message.bytes" => defaults.max_message_bytes.to_string(),
        "message.timestamp.type" => timestamp_type_text(defaults.log_append_time).to_string(),
        "min.insync.replicas" => min_insync_replicas.to_string(),
        "retention.bytes" => defaults.retention_bytes.to_string(),
        "retention.ms" => defaults.retention_ms.to_string(),
        "segment.bytes" => defaults.segment_bytes.to_string(),
        "segment.ms" => defaults.segment_ms.to_string(),
        "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
        "unclean.leader.election.enable" => "false".to_string(),
        other => panic!("no default for unknown topic config {other}"),
    }
}

/// Checks one topic-level key and value; the error names the key.
pub fn validate_config_value(key: &str, value: &str) -> Result<(), String> {
    let int_in = |low: i64, high: i64| -> Result<(), String> {
        match value.parse::<i64>() {
            Ok(v) if (low..=high).contains(&v) => Ok(()),
            _ => Err(format!(
                "invalid value {value:?} for {key}: expected an integer in [{low}, {high}]"
            )),
        }
    };
    match key {
        "cleanup.policy" => parse_cleanup_policy(value).map(|_| ()).ok_or_else(|| {
            format!(
                "invalid value {value:?} for cleanup.policy: expected delete, compact or compact,delete"
            )
        }),
        "min.cleanable.dirty.ratio" => match value.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(()),
            _ => Err(format!(
                "invalid value {value:?} for min.cleanable.dirty.ratio: expected a number in [0, 1]"
            )),
        },
        "delete.retention.ms" | "min.compaction.lag.ms" => int_in(0, i64::MAX),
        "max.compaction.lag.ms" => int_in(1, i64::MAX),
        "compression.type" => one_of(key, value, &["producer"]),
        "message.timestamp.type" => one_of(key, value, &["CreateTime", "LogAppendTime"]),
        "unclean.leader.election.enable" => one_of(key, value, &["false"]),
        "max.message.bytes" => int_in(0, i32::MAX as i64),
        "min.insync.replicas" => int_in(1, i32::MAX as i64),
        "retention.bytes" | "retention.ms" => int_in(-1, i64::MAX),
        "segment.bytes" => int_in(SEGMENT_BYTES_MIN, i32::MAX as i64),
        "segment.ms" => int_in(1, i64::MAX),
        "index.interval.bytes" => int_in(0, i32::MAX as i64),
        _ => Err(format!("unknown topic config {key:?}")),
    }
}

/// `cleanup.policy`'s value: `delete`, `compact`, or both in either order.
pub fn parse_cleanup_policy(value: &str) -> Option<CleanupPolicy> {
    let mut words: Vec<&str> = value.split(',').map(str::trim).collect();
    words.sort_unstable();
    words.dedup();
    match words.as_slice() {
        ["delete"] => Some(CleanupPolicy::Delete),
        ["compact"] => Some(CleanupPolicy::Compact),
        ["compact", "delete"] => Some(CleanupPolicy::CompactDelete),
        _ => None,
    }
}

/// `cleanup.policy`'s value as Kafka writes it.
pub fn cleanup_policy_text(policy: CleanupPolicy) -> &'static str {
    match policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    }
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "unsupported value {value:?} for {key}: Odradek supports {allowed:?}"
        ))
    }
}

/// A topic and a partition number: the key of everything per-partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's number.
    pub partition: i32,
}

impl TopicPartition {
    /// A key for `topic`'s partition `partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_name_rules() {
        assert!(validate_topic_name("user-events").is_ok());
        assert!(validate_topic_name("a.b_c-1").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("has space").is_err());
        assert!(validate_topic_name("slash/y").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name(METADATA_TOPIC).is_err());
    }

    #[test]
    fn overrides_apply_over_defaults() {
        let config =
            TopicConfig::from_entries([("retention.ms", "1000"), ("segment.bytes", "4096")])
                .expect("valid");
        let effective = config.effective(&LogConfig::default());
        assert_eq!(effective.retention_ms, 1000);
        assert_eq!(effective.segment_bytes, 4096);
        assert_eq!(
            effective.max_message_bytes,
            LogConfig::default().max_message_bytes
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let (code, message) =
            TopicConfig::from_entries([("retention.ms", "soon")]).expect_err("invalid");
        assert_eq!(code, ErrorCode::InvalidConfig);
        assert!(message.contains("retention.ms"), "{message}");
        assert!(TopicConfig::from_entries([("cleanup.policy", "compaction")]).is_err());
        assert!(TopicConfig::from_entries([("min.cleanable.dirty.ratio", "1.5")]).is_err());
        assert!(TopicConfig::from_entries([("no.such.key", "1")]).is_err());
    }

    #[test]
    fn topic_id_hex_round_trip() {
        let id = TopicId::random(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(TopicId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.high >> 12 & 0xF, 4, "version 4");
    }
}

#[cfg(test)]
mod placement_tests {
    use super::place_replicas;

    #[test]
    fn placement_spreads_leaders_and_never_repeats_a_broker() {
        let placed = place_replicas(&[3, 1, 2], 0..6, 3, 1);
        assert_eq!(placed[0], vec![2, 3, 1]);
        assert_eq!(placed[1], vec![3, 1, 2]);
        assert_eq!(placed[2], vec![1, 2, 3]);
        for replicas in &placed {
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3);
        }
        assert_eq!(
            place_replicas(&[1, 2, 3], 0..2, 1, 0),
            vec![vec![1], vec![2]]
        );
    }
}
