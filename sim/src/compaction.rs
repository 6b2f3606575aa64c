//! The compaction workload: a compacted topic, written with keys over few keys and
//! many updates (some of them tombstones), and read again and again from offset 0
//! while the brokers' cleaners rewrite it.
//!
//! ```text
//!  Admin ──CreateTopics(cleanup.policy=compact, small segments)──► sim-compact
//!  KeyedClient ──Produce(keyed batch, acks=all, no retry)──► ok / fail / indefinite
//!              ──Fetch(position) ... to the end, then from 0 again ──► (checked by the
//!                 world when the broker answers: compaction_check.rs)
//! ```
//!
//! A seed has the workload or not by a draw of its own stream, so the seeds without
//! it draw everything else as before. Keys come in *generations*: after a number of
//! batches the producer moves to fresh keys, so every older key's newest record stops
//! changing and the cleaner must keep it (or its tombstone, for a while) for good.
//! The producer is not idempotent and does not retry: an answer ends each write, and
//! one without an error code that says nothing was written leaves it indefinite.

use bytes::Bytes;
use kafka_protocol::messages::ResponseKind;
use odradek_log::batch::build_batch_with_nullable_values;
use odradek_model::history::PartitionKey;

use crate::clock::WALL_CLOCK_ORIGIN_MS;
use crate::records::encode_value;
use crate::rng::SimRng;
use crate::workload::{
    Ctx, FETCH_VERSION, MS, PRODUCE_VERSION, Phase, code, fetch_partition, fetch_request,
    produce_request,
};

/// The random stream the workload's plan and its client draw from.
const COMPACTION_STREAM: u64 = 7;

/// The compacted topic's name.
pub const COMPACTED_TOPIC: &str = "sim-compact";

/// Bytes a keyed read asks for.
const READ_BYTES: i32 = 64 << 10;

/// A seed's compaction workload.
#[derive(Clone, Debug)]
pub struct CompactionPlan {
    keys_per_generation: u64,
    batches_per_generation: u64,
    records_per_batch_max: u64,
    tombstone_ppm: u64,
    think_ns: u64,
    value_bytes_max: u64,
    /// The topic's `segment.bytes`.
    segment_bytes: i64,
    /// The topic's `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// The topic's `min.cleanable.dirty.ratio`.
    dirty_ratio: &'static str,
    /// The brokers' `log.cleaner.backoff.ms`.
    pub cleaner_backoff_ms: i64,
    /// The brokers' cleaner budget per step.
    pub cleaner_step_bytes: u64,
}

impl CompactionPlan {
    /// The seed's compaction workload: one seed in three has one, unless `forced`
    /// says every seed or none.
    pub fn draw(seed: u64, forced: Option<bool>) -> Option<CompactionPlan> {
        let mut rng = SimRng::new(seed, COMPACTION_STREAM);
        let drawn = rng.below(3) == 0;
        if !forced.unwrap_or(drawn) {
            return None;
        }
        Some(CompactionPlan {
            keys_per_generation: rng.range(2, 6),
            batches_per_generation: rng.pick(&[8, 20, 50]),
            records_per_batch_max: rng.pick(&[2, 4, 8]),
            tombstone_ppm: rng.pick(&[50_000, 150_000, 300_000]),
            think_ns: rng.pick(&[5, 20, 50]) * MS,
            value_bytes_max: rng.pick(&[8, 100, 400]),
            segment_bytes: rng.pick(&[1_024, 4_096, 16_384]),
            delete_retention_ms: rng.pick(&[500, 2_000, 8_000]),
            dirty_ratio: rng.pick(&["0.01", "0.1", "0.5"]),
            cleaner_backoff_ms: rng.pick(&[50, 200, 1_000]),
            cleaner_step_bytes: rng.pick(&[2_048, 16_384, 1 << 20]),
        })
    }

    /// The topic's configuration, as CreateTopics sends it.
    pub fn topic_configs(&self) -> Vec<(String, String)> {
        [
            ("cleanup.policy", "compact".to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("min.cleanable.dirty.ratio", self.dirty_ratio.to_string()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("min.compaction.lag.ms", "0".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// One line for the run's report.
    pub fn summary(&self) -> String {
        format!(
            "compacted {COMPACTED_TOPIC}: {} keys per generation of {} batches, <= {} records per batch, tombstones {} ppm, segment.bytes {}, delete.retention.ms {}, min.cleanable.dirty.ratio {}, cleaner backoff {} ms",
            self.keys_per_generation,
            self.batches_per_generation,
            self.records_per_batch_max,
            self.tombstone_ppm,
            self.segment_bytes,
            self.delete_retention_ms,
            self.dirty_ratio,
            self.cleaner_backoff_ms
        )
    }
}

/// The compacted partition.
pub fn compacted_partition() -> PartitionKey {
    PartitionKey {
        topic: COMPACTED_TOPIC.to_string(),
        partition: 0,
    }
}

/// Writes keyed batches to the compacted partition and reads it from 0 to its end,
/// over and over; after faults heal, one batch must be acknowledged and one whole
/// pass read.
pub struct KeyedClient {
    plan: CompactionPlan,
    rng: SimRng,
    key: PartitionKey,
    batches: u64,
    produce: Option<u64>,
    next_batch_at: u64,
    acknowledged_after_heal: bool,
    fetch: Option<u64>,
    position: i64,
    pass_from_heal: bool,
    read_after_heal: bool,
}

impl KeyedClient {
    /// The client of `plan`.
    pub fn new(seed: u64, plan: &CompactionPlan) -> KeyedClient {
        KeyedClient {
            plan: plan.clone(),
            rng: SimRng::new(seed, COMPACTION_STREAM + 1),
            key: compacted_partition(),
            batches: 0,
            produce: None,
            next_batch_at: 0,
            acknowledged_after_heal: false,
            fetch: None,
            position: 0,
            pass_from_heal: false,
            read_after_heal: false,
        }
    }

    /// Whether it did what the liveness phase asks and has nothing in flight.
    pub fn is_done(&self, phase: Phase) -> bool {
        phase >= Phase::Liveness
            && self.acknowledged_after_heal
            && self.read_after_heal
            && self.produce.is_none()
            && self.fetch.is_none()
    }

    /// What it waits for (for a liveness failure report).
    pub fn describe(&self) -> String {
        format!(
            "keyed client: produce {:?} fetch {:?} at {} acknowledged after heal {} read after heal {}",
            self.produce,
            self.fetch,
            self.position,
            self.acknowledged_after_heal,
            self.read_after_heal
        )
    }

    /// A timer came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.shared.topics_ready {
            ctx.wake_at(ctx.now + 20 * MS);
            return;
        }
        let writing = match ctx.shared.phase {
            Phase::Safety => true,
            Phase::Liveness => !self.acknowledged_after_heal,
            _ => false,
        };
        if writing && self.produce.is_none() {
            if self.next_batch_at <= ctx.now {
                self.start_batch(ctx);
            } else {
                ctx.wake_at(self.next_batch_at);
            }
        }
        let reading = match ctx.shared.phase {
            Phase::Safety => true,
            Phase::Liveness => !self.read_after_heal,
            _ => false,
        };
        if reading && self.fetch.is_none() {
            let request = fetch_request(&self.key, self.position, 50, 0, READ_BYTES);
            self.fetch =
                Some(ctx.send_to_leader(&self.key, request, FETCH_VERSION, Some(2_000 * MS)));
        }
    }

    fn start_batch(&mut self, ctx: &mut Ctx<'_>) {
        let generation = self.batches / self.plan.batches_per_generation;
        self.batches += 1;
        let count = self.rng.range(1, self.plan.records_per_batch_max + 1);
        let value_bytes = self.rng.range(8, self.plan.value_bytes_max + 1) as usize;
        let history = ctx
            .shared
            .compaction
            .as_mut()
            .expect("the workload has a history");
        let mut records = Vec::new();
        let mut writes = Vec::new();
        for _ in 0..count {
            let key = generation * self.plan.keys_per_generation
                + self.rng.below(self.plan.keys_per_generation);
            let value = (!self.rng.chance(self.plan.tombstone_ppm)).then(|| history.value());
            writes.push(history.invoke(key, value, ctx.now));
            records.push((
                key.to_be_bytes(),
                value.map(|v| encode_value(v, value_bytes)),
            ));
        }
        let timestamp = WALL_CLOCK_ORIGIN_MS + (ctx.now / MS) as i64;
        let batch = build_batch_with_nullable_values(
            timestamp,
            records
                .iter()
                .map(|(key, value)| (Some(&key[..]), value.as_deref())),
        );
        // acks=all, no retry: an answer ends each write.
        let request = produce_request(&self.key, -1, Bytes::from(batch), 2_000);
        let correlation = ctx.send_to_leader(&self.key, request, PRODUCE_VERSION, Some(2_000 * MS));
        let history = ctx.shared.compaction.as_mut().expect("checked above");
        history.sent(correlation, writes);
        self.produce = Some(correlation);
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        if self.produce == Some(correlation) {
            self.produce = None;
            let ResponseKind::Produce(produced) = response else {
                panic!("a produce request got another kind of response")
            };
            let partition = &produced.responses[0].partition_responses[0];
            self.produced(
                ctx,
                correlation,
                partition.error_code,
                partition.base_offset,
            );
        } else if self.fetch == Some(correlation) {
            self.fetch = None;
            let (error, _, records) =
                fetch_partition(response).expect("a fetch answered with a fetch response");
            self.fetched(ctx, error, &records);
        }
    }

    fn produced(&mut self, ctx: &mut Ctx<'_>, correlation: u64, error: i16, base_offset: i64) {
        let history = ctx
            .shared
            .compaction
            .as_mut()
            .expect("the workload has a history");
        if error == code::NONE {
            history.complete(correlation, Some(base_offset), false);
            if ctx.shared.phase == Phase::Liveness {
                self.acknowledged_after_heal = true;
            }
        } else {
            let maybe_written = matches!(
                error,
                code::REQUEST_TIMED_OUT
                    | code::NOT_LEADER_OR_FOLLOWER
                    | code::NOT_ENOUGH_REPLICAS_AFTER_APPEND
                    | code::KAFKA_STORAGE_ERROR
            );
            history.complete(correlation, None, !maybe_written);
            ctx.shared.leader_stale(&self.key);
        }
        self.next_batch_at = ctx.now + self.plan.think_ns;
        ctx.wake_at(self.next_batch_at);
    }

    /// A fetch answered: move on past its last batch (a filler too), or start a new
    /// pass from 0 at the end.
    fn fetched(&mut self, ctx: &mut Ctx<'_>, error: i16, records: &Bytes) {
        let last = match crate::records::decode_batches(records) {
            Ok(batches) if error == code::NONE => batches.last().map(|b| b.header.last_offset()),
            _ => {
                if error == code::OFFSET_OUT_OF_RANGE {
                    self.position = 0;
                }
                ctx.shared.leader_stale(&self.key);
                let at = ctx.backoff();
                ctx.wake_at(at);
                return;
            }
        };
        match last {
            Some(last) => {
                self.position = self.position.max(last + 1);
                ctx.wake_at(ctx.now + MS);
            }
            None => {
                if self.pass_from_heal {
                    self.read_after_heal = true;
                }
                self.pass_from_heal = ctx.shared.phase == Phase::Liveness;
                self.position = 0;
                ctx.shared.count("compaction.read-pass");
                ctx.wake_at(ctx.now + self.plan.think_ns);
            }
        }
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        if self.produce == Some(correlation) {
            self.produce = None;
            let history = ctx
                .shared
                .compaction
                .as_mut()
                .expect("the workload has a history");
            history.complete(correlation, None, false);
            self.next_batch_at = ctx.now + self.plan.think_ns;
        } else if self.fetch == Some(correlation) {
            self.fetch = None;
        } else {
            return;
        }
        ctx.shared.leader_stale(&self.key);
        let at = ctx.backoff();
        ctx.wake_at(at);
    }
}
