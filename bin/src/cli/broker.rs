//! `odradek broker`: runs a single-node broker.
//!
//! Start-up order, each step failing with a clear message before the next:
//! configuration → lock the data directory → bind the port → open the node (recovery)
//! → print `odradek broker listening on HOST:PORT` → accept connections. SIGINT or
//! SIGTERM stops accepting, lets the node make everything durable and exits 0; a second
//! signal exits at once with status 130.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::cli::UsageError;
use crate::config::{self, BrokerConfig};
use crate::disk::ProdDisk;
use crate::driver::{self, LoopEnd, ProdIo};
use crate::server::{self, Limits};
use odradek_replication::{Node, NodeConfig};

/// Flags of `odradek broker`. Precedence: `--config` file, then `--override`s, then
/// the dedicated flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A Kafka `server.properties`-style file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (Kafka: `log.dirs`). Default: ./odradek-data
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (Kafka: `listeners`). Default: 127.0.0.1:9092; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// This broker's id (Kafka: `node.id`). Default: 1
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// Sets one configuration key, as in the config file.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Reads the configuration from the flags.
fn configure(args: &Args) -> anyhow::Result<BrokerConfig> {
    let mut builder = config::Builder::default();
    if let Some(path) = &args.config {
        builder.file(path)?;
    }
    for pair in &args.overrides {
        builder.override_pair(pair)?;
    }
    for warning in builder.warnings() {
        warn!("{warning}");
    }
    let mut config = builder.build()?;
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = &args.listen {
        config::split_host_port("--listen", listen)?;
        config.listen = listen.clone();
    }
    if let Some(node_id) = args.node_id {
        if node_id < 0 {
            anyhow::bail!("--node-id must be 0 or more, got {node_id}");
        }
        config.node_id = node_id;
    }
    Ok(config)
}

/// Runs the broker until a signal stops it.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = configure(&args).map_err(|error| anyhow::Error::new(UsageError(error)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("odradek-net")
        .build()
        .context("cannot start the network runtime")?;

    let (outbox, inbox) = driver::queues();
    let completions = outbox.completions.clone();
    let disk = ProdDisk::open(
        &config.data_dir,
        Arc::new(move |completion| drop(completions.send(completion))),
    )
    .with_context(|| format!("data directory {}", config.data_dir.display()))?;
    info!(data_dir = %disk.root().display(), node_id = config.node_id, "starting");

    let listener = runtime.block_on(bind(&config.listen))?;
    let address = listener.local_addr().context("listener address")?;
    let (advertised_host, advertised_port) = match &config.advertised {
        Some((host, port)) => (host.clone(), *port),
        None => (advertised_host(&config.listen, &address), address.port()),
    };
    let node_config = NodeConfig {
        node_id: config.node_id,
        advertised_host,
        advertised_port: i32::from(advertised_port),
        auto_create_topics_enable: config.auto_create_topics_enable,
        num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        min_insync_replicas: config.min_insync_replicas,
        log: config.log.clone(),
        retention_check_interval_ms: config.retention_check_interval_ms,
        ..NodeConfig::default()
    };

    let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ended_tx, ended_rx) = oneshot::channel::<()>();
    let node_thread = std::thread::Builder::new()
        .name("odradek-node".to_string())
        .spawn(move || {
            // Dropped when the thread ends, however it ends, to wake the main task.
            let _ended = ended_tx;
            let mut io = match ProdIo::new(disk) {
                Ok(io) => io,
                Err(error) => {
                    let _ = ready_tx.send(Err(anyhow!(error).context("cannot open /dev/urandom")));
                    return LoopEnd::Shutdown;
                }
            };
            let mut node = match Node::open(&mut io, node_config) {
                Ok(node) => node,
                Err(error) => {
                    let _ = ready_tx.send(Err(anyhow!(error).context("cannot open the node")));
                    return LoopEnd::Shutdown;
                }
            };
            let _ = ready_tx.send(Ok(()));
            driver::run_event_loop(&mut node, &mut io, inbox, stop_rx)
        })
        .context("cannot start the node thread")?;

    let limits = Limits {
        request_bytes_max: config.socket_request_max_bytes,
        idle: config.idle(),
        connections_max: usize::try_from(config.max_connections).unwrap_or(1),
    };
    let served = runtime.block_on(async move {
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(anyhow!("the node thread died while opening")),
        }
        info!(%address, "listening");
        println!("odradek broker listening on {address}");
        std::io::stdout().flush().ok();
        let accept = tokio::spawn(server::serve(listener, outbox.requests, limits));
        let stopped_by_signal = tokio::select! {
            signal = shutdown_signal() => { info!("{signal}: shutting down"); true }
            _ = ended_rx => false,
        };
        accept.abort();
        if stopped_by_signal {
            tokio::spawn(async {
                let signal = shutdown_signal().await;
                warn!("{signal} again: exiting without a clean shutdown");
                std::process::exit(130);
            });
        }
        Ok(())
    });
    let _ = stop_tx.send(());
    let end = node_thread
        .join()
        .map_err(|_| anyhow!("the node thread panicked"))?;
    served?;
    match end {
        LoopEnd::Shutdown => {
            info!("stopped");
            Ok(())
        }
        LoopEnd::Fatal(reason) => {
            error!("node stopped: {reason}");
            Err(anyhow!("node stopped: {reason}"))
        }
    }
}

/// Binds the listener, explaining the usual failure.
async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let (host, port) = config::split_host_port("listen", listen)?;
    let host = if host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        host
    };
    TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|error| {
            let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
                " (the port is taken: is another broker running?)"
            } else {
                ""
            };
            anyhow!("cannot listen on {listen}: {error}{hint}")
        })
}

/// What to tell clients when no `advertised.listeners` is set: the host as configured,
/// or this machine's name if the broker listens on every interface (as Kafka does).
fn advertised_host(listen: &str, address: &SocketAddr) -> String {
    if !address.ip().is_unspecified() {
        return match config::split_host_port("listen", listen) {
            Ok((host, _)) if !host.is_empty() => host,
            _ => address.ip().to_string(),
        };
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Waits for SIGINT or SIGTERM; returns its name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}
