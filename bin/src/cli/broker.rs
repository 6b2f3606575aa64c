//! `odradek broker`: runs a broker, alone or as one of a cluster.
//!
//! Alone by default. With `--voters` (Kafka: `controller.quorum.voters`) it is one of a
//! cluster: it also listens for the other brokers on its peer listener and dials them
//! (see `crate::peers` for the transport, `crate::config` for the rules).
//!
//! ```text
//! odradek broker --node-id 1 --listen 127.0.0.1:9092 --peer-listen 127.0.0.1:9093 \
//!     --voters 1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293 --data-dir data-1
//! ```
//!
//! A broker of a cluster starts only on a directory `odradek format` made (see
//! `crate::cli::format`); a broker alone formats its own on first start.
//!
//! Start-up order, each step failing with a clear message before the next:
//! configuration → lock the data directory → bind the port → bind the peer port (a
//! cluster) → open the node (recovery) → print `odradek broker listening on HOST:PORT`
//! (and `odradek broker peer listener on HOST:PORT`) → accept connections and dial
//! peers. SIGINT or SIGTERM stops accepting, closes the peer connections, lets the node
//! make everything durable and exits 0; a second signal exits at once with status 130.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::cli::UsageError;
use crate::config::{self, BrokerConfig, Listener};
use crate::disk::ProdDisk;
use crate::driver::{self, ClientRequest, Inbox, LoopEnd, ProdIo};
use crate::peers::{PeerConfig, PeerDelivery, PeerOutbox, Transport};
use crate::security::SecurityProtocol;
use crate::security::sasl::{SaslServer, ScramCredentials};
use crate::security::tls::{PeerTls, ServerTls};
use crate::server::{self, Door, Limits};
use odradek_replication::peer::ClientEndpoint;
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
    /// Every broker of the cluster, this one included (Kafka: `controller.quorum.voters`),
    /// each at the address of its peer listener, e.g. 1@host1:9093,2@host2:9093,3@host3:9093.
    /// Without it the broker runs alone and opens no peer listener.
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    voters: Option<String>,
    /// Address to listen on for the other brokers (Kafka: the CONTROLLER listener in
    /// `listeners`). Needs --voters. Default: this broker's own entry in --voters.
    #[arg(long, value_name = "HOST:PORT")]
    peer_listen: Option<String>,
    /// Sets one configuration key, as in the config file.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Reads the configuration from the flags.
pub(crate) fn configure(args: &Args) -> anyhow::Result<BrokerConfig> {
    let mut builder = config::Builder::default();
    if let Some(path) = &args.config {
        builder.file(path)?;
    }
    for pair in &args.overrides {
        builder.override_pair(pair)?;
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
    if let Some(voters) = &args.voters {
        config.voters = config::parse_voters("--voters", voters)?;
    }
    if let Some(peer_listen) = &args.peer_listen {
        config::split_host_port("--peer-listen", peer_listen)?;
        if config.voters.is_empty() {
            anyhow::bail!(
                "--peer-listen needs --voters (or controller.quorum.voters): a broker \
                 without voters runs alone and has no peers"
            );
        }
        config.peer_listen = Some(peer_listen.clone());
    }
    if !matches!(
        config.peer_protocol,
        SecurityProtocol::Plaintext | SecurityProtocol::Ssl
    ) {
        anyhow::bail!(
            "listener.security.protocol.map: the controller listener is {}: peer links speak PLAINTEXT or SSL",
            config.peer_protocol
        );
    }
    let cluster_warnings = config.resolve_cluster()?;
    for warning in builder.warnings().iter().chain(&cluster_warnings) {
        warn!("{warning}");
    }
    Ok(config)
}

/// TLS of the client listeners and of the peer links, each when its listener's
/// protocol asks for it.
#[derive(Debug, Default)]
pub(crate) struct ListenerTls {
    /// One per client listener, in [`BrokerConfig::client_listeners`]' order.
    clients: Vec<Option<Arc<ServerTls>>>,
    peer: Option<Arc<PeerTls>>,
}

/// The listeners' TLS: keystores, truststores and options read now, so a bad one stops
/// the broker at start.
pub(crate) fn listener_tls(config: &BrokerConfig) -> anyhow::Result<ListenerTls> {
    let peer = match config.peer_protocol {
        SecurityProtocol::Ssl if config.peer_listen.is_some() => {
            let tls = PeerTls::from_settings(&config.peer_tls)
                .context("the SSL controller listener (peer links)")?;
            Some(Arc::new(tls))
        }
        _ => None,
    };
    let clients = config
        .client_listeners()
        .iter()
        .map(server_tls)
        .collect::<anyhow::Result<_>>()?;
    Ok(ListenerTls { clients, peer })
}

/// A client listener's TLS when its protocol is SSL or SASL_SSL.
fn server_tls(listener: &Listener) -> anyhow::Result<Option<Arc<ServerTls>>> {
    match listener.protocol {
        SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
            let tls = ServerTls::from_settings(&listener.tls)
                .with_context(|| format!("{} listener {}", listener.protocol, listener.name))?;
            Ok(Some(Arc::new(tls)))
        }
        SecurityProtocol::Plaintext | SecurityProtocol::SaslPlaintext => Ok(None),
    }
}

/// The configuration and the client listener's TLS; a problem with either is a
/// usage error (exit status 2).
fn configure_serving(args: &Args) -> anyhow::Result<(BrokerConfig, ListenerTls)> {
    let usage = |error| anyhow::Error::new(UsageError(error));
    let config = configure(args).map_err(usage)?;
    let tls = listener_tls(&config).map_err(usage)?;
    Ok((config, tls))
}

/// Runs the broker until a signal stops it.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, tls) = configure_serving(&args)?;
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

    let (listeners, peer_listener) = bind_listeners(&runtime, &config, &tls)?;
    let node_config = node_config(&config, &listeners)?;
    // Bundles that arrive before the node is open wait in its peer queue.
    let (transport, peer_outbox) = match peer_listener {
        Some(peer_listener) => {
            let (transport, peer_outbox) =
                start_transport(&runtime, &config, &tls, peer_listener, outbox.peers)?;
            (Some(transport), Some(peer_outbox))
        }
        None => (None, None),
    };

    let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ended_tx, ended_rx) = oneshot::channel::<()>();
    let node_thread = std::thread::Builder::new()
        .name("odradek-node".to_string())
        .spawn(move || {
            // Dropped when the thread ends, however it ends, to wake the main task.
            let _ended = ended_tx;
            run_node(disk, peer_outbox, node_config, inbox, ready_tx, stop_rx)
        })
        .context("cannot start the node thread")?;

    let serving = Serving {
        listeners,
        transport,
        scram: outbox.credentials,
        requests: outbox.requests,
        limits: limits(&config),
    };
    let served = runtime.block_on(serving.serve(ready_rx, ended_rx));
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

/// The limits every client connection shares.
fn limits(config: &BrokerConfig) -> Limits {
    Limits {
        request_bytes_max: config.socket_request_max_bytes,
        idle: config.idle(),
        connections_max: usize::try_from(config.max_connections).unwrap_or(1),
    }
}

/// A client listener with its socket bound.
struct BoundListener {
    listener: Listener,
    socket: TcpListener,
    address: SocketAddr,
    /// Its TLS, if its protocol is SSL or SASL_SSL.
    tls: Option<Arc<ServerTls>>,
}

/// Binds the client listeners and, for a broker of a cluster, the peer listener.
fn bind_listeners(
    runtime: &tokio::runtime::Runtime,
    config: &BrokerConfig,
    tls: &ListenerTls,
) -> anyhow::Result<(Vec<BoundListener>, Option<TcpListener>)> {
    let mut listeners = Vec::new();
    for (listener, tls) in config.client_listeners().into_iter().zip(&tls.clients) {
        let socket = runtime
            .block_on(bind(&listener.address))
            .with_context(|| format!("listener {}", listener.name))?;
        let address = socket.local_addr().context("listener address")?;
        listeners.push(BoundListener {
            listener,
            socket,
            address,
            tls: tls.clone(),
        });
    }
    let peer_listener = match &config.peer_listen {
        Some(peer_listen) => Some(
            runtime
                .block_on(bind(peer_listen))
                .context("peer listener")?,
        ),
        None => None,
    };
    Ok((listeners, peer_listener))
}

/// The endpoint clients of `bound` are told: `advertised.listeners`' entry, else what
/// the listener was bound as.
fn client_endpoint(bound: &BoundListener) -> ClientEndpoint {
    let (host, port) = match &bound.listener.advertised {
        Some((host, port)) => (host.clone(), *port),
        None => (
            advertised_host(&bound.listener.address, &bound.address),
            bound.address.port(),
        ),
    };
    ClientEndpoint {
        listener: bound.listener.name.clone(),
        host,
        port: i32::from(port),
    }
}

/// The node's configuration: the broker's, with the endpoints clients are told.
fn node_config(config: &BrokerConfig, listeners: &[BoundListener]) -> anyhow::Result<NodeConfig> {
    // Without the `mutants` feature every field is set and the update is empty.
    #[allow(clippy::needless_update)]
    Ok(NodeConfig {
        node_id: config.node_id,
        endpoints: listeners.iter().map(client_endpoint).collect(),
        // Kafka names its log directories by their absolute paths.
        log_dir: std::path::absolute(&config.data_dir)
            .unwrap_or_else(|_| config.data_dir.clone())
            .display()
            .to_string(),
        auto_create_topics_enable: config.auto_create_topics_enable,
        num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        min_insync_replicas: config.min_insync_replicas,
        log: config.log.clone(),
        retention_check_interval_ms: config.retention_check_interval_ms,
        log_cleaner_enable: config.log_cleaner_enable,
        log_cleaner_backoff_ms: config.log_cleaner_backoff_ms,
        voters: config.voters.iter().map(|voter| voter.id).collect(),
        raft_tick_ms: config.raft_tick_ms,
        election_timeout_ticks: config.election_timeout_ticks(),
        group: config.group.clone(),
        offsets_topic_replication_factor: config.offsets_topic_replication_factor,
        offsets_topic_segment_bytes: config.offsets_topic_segment_bytes,
        authorizer: config.authorizer.clone(),
        // Only the deliberate bugs of a test build (feature `mutants`), all off.
        bootstrap_records: crate::bootstrap_records::read(&config.data_dir)?,
        ..NodeConfig::default()
    })
}

/// Starts the peer transport of a broker of a cluster on `peer_listener`; bundles it
/// receives go to `deliver`, the node thread's peer queue.
fn start_transport(
    runtime: &tokio::runtime::Runtime,
    config: &BrokerConfig,
    tls: &ListenerTls,
    peer_listener: TcpListener,
    deliver: mpsc::Sender<PeerDelivery>,
) -> anyhow::Result<(Transport, PeerOutbox)> {
    let peer_config = PeerConfig {
        node_id: config.node_id,
        voters: config
            .voters
            .iter()
            .map(|voter| (voter.id, voter.address()))
            .collect(),
        tls: tls.peer.clone(),
    };
    Transport::start(runtime.handle(), peer_config, peer_listener, deliver)
        .context("cannot start the peer transport")
}

/// The node thread: opens the node (telling `ready` how that went), then runs the
/// event loop until `stop` or a fatal error.
fn run_node(
    disk: ProdDisk,
    peer_outbox: Option<PeerOutbox>,
    node_config: NodeConfig,
    inbox: Inbox,
    ready: oneshot::Sender<anyhow::Result<()>>,
    stop: oneshot::Receiver<()>,
) -> LoopEnd {
    let mut io = match ProdIo::new(disk) {
        Ok(io) => io,
        Err(error) => {
            let _ = ready.send(Err(anyhow!(error).context("cannot open /dev/urandom")));
            return LoopEnd::Shutdown;
        }
    };
    if let Some(peer_outbox) = peer_outbox {
        io.set_peers(peer_outbox);
    }
    let mut node = match Node::open(&mut io, node_config) {
        Ok(node) => node,
        Err(error) => {
            let _ = ready.send(Err(anyhow!(error).context("cannot open the node")));
            return LoopEnd::Shutdown;
        }
    };
    let _ = ready.send(Ok(()));
    driver::run_event_loop(&mut node, &mut io, inbox, stop)
}

/// What the network runtime serves once the node is open: the client listener and,
/// in a cluster, the peer transport.
struct Serving {
    listeners: Vec<BoundListener>,
    transport: Option<Transport>,
    /// The SCRAM credentials the node thread publishes, for SASL listeners.
    scram: watch::Receiver<Arc<ScramCredentials>>,
    requests: mpsc::Sender<ClientRequest>,
    limits: Limits,
}

impl Serving {
    /// Waits for the node to open (`ready`), announces the listeners, accepts
    /// connections until a signal or the node thread's end (`ended`), then stops
    /// accepting and closes the peer connections.
    async fn serve(
        self,
        ready: oneshot::Receiver<anyhow::Result<()>>,
        ended: oneshot::Receiver<()>,
    ) -> anyhow::Result<()> {
        match ready.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(anyhow!("the node thread died while opening")),
        }
        let mut accepting = Vec::new();
        for (index, bound) in self.listeners.into_iter().enumerate() {
            let (address, name) = (bound.address, bound.listener.name);
            info!(%address, listener = %name, "listening");
            // The first line is the one scripts and tests wait for.
            if index == 0 {
                println!("odradek broker listening on {address}");
            } else {
                println!("odradek broker listener {name} on {address}");
            }
            let uses_sasl = matches!(
                bound.listener.protocol,
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
            );
            let door = Door {
                name: Arc::from(name.as_str()),
                tls: bound.tls,
                sasl: uses_sasl
                    .then(|| SaslServer::new(bound.listener.sasl.clone(), self.scram.clone())),
            };
            accepting.push(tokio::spawn(server::serve(
                bound.socket,
                door,
                self.requests.clone(),
                self.limits.clone(),
            )));
        }
        if let Some(transport) = &self.transport {
            println!("odradek broker peer listener on {}", transport.local_addr());
        }
        std::io::stdout().flush().ok();
        let stopped_by_signal = tokio::select! {
            signal = shutdown_signal() => { info!("{signal}: shutting down"); true }
            _ = ended => false,
        };
        for accept in accepting {
            accept.abort();
        }
        if let Some(transport) = self.transport {
            transport.shutdown().await;
        }
        if stopped_by_signal {
            tokio::spawn(async {
                let signal = shutdown_signal().await;
                warn!("{signal} again: exiting without a clean shutdown");
                std::process::exit(130);
            });
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    #[command(name = "odradek broker")]
    struct Flags {
        #[command(flatten)]
        args: Args,
    }

    fn configure_with(flags: &[&str]) -> anyhow::Result<BrokerConfig> {
        let flags = Flags::try_parse_from(std::iter::once("broker").chain(flags.iter().copied()))?;
        configure(&flags.args)
    }

    fn error_of(flags: &[&str]) -> String {
        format!("{:#}", configure_with(flags).unwrap_err())
    }

    const THREE: &str = "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293";

    #[test]
    fn without_voters_the_broker_runs_alone() {
        let config = configure_with(&["--node-id", "4"]).unwrap();
        assert_eq!(config.voters, Vec::new());
        assert_eq!(config.peer_listen, None);
    }

    #[test]
    fn voters_without_peer_listen_listen_on_their_own_entry() {
        let config = configure_with(&["--node-id", "2", "--voters", THREE]).unwrap();
        let ids: Vec<i32> = config.voters.iter().map(|voter| voter.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(config.peer_listen.as_deref(), Some("127.0.0.1:9193"));
        let config = configure_with(&[
            "--node-id",
            "2",
            "--voters",
            THREE,
            "--peer-listen",
            "0.0.0.0:9193",
            "--listen",
            "0.0.0.0:9192",
        ])
        .unwrap();
        assert_eq!(config.peer_listen.as_deref(), Some("0.0.0.0:9193"));
        assert_eq!(config.listen, "0.0.0.0:9192");
    }

    #[test]
    fn cluster_flags_override_the_config_keys() {
        let config = configure_with(&[
            "--override",
            "controller.quorum.voters=1@a:1,2@b:1",
            "--override",
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9999",
            "--voters",
            "1@c:7000,5@d:7000",
            "--peer-listen",
            "127.0.0.1:7000",
        ])
        .unwrap();
        let voters: Vec<String> = config.voters.iter().map(ToString::to_string).collect();
        assert_eq!(voters, ["1@c:7000", "5@d:7000"]);
        assert_eq!(config.peer_listen.as_deref(), Some("127.0.0.1:7000"));
        // Voters from the file, this node's id from a flag.
        let config = configure_with(&[
            "--override",
            "controller.quorum.voters=1@a:1,2@b:1",
            "--node-id",
            "2",
        ])
        .unwrap();
        assert_eq!(config.peer_listen.as_deref(), Some("b:1"));
    }

    #[test]
    fn bad_cluster_flags_are_explained() {
        let error = error_of(&["--peer-listen", "127.0.0.1:9093"]);
        assert!(error.contains("--peer-listen needs --voters"), "{error}");
        let error = error_of(&["--voters", "2@h:1,3@h:2"]);
        assert!(
            error.contains("node.id 1 is not one of the voters (2, 3)"),
            "{error}"
        );
        let error = error_of(&["--voters", "1@h:1,1@h:2"]);
        assert!(
            error.contains("--voters: voter id 1 appears twice"),
            "{error}"
        );
        let error = error_of(&["--voters", "1@h:1", "--peer-listen", "nowhere"]);
        assert!(error.contains("--peer-listen"), "{error}");
        let error = error_of(&["--voters", "1@127.0.0.1:9092", "--listen", "127.0.0.1:9092"]);
        assert!(error.contains("same address"), "{error}");
    }

    #[test]
    fn help_documents_the_cluster_flags() {
        let help = Flags::command().render_long_help().to_string();
        for expected in [
            "--voters <ID@HOST:PORT,...>",
            "controller.quorum.voters",
            "--peer-listen <HOST:PORT>",
            "CONTROLLER listener",
            "--node-id <N>",
        ] {
            assert!(
                help.contains(expected),
                "{expected:?} missing from:\n{help}"
            );
        }
    }
}
