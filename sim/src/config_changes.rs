//! The config-change workload: an admin that changes configs at run time, one request
//! at a time, while the other clients write and read.
//!
//! ```text
//!  ConfigClient ──IncrementalAlterConfigs(one resource: SET / DELETE keys)──► any broker
//!      (a broker that is not the controller forwards it)  ──► ok / failed / indefinite
//!  at the end (and when a lone broker opens) ──► config_check.rs
//! ```
//!
//! The resource is the workload's first topic (its overrides) or, less often, the
//! dynamic broker values of the cluster default or of one broker. The keys are ones a
//! replica picks up at run time and that cannot make the other checkers' acknowledged
//! records legitimately go: segment size and age, index interval, the cleaner's dirty
//! ratio, a message size limit above any batch the producers send, and retention by time
//! off (-1) or a century (see `value_of`). Values other than -1 carry the operation's
//! number, so such a value names the operation that set it. Now and then a request carries a value that does not parse:
//! it must be refused, and never applied.
//!
//! A seed has the workload or not by a draw of its own stream, so the seeds without it
//! draw everything else as before.

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use odradek_replication::dynamic_config::ConfigResource;

use crate::config_check::ConfigOutcome;
use crate::rng::SimRng;
use crate::workload::{Ctx, MS, Phase, code};

/// A `retention.ms` that deletes nothing in a run: a hundred years.
const RETENTION_CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// The random stream the workload's plan and its client draw from.
const CONFIG_STREAM: u64 = 9;

/// The topic whose overrides change: the first topic of every seed's workload.
pub const CONFIG_TOPIC: &str = "sim-0";

/// IncrementalAlterConfigs with tagged fields.
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;

/// Kafka's config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Errors that say the request was refused before anything was written.
const REFUSED: &[i16] = &[
    code::UNKNOWN_TOPIC_OR_PARTITION,
    code::INVALID_CONFIG,
    code::INVALID_REQUEST,
];

/// The keys changed, as (topic key, its broker-level synonym).
const KEYS: &[(&str, &str)] = &[
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("max.message.bytes", "message.max.bytes"),
];

/// A seed's config-change workload.
#[derive(Clone, Debug)]
pub struct ConfigPlan {
    think_ns: u64,
    timeout_ns: u64,
    broker_ppm: u64,
    delete_ppm: u64,
    invalid_ppm: u64,
}

impl ConfigPlan {
    /// The seed's config-change workload: one seed in three has one, unless `forced`
    /// says every seed or none.
    pub fn draw(seed: u64, forced: Option<bool>) -> Option<ConfigPlan> {
        let mut rng = SimRng::new(seed, CONFIG_STREAM);
        let drawn = rng.below(3) == 0;
        if !forced.unwrap_or(drawn) {
            return None;
        }
        Some(ConfigPlan {
            think_ns: rng.pick(&[20, 200, 1_000]) * MS,
            timeout_ns: rng.pick(&[1_000, 5_000]) * MS,
            broker_ppm: rng.pick(&[0, 100_000, 300_000]),
            delete_ppm: rng.pick(&[100_000, 300_000]),
            invalid_ppm: rng.pick(&[0, 50_000]),
        })
    }

    /// One line for the run's report.
    pub fn summary(&self) -> String {
        format!(
            "config changes on {CONFIG_TOPIC} and brokers: every {} ms, broker-level {} ppm, deletes {} ppm, invalid {} ppm",
            self.think_ns / MS,
            self.broker_ppm,
            self.delete_ppm,
            self.invalid_ppm
        )
    }
}

/// The resources the workload changes in a run of `nodes` brokers: the topic, the
/// cluster default and each broker.
pub fn config_resources(nodes: u32) -> Vec<ConfigResource> {
    let mut resources = vec![
        ConfigResource::Topic(CONFIG_TOPIC.to_string()),
        ConfigResource::Broker(None),
    ];
    resources.extend((1..=nodes as i32).map(|id| ConfigResource::Broker(Some(id))));
    resources
}

/// Changes configs one request at a time; after faults heal, one change must be
/// acknowledged.
pub struct ConfigClient {
    plan: ConfigPlan,
    rng: SimRng,
    /// The request in flight: correlation and operation.
    in_flight: Option<(u64, usize)>,
    next_at: u64,
    ops: u64,
    acknowledged_after_heal: bool,
}

impl ConfigClient {
    /// The client of `plan`.
    pub fn new(seed: u64, plan: &ConfigPlan) -> ConfigClient {
        ConfigClient {
            plan: plan.clone(),
            rng: SimRng::new(seed, CONFIG_STREAM + 1),
            in_flight: None,
            next_at: 0,
            ops: 0,
            acknowledged_after_heal: false,
        }
    }

    /// Whether it did what the liveness phase asks and has nothing in flight.
    pub fn is_done(&self, phase: Phase) -> bool {
        phase >= Phase::Liveness && self.acknowledged_after_heal && self.in_flight.is_none()
    }

    /// What it waits for (for a liveness failure report).
    pub fn describe(&self) -> String {
        format!(
            "config client: {:?} in flight after {} changes, acknowledged after heal {}",
            self.in_flight, self.ops, self.acknowledged_after_heal
        )
    }

    /// A timer came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.shared.topics_ready {
            ctx.wake_at(ctx.now + 20 * MS);
            return;
        }
        let changing = match ctx.shared.phase {
            Phase::Safety => true,
            Phase::Liveness => !self.acknowledged_after_heal,
            _ => false,
        };
        if !changing || self.in_flight.is_some() {
            return;
        }
        if self.next_at > ctx.now {
            ctx.wake_at(self.next_at);
            return;
        }
        self.start(ctx);
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.ops += 1;
        let nodes = ctx.shared.nodes.max(1);
        let resource = if self.rng.chance(self.plan.broker_ppm) {
            match self.rng.below(u64::from(nodes) + 1) {
                0 => ConfigResource::Broker(None),
                id => ConfigResource::Broker(Some(id as i32)),
            }
        } else {
            ConfigResource::Topic(CONFIG_TOPIC.to_string())
        };
        // After the heal the change must go through: no value that does not parse.
        let invalid = ctx.shared.phase == Phase::Safety && self.rng.chance(self.plan.invalid_ppm);
        let keys = self.draw_keys(&resource, invalid);
        let history = ctx
            .shared
            .config_changes
            .as_mut()
            .expect("the workload has a history");
        let index = history.invoke(resource.clone(), keys.clone());
        let node = self.rng.below(u64::from(nodes)) as u32;
        let request = alter_request(&resource, &keys);
        let correlation = ctx.send_to(
            node,
            request,
            INCREMENTAL_ALTER_CONFIGS_VERSION,
            Some(self.plan.timeout_ns),
        );
        let history = ctx.shared.config_changes.as_mut().expect("checked above");
        history.sent(correlation, index);
        ctx.shared.count("config.change");
        self.in_flight = Some((correlation, index));
    }

    /// One or two distinct keys, each set to a value that names this operation or
    /// deleted; with `invalid`, the first is set to a value that does not parse.
    fn draw_keys(
        &mut self,
        resource: &ConfigResource,
        invalid: bool,
    ) -> Vec<(String, Option<String>)> {
        let first = self.rng.below(KEYS.len() as u64) as usize;
        let mut picked = vec![first];
        if self.rng.chance(300_000) {
            let second = (first + 1 + self.rng.below(KEYS.len() as u64 - 1) as usize) % KEYS.len();
            picked.push(second);
        }
        picked
            .into_iter()
            .enumerate()
            .map(|(at, key)| {
                let (topic_key, broker_key) = KEYS[key];
                let name = match resource {
                    ConfigResource::Topic(_) => topic_key,
                    ConfigResource::Broker(_) => broker_key,
                };
                let value = if invalid && at == 0 {
                    Some(format!("not-a-number-{}", self.ops))
                } else if self.rng.chance(self.plan.delete_ppm) {
                    None
                } else {
                    Some(self.value_of(topic_key))
                };
                (name.to_string(), value)
            })
            .collect()
    }

    /// A harmless value of `topic_key` (module documentation), most ending in this
    /// operation's number.
    fn value_of(&mut self, topic_key: &str) -> String {
        let n = self.ops;
        match topic_key {
            "segment.bytes" => (self.rng.pick(&[16_384, 65_536, 1 << 20]) + n).to_string(),
            "segment.ms" => (self.rng.pick(&[2_000, 10_000, 600_000]) + n).to_string(),
            // Retention by time is off or a century: the other checkers' acknowledged
            // records must not legitimately go, and a century is longer than any
            // record timestamp's age here (even 0) and any clock step. A segment of
            // control batches only (the epoch-start batches of a replicated partition)
            // has no timestamp; before retention kept it with the next dated segment,
            // a century expired it at once and replicas dropped their first offsets
            // on their own (seed 24 of --nodes 3 --config-changes). By size it stays
            // off: any limit deletes.
            "retention.ms" => match self.rng.below(2) {
                0 => "-1".to_string(),
                _ => (RETENTION_CENTURY_MS + n).to_string(),
            },
            "retention.bytes" => "-1".to_string(),
            "index.interval.bytes" => (self.rng.pick(&[128, 1_024, 4_096]) + n).to_string(),
            "min.cleanable.dirty.ratio" => format!("0.{:04}", n % 10_000),
            // Above Kafka's default and far above the producers' batches.
            "max.message.bytes" => (1_048_588 + n).to_string(),
            other => unreachable!("no value for {other}"),
        }
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        let Some((expected, index)) = self.in_flight else {
            return;
        };
        if expected != correlation {
            return;
        }
        let ResponseKind::IncrementalAlterConfigs(answer) = response else {
            panic!("an IncrementalAlterConfigs got another kind of response")
        };
        let error = answer
            .responses
            .first()
            .map_or(code::INVALID_REQUEST, |result| result.error_code);
        let outcome = if error == code::NONE {
            if ctx.shared.phase == Phase::Liveness {
                self.acknowledged_after_heal = true;
            }
            ConfigOutcome::Acknowledged
        } else if REFUSED.contains(&error) {
            ConfigOutcome::Failed
        } else {
            ConfigOutcome::Indefinite
        };
        self.finish(ctx, index, outcome);
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64) {
        if let Some((expected, index)) = self.in_flight
            && expected == correlation
        {
            self.finish(ctx, index, ConfigOutcome::Indefinite);
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, index: usize, outcome: ConfigOutcome) {
        self.in_flight = None;
        let history = ctx
            .shared
            .config_changes
            .as_mut()
            .expect("the workload has a history");
        history.complete(index, outcome);
        self.next_at = ctx.now + self.plan.think_ns;
        ctx.wake_at(self.next_at);
    }
}

/// The request that makes `keys`' changes to `resource`.
fn alter_request(resource: &ConfigResource, keys: &[(String, Option<String>)]) -> RequestKind {
    let (resource_type, name) = match resource {
        ConfigResource::Topic(name) => (RESOURCE_TOPIC, name.clone()),
        ConfigResource::Broker(None) => (RESOURCE_BROKER, String::new()),
        ConfigResource::Broker(Some(id)) => (RESOURCE_BROKER, id.to_string()),
    };
    let configs = keys
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(if value.is_some() { OP_SET } else { OP_DELETE })
                .with_value(value.clone().map(StrBytes::from_string))
        })
        .collect();
    RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default().with_resources(
        vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name))
                .with_configs(configs),
        ],
    ))
}
