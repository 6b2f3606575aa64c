//! What the client-side commands (`topics`, `groups`, `produce`, `consume`, `bench`)
//! share: the `--bootstrap-server` flag, a runtime, connecting, small parsers, and the
//! errors kept to show.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::cli::UsageError;
use crate::client::{Client, ClientError, ConnectionOptions, OffsetSpec, TopicMetadata};
use crate::config;
use crate::security::SecurityProtocol;
use crate::security::tls::{ClientTls, TlsSettings};

/// Where the tools look for a broker unless told otherwise (`odradek broker`'s default).
pub const DEFAULT_BOOTSTRAP_SERVER: &str = "127.0.0.1:9092";

/// Distinct error messages a tool keeps to show when records fail.
const ERRORS_SHOWN_MAX: usize = 5;

/// How long a tool waits for a just-created topic's partitions to get leaders.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// Runs `future` on a runtime with `workers` worker threads (1: the current thread).
pub fn block_on<F: Future<Output = anyhow::Result<()>>>(
    workers: usize,
    future: F,
) -> anyhow::Result<()> {
    let runtime = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(future)
}

/// Connects to the cluster with the tools' client id and the security settings of
/// `command_config` (`--command-config`), if given.
pub async fn connect(
    bootstrap_server: &str,
    command_config: Option<&Path>,
    client_id: &str,
) -> anyhow::Result<Client> {
    let tls = match command_config {
        Some(path) => client_tls(path).map_err(|error| anyhow::Error::new(UsageError(error)))?,
        None => None,
    };
    let options = ConnectionOptions {
        client_id: client_id.to_string(),
        tls,
        ..ConnectionOptions::default()
    };
    Client::connect(bootstrap_server, options)
        .await
        .with_context(|| format!("cannot reach a broker at {bootstrap_server}"))
}

/// The client TLS a `--command-config` file asks for: `None` for
/// `security.protocol=PLAINTEXT` (the default). librdkafka's `ssl.ca.location` is
/// read as `ssl.truststore.location`; SASL is not spoken by the tools yet.
pub fn client_tls(path: &Path) -> anyhow::Result<Option<ClientTls>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--command-config: cannot read {}", path.display()))?;
    let mut pairs: BTreeMap<String, String> = config::parse_properties(&text)
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .collect();
    if let Some(location) = pairs.remove("ssl.ca.location") {
        pairs
            .entry("ssl.truststore.location".to_string())
            .or_insert(location);
    }
    let protocol = match pairs.get("security.protocol") {
        Some(name) => SecurityProtocol::parse(name)
            .with_context(|| format!("--command-config {}: security.protocol", path.display()))?,
        None => SecurityProtocol::Plaintext,
    };
    match protocol {
        SecurityProtocol::Plaintext => Ok(None),
        SecurityProtocol::Ssl => ClientTls::from_settings(&TlsSettings::from_pairs(&pairs))
            .map(Some)
            .with_context(|| format!("--command-config {}", path.display())),
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => bail!(
            "--command-config {}: security.protocol={protocol}: odradek's tools do not speak SASL yet",
            path.display()
        ),
    }
}

/// Metadata of `topic`, waiting (bounded) while its partitions have no leader yet or
/// the metadata is not there yet; any other error is returned at once.
pub async fn topic_with_leaders(client: &Client, topic: &str) -> anyhow::Result<TopicMetadata> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let result = client.topic(topic).await;
        let retry = match &result {
            Ok(metadata) => {
                metadata.partitions.is_empty()
                    || metadata
                        .partitions
                        .iter()
                        .any(|p| p.leader < 0 || !p.error.is_ok())
            }
            // A topic that does not exist will not appear by waiting.
            Err(error) => {
                error.is_retriable()
                    && error.code() != Some(crate::client::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
            }
        };
        if !retry || tokio::time::Instant::now() >= deadline {
            let metadata = result?;
            if let Some(p) = metadata
                .partitions
                .iter()
                .find(|p| p.leader < 0 || !p.error.is_ok())
            {
                return Err(ClientError::kafka(
                    format!("partition {topic}-{}", p.partition),
                    p.error.0,
                    Some("no leader"),
                )
                .into());
            }
            return Ok(metadata);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`topic_with_leaders`] for a topic the caller just created, once every leader
/// answers for its partition (a ListOffsets without error). A new topic reaches each
/// broker's Metadata, and each partition's leader, a moment apart; Kafka's clients find
/// that out by retrying, and so does this, on any retriable error (an unknown topic
/// included) for up to [`LEADER_WAIT`].
pub async fn created_topic_served(client: &Client, topic: &str) -> anyhow::Result<TopicMetadata> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let error = match topic_with_leaders(client, topic).await {
            Ok(metadata) => {
                let partitions: Vec<i32> =
                    metadata.partitions.iter().map(|p| p.partition).collect();
                match client
                    .list_offsets(topic, &partitions, OffsetSpec::Latest)
                    .await
                {
                    Ok(_) => return Ok(metadata),
                    Err(error) => anyhow::Error::from(error),
                }
            }
            Err(error) => error,
        };
        let retriable = error
            .downcast_ref::<ClientError>()
            .is_some_and(ClientError::is_retriable);
        if !retriable || tokio::time::Instant::now() >= deadline {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Parses `--acks`: `0`, `1`, `all` or `-1`.
pub fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => Err(format!("acks must be 0, 1 or all, not {other:?}")),
    }
}

/// Shows acks as users write them.
pub fn acks_name(acks: i16) -> &'static str {
    match acks {
        0 => "0",
        1 => "1",
        _ => "all",
    }
}

/// Parses a `KEY=VALUE` pair, both trimmed.
pub fn parse_key_value(text: &str) -> anyhow::Result<(String, String)> {
    let (key, value) = split_property(text)?;
    Ok((key.to_string(), value.trim().to_string()))
}

/// Splits a `--property KEY=VALUE` (the value is kept as given, so a separator may be
/// a space or a tab).
pub fn split_property(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        _ => Err(UsageError(anyhow!("expected KEY=VALUE, got {text:?}")).into()),
    }
}

/// The action whose kafka-tools style flag (`--list`, `--describe`, ...) is set, if
/// any: the first of `flags` that is.
pub fn flagged_action<A: Copy>(flags: &[(bool, A)]) -> Option<A> {
    flags
        .iter()
        .find(|(set, _)| *set)
        .map(|(_, action)| *action)
}

/// Keeps `error` if it is new and fewer than [`ERRORS_SHOWN_MAX`] are kept.
pub fn keep_error(errors: &mut Vec<String>, error: String) {
    if errors.len() < ERRORS_SHOWN_MAX && !errors.contains(&error) {
        errors.push(error);
    }
}

/// Millisecond wall-clock time for record timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_parse_like_kafka() {
        assert_eq!(parse_acks("0"), Ok(0));
        assert_eq!(parse_acks("1"), Ok(1));
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert!(parse_acks("2").is_err());
        assert_eq!(acks_name(-1), "all");
    }

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("retention.ms=1000").unwrap(),
            ("retention.ms".to_string(), "1000".to_string())
        );
        assert_eq!(
            parse_key_value("cleanup.policy=compact,delete").unwrap().1,
            "compact,delete"
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
