//! `odradek format`: makes a new broker's data directory (Kafka: `kafka-storage format`).
//!
//! It takes the flags the broker will start with (only `--data-dir`, `--node-id` and
//! `--config`/`--override` for `log.dirs` and `node.id` matter) plus `--cluster-id`,
//! and writes `meta.properties` with the node id, a new directory id and the cluster
//! id. A broker of a cluster refuses a directory that was not formatted: an empty
//! directory cannot tell a new broker from one whose disk was lost (see
//! `odradek_replication::identity`). A broker alone formats its own on first start.
//!
//! ```text
//! odradek format --node-id 2 --voters 1@h1:9093,2@h2:9093,3@h3:9093 --data-dir data-2 \
//!     --cluster-id orders-cluster
//! odradek format --data-dir data --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]'
//! ```
//!
//! `--add-scram` (kafka-storage's flag) gives the cluster its first SCRAM users, so a
//! SASL listener has someone to let in before anyone could run `odradek configs`. The
//! credentials (salted with the OS random source, never the password itself) are
//! written to `bootstrap.records` in the data directory; the broker that writes the
//! cluster's first metadata record (at the first start of a single broker, at the first
//! election of a cluster) appends them to the metadata log right after it.

use std::sync::Arc;

use anyhow::Context;

use crate::bootstrap_records;
use crate::cli::UsageError;
use crate::cli::broker;
use crate::disk::ProdDisk;
use crate::driver::ProdIo;
use odradek_replication::NodeError;
use odradek_replication::identity;
use odradek_replication::metadata::MetadataRecord;
use odradek_replication::scram::{
    ITERATIONS_MAX, ITERATIONS_MIN, ScramCredential, ScramMechanism, ScramUpsertion,
};

/// Flags of `odradek format`. Its group needs a name of its own: the broker's flags it
/// flattens in are a group named `Args` too, and two groups of one name make clap
/// panic on every debug build.
#[derive(clap::Args, Debug)]
#[group(id = "format_args")]
pub struct Args {
    #[command(flatten)]
    broker: broker::Args,
    /// The cluster's id (Kafka: `kafka-storage format -t`). Every broker of one cluster
    /// is formatted with the same id, and a broker whose quorum names another stops.
    /// Without it the quorum's first leader picks one.
    #[arg(long, value_name = "ID")]
    cluster_id: Option<String>,
    /// Succeed without writing anything if the directory is formatted for this node
    /// already (Kafka: `--ignore-formatted`), so that a start script may always run it.
    #[arg(long)]
    ignore_formatted: bool,
    /// A SCRAM user for the new cluster, kafka-storage's way:
    /// `SCRAM-SHA-256=[name=alice,password=secret]` (optionally `,iterations=8192`).
    /// Repeatable.
    #[arg(long, value_name = "MECHANISM=[name=N,password=P]")]
    add_scram: Vec<String>,
}

/// The SCRAM credentials `--add-scram` asks for, each salted with fresh random bytes.
fn scram_record(specs: &[String]) -> anyhow::Result<Option<MetadataRecord>> {
    if specs.is_empty() {
        return Ok(None);
    }
    let random = ring::rand::SystemRandom::new();
    let mut upsertions = Vec::new();
    for spec in specs {
        let (mechanism, user, password, iterations) = parse_add_scram(spec)?;
        let mut salt = [0u8; SALT_BYTES];
        ring::rand::SecureRandom::fill(&random, &mut salt)
            .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
        let credential = ScramCredential::from_password(mechanism, &password, &salt, iterations);
        upsertions.push(ScramUpsertion {
            user,
            mechanism,
            credential,
        });
    }
    Ok(Some(MetadataRecord::ScramCredentials {
        upsertions,
        deletions: Vec::new(),
    }))
}

/// Random bytes of a SCRAM salt made here.
const SALT_BYTES: usize = 32;

/// Kafka's default SCRAM iterations.
const DEFAULT_ITERATIONS: i32 = 4096;

/// Parses `SCRAM-SHA-256=[name=alice,password=secret,iterations=8192]`.
fn parse_add_scram(spec: &str) -> anyhow::Result<(ScramMechanism, String, String, i32)> {
    let usage = || {
        UsageError(anyhow::anyhow!(
            "--add-scram {spec:?}: expected SCRAM-SHA-256=[name=USER,password=PASSWORD] (or SCRAM-SHA-512)"
        ))
    };
    let (mechanism, fields) = spec.split_once('=').ok_or_else(usage)?;
    let mechanism = ScramMechanism::from_name(mechanism.trim()).ok_or_else(usage)?;
    let fields = fields
        .trim()
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(usage)?;
    let (mut user, mut password, mut iterations) = (None, None, DEFAULT_ITERATIONS);
    for field in fields.split(',') {
        match field.split_once('=') {
            Some(("name", value)) if !value.is_empty() => user = Some(value.to_string()),
            Some(("password", value)) if !value.is_empty() => password = Some(value.to_string()),
            Some(("iterations", value)) => {
                iterations = value.parse().ok().filter(|n| (ITERATIONS_MIN..=ITERATIONS_MAX).contains(n)).ok_or_else(|| {
                    UsageError(anyhow::anyhow!(
                        "--add-scram {spec:?}: iterations must be {ITERATIONS_MIN} to {ITERATIONS_MAX}"
                    ))
                })?;
            }
            _ => return Err(usage().into()),
        }
    }
    match (user, password) {
        (Some(user), Some(password)) => Ok((mechanism, user, password, iterations)),
        _ => Err(usage().into()),
    }
}

/// Formats the data directory.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config =
        broker::configure(&args.broker).map_err(|error| anyhow::Error::new(UsageError(error)))?;
    if let Some(id) = &args.cluster_id
        && (id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        return Err(UsageError(anyhow::anyhow!(
            "--cluster-id must be letters, digits, '-', '_' or '.', got {id:?}"
        ))
        .into());
    }
    let dir = config.data_dir.display().to_string();
    let disk = ProdDisk::open(&config.data_dir, Arc::new(|_| {}))
        .with_context(|| format!("data directory {dir}"))?;
    let mut io = ProdIo::new(disk).context("cannot open the entropy source")?;
    let scram = scram_record(&args.add_scram)?;
    let directory_id = identity::random_id(&mut io);
    match identity::format(
        &mut io,
        config.node_id,
        args.cluster_id.as_deref(),
        directory_id,
    ) {
        Ok(identity) => {
            if let Some(record) = scram {
                bootstrap_records::write(&config.data_dir, &[record])?;
            }
            println!(
                "formatted {dir} for node {} (directory id {}{})",
                identity.node_id,
                identity.directory_id.as_deref().unwrap_or("-"),
                identity
                    .cluster_id
                    .map(|id| format!(", cluster {id}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Err(NodeError::AlreadyFormatted { node_id })
            if args.ignore_formatted && node_id == config.node_id =>
        {
            println!("{dir} is formatted already for node {node_id}: left as it is");
            Ok(())
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!("cannot format {dir}"))),
    }
}
