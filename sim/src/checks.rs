//! The checks that run while the world runs and at its end (the list is in the
//! world's module documentation, "Checks after every step"): of every response a node
//! gives, of the leaders a cluster elects, of the votes a broker grants, of a node
//! right after it opens, and of the cluster and the final reads when the run ends.
//! The checker keeps what the checks remember (what was acknowledged, what each node
//! incarnation reported, who led which epoch) and the first violation; it reads the
//! nodes and the history it is handed and changes neither.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::ResponseKind;
use odradek_log::mem_disk::MemDisk;
use odradek_model::history::{Call, History, Outcome, PartitionKey, Reply};
use odradek_replication::TopicPartition;
use odradek_replication::hard_state::{hard_state_paths, newest_hard_state};
use odradek_replication::peer::PeerMessage;
use odradek_replication::raft::Message;

use crate::node::{HeldRequest, SimNode};
use crate::records::decode_batches;

/// Per node incarnation `(node, incarnation)`: the highest `(high watermark, log start
/// offset)` it reported for one partition.
type Reported = BTreeMap<(u32, u64), (i64, i64)>;

/// What the checks remember, and the first violation.
pub(crate) struct Checker {
    /// High watermark and log start offset each node incarnation reported, per partition.
    reported: BTreeMap<TopicPartition, Reported>,
    /// Offset after the last acknowledged record, per partition.
    acknowledged_end: BTreeMap<TopicPartition, i64>,
    /// Topics whose creation was acknowledged.
    topics_acknowledged: BTreeSet<String>,
    /// In a cluster: per partition (and [`metadata_key`] for the metadata quorum),
    /// the node that led it in each epoch it was led in.
    leaders: BTreeMap<TopicPartition, BTreeMap<i32, u32>>,
    /// The key of the metadata quorum in `leaders`, built once.
    metadata_key: TopicPartition,
    /// The first check that failed, until the world takes it to end the run.
    violation: Option<String>,
    /// Whether the world has yet to put `violation` on its timeline.
    violation_unnoted: bool,
    /// The client whose response failed a check, if one did.
    violation_client: Option<u32>,
    /// Operations a failed check concerns, with why.
    violation_marks: BTreeMap<usize, String>,
}

/// What the end-of-run cluster check counted, for the fault counters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EndOfRun {
    /// Replicas rot struck that nobody read by the end.
    pub latent_rot: u64,
    /// Times replicas found damage and cut their logs to recover (decision 0010).
    pub replica_repairs: u64,
}

/// Acknowledged sends a check after a restart found missing: those of `topic` (one
/// partition of it, or all) at or above `from_offset`.
struct LostSends {
    topic: String,
    partition: Option<i32>,
    from_offset: i64,
}

impl Checker {
    /// A checker that has seen nothing.
    pub(crate) fn new() -> Checker {
        Checker {
            reported: BTreeMap::new(),
            acknowledged_end: BTreeMap::new(),
            topics_acknowledged: BTreeSet::new(),
            leaders: BTreeMap::new(),
            metadata_key: metadata_key(),
            violation: None,
            violation_unnoted: false,
            violation_client: None,
            violation_marks: BTreeMap::new(),
        }
    }

    /// Records a violation, unless one is recorded already (the first one ends the run).
    pub(crate) fn fail(&mut self, violation: String) {
        if self.violation.is_none() {
            self.violation = Some(violation);
            self.violation_unnoted = true;
        }
    }

    /// A check of a response `client` was sent failed.
    pub(crate) fn fail_response(&mut self, client: u32, violation: String) {
        if self.violation.is_none() {
            self.violation_client = Some(client);
        }
        self.fail(violation);
    }

    /// The violation recorded since the world last asked, once, for its timeline.
    pub(crate) fn violation_to_note(&mut self) -> Option<String> {
        if !self.violation_unnoted {
            return None;
        }
        self.violation_unnoted = false;
        self.violation.clone()
    }

    /// The violation, taken: the run ends with it.
    pub(crate) fn take_violation(&mut self) -> Option<String> {
        self.violation.take()
    }

    /// The client whose response failed a check, if one did.
    pub(crate) fn violation_client(&self) -> Option<u32> {
        self.violation_client
    }

    /// Operations a failed check concerns, with why.
    pub(crate) fn violation_marks(&self) -> &BTreeMap<usize, String> {
        &self.violation_marks
    }

    /// Raft's durability rule for votes, checked on the disk: a granted vote leaves
    /// only once the voter's hard state file durably holds it (that epoch and that
    /// candidate, or a later epoch). A voter that forgot a vote in a crash could vote
    /// twice in one epoch.
    pub(crate) fn check_votes_durable(
        &mut self,
        disk: &MemDisk,
        index: u32,
        to: i32,
        message: &PeerMessage,
    ) {
        for raft in &message.raft {
            let Message::VoteResponse(vote) = &raft.message else {
                continue;
            };
            if !vote.granted || vote.pre_vote {
                continue;
            }
            let durable = durable_hard_state(disk, &raft.group);
            let covered = durable.is_some_and(|state| {
                state.leader_epoch > vote.leader_epoch
                    || (state.leader_epoch == vote.leader_epoch
                        && state.voted_for == u32::try_from(to).ok())
            });
            if durable.is_some_and(|state| state.recovering) {
                self.fail(format!(
                    "node {index} granted its vote in epoch {} of {:?} to broker {to} while recovering from lost records (decision 0010)",
                    vote.leader_epoch, raft.group
                ));
            }
            if !covered {
                self.fail(format!(
                    "node {index} granted its vote in epoch {} of {:?} to broker {to} before the vote was durable (durable hard state: {durable:?})",
                    vote.leader_epoch, raft.group
                ));
            }
        }
    }

    /// The per-response checks (see the module documentation).
    pub(crate) fn check_response(
        &mut self,
        nodes: &[SimNode],
        index: u32,
        incarnation: u64,
        held: &HeldRequest,
        response: &ResponseKind,
    ) {
        match response {
            ResponseKind::Produce(produce) => self.record_acknowledged(held, produce),
            ResponseKind::Fetch(fetch) => {
                for topic in &fetch.responses {
                    for data in &topic.partitions {
                        if data.error_code != 0 {
                            continue;
                        }
                        let key =
                            TopicPartition::new(topic.topic.0.to_string(), data.partition_index);
                        self.check_reported(
                            nodes,
                            held.client,
                            index,
                            incarnation,
                            &key,
                            data.high_watermark,
                            data.log_start_offset,
                        );
                        self.check_served_batches(held.client, index, &key, data);
                    }
                }
            }
            ResponseKind::ListOffsets(list) => {
                if !held.list_offsets_latest {
                    return;
                }
                for topic in &list.topics {
                    for data in &topic.partitions {
                        if data.error_code != 0 {
                            continue;
                        }
                        let key =
                            TopicPartition::new(topic.name.0.to_string(), data.partition_index);
                        self.check_reported(
                            nodes,
                            held.client,
                            index,
                            incarnation,
                            &key,
                            data.offset,
                            -1,
                        );
                    }
                }
            }
            ResponseKind::CreateTopics(created) => {
                for topic in &created.topics {
                    if topic.error_code == 0 {
                        self.topics_acknowledged.insert(topic.name.0.to_string());
                    }
                }
            }
            _ => {}
        }
    }

    /// Remembers the offsets a Produce answer acknowledged.
    fn record_acknowledged(
        &mut self,
        held: &HeldRequest,
        produce: &kafka_protocol::messages::ProduceResponse,
    ) {
        for topic in &produce.responses {
            for partition in &topic.partition_responses {
                if partition.error_code != 0 {
                    continue;
                }
                let key = TopicPartition::new(topic.name.0.to_string(), partition.index);
                let end = partition.base_offset + held.produce_records;
                let acknowledged = self.acknowledged_end.entry(key).or_insert(0);
                *acknowledged = (*acknowledged).max(end);
            }
        }
    }

    /// Every batch a fetch of `key` returned passes its CRC and lies wholly below the
    /// high watermark reported with it.
    fn check_served_batches(
        &mut self,
        client: u32,
        index: u32,
        key: &TopicPartition,
        data: &kafka_protocol::messages::fetch_response::PartitionData,
    ) {
        let records = data.records.clone().unwrap_or_default();
        let batches = match decode_batches(&records) {
            Ok(batches) => batches,
            Err(reason) => {
                let violation = format!(
                    "node {index} served a batch of {}-{} that fails its checks: {reason}",
                    key.topic, key.partition
                );
                return self.fail_response(client, violation);
            }
        };
        for batch in batches {
            if batch.header.last_offset() >= data.high_watermark {
                self.fail_response(
                    client,
                    format!(
                        "node {index} served offsets {}..={} of {}-{} above the high watermark {}",
                        batch.header.base_offset,
                        batch.header.last_offset(),
                        key.topic,
                        key.partition,
                        data.high_watermark
                    ),
                );
            }
        }
    }

    /// A broker never answers as if a topic did not exist (UNKNOWN_TOPIC_OR_PARTITION,
    /// or left out of a Metadata answer for every topic) when it applied that topic's
    /// creation before, in this incarnation or an earlier one, and the creation was
    /// acknowledged (issue 15). A broker that never heard of a topic may say so, as
    /// Kafka's brokers do while metadata propagates (decision 0011).
    pub(crate) fn check_known_topics(
        &mut self,
        applied: &BTreeSet<String>,
        index: u32,
        held: &HeldRequest,
        response: &ResponseKind,
    ) {
        let denied = denied_topics(&self.topics_acknowledged, applied, held, response);
        if let Some(topic) = denied.first() {
            let violation = format!(
                "node {index} answered as if topic {topic} did not exist, though it had \
                 applied its acknowledged creation before"
            );
            self.fail_response(held.client, violation);
        }
    }

    /// In a cluster, after every step of node `index`: at most one leader per
    /// partition and epoch, and a node that starts leading a partition holds every
    /// acknowledged offset of it (Raft's leader completeness: an acknowledged record
    /// was committed, so every later leader has it).
    pub(crate) fn check_leaders(&mut self, nodes: &[SimNode], history: &History, index: u32) {
        let Some(node) = nodes[index as usize].node.as_ref() else {
            return;
        };
        let leaders = &self.leaders;
        let known = |key: &TopicPartition, epoch: i32| {
            leaders.get(key).and_then(|epochs| epochs.get(&epoch)) == Some(&index)
        };
        let mut leading = Vec::new();
        let metadata = node.metadata().raft();
        if metadata.check_leader().is_ok() && !known(&self.metadata_key, metadata.leader_epoch()) {
            // What the quorum has acknowledged are topics, not offsets: the offset
            // check below is vacuous for it.
            leading.push((self.metadata_key.clone(), metadata.leader_epoch(), i64::MAX));
        }
        for (key, partition) in node.partitions() {
            if partition.is_leader() && !known(key, partition.leader_epoch()) {
                leading.push((
                    key.clone(),
                    partition.leader_epoch(),
                    partition.log().log_end_offset(),
                ));
            }
        }
        for (key, epoch, end) in leading {
            let epochs = self.leaders.entry(key.clone()).or_default();
            if let Some(&other) = epochs.get(&epoch) {
                self.fail(format!(
                    "two leaders of {}-{} in epoch {epoch}: node {other} and node {index}",
                    key.topic, key.partition
                ));
                continue;
            }
            epochs.insert(epoch, index);
            let acknowledged = self.acknowledged_end.get(&key).copied().unwrap_or(0);
            if end < acknowledged {
                self.mark_lost_sends(
                    history,
                    &key.topic,
                    Some(key.partition),
                    end,
                    &format!(
                        "acknowledged, and missing from node {index}, the leader of epoch {epoch}"
                    ),
                );
                self.fail(format!(
                    "node {index} leads {}-{} in epoch {epoch} with log end offset {end}, below the acknowledged offset {acknowledged}; replicas: {}",
                    key.topic,
                    key.partition,
                    describe_partition(nodes, &key)
                ));
            }
        }
    }

    /// Whether node `index` answered for `key` as a leader that a newer one has
    /// replaced without its knowing (partitioned away, say): such a stale leader may
    /// report an older high watermark, as a Kafka leader may, and clients read less.
    fn is_stale_leader(&self, nodes: &[SimNode], index: u32, key: &TopicPartition) -> bool {
        let Some(partition) = nodes[index as usize]
            .node
            .as_ref()
            .and_then(|node| node.partition(key))
        else {
            return false;
        };
        self.leaders
            .get(key)
            .and_then(|epochs| epochs.last_key_value())
            .is_some_and(|(&max, _)| partition.leader_epoch() < max)
    }

    /// Marks, for the timeline, the acknowledged sends of `topic` (one partition of
    /// it, or all) at or above `from_offset` with why they are lost.
    fn mark_lost_sends(
        &mut self,
        history: &History,
        topic: &str,
        partition: Option<i32>,
        from_offset: i64,
        why: &str,
    ) {
        if self.violation.is_some() {
            return;
        }
        for operation in history.operations() {
            let Some(Outcome::Ok(Reply::Sent { offset })) = operation.outcome else {
                continue;
            };
            if operation.partition.topic == topic
                && partition.is_none_or(|p| p == operation.partition.partition)
                && offset >= from_offset
            {
                self.violation_marks
                    .insert(operation.index, why.to_string());
            }
        }
    }

    /// In a cluster, once the final reads are done: every running node knows every
    /// acknowledged topic, and the replicas of each partition hold the same batches
    /// (offsets, epochs, CRCs) below the high watermarks they share.
    pub(crate) fn check_cluster_at_end(
        &mut self,
        nodes: &mut [SimNode],
        rot_targets: &BTreeMap<String, u32>,
    ) -> EndOfRun {
        let mut problems = self.unknown_acknowledged_topics(nodes);
        let keys: BTreeSet<TopicPartition> = nodes
            .iter()
            .filter_map(|sim_node| sim_node.node.as_ref())
            .flat_map(|node| node.partitions().map(|(key, _)| key.clone()))
            .collect();
        let mut end = EndOfRun {
            latent_rot: 0,
            replica_repairs: 0,
        };
        for key in keys {
            let replicas = read_replicas(nodes, &key, rot_targets, &mut end, &mut problems);
            // Replicas compact on their own (as in Kafka): their cleaned batches
            // differ in CRC and their fillers in bounds, so they are compared record
            // by record instead (and the compaction workload's checker holds its
            // partition to more, `compaction_check.rs`).
            if is_compacted(nodes, &key) {
                problems.extend(compacted_replicas_that_differ(nodes, &key));
            } else {
                // After DeleteRecords each replica deletes the whole segments below
                // the point on its own, and replicas roll segments at different
                // offsets: below the highest log start some still hold batches the
                // others deleted.
                let start = nodes
                    .iter()
                    .filter_map(|sim_node| sim_node.node.as_ref()?.partition(&key))
                    .map(|replica| replica.log().log_start_offset())
                    .max()
                    .unwrap_or(0);
                problems.extend(replicas_that_differ(&key, &replicas, start));
            }
        }
        if let Some(problem) = problems.into_iter().next() {
            self.fail(problem);
        }
        end
    }

    /// An acknowledged topic a broker does not know at the end, for each broker that
    /// must know it: the controller, and any broker that applied everything the
    /// controller committed (one that restarted a moment ago may not have learnt the
    /// quorum's high watermark yet).
    fn unknown_acknowledged_topics(&self, nodes: &[SimNode]) -> Vec<String> {
        let mut problems = Vec::new();
        let controller_high_watermark = controller_high_watermark(nodes);
        for sim_node in nodes {
            let Some(node) = sim_node.node.as_ref() else {
                continue;
            };
            let metadata = node.metadata();
            if !metadata.is_leader() && metadata.applied_offset() < controller_high_watermark {
                continue;
            }
            for topic in &self.topics_acknowledged {
                if !node.cluster().topics.contains_key(topic) {
                    problems.push(format!(
                        "at the end node {} (metadata applied to offset {}) does not know the acknowledged topic {topic}",
                        sim_node.index,
                        metadata.applied_offset()
                    ));
                }
            }
        }
        problems
    }

    /// A high watermark (and maybe a log start offset, -1 if not reported) a node
    /// incarnation reported for `key`.
    #[allow(clippy::too_many_arguments)]
    fn check_reported(
        &mut self,
        nodes: &[SimNode],
        client: u32,
        index: u32,
        incarnation: u64,
        key: &TopicPartition,
        high_watermark: i64,
        log_start_offset: i64,
    ) {
        let acknowledged = self.acknowledged_end.get(key).copied().unwrap_or(0);
        if high_watermark < acknowledged && !self.is_stale_leader(nodes, index, key) {
            self.fail_response(
                client,
                format!(
                    "node {index} reported high watermark {high_watermark} for {}-{}, below the acknowledged offset {acknowledged}",
                    key.topic, key.partition
                ),
            );
        }
        if !self.reported.contains_key(key) {
            self.reported.insert(key.clone(), BTreeMap::new());
        }
        let entry = self
            .reported
            .get_mut(key)
            .expect("inserted above")
            .entry((index, incarnation))
            .or_insert((high_watermark, log_start_offset));
        if high_watermark < entry.0 {
            let before = entry.0;
            self.fail_response(
                client,
                format!(
                    "node {index} (incarnation {incarnation}) high watermark of {}-{} went back from {before} to {high_watermark}",
                    key.topic, key.partition
                ),
            );
            return;
        }
        if log_start_offset >= 0 && log_start_offset < entry.1 {
            let before = entry.1;
            self.fail_response(
                client,
                format!(
                    "node {index} (incarnation {incarnation}) log start offset of {}-{} went back from {before} to {log_start_offset}",
                    key.topic, key.partition
                ),
            );
            return;
        }
        entry.0 = high_watermark;
        entry.1 = entry.1.max(log_start_offset);
    }

    /// Right after a start: every acknowledged topic exists and no partition's high
    /// watermark is below an acknowledged offset.
    pub(crate) fn check_after_open(&mut self, nodes: &[SimNode], history: &History, index: u32) {
        if nodes.len() > 1 {
            // A restarted broker may lag (the records and topics it missed are in a
            // quorum of the others): the cluster checks are `check_leaders` and
            // `check_cluster_at_end`.
            return;
        }
        let node = nodes[index as usize].node.as_ref().expect("just opened");
        // Each problem with what it lost: sends of (topic, partition, or every
        // partition) acknowledged at or above an offset.
        let mut problems: Vec<(String, LostSends)> = Vec::new();
        for topic in &self.topics_acknowledged {
            if !node.cluster().topics.contains_key(topic) {
                problems.push((
                    format!("acknowledged topic {topic} is gone after a restart"),
                    LostSends {
                        topic: topic.clone(),
                        partition: None,
                        from_offset: 0,
                    },
                ));
            }
        }
        for (key, acknowledged) in &self.acknowledged_end {
            let (problem, from_offset) = match node.partition(key) {
                Some(partition) if partition.high_watermark() < *acknowledged => (
                    format!(
                        "after a restart {}-{} has high watermark {}, below the acknowledged offset {acknowledged}",
                        key.topic,
                        key.partition,
                        partition.high_watermark()
                    ),
                    partition.high_watermark(),
                ),
                Some(_) => continue,
                None => (
                    format!(
                        "after a restart {}-{} (with acknowledged records) is missing",
                        key.topic, key.partition
                    ),
                    0,
                ),
            };
            let lost = LostSends {
                topic: key.topic.clone(),
                partition: Some(key.partition),
                from_offset,
            };
            problems.push((problem, lost));
        }
        if let Some((problem, lost)) = problems.into_iter().next() {
            self.mark_lost_sends(
                history,
                &lost.topic,
                lost.partition,
                lost.from_offset,
                &format!("acknowledged, and gone after node {index} restarted"),
            );
            self.fail(format!("node {index}: {problem}"));
        }
    }

    /// The sim-side final check: every acknowledged record is in the final reads at
    /// the offset it was acknowledged with. (The model's checkers do this and much
    /// more; this one needs nothing but the history and runs even without them.)
    pub(crate) fn check_final_reads(
        &mut self,
        history: &History,
        final_values: &BTreeMap<PartitionKey, BTreeMap<i64, u64>>,
    ) -> Result<(), String> {
        for operation in history.operations() {
            let (Call::Send { value }, Some(Outcome::Ok(Reply::Sent { offset }))) =
                (&operation.call, &operation.outcome)
            else {
                continue;
            };
            let found = final_values
                .get(&operation.partition)
                .and_then(|values| values.get(offset));
            if found != Some(value) {
                self.violation_marks.insert(
                    operation.index,
                    "acknowledged, and not found at its offset by the final reads".to_string(),
                );
                return Err(format!(
                    "acknowledged record lost: value {value} acknowledged at {}-{} offset {offset}, the final read found {found:?} there",
                    operation.partition.topic, operation.partition.partition
                ));
            }
        }
        Ok(())
    }
}

/// A replica at the end: its node, its high watermark, and its committed batches as
/// (base, last, epoch, crc).
type ReplicaBatches = (u32, i64, Vec<(i64, i64, i32, u32)>);

/// Every live replica of `key` at the end. Counts the replicas whose rot nobody read
/// yet and the losses their hard states recorded into `end`; a replica that cannot be
/// read otherwise is a problem.
fn read_replicas(
    nodes: &mut [SimNode],
    key: &TopicPartition,
    rot_targets: &BTreeMap<String, u32>,
    end: &mut EndOfRun,
    problems: &mut Vec<String>,
) -> Vec<ReplicaBatches> {
    let mut replicas = Vec::new();
    for sim_node in nodes.iter_mut() {
        let index = sim_node.index;
        let Some(node) = sim_node.node.as_mut() else {
            continue;
        };
        let Some(high_watermark) = node.partition(key).map(|p| p.high_watermark()) else {
            continue;
        };
        let rotted = rot_targets.get(&format!("{}-{}", key.topic, key.partition)) == Some(&index);
        let group = odradek_replication::peer::GroupId::Partition(key.clone());
        end.replica_repairs += durable_hard_state(sim_node.io.disk.inner(), &group)
            .map_or(0, |state| u64::from(state.losses));
        match node.committed_batches(&mut sim_node.io, key) {
            Some(batches) => replicas.push((index, high_watermark, batches)),
            // Rot nobody read yet: the replica never served it and has not
            // needed it (the final reads went through the leaders).
            None if rotted => end.latent_rot += 1,
            None => problems.push(format!(
                "at the end node {index} cannot read its replica of {}-{}",
                key.topic, key.partition
            )),
        }
    }
    replicas
}

/// Whether some live replica of `key` runs with a cleanup policy that compacts.
fn is_compacted(nodes: &[SimNode], key: &TopicPartition) -> bool {
    nodes
        .iter()
        .filter_map(|sim_node| sim_node.node.as_ref()?.partition(key))
        .any(|partition| partition.log().config().cleanup_policy.compacts())
}

/// A replica's records below its high watermark, by offset: (key, value).
type ReplicaRecords = BTreeMap<i64, (Option<Vec<u8>>, Option<Vec<u8>>)>;

/// The replicas of compacted `key` that hold, at an offset below the common high
/// watermark that the first replica also holds, another record than it does (each may
/// have removed different records, but never changed one), one problem each. A
/// replica whose records cannot be decoded (compressed by a client) is left to the
/// compaction workload's checker.
fn compacted_replicas_that_differ(nodes: &mut [SimNode], key: &TopicPartition) -> Vec<String> {
    let mut replicas: Vec<(u32, i64, ReplicaRecords)> = Vec::new();
    for sim_node in nodes.iter_mut() {
        let index = sim_node.index;
        let Some(node) = sim_node.node.as_mut() else {
            continue;
        };
        let Some(high_watermark) = node.partition(key).map(|p| p.high_watermark()) else {
            continue;
        };
        let Some(log) = node.committed_log(&mut sim_node.io, key) else {
            continue;
        };
        let mut records = ReplicaRecords::new();
        let decoded = odradek_log::batch::for_each_record(&log, |record| {
            let owned = |bytes: Option<&[u8]>| bytes.map(<[u8]>::to_vec);
            records.insert(record.offset, (owned(record.key), owned(record.value)));
            Ok::<(), odradek_log::batch::RecordsError>(())
        });
        if decoded.is_ok() {
            replicas.push((index, high_watermark, records));
        }
    }
    let common = replicas.iter().map(|(_, hw, _)| *hw).min().unwrap_or(0);
    let Some((first, _, expected)) = replicas.first() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (index, _, found) in &replicas[1..] {
        let differing = found
            .range(..common)
            .find(|(offset, record)| expected.get(offset).is_some_and(|e| e != *record));
        if let Some((offset, _)) = differing {
            problems.push(format!(
                "replicas of compacted {}-{} on nodes {first} and {index} hold different records at offset {offset}, below their common high watermark {common}",
                key.topic, key.partition
            ));
        }
    }
    problems
}

/// The replicas of `key` whose batches below the common high watermark, from `start`
/// (the highest log start among them), differ from the first replica's, one problem
/// each.
fn replicas_that_differ(
    key: &TopicPartition,
    replicas: &[ReplicaBatches],
    start: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(common) = replicas.iter().map(|(_, hw, _)| *hw).min() else {
        return problems;
    };
    let below = |batches: &[(i64, i64, i32, u32)]| -> Vec<(i64, i64, i32, u32)> {
        batches
            .iter()
            .filter(|batch| batch.0 >= start && batch.1 < common)
            .copied()
            .collect()
    };
    let Some((first, _, first_batches)) = replicas.first() else {
        return problems;
    };
    let expected = below(first_batches);
    for (index, _, batches) in &replicas[1..] {
        let found = below(batches);
        if found != expected {
            let at = expected
                .iter()
                .zip(&found)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{a:?} against {b:?}"))
                .unwrap_or_else(|| format!("{} batches against {}", expected.len(), found.len()));
            problems.push(format!(
                "replicas of {}-{} on nodes {first} and {index} differ below their common high watermark {common}: (base, last, epoch, crc) {at}",
                key.topic, key.partition
            ));
        }
    }
    problems
}

/// The topics `response` denies (unknown, or left out of an answer for every topic)
/// that are both `acknowledged` and `applied` by the node that answered.
fn denied_topics(
    acknowledged: &BTreeSet<String>,
    applied: &BTreeSet<String>,
    held: &HeldRequest,
    response: &ResponseKind,
) -> Vec<String> {
    let known = |topic: &str| acknowledged.contains(topic) && applied.contains(topic);
    let unknown =
        |error: i16| error == odradek_replication::error::ErrorCode::UnknownTopicOrPartition.code();
    let mut denied: Vec<String> = Vec::new();
    match response {
        ResponseKind::Metadata(metadata) => {
            let listed: BTreeSet<&str> = metadata
                .topics
                .iter()
                .filter(|t| !unknown(t.error_code))
                .filter_map(|t| t.name.as_ref().map(|name| name.0.as_str()))
                .collect();
            for topic in &metadata.topics {
                let name = topic.name.as_ref().map_or("", |name| name.0.as_str());
                if unknown(topic.error_code) && known(name) {
                    denied.push(name.to_string());
                }
            }
            if held.metadata_all_topics {
                let missing = acknowledged.intersection(applied);
                denied.extend(missing.filter(|t| !listed.contains(t.as_str())).cloned());
            }
        }
        ResponseKind::Produce(produce) => {
            for topic in &produce.responses {
                if topic
                    .partition_responses
                    .iter()
                    .any(|p| unknown(p.error_code))
                    && known(topic.name.0.as_str())
                {
                    denied.push(topic.name.0.to_string());
                }
            }
        }
        ResponseKind::Fetch(fetch) => {
            for topic in &fetch.responses {
                if topic.partitions.iter().any(|p| unknown(p.error_code))
                    && known(topic.topic.0.as_str())
                {
                    denied.push(topic.topic.0.to_string());
                }
            }
        }
        ResponseKind::ListOffsets(list) => {
            for topic in &list.topics {
                if topic.partitions.iter().any(|p| unknown(p.error_code))
                    && known(topic.name.0.as_str())
                {
                    denied.push(topic.name.0.to_string());
                }
            }
        }
        _ => {}
    }
    denied
}

/// The metadata high watermark of the controller (the quorum leader of the
/// highest epoch running), or `i64::MAX` if none runs.
pub(crate) fn controller_high_watermark(nodes: &[SimNode]) -> i64 {
    nodes
        .iter()
        .filter_map(|sim_node| sim_node.node.as_ref())
        .map(|node| node.metadata().raft())
        .filter(|raft| raft.check_leader().is_ok())
        .max_by_key(|raft| raft.leader_epoch())
        .map_or(i64::MAX, |raft| raft.high_watermark())
}

/// One partition's replicas, for a report: per node, `L` (leads) or `F`, the epoch,
/// the high watermark and the log end offset, and `offline` if its log failed.
pub(crate) fn describe_partition(nodes: &[SimNode], key: &TopicPartition) -> String {
    {
        let replicas: Vec<String> = nodes
            .iter()
            .filter_map(|sim_node| {
                let partition = sim_node.node.as_ref()?.partition(key)?;
                Some(format!(
                    "n{} {} e{} hw {} leo {}{}",
                    sim_node.index,
                    if partition.is_leader() { "L" } else { "F" },
                    partition.leader_epoch(),
                    partition.high_watermark(),
                    partition.log().log_end_offset(),
                    if partition.is_offline() {
                        " offline"
                    } else {
                        ""
                    }
                ))
            })
            .collect();
        format!("{}-{} [{}]", key.topic, key.partition, replicas.join(", "))
    }
}

/// The hard state a restart of the node would read for `group`: the newer valid one of
/// its two durable copies.
fn durable_hard_state(
    disk: &odradek_log::mem_disk::MemDisk,
    group: &odradek_replication::peer::GroupId,
) -> Option<odradek_replication::raft::HardState> {
    let [first, second] = hard_state_paths(group).map(|path| disk.durable_contents(&path));
    newest_hard_state(first.as_deref(), second.as_deref())
}

/// The key the cluster checks use for the metadata quorum: Kafka's name for its log.
fn metadata_key() -> TopicPartition {
    TopicPartition::new("__cluster_metadata", 0)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{FetchResponse, ProduceResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::clock::NodeClock;
    use crate::disk::{DiskFaults, SimDisk};
    use crate::node::{Buggify, SimIo};
    use crate::rng::SimRng;

    /// One node, down: the checks read no state of it for these responses.
    fn one_node() -> Vec<SimNode> {
        let disk = SimDisk::new(SimRng::new(1, 1), 1, DiskFaults::default());
        let io = SimIo::new(
            disk,
            NodeClock::new(0, 0),
            SimRng::new(1, 2),
            Buggify::new(1, 0),
        );
        vec![SimNode::new(0, io)]
    }

    fn held(produce_records: i64) -> HeldRequest {
        HeldRequest {
            client: 7,
            correlation: 1,
            acks_zero: false,
            produce_records,
            list_offsets_latest: false,
            metadata_all_topics: false,
        }
    }

    fn topic() -> TopicName {
        TopicName(StrBytes::from_static_str("t"))
    }

    /// A Produce answer: the batch of `held` went to offset `base` of t-0.
    fn produced(base: i64) -> ResponseKind {
        let partition = PartitionProduceResponse::default()
            .with_index(0)
            .with_base_offset(base);
        let topic = TopicProduceResponse::default()
            .with_name(topic())
            .with_partition_responses(vec![partition]);
        ResponseKind::Produce(ProduceResponse::default().with_responses(vec![topic]))
    }

    /// A Fetch answer of t-0 with no records and high watermark `high_watermark`.
    fn fetched(high_watermark: i64) -> ResponseKind {
        let partition = PartitionData::default()
            .with_partition_index(0)
            .with_high_watermark(high_watermark);
        let topic = FetchableTopicResponse::default()
            .with_topic(topic())
            .with_partitions(vec![partition]);
        ResponseKind::Fetch(FetchResponse::default().with_responses(vec![topic]))
    }

    #[test]
    fn a_high_watermark_below_an_acknowledged_offset_is_flagged() {
        let nodes = one_node();
        let mut checker = Checker::new();
        checker.check_response(&nodes, 0, 1, &held(5), &produced(10));
        checker.check_response(&nodes, 0, 1, &held(0), &fetched(15));
        assert_eq!(checker.take_violation(), None);
        checker.check_response(&nodes, 0, 1, &held(0), &fetched(12));
        let violation = checker.violation_to_note().expect("a violation");
        assert!(
            violation.contains("below the acknowledged offset 15"),
            "{violation}"
        );
        assert_eq!(checker.violation_client(), Some(7));
        assert_eq!(checker.violation_to_note(), None, "noted once");
    }

    #[test]
    fn a_high_watermark_that_goes_back_within_an_incarnation_is_flagged() {
        let nodes = one_node();
        let mut checker = Checker::new();
        checker.check_response(&nodes, 0, 1, &held(0), &fetched(9));
        checker.check_response(&nodes, 0, 2, &held(0), &fetched(3));
        assert_eq!(
            checker.take_violation(),
            None,
            "a new incarnation starts afresh"
        );
        checker.check_response(&nodes, 0, 2, &held(0), &fetched(2));
        let violation = checker.take_violation().expect("a violation");
        assert!(violation.contains("went back from 3 to 2"), "{violation}");
    }

    #[test]
    fn the_first_violation_is_the_one_kept() {
        let mut checker = Checker::new();
        checker.fail("first".to_string());
        checker.fail_response(3, "second".to_string());
        assert_eq!(checker.violation_client(), None);
        assert_eq!(checker.take_violation().as_deref(), Some("first"));
    }
}
