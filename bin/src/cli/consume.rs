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
use kafka_protocol::messages::{ApiKey, FetchResponse};

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::records::split_batches;
use crate::client::{ClientError, ErrorCode, FetchOptions, OffsetSpec, Pending, fetch_request};

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

async fn consume(args: Args) -> anyhow::Result<()> {
    let client = client_tools::connect(&args.bootstrap_server, "odradek-console-consumer").await?;
    let topic = client_tools::topic_with_leaders(&client, &args.topic).await?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if topic.partitions.iter().any(|m| m.partition == p) => vec![p],
        Some(p) => bail!(UsageError(anyhow!(
            "topic {} has no partition {p} (it has {})",
            args.topic,
            topic.partitions.len()
        ))),
        None => topic.partitions.iter().map(|p| p.partition).collect(),
    };
    let start = match (args.from_beginning, args.offset) {
        (true, _) => StartOffset::Earliest,
        (false, Some(start)) => start,
        (false, None) => StartOffset::Latest,
    };
    let starts: Vec<(i32, i64)> = match start {
        StartOffset::Earliest => {
            client
                .list_offsets(&args.topic, &partitions, OffsetSpec::Earliest)
                .await?
        }
        StartOffset::Latest => {
            client
                .list_offsets(&args.topic, &partitions, OffsetSpec::Latest)
                .await?
        }
        StartOffset::At(offset) => partitions.iter().map(|&p| (p, offset)).collect(),
    };
    let mut positions: BTreeMap<i32, Position> = starts
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
        .collect();
    let format = Format {
        partition: args.print_partition,
        offset: args.print_offset,
        key: args.print_key,
        separator: args.key_separator.clone().into_bytes(),
    };
    let options = FetchOptions {
        // With --exit-at-end there is no point waiting for records that may never come:
        // every answer either carries records or shows the partition is at its end.
        max_wait_ms: if args.exit_at_end { 0 } else { FOLLOW_WAIT_MS },
        min_bytes: 1,
        max_bytes: FETCH_BYTES_MAX,
        partition_max_bytes: PARTITION_FETCH_BYTES,
    };
    let mut printed: u64 = 0;
    let mut last_record = tokio::time::Instant::now();
    let stdout = std::io::stdout();
    let mut out = Vec::with_capacity(1 << 20);
    let result: anyhow::Result<()> = async {
        loop {
            if args.max_messages.is_some_and(|max| printed >= max) {
                return Ok(());
            }
            if positions.values().all(|p| p.done) {
                return Ok(());
            }
            if let Some(timeout) = args.timeout_ms
                && last_record.elapsed() >= Duration::from_millis(timeout)
            {
                return Ok(());
            }
            // One fetch per leader, all in flight at once.
            let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
            for (&partition, position) in positions.iter().filter(|(_, p)| !p.done) {
                let leader = client.leader_id(&args.topic, partition)?;
                by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, position.next_offset));
            }
            let mut pending: Vec<Pending<FetchResponse>> = Vec::new();
            for (leader, wanted) in by_leader {
                let connection = client.broker(leader).await?;
                let version = connection.version(ApiKey::Fetch)?;
                let request = fetch_request(&args.topic, &wanted, options);
                pending.push(connection.send(&request, version).await?);
            }
            let mut refresh = false;
            for pending in pending {
                let response = pending.wait().await?;
                if response.error_code != 0 {
                    return Err(ClientError::kafka("fetch", response.error_code, None).into());
                }
                for topic_response in response.responses {
                    for data in topic_response.partitions {
                        let Some(position) = positions.get_mut(&data.partition_index) else {
                            continue;
                        };
                        let code = ErrorCode(data.error_code);
                        if !code.is_ok() {
                            let error = ClientError::kafka(
                                format!(
                                    "fetch {}-{} at offset {}",
                                    args.topic, data.partition_index, position.next_offset
                                ),
                                code.0,
                                None,
                            );
                            if !code.is_retriable() || position.retries >= RETRIES_MAX {
                                return Err(error.into());
                            }
                            position.retries += 1;
                            refresh = true;
                            continue;
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
                                    if args.max_messages.is_some_and(|max| printed >= max) {
                                        break;
                                    }
                                    format.write(
                                        &mut out,
                                        data.partition_index,
                                        record.offset,
                                        record.key.as_deref(),
                                        record.value.as_deref(),
                                    );
                                    printed += 1;
                                    last_record = tokio::time::Instant::now();
                                }
                            }
                            position.next_offset = batch.last_offset + 1;
                        }
                        if args.exit_at_end && position.next_offset >= data.high_watermark {
                            position.done = true;
                        }
                    }
                }
            }
            if !out.is_empty() {
                let mut lock = stdout.lock();
                lock.write_all(&out)
                    .and_then(|()| lock.flush())
                    .context("cannot write to standard output")?;
                out.clear();
            }
            if refresh {
                tokio::time::sleep(RETRY_BACKOFF).await;
                client
                    .refresh_metadata(std::slice::from_ref(&args.topic))
                    .await?;
            }
        }
    }
    .await;
    if !out.is_empty() {
        let mut lock = stdout.lock();
        let _ = lock.write_all(&out).and_then(|()| lock.flush());
    }
    match result {
        // A closed pipe (`| head`) is the reader's way of saying it has enough.
        Err(error) if is_broken_pipe(&error) => Ok(()),
        Err(error) => Err(error),
        Ok(()) => {
            eprintln!("Processed a total of {printed} messages");
            Ok(())
        }
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
