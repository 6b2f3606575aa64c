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
//! ```

use std::sync::Arc;

use anyhow::Context;

use crate::cli::UsageError;
use crate::cli::broker;
use crate::disk::ProdDisk;
use crate::driver::ProdIo;
use odradek_replication::NodeError;
use odradek_replication::identity;

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
    let directory_id = identity::random_id(&mut io);
    match identity::format(
        &mut io,
        config.node_id,
        args.cluster_id.as_deref(),
        directory_id,
    ) {
        Ok(identity) => {
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
