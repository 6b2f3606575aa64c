//! IncrementalAlterConfigs and AlterConfigs: configs changed at run time, for topics
//! (their overrides) and for brokers (the dynamic broker-level keys, for one broker or
//! as every broker's default).
//!
//! ```text
//!  request ──► each resource: exists? every key known, every value valid, no key twice?
//!                 refused ─► its result carries the error (the others go on)
//!                 accepted ─► a ConfigChange (keys set, keys removed)
//!          ──► validate_only, or nothing accepted: answered now
//!          ──► one alter-configs record with every accepted change, appended here if
//!              this broker is the controller, else forwarded to it (forward.rs)
//!          ──► answered once this broker applied the record's offset, and only for
//!              the changes the applied state shows (else NOT_CONTROLLER: cut)
//! ```
//!
//! Applying the record (metadata.rs) gives every replica of an affected topic its new
//! settings (node.rs), from its next append or maintenance on.

use std::collections::BTreeMap;

use kafka_protocol::messages::RequestKind;

use crate::acl::Operation;
use crate::config_answer::ConfigsAnswer;
use crate::dynamic_config::{ConfigChange, ConfigResource, topic_synonym, validate_broker_value};
use crate::error::ErrorCode;
use crate::metadata::MetadataRecord;
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo, quorum_voters};
use crate::request::{Request, RequestId};
use crate::topics::{ConfigType, TOPIC_CONFIG_KEYS, default_config_value, validate_config_value};

/// Config resource types (Kafka's `ConfigResource.Type`).
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One key's change as a request asks for it.
enum Op {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

/// One resource of either request.
struct Wanted {
    resource_type: i8,
    name: String,
    ops: Vec<(String, Result<Op, i8>)>,
    /// AlterConfigs replaces every dynamic value of the resource: keys it does not
    /// name are removed.
    replace_all: bool,
}

/// How one resource's keys are checked.
struct Rules {
    known: fn(&str) -> bool,
    validate: fn(&str, &str) -> Result<(), String>,
    is_list: fn(&str) -> bool,
}

impl Node {
    pub(crate) fn handle_incremental_alter_configs(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::IncrementalAlterConfigs(alter) = &request.body else {
            unreachable!("routed by kind")
        };
        let wanted = alter.resources.iter().map(|resource| Wanted {
            resource_type: resource.resource_type,
            name: resource.resource_name.as_str().to_string(),
            ops: resource
                .configs
                .iter()
                .map(|config| {
                    let value = config.value.as_ref().map(|v| v.as_str().to_string());
                    let op = incremental_op(config.config_operation, value);
                    (config.name.as_str().to_string(), op)
                })
                .collect(),
            replace_all: false,
        });
        let wanted: Vec<Wanted> = wanted.collect();
        self.alter_configs(io, id, &request, true, &wanted, alter.validate_only);
    }

    pub(crate) fn handle_alter_configs(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::AlterConfigs(alter) = &request.body else {
            unreachable!("routed by kind")
        };
        let wanted: Vec<Wanted> = alter
            .resources
            .iter()
            .map(|resource| Wanted {
                resource_type: resource.resource_type,
                name: resource.resource_name.as_str().to_string(),
                ops: resource
                    .configs
                    .iter()
                    .map(|config| {
                        // A key left out is removed; a null value is refused, as
                        // Kafka refuses it.
                        let op = match &config.value {
                            Some(value) => Ok(Op::Set(value.as_str().to_string())),
                            None => Err(OP_SET),
                        };
                        (config.name.as_str().to_string(), op)
                    })
                    .collect(),
                replace_all: true,
            })
            .collect();
        self.alter_configs(io, id, &request, false, &wanted, alter.validate_only);
    }

    /// Checks every resource, then writes the accepted changes as one record.
    fn alter_configs(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: &Request,
        incremental: bool,
        wanted: &[Wanted],
        validate_only: bool,
    ) {
        let mut answer = ConfigsAnswer::new(incremental);
        for resource in wanted {
            let refusal = self.config_resource_refusal(
                request,
                Operation::AlterConfigs,
                resource.resource_type,
                &resource.name,
            );
            let result = match refusal {
                Some(refused) => Err(refused),
                None => self.config_change(resource),
            }
            .map(|change| change.filter(|_| !validate_only));
            answer.push(resource.resource_type, &resource.name, result);
        }
        let changes = answer.changes();
        if changes.is_empty() {
            io.respond(id, answer.into_response());
            return;
        }
        match self.append_or_forward(io, None, MetadataRecord::AlterConfigs { changes }) {
            Ok(written) => self.wait_for_creation(id, written, MetadataWait::Configs(answer)),
            Err(error) => {
                answer.fail_written(error.error_code(), &error.to_string());
                io.respond(id, answer.into_response());
            }
        }
    }

    /// The checked change one resource asks for; `None` if it names no key.
    fn config_change(
        &self,
        wanted: &Wanted,
    ) -> Result<Option<(ConfigResource, ConfigChange)>, (ErrorCode, String)> {
        let name = wanted.name.as_str();
        let (resource, current, rules) = match wanted.resource_type {
            RESOURCE_TOPIC => {
                let Some(topic) = self.cluster.topics.get(name) else {
                    return Err((
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic {name} does not exist"),
                    ));
                };
                let resource = ConfigResource::Topic(name.to_string());
                (resource, topic.config.overrides().clone(), TOPIC_RULES)
            }
            RESOURCE_BROKER => {
                let broker = self.known_broker(name)?;
                let current = self.cluster.dynamic.values(broker);
                (ConfigResource::Broker(broker), current, BROKER_RULES)
            }
            other => {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!(
                        "config resource type {other} cannot be altered; topics (2) and brokers (4) can"
                    ),
                ));
            }
        };
        let defaults = |key: &str| self.list_default(&resource, key);
        let change = change_from_ops(wanted, &current, &rules, defaults)?;
        // A change this broker's applied state already shows is written all the same:
        // that state may lag what the controller will apply before the change (one
        // made through another broker, or appended and not yet committed), and "done"
        // answered from it would let that older value stand after this change was
        // acknowledged.
        let empty = change.set.is_empty() && change.removed.is_empty();
        Ok((!empty).then_some((resource, change)))
    }

    /// A broker resource's name: "" for every broker's default, else a broker of the
    /// cluster.
    fn known_broker(&self, name: &str) -> Result<Option<i32>, (ErrorCode, String)> {
        if name.is_empty() {
            return Ok(None);
        }
        let voters = quorum_voters(&self.config);
        match name.parse::<i32>() {
            Ok(id) if id == self.config.node_id || voters.contains(&id) => Ok(Some(id)),
            _ => Err((
                ErrorCode::InvalidRequest,
                format!("{name:?} is not a broker of this cluster"),
            )),
        }
    }

    /// The value an APPEND or SUBTRACT on list key `key` starts from when the
    /// resource does not set it: the default it inherits.
    fn list_default(&self, resource: &ConfigResource, key: &str) -> String {
        let topic_key = match resource {
            ConfigResource::Topic(_) => key,
            ConfigResource::Broker(_) => topic_synonym(key).unwrap_or(key),
        };
        let min_insync = self.config.min_insync_replicas;
        default_config_value(topic_key, &self.log_defaults(), min_insync)
    }
}

/// IncrementalAlterConfigs' operation `code` with its value; `Err(code)` for an
/// unknown operation.
fn incremental_op(code: i8, value: Option<String>) -> Result<Op, i8> {
    match (code, value) {
        (OP_DELETE, _) => Ok(Op::Delete),
        (OP_SET, Some(value)) => Ok(Op::Set(value)),
        (OP_APPEND, Some(value)) => Ok(Op::Append(value)),
        (OP_SUBTRACT, Some(value)) => Ok(Op::Subtract(value)),
        // A null value: deleting is the only operation that needs none.
        (code, _) => Err(code),
    }
}

const TOPIC_RULES: Rules = Rules {
    known: |key| TOPIC_CONFIG_KEYS.iter().any(|k| k.name == key),
    validate: validate_config_value,
    is_list: |key| {
        TOPIC_CONFIG_KEYS
            .iter()
            .any(|k| k.name == key && k.config_type == ConfigType::List)
    },
};

const BROKER_RULES: Rules = Rules {
    known: |key| topic_synonym(key).is_some(),
    validate: validate_broker_value,
    is_list: |key| topic_synonym(key).is_some_and(|topic| (TOPIC_RULES.is_list)(topic)),
};

/// The change `wanted`'s operations make to `current` (the resource's own values);
/// `default(key)` is what a list key inherits when `current` does not set it.
fn change_from_ops(
    wanted: &Wanted,
    current: &BTreeMap<String, String>,
    rules: &Rules,
    default: impl Fn(&str) -> String,
) -> Result<ConfigChange, (ErrorCode, String)> {
    let invalid = |message: String| (ErrorCode::InvalidConfig, message);
    let mut change = ConfigChange::default();
    let mut seen = Vec::new();
    for (key, op) in &wanted.ops {
        if seen.contains(&key) {
            let message = format!("config key {key} appears twice");
            return Err((ErrorCode::InvalidRequest, message));
        }
        seen.push(key);
        if !(rules.known)(key) {
            return Err(invalid(format!("unknown or read-only config {key:?}")));
        }
        let op = op.as_ref().map_err(|code| {
            let message = format!("operation {code} on {key} is unknown or needs a value");
            (ErrorCode::InvalidRequest, message)
        })?;
        let list_op = matches!(op, Op::Append(_) | Op::Subtract(_));
        if list_op && !(rules.is_list)(key) {
            return Err(invalid(format!(
                "{key} is not a list: it cannot be appended to or subtracted from"
            )));
        }
        let value = match op {
            Op::Delete => {
                change.removed.insert(key.clone());
                continue;
            }
            Op::Set(value) => value.clone(),
            Op::Append(value) | Op::Subtract(value) => {
                let base = current.get(key).cloned().unwrap_or_else(|| default(key));
                edit_list(&base, value, matches!(op, Op::Append(_)))
            }
        };
        (rules.validate)(key, &value).map_err(invalid)?;
        change.set.insert(key.clone(), value);
    }
    if wanted.replace_all {
        let named = |key: &String| wanted.ops.iter().any(|(k, _)| k == key);
        change
            .removed
            .extend(current.keys().filter(|key| !named(key)).cloned());
    }
    Ok(change)
}

/// A comma-separated list with `items` added (each once) or removed.
fn edit_list(base: &str, items: &str, append: bool) -> String {
    let mut list: Vec<&str> = base.split(',').filter(|item| !item.is_empty()).collect();
    for item in items.split(',').filter(|item| !item.is_empty()) {
        if append && !list.contains(&item) {
            list.push(item);
        } else if !append {
            list.retain(|existing| *existing != item);
        }
    }
    list.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(ops: Vec<(&str, Op)>, replace_all: bool) -> Wanted {
        Wanted {
            resource_type: RESOURCE_TOPIC,
            name: "t".into(),
            ops: ops
                .into_iter()
                .map(|(k, op)| (k.to_string(), Ok(op)))
                .collect(),
            replace_all,
        }
    }

    fn current(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_and_delete_make_a_change_and_bad_values_name_their_key() {
        let ops = vec![
            ("retention.ms", Op::Set("1000".into())),
            ("segment.ms", Op::Delete),
        ];
        let change = change_from_ops(&wanted(ops, false), &current(&[]), &TOPIC_RULES, |_| {
            String::new()
        })
        .expect("valid");
        assert_eq!(
            change.set.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert!(change.removed.contains("segment.ms"));
        let ops = vec![("retention.ms", Op::Set("soon".into()))];
        let (code, message) =
            change_from_ops(&wanted(ops, false), &current(&[]), &TOPIC_RULES, |_| {
                String::new()
            })
            .expect_err("invalid");
        assert_eq!(code, ErrorCode::InvalidConfig);
        assert!(message.contains("retention.ms"), "{message}");
    }

    #[test]
    fn unknown_keys_repeated_keys_and_list_ops_on_scalars_are_refused() {
        let refused = |ops: Vec<(&str, Op)>| {
            change_from_ops(&wanted(ops, false), &current(&[]), &TOPIC_RULES, |_| {
                "delete".into()
            })
            .expect_err("refused")
            .0
        };
        assert_eq!(
            refused(vec![("no.such", Op::Delete)]),
            ErrorCode::InvalidConfig
        );
        assert_eq!(
            refused(vec![
                ("retention.ms", Op::Delete),
                ("retention.ms", Op::Delete)
            ]),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            refused(vec![("retention.ms", Op::Append("5".into()))]),
            ErrorCode::InvalidConfig
        );
    }

    #[test]
    fn alter_configs_replaces_every_value_it_does_not_name() {
        let ops = vec![("retention.ms", Op::Set("5".into()))];
        let existing = current(&[("retention.ms", "1"), ("segment.ms", "9")]);
        let change = change_from_ops(&wanted(ops, true), &existing, &TOPIC_RULES, |_| {
            String::new()
        })
        .expect("valid");
        assert_eq!(
            change.applied_to(&existing),
            current(&[("retention.ms", "5")])
        );
    }

    #[test]
    fn lists_are_appended_to_once_and_subtracted_from() {
        assert_eq!(edit_list("delete", "compact", true), "delete,compact");
        assert_eq!(
            edit_list("delete,compact", "compact", true),
            "delete,compact"
        );
        assert_eq!(edit_list("delete,compact", "delete", false), "compact");
    }
}
