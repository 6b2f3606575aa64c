//! `odradek consume`: a console consumer without a group, like `kcat -C` or
//! `kafka-console-consumer --partition`.
//!
//! Reads every partition of the topic (or `--partition N`) from `--from-beginning`,
//! `--offset earliest|latest|N` (default: latest, i.e. only new records), printing one
//! value per line, optionally prefixed by partition, offset and key. Order is kept
//! within each partition; partitions interleave. `--exit-at-end` (`-e`) stops once
//! every partition is read up to its high watermark, `--max-messages` after N records.
//! Consumer groups and committed offsets come later (`odradek groups`).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use kafka_protocol::messages::fetch_response::PartitionData;

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::records::split_batches;
use crate::client::{Client, ClientError, ErrorCode, FetchOptions, OffsetSpec, TopicMetadata};

/// How long a fetch may wait for new records when following the log.
const FOLLOW_WAIT_MS: i32 = 500;
/// Bytes per partition per fetch (Kafka's max.partition.fetch.bytes default).
const PARTITION_FETCH_BYTES: i32 = 1024 * 1024;
/// Bytes per fetch response (Kafka's fetch.max.bytes default).
const FETCH_BYTES_MAX: i32 = 50 * 1024 * 1024;
/// Retriable errors in a row on one partition before giving up.
const RETRIES_MAX: u32 = 50;
/// Pause before retrying after a retriable error.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where to start reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records produced from now on.
    Latest,
    /// This offset in every partition read.
    At(i64),
}

impl std::str::FromStr for StartOffset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "earliest" | "beginning" => Ok(StartOffset::Earliest),
            "latest" | "end" => Ok(StartOffset::Latest),
            number => match number.parse::<i64>() {
                Ok(offset) if offset >= 0 => Ok(StartOffset::At(offset)),
                _ => Err(format!(
                    "expected earliest, latest or an offset >= 0, not {text:?}"
                )),
            },
        }
    }
}

/// Flags of `odradek consume`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic to read.
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// Read only this partition (default: all).
    #[arg(long, value_name = "N")]
    partition: Option<i32>,
    /// Start at the earliest offset (same as --offset earliest).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Start at earliest, latest (default) or offset N (in each partition read).
    #[arg(long, value_name = "earliest|latest|N")]
    offset: Option<StartOffset>,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Stop once every partition is read to its end (its high watermark).
    #[arg(long, short = 'e')]
    exit_at_end: bool,
    /// Stop if no record arrives for this many milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print each record's key before its value ("null" when it has none).
    #[arg(long)]
    print_key: bool,
    /// Print each record's offset first, as `Offset:N`.
    #[arg(long)]
    print_offset: bool,
    /// Print each record's partition first, as `Partition:N`.
    #[arg(long)]
    print_partition: bool,
    /// Separator between the printed fields.
    #[arg(long, value_name = "SEP", default_value = "\t")]
    key_separator: String,
    /// kafka-console-consumer style setting: print.key=true, print.offset=true,
    /// print.partition=true, key.separator=SEP.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

impl Args {
    /// Folds `--property` settings into the flags they stand for.
    fn apply_properties(&mut self) -> anyhow::Result<()> {
        for property in &self.properties {
            match client_tools::split_property(property)? {
                ("print.key", value) => self.print_key = value == "true",
                ("print.offset", value) => self.print_offset = value == "true",
                ("print.partition", value) => self.print_partition = value == "true",
                ("key.separator", value) => self.key_separator = value.to_string(),
                (other, _) => bail!(UsageError(anyhow!(
                    "unknown property {other:?} (known: print.key, print.offset, print.partition, key.separator)"
                ))),
            }
        }
        Ok(())
    }
}

/// Runs `odradek consume`.
pub fn run(mut args: Args) -> anyhow::Result<()> {
    args.apply_properties()?;
    client_tools::block_on(1, consume(args))
}

/// Per-partition reading state.
#[derive(Debug)]
struct Position {
    next_offset: i64,
    /// Read up to the high watermark (only with --exit-at-end).
    done: bool,
    retries: u32,
}

/// How each record is printed.
#[derive(Clone, Debug)]
struct Format {
    partition: bool,
    offset: bool,
    key: bool,
    separator: Vec<u8>,
}

impl Format {
    fn write(
        &self,
        out: &mut Vec<u8>,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        if self.partition {
            out.extend_from_slice(format!("Partition:{partition}").as_bytes());
            out.extend_from_slice(&self.separator);
        }
        if self.offset {
            out.extend_from_slice(format!("Offset:{offset}").as_bytes());
            out.extend_from_slice(&self.separator);
        }
        if self.key {
            out.extend_from_slice(key.unwrap_or(b"null"));
            out.extend_from_slice(&self.separator);
        }
        out.extend_from_slice(value.unwrap_or(b"null"));
        out.push(b'\n');
    }
}

/// Reads and prints until the run is over; a closed standard output ends it quietly.
async fn consume(args: Args) -> anyhow::Result<()> {
    let client = client_tools::connect(
        &args.bootstrap_server,
        args.command_config.as_deref(),
        "odradek-console-consumer",
    )
    .await?;
    let topic = client_tools::topic_with_leaders(&client, &args.topic).await?;
    let partitions = partitions_to_read(&args, &topic)?;
    let positions = start_positions(&client, &args, &partitions).await?;
    let mut reader = Reader {
        args: &args,
        client: &client,
        format: Format {
            partition: args.print_partition,
            offset: args.print_offset,
            key: args.print_key,
            separator: args.key_separator.clone().into_bytes(),
        },
        options: FetchOptions {
            // With --exit-at-end there is no point waiting for records that may never
            // come: every answer either carries records or shows the partition is at
            // its end.
            max_wait_ms: if args.exit_at_end { 0 } else { FOLLOW_WAIT_MS },
            min_bytes: 1,
            max_bytes: FETCH_BYTES_MAX,
            partition_max_bytes: PARTITION_FETCH_BYTES,
        },
        positions,
        printed: 0,
        last_record: tokio::time::Instant::now(),
        out: Vec::with_capacity(1 << 20),
    };
    let result: anyhow::Result<()> = async {
        while !reader.finished() {
            reader.fetch_round().await?;
        }
        Ok(())
    }
    .await;
    if !reader.out.is_empty() {
        let mut lock = std::io::stdout().lock();
        let _ = lock.write_all(&reader.out).and_then(|()| lock.flush());
    }
    match result {
        // A closed pipe (`| head`) is the reader's way of saying it has enough.
        Err(error) if is_broken_pipe(&error) => Ok(()),
        Err(error) => Err(error),
        Ok(()) => {
            eprintln!("Processed a total of {} messages", reader.printed);
            Ok(())
        }
    }
}

/// The partitions to read: `--partition` if the topic has it, else all of them.
fn partitions_to_read(args: &Args, topic: &TopicMetadata) -> anyhow::Result<Vec<i32>> {
    match args.partition {
        Some(p) if topic.partitions.iter().any(|m| m.partition == p) => Ok(vec![p]),
        Some(p) => bail!(UsageError(anyhow!(
            "topic {} has no partition {p} (it has {})",
            args.topic,
            topic.partitions.len()
        ))),
        None => Ok(topic.partitions.iter().map(|p| p.partition).collect()),
    }
}

/// Where each partition's reading starts, as `--from-beginning` or `--offset` say
/// (default: the high watermark).
async fn start_positions(
    client: &Client,
    args: &Args,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, Position>> {
    let start = match (args.from_beginning, args.offset) {
        (true, _) => StartOffset::Earliest,
        (false, Some(start)) => start,
        (false, None) => StartOffset::Latest,
    };
    let starts: Vec<(i32, i64)> = match start {
        StartOffset::Earliest => {
            client
                .list_offsets(&args.topic, partitions, OffsetSpec::Earliest)
                .await?
        }
        StartOffset::Latest => {
            client
                .list_offsets(&args.topic, partitions, OffsetSpec::Latest)
                .await?
        }
        StartOffset::At(offset) => partitions.iter().map(|&p| (p, offset)).collect(),
    };
    Ok(starts
        .into_iter()
        .map(|(p, next_offset)| {
            (
                p,
                Position {
                    next_offset,
                    done: false,
                    retries: 0,
                },
            )
        })
        .collect())
}

/// A consume run under way: where each partition is, and what was printed.
struct Reader<'a> {
    args: &'a Args,
    client: &'a Client,
    format: Format,
    options: FetchOptions,
    positions: BTreeMap<i32, Position>,
    printed: u64,
    /// When the last record arrived (for --timeout-ms).
    last_record: tokio::time::Instant,
    /// Printed records not yet written to standard output.
    out: Vec<u8>,
}

impl Reader<'_> {
    /// Whether the run is over: --max-messages printed, every partition at its end
    /// (--exit-at-end), or no record for --timeout-ms.
    fn finished(&self) -> bool {
        if self
            .args
            .max_messages
            .is_some_and(|max| self.printed >= max)
        {
            return true;
        }
        if self.positions.values().all(|p| p.done) {
            return true;
        }
        self.args
            .timeout_ms
            .is_some_and(|timeout| self.last_record.elapsed() >= Duration::from_millis(timeout))
    }

    /// One fetch from every leader, all in flight at once; prints what they bring, and
    /// after a retriable error waits and refreshes the metadata.
    async fn fetch_round(&mut self) -> anyhow::Result<()> {
        let wanted: Vec<(i32, i64)> = self
            .positions
            .iter()
            .filter(|(_, p)| !p.done)
            .map(|(&partition, p)| (partition, p.next_offset))
            .collect();
        let pending = self
            .client
            .send_fetches(&self.args.topic, wanted, self.options)
            .await?;
        let mut refresh = false;
        for pending in pending {
            let response = pending.wait().await?;
            if response.error_code != 0 {
                return Err(ClientError::kafka("fetch", response.error_code, None).into());
            }
            for topic_response in response.responses {
                for data in topic_response.partitions {
                    refresh |= self.take_partition(data)?;
                }
            }
        }
        if !self.out.is_empty() {
            let mut lock = std::io::stdout().lock();
            lock.write_all(&self.out)
                .and_then(|()| lock.flush())
                .context("cannot write to standard output")?;
            self.out.clear();
        }
        if refresh {
            tokio::time::sleep(RETRY_BACKOFF).await;
            self.client
                .refresh_metadata(std::slice::from_ref(&self.args.topic))
                .await?;
        }
        Ok(())
    }

    /// Prints the records of one partition's fetched data and moves its position past
    /// them. A retriable error counts a retry and returns true (the metadata wants a
    /// refresh); any other, or one retry too many, is the run's error.
    fn take_partition(&mut self, data: PartitionData) -> anyhow::Result<bool> {
        let Some(position) = self.positions.get_mut(&data.partition_index) else {
            return Ok(false);
        };
        let code = ErrorCode(data.error_code);
        if !code.is_ok() {
            let error = ClientError::kafka(
                format!(
                    "fetch {}-{} at offset {}",
                    self.args.topic, data.partition_index, position.next_offset
                ),
                code.0,
                None,
            );
            if !code.is_retriable() || position.retries >= RETRIES_MAX {
                return Err(error.into());
            }
            position.retries += 1;
            return Ok(true);
        }
        position.retries = 0;
        let records = data.records.unwrap_or_default();
        for batch in split_batches(records)? {
            if batch.last_offset < position.next_offset {
                continue;
            }
            if !batch.is_control {
                for record in batch.records()? {
                    if record.offset < position.next_offset || record.control {
                        continue;
                    }
                    if self
                        .args
                        .max_messages
                        .is_some_and(|max| self.printed >= max)
                    {
                        break;
                    }
                    self.format.write(
                        &mut self.out,
                        data.partition_index,
                        record.offset,
                        record.key.as_deref(),
                        record.value.as_deref(),
                    );
                    self.printed += 1;
                    self.last_record = tokio::time::Instant::now();
                }
            }
            position.next_offset = batch.last_offset + 1;
        }
        if self.args.exit_at_end && position.next_offset >= data.high_watermark {
            position.done = true;
        }
        Ok(false)
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_consumer_properties_set_the_print_flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: Args,
        }
        let argv = [
            "consume",
            "--topic",
            "t",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=:",
        ];
        let mut args = Wrapper::try_parse_from(argv).expect("parses").args;
        args.apply_properties().expect("known properties");
        assert!(args.print_key);
        assert!(!args.print_offset);
        assert_eq!(args.key_separator, ":");
        let argv = ["consume", "--topic", "t", "--property", "color=blue"];
        let mut args = Wrapper::try_parse_from(argv).expect("parses").args;
        assert!(args.apply_properties().is_err());
    }

    #[test]
    fn start_offsets_parse() {
        assert_eq!("earliest".parse(), Ok(StartOffset::Earliest));
        assert_eq!("latest".parse(), Ok(StartOffset::Latest));
        assert_eq!("42".parse(), Ok(StartOffset::At(42)));
        assert!("-3".parse::<StartOffset>().is_err());
        assert!("soon".parse::<StartOffset>().is_err());
    }

    #[test]
    fn records_print_like_the_console_consumer() {
        let mut out = Vec::new();
        let plain = Format {
            partition: false,
            offset: false,
            key: false,
            separator: b"\t".to_vec(),
        };
        plain.write(&mut out, 0, 5, Some(b"k"), Some(b"hello"));
        assert_eq!(out, b"hello\n");
        out.clear();
        let full = Format {
            partition: true,
            offset: true,
            key: true,
            separator: b"\t".to_vec(),
        };
        full.write(&mut out, 2, 5, None, Some(b"v"));
        assert_eq!(out, b"Partition:2\tOffset:5\tnull\tv\n");
    }
}
