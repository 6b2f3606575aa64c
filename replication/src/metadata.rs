//! The cluster metadata log and the state it builds.
//!
//! Every change to cluster metadata (a topic created or deleted, partitions added,
//! a block of producer ids handed out) is first appended as a record to the internal
//! partition `__cluster_metadata-0`, the way KRaft does it. A change takes effect only
//! once its record is durable: the node applies records to [`ClusterState`] in offset
//! order as the log's durable offset passes them, and replays the whole log on start.
//! In the replicated cluster this log becomes a Raft group; its records stay the same.
//!
//! A record's value is one line of text, so `odradek dump-log` shows it as it is:
//!
//! ```text
//! create-topic name=orders id=5f0c…e1 partitions=3 config.retention.ms=60000
//! delete-topic name=orders id=5f0c…e1
//! create-partitions name=orders partitions=6
//! producer-ids next=2000
//! cluster-init cluster-id=q0b…7 node-id=1
//! create-acls b0.type=TOPIC b0.pattern=LITERAL b0.name=orders b0.principal=User:alice b0.host=* b0.operation=READ b0.permission=ALLOW
//! ```
//! Values are %-escaped (`%`, space, `=`, and control bytes as `%XX`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use odradek_log::batch;
use odradek_log::io::{Disk, DiskCompletion, IoId};
use odradek_log::partition::{
    AppendError, AppendOutcome, LogConfig, LogError, PartitionLog, ReadError,
};

use crate::acl::{AclBinding, AclBindings, Operation, PatternType, Permission, ResourceType};
use crate::commit_point::{CommitPoint, read_commit_point, write_commit_point};
use crate::dynamic_config::{ConfigChange, ConfigResource, DynamicConfigs};
use crate::peer::{GroupId, broker_id};
use crate::raft::{Raft, RaftConfig};
use crate::replica::{Replica, ReplicaInit, ReplicaOpenError};
use crate::scram::{
    ScramCredential, ScramDeletion, ScramMechanism, ScramUpsertion, UserScramCredentials, from_hex,
    to_hex,
};
use crate::topics::{METADATA_TOPIC, Topic, TopicConfig, TopicId, TopicPartition, partition_dir};

/// Producer ids are handed out in blocks this large; one metadata record per block.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Bytes read per step when replaying the metadata log.
const REPLAY_READ_BYTES: u32 = 1 << 20;

/// One change to cluster metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    /// The first record of a data directory: who it belongs to.
    ClusterInit {
        /// The cluster id clients see in Metadata responses.
        cluster_id: String,
        /// The node that owns this data directory.
        node_id: i32,
    },
    /// A topic was created.
    CreateTopic {
        /// Its name.
        name: String,
        /// Its id.
        id: TopicId,
        /// Its partition count.
        partitions: i32,
        /// Its configuration overrides.
        config: BTreeMap<String, String>,
        /// The brokers holding each partition's replicas, preferred leader first.
        /// Empty in records written before replication: every partition then lives
        /// on the node that wrote the record alone.
        replicas: Vec<Vec<i32>>,
    },
    /// A topic was deleted.
    DeleteTopic {
        /// Its name.
        name: String,
        /// Its id (so a later topic of the same name is not confused with it).
        id: TopicId,
    },
    /// A topic grew to `partitions` partitions.
    CreatePartitions {
        /// The topic's name.
        name: String,
        /// The new total.
        partitions: i32,
        /// The replicas of each new partition (see `CreateTopic::replicas`).
        replicas: Vec<Vec<i32>>,
    },
    /// Producer ids below `next` are reserved; the node may hand out ids from the
    /// previous reservation up to `next`.
    ProducerIds {
        /// One past the last reserved id.
        next: i64,
    },
    /// Configs changed at run time (IncrementalAlterConfigs, AlterConfigs): every
    /// resource of one request, applied together.
    AlterConfigs {
        /// Each resource and its change, in the request's order.
        changes: Vec<(ConfigResource, ConfigChange)>,
    },
    /// DeleteRecords: each partition's records below its offset are gone for clients,
    /// on every replica (offsets only move forward).
    DeleteRecords {
        /// The partitions of one request, in its order.
        deletions: Vec<RecordsDeletion>,
    },
    /// CreateAcls: these bindings are in force (adding one twice changes nothing).
    CreateAcls {
        /// The bindings of one request, in its order.
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: these bindings (the ones the request's filters matched where it was
    /// received) are no longer in force.
    DeleteAcls {
        /// The bindings to remove.
        bindings: Vec<AclBinding>,
    },
    /// Users' SCRAM credentials set or removed (AlterUserScramCredentials, `format
    /// --add-scram`): one request's changes, applied together.
    ScramCredentials {
        /// Credentials set.
        upsertions: Vec<ScramUpsertion>,
        /// Credentials removed.
        deletions: Vec<ScramDeletion>,
    },
}

impl MetadataRecord {
    /// The record's value as it is stored.
    pub fn encode(&self) -> String {
        let mut line = String::new();
        match self {
            MetadataRecord::ClusterInit {
                cluster_id,
                node_id,
            } => {
                line.push_str("cluster-init");
                field(&mut line, "cluster-id", cluster_id);
                field(&mut line, "node-id", &node_id.to_string());
            }
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                config,
                replicas,
            } => create_topic_fields(&mut line, name, *id, *partitions, config, replicas),
            MetadataRecord::DeleteTopic { name, id } => {
                line.push_str("delete-topic");
                field(&mut line, "name", name);
                field(&mut line, "id", &id.to_hex());
            }
            MetadataRecord::CreatePartitions {
                name,
                partitions,
                replicas,
            } => {
                line.push_str("create-partitions");
                field(&mut line, "name", name);
                field(&mut line, "partitions", &partitions.to_string());
                replicas_field(&mut line, replicas);
            }
            MetadataRecord::ProducerIds { next } => {
                line.push_str("producer-ids");
                field(&mut line, "next", &next.to_string());
            }
            MetadataRecord::AlterConfigs { changes } => {
                line.push_str("alter-configs");
                for (index, (resource, change)) in changes.iter().enumerate() {
                    config_change_fields(&mut line, index, resource, change);
                }
            }
            MetadataRecord::DeleteRecords { deletions } => {
                line.push_str("delete-records");
                deletion_fields(&mut line, deletions);
            }
            MetadataRecord::CreateAcls { bindings } => {
                line.push_str("create-acls");
                acl_fields(&mut line, bindings);
            }
            MetadataRecord::DeleteAcls { bindings } => {
                line.push_str("delete-acls");
                acl_fields(&mut line, bindings);
            }
            MetadataRecord::ScramCredentials {
                upsertions,
                deletions,
            } => {
                line.push_str("scram-credentials");
                scram_fields(&mut line, upsertions, deletions);
            }
        }
        line
    }

    /// Parses [`MetadataRecord::encode`]'s output.
    pub fn decode(line: &str) -> Result<MetadataRecord, String> {
        let mut words = line.split(' ');
        let kind = words.next().unwrap_or_default();
        let mut fields = BTreeMap::new();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("field without '=': {word:?}"))?;
            fields.insert(unescape(key)?, unescape(value)?);
        }
        let text = |key: &str| {
            fields
                .get(key)
                .cloned()
                .ok_or_else(|| format!("{kind}: missing {key}"))
        };
        let number = |key: &str| -> Result<i64, String> {
            text(key)?
                .parse::<i64>()
                .map_err(|_| format!("{kind}: {key} is not a number"))
        };
        let replicas = || -> Result<Vec<Vec<i32>>, String> {
            match fields.get("replicas") {
                None => Ok(Vec::new()),
                Some(text) => parse_replicas(text).ok_or_else(|| format!("{kind}: bad replicas")),
            }
        };
        let topic_id = |key: &str| -> Result<TopicId, String> {
            TopicId::from_hex(&text(key)?).ok_or_else(|| format!("{kind}: bad topic id"))
        };
        let record = match kind {
            "cluster-init" => MetadataRecord::ClusterInit {
                cluster_id: text("cluster-id")?,
                node_id: number("node-id")? as i32,
            },
            "create-topic" => MetadataRecord::CreateTopic {
                name: text("name")?,
                id: topic_id("id")?,
                partitions: number("partitions")? as i32,
                config: config_fields(&fields),
                replicas: replicas()?,
            },
            "delete-topic" => MetadataRecord::DeleteTopic {
                name: text("name")?,
                id: topic_id("id")?,
            },
            "create-partitions" => MetadataRecord::CreatePartitions {
                name: text("name")?,
                partitions: number("partitions")? as i32,
                replicas: replicas()?,
            },
            "producer-ids" => MetadataRecord::ProducerIds {
                next: number("next")?,
            },
            "alter-configs" => MetadataRecord::AlterConfigs {
                changes: parse_config_changes(&fields)?,
            },
            "delete-records" => parse_deletions(&fields)?,
            "create-acls" | "delete-acls" => acl_record(kind, parse_acls(&fields)?),
            "scram-credentials" => parse_scram(&fields)?,
            other => return Err(format!("unknown metadata record kind {other:?}")),
        };
        Ok(record)
    }
}

/// A create-topic record: its kind, then its fields.
fn create_topic_fields(
    line: &mut String,
    name: &str,
    id: TopicId,
    partitions: i32,
    config: &BTreeMap<String, String>,
    replicas: &[Vec<i32>],
) {
    line.push_str("create-topic");
    field(line, "name", name);
    field(line, "id", &id.to_hex());
    field(line, "partitions", &partitions.to_string());
    replicas_field(line, replicas);
    for (key, value) in config {
        field(line, &format!("config.{key}"), value);
    }
}

/// A delete-records record's fields: `d0.name`, `d0.id`, `d0.partition`, `d0.offset`
/// per partition.
fn deletion_fields(line: &mut String, deletions: &[RecordsDeletion]) {
    for (index, deletion) in deletions.iter().enumerate() {
        field(line, &format!("d{index}.name"), &deletion.topic);
        field(line, &format!("d{index}.id"), &deletion.id.to_hex());
        let partition = deletion.partition.to_string();
        field(line, &format!("d{index}.partition"), &partition);
        field(
            line,
            &format!("d{index}.offset"),
            &deletion.offset.to_string(),
        );
    }
}

/// A scram-credentials record's fields: `u0.user=alice u0.mechanism=SCRAM-SHA-256
/// u0.salt=<hex> u0.stored-key=<hex> u0.server-key=<hex> u0.iterations=8192` per
/// upsertion, `d0.user=bob d0.mechanism=SCRAM-SHA-512` per deletion.
fn scram_fields(line: &mut String, upsertions: &[ScramUpsertion], deletions: &[ScramDeletion]) {
    for (index, upsertion) in upsertions.iter().enumerate() {
        let credential = &upsertion.credential;
        field(line, &format!("u{index}.user"), &upsertion.user);
        field(
            line,
            &format!("u{index}.mechanism"),
            upsertion.mechanism.name(),
        );
        field(line, &format!("u{index}.salt"), &to_hex(&credential.salt));
        field(
            line,
            &format!("u{index}.stored-key"),
            &to_hex(&credential.stored_key),
        );
        field(
            line,
            &format!("u{index}.server-key"),
            &to_hex(&credential.server_key),
        );
        let iterations = credential.iterations.to_string();
        field(line, &format!("u{index}.iterations"), &iterations);
    }
    for (index, deletion) in deletions.iter().enumerate() {
        field(line, &format!("d{index}.user"), &deletion.user);
        field(
            line,
            &format!("d{index}.mechanism"),
            deletion.mechanism.name(),
        );
    }
}

/// Parses [`scram_fields`]' output.
fn parse_scram(fields: &BTreeMap<String, String>) -> Result<MetadataRecord, String> {
    let get = |key: String| {
        fields
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("scram-credentials: missing {key}"))
    };
    let mechanism = |key: String| {
        ScramMechanism::from_name(&get(key.clone())?)
            .ok_or_else(|| format!("scram-credentials: bad {key}"))
    };
    let bytes = |key: String| {
        from_hex(&get(key.clone())?).ok_or_else(|| format!("scram-credentials: bad {key}"))
    };
    let mut upsertions = Vec::new();
    while fields.contains_key(&format!("u{}.user", upsertions.len())) {
        let index = upsertions.len();
        let iterations = get(format!("u{index}.iterations"))?
            .parse::<i32>()
            .map_err(|_| "scram-credentials: bad iterations".to_string())?;
        upsertions.push(ScramUpsertion {
            user: get(format!("u{index}.user"))?,
            mechanism: mechanism(format!("u{index}.mechanism"))?,
            credential: ScramCredential {
                salt: bytes(format!("u{index}.salt"))?,
                stored_key: bytes(format!("u{index}.stored-key"))?,
                server_key: bytes(format!("u{index}.server-key"))?,
                iterations,
            },
        });
    }
    let mut deletions = Vec::new();
    while fields.contains_key(&format!("d{}.user", deletions.len())) {
        let index = deletions.len();
        deletions.push(ScramDeletion {
            user: get(format!("d{index}.user"))?,
            mechanism: mechanism(format!("d{index}.mechanism"))?,
        });
    }
    let expected = 6 * upsertions.len() + 2 * deletions.len();
    if fields.len() != expected {
        return Err("scram-credentials: unexpected fields".to_string());
    }
    Ok(MetadataRecord::ScramCredentials {
        upsertions,
        deletions,
    })
}

/// Resource `index` of an alter-configs record: `r0.topic=t` or `r0.broker=2` (empty:
/// every broker's default), then `r0.set.key=value` and `r0.unset.key=` fields.
fn config_change_fields(
    line: &mut String,
    index: usize,
    resource: &ConfigResource,
    change: &ConfigChange,
) {
    match resource {
        ConfigResource::Topic(name) => field(line, &format!("r{index}.topic"), name),
        ConfigResource::Broker(id) => {
            let id = id.map(|id| id.to_string()).unwrap_or_default();
            field(line, &format!("r{index}.broker"), &id);
        }
    }
    for (key, value) in &change.set {
        field(line, &format!("r{index}.set.{key}"), value);
    }
    for key in &change.removed {
        field(line, &format!("r{index}.unset.{key}"), "");
    }
}

/// The resources of an alter-configs record's fields, in index order.
fn parse_config_changes(
    fields: &BTreeMap<String, String>,
) -> Result<Vec<(ConfigResource, ConfigChange)>, String> {
    let mut changes: BTreeMap<usize, (Option<ConfigResource>, ConfigChange)> = BTreeMap::new();
    for (key, value) in fields {
        let (index, rest) = key
            .strip_prefix('r')
            .and_then(|key| key.split_once('.'))
            .and_then(|(index, rest)| Some((index.parse::<usize>().ok()?, rest)))
            .ok_or_else(|| format!("alter-configs: bad field {key:?}"))?;
        let (resource, change) = changes.entry(index).or_default();
        if rest == "topic" {
            *resource = Some(ConfigResource::Topic(value.clone()));
        } else if rest == "broker" {
            let id = match value.as_str() {
                "" => None,
                id => Some(id.parse().map_err(|_| "alter-configs: bad broker id")?),
            };
            *resource = Some(ConfigResource::Broker(id));
        } else if let Some(config) = rest.strip_prefix("set.") {
            change.set.insert(config.to_string(), value.clone());
        } else if let Some(config) = rest.strip_prefix("unset.") {
            change.removed.insert(config.to_string());
        } else {
            return Err(format!("alter-configs: bad field {key:?}"));
        }
    }
    changes
        .into_values()
        .map(|(resource, change)| {
            resource
                .map(|resource| (resource, change))
                .ok_or_else(|| "alter-configs: a change names no resource".to_string())
        })
        .collect()
}

/// The deletions of a delete-records record's `dN.name`, `dN.id`, `dN.partition` and
/// `dN.offset` fields, in index order.
fn parse_deletions(fields: &BTreeMap<String, String>) -> Result<MetadataRecord, String> {
    let mut by_index: BTreeMap<usize, BTreeMap<&str, &str>> = BTreeMap::new();
    for (key, value) in fields {
        let (index, name) = key
            .strip_prefix('d')
            .and_then(|key| key.split_once('.'))
            .and_then(|(index, name)| Some((index.parse::<usize>().ok()?, name)))
            .ok_or_else(|| format!("delete-records: bad field {key:?}"))?;
        by_index.entry(index).or_default().insert(name, value);
    }
    by_index
        .into_values()
        .map(|parts| {
            let deletion = RecordsDeletion {
                topic: parts.get("name")?.to_string(),
                id: TopicId::from_hex(parts.get("id")?)?,
                partition: parts.get("partition")?.parse().ok().filter(|p| *p >= 0)?,
                offset: parts.get("offset")?.parse().ok().filter(|o| *o >= 0)?,
            };
            Some(deletion)
        })
        .collect::<Option<Vec<_>>>()
        .map(|deletions| MetadataRecord::DeleteRecords { deletions })
        .ok_or_else(|| "delete-records: a deletion lacks a field or has a bad one".to_string())
}

/// A create-topic record's `config.key=value` fields, as key and value.
fn config_fields(fields: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let configs = fields.iter().filter_map(|(key, value)| {
        let key = key.strip_prefix("config.")?;
        Some((key.to_string(), value.clone()))
    });
    configs.collect()
}

/// A create-acls (`kind`) or delete-acls record of `bindings`.
fn acl_record(kind: &str, bindings: Vec<AclBinding>) -> MetadataRecord {
    if kind == "create-acls" {
        MetadataRecord::CreateAcls { bindings }
    } else {
        MetadataRecord::DeleteAcls { bindings }
    }
}

/// Binding `N` of a create-acls or delete-acls record as `bN.type`, `bN.pattern`,
/// `bN.name`, `bN.principal`, `bN.host`, `bN.operation` and `bN.permission` (Kafka's
/// names of the enums).
fn acl_fields(line: &mut String, bindings: &[AclBinding]) {
    for (index, binding) in bindings.iter().enumerate() {
        let mut put = |key: &str, value: &str| field(line, &format!("b{index}.{key}"), value);
        put("type", binding.resource_type.name());
        put("pattern", binding.pattern_type.name());
        put("name", &binding.name);
        put("principal", &binding.principal);
        put("host", &binding.host);
        put("operation", binding.operation.name());
        put("permission", binding.permission.name());
    }
}

/// The bindings of [`acl_fields`], in index order.
fn parse_acls(fields: &BTreeMap<String, String>) -> Result<Vec<AclBinding>, String> {
    let mut by_index: BTreeMap<usize, BTreeMap<&str, &str>> = BTreeMap::new();
    for (key, value) in fields {
        let (index, name) = key
            .strip_prefix('b')
            .and_then(|key| key.split_once('.'))
            .and_then(|(index, name)| Some((index.parse::<usize>().ok()?, name)))
            .ok_or_else(|| format!("acls: bad field {key:?}"))?;
        by_index.entry(index).or_default().insert(name, value);
    }
    by_index
        .into_values()
        .map(|parts| {
            let text = |key: &str| parts.get(key).map(|value| value.to_string());
            let binding = AclBinding {
                resource_type: ResourceType::ALL
                    .into_iter()
                    .find(|t| Some(t.name()) == parts.get("type").copied())?,
                pattern_type: PatternType::ALL
                    .into_iter()
                    .find(|p| Some(p.name()) == parts.get("pattern").copied())?,
                name: text("name")?,
                principal: text("principal")?,
                host: text("host")?,
                operation: Operation::ALL
                    .into_iter()
                    .find(|o| Some(o.name()) == parts.get("operation").copied())?,
                permission: [Permission::Allow, Permission::Deny]
                    .into_iter()
                    .find(|p| Some(p.name()) == parts.get("permission").copied())?,
            };
            Some(binding)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "acls: a binding lacks a field or has a bad one".to_string())
}

/// `replicas=1,2,3;2,3,1` (one list per partition), left out when empty.
fn replicas_field(line: &mut String, replicas: &[Vec<i32>]) {
    if replicas.is_empty() {
        return;
    }
    let text = replicas
        .iter()
        .map(|brokers| {
            brokers
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(";");
    field(line, "replicas", &text);
}

fn parse_replicas(text: &str) -> Option<Vec<Vec<i32>>> {
    text.split(';')
        .map(|brokers| {
            brokers
                .split(',')
                .map(|id| id.parse::<i32>().ok().filter(|id| *id >= 0))
                .collect::<Option<Vec<i32>>>()
        })
        .collect()
}

fn field(line: &mut String, key: &str, value: &str) {
    line.push(' ');
    escape_into(line, key);
    line.push('=');
    escape_into(line, value);
}

fn escape_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte == b'%' || byte == b' ' || byte == b'=' || byte < 0x20 || byte == 0x7f {
            let _ = write!(out, "%{byte:02X}");
        } else {
            out.push(byte as char);
        }
    }
}

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3).ok_or("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape")?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escaped text is not UTF-8".to_string())
}

/// One partition of a delete-records record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordsDeletion {
    /// The topic's name.
    pub topic: String,
    /// Its id (a later topic of the same name keeps its records).
    pub id: TopicId,
    /// The partition.
    pub partition: i32,
    /// The offset its log now starts at for clients.
    pub offset: i64,
}

/// What the metadata log says once applied: the cluster as the node knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterState {
    /// From the `cluster-init` record.
    pub cluster_id: Option<String>,
    /// From the `cluster-init` record.
    pub node_id: Option<i32>,
    /// Live topics by name.
    pub topics: BTreeMap<String, Topic>,
    /// Producer ids below this are reserved (handed out or skipped).
    pub producer_ids_reserved_until: i64,
    /// Broker-level configs changed at run time.
    pub dynamic: DynamicConfigs,
    /// The ACL bindings in force (create-acls and delete-acls records).
    pub acls: AclBindings,
    /// Users' SCRAM credentials.
    pub scram: UserScramCredentials,
}

/// What applying one record did to the set of partitions, for the node to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing partition-related changed.
    Nothing,
    /// These partitions now exist and need logs.
    PartitionsCreated {
        /// The topic.
        topic: String,
        /// The new partition numbers.
        partitions: std::ops::Range<i32>,
    },
    /// The topic is gone; its logs should be deleted.
    TopicDeleted {
        /// The topic that was deleted.
        topic: Topic,
    },
    /// DeleteRecords moved these partitions' log start offsets (see
    /// [`Topic::deleted_below`]).
    RecordsDeleted {
        /// The partitions whose start moved.
        partitions: Vec<TopicPartition>,
    },
    /// Configs changed: these topics' overrides, and with `brokers` the broker-level
    /// defaults every topic starts from.
    ConfigsAltered {
        /// Topics whose overrides changed.
        topics: Vec<String>,
        /// Whether broker-level values changed.
        brokers: bool,
    },
}

impl ClusterState {
    /// Applies one durable record. Records that no longer make sense (a create for a
    /// name that exists, a delete for an id that does not) change nothing, so replay
    /// is safe whatever raced at the time they were written.
    pub fn apply(&mut self, record: &MetadataRecord) -> Applied {
        match record {
            MetadataRecord::ClusterInit {
                cluster_id,
                node_id,
            } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                    self.node_id = Some(*node_id);
                }
                Applied::Nothing
            }
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                config,
                replicas,
            } => self.create_topic(name, *id, *partitions, config, replicas),
            MetadataRecord::DeleteTopic { name, id } => match self.topics.get(name) {
                Some(topic) if topic.id == *id => {
                    let topic = self.topics.remove(name).expect("present");
                    Applied::TopicDeleted { topic }
                }
                _ => Applied::Nothing,
            },
            MetadataRecord::CreatePartitions {
                name,
                partitions,
                replicas,
            } => self.create_partitions(name, *partitions, replicas),
            MetadataRecord::ProducerIds { next } => {
                self.producer_ids_reserved_until = self.producer_ids_reserved_until.max(*next);
                Applied::Nothing
            }
            MetadataRecord::AlterConfigs { changes } => self.alter_configs(changes),
            MetadataRecord::DeleteRecords { deletions } => self.delete_records(deletions),
            MetadataRecord::CreateAcls { bindings } => {
                for binding in bindings {
                    self.acls.add(binding.clone());
                }
                Applied::Nothing
            }
            MetadataRecord::DeleteAcls { bindings } => {
                for binding in bindings {
                    self.acls.remove(binding);
                }
                Applied::Nothing
            }
            MetadataRecord::ScramCredentials {
                upsertions,
                deletions,
            } => {
                self.scram.apply(upsertions, deletions);
                Applied::Nothing
            }
        }
    }

    /// Applies a create-partitions record: the topic grows to `partitions`, if it
    /// exists and is smaller.
    fn create_partitions(&mut self, name: &str, partitions: i32, replicas: &[Vec<i32>]) -> Applied {
        match self.topics.get_mut(name) {
            Some(topic) if partitions > topic.partitions => {
                let old = topic.partitions;
                topic.partitions = partitions;
                if !topic.replicas.is_empty() || !replicas.is_empty() {
                    topic.replicas.extend(replicas.iter().cloned());
                }
                Applied::PartitionsCreated {
                    topic: name.to_string(),
                    partitions: old..partitions,
                }
            }
            _ => Applied::Nothing,
        }
    }

    /// Applies a delete-records record: each partition's start moves up to its offset,
    /// never down, if its topic (by id) still exists.
    fn delete_records(&mut self, deletions: &[RecordsDeletion]) -> Applied {
        let mut partitions = Vec::new();
        for deletion in deletions {
            let Some(topic) = self.topics.get_mut(&deletion.topic) else {
                continue;
            };
            if topic.id != deletion.id || !(0..topic.partitions).contains(&deletion.partition) {
                continue;
            }
            let start = topic.deleted_below.entry(deletion.partition).or_insert(0);
            if deletion.offset > *start {
                *start = deletion.offset;
                partitions.push(TopicPartition::new(&deletion.topic, deletion.partition));
            }
        }
        Applied::RecordsDeleted { partitions }
    }

    /// Applies an alter-configs record. A topic that no longer exists is skipped: its
    /// record was written before the deletion was applied.
    fn alter_configs(&mut self, changes: &[(ConfigResource, ConfigChange)]) -> Applied {
        let mut topics = Vec::new();
        let mut brokers = false;
        for (resource, change) in changes {
            match resource {
                ConfigResource::Topic(name) => {
                    if let Some(topic) = self.topics.get_mut(name) {
                        let values = change.applied_to(topic.config.overrides());
                        topic.config = TopicConfig::from_valid(values);
                        topics.push(name.clone());
                    }
                }
                ConfigResource::Broker(id) => {
                    self.dynamic.alter(*id, change);
                    brokers = true;
                }
            }
        }
        Applied::ConfigsAltered { topics, brokers }
    }

    /// Applies a create-topic record: the topic, unless one of that name exists.
    fn create_topic(
        &mut self,
        name: &str,
        id: TopicId,
        partitions: i32,
        config: &BTreeMap<String, String>,
        replicas: &[Vec<i32>],
    ) -> Applied {
        if self.topics.contains_key(name) {
            return Applied::Nothing;
        }
        let config =
            TopicConfig::from_entries(config.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_or_default();
        self.topics.insert(
            name.to_string(),
            Topic {
                name: name.to_string(),
                id,
                partitions,
                config,
                replicas: replicas.to_vec(),
                deleted_below: BTreeMap::new(),
            },
        );
        Applied::PartitionsCreated {
            topic: name.to_string(),
            partitions: 0..partitions,
        }
    }
}

/// The metadata log: a [`PartitionLog`] of [`MetadataRecord`]s, replicated by the
/// metadata quorum's Raft group ([`GroupId::Metadata`]) over every voter of the cluster.
///
/// Only the quorum's leader (Kafka's *active controller*) appends. A record takes
/// effect on every broker once it is committed: [`MetadataLog::take_committed`] reads
/// back the records below the group's high watermark that were not yet applied. On a
/// single broker the group has one voter, which elects itself when the log opens; its
/// high watermark is the log's durable offset, so a record applies once it is fsynced,
/// as before replication existed.
pub struct MetadataLog {
    /// The quorum's member on this node, with its log.
    replica: Replica,
    /// Records below this offset were handed out by `take_committed`.
    applied: i64,
    /// The commit point last saved (see [`crate::commit_point`]), or read at start if
    /// the log still holds it: records below it are committed, whatever the member has
    /// learnt yet, so those a broker saved before it stopped are applied at start.
    saved: Option<CommitPoint>,
    /// Set once the member caught up ([`Raft::caught_up`]) and everything committed
    /// that it knew of was applied: from then on the applied state is no older than
    /// what this broker had before it started. Never cleared.
    caught_up: bool,
    /// Records this node appended as leader and that are not applied yet, with the
    /// epoch each was appended in.
    pending: Vec<(i64, i32, MetadataRecord)>,
}

/// Why the metadata log could not be opened or replayed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The storage engine refused to open it.
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    /// A read during replay failed.
    #[error("metadata log read at offset {offset}: {error:?}")]
    Read {
        /// Where.
        offset: i64,
        /// Why.
        error: ReadError,
    },
    /// A record could not be decoded: the log is not ours or is damaged.
    #[error("metadata log record at offset {offset}: {reason}")]
    Record {
        /// Where.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// The Raft member could not be built (bad voters, unreadable hard state).
    #[error("metadata quorum: {0}")]
    Raft(String),
}

impl From<batch::RecordsError> for MetadataError {
    fn from(error: batch::RecordsError) -> MetadataError {
        MetadataError::Record {
            offset: -1,
            reason: error.to_string(),
        }
    }
}

/// Why a metadata record was not appended.
#[derive(Debug, thiserror::Error)]
pub enum MetadataAppendError {
    /// This node is not the quorum's leader (Kafka's NOT_CONTROLLER).
    #[error("this broker is not the controller (the controller is {leader:?})")]
    NotController {
        /// The leader this node knows of.
        leader: Option<i32>,
    },
    /// The log refused it.
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl MetadataAppendError {
    /// The Kafka error a client gets for it.
    pub fn error_code(&self) -> crate::error::ErrorCode {
        match self {
            MetadataAppendError::NotController { .. } => crate::error::ErrorCode::NotController,
            MetadataAppendError::Append(_) => crate::error::ErrorCode::KafkaStorageError,
        }
    }
}

impl MetadataLog {
    /// The log's directory, relative to the data directory.
    pub fn dir() -> String {
        partition_dir(METADATA_TOPIC, 0)
    }

    /// Opens (and recovers) the metadata log and builds its Raft member over `voters`
    /// (this node included). Nothing is applied yet: records come out of
    /// [`MetadataLog::take_committed`], first those below the commit point this broker
    /// saved before it stopped (unless `restore` is off), then the rest as the group
    /// commits them. A single voter starts campaigning at once; the node's next drive
    /// makes it leader, and everything durable in its log is committed.
    pub fn open(
        disk: &mut impl Disk,
        node_id: i32,
        voters: &[i32],
        raft_config: RaftConfig,
        random_seed: u64,
        now_ms: i64,
        restore: bool,
    ) -> Result<MetadataLog, MetadataError> {
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: -1,
            segment_bytes: 64 << 20,
            ..LogConfig::default()
        };
        let init = ReplicaInit {
            group: GroupId::Metadata,
            dir: Self::dir(),
            log_config: config,
            replicas: voters.to_vec(),
            node_id,
            raft_config,
            random_seed,
            repair_from_peers: false,
        };
        let replica = Replica::open(disk, init, now_ms).map_err(|error| match error {
            ReplicaOpenError::Log(error) => MetadataError::Log(error),
            ReplicaOpenError::HardState(error) | ReplicaOpenError::Raft(error) => {
                MetadataError::Raft(error)
            }
        })?;
        let applied = replica.log().log_start_offset();
        let saved = read_commit_point(disk, &Self::dir()).filter(|&point| {
            let held = Self::holds(&replica, point);
            if !held {
                tracing::warn!(
                    offset = point.offset,
                    "metadata: the saved commit point is not in the recovered log; \
                     learning it from the leader"
                );
            }
            restore && held
        });
        Ok(MetadataLog {
            replica,
            applied,
            saved,
            // One voter: everything durable is committed, and applied by the first drive.
            caught_up: voters.len() == 1 || !restore,
            pending: Vec::new(),
        })
    }

    /// Whether the log holds `point`: it reaches it, with an entry of its epoch just
    /// below it.
    fn holds(replica: &Replica, point: CommitPoint) -> bool {
        point.offset <= replica.log().log_end_offset()
            && replica.epoch_at(point.offset - 1) == Some(point.epoch)
    }

    /// Appends `record` as the quorum's leader and starts replicating it; it applies
    /// everywhere once committed. Returns its offset. The caller starts a sync.
    pub fn append(
        &mut self,
        disk: &mut impl Disk,
        record: MetadataRecord,
        now_ms: i64,
    ) -> Result<i64, MetadataAppendError> {
        let leader_epoch = self.replica.check_leader().map_err(|not_leader| {
            MetadataAppendError::NotController {
                leader: not_leader.leader_id.map(broker_id),
            }
        })?;
        let value = record.encode();
        let mut batch = batch::build_batch(now_ms, None, &[value.as_bytes()]);
        let appended = self
            .replica
            .append_as_leader(disk, &mut batch, leader_epoch, now_ms)?;
        let offset = match appended {
            AppendOutcome::Appended { base_offset, .. } => base_offset,
            AppendOutcome::Duplicate { .. } => {
                unreachable!("metadata batches carry no producer id")
            }
        };
        self.replica.replicate(disk, now_ms);
        self.pending.push((offset, leader_epoch, record));
        Ok(offset)
    }

    /// The quorum's member on this node, for the node to drive like any other
    /// replica (ticks, peer messages, [`Replica::drive`]).
    pub(crate) fn replica_mut(&mut self) -> &mut Replica {
        &mut self.replica
    }

    /// The quorum member, for reading its state.
    pub fn raft(&self) -> &Raft<GroupId> {
        self.replica.raft()
    }

    /// Whether this node is the quorum's leader: Kafka's active controller.
    pub fn is_leader(&self) -> bool {
        self.replica.is_leader()
    }

    /// The records committed since the last call, in offset order, with their offsets.
    /// Leader markers (control batches) are skipped. Below the saved commit point
    /// (read at start, or saved since), records are committed whatever the member has
    /// learnt yet.
    ///
    /// A broker of a cluster applies only records its own copy holds durably, and only
    /// once it saved the commit point past them (see [`crate::commit_point`]): so a
    /// restart never leaves it knowing less than it told clients before. If the point
    /// cannot be written, nothing more is applied until it can.
    pub fn take_committed(
        &mut self,
        disk: &mut impl Disk,
    ) -> Result<Vec<(i64, MetadataRecord)>, MetadataError> {
        let saved = self.saved.map_or(0, |point| point.offset);
        let log = self.replica.log();
        let committed = self
            .replica
            .high_watermark()
            .max(saved.min(log.log_end_offset()));
        let end = if self.replica.replicas().len() > 1 {
            let end = committed.min(log.durable_offset());
            if !self.save_commit_point(disk, end) {
                return Ok(Vec::new());
            }
            end
        } else {
            committed
        };
        let records = self.read_committed(disk, end)?;
        let raft = self.replica.raft();
        if !self.caught_up && raft.caught_up() && self.applied >= raft.high_watermark() {
            self.caught_up = true;
            tracing::info!(
                applied = self.applied,
                "metadata: caught up with the quorum; serving clients"
            );
        }
        Ok(records)
    }

    /// Reads the records from the applied offset up to `end`, and marks them applied.
    fn read_committed(
        &mut self,
        disk: &mut impl Disk,
        end: i64,
    ) -> Result<Vec<(i64, MetadataRecord)>, MetadataError> {
        let mut records = Vec::new();
        let mut offset = self.applied.max(self.replica.log().log_start_offset());
        while offset < end {
            let read = self
                .replica
                .log_mut()
                .read(disk, offset, end, REPLAY_READ_BYTES)
                .map_err(|error| MetadataError::Read { offset, error })?;
            if read.bytes.is_empty() {
                break;
            }
            batch::for_each_record(&read.bytes, |record| {
                let record_offset = record.offset;
                if record_offset < offset {
                    return Ok::<(), MetadataError>(());
                }
                let value = record.value.unwrap_or_default();
                let line = std::str::from_utf8(value).map_err(|_| MetadataError::Record {
                    offset: record_offset,
                    reason: "value is not UTF-8".to_string(),
                })?;
                let record =
                    MetadataRecord::decode(line).map_err(|reason| MetadataError::Record {
                        offset: record_offset,
                        reason,
                    })?;
                records.push((record_offset, record));
                Ok(())
            })?;
            offset = read.next_offset;
        }
        self.applied = offset.max(self.applied);
        let applied = self.applied;
        self.pending.retain(|(at, _, _)| *at >= applied);
        Ok(records)
    }

    /// Makes sure the saved commit point is at least `offset` (committed, and durable
    /// in this broker's copy of the log), writing it if it is lower. False if it is
    /// lower and could not be written: the older point stays, which is only too low.
    fn save_commit_point(&mut self, disk: &mut impl Disk, offset: i64) -> bool {
        let saved = self
            .saved
            .map_or(self.replica.log().log_start_offset(), |point| point.offset);
        if offset <= saved {
            return true;
        }
        let Some(epoch) = self.replica.epoch_at(offset - 1) else {
            return false;
        };
        let point = CommitPoint { offset, epoch };
        match write_commit_point(disk, &Self::dir(), point) {
            Ok(()) => {
                self.saved = Some(point);
                true
            }
            Err(error) => {
                tracing::warn!("metadata: cannot save the commit point: {error}");
                false
            }
        }
    }

    /// Whether this broker's applied metadata is no older than what it had before it
    /// started: its member caught up with the quorum and applied what it learnt
    /// ([`Raft::caught_up`]). Until then a topic it does not know may exist, so it is
    /// never called unknown (decision 0011).
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Records below this offset were applied.
    pub fn applied_offset(&self) -> i64 {
        self.applied
    }

    /// Starts a group-commit sync if there is anything to make durable.
    pub fn start_sync(&mut self, disk: &mut impl Disk) -> Vec<IoId> {
        self.replica.start_sync(disk)
    }

    /// Feeds a sync completion to the log and then to the Raft member.
    pub fn on_sync_complete(
        &mut self,
        disk: &mut impl Disk,
        completion: &DiskCompletion,
        now_ms: i64,
    ) {
        if self.replica.on_log_sync_complete(completion) {
            self.replica.on_log_synced(disk, now_ms);
        }
    }

    /// Makes everything appended durable before returning (start-up only).
    pub fn flush_now(&mut self, disk: &mut impl Disk, now_ms: i64) -> Result<(), LogError> {
        self.replica.flush_now(disk, now_ms)
    }

    /// Records this node appended and that are not applied yet, oldest first.
    pub fn pending_records(&self) -> impl Iterator<Item = &MetadataRecord> {
        self.pending.iter().map(|(_, _, record)| record)
    }

    /// Whether the record this node appended at `offset` is no longer in the log: a
    /// new leader's log cut it (the log now ends at or below it, or holds an entry of
    /// another epoch there). False for an offset this node did not append or that is
    /// applied already; a cut record is then forgotten by the next `take_committed`
    /// only if its offset gets applied, so a waiter asks here.
    pub fn was_cut(&self, offset: i64) -> bool {
        let Some(&(_, epoch, _)) = self.pending.iter().find(|(at, _, _)| *at == offset) else {
            return false;
        };
        self.replica.epoch_at(offset) != Some(epoch)
    }

    /// Set once a sync failed: the metadata log accepts nothing more until restart.
    pub fn failure(&self) -> Option<&odradek_log::io::DiskError> {
        self.replica.log().failure()
    }

    /// The underlying log, for invariant checks.
    pub fn log(&self) -> &PartitionLog {
        self.replica.log()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_text() {
        let records = [
            MetadataRecord::ClusterInit {
                cluster_id: "abc".into(),
                node_id: 1,
            },
            MetadataRecord::CreateTopic {
                name: "orders".into(),
                id: TopicId::random(1, 2),
                partitions: 3,
                config: [("retention.ms".to_string(), "60000".to_string())].into(),
                replicas: vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]],
            },
            MetadataRecord::CreateTopic {
                name: "old".into(),
                id: TopicId::random(1, 2),
                partitions: 1,
                config: BTreeMap::new(),
                replicas: Vec::new(),
            },
            MetadataRecord::DeleteTopic {
                name: "orders".into(),
                id: TopicId::random(1, 2),
            },
            MetadataRecord::CreatePartitions {
                name: "x".into(),
                partitions: 6,
                replicas: vec![vec![1], vec![2], vec![3]],
            },
            MetadataRecord::ProducerIds { next: 2000 },
            MetadataRecord::DeleteRecords {
                deletions: vec![
                    RecordsDeletion {
                        topic: "orders".into(),
                        id: TopicId::random(3, 4),
                        partition: 0,
                        offset: 17,
                    },
                    RecordsDeletion {
                        topic: "a b".into(),
                        id: TopicId::random(5, 6),
                        partition: 2,
                        offset: 0,
                    },
                ],
            },
            MetadataRecord::CreateAcls {
                bindings: vec![acl_binding("orders"), acl_binding("a b=%")],
            },
            MetadataRecord::DeleteAcls {
                bindings: vec![acl_binding("orders")],
            },
            MetadataRecord::ScramCredentials {
                upsertions: vec![ScramUpsertion {
                    user: "al ice=".into(),
                    mechanism: ScramMechanism::Sha512,
                    credential: ScramCredential::from_password(
                        ScramMechanism::Sha512,
                        "pw",
                        b"salt",
                        8192,
                    ),
                }],
                deletions: vec![ScramDeletion {
                    user: "bob".into(),
                    mechanism: ScramMechanism::Sha256,
                }],
            },
        ];
        for record in records {
            let line = record.encode();
            assert_eq!(MetadataRecord::decode(&line), Ok(record), "{line}");
        }
    }

    fn acl_binding(name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::TransactionalId,
            pattern_type: PatternType::Prefixed,
            name: name.into(),
            principal: "User:alice".into(),
            host: "10.0.0.1".into(),
            operation: Operation::IdempotentWrite,
            permission: Permission::Deny,
        }
    }

    #[test]
    fn acl_records_add_and_remove_bindings_idempotently() {
        let mut cluster = ClusterState::default();
        let created = MetadataRecord::CreateAcls {
            bindings: vec![acl_binding("t"), acl_binding("t"), acl_binding("u")],
        };
        cluster.apply(&created);
        assert_eq!(cluster.acls.iter().count(), 2);
        cluster.apply(&MetadataRecord::DeleteAcls {
            bindings: vec![acl_binding("t"), acl_binding("absent")],
        });
        let names: Vec<&str> = cluster.acls.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["u"]);
    }

    #[test]
    fn escaping_keeps_awkward_values_intact() {
        let record = MetadataRecord::ClusterInit {
            cluster_id: "a b=c%d\n".into(),
            node_id: 7,
        };
        let line = record.encode();
        assert!(!line.contains('\n'));
        assert_eq!(MetadataRecord::decode(&line), Ok(record));
    }

    #[test]
    fn replay_ignores_records_that_lost_a_race() {
        let mut state = ClusterState::default();
        let id = TopicId::random(3, 4);
        let create = MetadataRecord::CreateTopic {
            name: "t".into(),
            id,
            partitions: 2,
            config: BTreeMap::new(),
            replicas: Vec::new(),
        };
        assert_eq!(
            state.apply(&create),
            Applied::PartitionsCreated {
                topic: "t".into(),
                partitions: 0..2
            }
        );
        assert_eq!(state.apply(&create), Applied::Nothing);
        let wrong_id = MetadataRecord::DeleteTopic {
            name: "t".into(),
            id: TopicId::random(5, 6),
        };
        assert_eq!(state.apply(&wrong_id), Applied::Nothing);
        assert!(state.topics.contains_key("t"));
    }

    #[test]
    fn deleted_records_move_the_start_forward_only_on_the_topic_named_by_id() {
        let mut state = ClusterState::default();
        let id = TopicId::random(3, 4);
        state.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            id,
            partitions: 2,
            config: BTreeMap::new(),
            replicas: Vec::new(),
        });
        let delete = |id, offsets: Vec<(i32, i64)>| MetadataRecord::DeleteRecords {
            deletions: offsets
                .into_iter()
                .map(|(partition, offset)| RecordsDeletion {
                    topic: "t".into(),
                    id,
                    partition,
                    offset,
                })
                .collect(),
        };
        assert_eq!(
            state.apply(&delete(id, vec![(0, 10), (1, 0), (5, 3)])),
            Applied::RecordsDeleted {
                partitions: vec![TopicPartition::new("t", 0)]
            }
        );
        // Older offsets (a slower request) never move the start back.
        state.apply(&delete(id, vec![(0, 4), (1, 2)]));
        let topic = &state.topics["t"];
        assert_eq!((topic.deleted_below(0), topic.deleted_below(1)), (10, 2));
        // A record for an earlier topic of the same name changes nothing.
        let earlier = delete(TopicId::random(5, 6), vec![(0, 99)]);
        let nothing = Applied::RecordsDeleted { partitions: vec![] };
        assert_eq!(state.apply(&earlier), nothing);
        assert_eq!(state.topics["t"].deleted_below(0), 10);
    }
}
