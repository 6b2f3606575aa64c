//! `odradek topics`: create, list, describe, delete and alter topics, like
//! `kafka-topics.sh`.
//!
//! Both spellings work: `odradek topics create --topic T` and the kafka-topics style
//! `odradek topics --create --topic T`, so commands written for kafka-topics run with
//! only the program name changed. Output has kafka-topics' shape (`<TAB>`: a tab):
//!
//! ```text
//! Topic: orders<TAB>TopicId: 3x9j…<TAB>PartitionCount: 2<TAB>ReplicationFactor: 1<TAB>Configs: retention.ms=60000
//! <TAB>Topic: orders<TAB>Partition: 0<TAB>Leader: 1<TAB>Replicas: 1<TAB>Isr: 1
//! <TAB>Topic: orders<TAB>Partition: 1<TAB>Leader: 1<TAB>Replicas: 1<TAB>Isr: 1
//! ```

use std::fmt::Write as _;

use anyhow::{anyhow, bail};
use clap::ValueEnum;

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::configs::{ConfigChange, ConfigTarget};
use crate::client::{
    Client, ClientError, ConfigEntry, ErrorCode, NewTopic, TopicMetadata, topic_id_string,
};

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// Create a topic (--topic, optional --partitions, --replication-factor, --config).
    Create,
    /// List topic names.
    List,
    /// Describe topics (all, or --topic), with partitions and non-default configs.
    Describe,
    /// Delete a topic (--topic).
    Delete,
    /// Grow a topic to --partitions partitions, and/or set --config overrides.
    Alter,
}

/// Flags of `odradek topics`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("action_flag").args(["create", "list", "describe", "delete", "alter"])))]
pub struct Args {
    /// What to do; or give it kafka-topics style as --create, --list, --describe,
    /// --delete or --alter.
    #[arg(value_enum, conflicts_with = "action_flag")]
    action: Option<Action>,
    /// Same as the `create` action.
    #[arg(long)]
    create: bool,
    /// Same as the `list` action.
    #[arg(long)]
    list: bool,
    /// Same as the `describe` action.
    #[arg(long)]
    describe: bool,
    /// Same as the `delete` action.
    #[arg(long)]
    delete: bool,
    /// Same as the `alter` action.
    #[arg(long)]
    alter: bool,
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// The topic.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Partition count (create: default is the broker's num.partitions; alter: the new,
    /// larger count).
    #[arg(long, value_name = "N")]
    partitions: Option<i32>,
    /// Replication factor (default: the broker's default.replication.factor).
    #[arg(long, value_name = "N")]
    replication_factor: Option<i16>,
    /// A topic config override, KEY=VALUE; repeat for more.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// create: succeed quietly if the topic exists.
    #[arg(long)]
    if_not_exists: bool,
    /// delete, describe, alter: succeed quietly if the topic does not exist.
    #[arg(long)]
    if_exists: bool,
}

impl Args {
    fn action(&self) -> anyhow::Result<Action> {
        let flagged = client_tools::flagged_action(&[
            (self.create, Action::Create),
            (self.list, Action::List),
            (self.describe, Action::Describe),
            (self.delete, Action::Delete),
            (self.alter, Action::Alter),
        ]);
        self.action.or(flagged).ok_or_else(|| {
            UsageError(anyhow!(
                "say what to do: create, list, describe, delete or alter (or --create, --list, ...)"
            ))
            .into()
        })
    }

    fn topic(&self, action: &str) -> anyhow::Result<&str> {
        self.topic
            .as_deref()
            .ok_or_else(|| UsageError(anyhow!("{action} needs --topic")).into())
    }
}

/// Runs `odradek topics`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let action = args.action()?;
    client_tools::block_on(1, async move {
        let client = client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-topics",
        )
        .await?;
        match action {
            Action::Create => create(&client, &args).await,
            Action::List => list(&client).await,
            Action::Describe => describe(&client, &args).await,
            Action::Delete => delete(&client, &args).await,
            Action::Alter => alter(&client, &args).await,
        }
    })
}

async fn create(client: &Client, args: &Args) -> anyhow::Result<()> {
    let name = args.topic("create")?;
    if let Some(partitions) = args.partitions.filter(|p| *p < 1) {
        bail!(UsageError(anyhow!(
            "--partitions must be at least 1, not {partitions}"
        )));
    }
    if let Some(factor) = args.replication_factor.filter(|r| *r < 1) {
        bail!(UsageError(anyhow!(
            "--replication-factor must be at least 1, not {factor}"
        )));
    }
    let configs = args
        .configs
        .iter()
        .map(|pair| client_tools::parse_key_value(pair))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let topic = NewTopic {
        name: name.to_string(),
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        configs,
    };
    match client.create_topic(&topic).await {
        Ok(_) => {
            println!("Created topic {name}.");
            Ok(())
        }
        Err(error)
            if args.if_not_exists && error.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

async fn list(client: &Client) -> anyhow::Result<()> {
    let mut names: Vec<String> = client
        .metadata(None)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let _ = writeln!(out, "{name}");
    }
    print!("{out}");
    Ok(())
}

async fn describe(client: &Client, args: &Args) -> anyhow::Result<()> {
    let topics = match &args.topic {
        Some(name) => client.metadata(Some(std::slice::from_ref(name))).await?,
        None => client.metadata(None).await?,
    };
    let mut topics: Vec<TopicMetadata> = topics
        .into_iter()
        .filter(|t| !(args.if_exists && t.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for topic in &topics {
        if !topic.error.is_ok() {
            return Err(ClientError::kafka(
                format!("describe topic {}", topic.name),
                topic.error.0,
                None,
            )
            .into());
        }
        let configs = client.describe_topic_configs(&topic.name).await?;
        out.push_str(&format_description(topic, &configs));
    }
    print!("{out}");
    Ok(())
}

async fn delete(client: &Client, args: &Args) -> anyhow::Result<()> {
    let name = args.topic("delete")?;
    match client.delete_topic(name).await {
        Ok(()) => Ok(()),
        Err(error)
            if args.if_exists && error.code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

async fn alter(client: &Client, args: &Args) -> anyhow::Result<()> {
    let name = args.topic("alter")?;
    if args.replication_factor.is_some() {
        bail!(UsageError(anyhow!(
            "alter changes --partitions and --config; the replication factor is not altered"
        )));
    }
    if args.partitions.is_none() && args.configs.is_empty() {
        bail!(UsageError(anyhow!(
            "alter needs --partitions N (the new partition count) or --config KEY=VALUE"
        )));
    }
    let changed = match alter_configs(client, name, &args.configs).await {
        Ok(()) => match args.partitions {
            Some(count) => client.create_partitions(name, count).await,
            None => Ok(()),
        },
        Err(error) => Err(error),
    };
    match changed {
        Ok(()) => Ok(()),
        Err(error)
            if args.if_exists && error.code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Sets each KEY=VALUE of `configs` on topic `name` (IncrementalAlterConfigs).
async fn alter_configs(client: &Client, name: &str, configs: &[String]) -> Result<(), ClientError> {
    if configs.is_empty() {
        return Ok(());
    }
    let mut changes = Vec::new();
    for pair in configs {
        let (key, value) = client_tools::parse_key_value(pair)
            .map_err(|error| ClientError::Other(error.to_string()))?;
        changes.push((key, ConfigChange::Set(value)));
    }
    let target = ConfigTarget::Topic(name.to_string());
    client.alter_configs(&target, &changes).await
}

/// The kafka-topics `--describe` text for one topic: a summary line with the configs
/// that are not defaults, then one tab-indented line per partition.
pub fn format_description(topic: &TopicMetadata, configs: &[ConfigEntry]) -> String {
    let mut shown: Vec<&ConfigEntry> = configs.iter().filter(|c| !c.is_default()).collect();
    shown.sort_by(|a, b| a.name.cmp(&b.name));
    let configs = shown
        .iter()
        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("null")))
        .collect::<Vec<_>>()
        .join(",");
    let mut out = format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
        topic.name,
        topic_id_string(&topic.topic_id),
        topic.partitions.len(),
        topic.replication_factor(),
        configs
    );
    let ids = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    for partition in &topic.partitions {
        let leader = if partition.leader < 0 {
            "none".to_string()
        } else {
            partition.leader.to_string()
        };
        let _ = write!(
            out,
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            topic.name,
            partition.partition,
            leader,
            ids(&partition.replicas),
            ids(&partition.isr)
        );
        if !partition.offline.is_empty() {
            let _ = write!(out, "\tOffline: {}", ids(&partition.offline));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::client::PartitionMetadata;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["topics"];
        argv.extend_from_slice(line);
        Wrapper::try_parse_from(argv).map(|w| w.args)
    }

    #[test]
    fn both_flag_styles_parse() {
        let args = parse(&["create", "--topic", "t", "--partitions", "3"]).unwrap();
        assert_eq!(args.action().unwrap(), Action::Create);
        assert_eq!(args.partitions, Some(3));
        assert_eq!(args.bootstrap_server, DEFAULT_BOOTSTRAP_SERVER);

        // The seeds' kafka-topics.sh command with the program name swapped.
        let args = parse(&[
            "--create",
            "--bootstrap-server",
            "localhost:9092",
            "--topic",
            "user-events",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
        ])
        .unwrap();
        assert_eq!(args.action().unwrap(), Action::Create);
        assert_eq!(args.bootstrap_server, "localhost:9092");
        assert_eq!(args.replication_factor, Some(2));

        let args = parse(&["--list", "--bootstrap-server", "localhost:9092"]).unwrap();
        assert_eq!(args.action().unwrap(), Action::List);
        let args = parse(&[
            "--bootstrap-server",
            "localhost:9092",
            "--alter",
            "--topic",
            "my_topic",
            "--partitions",
            "10",
        ])
        .unwrap();
        assert_eq!(args.action().unwrap(), Action::Alter);
        let args = parse(&["describe", "--config", "a=b", "--config", "c=d"]).unwrap();
        assert_eq!(args.configs, vec!["a=b", "c=d"]);
    }

    #[test]
    fn one_action_only() {
        assert!(parse(&["--create", "--list"]).is_err());
        assert!(parse(&["create", "--list"]).is_err());
        assert!(parse(&["--topic", "t"]).unwrap().action().is_err());
    }

    #[test]
    fn description_has_kafka_topics_shape() {
        let partition = |index| PartitionMetadata {
            partition: index,
            leader: 1,
            leader_epoch: 0,
            replicas: vec![1],
            isr: vec![1],
            offline: vec![],
            error: ErrorCode(0),
        };
        let topic = TopicMetadata {
            name: "orders".to_string(),
            topic_id: std::array::from_fn(|i| i as u8),
            is_internal: false,
            error: ErrorCode(0),
            partitions: vec![partition(0), partition(1)],
        };
        let configs = vec![
            ConfigEntry {
                name: "segment.bytes".into(),
                value: Some("1073741824".into()),
                source: 5,
            },
            ConfigEntry {
                name: "retention.ms".into(),
                value: Some("60000".into()),
                source: 1,
            },
            ConfigEntry {
                name: "cleanup.policy".into(),
                value: Some("delete".into()),
                source: 1,
            },
        ];
        assert_eq!(
            format_description(&topic, &configs),
            "Topic: orders\tTopicId: AAECAwQFBgcICQoLDA0ODw\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: cleanup.policy=delete,retention.ms=60000\n\
             \tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n\
             \tTopic: orders\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\n"
        );
    }
}
