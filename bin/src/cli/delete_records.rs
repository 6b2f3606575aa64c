//! `odradek delete-records`: moves partitions' log start offsets forward, with
//! `kafka-delete-records.sh`'s flags, file and output, so its commands run with only the
//! program name changed:
//!
//! ```text
//! odradek delete-records --bootstrap-server H:P --offset-json-file offsets.json
//!   offsets.json: {"partitions":[{"topic":"t","partition":0,"offset":2}],"version":1}
//!   (offset -1: everything below the high watermark)
//! ```

use std::collections::BTreeSet;

use anyhow::{Context, anyhow, bail};

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::json::Json;

/// Flags of `odradek delete-records`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// The partitions and offsets, as kafka-delete-records reads them.
    #[arg(long, value_name = "FILE")]
    offset_json_file: String,
}

/// One partition to trim.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Deletion {
    topic: String,
    partition: i32,
    offset: i64,
}

/// Runs `odradek delete-records`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.offset_json_file)
        .with_context(|| format!("reading {}", args.offset_json_file))?;
    let deletions = parse_offsets(&text)
        .map_err(|error| UsageError(anyhow!("{}: {error}", args.offset_json_file)))?;
    client_tools::block_on(1, async move {
        let client = client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-delete-records",
        )
        .await?;
        println!("Executing records delete operation");
        let mut results = Vec::with_capacity(deletions.len());
        for deletion in &deletions {
            let result = client
                .delete_records(&deletion.topic, deletion.partition, deletion.offset)
                .await;
            results.push(result);
        }
        println!("Records delete operation completed:");
        let mut failed = 0;
        for (deletion, result) in deletions.iter().zip(results) {
            let Deletion {
                topic, partition, ..
            } = deletion;
            match result {
                Ok(low) => println!("partition: {topic}-{partition}\tlow_watermark: {low}"),
                Err(error) => {
                    failed += 1;
                    println!("partition: {topic}-{partition}\terror: {error}");
                }
            }
        }
        if failed > 0 {
            bail!(
                "{failed} of {} partitions were not trimmed",
                deletions.len()
            );
        }
        Ok(())
    })
}

/// The deletions an offset file asks for; `Err` says what is wrong with it.
fn parse_offsets(text: &str) -> Result<Vec<Deletion>, String> {
    let json = Json::parse(text).map_err(|error| format!("not JSON: {error}"))?;
    if let Some(version) = json.get("version")
        && version.as_i64() != Some(1)
    {
        return Err(format!("version {version:?} is not supported: 1 is"));
    }
    let partitions = json
        .get("partitions")
        .and_then(Json::as_array)
        .ok_or("no \"partitions\" array")?;
    let mut seen = BTreeSet::new();
    let mut deletions = Vec::with_capacity(partitions.len());
    for (index, entry) in partitions.iter().enumerate() {
        let field = |name: &str| {
            entry
                .get(name)
                .ok_or_else(|| format!("partitions[{index}] has no \"{name}\""))
        };
        let topic = field("topic")?.as_str().ok_or("a topic is not a string")?;
        let partition = field("partition")?
            .as_i64()
            .and_then(|p| i32::try_from(p).ok());
        let partition = partition
            .filter(|p| *p >= 0)
            .ok_or("a partition is not a partition number")?;
        let offset = field("offset")?.as_i64().filter(|o| *o >= -1);
        let offset = offset.ok_or("an offset is not an offset (-1 or more)")?;
        if !seen.insert((topic.to_string(), partition)) {
            return Err(format!("{topic}-{partition} is named twice"));
        }
        deletions.push(Deletion {
            topic: topic.to_string(),
            partition,
            offset,
        });
    }
    if deletions.is_empty() {
        return Err("no partitions to delete records of".to_string());
    }
    Ok(deletions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafkas_offset_file_and_refuses_what_it_refuses() {
        let text = r#"{"partitions":[{"topic":"t","partition":0,"offset":2},
            {"topic":"t","partition":1,"offset":-1}],"version":1}"#;
        assert_eq!(
            parse_offsets(text).unwrap(),
            vec![
                Deletion {
                    topic: "t".into(),
                    partition: 0,
                    offset: 2
                },
                Deletion {
                    topic: "t".into(),
                    partition: 1,
                    offset: -1
                },
            ]
        );
        for (bad, says) in [
            (r#"{"partitions":[]}"#, "no partitions"),
            (
                r#"{"partitions":[{"topic":"t","partition":0}]}"#,
                "no \"offset\"",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0,"offset":-2}]}"#,
                "an offset",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":0,"offset":2}]}"#,
                "named twice",
            ),
            (r#"{"partitions":[],"version":2}"#, "version"),
            ("{", "not JSON"),
        ] {
            let error = parse_offsets(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
