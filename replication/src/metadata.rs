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
//! ```
//! Values are %-escaped (`%`, space, `=`, and control bytes as `%XX`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use odradek_log::batch::{self, BatchHeader};
use odradek_log::io::{Disk, DiskCompletion, IoId};
use odradek_log::partition::{
    AppendError, AppendOutcome, LogConfig, LogError, PartitionLog, ReadError,
};

use crate::topics::{METADATA_TOPIC, Topic, TopicConfig, TopicId, partition_dir};

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
    },
    /// Producer ids below `next` are reserved; the node may hand out ids from the
    /// previous reservation up to `next`.
    ProducerIds {
        /// One past the last reserved id.
        next: i64,
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
            } => {
                line.push_str("create-topic");
                field(&mut line, "name", name);
                field(&mut line, "id", &id.to_hex());
                field(&mut line, "partitions", &partitions.to_string());
                for (key, value) in config {
                    field(&mut line, &format!("config.{key}"), value);
                }
            }
            MetadataRecord::DeleteTopic { name, id } => {
                line.push_str("delete-topic");
                field(&mut line, "name", name);
                field(&mut line, "id", &id.to_hex());
            }
            MetadataRecord::CreatePartitions { name, partitions } => {
                line.push_str("create-partitions");
                field(&mut line, "name", name);
                field(&mut line, "partitions", &partitions.to_string());
            }
            MetadataRecord::ProducerIds { next } => {
                line.push_str("producer-ids");
                field(&mut line, "next", &next.to_string());
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
                config: fields
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("config.")
                            .map(|k| (k.to_string(), v.clone()))
                    })
                    .collect(),
            },
            "delete-topic" => MetadataRecord::DeleteTopic {
                name: text("name")?,
                id: topic_id("id")?,
            },
            "create-partitions" => MetadataRecord::CreatePartitions {
                name: text("name")?,
                partitions: number("partitions")? as i32,
            },
            "producer-ids" => MetadataRecord::ProducerIds {
                next: number("next")?,
            },
            other => return Err(format!("unknown metadata record kind {other:?}")),
        };
        Ok(record)
    }
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
            } => {
                if self.topics.contains_key(name) {
                    return Applied::Nothing;
                }
                let config =
                    TopicConfig::from_entries(config.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .unwrap_or_default();
                self.topics.insert(
                    name.clone(),
                    Topic {
                        name: name.clone(),
                        id: *id,
                        partitions: *partitions,
                        config,
                    },
                );
                Applied::PartitionsCreated {
                    topic: name.clone(),
                    partitions: 0..*partitions,
                }
            }
            MetadataRecord::DeleteTopic { name, id } => match self.topics.get(name) {
                Some(topic) if topic.id == *id => {
                    let topic = self.topics.remove(name).expect("present");
                    Applied::TopicDeleted { topic }
                }
                _ => Applied::Nothing,
            },
            MetadataRecord::CreatePartitions { name, partitions } => {
                match self.topics.get_mut(name) {
                    Some(topic) if *partitions > topic.partitions => {
                        let old = topic.partitions;
                        topic.partitions = *partitions;
                        Applied::PartitionsCreated {
                            topic: name.clone(),
                            partitions: old..*partitions,
                        }
                    }
                    _ => Applied::Nothing,
                }
            }
            MetadataRecord::ProducerIds { next } => {
                self.producer_ids_reserved_until = self.producer_ids_reserved_until.max(*next);
                Applied::Nothing
            }
        }
    }
}

/// The metadata log: a [`PartitionLog`] of [`MetadataRecord`]s with group commit.
pub struct MetadataLog {
    log: PartitionLog,
    /// Records appended but not yet durable, in offset order.
    pending: Vec<(i64, MetadataRecord)>,
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
}

impl MetadataLog {
    /// The log's directory, relative to the data directory.
    pub fn dir() -> String {
        partition_dir(METADATA_TOPIC, 0)
    }

    /// Opens the metadata log and returns it with every durable record, in order.
    pub fn open(
        disk: &mut impl Disk,
        now_ms: i64,
    ) -> Result<(MetadataLog, Vec<MetadataRecord>), MetadataError> {
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: -1,
            segment_bytes: 64 << 20,
            ..LogConfig::default()
        };
        let (mut log, _report) = PartitionLog::open(disk, &Self::dir(), config, now_ms)?;
        let mut records = Vec::new();
        let mut offset = log.log_start_offset();
        let end = log.durable_offset();
        while offset < end {
            let read = log
                .read(disk, offset, end, REPLAY_READ_BYTES)
                .map_err(|error| MetadataError::Read { offset, error })?;
            if read.bytes.is_empty() {
                break;
            }
            for_each_record(&read.bytes, |record_offset, value| {
                let line = std::str::from_utf8(value).map_err(|_| MetadataError::Record {
                    offset: record_offset,
                    reason: "value is not UTF-8".to_string(),
                })?;
                let record =
                    MetadataRecord::decode(line).map_err(|reason| MetadataError::Record {
                        offset: record_offset,
                        reason,
                    })?;
                records.push(record);
                Ok(())
            })?;
            offset = read.next_offset;
        }
        Ok((
            MetadataLog {
                log,
                pending: Vec::new(),
            },
            records,
        ))
    }

    /// Appends `record`; it is applied once [`MetadataLog::on_sync_complete`] says it is
    /// durable. Returns its offset.
    pub fn append(
        &mut self,
        disk: &mut impl Disk,
        record: MetadataRecord,
        now_ms: i64,
    ) -> Result<i64, AppendError> {
        let value = record.encode();
        let mut batch = batch::build_batch(now_ms, None, &[value.as_bytes()]);
        let offset = match self.log.append(disk, &mut batch, 0, now_ms)? {
            AppendOutcome::Appended { base_offset, .. } => base_offset,
            AppendOutcome::Duplicate { .. } => {
                unreachable!("metadata batches carry no producer id")
            }
        };
        self.pending.push((offset, record));
        Ok(offset)
    }

    /// Starts a group-commit sync if there is anything to make durable.
    pub fn start_sync(&mut self, disk: &mut impl Disk) -> Vec<IoId> {
        self.log.start_sync(disk)
    }

    /// Feeds a sync completion; returns the records that became durable, in order.
    pub fn on_sync_complete(&mut self, completion: &DiskCompletion) -> Vec<MetadataRecord> {
        self.log.on_sync_complete(completion);
        self.take_durable()
    }

    /// Makes everything appended durable before returning (start-up only) and returns
    /// the records that became durable, in order.
    pub fn flush_now(&mut self, disk: &mut impl Disk) -> Result<Vec<MetadataRecord>, LogError> {
        self.log.flush_now(disk)?;
        Ok(self.take_durable())
    }

    fn take_durable(&mut self) -> Vec<MetadataRecord> {
        let durable = self.log.durable_offset();
        let ready = self
            .pending
            .iter()
            .take_while(|(offset, _)| *offset < durable)
            .count();
        self.pending
            .drain(..ready)
            .map(|(_, record)| record)
            .collect()
    }

    /// Records appended but not yet durable, oldest first.
    pub fn pending_records(&self) -> impl Iterator<Item = &MetadataRecord> {
        self.pending.iter().map(|(_, record)| record)
    }

    /// Whether anything appended is not durable yet.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Set once a sync failed: the metadata log accepts nothing more until restart.
    pub fn failure(&self) -> Option<&odradek_log::io::DiskError> {
        self.log.failure()
    }

    /// The underlying log, for invariant checks.
    pub fn log(&self) -> &PartitionLog {
        &self.log
    }
}

/// Calls `visit(offset, value)` for each record of each uncompressed batch in `bytes`.
/// Metadata batches are written uncompressed by [`MetadataLog::append`].
fn for_each_record(
    bytes: &[u8],
    mut visit: impl FnMut(i64, &[u8]) -> Result<(), MetadataError>,
) -> Result<(), MetadataError> {
    let mut position = 0usize;
    while position < bytes.len() {
        let header =
            BatchHeader::parse(&bytes[position..]).map_err(|error| MetadataError::Record {
                offset: -1,
                reason: error.to_string(),
            })?;
        let end = position + header.size_bytes() as usize;
        let mut cursor = Cursor {
            bytes: &bytes[position + batch::BATCH_HEADER_BYTES..end],
            at: 0,
        };
        for _ in 0..header.record_count {
            let parsed = cursor.record().ok_or_else(|| MetadataError::Record {
                offset: header.base_offset,
                reason: "malformed record".to_string(),
            })?;
            visit(header.base_offset + parsed.0, parsed.1)?;
        }
        position = end;
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// One record: returns (offset delta, value).
    fn record(&mut self) -> Option<(i64, &'a [u8])> {
        let length = self.varlong()?;
        let start = self.at;
        self.at += 1; // attributes
        let _timestamp_delta = self.varlong()?;
        let offset_delta = self.varlong()?;
        let key_length = self.varlong()?;
        if key_length > 0 {
            self.at += key_length as usize;
        }
        let value_length = self.varlong()?;
        let value = if value_length >= 0 {
            let value = self.bytes.get(self.at..self.at + value_length as usize)?;
            self.at += value_length as usize;
            value
        } else {
            &[]
        };
        self.at = start.checked_add(usize::try_from(length).ok()?)?;
        Some((offset_delta, value))
    }

    fn varlong(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        None
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
            },
            MetadataRecord::DeleteTopic {
                name: "orders".into(),
                id: TopicId::random(1, 2),
            },
            MetadataRecord::CreatePartitions {
                name: "x".into(),
                partitions: 6,
            },
            MetadataRecord::ProducerIds { next: 2000 },
        ];
        for record in records {
            let line = record.encode();
            assert_eq!(MetadataRecord::decode(&line), Ok(record), "{line}");
        }
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
    fn record_values_come_back_out_of_built_batches() {
        let batch = batch::build_batch(0, None, &[b"one", b"two"]);
        let mut seen = Vec::new();
        for_each_record(&batch, |offset, value| {
            seen.push((offset, value.to_vec()));
            Ok(())
        })
        .expect("decodes");
        assert_eq!(seen, vec![(0, b"one".to_vec()), (1, b"two".to_vec())]);
    }
}
