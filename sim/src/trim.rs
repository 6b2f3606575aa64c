//! The delete-records workload: a topic of its own, written with sequential values,
//! trimmed now and then with DeleteRecords, and read from its start to its end over
//! and over while the brokers delete whole segments below each point.
//!
//! ```text
//!  TrimClient ──CreateTopics(cleanup.policy=delete, small segments)──► sim-trim
//!             ──Produce(acks=all, no retry)──► acknowledged offsets
//!             ──DeleteRecords(partition 0 below an acknowledged offset, or -1)──►
//!                 the leader it believes in, or any broker
//!             ──ListOffsets(earliest), Fetch ... to the end, again ──► (checked by the
//!                 world when the broker answers: trim_check.rs)
//! ```
//!
//! A seed has the workload or not by a draw of its own stream, so the seeds without
//! it draw everything else as before; its client comes after every other client, so
//! theirs keep their indexes. The client creates its topic itself (the admin's topics
//! stay as they were). After faults heal it must get one batch acknowledged, one
//! deletion applied, and read one whole pass that starts after that deletion.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteRecordsRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch::build_batch_with_nullable_values;
use odradek_model::history::PartitionKey;

use crate::clock::WALL_CLOCK_ORIGIN_MS;
use crate::records::encode_value;
use crate::rng::SimRng;
use crate::trim_check::{DeletionEnd, TRIMMED_TOPIC, TrimChecker};
use crate::workload::{
    CREATE_TOPICS_VERSION, Ctx, FETCH_VERSION, LIST_OFFSETS_VERSION, MS, PRODUCE_VERSION, Phase,
    code, fetch_partition, fetch_request, list_offsets_partition, list_offsets_request,
    produce_request, topic_name,
};

/// The random stream the workload's plan draws from (its client draws from the next).
const TRIM_STREAM: u64 = 11;

/// DeleteRecords v2 (flexible versions).
const DELETE_RECORDS_VERSION: i16 = 2;

/// Kafka's error for DeleteRecords on a topic whose policy does not delete.
const POLICY_VIOLATION: i16 = 44;

/// Bytes a read asks for.
const READ_BYTES: i32 = 16 << 10;

/// A seed's delete-records workload.
#[derive(Clone, Debug)]
pub struct TrimPlan {
    records_per_batch_max: u64,
    value_bytes_max: u64,
    think_ns: u64,
    /// Time between two DeleteRecords.
    delete_every_ns: u64,
    /// Chance a DeleteRecords asks for -1 (the high watermark).
    high_watermark_ppm: u64,
    /// Chance a DeleteRecords goes to any broker instead of the leader.
    any_broker_ppm: u64,
    /// The topic's `segment.bytes`.
    segment_bytes: i64,
}

impl TrimPlan {
    /// The seed's delete-records workload: one seed in three has one, unless `forced`
    /// says every seed or none.
    pub fn draw(seed: u64, forced: Option<bool>) -> Option<TrimPlan> {
        let mut rng = SimRng::new(seed, TRIM_STREAM);
        let drawn = rng.below(3) == 0;
        if !forced.unwrap_or(drawn) {
            return None;
        }
        Some(TrimPlan {
            records_per_batch_max: rng.pick(&[1, 3, 8]),
            value_bytes_max: rng.pick(&[8, 100, 400]),
            think_ns: rng.pick(&[5, 20, 50]) * MS,
            delete_every_ns: rng.pick(&[100, 500, 2_000]) * MS,
            high_watermark_ppm: rng.pick(&[0, 100_000, 300_000]),
            any_broker_ppm: rng.pick(&[0, 200_000, 500_000]),
            segment_bytes: rng.pick(&[1_024, 4_096, 16_384]),
        })
    }

    /// One line for the run's report.
    pub fn summary(&self) -> String {
        format!(
            "trimmed {TRIMMED_TOPIC}: <= {} records per batch, DeleteRecords every {} ms ({} ppm at -1, {} ppm to any broker), segment.bytes {}",
            self.records_per_batch_max,
            self.delete_every_ns / MS,
            self.high_watermark_ppm,
            self.any_broker_ppm,
            self.segment_bytes
        )
    }
}

/// Where the client's reading stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// Nothing in flight: ask for the start next.
    Idle,
    /// ListOffsets(earliest) in flight.
    Listing(u64),
    /// Reading from this offset; a fetch may be in flight.
    At(i64, Option<u64>),
}

/// Writes the trimmed partition, trims it, and reads it from its start to its end.
pub struct TrimClient {
    plan: TrimPlan,
    rng: SimRng,
    key: PartitionKey,
    created: bool,
    create: Option<u64>,
    produce: Option<(u64, Vec<u64>)>,
    next_batch_at: u64,
    next_value: u64,
    delete: Option<u64>,
    next_delete_at: u64,
    read: Read,
    /// The pass under way started after a deletion was applied in the liveness phase.
    pass_counts: bool,
    acknowledged_after_heal: bool,
    deleted_after_heal: bool,
    read_after_heal: bool,
    /// What it wrote and deleted, and the checks of the brokers' answers.
    checker: TrimChecker,
}

impl TrimClient {
    /// The client of `plan`.
    pub fn new(seed: u64, plan: &TrimPlan) -> TrimClient {
        TrimClient {
            plan: plan.clone(),
            rng: SimRng::new(seed, TRIM_STREAM + 1),
            key: PartitionKey {
                topic: TRIMMED_TOPIC.to_string(),
                partition: 0,
            },
            created: false,
            create: None,
            produce: None,
            next_batch_at: 0,
            next_value: 1,
            delete: None,
            next_delete_at: plan.delete_every_ns,
            read: Read::Idle,
            pass_counts: false,
            acknowledged_after_heal: false,
            deleted_after_heal: false,
            read_after_heal: false,
            checker: TrimChecker::default(),
        }
    }

    /// The checker, for the world's checks of the brokers' answers and of the end.
    pub fn checker_mut(&mut self) -> &mut TrimChecker {
        &mut self.checker
    }

    /// The plan and the checker's counts, for the report.
    pub fn summary(&self) -> String {
        format!("{}; {}", self.plan.summary(), self.checker.summary())
    }

    /// Whether it did what the liveness phase asks and has nothing in flight.
    pub fn is_done(&self, phase: Phase) -> bool {
        phase >= Phase::Liveness
            && self.acknowledged_after_heal
            && self.deleted_after_heal
            && self.read_after_heal
            && self.produce.is_none()
            && self.delete.is_none()
            && matches!(self.read, Read::Idle | Read::At(_, None))
    }

    /// What it waits for (for a liveness failure report).
    pub fn describe(&self) -> String {
        format!(
            "trim client: created {} produce {:?} delete {:?} read {:?}; after heal acknowledged {} deleted {} read {}",
            self.created,
            self.produce.as_ref().map(|(c, _)| c),
            self.delete,
            self.read,
            self.acknowledged_after_heal,
            self.deleted_after_heal,
            self.read_after_heal
        )
    }

    /// A timer came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !self.created {
            if self.create.is_none() {
                self.create_topic(ctx);
            }
            return;
        }
        let phase = ctx.shared.phase;
        let liveness = phase == Phase::Liveness;
        let writing = phase == Phase::Safety || (liveness && !self.acknowledged_after_heal);
        if writing && self.produce.is_none() {
            if self.next_batch_at <= ctx.now {
                self.start_batch(ctx);
            } else {
                ctx.wake_at(self.next_batch_at);
            }
        }
        let deleting = phase == Phase::Safety || (liveness && !self.deleted_after_heal);
        if deleting && self.delete.is_none() {
            if self.next_delete_at <= ctx.now {
                self.start_deletion(ctx);
            } else {
                ctx.wake_at(self.next_delete_at);
            }
        }
        let reading = phase == Phase::Safety || (liveness && !self.read_after_heal);
        if reading {
            self.continue_reading(ctx);
        }
    }

    /// Creates the topic: one partition, deleting, in small segments.
    fn create_topic(&mut self, ctx: &mut Ctx<'_>) {
        let replication_factor = if ctx.shared.nodes > 1 {
            ctx.shared.nodes.min(3) as i16
        } else {
            -1
        };
        let configs = [
            ("cleanup.policy", "delete".to_string()),
            ("segment.bytes", self.plan.segment_bytes.to_string()),
        ]
        .into_iter()
        .map(|(name, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(value)))
        })
        .collect();
        let topic = CreatableTopic::default()
            .with_name(topic_name(TRIMMED_TOPIC))
            .with_num_partitions(1)
            .with_replication_factor(replication_factor)
            .with_configs(configs);
        let request = RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(vec![topic]),
        );
        // Only the controller creates topics (others answer NOT_CONTROLLER).
        let node = match ctx.shared.routing.controller {
            Some(controller) if ctx.shared.nodes > 1 => controller,
            _ => ctx.shared.any_node(),
        };
        self.create = Some(ctx.send_to(node, request, CREATE_TOPICS_VERSION, Some(2_000 * MS)));
    }

    fn start_batch(&mut self, ctx: &mut Ctx<'_>) {
        let count = self.rng.range(1, self.plan.records_per_batch_max + 1);
        let value_bytes = self.rng.range(8, self.plan.value_bytes_max + 1) as usize;
        let values: Vec<u64> = (0..count).map(|i| self.next_value + i).collect();
        self.next_value += count;
        let encoded: Vec<Vec<u8>> = values
            .iter()
            .map(|&value| encode_value(value, value_bytes))
            .collect();
        let timestamp = WALL_CLOCK_ORIGIN_MS + (ctx.now / MS) as i64;
        let batch = build_batch_with_nullable_values(
            timestamp,
            encoded.iter().map(|value| (None, Some(&value[..]))),
        );
        // acks=all, no retry: an answer ends each write.
        let request = produce_request(&self.key, -1, Bytes::from(batch), 2_000);
        let correlation = ctx.send_to_leader(&self.key, request, PRODUCE_VERSION, Some(2_000 * MS));
        self.produce = Some((correlation, values));
    }

    /// Asks to delete below an offset it knows is acknowledged (at most one past the
    /// highest), or below the high watermark.
    fn start_deletion(&mut self, ctx: &mut Ctx<'_>) {
        let offset = if self.rng.chance(self.plan.high_watermark_ppm) {
            -1
        } else {
            let low = self.checker.deleted_point().max(0);
            let high = self.checker.highest_acknowledged() + 1;
            if high <= low {
                low
            } else {
                self.rng.range(low as u64, high as u64 + 1) as i64
            }
        };
        let request = RequestKind::DeleteRecords(
            DeleteRecordsRequest::default()
                .with_topics(vec![
                    DeleteRecordsTopic::default()
                        .with_name(topic_name(TRIMMED_TOPIC))
                        .with_partitions(vec![
                            DeleteRecordsPartition::default()
                                .with_partition_index(0)
                                .with_offset(offset),
                        ]),
                ])
                .with_timeout_ms(2_000),
        );
        let node = if self.rng.chance(self.plan.any_broker_ppm) {
            ctx.shared.any_node()
        } else {
            ctx.shared.leader_of(&self.key)
        };
        let correlation = ctx.send_to(node, request, DELETE_RECORDS_VERSION, Some(3_000 * MS));
        self.checker.deletion_sent(correlation, offset);
        self.delete = Some(correlation);
        ctx.shared.count("trim.delete-records");
    }

    fn continue_reading(&mut self, ctx: &mut Ctx<'_>) {
        match self.read {
            Read::Idle => {
                self.pass_counts = ctx.shared.phase == Phase::Liveness && self.deleted_after_heal;
                let request = list_offsets_request(&self.key, -2);
                let correlation =
                    ctx.send_to_leader(&self.key, request, LIST_OFFSETS_VERSION, Some(2_000 * MS));
                self.read = Read::Listing(correlation);
            }
            Read::At(offset, None) => {
                let request = fetch_request(&self.key, offset, 0, 0, READ_BYTES);
                let correlation =
                    ctx.send_to_leader(&self.key, request, FETCH_VERSION, Some(2_000 * MS));
                self.checker.fetch_sent(correlation, offset);
                self.read = Read::At(offset, Some(correlation));
            }
            Read::Listing(_) | Read::At(_, Some(_)) => {}
        }
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if self.create == Some(correlation) {
            self.create = None;
            self.topic_created(ctx, response);
        } else if self
            .produce
            .as_ref()
            .is_some_and(|(c, _)| *c == correlation)
        {
            let (_, values) = self.produce.take().expect("checked above");
            let ResponseKind::Produce(produced) = response else {
                panic!("a produce request got another kind of response")
            };
            let partition = &produced.responses[0].partition_responses[0];
            if partition.error_code == code::NONE {
                self.checker.acknowledged(partition.base_offset, &values);
                self.acknowledged_after_heal |= ctx.shared.phase == Phase::Liveness;
            } else {
                ctx.shared.leader_stale(&self.key);
            }
            self.next_batch_at = ctx.now + self.plan.think_ns;
            ctx.wake_at(self.next_batch_at);
        } else if self.delete == Some(correlation) {
            self.delete = None;
            self.deletion_answered(ctx, correlation, response);
        } else if self.read == Read::Listing(correlation) {
            match list_offsets_partition(response) {
                Some((code::NONE, start)) if start >= 0 => self.read = Read::At(start, None),
                _ => self.read_failed(ctx),
            }
            ctx.wake_at(ctx.now);
        } else if let Read::At(_, Some(fetch)) = self.read
            && fetch == correlation
        {
            self.fetched(ctx, response);
        }
    }

    fn topic_created(&mut self, ctx: &mut Ctx<'_>, response: &ResponseKind) {
        if let ResponseKind::CreateTopics(created) = response {
            for topic in &created.topics {
                if matches!(topic.error_code, code::NONE | code::TOPIC_ALREADY_EXISTS) {
                    self.created = true;
                } else if topic.error_code == code::NOT_CONTROLLER {
                    ctx.shared.controller_stale();
                }
            }
        }
        let at = if self.created { ctx.now } else { ctx.backoff() };
        ctx.wake_at(at);
    }

    fn deletion_answered(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        let ResponseKind::DeleteRecords(deleted) = response else {
            panic!("a delete-records request got another kind of response")
        };
        let error = deleted
            .topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .find(|partition| partition.partition_index == 0)
            .map_or(code::UNKNOWN_TOPIC_OR_PARTITION, |p| p.error_code);
        let end = match error {
            code::NONE => DeletionEnd::Applied,
            // Refused before any record was written.
            code::NOT_LEADER_OR_FOLLOWER | code::OFFSET_OUT_OF_RANGE | POLICY_VIOLATION => {
                DeletionEnd::Failed
            }
            _ => DeletionEnd::Indefinite,
        };
        self.checker.deletion_ended(correlation, end);
        if end == DeletionEnd::Applied {
            self.deleted_after_heal |= ctx.shared.phase == Phase::Liveness;
            ctx.shared.count("trim.deleted");
        } else {
            ctx.shared.leader_stale(&self.key);
        }
        self.next_delete_at = ctx.now + self.plan.delete_every_ns;
        ctx.wake_at(self.next_delete_at);
    }

    /// A fetch answered: move on past its last batch, or end the pass at the end.
    fn fetched(&mut self, ctx: &mut Ctx<'_>, response: &ResponseKind) {
        let Read::At(offset, _) = self.read else {
            return;
        };
        let Some((error, _, records)) = fetch_partition(response) else {
            panic!("a fetch answered with another kind of response")
        };
        let batches = crate::records::decode_batches(&records);
        match batches {
            Ok(batches) if error == code::NONE => match batches.last() {
                Some(last) => {
                    let next = offset.max(last.header.last_offset() + 1);
                    self.read = Read::At(next, None);
                    ctx.wake_at(ctx.now);
                }
                None => {
                    self.read_after_heal |= self.pass_counts;
                    self.read = Read::Idle;
                    ctx.shared.count("trim.read-pass");
                    ctx.wake_at(ctx.now + self.plan.think_ns);
                }
            },
            _ => self.read_failed(ctx),
        }
    }

    /// A read failed (its start moved, or the broker does not lead): a new pass later.
    fn read_failed(&mut self, ctx: &mut Ctx<'_>) {
        self.read = Read::Idle;
        ctx.shared.leader_stale(&self.key);
        let at = ctx.backoff();
        ctx.wake_at(at);
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        if self.create == Some(correlation) {
            self.create = None;
            ctx.shared.controller_stale();
        } else if self
            .produce
            .as_ref()
            .is_some_and(|(c, _)| *c == correlation)
        {
            self.produce = None;
            self.next_batch_at = ctx.now + self.plan.think_ns;
        } else if self.delete == Some(correlation) {
            self.delete = None;
            self.checker
                .deletion_ended(correlation, DeletionEnd::Indefinite);
            self.next_delete_at = ctx.now + self.plan.delete_every_ns;
        } else if self.read == Read::Listing(correlation)
            || matches!(self.read, Read::At(_, Some(fetch)) if fetch == correlation)
        {
            self.read = Read::Idle;
        } else {
            return;
        }
        ctx.shared.leader_stale(&self.key);
        let at = ctx.backoff();
        ctx.wake_at(at);
    }
}
