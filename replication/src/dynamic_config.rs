//! Configuration changed at run time: the broker-level keys set for every broker (the
//! cluster-wide default) or for one broker, as `kafka-configs --alter --entity-type
//! brokers` sets them, and the record that carries a change of those or of a topic's
//! overrides through the metadata log.
//!
//! A topic-level setting is looked up in this order (Kafka's precedence), the first
//! that has it wins:
//!
//! ```text
//!   topic override (retention.ms)             source 1  TOPIC_CONFIG
//!   this broker's dynamic value (log.retention.ms)     2  DYNAMIC_BROKER_CONFIG
//!   the cluster-wide dynamic default                   3  DYNAMIC_DEFAULT_BROKER_CONFIG
//!   the broker's properties file / built-in default    5  DEFAULT_CONFIG (4 for broker keys)
//! ```
//!
//! Every value is validated before its record is appended; applying a record never
//! fails (a value that does not validate any more, after an upgrade changed the
//! rules, is skipped so that replay goes on).

use std::collections::{BTreeMap, BTreeSet};

use odradek_log::partition::LogConfig;

use crate::topics::{TopicConfig, validate_config_value};

/// The broker-level keys that can change at run time, each with the topic-level key
/// it is the default of (Kafka's synonyms).
pub const DYNAMIC_BROKER_KEYS: &[(&str, &str)] = &[
    ("log.cleanup.policy", "cleanup.policy"),
    ("compression.type", "compression.type"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
];

/// The broker-level key that is the default of topic key `topic_key`.
pub fn broker_synonym(topic_key: &str) -> Option<&'static str> {
    DYNAMIC_BROKER_KEYS
        .iter()
        .find(|(_, topic)| *topic == topic_key)
        .map(|(broker, _)| *broker)
}

/// The topic-level key that broker key `broker_key` is the default of.
pub fn topic_synonym(broker_key: &str) -> Option<&'static str> {
    DYNAMIC_BROKER_KEYS
        .iter()
        .find(|(broker, _)| *broker == broker_key)
        .map(|(_, topic)| *topic)
}

/// Checks a broker-level key and value as a dynamic change.
pub fn validate_broker_value(key: &str, value: &str) -> Result<(), String> {
    let Some(topic_key) = topic_synonym(key) else {
        return Err(format!(
            "{key} cannot be changed at run time; dynamic broker configs are: {}",
            DYNAMIC_BROKER_KEYS
                .iter()
                .map(|(broker, _)| *broker)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    validate_config_value(topic_key, value).map_err(|message| message.replace(topic_key, key))
}

/// What a config change is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigResource {
    /// A topic's overrides.
    Topic(String),
    /// Broker-level keys: of one broker (`Some(id)`) or every broker's default (`None`,
    /// Kafka's `--entity-default`, resource name "").
    Broker(Option<i32>),
}

/// One resource's change: keys set and keys removed (back to the next source).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// Keys set to these values.
    pub set: BTreeMap<String, String>,
    /// Keys removed.
    pub removed: BTreeSet<String>,
}

impl ConfigChange {
    /// `values` with this change made.
    pub fn applied_to(&self, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut values = values.clone();
        for key in &self.removed {
            values.remove(key);
        }
        for (key, value) in &self.set {
            values.insert(key.clone(), value.clone());
        }
        values
    }
}

/// Where a dynamic broker value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicSource {
    /// Set for this broker.
    Broker,
    /// Set as every broker's default.
    ClusterDefault,
}

/// The broker-level keys changed at run time, as the metadata log says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicConfigs {
    /// Every broker's default (`--entity-default`).
    cluster: BTreeMap<String, String>,
    /// Per broker id.
    brokers: BTreeMap<i32, BTreeMap<String, String>>,
}

impl DynamicConfigs {
    /// The values set for `broker` (`None`: the cluster-wide default).
    pub fn values(&self, broker: Option<i32>) -> BTreeMap<String, String> {
        match broker {
            None => self.cluster.clone(),
            Some(id) => self.brokers.get(&id).cloned().unwrap_or_default(),
        }
    }

    /// The dynamic value of broker key `key` on broker `node_id`, and where it was set.
    pub fn lookup(&self, node_id: i32, key: &str) -> Option<(&str, DynamicSource)> {
        if let Some(value) = self
            .brokers
            .get(&node_id)
            .and_then(|values| values.get(key))
        {
            return Some((value, DynamicSource::Broker));
        }
        self.cluster
            .get(key)
            .map(|value| (value.as_str(), DynamicSource::ClusterDefault))
    }

    /// Applies a change to `broker`'s values (`None`: the cluster-wide default);
    /// values that do not validate are skipped (see the module docs).
    pub fn alter(&mut self, broker: Option<i32>, change: &ConfigChange) {
        let values = match broker {
            None => &mut self.cluster,
            Some(id) => self.brokers.entry(id).or_default(),
        };
        let mut altered = change.applied_to(values);
        altered.retain(|key, value| validate_broker_value(key, value).is_ok());
        *values = altered;
        self.brokers.retain(|_, values| !values.is_empty());
    }

    /// The log settings broker `node_id`'s topics start from: `static_defaults` with
    /// the dynamic broker values applied.
    pub fn log_defaults(&self, static_defaults: &LogConfig, node_id: i32) -> LogConfig {
        self.as_topic_overrides(node_id).effective(static_defaults)
    }

    /// Broker `node_id`'s `min.insync.replicas`: dynamic, else `static_value`.
    pub fn min_insync_replicas(&self, static_value: i32, node_id: i32) -> i32 {
        self.lookup(node_id, "min.insync.replicas")
            .and_then(|(value, _)| value.parse().ok())
            .unwrap_or(static_value)
    }

    /// The dynamic values that apply to `node_id`, under their topic-level names.
    fn as_topic_overrides(&self, node_id: i32) -> TopicConfig {
        let entries: Vec<(&str, &str)> = DYNAMIC_BROKER_KEYS
            .iter()
            .filter_map(|(broker, topic)| {
                self.lookup(node_id, broker)
                    .map(|(value, _)| (*topic, value))
            })
            .collect();
        TopicConfig::from_entries(entries).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(set: &[(&str, &str)], removed: &[&str]) -> ConfigChange {
        ConfigChange {
            set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            removed: removed.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn a_broker_value_wins_over_the_cluster_default_which_wins_over_the_file() {
        let mut dynamic = DynamicConfigs::default();
        let file = LogConfig::default();
        dynamic.alter(None, &change(&[("log.retention.ms", "1000")], &[]));
        dynamic.alter(Some(2), &change(&[("log.retention.ms", "2000")], &[]));
        assert_eq!(dynamic.log_defaults(&file, 1).retention_ms, 1000);
        assert_eq!(dynamic.log_defaults(&file, 2).retention_ms, 2000);
        assert_eq!(
            dynamic.lookup(2, "log.retention.ms"),
            Some(("2000", DynamicSource::Broker))
        );
        dynamic.alter(Some(2), &change(&[], &["log.retention.ms"]));
        assert_eq!(dynamic.log_defaults(&file, 2).retention_ms, 1000);
        dynamic.alter(None, &change(&[], &["log.retention.ms"]));
        assert_eq!(
            dynamic.log_defaults(&file, 2).retention_ms,
            file.retention_ms
        );
        assert_eq!(dynamic, DynamicConfigs::default());
    }

    #[test]
    fn broker_keys_are_checked_by_their_topic_synonym_and_named_in_errors() {
        assert!(validate_broker_value("log.segment.bytes", "1048576").is_ok());
        let error = validate_broker_value("log.segment.bytes", "big").unwrap_err();
        assert!(error.contains("log.segment.bytes"), "{error}");
        let error = validate_broker_value("node.id", "7").unwrap_err();
        assert!(error.contains("cannot be changed at run time"), "{error}");
        assert_eq!(broker_synonym("segment.ms"), Some("log.roll.ms"));
        assert_eq!(
            topic_synonym("message.max.bytes"),
            Some("max.message.bytes")
        );
    }

    #[test]
    fn min_insync_replicas_follows_the_dynamic_value() {
        let mut dynamic = DynamicConfigs::default();
        assert_eq!(dynamic.min_insync_replicas(1, 1), 1);
        dynamic.alter(None, &change(&[("min.insync.replicas", "2")], &[]));
        assert_eq!(dynamic.min_insync_replicas(1, 1), 2);
    }
}
