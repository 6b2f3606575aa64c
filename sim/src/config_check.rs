//! What the config-change workload asked for, and the checker of the brokers'
//! configuration against it.
//!
//! The config client (`config_changes.rs`) sends one IncrementalAlterConfigs at a
//! time, so its operations are ordered. Each is recorded here ([`ConfigHistory`]) with
//! the keys it sets or deletes and how it ended: acknowledged, failed (refused before
//! anything was written) or indefinite (timed out, lost, or an error a written record
//! may hide). The rules, for each resource and key the workload touched:
//!
//! - (a) *a broker's value is explained by the history*: it is the value of the last
//!   acknowledged operation on the key (unset before any), or of an indefinite (or
//!   still pending) operation on it, or of one whose request the network delivered
//!   twice. Such an operation anywhere in the history counts, not only after the last
//!   acknowledged one: a forwarded change may reach the controller after the client
//!   gave up and sent the next one, and a second copy of a request is applied again
//!   when it arrives. The value of a failed operation delivered once explains nothing.
//! - (b) *brokers agree*: every broker that applied the metadata log as far as the
//!   controller committed holds the same topic overrides and dynamic broker values.
//! - (c) *replicas run with what was applied*: every replica of every topic on a
//!   running broker has the log settings its topic's overrides and the broker's
//!   dynamic defaults give (`TopicConfig::effective`).
//!
//! (a) and (b) run on the brokers caught up at the end and (c) on all of them; (a) also
//! runs on a lone broker each time it opens, where everything durable is applied: a
//! restarted broker must come back with every change it acknowledged.

use std::collections::{BTreeMap, BTreeSet};

use odradek_log::LogConfig;
use odradek_replication::Node;
use odradek_replication::dynamic_config::ConfigResource;

use crate::node::SimNode;

/// How an operation ended, as far as the client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigOutcome {
    /// In flight.
    Pending,
    /// Answered without error: applied.
    Acknowledged,
    /// Refused before its record was written.
    Failed,
    /// Maybe applied, maybe not.
    Indefinite,
}

/// One IncrementalAlterConfigs the client sent: one resource, keys set and deleted.
#[derive(Clone, Debug)]
struct ConfigOp {
    resource: ConfigResource,
    /// Key -> the value it is set to, `None` for a delete.
    keys: Vec<(String, Option<String>)>,
    outcome: ConfigOutcome,
    /// The network delivered its request more than once: a copy may be applied after
    /// the answer, and after later operations (the request is not idempotent).
    duplicated: bool,
}

/// The config client's operations, in the order it sent them.
#[derive(Debug, Default)]
pub struct ConfigHistory {
    ops: Vec<ConfigOp>,
    /// The operation each request (by correlation id) carries.
    requests: BTreeMap<u64, usize>,
}

/// The values a key may hold: the last acknowledged one and every maybe-applied one.
#[derive(Debug, Default)]
struct Allowed {
    acknowledged: Option<String>,
    maybe: BTreeSet<Option<String>>,
}

impl Allowed {
    fn contains(&self, value: &Option<String>) -> bool {
        *value == self.acknowledged || self.maybe.contains(value)
    }
}

impl ConfigHistory {
    /// Records an operation on `resource` (key -> value, `None` to delete); returns
    /// its index.
    pub fn invoke(
        &mut self,
        resource: ConfigResource,
        keys: Vec<(String, Option<String>)>,
    ) -> usize {
        self.ops.push(ConfigOp {
            resource,
            keys,
            outcome: ConfigOutcome::Pending,
            duplicated: false,
        });
        self.ops.len() - 1
    }

    /// Request `correlation` carries operation `index`.
    pub fn sent(&mut self, correlation: u64, index: usize) {
        self.requests.insert(correlation, index);
    }

    /// The network delivers request `correlation` more than once.
    pub fn duplicated(&mut self, correlation: u64) {
        if let Some(&index) = self.requests.get(&correlation) {
            self.ops[index].duplicated = true;
        }
    }

    /// Operation `index` ended.
    pub fn complete(&mut self, index: usize, outcome: ConfigOutcome) {
        let op = &mut self.ops[index];
        assert_eq!(
            op.outcome,
            ConfigOutcome::Pending,
            "an operation ended twice"
        );
        op.outcome = outcome;
    }

    /// Operations by outcome, for the report: acknowledged, failed, indefinite.
    pub fn summary(&self) -> String {
        let count = |outcome| self.ops.iter().filter(|op| op.outcome == outcome).count();
        format!(
            "{} config changes: {} acknowledged, {} failed, {} indefinite",
            self.ops.len(),
            count(ConfigOutcome::Acknowledged),
            count(ConfigOutcome::Failed),
            count(ConfigOutcome::Indefinite)
        )
    }

    /// Per resource and key, the values rule (a) allows.
    fn allowed(&self) -> BTreeMap<(ConfigResource, String), Allowed> {
        let mut allowed: BTreeMap<(ConfigResource, String), Allowed> = BTreeMap::new();
        for op in &self.ops {
            for (key, value) in &op.keys {
                let entry = allowed
                    .entry((op.resource.clone(), key.clone()))
                    .or_default();
                // A copy is handled on its own: one refused (a broker that did not
                // know the topic yet) says nothing of the other.
                if op.duplicated {
                    entry.maybe.insert(value.clone());
                }
                match op.outcome {
                    ConfigOutcome::Acknowledged => entry.acknowledged = value.clone(),
                    ConfigOutcome::Pending | ConfigOutcome::Indefinite => {
                        entry.maybe.insert(value.clone());
                    }
                    ConfigOutcome::Failed => {}
                }
            }
        }
        allowed
    }

    /// What the history did to one key, for a violation's report.
    fn describe_key(&self, resource: &ConfigResource, key: &str) -> String {
        let steps: Vec<String> = self
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.resource == *resource)
            .filter_map(|(index, op)| {
                let (_, value) = op.keys.iter().find(|(k, _)| k == key)?;
                Some(format!("#{index} {value:?} {:?}", op.outcome))
            })
            .collect();
        steps.join(", ")
    }

    /// Rule (a) on `node`'s applied configuration.
    pub fn check_node(&self, who: &str, node: &Node) -> Result<(), String> {
        for ((resource, key), allowed) in self.allowed() {
            let values = applied_values(node, &resource);
            let value = values.get(&key).cloned();
            if !allowed.contains(&value) {
                return Err(format!(
                    "{who} has {key} = {value:?} on {resource:?}; the config changes on it were: {}",
                    self.describe_key(&resource, &key)
                ));
            }
        }
        Ok(())
    }
}

/// The values `node` applied for `resource`: a topic's overrides (none if it does
/// not know the topic), or the dynamic values of a broker or of the cluster default.
fn applied_values(node: &Node, resource: &ConfigResource) -> BTreeMap<String, String> {
    match resource {
        ConfigResource::Topic(name) => node
            .cluster()
            .topics
            .get(name)
            .map(|topic| topic.config.overrides().clone())
            .unwrap_or_default(),
        ConfigResource::Broker(id) => node.cluster().dynamic.values(*id),
    }
}

/// Rules (a) and (b) on the brokers that applied everything the controller committed
/// (`controller_high_watermark`), over `resources`.
pub fn check_caught_up(
    history: &ConfigHistory,
    nodes: &[SimNode],
    resources: &[ConfigResource],
    controller_high_watermark: i64,
) -> Result<(), String> {
    let mut first: Option<(u32, Vec<BTreeMap<String, String>>)> = None;
    for sim_node in nodes {
        let Some(node) = sim_node.node.as_ref() else {
            continue;
        };
        let metadata = node.metadata();
        if !metadata.is_leader() && metadata.applied_offset() < controller_high_watermark {
            continue;
        }
        let who = format!(
            "node {} (metadata applied to offset {}) at the end",
            sim_node.index,
            metadata.applied_offset()
        );
        history.check_node(&who, node)?;
        let values: Vec<_> = resources
            .iter()
            .map(|resource| applied_values(node, resource))
            .collect();
        match &first {
            None => first = Some((sim_node.index, values)),
            Some((other, expected)) => {
                if let Some(at) = (0..resources.len()).find(|&at| values[at] != expected[at]) {
                    return Err(format!(
                        "{who} has {:?} on {:?}, node {other} (as far along) has {:?}",
                        values[at], resources[at], expected[at]
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Rule (c) on every running broker.
pub fn check_replica_configs(nodes: &[SimNode]) -> Result<(), String> {
    for sim_node in nodes {
        let Some(node) = sim_node.node.as_ref() else {
            continue;
        };
        let cluster = node.cluster();
        let defaults = cluster
            .dynamic
            .log_defaults(&node.config().log, node.config().node_id);
        for (key, replica) in node.partitions() {
            let Some(topic) = cluster.topics.get(&key.topic) else {
                continue;
            };
            let running = replica.log().config();
            let expected = LogConfig {
                // How the replica was opened, not a setting: a replicated partition
                // keeps a synced-through record (`Replica::open`), whatever changes.
                synced_record: running.synced_record,
                ..topic.config.effective(&defaults)
            };
            if *running != expected {
                return Err(format!(
                    "node {}'s replica of {}-{} runs with {running:?}, but its topic's applied configuration gives {expected:?}",
                    sim_node.index, key.topic, key.partition
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> ConfigResource {
        ConfigResource::Topic("t".to_string())
    }

    fn set(value: &str) -> Vec<(String, Option<String>)> {
        vec![("segment.ms".to_string(), Some(value.to_string()))]
    }

    #[test]
    fn the_last_acknowledged_value_and_every_maybe_applied_one_are_allowed() {
        let mut history = ConfigHistory::default();
        let first = history.invoke(topic(), set("1"));
        history.complete(first, ConfigOutcome::Indefinite);
        let second = history.invoke(topic(), set("2"));
        history.complete(second, ConfigOutcome::Acknowledged);
        let third = history.invoke(topic(), set("3"));
        history.complete(third, ConfigOutcome::Failed);
        let allowed = history.allowed();
        let key = &allowed[&(topic(), "segment.ms".to_string())];
        assert!(key.contains(&Some("1".to_string())));
        assert!(key.contains(&Some("2".to_string())));
        assert!(!key.contains(&Some("3".to_string())));
        assert!(!key.contains(&None));
        let deleted = history.invoke(topic(), vec![("segment.ms".to_string(), None)]);
        history.complete(deleted, ConfigOutcome::Acknowledged);
        let allowed = history.allowed();
        let key = &allowed[&(topic(), "segment.ms".to_string())];
        assert!(key.contains(&None));
        assert!(!key.contains(&Some("2".to_string())));
    }
}
