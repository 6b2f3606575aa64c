//! What the delete-records workload wrote and deleted, and the checker of its
//! partition.
//!
//! The workload's writes do not go into the main history: its checkers expect every
//! acknowledged record to stay, and DeleteRecords removes them on purpose. The
//! checker sees each Fetch and DeleteRecords answer of the workload's client when a
//! broker sends it (so an answer the network loses is checked too), and every broker
//! at the end. Its rules:
//!
//! - (a) *a deletion answered ok reaches its offset*: the low watermark of an answer
//!   without error is at or above the offset asked (any broker's answer counts as
//!   acknowledged: the broker answers once it applied the deletion, which is
//!   committed in the metadata log by then). The highest such low watermark is the
//!   *acknowledged deletion point*.
//! - (b) *a fetch below the start is refused*: an answer without error has a log
//!   start offset at or below the offset asked, every acknowledged record it covers
//!   from the offset asked to its last batch is there with its value, and on a single
//!   broker its log start is at or above the acknowledged deletion point (in a cluster
//!   a broker that leads before its metadata applied a deletion may still serve below
//!   it for a while: docs/replication.md, "Deleted records").
//! - (c) *nothing at or above the point is lost*: at the end, each replica's committed
//!   log holds every acknowledged record from the start clients see up to its high
//!   watermark, and on a broker whose metadata caught up, the log's own start is at or
//!   below the broker's deletion point (whole segments below it go, never a record at
//!   or above it).
//! - (d) *the deletion reached every broker and survived restarts*: at the end every
//!   broker whose metadata caught up has the same deletion point, at or above the
//!   acknowledged one and at or below the highest offset a deletion that may have
//!   applied asked for; each live replica starts, for clients, at or above the
//!   acknowledged point (or at its log end, if that is lower).
//!
//! - (f) *a broker's deletion point never goes back*: after every step of a broker,
//!   its deletion point is at or above the highest any broker (itself in an earlier
//!   incarnation too) had with its metadata applied to the same offset or less: every
//!   broker applies the same committed records in the same order, so restarts and
//!   replays must reach the same point.
//!
//! (e) replicas agree on the records they hold: `checks::check_cluster_at_end`.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::ResponseKind;
use kafka_protocol::messages::fetch_response::PartitionData;
use odradek_replication::Node;
use odradek_replication::TopicPartition;

use crate::node::SimNode;
use crate::records::decode_batches;

/// The trimmed topic's name.
pub const TRIMMED_TOPIC: &str = "sim-trim";

/// How a DeleteRecords ended, as far as the checker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionEnd {
    /// A broker answered it without error.
    Applied,
    /// Refused before anything was written.
    Failed,
    /// Maybe applied.
    Indefinite,
}

/// One DeleteRecords the client sent.
#[derive(Clone, Copy, Debug)]
struct Deletion {
    /// The offset asked (-1: the high watermark).
    asked: i64,
    /// `None` while in flight.
    end: Option<DeletionEnd>,
    /// The low watermark of an answer without error.
    low_watermark: Option<i64>,
}

/// The trimmed partition's writes, deletions and checks.
#[derive(Debug, Default)]
pub struct TrimChecker {
    /// Acknowledged offset -> value.
    acknowledged: BTreeMap<i64, u64>,
    /// Fetch correlation -> the offset it asked for.
    fetches: BTreeMap<u64, i64>,
    /// DeleteRecords correlation -> its deletion.
    deletions: BTreeMap<u64, Deletion>,
    /// The highest low watermark a broker answered a DeleteRecords with (0: none).
    deleted_point: i64,
    reads: u64,
    records_read: u64,
    /// Metadata applied offset -> the deletion point a broker had there; both rise
    /// (a staircase: only points higher than every earlier step are kept).
    points: BTreeMap<i64, i64>,
}

impl TrimChecker {
    /// `values` were acknowledged from `base_offset` on.
    pub fn acknowledged(&mut self, base_offset: i64, values: &[u64]) {
        for (position, &value) in values.iter().enumerate() {
            self.acknowledged
                .insert(base_offset + position as i64, value);
        }
    }

    /// The highest acknowledged offset (-1: none).
    pub fn highest_acknowledged(&self) -> i64 {
        self.acknowledged.keys().next_back().copied().unwrap_or(-1)
    }

    /// The acknowledged deletion point (0: none).
    pub fn deleted_point(&self) -> i64 {
        self.deleted_point
    }

    /// Fetch `correlation` asks for `offset`.
    pub fn fetch_sent(&mut self, correlation: u64, offset: i64) {
        self.fetches.insert(correlation, offset);
    }

    /// DeleteRecords `correlation` asks to delete below `offset`.
    pub fn deletion_sent(&mut self, correlation: u64, offset: i64) {
        let deletion = Deletion {
            asked: offset,
            end: None,
            low_watermark: None,
        };
        self.deletions.insert(correlation, deletion);
    }

    /// The client saw DeleteRecords `correlation` end (an answer applied earlier, as
    /// the broker sent it, stays applied).
    pub fn deletion_ended(&mut self, correlation: u64, end: DeletionEnd) {
        if let Some(deletion) = self.deletions.get_mut(&correlation)
            && deletion.end != Some(DeletionEnd::Applied)
        {
            deletion.end = Some(end);
        }
    }

    /// Counts, for the report.
    pub fn summary(&self) -> String {
        let applied = self
            .deletions
            .values()
            .filter(|d| d.end == Some(DeletionEnd::Applied))
            .count();
        format!(
            "{} records acknowledged, {} of {} deletions applied, point {}, {} reads checked with {} records",
            self.acknowledged.len(),
            applied,
            self.deletions.len(),
            self.deleted_point,
            self.reads,
            self.records_read
        )
    }

    /// The highest point a deletion that may have applied could have moved the start
    /// to; `None` if one that may have applied asked for the high watermark and its
    /// answer, if any, was lost (its point is unknown).
    fn may_have_deleted_up_to(&self) -> Option<i64> {
        let mut bound = 0;
        for deletion in self.deletions.values() {
            let point = match (deletion.end, deletion.low_watermark) {
                (Some(DeletionEnd::Failed), _) => continue,
                (_, Some(low)) => low,
                _ if deletion.asked >= 0 => deletion.asked,
                _ => return None,
            };
            bound = bound.max(point);
        }
        Some(bound)
    }

    /// Rules (a) and (b) on an answer node `node` sends to the workload's client.
    pub fn check_answer(
        &mut self,
        node: u32,
        single_broker: bool,
        correlation: u64,
        response: &ResponseKind,
    ) -> Result<(), String> {
        match response {
            ResponseKind::DeleteRecords(deleted) => {
                let answer = deleted
                    .topics
                    .iter()
                    .filter(|topic| topic.name.0.as_str() == TRIMMED_TOPIC)
                    .flat_map(|topic| &topic.partitions)
                    .find(|partition| partition.partition_index == 0);
                match answer {
                    Some(answer) if answer.error_code == 0 => {
                        self.deletion_answered(node, correlation, answer.low_watermark)
                    }
                    _ => Ok(()),
                }
            }
            ResponseKind::Fetch(fetch) if fetch.error_code == 0 => {
                let Some(&asked) = self.fetches.get(&correlation) else {
                    return Ok(());
                };
                let data = fetch
                    .responses
                    .iter()
                    .filter(|topic| topic.topic.0.as_str() == TRIMMED_TOPIC)
                    .flat_map(|topic| &topic.partitions)
                    .find(|data| data.partition_index == 0 && data.error_code == 0);
                match data {
                    Some(data) => self.check_fetch(node, single_broker, asked, data),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Rule (a) on an answer without error.
    fn deletion_answered(
        &mut self,
        node: u32,
        correlation: u64,
        low_watermark: i64,
    ) -> Result<(), String> {
        let Some(deletion) = self.deletions.get_mut(&correlation) else {
            return Ok(());
        };
        if low_watermark < deletion.asked.max(0) {
            return Err(format!(
                "node {node} answered DeleteRecords below {} of {TRIMMED_TOPIC}-0 with low watermark {low_watermark}, below the offset asked",
                deletion.asked
            ));
        }
        deletion.end = Some(DeletionEnd::Applied);
        deletion.low_watermark = Some(deletion.low_watermark.unwrap_or(0).max(low_watermark));
        self.deleted_point = self.deleted_point.max(low_watermark);
        Ok(())
    }

    /// Rule (b) on a fetch answer without error for offset `asked`.
    fn check_fetch(
        &mut self,
        node: u32,
        single_broker: bool,
        asked: i64,
        data: &PartitionData,
    ) -> Result<(), String> {
        self.reads += 1;
        let who = format!("node {node}'s answer to a fetch of {TRIMMED_TOPIC}-0 at {asked}");
        let start = data.log_start_offset;
        if start > asked {
            return Err(format!(
                "{who} has records and log start offset {start}: it should be OFFSET_OUT_OF_RANGE"
            ));
        }
        if single_broker && start < self.deleted_point {
            return Err(format!(
                "{who} has log start offset {start}, below the acknowledged deletion point {}",
                self.deleted_point
            ));
        }
        let records = data.records.clone().unwrap_or_default();
        // A batch that fails its checks is the response check's finding.
        let Ok(batches) = decode_batches(&records) else {
            return Ok(());
        };
        let Some(last) = batches.last().map(|batch| batch.header.last_offset()) else {
            return Ok(());
        };
        let mut read = BTreeMap::new();
        for record in batches.iter().flat_map(|batch| &batch.records) {
            if record.offset >= asked {
                read.insert(record.offset, record.value);
            }
        }
        self.records_read += read.len() as u64;
        self.compare(&who, asked..=last, &read)
    }

    /// Every acknowledged record in `range` is in `read` with its value.
    fn compare(
        &self,
        who: &str,
        range: std::ops::RangeInclusive<i64>,
        read: &BTreeMap<i64, Option<u64>>,
    ) -> Result<(), String> {
        if range.is_empty() {
            return Ok(());
        }
        for (&offset, &value) in self.acknowledged.range(range) {
            match read.get(&offset) {
                Some(&found) if found == Some(value) => {}
                Some(found) => {
                    return Err(format!(
                        "{who} holds value {found:?} at offset {offset}, where {value} was acknowledged"
                    ));
                }
                None => {
                    return Err(format!(
                        "{who} lacks the acknowledged record (value {value}) at offset {offset}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rule (f) on node `index` after one of its steps.
    pub fn observe_point(&mut self, index: u32, node: &Node) -> Result<(), String> {
        let Some(topic) = node.cluster().topics.get(TRIMMED_TOPIC) else {
            return Ok(());
        };
        let (applied, point) = (node.metadata().applied_offset(), topic.deleted_below(0));
        let reached = self.points.range(..=applied).next_back();
        if let Some((&at, &before)) = reached {
            if point < before {
                return Err(format!(
                    "node {index} has {TRIMMED_TOPIC}-0 deleted below {point} with its metadata applied to {applied}, where a broker had it deleted below {before} at metadata offset {at}"
                ));
            }
            if point == before {
                return Ok(());
            }
        }
        self.points.insert(applied, point);
        let above: Vec<i64> = self
            .points
            .range(applied + 1..)
            .take_while(|(_, later)| **later <= point)
            .map(|(&at, _)| at)
            .collect();
        for at in above {
            self.points.remove(&at);
        }
        Ok(())
    }

    /// Rules (c) and (d) once the final reads are done and the world is quiet.
    pub fn check_at_end(&self, nodes: &mut [SimNode]) -> Result<(), String> {
        let controller_high_watermark = crate::checks::controller_high_watermark(nodes);
        let mut points = BTreeSet::new();
        for sim_node in nodes.iter_mut() {
            let index = sim_node.index;
            let Some(node) = sim_node.node.as_ref() else {
                continue;
            };
            let metadata = node.metadata();
            let caught_up =
                metadata.is_leader() || metadata.applied_offset() >= controller_high_watermark;
            let Some(topic) = node.cluster().topics.get(TRIMMED_TOPIC) else {
                if caught_up && !self.acknowledged.is_empty() {
                    return Err(format!(
                        "at the end node {index} does not know {TRIMMED_TOPIC}"
                    ));
                }
                continue;
            };
            let point = topic.deleted_below(0);
            if caught_up {
                self.check_point(index, point)?;
                points.insert((point, index));
            }
            self.check_replica(sim_node, caught_up.then_some(point))?;
        }
        let (Some(low), Some(high)) = (points.first(), points.last()) else {
            return Ok(());
        };
        if low.0 != high.0 {
            return Err(format!(
                "at the end nodes {} and {} disagree on where DeleteRecords moved the start of {TRIMMED_TOPIC}-0: {} against {}",
                low.1, high.1, low.0, high.0
            ));
        }
        Ok(())
    }

    /// Rule (d) on a caught-up broker's deletion point.
    fn check_point(&self, index: u32, point: i64) -> Result<(), String> {
        if point < self.deleted_point {
            return Err(format!(
                "at the end node {index} has {TRIMMED_TOPIC}-0 deleted below {point}, below the acknowledged deletion point {}",
                self.deleted_point
            ));
        }
        match self.may_have_deleted_up_to() {
            Some(bound) if point > bound => Err(format!(
                "at the end node {index} has {TRIMMED_TOPIC}-0 deleted below {point}, above any offset a deletion asked for ({bound})"
            )),
            _ => Ok(()),
        }
    }

    /// Rules (c) and (d) on one broker's replica; `point`: the broker's deletion
    /// point, if its metadata caught up.
    fn check_replica(&self, sim_node: &mut SimNode, point: Option<i64>) -> Result<(), String> {
        let index = sim_node.index;
        let key = TopicPartition::new(TRIMMED_TOPIC.to_string(), 0);
        let Some(node) = sim_node.node.as_mut() else {
            return Ok(());
        };
        let Some(replica) = node.partition(&key) else {
            return Ok(());
        };
        let (start, own_start) = (replica.log_start_offset(), replica.log().log_start_offset());
        let (end, high_watermark) = (replica.log().log_end_offset(), replica.high_watermark());
        if point.is_some() && start < self.deleted_point.min(end) {
            return Err(format!(
                "at the end node {index}'s replica of {TRIMMED_TOPIC}-0 starts at {start} for clients, below the acknowledged deletion point {}",
                self.deleted_point
            ));
        }
        if let Some(point) = point
            && own_start > point
        {
            return Err(format!(
                "at the end node {index}'s replica of {TRIMMED_TOPIC}-0 has deleted its log up to {own_start}, past its deletion point {point}"
            ));
        }
        // A replica that cannot be read is `check_cluster_at_end`'s finding.
        let Some(log) = node.committed_log(&mut sim_node.io, &key) else {
            return Ok(());
        };
        let batches = decode_batches(&log)
            .map_err(|error| format!("node {index}'s replica of {TRIMMED_TOPIC}-0: {error}"))?;
        let read: BTreeMap<i64, Option<u64>> = batches
            .iter()
            .flat_map(|batch| &batch.records)
            .map(|record| (record.offset, record.value))
            .collect();
        let who = format!(
            "at the end node {index}'s replica of {TRIMMED_TOPIC}-0 (high watermark {high_watermark})"
        );
        self.compare(&who, start..=high_watermark - 1, &read)
    }
}
