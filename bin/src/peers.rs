//! The broker-to-broker transport: how the bundles of `odradek_replication::peer` get
//! from one broker's node thread to another's.
//!
//! ```text
//!  broker 1                                                   broker 2
//!  node thread                                                node thread
//!   │ ProdIo::send(2, bundle)                                  ▲ Event::Peer { from: 1, .. }
//!   ▼                                                          │
//!  PeerOutbox ── [link queue to 2, bounded] ─► link task ══ TCP ══► peer listener task
//!                 full, or link down: dropped    dials 2,          handshake, then frames:
//!                                                re-dials          decode ─► [peer queue] ─┘
//! ```
//!
//! Each broker dials every other voter once, lazily (when the node first has something
//! to say to it), and only ever *writes* on the connection it dialled; it *reads* on
//! the connections others dialled to it. So a pair of brokers talks over two TCP
//! connections, one each way, and nothing on either needs a request-response protocol.
//! Delivery is best effort, as `NodeIo::send` promises: a bundle for a peer that is
//! down, or whose queue is full, is dropped and counted (Raft resends what matters).
//!
//! ## The handshake
//!
//! A connection starts with one fixed-size handshake from each side, the dialler first:
//!
//! ```text
//!  magic     4 bytes  "ODRK"
//!  version   u16      PEER_PROTOCOL_VERSION (= 1)
//!  from      i32      the sender's node.id
//!  to        i32      the node.id the sender believes is at the other end
//!  identity  u64      the cluster identity: FNV-1a of the sorted voter list
//! ```
//!
//! (22 bytes, integers big-endian.) The cluster identity is a hash of
//! `controller.quorum.voters` in one canonical form, sorted by id
//! (`1@host1:9093,2@host2:9093,...`), so two brokers configured with different voter
//! sets refuse each other, each with a log line saying so, instead of mixing two
//! clusters' Raft traffic. `to` catches a voter list that points at the wrong broker.
//! Both sides check everything; the listener sends its own handshake back before
//! refusing, so the dialler can log the reason too.
//!
//! ## Frames
//!
//! After the handshake the dialler sends frames, and only frames:
//!
//! ```text
//!  length  u32       bytes that follow, at most PEER_FRAME_BYTES_MAX (64 MiB)
//!  bundle  length    one PeerMessage, as PeerMessage::encode writes it
//! ```
//!
//! A frame that is too long, or whose bundle does not decode, closes that connection
//! with a warning; other connections carry on, and the dialler re-dials. A frame's
//! buffer grows with the bytes that actually arrive, never with the length it claims.
//!
//! ## Re-dialling
//!
//! A link that fails to connect, fails its handshake, or loses its connection waits
//! and dials again, the wait doubling from [`REDIAL_BACKOFF_MIN`] up to
//! [`REDIAL_BACKOFF_MAX`]. While it waits, what the node queues for that peer is
//! dropped: a Raft message that is seconds old is worth nothing.
//!
//! Nothing here blocks the node thread: [`PeerOutbox::send`] is a `try_send` on a
//! bounded queue, and encoding happens on the link's task.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::security::tls::PeerTls;
use odradek_log::mixing::Fnv64;
use odradek_replication::peer::{BrokerId, PeerMessage};

/// A peer connection: TCP, or TLS over it.
trait PeerStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin> PeerStream for S {}
type BoxedStream = Box<dyn PeerStream>;

/// The handshake's first bytes: "this is an Odradek broker".
pub const PEER_MAGIC: [u8; 4] = *b"ODRK";

/// The version of the handshake and framing (the bundle format has its own,
/// `PEER_FORMAT_VERSION`, inside each bundle).
pub const PEER_PROTOCOL_VERSION: u16 = 1;

/// The size of a handshake: magic, version, from, to, identity.
pub const HANDSHAKE_BYTES: usize = 4 + 2 + 4 + 4 + 8;

/// The longest frame read or written. A Raft append is bounded far below this
/// (`append_bytes_max`); a bigger frame is a bug or an attack.
pub const PEER_FRAME_BYTES_MAX: u32 = 64 * 1024 * 1024;

/// Bundles queued for one peer before the node's sends to it are dropped.
pub const LINK_BUNDLES_QUEUED_MAX: usize = 256;

/// Connections the peer listener serves at once, handshaking ones included; more wait
/// in the accept backlog. A cluster needs one per other voter.
pub const PEER_CONNECTIONS_MAX: usize = 64;

/// The first wait before re-dialling a peer.
pub const REDIAL_BACKOFF_MIN: Duration = Duration::from_millis(50);

/// The longest wait before re-dialling a peer.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Longest wait for a TCP connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest wait for the other side's handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a write may wait for a peer that reads nothing before the link is
/// declared down.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bundles queued together are written with one syscall up to this many bytes.
pub const WRITE_COALESCE_BYTES: usize = 64 * 1024;

/// After a failed accept (out of file descriptors, ...), wait this long.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

const _: () = assert!(REDIAL_BACKOFF_MIN.as_millis() < REDIAL_BACKOFF_MAX.as_millis());
const _: () = assert!(PEER_FRAME_BYTES_MAX as u64 <= u32::MAX as u64);

/// Who this broker is among its peers.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// This broker's `node.id`; one of `voters`.
    pub node_id: BrokerId,
    /// Every voter's peer address (`host:port`, what `connect` takes), this broker
    /// included (its own entry is never dialled, but counts in the identity).
    pub voters: BTreeMap<BrokerId, String>,
    /// TLS on every link (the peer listener's protocol is SSL), or plain TCP.
    pub tls: Option<Arc<PeerTls>>,
}

impl PeerConfig {
    /// The cluster identity of the handshake: FNV-1a (64-bit) of the voters in the
    /// form `1@host:port,2@host:port`, sorted by id. Stable across builds and
    /// processes, unlike `std`'s hashers.
    pub fn cluster_identity(&self) -> u64 {
        let canonical: Vec<String> = self
            .voters
            .iter()
            .map(|(id, address)| format!("{id}@{address}"))
            .collect();
        Fnv64::of(canonical.join(",").as_bytes())
    }
}

/// Counters of the whole transport, for logs and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Bundles received and handed to the node thread.
    pub bundles_received: AtomicU64,
    /// Incoming connections that passed the handshake.
    pub connections_accepted: AtomicU64,
    /// Incoming connections refused at the handshake (bad magic, other cluster, ...).
    pub handshakes_refused: AtomicU64,
    /// Incoming connections closed for an oversized or undecodable frame.
    pub bad_frames: AtomicU64,
}

/// Counters of the link to one peer.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Connections that completed the handshake.
    pub connects: AtomicU64,
    /// Bundles written to the socket.
    pub bundles_sent: AtomicU64,
    /// Bundles dropped: the queue was full, the link was down, or the bundle did not
    /// fit in a frame.
    pub bundles_dropped: AtomicU64,
}

/// A bundle from another broker, as the peer transport received it: what it hands
/// the node thread's peer queue.
pub struct PeerDelivery {
    /// The sender, as its connection's handshake established.
    pub from: BrokerId,
    /// The bundle.
    pub message: PeerMessage,
}

/// What the transport's tasks share.
struct Shared {
    config: PeerConfig,
    identity: u64,
    stats: TransportStats,
    links: BTreeMap<BrokerId, Arc<LinkStats>>,
}

/// The node thread's side of the transport: where [`ProdIo`](crate::driver::ProdIo)
/// hands bundles to send. Never blocks.
pub struct PeerOutbox {
    node_id: BrokerId,
    links: BTreeMap<BrokerId, (mpsc::Sender<PeerMessage>, Arc<LinkStats>)>,
    dropped_unknown: u64,
}

impl PeerOutbox {
    /// Queues `message` for broker `to`, or drops it (counted, logged at debug) if
    /// `to` is not a voter, its queue is full, or the transport has stopped.
    pub fn send(&mut self, to: BrokerId, message: PeerMessage) {
        if to == self.node_id {
            // The node never sends to itself; if it does, the bundle has nowhere to go.
            debug_assert!(false, "broker {to} sent a bundle to itself");
            tracing::error!("broker {to} sent a bundle to itself: dropped");
            return;
        }
        let Some((queue, stats)) = self.links.get(&to) else {
            self.dropped_unknown += 1;
            debug!(
                to,
                dropped = self.dropped_unknown,
                "bundle for a broker that is not a voter dropped"
            );
            return;
        };
        if let Err(error) = queue.try_send(message) {
            let dropped = stats.bundles_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let why = match error {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "transport stopped",
            };
            debug!(to, dropped, "bundle dropped: {why}");
        }
    }
}

/// The running transport: the peer listener and one link per other voter, all tasks
/// of the network runtime. Dropping it stops them; [`Transport::shutdown`] also waits.
pub struct Transport {
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    address: SocketAddr,
}

impl Transport {
    /// Starts listening on `listener` and a link task for every other voter, on
    /// `runtime`. Bundles received go to `deliver` (the node thread's peer queue).
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: PeerConfig,
        listener: TcpListener,
        deliver: mpsc::Sender<PeerDelivery>,
    ) -> std::io::Result<(Transport, PeerOutbox)> {
        assert!(
            config.voters.contains_key(&config.node_id),
            "this broker is one of the voters (checked by the configuration)"
        );
        let address = listener.local_addr()?;
        let links: BTreeMap<BrokerId, Arc<LinkStats>> = config
            .voters
            .keys()
            .filter(|&&id| id != config.node_id)
            .map(|&id| (id, Arc::new(LinkStats::default())))
            .collect();
        let shared = Arc::new(Shared {
            identity: config.cluster_identity(),
            config,
            stats: TransportStats::default(),
            links,
        });
        let mut tasks = JoinSet::new();
        tasks.spawn_on(listen(Arc::clone(&shared), listener, deliver), runtime);
        let mut outbox = PeerOutbox {
            node_id: shared.config.node_id,
            links: BTreeMap::new(),
            dropped_unknown: 0,
        };
        for (&peer, stats) in &shared.links {
            let (queue_tx, queue_rx) = mpsc::channel(LINK_BUNDLES_QUEUED_MAX);
            let address = shared.config.voters[&peer].clone();
            tasks.spawn_on(link(Arc::clone(&shared), peer, address, queue_rx), runtime);
            outbox.links.insert(peer, (queue_tx, Arc::clone(stats)));
        }
        info!(
            %address,
            identity = format!("{:016x}", shared.identity),
            peers = shared.links.len(),
            "peer listener started"
        );
        Ok((
            Transport {
                tasks,
                shared,
                address,
            },
            outbox,
        ))
    }

    /// Where the peer listener listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The transport's counters.
    pub fn stats(&self) -> &TransportStats {
        &self.shared.stats
    }

    /// The counters of the link to `peer`, if it is another voter.
    pub fn link_stats(&self, peer: BrokerId) -> Option<&LinkStats> {
        self.shared.links.get(&peer).map(|stats| &**stats)
    }

    /// Stops every task (the listener, its connections, the links) and waits for
    /// them, so every socket is closed when it returns.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
        let stats = self.stats();
        let links = self
            .shared
            .links
            .keys()
            .filter_map(|&peer| self.link_stats(peer));
        let (sent, dropped) = links.fold((0, 0), |(sent, dropped), link| {
            (
                sent + link.bundles_sent.load(Ordering::Relaxed),
                dropped + link.bundles_dropped.load(Ordering::Relaxed),
            )
        });
        info!(
            received = stats.bundles_received.load(Ordering::Relaxed),
            sent,
            dropped,
            refused = stats.handshakes_refused.load(Ordering::Relaxed),
            bad_frames = stats.bad_frames.load(Ordering::Relaxed),
            "peer transport stopped"
        );
    }
}

/// One side's handshake (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Handshake {
    version: u16,
    from: BrokerId,
    to: BrokerId,
    identity: u64,
}

impl Handshake {
    fn encode(&self) -> [u8; HANDSHAKE_BYTES] {
        let mut out = [0; HANDSHAKE_BYTES];
        out[0..4].copy_from_slice(&PEER_MAGIC);
        out[4..6].copy_from_slice(&self.version.to_be_bytes());
        out[6..10].copy_from_slice(&self.from.to_be_bytes());
        out[10..14].copy_from_slice(&self.to.to_be_bytes());
        out[14..22].copy_from_slice(&self.identity.to_be_bytes());
        out
    }

    /// `None` if the bytes do not start with [`PEER_MAGIC`].
    fn decode(bytes: &[u8; HANDSHAKE_BYTES]) -> Option<Handshake> {
        if bytes[0..4] != PEER_MAGIC {
            return None;
        }
        let field = |range: std::ops::Range<usize>| &bytes[range];
        Some(Handshake {
            version: u16::from_be_bytes(field(4..6).try_into().expect("2 bytes")),
            from: i32::from_be_bytes(field(6..10).try_into().expect("4 bytes")),
            to: i32::from_be_bytes(field(10..14).try_into().expect("4 bytes")),
            identity: u64::from_be_bytes(field(14..22).try_into().expect("8 bytes")),
        })
    }

    /// Checks the other side's handshake: same protocol, same cluster, a voter other
    /// than us, talking to us. `expected_from` is the peer a dialler dialled.
    fn check(&self, shared: &Shared, expected_from: Option<BrokerId>) -> anyhow::Result<()> {
        let own = shared.config.node_id;
        if self.version != PEER_PROTOCOL_VERSION {
            bail!(
                "broker {} speaks peer protocol version {}, this broker {}",
                self.from,
                self.version,
                PEER_PROTOCOL_VERSION
            );
        }
        if self.identity != shared.identity {
            let voters: Vec<String> = shared
                .config
                .voters
                .iter()
                .map(|(id, address)| format!("{id}@{address}"))
                .collect();
            bail!(
                "broker {} has a different voter set (cluster identity {:016x}, ours {:016x} \
                 from {}): every broker must have the same controller.quorum.voters",
                self.from,
                self.identity,
                shared.identity,
                voters.join(",")
            );
        }
        if let Some(expected) = expected_from
            && self.from != expected
        {
            bail!(
                "dialled broker {expected}, but broker {} answered: check the voter addresses",
                self.from
            );
        }
        if self.from == own {
            bail!("the other side claims this broker's own id {own}");
        }
        if !shared.links.contains_key(&self.from) {
            bail!("broker {} is not a voter", self.from);
        }
        if self.to != own {
            bail!(
                "broker {} meant to reach broker {}, but this is broker {own}: check the \
                 voter addresses",
                self.from,
                self.to
            );
        }
        Ok(())
    }
}

/// Reads the other side's handshake, within [`HANDSHAKE_TIMEOUT`]. The magic is
/// checked as soon as it arrives, so a stranger (a Kafka client on the wrong port) is
/// refused at once rather than when the timeout runs out.
async fn read_handshake(stream: &mut (impl AsyncRead + Unpin)) -> anyhow::Result<Handshake> {
    let mut bytes = [0; HANDSHAKE_BYTES];
    let read = async {
        stream.read_exact(&mut bytes[..PEER_MAGIC.len()]).await?;
        if bytes[..PEER_MAGIC.len()] != PEER_MAGIC {
            return Ok(false);
        }
        stream.read_exact(&mut bytes[PEER_MAGIC.len()..]).await?;
        Ok::<bool, std::io::Error>(true)
    };
    let magic = tokio::time::timeout(HANDSHAKE_TIMEOUT, read)
        .await
        .map_err(|_| anyhow!("no handshake within {} ms", HANDSHAKE_TIMEOUT.as_millis()))?
        .context("reading the handshake")?;
    let handshake = if magic {
        Handshake::decode(&bytes)
    } else {
        None
    };
    handshake.ok_or_else(|| {
        anyhow!("not an odradek peer (no handshake magic): a Kafka client on the peer port?")
    })
}

// ---------------------------------------------------------------------------------------
// Incoming: the peer listener.

/// The authenticated incoming connection of each peer. A peer keeps one connection
/// to us; when it re-dials, its new connection replaces (and closes) the old one, so
/// a half-open connection left behind by a crash does not linger.
type Registry = Mutex<BTreeMap<BrokerId, (u64, oneshot::Sender<()>)>>;

/// Accepts peer connections until the task is aborted.
async fn listen(shared: Arc<Shared>, listener: TcpListener, deliver: mpsc::Sender<PeerDelivery>) {
    let permits = Arc::new(Semaphore::new(PEER_CONNECTIONS_MAX));
    let registry: Arc<Registry> = Arc::new(Mutex::new(BTreeMap::new()));
    // Dropped with this task (at shutdown), which aborts every connection.
    let mut connections = JoinSet::new();
    let mut next_connection: u64 = 0;
    loop {
        while connections.try_join_next().is_some() {}
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!("peer listener: accept failed: {error}");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        next_connection += 1;
        let connection = next_connection;
        let shared = Arc::clone(&shared);
        let deliver = deliver.clone();
        let registry = Arc::clone(&registry);
        connections.spawn(async move {
            incoming(&shared, stream, address, connection, deliver, &registry).await;
            drop(permit);
        });
    }
}

/// Serves one incoming connection: handshake, then frames until it closes, breaks a
/// rule, or is replaced by a newer connection from the same peer.
async fn incoming(
    shared: &Shared,
    stream: TcpStream,
    address: SocketAddr,
    connection: u64,
    deliver: mpsc::Sender<PeerDelivery>,
    registry: &Registry,
) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%address, "cannot set TCP_NODELAY: {error}");
    }
    let mut stream: BoxedStream = match &shared.config.tls {
        None => Box::new(stream),
        Some(tls) => match tls.accept(stream, address).await {
            Some(stream) => Box::new(stream),
            None => return,
        },
    };
    let Some(from) = answer_handshake(shared, &mut stream, address).await else {
        return;
    };
    let (replaced_tx, mut replaced) = oneshot::channel();
    {
        let mut registry = registry.lock().expect("never poisoned: no panics under it");
        // Dropping the previous connection's sender tells it to close.
        registry.insert(from, (connection, replaced_tx));
    }
    shared
        .stats
        .connections_accepted
        .fetch_add(1, Ordering::Relaxed);
    debug!(%address, from, "peer connection accepted");
    let mut reader = BufReader::new(stream);
    let end = tokio::select! {
        end = read_frames(shared, &mut reader, from, &deliver) => end,
        _ = &mut replaced => Ok("replaced by a newer connection from the same broker".to_string()),
    };
    match end {
        Ok(why) => debug!(%address, from, "peer connection closed: {why}"),
        Err(error) => {
            shared.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            warn!(%address, from, "closing peer connection: {error:#}");
        }
    }
    let mut registry = registry.lock().expect("never poisoned: no panics under it");
    if registry.get(&from).is_some_and(|(id, _)| *id == connection) {
        registry.remove(&from);
    }
}

/// The listener's side of the handshake: reads the dialler's, answers with its own,
/// and returns the dialler's id if both passed; otherwise logs why and returns `None`.
async fn answer_handshake(
    shared: &Shared,
    stream: &mut BoxedStream,
    address: SocketAddr,
) -> Option<BrokerId> {
    let theirs = match read_handshake(stream).await {
        Ok(theirs) => theirs,
        Err(error) => {
            refuse(shared, address, error);
            return None;
        }
    };
    let ours = Handshake {
        version: PEER_PROTOCOL_VERSION,
        from: shared.config.node_id,
        to: theirs.from,
        identity: shared.identity,
    };
    // Sent even to a peer about to be refused, so that it can log why.
    let answered = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&ours.encode())).await;
    if let Err(error) = theirs.check(shared, None) {
        refuse(shared, address, error);
        return None;
    }
    match answered {
        Ok(Ok(())) => Some(theirs.from),
        Ok(Err(error)) => {
            debug!(%address, "peer connection lost during the handshake: {error}");
            None
        }
        Err(_) => {
            debug!(%address, "peer did not read the handshake");
            None
        }
    }
}

/// Counts and logs an incoming connection refused at the handshake.
fn refuse(shared: &Shared, address: SocketAddr, error: anyhow::Error) {
    shared
        .stats
        .handshakes_refused
        .fetch_add(1, Ordering::Relaxed);
    warn!(%address, "refusing peer connection: {error:#}");
}

/// Reads frames and hands their bundles to the node thread. `Ok(why)` when the
/// connection ends normally (closed, the node stopped); `Err` for a frame that breaks
/// the rules.
async fn read_frames(
    shared: &Shared,
    reader: &mut BufReader<BoxedStream>,
    from: BrokerId,
    deliver: &mpsc::Sender<PeerDelivery>,
) -> anyhow::Result<String> {
    let mut frame = Vec::new();
    loop {
        let mut header = [0; 4];
        match reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok("closed by the peer".to_string());
            }
            // A failing socket is the network's doing, not a rule broken by the peer.
            Err(error) => return Ok(format!("read failed: {error}")),
        }
        let length = u32::from_be_bytes(header);
        if length > PEER_FRAME_BYTES_MAX {
            bail!("frame of {length} bytes, over the {PEER_FRAME_BYTES_MAX}-byte limit");
        }
        frame.clear();
        // `take` + `read_to_end` grows the buffer with the bytes that arrive, not with
        // the length the frame claims.
        let read = (&mut *reader)
            .take(u64::from(length))
            .read_to_end(&mut frame)
            .await
            .context("reading a frame")?;
        if read < frame_len(length) {
            bail!("connection closed in the middle of a {length}-byte frame ({read} bytes read)");
        }
        let message = PeerMessage::decode(&frame).context("undecodable bundle")?;
        shared
            .stats
            .bundles_received
            .fetch_add(1, Ordering::Relaxed);
        if deliver.send(PeerDelivery { from, message }).await.is_err() {
            return Ok("the node stopped".to_string());
        }
        // Do not keep a large frame's buffer for the connection's life.
        if frame.capacity() > WRITE_COALESCE_BYTES {
            frame = Vec::new();
        }
    }
}

fn frame_len(length: u32) -> usize {
    usize::try_from(length).expect("u32 fits in usize")
}

// ---------------------------------------------------------------------------------------
// Outgoing: one link per peer.

/// Why a connected link stopped.
enum Down {
    /// The node's side of the queue is gone: the broker is stopping.
    Stopped,
    /// The connection failed or closed.
    Lost(anyhow::Error),
}

/// The link to `peer`: dials when the node first has a bundle for it, sends what the
/// node queues, and re-dials with backoff whenever the connection fails.
async fn link(
    shared: Arc<Shared>,
    peer: BrokerId,
    address: String,
    mut queue: mpsc::Receiver<PeerMessage>,
) {
    let stats = Arc::clone(&shared.links[&peer]);
    // Lazily: nothing is dialled before there is something to say.
    let Some(first) = queue.recv().await else {
        return;
    };
    let mut pending = Some(first);
    let mut backoff = REDIAL_BACKOFF_MIN;
    let mut last_failure: Option<String> = None;
    loop {
        match dial(&shared, peer, &address).await {
            Ok(stream) => {
                stats.connects.fetch_add(1, Ordering::Relaxed);
                if last_failure.take().is_some() {
                    info!(peer, %address, "connected to broker {peer} again");
                } else {
                    debug!(peer, %address, "connected to broker {peer}");
                }
                let connected_at = std::time::Instant::now();
                match pump(stream, &mut queue, pending.take(), &stats).await {
                    Down::Stopped => return,
                    Down::Lost(error) => {
                        warn!(peer, %address, "connection to broker {peer} lost: {error:#}");
                        last_failure = Some(format!("{error:#}"));
                    }
                }
                // A connection that lived long enough shows the peer is healthy;
                // one that failed at once keeps the wait growing.
                if connected_at.elapsed() >= REDIAL_BACKOFF_MAX {
                    backoff = REDIAL_BACKOFF_MIN;
                }
            }
            Err(error) => {
                let text = format!("{error:#}");
                // Say it once at warn, then quietly while it stays the same.
                if last_failure.as_deref() != Some(text.as_str()) {
                    warn!(peer, %address, "cannot reach broker {peer}: {text}");
                } else {
                    debug!(peer, %address, "cannot reach broker {peer}: {text}");
                }
                last_failure = Some(text);
            }
        }
        if pending.take().is_some() {
            stats.bundles_dropped.fetch_add(1, Ordering::Relaxed);
        }
        // Wait, dropping what the node queues meanwhile.
        let wake = tokio::time::sleep(backoff);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => break,
                queued = queue.recv() => match queued {
                    Some(_) => {
                        stats.bundles_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(REDIAL_BACKOFF_MAX);
    }
}

/// Connects to `peer` and exchanges handshakes.
async fn dial(shared: &Shared, peer: BrokerId, address: &str) -> anyhow::Result<BoxedStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| anyhow!("connect timed out after {} ms", CONNECT_TIMEOUT.as_millis()))?
        .context("connect")?;
    if let Err(error) = stream.set_nodelay(true) {
        debug!(peer, "cannot set TCP_NODELAY: {error}");
    }
    let mut stream: BoxedStream = match &shared.config.tls {
        None => Box::new(stream),
        Some(tls) => {
            let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
            let handshake = tls.connect(host, stream);
            let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                .await
                .map_err(|_| anyhow!("TLS handshake timed out"))?
                .context("TLS handshake")?;
            Box::new(stream)
        }
    };
    let ours = Handshake {
        version: PEER_PROTOCOL_VERSION,
        from: shared.config.node_id,
        to: peer,
        identity: shared.identity,
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&ours.encode()))
        .await
        .map_err(|_| anyhow!("handshake write timed out"))?
        .context("sending the handshake")?;
    let theirs = read_handshake(&mut stream)
        .await
        .context("the peer closed or answered no handshake (did it refuse us? see its log)")?;
    theirs.check(shared, Some(peer))?;
    Ok(stream)
}

/// Sends queued bundles on a connected stream until the node stops or the connection
/// fails. The peer never writes after its handshake, so anything readable (data or
/// end of stream) means the connection is over.
async fn pump(
    stream: BoxedStream,
    queue: &mut mpsc::Receiver<PeerMessage>,
    first: Option<PeerMessage>,
    stats: &LinkStats,
) -> Down {
    let (mut read_half, mut write_half) = tokio::io::split(stream);
    let mut buffer = Vec::new();
    let mut frames = 0u64;
    if let Some(first) = first {
        frames += u64::from(push_frame(&mut buffer, &first, stats));
    }
    loop {
        // Gather what is queued already into one write.
        while buffer.len() < WRITE_COALESCE_BYTES {
            match queue.try_recv() {
                Ok(message) => frames += u64::from(push_frame(&mut buffer, &message, stats)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Down::Stopped,
            }
        }
        if !buffer.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, write_half.write_all(&buffer)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Down::Lost(anyhow!(error).context("write")),
                Err(_) => {
                    return Down::Lost(anyhow!(
                        "the peer read nothing for {} ms",
                        WRITE_TIMEOUT.as_millis()
                    ));
                }
            }
            stats.bundles_sent.fetch_add(frames, Ordering::Relaxed);
            frames = 0;
            buffer.clear();
            if buffer.capacity() > 4 * WRITE_COALESCE_BYTES {
                buffer = Vec::new();
            }
            continue;
        }
        let mut probe = [0u8; 1];
        tokio::select! {
            queued = queue.recv() => match queued {
                Some(message) => frames += u64::from(push_frame(&mut buffer, &message, stats)),
                None => return Down::Stopped,
            },
            read = read_half.read(&mut probe) => return Down::Lost(match read {
                Ok(0) => anyhow!("closed by the peer"),
                Ok(_) => anyhow!("the peer sent data after its handshake"),
                Err(error) => anyhow!(error).context("read"),
            }),
        }
    }
}

/// Appends `message` to `buffer` as one frame. A bundle too big for a frame is dropped
/// (counted, logged): `false`.
fn push_frame(buffer: &mut Vec<u8>, message: &PeerMessage, stats: &LinkStats) -> bool {
    let start = buffer.len();
    buffer.extend_from_slice(&[0; 4]);
    message.encode(buffer);
    let length = buffer.len() - start - 4;
    match u32::try_from(length) {
        Ok(length) if length <= PEER_FRAME_BYTES_MAX => {
            buffer[start..start + 4].copy_from_slice(&length.to_be_bytes());
            true
        }
        _ => {
            buffer.truncate(start);
            stats.bundles_dropped.fetch_add(1, Ordering::Relaxed);
            warn!("a bundle of {length} bytes does not fit in a peer frame: dropped");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use odradek_replication::TopicPartition;
    use odradek_replication::peer::{
        BrokerInfo, ClientEndpoint, Forward, GroupId, LeaderInfo, RaftMessage,
    };
    use odradek_replication::raft::{Append, Entry, Message, VoteRequest};
    use tokio::task::JoinHandle;

    use super::*;
    use crate::driver::PEER_BUNDLES_QUEUED_MAX;

    /// How long any one thing may take before a test fails.
    const DEADLINE: Duration = Duration::from_secs(15);

    async fn bind_local() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    fn voters(entries: &[(BrokerId, SocketAddr)]) -> BTreeMap<BrokerId, String> {
        entries
            .iter()
            .map(|&(id, address)| (id, address.to_string()))
            .collect()
    }

    /// One broker's transport, with the node thread's queue end.
    struct Broker {
        transport: Transport,
        outbox: PeerOutbox,
        inbox: mpsc::Receiver<PeerDelivery>,
    }

    impl Broker {
        fn start(
            node_id: BrokerId,
            voters: &BTreeMap<BrokerId, String>,
            listener: TcpListener,
        ) -> Broker {
            let (deliver, inbox) = mpsc::channel(PEER_BUNDLES_QUEUED_MAX);
            let config = PeerConfig {
                node_id,
                voters: voters.clone(),
                tls: None,
            };
            let (transport, outbox) = Transport::start(
                &tokio::runtime::Handle::current(),
                config,
                listener,
                deliver,
            )
            .unwrap();
            Broker {
                transport,
                outbox,
                inbox,
            }
        }

        fn link(&self, peer: BrokerId) -> &LinkStats {
            self.transport.link_stats(peer).unwrap()
        }
    }

    fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A bundle with a bit of everything, told apart by `n`.
    fn bundle(n: u64) -> PeerMessage {
        PeerMessage {
            broker: Some(BrokerInfo {
                id: 1,
                endpoints: vec![ClientEndpoint {
                    listener: "PLAINTEXT".to_string(),
                    host: "broker-1".to_string(),
                    port: 9092,
                }],
            }),
            raft: vec![
                RaftMessage {
                    group: GroupId::Partition(TopicPartition::new("orders", 3)),
                    message: Message::Append(Append {
                        leader_epoch: 2,
                        prev_end_offset: 10,
                        prev_epoch: 1,
                        entries: vec![Entry {
                            base_offset: 10,
                            last_offset: 14,
                            leader_epoch: 2,
                            data: Bytes::from(vec![7; 300]),
                        }],
                        high_watermark: 10,
                        log_start_offset: 0,
                        follower_losses: 0,
                    }),
                },
                RaftMessage {
                    group: GroupId::Metadata,
                    message: Message::Vote(VoteRequest {
                        leader_epoch: 5,
                        last_epoch: 4,
                        end_offset: 99,
                        pre_vote: true,
                    }),
                },
            ],
            leaders: vec![LeaderInfo {
                partition: TopicPartition::new("orders", 3),
                leader_epoch: 2,
                in_sync: vec![1, 2],
                high_watermark: 10,
            }],
            forwards: vec![Forward::Propose {
                request: n,
                record: format!("record {n}"),
            }],
        }
    }

    fn number(message: &PeerMessage) -> u64 {
        match message.forwards.as_slice() {
            [Forward::Propose { request, .. }] => *request,
            other => panic!("not a test bundle: {other:?}"),
        }
    }

    /// Sends bundles from `sender` to `to` every few milliseconds until one reaches
    /// `receiver`: the link is up once this returns. Returns what arrived.
    async fn until_delivered(
        sender: &mut Broker,
        to: BrokerId,
        receiver: &mut Broker,
    ) -> PeerDelivery {
        let deadline = Instant::now() + DEADLINE;
        for n in 0.. {
            sender.outbox.send(to, bundle(n));
            if let Ok(delivered) =
                tokio::time::timeout(Duration::from_millis(20), receiver.inbox.recv()).await
            {
                return delivered.expect("the transport is running");
            }
            assert!(Instant::now() < deadline, "nothing reached broker {to}");
        }
        unreachable!()
    }

    /// Receives until a bundle numbered `n` arrives; returns everything received.
    async fn receive_through(receiver: &mut Broker, n: u64) -> Vec<PeerDelivery> {
        let mut received = Vec::new();
        loop {
            let delivered = tokio::time::timeout(DEADLINE, receiver.inbox.recv())
                .await
                .unwrap_or_else(|_| panic!("bundle {n} did not arrive"))
                .unwrap();
            let last = number(&delivered.message) == n;
            received.push(delivered);
            if last {
                return received;
            }
        }
    }

    /// Polls `condition` until it holds.
    async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !condition() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn pair() -> (Broker, Broker, BTreeMap<BrokerId, String>) {
        let (one, two) = (bind_local().await, bind_local().await);
        let voters = voters(&[
            (1, one.local_addr().unwrap()),
            (2, two.local_addr().unwrap()),
        ]);
        (
            Broker::start(1, &voters, one),
            Broker::start(2, &voters, two),
            voters,
        )
    }

    #[test]
    fn the_cluster_identity_is_fnv1a_of_the_sorted_voter_list() {
        let config = |voters: &[(BrokerId, &str)]| PeerConfig {
            node_id: 1,
            voters: voters
                .iter()
                .map(|&(id, address)| (id, address.to_string()))
                .collect(),
            tls: None,
        };
        let sorted = config(&[(1, "h1:9093"), (2, "h2:9093")]);
        assert_eq!(sorted.cluster_identity(), Fnv64::of(b"1@h1:9093,2@h2:9093"));
        let listed_otherwise = config(&[(2, "h2:9093"), (1, "h1:9093")]);
        assert_eq!(
            sorted.cluster_identity(),
            listed_otherwise.cluster_identity()
        );
        let other_port = config(&[(1, "h1:9093"), (2, "h2:9094")]);
        assert_ne!(sorted.cluster_identity(), other_port.cluster_identity());
    }

    #[test]
    fn handshakes_round_trip_and_need_the_magic() {
        let handshake = Handshake {
            version: PEER_PROTOCOL_VERSION,
            from: 3,
            to: -1,
            identity: 0x0123_4567_89ab_cdef,
        };
        let bytes = handshake.encode();
        assert_eq!(&bytes[..6], b"ODRK\x00\x01");
        assert_eq!(Handshake::decode(&bytes), Some(handshake));
        let mut kafka = bytes;
        kafka[..4].copy_from_slice(&[0, 0, 0, 20]);
        assert_eq!(Handshake::decode(&kafka), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bundles_flow_both_ways_in_order_and_decode_equal() {
        let (mut one, mut two, _) = pair().await;
        until_delivered(&mut one, 2, &mut two).await;
        until_delivered(&mut two, 1, &mut one).await;

        for n in 1000..1100 {
            one.outbox.send(2, bundle(n));
        }
        let received = receive_through(&mut two, 1099).await;
        let tail: Vec<&PeerDelivery> = received
            .iter()
            .filter(|delivered| number(&delivered.message) >= 1000)
            .collect();
        assert_eq!(tail.len(), 100, "a connected link drops nothing");
        for (delivered, n) in tail.iter().zip(1000..) {
            assert_eq!(delivered.from, 1);
            assert_eq!(delivered.message, bundle(n), "in order and equal");
        }

        two.outbox.send(1, bundle(5000));
        let received = receive_through(&mut one, 5000).await;
        let last = received.last().unwrap();
        assert_eq!(last.from, 2);
        assert_eq!(last.message, bundle(5000));

        assert_eq!(count(&one.link(2).connects), 1);
        assert_eq!(count(&two.link(1).connects), 1);
        assert!(count(&one.transport.stats().bundles_received) >= 1);
        one.transport.shutdown().await;
        two.transport.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_that_starts_late_is_reached_once_it_is_up() {
        let one = bind_local().await;
        // Reserve an address for broker 2, then leave it dark.
        let reserved = bind_local().await;
        let two_address = reserved.local_addr().unwrap();
        drop(reserved);
        let voters = voters(&[(1, one.local_addr().unwrap()), (2, two_address)]);
        let mut one = Broker::start(1, &voters, one);

        // Sends to a dead peer never block the sender; they are dropped and counted.
        let started = Instant::now();
        for n in 0..10_000 {
            one.outbox.send(2, bundle(n));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        eventually("drops are counted", || {
            count(&one.link(2).bundles_dropped) > 0
        })
        .await;
        assert_eq!(count(&one.link(2).connects), 0);

        let mut two = Broker::start(2, &voters, TcpListener::bind(two_address).await.unwrap());
        let delivered = until_delivered(&mut one, 2, &mut two).await;
        assert_eq!(delivered.from, 1);
        assert_eq!(count(&one.link(2).connects), 1);
    }

    /// A TCP proxy whose connections a test can cut.
    struct Proxy {
        address: SocketAddr,
        pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
        accept: JoinHandle<()>,
    }

    impl Proxy {
        async fn start(target: SocketAddr) -> Proxy {
            let listener = bind_local().await;
            let address = listener.local_addr().unwrap();
            let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
            let accept = tokio::spawn({
                let pipes = Arc::clone(&pipes);
                async move {
                    loop {
                        let Ok((mut inbound, _)) = listener.accept().await else {
                            continue;
                        };
                        let pipe = tokio::spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                        pipes.lock().unwrap().push(pipe);
                    }
                }
            });
            Proxy {
                address,
                pipes,
                accept,
            }
        }

        /// Cuts every connection through the proxy (both sockets close).
        fn cut(&self) {
            for pipe in self.pipes.lock().unwrap().drain(..) {
                pipe.abort();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_cut_mid_stream_is_dialled_again() {
        let (one, two) = (bind_local().await, bind_local().await);
        let proxy = Proxy::start(two.local_addr().unwrap()).await;
        // Broker 1 reaches broker 2 through the proxy.
        let voters = voters(&[(1, one.local_addr().unwrap()), (2, proxy.address)]);
        let mut one = Broker::start(1, &voters, one);
        let mut two = Broker::start(2, &voters, two);

        until_delivered(&mut one, 2, &mut two).await;
        assert_eq!(count(&one.link(2).connects), 1);
        // Mid-stream: bundles in flight while the connection is cut.
        for n in 2000..2050 {
            one.outbox.send(2, bundle(n));
        }
        proxy.cut();
        eventually("the link notices and dials again", || {
            count(&one.link(2).connects) >= 2
        })
        .await;
        one.outbox.send(2, bundle(3000));
        let received = receive_through(&mut two, 3000).await;
        assert!(received.iter().all(|delivered| delivered.from == 1));
        assert!(count(&two.transport.stats().connections_accepted) >= 2);
        proxy.accept.abort();
    }

    /// Opens a raw connection to `address` and sends a valid handshake as `from`.
    async fn raw_peer(
        address: SocketAddr,
        from: BrokerId,
        to: BrokerId,
        identity: u64,
    ) -> TcpStream {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let handshake = Handshake {
            version: PEER_PROTOCOL_VERSION,
            from,
            to,
            identity,
        };
        stream.write_all(&handshake.encode()).await.unwrap();
        stream
    }

    /// Reads until the other side closes; returns what was read.
    async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
        let mut read = Vec::new();
        tokio::time::timeout(DEADLINE, stream.read_to_end(&mut read))
            .await
            .expect("the broker closes the connection")
            .ok();
        read
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_frame_closes_only_its_own_connection() {
        let (one, two) = (bind_local().await, bind_local().await);
        let two_address = two.local_addr().unwrap();
        // Voter 3 exists only in the list: the raw connections below speak as it.
        let reserved = bind_local().await;
        let voters = voters(&[
            (1, one.local_addr().unwrap()),
            (2, two_address),
            (3, reserved.local_addr().unwrap()),
        ]);
        let identity = PeerConfig {
            node_id: 3,
            voters: voters.clone(),
            tls: None,
        }
        .cluster_identity();
        let mut one = Broker::start(1, &voters, one);
        let mut two = Broker::start(2, &voters, two);
        until_delivered(&mut one, 2, &mut two).await;

        // An oversized frame: four gigabytes claimed.
        let mut raw = raw_peer(two_address, 3, 2, identity).await;
        raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let read = read_until_closed(&mut raw).await;
        assert_eq!(
            read.len(),
            HANDSHAKE_BYTES,
            "broker 2's handshake, then closed"
        );
        assert_eq!(count(&two.transport.stats().bad_frames), 1);

        // A frame of the right size holding garbage.
        let mut raw = raw_peer(two_address, 3, 2, identity).await;
        raw.write_all(&[0, 0, 0, 5, 1, 0xFF, 0xFF, 0xFF, 0xFF])
            .await
            .unwrap();
        read_until_closed(&mut raw).await;
        assert_eq!(count(&two.transport.stats().bad_frames), 2);

        // No handshake at all: a Kafka ApiVersions request on the peer port.
        let mut raw = TcpStream::connect(two_address).await.unwrap();
        raw.write_all(&[
            0, 0, 0, 22, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ])
        .await
        .unwrap();
        assert!(read_until_closed(&mut raw).await.is_empty());
        assert_eq!(count(&two.transport.stats().handshakes_refused), 1);

        // Broker 1's connection was not disturbed.
        one.outbox.send(2, bundle(4000));
        receive_through(&mut two, 4000).await;
        assert_eq!(count(&one.link(2).connects), 1);
        drop(reserved);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn brokers_with_different_voter_sets_refuse_each_other() {
        let (mut one, mut two, voters) = pair().await;
        let two_address: SocketAddr = voters[&2].parse().unwrap();
        let three = bind_local().await;
        // Broker 3 believes in a cluster of three; brokers 1 and 2 in one of two.
        let mut other_voters = voters.clone();
        other_voters.insert(3, three.local_addr().unwrap().to_string());
        let mut three = Broker::start(3, &other_voters, three);

        let deadline = Instant::now() + DEADLINE;
        let mut n = 0;
        while count(&two.transport.stats().handshakes_refused) == 0 {
            assert!(Instant::now() < deadline, "broker 2 never refused broker 3");
            three.outbox.send(2, bundle(n));
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(count(&three.link(2).connects), 0, "broker 3 refuses too");
        assert_eq!(count(&two.transport.stats().connections_accepted), 0);
        assert!(
            two.inbox.try_recv().is_err(),
            "nothing from broker 3 delivered"
        );

        // A raw handshake with a wrong identity gets broker 2's own back, then a close.
        let mut raw = raw_peer(two_address, 1, 2, 0xBAD).await;
        let read = read_until_closed(&mut raw).await;
        let theirs = Handshake::decode(&read[..].try_into().unwrap()).unwrap();
        assert_eq!(theirs.from, 2);
        assert_ne!(theirs.identity, 0xBAD);

        // Brokers 1 and 2, which agree, still talk.
        until_delivered(&mut one, 2, &mut two).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bundles_for_unknown_brokers_are_dropped() {
        let (mut one, _two, _) = pair().await;
        one.outbox.send(9, bundle(0));
        assert_eq!(one.outbox.dropped_unknown, 1);
    }
}
