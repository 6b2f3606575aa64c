//! `odradek groups`: list, describe, delete consumer groups and reset their offsets,
//! like `kafka-consumer-groups.sh`.
//!
//! Both spellings work, as for `odradek topics`: `odradek groups describe G` (or
//! `describe --group G`) and kafka-consumer-groups' `odradek groups --describe --group G`.
//! `list` asks every broker of the cluster (each lists the groups it coordinates).
//! `describe` prints kafka-consumer-groups' table, one line per partition the group has
//! an offset for or a member owns, then the members with their assignments (the
//! consumer protocol's assignment bytes decoded; other bytes shown raw):
//!
//! ```text
//! GROUP     TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID
//! readers   orders  0          40              45              5    rdkafka-…    /127.0.0.1  rdkafka
//!
//! GROUP     CONSUMER-ID  HOST        CLIENT-ID  #PARTITIONS  ASSIGNMENT
//! readers   rdkafka-…    /127.0.0.1  rdkafka    2            orders(0,1)
//! ```
//!
//! `reset-offsets` (or `--reset-offsets`) prints the new offsets and commits them only
//! with `--execute`, and only for a group without active members, as Kafka's tool does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Context as _, anyhow, bail};
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
use crate::client::{Client, ClientError, Connection, ErrorCode, OffsetSpec, topic_name};

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
    /// What to do (list, describe, delete or reset-offsets), then the groups; or give
    /// it kafka-consumer-groups style as --list, --describe, --delete or
    /// --reset-offsets, and the groups with --group.
    #[arg(value_name = "ACTION|GROUP")]
    words: Vec<String>,
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
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// The group (repeat for delete); the same as naming it after the action.
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
    /// The action and the groups: from an action flag (then every word is a group) or
    /// from the first word (then the other words are groups), plus any --group.
    fn action_and_groups(&self) -> anyhow::Result<(Action, Vec<String>)> {
        let flagged = client_tools::flagged_action(&[
            (self.list, Action::List),
            (self.describe, Action::Describe),
            (self.delete, Action::Delete),
            (self.reset_offsets, Action::ResetOffsets),
        ]);
        let (action, words) = match (flagged, self.words.split_first()) {
            (Some(action), _) => (action, self.words.as_slice()),
            (None, Some((first, rest))) => {
                let action = Action::from_str(first, true).map_err(|_| {
                    UsageError(anyhow!(
                        "unknown action '{first}': list, describe, delete or reset-offsets"
                    ))
                })?;
                (action, rest)
            }
            (None, None) => {
                return Err(UsageError(anyhow!(
                    "say what to do: list, describe, delete or reset-offsets (or --list, --describe, ...)"
                ))
                .into());
            }
        };
        let mut groups = words.to_vec();
        groups.extend(self.groups.iter().cloned());
        if action == Action::List && !groups.is_empty() {
            return Err(UsageError(anyhow!("list takes no group")).into());
        }
        Ok((action, groups))
    }
}

/// The one group `action` works on.
fn one_group<'a>(groups: &'a [String], action: &str) -> anyhow::Result<&'a str> {
    match groups {
        [group] => Ok(group),
        [] => Err(UsageError(anyhow!("{action} needs a group (GROUP or --group GROUP)")).into()),
        _ => Err(UsageError(anyhow!("{action} takes one group")).into()),
    }
}

/// Runs `odradek groups`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (action, groups) = args.action_and_groups()?;
    // Usage errors before any connection.
    match action {
        Action::List => {}
        Action::Describe => {
            one_group(&groups, "describe")?;
        }
        Action::Delete if groups.is_empty() => {
            bail!(UsageError(anyhow!(
                "delete needs a group (GROUP... or --group GROUP)"
            )));
        }
        Action::Delete => {}
        Action::ResetOffsets => {
            ResetTarget::from_args(&args)?;
            one_group(&groups, "reset-offsets")?;
        }
    }
    client_tools::block_on(1, async move {
        let client = client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-groups",
        )
        .await?;
        match action {
            Action::List => list(&client).await,
            Action::Describe => describe(&client, one_group(&groups, "describe")?).await,
            Action::Delete => delete(&client, &groups).await,
            Action::ResetOffsets => {
                reset_offsets(&client, &args, one_group(&groups, "reset-offsets")?).await
            }
        }
    })
}

/// Where `reset-offsets` moves a group's offsets, and the topic.
struct ResetTarget<'a> {
    topic: &'a str,
    /// `None`: to the earliest or latest offset (`spec`).
    offset: Option<i64>,
    spec: OffsetSpec,
}

impl<'a> ResetTarget<'a> {
    fn from_args(args: &'a Args) -> anyhow::Result<ResetTarget<'a>> {
        let Some(topic) = args.topic.as_deref() else {
            bail!(UsageError(anyhow!("reset-offsets needs --topic")));
        };
        let (offset, spec) = match (args.to_earliest, args.to_latest, args.to_offset) {
            (true, _, _) => (None, OffsetSpec::Earliest),
            (_, true, _) => (None, OffsetSpec::Latest),
            (_, _, Some(offset)) if offset < 0 => {
                bail!(UsageError(anyhow!(
                    "--to-offset must be 0 or more, not {offset}"
                )))
            }
            (_, _, Some(offset)) => (Some(offset), OffsetSpec::Latest),
            (false, false, None) => bail!(UsageError(anyhow!(
                "reset-offsets needs --to-earliest, --to-latest or --to-offset N"
            ))),
        };
        Ok(ResetTarget {
            topic,
            offset,
            spec,
        })
    }
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

/// The id of `group`'s coordinator and the connection to it.
pub(crate) async fn coordinator(client: &Client, group: &str) -> anyhow::Result<(i32, Connection)> {
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
                let id = response.node_id.0;
                return Ok((id, client.broker(id).await?));
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
    // Name → (state, protocol type). Each broker lists the groups it coordinates.
    let mut groups: BTreeMap<String, (String, String)> = BTreeMap::new();
    for id in client.broker_ids() {
        let connection = client
            .broker(id)
            .await
            .with_context(|| format!("list the groups of broker {id}"))?;
        // v4: with each group's state (an empty states filter: every state).
        let response = connection
            .send(&ListGroupsRequest::default(), 4)
            .await?
            .wait()
            .await
            .with_context(|| format!("list the groups of broker {id}"))?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                format!("list the groups of broker {id}"),
                response.error_code,
                None,
            )
            .into());
        }
        for listed in response.groups {
            groups.insert(
                listed.group_id.0.to_string(),
                (
                    listed.group_state.to_string(),
                    listed.protocol_type.to_string(),
                ),
            );
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let mut rows = vec![["GROUP", "STATE", "PROTOCOL-TYPE"].map(str::to_string)];
    for (group, (state, protocol_type)) in groups {
        rows.push([group, state, or_dash(protocol_type)]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// `text`, or `-` when it is empty (an empty cell would shift the columns).
fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

/// A member as DescribeGroups answers it.
struct DescribedMember {
    member_id: String,
    client_id: String,
    host: String,
    assignment: Assignment,
}

/// A group as DescribeGroups answers it.
struct Described {
    state: String,
    /// `consumer` for consumers; empty for a group that only has offsets.
    protocol_type: String,
    /// The chosen protocol: for consumers, the assignor (`range`, `cooperative-sticky`).
    protocol: String,
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
        .map(|m| DescribedMember {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment: decode_assignment(&described.protocol_type, &m.member_assignment),
        })
        .collect();
    Ok(Described {
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
    })
}

/// A member's assignment: decoded, or the bytes as they are.
#[derive(Debug, PartialEq, Eq)]
enum Assignment {
    /// The (topic, partition)s of a consumer-protocol assignment; none before the
    /// member's first SyncGroup.
    Partitions(Vec<(String, i32)>),
    /// Bytes of another protocol type, of a consumer-protocol version this tool does
    /// not know, or that do not parse.
    Raw(Vec<u8>),
}

impl Assignment {
    /// `orders(0,1),payments(2)`, `-` for none, or `raw:` and the bytes in hex.
    fn to_cell(&self) -> String {
        match self {
            Assignment::Partitions(partitions) if partitions.is_empty() => "-".to_string(),
            Assignment::Partitions(partitions) => {
                let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in partitions {
                    by_topic.entry(topic).or_default().push(*partition);
                }
                let topics: Vec<String> = by_topic
                    .into_iter()
                    .map(|(topic, mut partitions)| {
                        partitions.sort_unstable();
                        let list: Vec<String> =
                            partitions.iter().map(ToString::to_string).collect();
                        format!("{topic}({})", list.join(","))
                    })
                    .collect();
                topics.join(",")
            }
            Assignment::Raw(bytes) => {
                let mut hex = String::from("raw:");
                for byte in bytes {
                    let _ = write!(hex, "{byte:02x}");
                }
                hex
            }
        }
    }

    fn partitions(&self) -> &[(String, i32)] {
        match self {
            Assignment::Partitions(partitions) => partitions,
            Assignment::Raw(_) => &[],
        }
    }
}

/// The newest ConsumerProtocolAssignment version this tool decodes. Versions 0 to 3
/// share one layout: version (int16), [topic (string), [partition (int32)]], user
/// data (bytes).
const CONSUMER_ASSIGNMENT_VERSION_MAX: i16 = 3;

/// Decodes a member's assignment if the group is a `consumer` group and the bytes
/// are a consumer-protocol assignment of a known version; otherwise keeps them raw.
fn decode_assignment(protocol_type: &str, bytes: &[u8]) -> Assignment {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(head)
    }
    fn int16(bytes: &mut &[u8]) -> Option<i16> {
        Some(i16::from_be_bytes(take(bytes, 2)?.try_into().ok()?))
    }
    fn int32(bytes: &mut &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(take(bytes, 4)?.try_into().ok()?))
    }
    fn parse(mut bytes: &[u8]) -> Option<Vec<(String, i32)>> {
        let bytes = &mut bytes;
        let version = int16(bytes)?;
        if !(0..=CONSUMER_ASSIGNMENT_VERSION_MAX).contains(&version) {
            return None;
        }
        let topics = int32(bytes)?;
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            let length = int16(bytes)?;
            let name =
                String::from_utf8(take(bytes, usize::try_from(length).ok()?)?.to_vec()).ok()?;
            let count = int32(bytes)?;
            for _ in 0..count.max(0) {
                out.push((name.clone(), int32(bytes)?));
            }
        }
        // User data: null (-1) or that many bytes, and nothing after it.
        let user_data = int32(bytes)?;
        if user_data >= 0 {
            take(bytes, usize::try_from(user_data).ok()?)?;
        }
        bytes.is_empty().then_some(out)
    }
    if bytes.is_empty() {
        return Assignment::Partitions(Vec::new());
    }
    if protocol_type != "consumer" {
        return Assignment::Raw(bytes.to_vec());
    }
    parse(bytes).map_or_else(|| Assignment::Raw(bytes.to_vec()), Assignment::Partitions)
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

/// Prints kafka-consumer-groups' description of `group`: its state, a line per
/// partition with offsets and lag, then its members.
async fn describe(client: &Client, group: &str) -> anyhow::Result<()> {
    let (coordinator_id, connection) = coordinator(client, group).await?;
    let described = describe_group(&connection, group).await?;
    if described.state == "Dead" {
        bail!("Consumer group '{group}' does not exist.");
    }
    let committed = committed_offsets(&connection, group).await?;
    let owners = owners(&described.members);
    let partitions: BTreeSet<(String, i32)> =
        committed.keys().chain(owners.keys()).cloned().collect();
    let ends = log_end_offsets(client, &partitions, OffsetSpec::Latest).await?;
    let mut out = String::new();
    if described.members.is_empty() {
        let _ = writeln!(out, "\nConsumer group '{group}' has no active members.");
    }
    let _ = writeln!(
        out,
        "\nGroup '{group}' is {} (coordinator: broker {coordinator_id}, protocol type: {}, assignor: {}, members: {}).\n",
        described.state,
        or_dash(described.protocol_type.clone()),
        or_dash(described.protocol.clone()),
        described.members.len()
    );
    let offsets = PartitionOffsets {
        committed: &committed,
        ends: &ends,
        owners: &owners,
    };
    out.push_str(&offsets_table(group, &partitions, &offsets));
    if !described.members.is_empty() {
        out.push('\n');
        out.push_str(&members_table(group, &described.members));
    }
    print!("{out}");
    Ok(())
}

/// The member that owns each assigned partition: (member id, host, client id).
type Owners<'a> = BTreeMap<(String, i32), (&'a str, &'a str, &'a str)>;

/// Which member owns each partition, by the members' assignments.
fn owners(members: &[DescribedMember]) -> Owners<'_> {
    let mut owners = Owners::new();
    for member in members {
        for key in member.assignment.partitions() {
            owners.insert(
                key.clone(),
                (&member.member_id, &member.host, &member.client_id),
            );
        }
    }
    owners
}

/// What `describe` knows of each partition: the group's committed offset, the log
/// end offset, the member that owns it.
struct PartitionOffsets<'a> {
    committed: &'a BTreeMap<(String, i32), i64>,
    ends: &'a BTreeMap<(String, i32), i64>,
    owners: &'a Owners<'a>,
}

/// The partition table of `describe`: offsets, lag and owner, `-` where unknown.
fn offsets_table(
    group: &str,
    partitions: &BTreeSet<(String, i32)>,
    offsets: &PartitionOffsets<'_>,
) -> String {
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
    for key in partitions {
        let current = offsets.committed.get(key);
        let end = offsets.ends.get(key);
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => "-".to_string(),
        };
        let (member, host, client_id) = offsets.owners.get(key).copied().unwrap_or(("-", "-", "-"));
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
    table(&rows)
}

/// The member table of `describe`: each member and its assignment.
fn members_table(group: &str, members: &[DescribedMember]) -> String {
    let mut rows = vec![
        [
            "GROUP",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
            "#PARTITIONS",
            "ASSIGNMENT",
        ]
        .map(str::to_string),
    ];
    for member in members {
        let count = match &member.assignment {
            Assignment::Partitions(partitions) => partitions.len().to_string(),
            Assignment::Raw(_) => "-".to_string(),
        };
        rows.push([
            group.to_string(),
            member.member_id.clone(),
            or_dash(member.host.clone()),
            or_dash(member.client_id.clone()),
            count,
            member.assignment.to_cell(),
        ]);
    }
    table(&rows)
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

async fn delete(client: &Client, groups: &[String]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut deleted = Vec::new();
    for group in groups {
        let (_, connection) = coordinator(client, group).await?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = connection.send(&request, 2).await?.wait().await?;
        for result in response.results {
            let name = result.group_id.0.to_string();
            let code = ErrorCode(result.error_code);
            match result.error_code {
                0 => deleted.push(format!("'{name}'")),
                NON_EMPTY_GROUP => failed.push(format!(
                    "group '{name}' has active members, stop its consumers first ({code})"
                )),
                GROUP_ID_NOT_FOUND => {
                    failed.push(format!("group '{name}' does not exist ({code})"));
                }
                _ => failed.push(format!("group '{name}': {code}")),
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
        bail!("cannot delete: {}", failed.join("; "));
    }
    Ok(())
}

/// DeleteGroups on a group with members.
const NON_EMPTY_GROUP: i16 = 68;
/// DeleteGroups on a group the coordinator does not know.
const GROUP_ID_NOT_FOUND: i16 = 69;

/// Moves a memberless group's offsets on a topic, or with no --execute only prints
/// where they would go.
async fn reset_offsets(client: &Client, args: &Args, group: &str) -> anyhow::Result<()> {
    let target = ResetTarget::from_args(args)?;
    let topic = target.topic;
    let (_, connection) = coordinator(client, group).await?;
    let described = describe_group(&connection, group).await?;
    if !described.members.is_empty() {
        bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            described.state
        );
    }
    let metadata = client_tools::topic_with_leaders(client, topic).await?;
    let partitions: BTreeSet<(String, i32)> = metadata
        .partitions
        .iter()
        .map(|p| (topic.to_string(), p.partition))
        .collect();
    let targets = new_offsets(client, &target, &partitions).await?;
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
        println!("\nDry run: nothing was committed (add --execute to commit these offsets).");
        return Ok(());
    }
    commit_offsets(&connection, group, topic, &targets).await?;
    println!("\nCommitted the new offsets of group '{group}'.");
    Ok(())
}

/// The offsets `reset-offsets` moves `partitions` to.
async fn new_offsets(
    client: &Client,
    target: &ResetTarget<'_>,
    partitions: &BTreeSet<(String, i32)>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    Ok(match target.offset {
        Some(offset) => {
            // Kafka's tool keeps a requested offset within each partition's log.
            let earliest = log_end_offsets(client, partitions, OffsetSpec::Earliest).await?;
            let latest = log_end_offsets(client, partitions, OffsetSpec::Latest).await?;
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
        None => log_end_offsets(client, partitions, target.spec).await?,
    })
}

/// Commits `targets`, offsets of `topic`, for `group`.
pub(crate) async fn commit_offsets(
    connection: &Connection,
    group: &str,
    topic: &str,
    targets: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<()> {
    // What a consumer outside any generation commits: generation -1, no member id.
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
        let decoded = decode_assignment("consumer", &bytes);
        assert_eq!(
            decoded,
            Assignment::Partitions(vec![("orders".to_string(), 0), ("orders".to_string(), 2)])
        );
        assert_eq!(decoded.to_cell(), "orders(0,2)");
        // Null user data (-1) is as good as empty.
        let mut null_user_data = bytes[..bytes.len() - 4].to_vec();
        null_user_data.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_assignment("consumer", &null_user_data), decoded);
        // Before the first SyncGroup a member has no assignment bytes.
        assert_eq!(
            decode_assignment("consumer", &[]),
            Assignment::Partitions(vec![])
        );
        assert_eq!(Assignment::Partitions(vec![]).to_cell(), "-");
        // Cut short, trailing bytes, a version from the future, another protocol type:
        // shown raw.
        for (protocol_type, raw) in [
            ("consumer", &bytes[..9]),
            ("consumer", &[bytes.as_slice(), &[7]].concat()[..]),
            ("consumer", &[&[0, 4], &bytes[2..]].concat()[..]),
            ("connect", &bytes[..]),
        ] {
            assert_eq!(
                decode_assignment(protocol_type, raw),
                Assignment::Raw(raw.to_vec())
            );
        }
        assert_eq!(Assignment::Raw(vec![0, 0xab]).to_cell(), "raw:00ab");
    }

    #[test]
    fn assignments_of_several_topics_are_grouped_and_sorted() {
        let assignment = Assignment::Partitions(vec![
            ("payments".to_string(), 2),
            ("orders".to_string(), 1),
            ("orders".to_string(), 0),
        ]);
        assert_eq!(assignment.to_cell(), "orders(0,1),payments(2)");
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
