//! `odradek configs`: describe and change topic and broker configs at run time, with
//! `kafka-configs.sh`'s spellings and output, so its commands run with only the program
//! name changed:
//!
//! ```text
//! odradek configs --bootstrap-server H:P --entity-type topics --entity-name T \
//!     --alter --add-config retention.ms=3600000,cleanup.policy=[compact,delete]
//! odradek configs --entity-type topics --entity-name T --alter --delete-config retention.ms
//! odradek configs --entity-type brokers --entity-default --alter --add-config log.retention.ms=60000
//! odradek configs --entity-type brokers --entity-name 1 --describe [--all]
//! odradek configs --entity-type users --entity-name alice --alter \
//!     --add-config 'SCRAM-SHA-256=[iterations=8192,password=secret]'
//! odradek configs --entity-type users [--entity-name alice] --describe
//! ```

use anyhow::{anyhow, bail};

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::configs::{ConfigChange, ConfigTarget, DescribedConfig};
use crate::client::scram::{ScramPassword, UserCredentials};
use odradek_replication::scram::ScramMechanism;

/// Flags of `odradek configs`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// `topics` or `brokers` (`topic`, `broker` too).
    #[arg(long, value_name = "TYPE")]
    entity_type: Option<String>,
    /// The topic's name or the broker's id.
    #[arg(long, value_name = "NAME")]
    entity_name: Option<String>,
    /// Every broker's default (with --entity-type brokers).
    #[arg(long)]
    entity_default: bool,
    /// Shorthand for --entity-type topics --entity-name TOPIC.
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["entity_type", "broker"])]
    topic: Option<String>,
    /// Shorthand for --entity-type brokers --entity-name ID.
    #[arg(long, value_name = "ID", conflicts_with_all = ["entity_type", "topic"])]
    broker: Option<String>,
    /// Show the configs (the dynamic ones; every one with --all).
    #[arg(long, conflicts_with = "alter")]
    describe: bool,
    /// With --describe: every config, not only those set dynamically.
    #[arg(long)]
    all: bool,
    /// Change configs (--add-config and/or --delete-config).
    #[arg(long)]
    alter: bool,
    /// KEY=VALUE pairs, comma-separated; a list value in brackets: k=[a,b].
    #[arg(long, value_name = "K=V,...")]
    add_config: Option<String>,
    /// Keys to remove, comma-separated.
    #[arg(long, value_name = "K,...")]
    delete_config: Option<String>,
}

/// Runs `odradek configs`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if matches!(args.entity_type.as_deref(), Some("users" | "user")) {
        return run_users(args);
    }
    let target = target(&args)?;
    if args.describe == args.alter {
        bail!(UsageError(anyhow!("say what to do: --describe or --alter")));
    }
    let changes = if args.alter {
        changes(args.add_config.as_deref(), args.delete_config.as_deref())?
    } else {
        Vec::new()
    };
    client_tools::block_on(1, async move {
        let client = client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-configs",
        )
        .await?;
        if args.alter {
            client.alter_configs(&target, &changes).await?;
            println!("{}", altered_line(&target));
        } else {
            let configs = client.describe_configs(&target).await?;
            print!("{}", describe_text(&target, &configs, args.all));
        }
        Ok(())
    })
}

/// `--entity-type users`: SCRAM credentials (the only user configs served).
fn run_users(args: Args) -> anyhow::Result<()> {
    if args.describe == args.alter {
        bail!(UsageError(anyhow!("say what to do: --describe or --alter")));
    }
    let user = args.entity_name.clone();
    let (set, delete) = if args.alter {
        let Some(user) = &user else {
            bail!(UsageError(anyhow!(
                "--alter of users needs --entity-name USER"
            )));
        };
        let (set, delete) =
            scram_changes(args.add_config.as_deref(), args.delete_config.as_deref())?;
        if user.is_empty() {
            bail!(UsageError(anyhow!("--entity-name must not be empty")));
        }
        (set, delete)
    } else {
        (Vec::new(), Vec::new())
    };
    client_tools::block_on(1, async move {
        let client = client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-configs",
        )
        .await?;
        match (args.alter, user) {
            (true, Some(user)) => {
                client.alter_user_scram(&user, &set, &delete).await?;
                println!("Completed updating config for user {user}.");
            }
            (_, user) => {
                let named = user.map(|user| vec![user]);
                for described in client.describe_user_scram(named.as_deref()).await? {
                    println!("{}", scram_describe_line(&described));
                }
            }
        }
        Ok(())
    })
}

/// kafka-configs' line for one user's SCRAM credentials.
fn scram_describe_line(described: &UserCredentials) -> String {
    let credentials: Vec<String> = described
        .credentials
        .iter()
        .map(|(mechanism, iterations)| format!("{}=iterations={iterations}", mechanism.name()))
        .collect();
    format!(
        "SCRAM credential configs for user-principal '{}' are {}",
        described.user,
        credentials.join(", ")
    )
}

/// The SCRAM changes of --add-config (`SCRAM-SHA-256=[password=p,iterations=8192]`,
/// comma-separated) and --delete-config (`SCRAM-SHA-256`).
fn scram_changes(
    add: Option<&str>,
    delete: Option<&str>,
) -> anyhow::Result<(Vec<ScramPassword>, Vec<ScramMechanism>)> {
    let mechanism = |name: &str| {
        ScramMechanism::from_name(name.trim()).ok_or_else(|| {
            UsageError(anyhow!(
                "user config {name:?} is not supported: SCRAM-SHA-256 or SCRAM-SHA-512"
            ))
        })
    };
    let mut set = Vec::new();
    for pair in split_outside_brackets(add.unwrap_or_default()) {
        let (name, fields) = pair.split_once('=').unwrap_or((pair, ""));
        let mechanism = mechanism(name)?;
        let fields = fields
            .trim()
            .strip_prefix('[')
            .and_then(|f| f.strip_suffix(']'));
        let (mut password, mut iterations) = (None, 4096);
        for field in fields.unwrap_or_default().split(',') {
            match field.split_once('=') {
                Some(("password", value)) => password = Some(value.to_string()),
                Some(("iterations", value)) => {
                    iterations = value
                        .parse()
                        .map_err(|_| UsageError(anyhow!("iterations {value:?} is not a number")))?;
                }
                _ => bail!(UsageError(anyhow!(
                    "--add-config {pair:?}: expected {name}=[password=P] or {name}=[iterations=N,password=P]"
                ))),
            }
        }
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            bail!(UsageError(anyhow!("--add-config {pair:?}: no password")));
        };
        set.push(ScramPassword {
            mechanism,
            password,
            iterations,
        });
    }
    let mut removed = Vec::new();
    for name in delete
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.trim().is_empty())
    {
        removed.push(mechanism(name)?);
    }
    if set.is_empty() && removed.is_empty() {
        bail!(UsageError(anyhow!(
            "--alter needs --add-config or --delete-config"
        )));
    }
    Ok((set, removed))
}

/// Whose configs the flags name.
fn target(args: &Args) -> anyhow::Result<ConfigTarget> {
    if let Some(topic) = &args.topic {
        return Ok(ConfigTarget::Topic(topic.clone()));
    }
    if let Some(broker) = &args.broker {
        return broker_target(Some(broker));
    }
    let name = if args.entity_default {
        None
    } else {
        args.entity_name.as_deref()
    };
    match args.entity_type.as_deref() {
        Some("topics" | "topic") => match name {
            Some(name) => Ok(ConfigTarget::Topic(name.to_string())),
            None => bail!(UsageError(anyhow!("topics need --entity-name TOPIC"))),
        },
        Some("brokers" | "broker") => broker_target(name),
        Some(other) => bail!(UsageError(anyhow!(
            "--entity-type {other} is not supported: topics, brokers or users"
        ))),
        None => bail!(UsageError(anyhow!(
            "say whose configs: --entity-type topics|brokers with --entity-name or --entity-default"
        ))),
    }
}

fn broker_target(name: Option<&str>) -> anyhow::Result<ConfigTarget> {
    match name {
        None => Ok(ConfigTarget::Broker(None)),
        Some(id) => match id.parse::<i32>() {
            Ok(id) => Ok(ConfigTarget::Broker(Some(id))),
            Err(_) => bail!(UsageError(anyhow!("broker {id:?} is not a broker id"))),
        },
    }
}

/// The changes --add-config and --delete-config ask for.
fn changes(add: Option<&str>, delete: Option<&str>) -> anyhow::Result<Vec<(String, ConfigChange)>> {
    let mut changes = Vec::new();
    for pair in split_outside_brackets(add.unwrap_or_default()) {
        let Some((key, value)) = pair.split_once('=') else {
            bail!(UsageError(anyhow!(
                "--add-config wants KEY=VALUE, got {pair:?}"
            )));
        };
        let value = value
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .unwrap_or(value);
        changes.push((key.trim().to_string(), ConfigChange::Set(value.to_string())));
    }
    for key in delete
        .unwrap_or_default()
        .split(',')
        .filter(|k| !k.trim().is_empty())
    {
        changes.push((key.trim().to_string(), ConfigChange::Delete));
    }
    if changes.is_empty() {
        bail!(UsageError(anyhow!(
            "--alter needs --add-config or --delete-config"
        )));
    }
    Ok(changes)
}

/// `text` split at commas that are not inside `[...]`; empty pieces dropped.
fn split_outside_brackets(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (at, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect()
}

fn altered_line(target: &ConfigTarget) -> String {
    match target {
        ConfigTarget::Topic(name) => format!("Completed updating config for topic {name}."),
        ConfigTarget::Broker(Some(id)) => format!("Completed updating config for broker {id}."),
        ConfigTarget::Broker(None) => {
            "Completed updating default config for brokers in the cluster.".to_string()
        }
    }
}

/// kafka-configs' `--describe` text: a header, then `  key=value sensitive=... synonyms={...}`
/// for each config set dynamically on `target` (every config with `all`).
fn describe_text(target: &ConfigTarget, configs: &[DescribedConfig], all: bool) -> String {
    let (header, own_source) = match target {
        ConfigTarget::Topic(name) => (format!("configs for topic {name} are:"), 1),
        ConfigTarget::Broker(Some(id)) => (format!("configs for broker {id} are:"), 2),
        ConfigTarget::Broker(None) => ("configs for brokers in the cluster are:".to_string(), 3),
    };
    let mut text = match (all, target) {
        (true, _) => format!("All {header}\n"),
        (false, ConfigTarget::Broker(None)) => format!("Default {header}\n"),
        (false, _) => format!("Dynamic {header}\n"),
    };
    // Sorted by name, as kafka-configs prints them.
    let mut shown: Vec<&DescribedConfig> = configs
        .iter()
        .filter(|c| all || c.source == own_source)
        .collect();
    shown.sort_by(|a, b| a.name.cmp(&b.name));
    for config in shown {
        let synonyms: Vec<String> = config
            .synonyms
            .iter()
            .map(|(name, value, source)| {
                format!(
                    "{}:{name}={}",
                    source_name(*source),
                    value.as_deref().unwrap_or("null")
                )
            })
            .collect();
        text.push_str(&format!(
            "  {}={} sensitive={} synonyms={{{}}}\n",
            config.name,
            config.value.as_deref().unwrap_or("null"),
            config.sensitive,
            synonyms.join(", ")
        ));
    }
    text
}

/// Kafka's name of a config source.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_splits_pairs_but_not_bracketed_lists() {
        let parsed = changes(
            Some("retention.ms=1000,cleanup.policy=[compact,delete]"),
            Some("segment.ms"),
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("retention.ms".into(), ConfigChange::Set("1000".into())),
                (
                    "cleanup.policy".into(),
                    ConfigChange::Set("compact,delete".into())
                ),
                ("segment.ms".into(), ConfigChange::Delete),
            ]
        );
        assert!(changes(Some("novalue"), None).is_err());
        assert!(changes(None, None).is_err());
    }

    #[test]
    fn describe_shows_what_is_set_on_the_entity_with_kafka_configs_shape() {
        let configs = vec![
            DescribedConfig {
                name: "retention.ms".into(),
                value: Some("60000".into()),
                source: 1,
                sensitive: false,
                synonyms: vec![
                    ("retention.ms".into(), Some("60000".into()), 1),
                    ("log.retention.ms".into(), Some("604800000".into()), 5),
                ],
            },
            DescribedConfig {
                name: "segment.ms".into(),
                value: Some("604800000".into()),
                source: 5,
                sensitive: false,
                synonyms: vec![("log.roll.ms".into(), Some("604800000".into()), 5)],
            },
        ];
        let topic = ConfigTarget::Topic("t".into());
        assert_eq!(
            describe_text(&topic, &configs, false),
            "Dynamic configs for topic t are:\n  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"
        );
        assert!(
            describe_text(&topic, &configs, true).starts_with("All configs for topic t are:\n")
        );
        assert_eq!(describe_text(&topic, &configs, true).lines().count(), 3);
    }
}
