//! `odradek produce`: a console producer, like `kafka-console-producer` or `kcat -P`.
//!
//! Each line of standard input is one record (the line ending is not part of it). With
//! `--key-separator SEP` the text before the first SEP is the key and the rest the
//! value; a line without SEP gets no key (as kcat does). Keyed records go to the
//! partition Kafka's default partitioner picks (murmur2), unkeyed ones fill one batch
//! per partition in turn, and `--partition` sends everything to one partition.
//!
//! ```text
//!   stdin ─► reader thread ─(chunks of lines)─► batches per partition ─► Produce
//!            (a chunk ends when the pipe has      (sent when full or when   (up to 5 in
//!             nothing more buffered)               input pauses)             flight)
//! ```
//!
//! Lines typed at a terminal are sent at once; piped input is batched. The command
//! exits non-zero, naming the Kafka errors, if any record was not acknowledged.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use odradek_log::batch::build_batch_with_keys;
use tokio::sync::mpsc;

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::partitioner::partition_for_key;
use crate::client::{Client, Pending, produce_acks, produce_request};

/// Records in one batch at most.
const BATCH_RECORDS_MAX: usize = 10_000;
/// Bytes of record data in one batch at most (below the default max.message.bytes, 1 MiB).
const BATCH_BYTES_MAX: usize = 512 * 1024;
/// Produce requests in flight at once (Kafka's limit for an idempotent producer).
const IN_FLIGHT_MAX: usize = 5;
/// Lines the reader thread hands over at once, at most.
const CHUNK_LINES_MAX: usize = 4096;
/// How long the broker may take to acknowledge.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// Flags of `odradek produce`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic to write to.
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// Split each line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Send every record to this partition.
    #[arg(long, value_name = "N")]
    partition: Option<i32>,
    /// Acknowledgement: 0 (none), 1 (leader) or all (every in-sync replica).
    #[arg(long, value_name = "0|1|all", default_value = "all", value_parser = client_tools::parse_acks)]
    acks: i16,
    /// Idempotent producer: a producer id and sequence numbers (needs --acks all).
    #[arg(long)]
    idempotent: bool,
    /// kafka-console-producer style setting: parse.key=true, key.separator=SEP
    /// (default separator: a tab).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

impl Args {
    /// Folds `--property` settings into the flags they stand for.
    fn apply_properties(&mut self) -> anyhow::Result<()> {
        let mut parse_key = false;
        let mut separator = None;
        for property in &self.properties {
            match client_tools::split_property(property)? {
                ("parse.key", value) => parse_key = value == "true",
                ("key.separator", value) => separator = Some(value.to_string()),
                (other, _) => bail!(UsageError(anyhow!(
                    "unknown property {other:?} (known: parse.key, key.separator)"
                ))),
            }
        }
        if parse_key && self.key_separator.is_none() {
            self.key_separator = Some(separator.unwrap_or_else(|| "\t".to_string()));
        }
        Ok(())
    }
}

/// One record: optional key and value.
type Line = (Option<Vec<u8>>, Vec<u8>);

/// Runs `odradek produce`.
pub fn run(mut args: Args) -> anyhow::Result<()> {
    args.apply_properties()?;
    if args.idempotent && args.acks != -1 {
        bail!(UsageError(anyhow!("--idempotent needs --acks all")));
    }
    if args.key_separator.as_deref() == Some("") {
        bail!(UsageError(anyhow!("--key-separator must not be empty")));
    }
    client_tools::block_on(1, produce(args))
}

/// Splits a line (without its line ending) into key and value.
fn split_line(line: &[u8], separator: Option<&[u8]>) -> Line {
    if let Some(separator) = separator
        && let Some(at) = line.windows(separator.len()).position(|w| w == separator)
    {
        return (
            Some(line[..at].to_vec()),
            line[at + separator.len()..].to_vec(),
        );
    }
    (None, line.to_vec())
}

/// Strips `\n` or `\r\n`.
fn strip_line_ending(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
    }
    line
}

/// Reads stdin on a thread of its own; hands lines over in chunks that end when the
/// input has nothing more buffered, so typed lines go out at once.
fn spawn_stdin_reader(separator: Option<Vec<u8>>) -> mpsc::Receiver<std::io::Result<Vec<Line>>> {
    let (sender, receiver) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut input = BufReader::with_capacity(256 * 1024, std::io::stdin());
        let mut chunk = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => chunk.push(split_line(strip_line_ending(&line), separator.as_deref())),
                Err(error) => {
                    let _ = sender.blocking_send(Err(error));
                    return;
                }
            }
            let pause = input.buffer().is_empty();
            if (chunk.len() >= CHUNK_LINES_MAX || pause)
                && sender
                    .blocking_send(Ok(std::mem::take(&mut chunk)))
                    .is_err()
            {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = sender.blocking_send(Ok(chunk));
        }
    });
    receiver
}

/// Records waiting to become a batch for one partition.
#[derive(Default)]
struct Accumulating {
    records: Vec<Line>,
    bytes: usize,
}

/// A produce request on its way.
struct InFlight {
    /// `None` for acks=0: no answer comes.
    pending: Option<Pending<ProduceResponse>>,
    /// Records per partition in the request.
    records: Vec<(i32, usize)>,
}

struct Producer<'a> {
    client: &'a Client,
    topic: String,
    acks: i16,
    /// `(producer id, epoch)` when idempotent.
    producer: Option<(i64, i16)>,
    /// Next sequence number per partition (idempotent only).
    sequences: HashMap<i32, i32>,
    batches: BTreeMap<i32, Accumulating>,
    in_flight: VecDeque<InFlight>,
    acknowledged: u64,
    failed: u64,
    errors: Vec<String>,
}

impl Producer<'_> {
    fn add(&mut self, partition: i32, line: Line) -> bool {
        let batch = self.batches.entry(partition).or_default();
        batch.bytes += line.1.len() + line.0.as_ref().map_or(0, Vec::len) + 16;
        batch.records.push(line);
        batch.records.len() >= BATCH_RECORDS_MAX || batch.bytes >= BATCH_BYTES_MAX
    }

    /// Sends every non-empty batch: one request per leader.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes, usize)>> = BTreeMap::new();
        let timestamp = client_tools::now_ms();
        for (&partition, batch) in self.batches.iter_mut() {
            if batch.records.is_empty() {
                continue;
            }
            let records = std::mem::take(&mut batch.records);
            batch.bytes = 0;
            let count = records.len();
            let producer = self.producer.map(|(id, epoch)| {
                let sequence = self.sequences.entry(partition).or_insert(0);
                let base = *sequence;
                *sequence = sequence.wrapping_add(count as i32) & i32::MAX;
                (id, epoch, base)
            });
            let bytes = build_batch_with_keys(
                timestamp,
                producer,
                records
                    .iter()
                    .map(|(key, value)| (key.as_deref(), value.as_slice())),
            );
            let leader = self.client.leader_id(&self.topic, partition)?;
            by_leader
                .entry(leader)
                .or_default()
                .push((partition, Bytes::from(bytes), count));
        }
        for (leader, batches) in by_leader {
            while self.in_flight.len() >= IN_FLIGHT_MAX {
                self.settle_oldest().await;
            }
            let connection = self.client.broker(leader).await?;
            let records = batches.iter().map(|(p, _, n)| (*p, *n)).collect();
            let request = produce_request(
                &self.topic,
                batches.into_iter().map(|(p, b, _)| (p, b)).collect(),
                self.acks,
                PRODUCE_TIMEOUT_MS,
            );
            let version = connection.version(ApiKey::Produce)?;
            let pending = connection.send_produce(&request, version).await?;
            if pending.is_none() {
                // acks=0: no response will come; wait until the request is written.
                connection.flush().await?;
            }
            self.in_flight.push_back(InFlight { pending, records });
        }
        Ok(())
    }

    /// Waits for the oldest request in flight and counts its records.
    async fn settle_oldest(&mut self) {
        let Some(in_flight) = self.in_flight.pop_front() else {
            return;
        };
        let total: usize = in_flight.records.iter().map(|(_, n)| n).sum();
        let Some(pending) = in_flight.pending else {
            self.acknowledged += total as u64; // acks=0: sent is all there is
            return;
        };
        match pending.wait().await {
            Err(error) => self.fail(total, error.to_string()),
            Ok(response) => {
                let mut answered = 0;
                for ack in produce_acks(response) {
                    let count = in_flight
                        .records
                        .iter()
                        .find(|(p, _)| *p == ack.partition)
                        .map_or(0, |(_, n)| *n);
                    answered += count;
                    match ack.result {
                        Ok(_) => self.acknowledged += count as u64,
                        Err(error) => self.fail(count, error.to_string()),
                    }
                }
                if answered < total {
                    self.fail(
                        total - answered,
                        "partition missing from the produce response".to_string(),
                    );
                }
            }
        }
    }

    /// Sends what is left, waits for every answer, and fails naming the errors if any
    /// of the `total` records was not acknowledged.
    async fn finish(&mut self, total: u64) -> anyhow::Result<()> {
        self.flush().await?;
        while !self.in_flight.is_empty() {
            self.settle_oldest().await;
        }
        if self.failed > 0 {
            for error in &self.errors {
                eprintln!("odradek produce: {error}");
            }
            bail!(
                "{} of {} records were not acknowledged (first error: {})",
                self.failed,
                total,
                self.errors.first().map_or("unknown", String::as_str)
            );
        }
        debug_assert_eq!(self.acknowledged, total);
        Ok(())
    }

    /// Counts `records` as failed, keeping the first few distinct errors.
    fn fail(&mut self, records: usize, error: String) {
        self.failed += records as u64;
        client_tools::keep_error(&mut self.errors, error);
    }
}

/// Sends standard input's lines as records until it ends, then waits for every
/// acknowledgement.
async fn produce(args: Args) -> anyhow::Result<()> {
    let client = client_tools::connect(
        &args.bootstrap_server,
        args.command_config.as_deref(),
        "odradek-console-producer",
    )
    .await?;
    let partition_count = partition_count(&client, &args).await?;
    let producer = if args.idempotent {
        Some(client.init_producer_id().await?)
    } else {
        None
    };
    let mut state = Producer {
        client: &client,
        topic: args.topic.clone(),
        acks: args.acks,
        producer,
        sequences: HashMap::new(),
        batches: BTreeMap::new(),
        in_flight: VecDeque::new(),
        acknowledged: 0,
        failed: 0,
        errors: Vec::new(),
    };
    let mut lines = spawn_stdin_reader(args.key_separator.map(String::into_bytes));
    // Unkeyed records fill one partition's batch, then the next (a sticky partitioner).
    let mut sticky = 0;
    let mut total: u64 = 0;
    while let Some(chunk) = lines.recv().await {
        let chunk = chunk.map_err(|e| anyhow!("cannot read standard input: {e}"))?;
        for line in chunk {
            total += 1;
            let partition = match (args.partition, &line.0) {
                (Some(partition), _) => partition,
                (None, Some(key)) => partition_for_key(key, partition_count),
                (None, None) => sticky,
            };
            if state.add(partition, line) {
                state.flush().await?;
                if args.partition.is_none() && partition == sticky {
                    sticky = (sticky + 1) % partition_count;
                }
            }
        }
        if lines.is_empty() {
            state.flush().await?;
            if args.partition.is_none() {
                sticky = (sticky + 1) % partition_count;
            }
        }
    }
    state.finish(total).await
}

/// The topic's partition count, once every partition has a leader; checks
/// `--partition` against it.
async fn partition_count(client: &Client, args: &Args) -> anyhow::Result<i32> {
    // A producer's metadata request may create the topic (auto.create.topics.enable).
    client
        .metadata_with(Some(std::slice::from_ref(&args.topic)), true)
        .await?;
    let topic = client_tools::topic_with_leaders(client, &args.topic).await?;
    let partition_count = topic.partitions.len() as i32;
    if let Some(partition) = args.partition
        && !(0..partition_count).contains(&partition)
    {
        bail!(UsageError(anyhow!(
            "topic {} has partitions 0..{}, not {partition}",
            args.topic,
            partition_count - 1
        )));
    }
    Ok(partition_count)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &[&str]) -> Args {
        let mut argv = vec!["produce", "--topic", "t"];
        argv.extend_from_slice(line);
        let mut args = Wrapper::try_parse_from(argv).expect("parses").args;
        args.apply_properties().expect("known properties");
        args
    }

    #[test]
    fn console_producer_properties_set_the_key_separator() {
        assert_eq!(
            parse(&[
                "--property",
                "parse.key=true",
                "--property",
                "key.separator=:"
            ])
            .key_separator
            .as_deref(),
            Some(":")
        );
        assert_eq!(
            parse(&["--property", "parse.key=true"])
                .key_separator
                .as_deref(),
            Some("\t")
        );
        assert_eq!(
            parse(&["--property", "key.separator=:"]).key_separator,
            None
        );
        assert_eq!(
            parse(&["--key-separator", "|"]).key_separator.as_deref(),
            Some("|")
        );
        assert_eq!(parse(&[]).acks, -1);
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            split_line(b"k:v", Some(b":")),
            (Some(b"k".to_vec()), b"v".to_vec())
        );
        assert_eq!(
            split_line(b"k:v:w", Some(b":")),
            (Some(b"k".to_vec()), b"v:w".to_vec())
        );
        assert_eq!(
            split_line(b"k::v", Some(b"::")),
            (Some(b"k".to_vec()), b"v".to_vec())
        );
        assert_eq!(
            split_line(b":v", Some(b":")),
            (Some(Vec::new()), b"v".to_vec())
        );
        assert_eq!(
            split_line(b"no key", Some(b":")),
            (None, b"no key".to_vec())
        );
        assert_eq!(split_line(b"k:v", None), (None, b"k:v".to_vec()));
    }

    #[test]
    fn line_endings_are_not_part_of_the_record() {
        assert_eq!(strip_line_ending(b"a\n"), b"a");
        assert_eq!(strip_line_ending(b"a\r\n"), b"a");
        assert_eq!(strip_line_ending(b"a"), b"a");
        assert_eq!(strip_line_ending(b"\n"), b"");
        assert_eq!(strip_line_ending(b"a\r"), b"a\r");
    }
}
