//! `odradek groups`: list, describe, delete consumer groups and reset their offsets,
//! like `kafka-consumer-groups.sh`.
//!
//! Both spellings work, as for `odradek topics`: `odradek groups describe --group G` and
//! `odradek groups --describe --group G`. `describe` prints kafka-consumer-groups'
//! table, one line per partition the group has an offset for or a member owns:
//!
//! ```text
//! GROUP     TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID
//! readers   orders  0          40              45              5    rdkafka-…    /127.0.0.1  rdkafka
//! ```
//!
//! `reset-offsets` (or `--reset-offsets`) prints the new offsets and commits them only
//! with `--execute`, and only for a group without active members, as Kafka's tool does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{anyhow, bail};
use clap::ValueEnum;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::{Client, ClientError, Connection, OffsetSpec, topic_name};

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// List every group of the cluster.
    List,
    /// Describe a group (--group): state, members, and per partition the committed
    /// offset, log end offset and lag.
    Describe,
    /// Delete groups (--group, repeatable) that have no members.
    Delete,
    /// Move a memberless group's committed offsets on --topic (--to-earliest,
    /// --to-latest or --to-offset N); a dry run unless --execute.
    ResetOffsets,
}

/// Flags of `odradek groups`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("action_flag").args(["list", "describe", "delete", "reset_offsets"])))]
#[command(group(clap::ArgGroup::new("target").args(["to_earliest", "to_latest", "to_offset"])))]
pub struct Args {
    /// What to do; or give it kafka-consumer-groups style as --list, --describe,
    /// --delete or --reset-offsets.
    #[arg(value_enum, conflicts_with = "action_flag")]
    action: Option<Action>,
    /// Same as the `list` action.
    #[arg(long)]
    list: bool,
    /// Same as the `describe` action.
    #[arg(long)]
    describe: bool,
    /// Same as the `delete` action.
    #[arg(long)]
    delete: bool,
    /// Same as the `reset-offsets` action.
    #[arg(long)]
    reset_offsets: bool,
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// The group (repeat for delete).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// reset-offsets: the topic whose partitions are reset.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// reset-offsets: to each partition's earliest offset.
    #[arg(long)]
    to_earliest: bool,
    /// reset-offsets: to each partition's log end offset.
    #[arg(long)]
    to_latest: bool,
    /// reset-offsets: to this offset on every partition.
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// reset-offsets: commit the new offsets (without it, only print them).
    #[arg(long)]
    execute: bool,
    /// reset-offsets: only print the new offsets (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
}

impl Args {
    fn action(&self) -> anyhow::Result<Action> {
        let flags = [
            (self.list, Action::List),
            (self.describe, Action::Describe),
            (self.delete, Action::Delete),
            (self.reset_offsets, Action::ResetOffsets),
        ];
        let flagged = flags
            .iter()
            .find(|(set, _)| *set)
            .map(|(_, action)| *action);
        self.action.or(flagged).ok_or_else(|| {
            UsageError(anyhow!(
                "say what to do: list, describe, delete or reset-offsets (or --list, --describe, ...)"
            ))
            .into()
        })
    }

    fn group(&self, action: &str) -> anyhow::Result<&str> {
        match self.groups.as_slice() {
            [group] => Ok(group),
            [] => Err(UsageError(anyhow!("{action} needs --group")).into()),
            _ => Err(UsageError(anyhow!("{action} takes one --group")).into()),
        }
    }
}

/// Runs `odradek groups`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let action = args.action()?;
    client_tools::block_on(1, async move {
        let client = client_tools::connect(&args.bootstrap_server, "odradek-groups").await?;
        match action {
            Action::List => list(&client).await,
            Action::Describe => describe(&client, args.group("describe")?).await,
            Action::Delete => delete(&client, &args).await,
            Action::ResetOffsets => reset_offsets(&client, &args).await,
        }
    })
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

/// The connection to `group`'s coordinator.
async fn coordinator(client: &Client, group: &str) -> anyhow::Result<Connection> {
    let mut last_error = None;
    // The first FindCoordinator of a cluster creates __consumer_offsets: ask again
    // for a few seconds while the coordinator is not available yet.
    for _ in 0..50 {
        let bootstrap = client.bootstrap_connection();
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0);
        let response = bootstrap.send(&request, 3).await?.wait().await?;
        match response.error_code {
            0 => {
                client.metadata(Some(&[])).await?;
                return Ok(client.broker(response.node_id.0).await?);
            }
            // COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS
            15 | 14 => {
                last_error = Some(response.error_code);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            code => {
                return Err(ClientError::kafka(
                    format!("find the coordinator of group {group}"),
                    code,
                    response.error_message.as_deref(),
                )
                .into());
            }
        }
    }
    Err(ClientError::kafka(
        format!("find the coordinator of group {group}"),
        last_error.unwrap_or(15),
        None,
    )
    .into())
}

async fn list(client: &Client) -> anyhow::Result<()> {
    client.metadata(Some(&[])).await?;
    let mut groups = BTreeSet::new();
    // Each broker lists the groups it coordinates.
    for id in client.broker_ids() {
        let connection = client.broker(id).await?;
        let response = connection
            .send(&ListGroupsRequest::default(), 3)
            .await?
            .wait()
            .await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka("list groups", response.error_code, None).into());
        }
        groups.extend(
            response
                .groups
                .into_iter()
                .map(|g| g.group_id.0.to_string()),
        );
    }
    let mut out = String::new();
    for group in groups {
        let _ = writeln!(out, "{group}");
    }
    print!("{out}");
    Ok(())
}

/// A member as DescribeGroups answers it: (member id, client id, host, assigned
/// (topic, partition)s).
type DescribedMember = (String, String, String, Vec<(String, i32)>);

/// A group as DescribeGroups answers it.
struct Described {
    state: String,
    members: Vec<DescribedMember>,
}

async fn describe_group(connection: &Connection, group: &str) -> anyhow::Result<Described> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = connection.send(&request, 5).await?.wait().await?;
    let described = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the coordinator described no group"))?;
    if described.error_code != 0 {
        return Err(ClientError::kafka(
            format!("describe group {group}"),
            described.error_code,
            None,
        )
        .into());
    }
    let members = described
        .members
        .into_iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.client_id.to_string(),
                m.client_host.to_string(),
                decode_assignment(&m.member_assignment),
            )
        })
        .collect();
    Ok(Described {
        state: described.group_state.to_string(),
        members,
    })
}

/// The partitions of a consumer-protocol assignment (ConsumerProtocolAssignment
/// v0-v3: version, [topic, [partition]], user data, ...). Anything that does not parse
/// gives no partitions.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(head)
    }
    fn parse(mut bytes: &[u8]) -> Option<Vec<(String, i32)>> {
        let bytes = &mut bytes;
        let _version = i16::from_be_bytes(take(bytes, 2)?.try_into().ok()?);
        let topics = i32::from_be_bytes(take(bytes, 4)?.try_into().ok()?);
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            let length = i16::from_be_bytes(take(bytes, 2)?.try_into().ok()?);
            let name =
                String::from_utf8(take(bytes, usize::try_from(length).ok()?)?.to_vec()).ok()?;
            let count = i32::from_be_bytes(take(bytes, 4)?.try_into().ok()?);
            for _ in 0..count.max(0) {
                let partition = i32::from_be_bytes(take(bytes, 4)?.try_into().ok()?);
                out.push((name.clone(), partition));
            }
        }
        Some(out)
    }
    parse(bytes).unwrap_or_default()
}

/// Every committed offset of `group`: (topic, partition) → offset.
async fn committed_offsets(
    connection: &Connection,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    // Null topics: every partition the group has an offset for.
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    let response = connection.send(&request, 7).await?.wait().await?;
    if response.error_code != 0 {
        return Err(ClientError::kafka(
            format!("fetch the offsets of group {group}"),
            response.error_code,
            None,
        )
        .into());
    }
    let mut offsets = BTreeMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            if partition.error_code == 0 && partition.committed_offset >= 0 {
                offsets.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.committed_offset,
                );
            }
        }
    }
    Ok(offsets)
}

/// Log end offsets of `partitions`, by topic.
async fn log_end_offsets(
    client: &Client,
    partitions: &BTreeSet<(String, i32)>,
    spec: OffsetSpec,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut ends = BTreeMap::new();
    for (topic, partitions) in by_topic {
        client.topic(topic).await?;
        for (partition, offset) in client.list_offsets(topic, &partitions, spec).await? {
            ends.insert((topic.to_string(), partition), offset);
        }
    }
    Ok(ends)
}

async fn describe(client: &Client, group: &str) -> anyhow::Result<()> {
    let connection = coordinator(client, group).await?;
    let described = describe_group(&connection, group).await?;
    if described.state == "Dead" {
        bail!("Consumer group '{group}' does not exist.");
    }
    let committed = committed_offsets(&connection, group).await?;
    let mut owners: BTreeMap<(String, i32), (&str, &str, &str)> = BTreeMap::new();
    for (member, client_id, host, partitions) in &described.members {
        for key in partitions {
            owners.insert(key.clone(), (member, host, client_id));
        }
    }
    let partitions: BTreeSet<(String, i32)> =
        committed.keys().chain(owners.keys()).cloned().collect();
    let ends = log_end_offsets(client, &partitions, OffsetSpec::Latest).await?;
    let mut out = String::new();
    if described.members.is_empty() {
        let _ = writeln!(out, "\nConsumer group '{group}' has no active members.");
    }
    let _ = writeln!(out, "\nGroup '{group}' is {}.\n", described.state);
    let mut rows = vec![
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ]
        .map(str::to_string),
    ];
    for key in &partitions {
        let current = committed.get(key);
        let end = ends.get(key);
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => "-".to_string(),
        };
        let (member, host, client_id) = owners.get(key).copied().unwrap_or(("-", "-", "-"));
        rows.push([
            group.to_string(),
            key.0.clone(),
            key.1.to_string(),
            current.map_or("-".to_string(), ToString::to_string),
            end.map_or("-".to_string(), ToString::to_string),
            lag,
            member.to_string(),
            host.to_string(),
            client_id.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    print!("{out}");
    Ok(())
}

/// Columns padded to their widest cell, two spaces apart.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

async fn delete(client: &Client, args: &Args) -> anyhow::Result<()> {
    if args.groups.is_empty() {
        bail!(UsageError(anyhow!("delete needs --group")));
    }
    let mut failed = Vec::new();
    let mut deleted = Vec::new();
    for group in &args.groups {
        let connection = coordinator(client, group).await?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = connection.send(&request, 2).await?.wait().await?;
        for result in response.results {
            match result.error_code {
                0 => deleted.push(format!("'{}'", result.group_id.0)),
                code => failed.push(format!(
                    "{}: {}",
                    result.group_id.0,
                    ClientError::kafka("", code, None)
                        .to_string()
                        .trim_start_matches(": ")
                )),
            }
        }
    }
    if !deleted.is_empty() {
        println!(
            "Deletion of requested consumer groups ({}) was successful.",
            deleted.join(", ")
        );
    }
    if !failed.is_empty() {
        bail!(
            "Deletion of some consumer groups failed:\n* {}",
            failed.join("\n* ")
        );
    }
    Ok(())
}

async fn reset_offsets(client: &Client, args: &Args) -> anyhow::Result<()> {
    let group = args.group("reset-offsets")?;
    let Some(topic) = args.topic.as_deref() else {
        bail!(UsageError(anyhow!("reset-offsets needs --topic")));
    };
    if !(args.to_earliest || args.to_latest || args.to_offset.is_some()) {
        bail!(UsageError(anyhow!(
            "reset-offsets needs --to-earliest, --to-latest or --to-offset N"
        )));
    }
    let connection = coordinator(client, group).await?;
    let described = describe_group(&connection, group).await?;
    if !described.members.is_empty() {
        bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            described.state
        );
    }
    let metadata = client.topic(topic).await?;
    let partitions: BTreeSet<(String, i32)> = metadata
        .partitions
        .iter()
        .map(|p| (topic.to_string(), p.partition))
        .collect();
    let targets: BTreeMap<(String, i32), i64> = match args.to_offset {
        Some(offset) if offset < 0 => {
            bail!(UsageError(anyhow!(
                "--to-offset must be 0 or more, not {offset}"
            )))
        }
        Some(offset) => {
            // Kafka's tool keeps a requested offset within each partition's log.
            let earliest = log_end_offsets(client, &partitions, OffsetSpec::Earliest).await?;
            let latest = log_end_offsets(client, &partitions, OffsetSpec::Latest).await?;
            partitions
                .iter()
                .map(|key| {
                    let (low, high) = (earliest[key], latest[key]);
                    let clamped = offset.clamp(low, high.max(low));
                    if clamped != offset {
                        eprintln!(
                            "New offset ({offset}) is outside {}-{}'s log ({low}..{high}); it is set to {clamped}.",
                            key.0, key.1
                        );
                    }
                    (key.clone(), clamped)
                })
                .collect()
        }
        None => {
            let spec = if args.to_earliest {
                OffsetSpec::Earliest
            } else {
                OffsetSpec::Latest
            };
            log_end_offsets(client, &partitions, spec).await?
        }
    };
    let mut rows = vec![["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"].map(str::to_string)];
    for ((topic, partition), offset) in &targets {
        rows.push([
            group.to_string(),
            topic.clone(),
            partition.to_string(),
            offset.to_string(),
        ]);
    }
    print!("\n{}", table(&rows));
    if !args.execute {
        return Ok(());
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    targets
                        .iter()
                        .map(|((_, partition), offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*partition)
                                .with_committed_offset(*offset)
                        })
                        .collect(),
                ),
        ]);
    let response = connection.send(&request, 7).await?.wait().await?;
    for topic_response in response.topics {
        for partition in topic_response.partitions {
            if partition.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("commit the offset of {topic}-{}", partition.partition_index),
                    partition.error_code,
                    None,
                )
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_decode_like_the_consumer_protocol() {
        // Version 1, one topic "orders" with partitions 0 and 2, empty user data.
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 6];
        bytes.extend_from_slice(b"orders");
        bytes.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(
            decode_assignment(&bytes),
            vec![("orders".to_string(), 0), ("orders".to_string(), 2)]
        );
        assert_eq!(decode_assignment(b"anything else"), vec![]);
        assert_eq!(decode_assignment(&bytes[..9]), vec![]);
    }

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let rows = [
            ["A".to_string(), "BB".to_string(), "C".to_string()],
            ["long".to_string(), "x".to_string(), "last".to_string()],
        ];
        assert_eq!(table(&rows), "A     BB  C\nlong  x   last\n");
    }
}
