//! `odradek bench commit`: offset commits of many groups as fast as their coordinators
//! take them, then the size of `__consumer_offsets` while the cleaner works: with
//! compaction the partition holds about one record per live group/partition key (plus
//! its active segment), whatever the number of commits.
//!
//! Each group commits one partition of a benchmark topic, one OffsetCommit after the
//! other (a consumer outside any generation, as `odradek groups reset-offsets` commits);
//! the groups commit side by side. Sizes come from DescribeLogDirs of every broker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::DescribeLogDirsRequest;

use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::cli::groups;
use crate::client::Client;

/// `__consumer_offsets`.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Flags of `odradek bench commit`.
#[derive(clap::Args, Debug, Clone)]
pub struct CommitArgs {
    /// A broker to bootstrap from.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings, a properties file (Kafka's `--command-config`):
    /// `security.protocol=SSL`, `ssl.truststore.location`, `ssl.keystore.location`, ...
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// Groups committing side by side.
    #[arg(long, value_name = "N", default_value_t = 100)]
    groups: usize,
    /// Commits in all, shared evenly by the groups.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    commits: u64,
    /// The topic whose offsets are committed (created with one partition).
    #[arg(long, value_name = "TOPIC", default_value = "bench-commits")]
    topic: String,
    /// Seconds to watch `__consumer_offsets` shrink after the last commit.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    settle: f64,
}

/// Runs `odradek bench commit`.
pub async fn bench_commit(args: CommitArgs) -> anyhow::Result<()> {
    let client = Arc::new(
        client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-bench",
        )
        .await?,
    );
    super::bench::ensure_topic(&client, &args.topic, 1).await?;
    let per_group = (args.commits / args.groups.max(1) as u64).max(1);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for group in 0..args.groups {
        let (client, topic) = (client.clone(), args.topic.clone());
        tasks.spawn(async move { commit_loop(&client, group, &topic, per_group).await });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let commits = per_group * args.groups as u64;
    println!(
        "commits: {commits} by {} groups in {elapsed:.1} s: {:.0} commits/s",
        args.groups,
        commits as f64 / elapsed
    );
    let settle_until = Instant::now() + Duration::from_secs_f64(args.settle.max(0.0));
    loop {
        let bytes = offsets_topic_bytes(&client).await?;
        println!(
            "{OFFSETS_TOPIC}: {bytes} bytes on all brokers ({:.1} bytes per commit), {:.0} s after the last commit",
            bytes as f64 / commits as f64,
            started.elapsed().as_secs_f64() - elapsed
        );
        if Instant::now() >= settle_until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// `commits` commits of group `bench-commit-<group>`, offsets 1, 2, 3, ...
async fn commit_loop(
    client: &Client,
    group: usize,
    topic: &str,
    commits: u64,
) -> anyhow::Result<()> {
    let name = format!("bench-commit-{group}");
    let (_, connection) = groups::coordinator(client, &name).await?;
    for offset in 1..=commits {
        let targets = [((topic.to_string(), 0), offset as i64)]
            .into_iter()
            .collect();
        groups::commit_offsets(&connection, &name, topic, &targets).await?;
    }
    Ok(())
}

/// The bytes of every `__consumer_offsets` replica, on every broker.
async fn offsets_topic_bytes(client: &Client) -> anyhow::Result<i64> {
    client.metadata(Some(&[])).await?;
    let mut total = 0;
    for id in client.broker_ids() {
        let connection = client.broker(id).await?;
        let response = connection
            .request(&DescribeLogDirsRequest::default().with_topics(None))
            .await?;
        for dir in response.results {
            let topics = dir
                .topics
                .iter()
                .filter(|t| t.name.as_str() == OFFSETS_TOPIC);
            total += topics
                .flat_map(|topic| &topic.partitions)
                .map(|partition| partition.partition_size)
                .sum::<i64>();
        }
    }
    Ok(total)
}
