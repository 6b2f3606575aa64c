//! `odradek bench produce|consume`: throughput and latency over the Kafka wire, with a
//! client of its own that stays out of the way of what it measures.
//!
//! Produce:
//!
//! ```text
//!   batch claims (shared counter) ─► worker per connection ─► up to --in-flight Produce
//!   [0..B) [B..2B) ...                 fill template batch      requests pipelined on
//!   paced by --throughput               (memcpy + counters +     one socket; the reader
//!                                        CRC-32C)                task stamps each answer
//! ```
//!
//! Every record is distinct (its value starts with a hex counter) yet no record is
//! built one by one: a template batch is copied, the counters written in place and the
//! CRC recomputed. Latency is measured per request, from just before the request is
//! queued to the moment its response is read off the socket, and counted once for every
//! record in that request (so p99 means "99% of records were acknowledged within").
//! A `--throughput` run also measures from the time the schedule wanted each request
//! sent, so a broker stall that holds back later sends shows in the numbers instead of
//! hiding them (coordinated omission).
//!
//! Consume reads every partition from its earliest offset to the end offset it had when
//! the run started (or `--records N`), one Fetch in flight per broker, checking each
//! batch's CRC-32C and counting records from the batch headers (`--decode` also decodes
//! every record, as a real consumer would).

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceResponse};

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::records::{BatchTemplate, RawBatch, split_batches};
use crate::client::{
    Client, ClientError, Connection, ErrorCode, FetchOptions, NewTopic, OffsetSpec, Pending,
    produce_acks, produce_request,
};

/// Topic the benchmark uses unless told otherwise.
const DEFAULT_TOPIC: &str = "odradek-bench";
/// How long the broker may take to acknowledge a produce.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// Largest batch the benchmark builds (Kafka's default max.message.bytes is 1 MiB).
const BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Latency samples kept per worker before the run refuses to grow further.
const LATENCY_SAMPLES_MAX: usize = 50_000_000;
/// One megabyte, as the summary counts it.
const MEGABYTE: f64 = 1_000_000.0;

/// Flags of `odradek bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Subcommand, Debug)]
enum Mode {
    /// Produce records as fast as the broker acknowledges them (or at --throughput).
    ///
    /// Prints a progress line on stderr, then records, bytes, elapsed time, records/s,
    /// MB/s (1 MB = 10^6 bytes of record values) and latency percentiles. Latency is
    /// measured per produce request, from sending it to reading its acknowledgement, and
    /// counted once for every record in that request. Every record is distinct: its
    /// value starts with a counter.
    Produce(ProduceArgs),
    /// Read a topic from its earliest offset to its end.
    ///
    /// Prints records/s and MB/s (1 MB = 10^6 bytes of record batches as fetched). Each
    /// batch's CRC-32C is checked; --decode also decodes every record.
    Consume(ConsumeArgs),
    /// Commit offsets for many groups, then watch the size of __consumer_offsets as the
    /// cleaner compacts it.
    Commit(super::bench_commit::CommitArgs),
}

/// Flags of `odradek bench produce`.
#[derive(clap::Args, Debug, Clone)]
pub struct ProduceArgs {
    /// A broker to bootstrap from.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// Topic to write to; created with --partitions if it does not exist.
    #[arg(long, value_name = "TOPIC", default_value = DEFAULT_TOPIC)]
    topic: String,
    /// Partitions of the topic if the benchmark creates it.
    #[arg(long, value_name = "N", default_value_t = 1)]
    partitions: i32,
    /// Records to send (default 1000000 unless --duration is given).
    #[arg(
        long,
        alias = "num-records",
        value_name = "N",
        conflicts_with = "duration"
    )]
    records: Option<u64>,
    /// Send for this many seconds instead of a fixed number of records.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Bytes of each record's value.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    record_size: usize,
    /// Records per batch (and per produce request).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    batch_records: usize,
    /// Acknowledgement: 0, 1 or all.
    #[arg(long, value_name = "0|1|all", default_value = "all", value_parser = client_tools::parse_acks)]
    acks: i16,
    /// Produce requests in flight per connection (pipelined).
    #[arg(long, value_name = "N", default_value_t = 8)]
    in_flight: usize,
    /// Connections to each partition leader, each with its own pipeline.
    #[arg(long, value_name = "N", default_value_t = 1)]
    connections: usize,
    /// Target records per second over the whole run, for latency runs; -1: unlimited.
    /// Paced runs also report latency from each request's scheduled send time.
    #[arg(long, value_name = "RECORDS_PER_SEC", default_value_t = -1, allow_negative_numbers = true)]
    throughput: i64,
}

/// Flags of `odradek bench consume`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// A broker to bootstrap from.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// Topic to read.
    #[arg(long, value_name = "TOPIC", default_value = DEFAULT_TOPIC)]
    topic: String,
    /// Stop after this many records (default: everything up to the end offset at start).
    #[arg(long, value_name = "N")]
    records: Option<u64>,
    /// Bytes per partition per fetch.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    fetch_bytes: i32,
    /// Decode every record (as a consumer would) instead of counting from batch headers.
    #[arg(long)]
    decode: bool,
}

/// Runs `odradek bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.mode {
        Mode::Produce(args) => {
            validate_produce(&args)?;
            client_tools::block_on(2, bench_produce(args))
        }
        Mode::Consume(args) => {
            if args.fetch_bytes < 1024 {
                bail!(UsageError(anyhow!("--fetch-bytes must be at least 1024")));
            }
            client_tools::block_on(2, bench_consume(args))
        }
        Mode::Commit(args) => client_tools::block_on(2, super::bench_commit::bench_commit(args)),
    }
}

fn validate_produce(args: &ProduceArgs) -> anyhow::Result<()> {
    let usage =
        |message: String| -> anyhow::Result<()> { Err(UsageError(anyhow!(message)).into()) };
    if args.batch_records == 0
        || args.in_flight == 0
        || args.connections == 0
        || args.partitions < 1
    {
        return usage(
            "--batch-records, --in-flight, --connections and --partitions must be at least 1"
                .to_string(),
        );
    }
    if args.records == Some(0) {
        return usage("--records must be at least 1".to_string());
    }
    if args.duration.is_some_and(|d| d.is_nan() || d <= 0.0) {
        return usage("--duration must be positive".to_string());
    }
    if args.throughput == 0 || args.throughput < -1 {
        return usage("--throughput is records per second, or -1 for unlimited".to_string());
    }
    let batch_bytes = args.batch_records.saturating_mul(args.record_size + 16);
    if batch_bytes > BATCH_BYTES_MAX {
        return usage(format!(
            "a batch of {} records of {} bytes is about {batch_bytes} bytes, over the {BATCH_BYTES_MAX}-byte batch limit; lower --batch-records",
            args.batch_records, args.record_size
        ));
    }
    Ok(())
}

/// Latency samples: (microseconds, records that waited that long).
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples: Vec<(u64, u64)>,
}

impl Latencies {
    /// Adds one request's latency, counted for `records` records.
    pub fn record(&mut self, micros: u64, records: u64) {
        if self.samples.len() < LATENCY_SAMPLES_MAX {
            self.samples.push((micros, records));
        }
    }

    /// Adds all of `other`'s samples.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Percentiles (each in 0..=100) in microseconds, weighted by records: the smallest
    /// latency within which at least that share of records was acknowledged. `None`
    /// without samples.
    pub fn percentiles(&mut self, wanted: &[f64]) -> Option<Vec<u64>> {
        let total: u64 = self.samples.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        self.samples.sort_unstable();
        Some(
            wanted
                .iter()
                .map(|p| {
                    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
                    let mut seen = 0;
                    for &(micros, n) in &self.samples {
                        seen += n;
                        if seen >= rank {
                            return micros;
                        }
                    }
                    self.samples.last().map_or(0, |s| s.0)
                })
                .collect(),
        )
    }
}

/// Counters every worker adds to and the progress line reads.
#[derive(Default)]
struct Progress {
    records: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
}

/// Redraws `label: N records, R records/s, M MB/s` on stderr until `stop` is set.
fn spawn_progress(
    label: &'static str,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = (start, 0u64, 0u64);
        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        ticker.tick().await;
        while !stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let now = Instant::now();
            let records = progress.records.load(Ordering::Relaxed);
            let bytes = progress.bytes.load(Ordering::Relaxed);
            let seconds = now.duration_since(last.0).as_secs_f64().max(1e-9);
            let rate = (records - last.1) as f64 / seconds;
            let megabytes = (bytes - last.2) as f64 / seconds / MEGABYTE;
            let failed = progress.failed.load(Ordering::Relaxed);
            let mut line = format!(
                "\r{label}: {records} records, {rate:.0} records/s, {megabytes:.1} MB/s, {:.1} s",
                now.duration_since(start).as_secs_f64()
            );
            if failed > 0 {
                line.push_str(&format!(", {failed} failed"));
            }
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "{line:<80}");
            let _ = stderr.flush();
            last = (now, records, bytes);
        }
    })
}

fn end_progress(stop: &AtomicBool) {
    stop.store(true, Ordering::Relaxed);
    eprintln!();
}

/// Creates `args.topic` if it does not exist, then waits for its leaders.
pub(crate) async fn ensure_topic(
    client: &Client,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<crate::client::TopicMetadata> {
    let exists = client
        .metadata(Some(&[topic.to_string()]))
        .await?
        .first()
        .is_some_and(|t| t.error.is_ok());
    if !exists {
        let new = NewTopic {
            name: topic.to_string(),
            partitions: Some(partitions),
            replication_factor: None,
            configs: Vec::new(),
        };
        match client.create_topic(&new).await {
            Ok(_) => eprintln!("created topic {topic} with {partitions} partition(s)"),
            Err(error) if error.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {}
            Err(error) => return Err(error.into()),
        }
    }
    client_tools::created_topic_served(client, topic).await
}

/// What the workers share.
struct ProduceRun {
    args: ProduceArgs,
    /// Partition → leader broker id.
    leaders: Vec<i32>,
    template: BatchTemplate,
    /// Counter of the first record of the next batch to claim.
    next_record: AtomicU64,
    /// Records to send in all (`u64::MAX` with --duration).
    records_total: u64,
    deadline: Option<Instant>,
    start: Instant,
    progress: Arc<Progress>,
}

/// What one worker did.
#[derive(Default)]
struct WorkerReport {
    sent: u64,
    acknowledged: u64,
    failed: u64,
    value_bytes: u64,
    batch_bytes: u64,
    requests: u64,
    latencies: Latencies,
    /// With --throughput: from the moment the schedule said to send to the ack.
    scheduled_latencies: Latencies,
    errors: Vec<String>,
}

impl WorkerReport {
    /// Adds what another worker did.
    fn add(&mut self, other: WorkerReport) {
        self.sent += other.sent;
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        self.value_bytes += other.value_bytes;
        self.batch_bytes += other.batch_bytes;
        self.requests += other.requests;
        self.latencies.merge(other.latencies);
        self.scheduled_latencies.merge(other.scheduled_latencies);
        for error in other.errors {
            if !self.errors.contains(&error) {
                self.errors.push(error);
            }
        }
    }
}

struct InFlight {
    pending: Option<Pending<ProduceResponse>>,
    sent_at: Instant,
    /// With --throughput: when the schedule wanted this request sent if a full
    /// in-flight window held it back, else when it was sent.
    scheduled_at: Option<Instant>,
    records: u64,
    value_bytes: u64,
}

impl ProduceRun {
    /// Claims the next batch: `(first counter, records)`, or `None` when done.
    fn claim(&self) -> Option<(u64, u64)> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let batch = self.args.batch_records as u64;
        let first = self.next_record.fetch_add(batch, Ordering::Relaxed);
        if first >= self.records_total {
            return None;
        }
        Some((first, batch.min(self.records_total - first)))
    }

    /// The batch of `records` records from counter `first`: the template's, or for the
    /// last, shorter batch of a --records run one of its own (made once, in `tail`).
    fn batch(&self, first: u64, records: u64, tail: &mut Option<BatchTemplate>) -> Bytes {
        if records == self.args.batch_records as u64 {
            self.template.fill(first, client_tools::now_ms())
        } else {
            tail.get_or_insert_with(|| BatchTemplate::new(records as usize, self.args.record_size))
                .fill(first, client_tools::now_ms())
        }
    }
}

/// One connection's worker: claims batches and keeps up to --in-flight of them
/// pipelined until the run is done; returns what it did.
async fn produce_worker(run: Arc<ProduceRun>, client: Arc<Client>) -> anyhow::Result<WorkerReport> {
    let mut report = WorkerReport::default();
    let mut connections: HashMap<i32, Connection> = HashMap::new();
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(run.args.in_flight);
    let batch_records = run.args.batch_records as u64;
    let partitions = run.leaders.len() as u64;
    let mut tail_template: Option<BatchTemplate> = None;
    while let Some((first, records)) = run.claim() {
        // The schedule does not wait for the broker: a request that has to wait for an
        // in-flight slot is late, and its scheduled latency says so (no coordinated
        // omission).
        let scheduled_at = (run.args.throughput > 0).then(|| {
            run.start + Duration::from_secs_f64(first as f64 / run.args.throughput as f64)
        });
        let mut waited_for_slot = false;
        while in_flight.len() >= run.args.in_flight {
            waited_for_slot = true;
            settle(&run, &mut report, in_flight.pop_front().expect("non-empty")).await;
        }
        // Held back past its time by a full window: timed from the schedule. Otherwise
        // from the actual send, so the timer's own lateness (up to a millisecond or so)
        // is not charged to the broker.
        let held_back = waited_for_slot && scheduled_at.is_some_and(|due| Instant::now() > due);
        if let Some(due) = scheduled_at {
            tokio::time::sleep_until(due.into()).await;
        }
        let partition = ((first / batch_records) % partitions) as i32;
        let leader = run.leaders[partition as usize];
        let connection = match connections.get(&leader) {
            Some(connection) => connection.clone(),
            None => {
                let connection = client.dedicated_connection(leader).await?;
                connections.insert(leader, connection.clone());
                connection
            }
        };
        let batch = run.batch(first, records, &mut tail_template);
        let batch_bytes = batch.len() as u64;
        let request = produce_request(
            &run.args.topic,
            vec![(partition, batch)],
            run.args.acks,
            PRODUCE_TIMEOUT_MS,
        );
        let version = connection.version(ApiKey::Produce)?;
        let sent_at = Instant::now();
        let pending = connection.send_produce(&request, version).await?;
        report.sent += records;
        report.requests += 1;
        report.batch_bytes += batch_bytes;
        in_flight.push_back(InFlight {
            pending,
            sent_at,
            scheduled_at: scheduled_at.map(|due| if held_back { due } else { sent_at }),
            records,
            value_bytes: records * run.args.record_size as u64,
        });
    }
    while let Some(request) = in_flight.pop_front() {
        settle(&run, &mut report, request).await;
    }
    for connection in connections.values() {
        connection.flush().await?;
    }
    Ok(report)
}

/// Waits for a request's acknowledgement and counts its records and latency.
async fn settle(run: &ProduceRun, report: &mut WorkerReport, request: InFlight) {
    let Some(pending) = request.pending else {
        // acks=0: nothing comes back; sent is all there is to count.
        count_acknowledged(run, report, request.records, request.value_bytes);
        return;
    };
    let outcome = match pending.wait_timed().await {
        Err(error) => Err(error),
        Ok((response, received_at)) => {
            let micros = received_at
                .saturating_duration_since(request.sent_at)
                .as_micros() as u64;
            report.latencies.record(micros, request.records);
            if let Some(scheduled_at) = request.scheduled_at {
                let micros = received_at
                    .saturating_duration_since(scheduled_at)
                    .as_micros() as u64;
                report.scheduled_latencies.record(micros, request.records);
            }
            match produce_acks(response).into_iter().next() {
                Some(ack) => ack.result.map(|_| ()),
                None => Err(ClientError::Other("empty produce response".to_string())),
            }
        }
    };
    match outcome {
        Ok(()) => count_acknowledged(run, report, request.records, request.value_bytes),
        Err(error) => {
            report.failed += request.records;
            run.progress
                .failed
                .fetch_add(request.records, Ordering::Relaxed);
            client_tools::keep_error(&mut report.errors, error.to_string());
        }
    }
}

/// Counts a request's records and value bytes as acknowledged, in the worker's report
/// and the progress line.
fn count_acknowledged(run: &ProduceRun, report: &mut WorkerReport, records: u64, value_bytes: u64) {
    report.acknowledged += records;
    report.value_bytes += value_bytes;
    run.progress.records.fetch_add(records, Ordering::Relaxed);
    run.progress.bytes.fetch_add(value_bytes, Ordering::Relaxed);
}

/// Runs `odradek bench produce`: --connections workers, then the summary.
async fn bench_produce(args: ProduceArgs) -> anyhow::Result<()> {
    let client = Arc::new(
        client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-bench-producer",
        )
        .await?,
    );
    let topic = ensure_topic(&client, &args.topic, args.partitions).await?;
    let leaders: Vec<i32> = topic.partitions.iter().map(|p| p.leader).collect();
    let records_total = match (args.records, args.duration) {
        (Some(records), _) => records,
        (None, Some(_)) => u64::MAX,
        (None, None) => 1_000_000,
    };
    let template = BatchTemplate::new(args.batch_records, args.record_size);
    println!(
        "{}",
        produce_header(&args, leaders.len(), template.batch_bytes())
    );
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let run = Arc::new(ProduceRun {
        deadline: args.duration.map(|d| start + Duration::from_secs_f64(d)),
        args: args.clone(),
        leaders,
        template,
        next_record: AtomicU64::new(0),
        records_total,
        start,
        progress: progress.clone(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let progress_task = spawn_progress("produce", progress, stop.clone());
    let workers: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(produce_worker(run.clone(), client.clone())))
        .collect();
    let mut total = WorkerReport::default();
    let mut worker_error = None;
    for worker in workers {
        match worker.await.context("benchmark worker panicked")? {
            Ok(report) => total.add(report),
            Err(error) => worker_error = Some(error),
        }
    }
    let elapsed = start.elapsed();
    end_progress(&stop);
    progress_task.abort();
    if let Some(error) = worker_error {
        return Err(error);
    }
    print!("{}", produce_summary(&mut total, elapsed, args.acks));
    if total.failed > 0 || total.acknowledged != total.sent {
        for error in &total.errors {
            eprintln!("odradek bench: {error}");
        }
        bail!(
            "{} of {} records were not acknowledged",
            total.sent - total.acknowledged,
            total.sent
        );
    }
    Ok(())
}

/// The line that says what a produce run will do.
fn produce_header(args: &ProduceArgs, partitions: usize, batch_bytes: usize) -> String {
    format!(
        "bench produce: topic {}, {} partition(s), {} B records, {} records per batch ({} B), acks={}, {} in flight per connection, {} connection(s), throughput {}",
        args.topic,
        partitions,
        args.record_size,
        args.batch_records,
        batch_bytes,
        client_tools::acks_name(args.acks),
        args.in_flight,
        args.connections,
        if args.throughput > 0 {
            format!("{} records/s", args.throughput)
        } else {
            "unlimited".to_string()
        },
    )
}

fn produce_summary(report: &mut WorkerReport, elapsed: Duration, acks: i16) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let mut out = String::new();
    out.push_str(&format!(
        "records: {} sent, {} acknowledged, {} failed\n",
        report.sent, report.acknowledged, report.failed
    ));
    out.push_str(&format!(
        "bytes: {} of record values, {} of record batches, in {} requests\n",
        report.value_bytes, report.batch_bytes, report.requests
    ));
    out.push_str(&format!("elapsed: {seconds:.3} s\n"));
    out.push_str(&format!(
        "throughput: {:.0} records/s, {:.2} MB/s of values (1 MB = 10^6 bytes)\n",
        report.acknowledged as f64 / seconds,
        report.value_bytes as f64 / seconds / MEGABYTE
    ));
    let percentiles = [50.0, 99.0, 99.9, 100.0];
    match report.latencies.percentiles(&percentiles) {
        Some(p) if acks != 0 => out.push_str(&latency_line(
            "latency ms (each request, send to ack, counted for every record in it)",
            &p,
        )),
        _ => out.push_str("latency: not measured (acks=0 has no acknowledgement)\n"),
    }
    if let Some(p) = report.scheduled_latencies.percentiles(&percentiles)
        && acks != 0
    {
        out.push_str(&latency_line(
            "latency ms from the scheduled send time where a full in-flight window held a send back",
            &p,
        ));
    }
    out
}

fn latency_line(label: &str, micros: &[u64]) -> String {
    let ms = |index: usize| micros[index] as f64 / 1000.0;
    format!(
        "{label}: p50 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}\n",
        ms(0),
        ms(1),
        ms(2),
        ms(3)
    )
}

/// Per-partition state of a consume run.
struct ConsumePosition {
    next_offset: i64,
    end_offset: i64,
}

/// Runs `odradek bench consume`: reads to the end offsets, then the summary.
async fn bench_consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = client_tools::connect(
        &args.bootstrap_server,
        args.command_config.as_deref(),
        "odradek-bench-consumer",
    )
    .await?;
    let topic = client_tools::topic_with_leaders(&client, &args.topic).await?;
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let positions = consume_positions(&client, &args.topic, &partitions).await?;
    let available: i64 = positions
        .values()
        .map(|p| (p.end_offset - p.next_offset).max(0))
        .sum();
    let wanted = args
        .records
        .unwrap_or(available as u64)
        .min(available as u64);
    println!(
        "bench consume: topic {}, {} partition(s), up to {} records (the earliest to the end offsets), fetch {} B per partition, {}",
        args.topic,
        partitions.len(),
        wanted,
        args.fetch_bytes,
        if args.decode {
            "decoding every record"
        } else {
            "checking CRCs, counting from batch headers"
        }
    );
    let options = FetchOptions {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: args
            .fetch_bytes
            .saturating_mul(partitions.len().min(64) as i32),
        partition_max_bytes: args.fetch_bytes,
    };
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let progress_task = spawn_progress("consume", progress.clone(), stop.clone());
    let start = Instant::now();
    let mut run = ConsumeRun {
        args: &args,
        client: &client,
        options,
        positions,
        wanted,
        records: 0,
        bytes: 0,
        fetches: 0,
    };
    let result = run.read(&progress).await;
    let elapsed = start.elapsed();
    end_progress(&stop);
    progress_task.abort();
    result?;
    print!("{}", run.summary(elapsed));
    // Offsets are an upper bound on records: a leader-change marker or a transaction
    // marker takes an offset and is no record, and compaction leaves offsets empty. A
    // run that reached every end offset read everything there was.
    if run.records < wanted && !run.at_end() {
        bail!("consumed {} of {wanted} records", run.records);
    }
    Ok(())
}

/// Every partition's earliest offset, where a consume run starts, and its end offset
/// now, where it stops.
async fn consume_positions(
    client: &Client,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<HashMap<i32, ConsumePosition>> {
    let starts = client
        .list_offsets(topic, partitions, OffsetSpec::Earliest)
        .await?;
    let ends = client
        .list_offsets(topic, partitions, OffsetSpec::Latest)
        .await?;
    Ok(starts
        .iter()
        .zip(&ends)
        .map(|(&(partition, start), &(_, end))| {
            (
                partition,
                ConsumePosition {
                    next_offset: start,
                    end_offset: end,
                },
            )
        })
        .collect())
}

/// A consume run under way: where each partition is, and what was read.
struct ConsumeRun<'a> {
    args: &'a ConsumeArgs,
    client: &'a Client,
    options: FetchOptions,
    positions: HashMap<i32, ConsumePosition>,
    /// Records to read in all.
    wanted: u64,
    records: u64,
    bytes: u64,
    fetches: u64,
}

/// A fetched batch and the offsets `first..=last` of its records that count (none
/// when `last < first`).
type FetchedBatch = (RawBatch, i64, i64);

impl ConsumeRun<'_> {
    /// Reads until `wanted` records are counted or every partition is at its end
    /// offset, checking each batch.
    async fn read(&mut self, progress: &Progress) -> anyhow::Result<()> {
        // The next fetch is sent as soon as the batch headers say where it starts, so
        // the broker works on it while this fetch's records are checked or decoded.
        let mut pending = self.send_fetches().await?;
        while !pending.is_empty() {
            let mut work: Vec<FetchedBatch> = Vec::new();
            for fetch in pending.drain(..) {
                let response = fetch.wait().await?;
                self.fetches += 1;
                if response.error_code != 0 {
                    return Err(ClientError::kafka("fetch", response.error_code, None).into());
                }
                for topic_response in response.responses {
                    for data in topic_response.partitions {
                        self.take_partition(data, &mut work)?;
                    }
                }
            }
            if self.records < self.wanted {
                pending = self.send_fetches().await?;
            }
            let mut checked_records = 0u64;
            let mut checked_bytes = 0u64;
            for (batch, first, last) in work {
                check_batch(self.args, &batch, first, last)?;
                checked_records += (last - first + 1).max(0) as u64;
                checked_bytes += batch.bytes.len() as u64;
            }
            progress
                .records
                .fetch_add(checked_records, Ordering::Relaxed);
            progress.bytes.fetch_add(checked_bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One Fetch per leader for every partition not yet at its end offset.
    async fn send_fetches(&self) -> anyhow::Result<Vec<Pending<FetchResponse>>> {
        let positions = self
            .positions
            .iter()
            .filter(|(_, position)| position.next_offset < position.end_offset)
            .map(|(&partition, position)| (partition, position.next_offset));
        Ok(self
            .client
            .send_fetches(&self.args.topic, positions, self.options)
            .await?)
    }

    /// Counts the records of one partition's fetched batches (from the batch headers)
    /// and moves its position past them; the batches go to `work` for checking.
    fn take_partition(
        &mut self,
        data: PartitionData,
        work: &mut Vec<FetchedBatch>,
    ) -> anyhow::Result<()> {
        if data.error_code != 0 {
            let context = format!("fetch {}-{}", self.args.topic, data.partition_index);
            return Err(ClientError::kafka(context, data.error_code, None).into());
        }
        let Some(position) = self.positions.get_mut(&data.partition_index) else {
            return Ok(());
        };
        for batch in split_batches(data.records.unwrap_or_default())? {
            // Records of this batch that count: from where we are to the end offset,
            // and no more than --records in all.
            let first = batch.base_offset.max(position.next_offset);
            let mut last = batch.last_offset.min(position.end_offset - 1);
            if batch.is_control {
                last = first - 1;
            }
            let room = (self.wanted - self.records) as i64;
            last = last.min(first + room - 1);
            if last >= first {
                self.records += (last - first + 1) as u64;
            }
            position.next_offset = position.next_offset.max(batch.last_offset + 1);
            self.bytes += batch.bytes.len() as u64;
            work.push((batch, first, last));
        }
        Ok(())
    }

    /// Whether every partition was read to the end offset it had at the start.
    fn at_end(&self) -> bool {
        self.positions
            .values()
            .all(|position| position.next_offset >= position.end_offset)
    }

    /// The summary lines of a finished run that took `elapsed`.
    fn summary(&self, elapsed: Duration) -> String {
        let (records, bytes, wanted) = (self.records, self.bytes, self.wanted);
        let seconds = elapsed.as_secs_f64().max(1e-9);
        format!(
            "records: {records} consumed of {wanted} wanted\n\
             bytes: {bytes} of record batches in {} fetches\n\
             elapsed: {seconds:.3} s\n\
             throughput: {:.0} records/s, {:.2} MB/s of batches (1 MB = 10^6 bytes)\n",
            self.fetches,
            records as f64 / seconds,
            bytes as f64 / seconds / MEGABYTE
        )
    }
}

/// Checks one fetched batch: its CRC, and with --decode that decoding yields exactly the
/// records `first..=last` the header promised.
fn check_batch(args: &ConsumeArgs, batch: &RawBatch, first: i64, last: i64) -> anyhow::Result<()> {
    if !batch.crc_is_valid() {
        bail!(
            "batch at {} offset {} fails its CRC",
            args.topic,
            batch.base_offset
        );
    }
    if args.decode && !batch.is_control {
        let decoded = batch
            .records()?
            .iter()
            .filter(|r| r.offset >= first && r.offset <= last)
            .count() as i64;
        if decoded != (last - first + 1).max(0) {
            bail!(
                "batch at {} offset {} decodes to {decoded} records in {first}..={last}",
                args.topic,
                batch.base_offset
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_weighted_by_records() {
        let mut latencies = Latencies::default();
        assert_eq!(latencies.percentiles(&[50.0]), None);
        // 98 records waited 1 ms, 1 record 5 ms, 1 record 9 ms.
        latencies.record(5_000, 1);
        latencies.record(1_000, 98);
        latencies.record(9_000, 1);
        assert_eq!(
            latencies.percentiles(&[50.0, 98.0, 99.0, 99.9, 100.0]),
            Some(vec![1_000, 1_000, 5_000, 9_000, 9_000])
        );
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let mut latencies = Latencies::default();
        latencies.record(42, 1000);
        assert_eq!(
            latencies.percentiles(&[0.0, 50.0, 100.0]),
            Some(vec![42, 42, 42])
        );
    }

    #[test]
    fn merged_samples_count_together() {
        let mut a = Latencies::default();
        a.record(10, 1);
        let mut b = Latencies::default();
        b.record(20, 3);
        a.merge(b);
        assert_eq!(a.percentiles(&[25.0, 26.0]), Some(vec![10, 20]));
    }

    #[test]
    fn summary_reports_what_was_counted() {
        let mut report = WorkerReport {
            sent: 2000,
            acknowledged: 2000,
            value_bytes: 200_000,
            batch_bytes: 230_000,
            requests: 2,
            ..WorkerReport::default()
        };
        report.latencies.record(1_500, 1000);
        report.latencies.record(2_500, 1000);
        let text = produce_summary(&mut report, Duration::from_secs(2), -1);
        assert!(
            text.contains("records: 2000 sent, 2000 acknowledged, 0 failed\n"),
            "{text}"
        );
        assert!(
            text.contains("throughput: 1000 records/s, 0.10 MB/s"),
            "{text}"
        );
        assert!(
            text.contains("p50 1.500, p99 2.500, p99.9 2.500, max 2.500"),
            "{text}"
        );
        assert!(!text.contains("scheduled"), "{text}");
        report.scheduled_latencies.record(3_000, 2000);
        let text = produce_summary(&mut report, Duration::from_secs(2), -1);
        assert!(
            text.contains("latency ms from the scheduled send time where a full in-flight window held a send back: p50 3.000,"),
            "{text}"
        );
        let text = produce_summary(&mut report, Duration::from_secs(2), 0);
        assert!(text.contains("latency: not measured"), "{text}");
    }

    #[test]
    fn produce_flags_are_checked() {
        let args = |batch_records, record_size| ProduceArgs {
            bootstrap_server: DEFAULT_BOOTSTRAP_SERVER.to_string(),
            command_config: None,
            topic: DEFAULT_TOPIC.to_string(),
            partitions: 1,
            records: Some(10),
            duration: None,
            record_size,
            batch_records,
            acks: -1,
            in_flight: 1,
            connections: 1,
            throughput: -1,
        };
        assert!(validate_produce(&args(1000, 100)).is_ok());
        assert!(validate_produce(&args(0, 100)).is_err());
        assert!(validate_produce(&args(10_000, 1000)).is_err());
    }
}
