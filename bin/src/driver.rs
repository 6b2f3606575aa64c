//! The production driver: one event-loop thread that owns the node and its [`ProdIo`].
//!
//! ```text
//!  connection tasks ──ClientRequest──► [requests, bounded] ──┐
//!  peer connections ─PeerDelivery────► [peers, bounded] ─────┤
//!  sync threads ─────DiskCompletion──► [completions] ────────┼─► node thread: Node::handle(event)
//!  ProdIo timers (BTreeSet of deadlines) ─── Timer(id) ───────┘        │
//!                                                                      ├─► ProdIo::respond(id)
//!                                                                      │    └─► oneshot to the connection
//!                                                                      └─► ProdIo::send(to, bundle)
//!                                                                           └─► PeerOutbox (crate::peers)
//! ```
//!
//! The node is a pure state machine (docs/architecture.md, "One rule: the core never
//! touches the world"); this thread is the only one that calls it, so it needs no locks.
//! Each wake-up drains up to [`EVENTS_PER_WAKE_MAX`] queued events before it looks at
//! timers again, taking client requests and peer bundles in
//! turn so that neither starves the other. Responses leave as decoded values: the
//! connection that asked encodes them, and bundles are encoded by their peer's link
//! task, so encoding costs no time on this thread.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::ResponseKind;
use odradek_log::io::{DiskCompletion, Duration, Instant, Io, TimerId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::disk::ProdDisk;
use crate::peers::{PeerDelivery, PeerOutbox};
use crate::security::sasl::ScramCredentials;
use odradek_replication::peer::{BrokerId, PeerMessage};
use odradek_replication::{Event, Node, NodeIo, Request, RequestId};

/// Events handled per wake-up before timers are looked at again, so a flood of
/// requests cannot starve a due timer (a fetch's `max_wait_ms`, retention).
pub const EVENTS_PER_WAKE_MAX: usize = 1024;

/// Timers fired per wake-up, so a node that keeps re-arming an expired timer cannot
/// starve requests.
pub const TIMERS_PER_WAKE_MAX: usize = 1024;

/// Client requests queued for the node thread. A full queue stops connections from
/// reading more (backpressure), it never drops a request.
pub const REQUESTS_QUEUED_MAX: usize = 4096;

/// Bundles from other brokers queued for the node thread. A full queue stops the peer
/// connections from reading (TCP pushes back on the senders, whose own queues then
/// drop); it never drops a bundle that was read.
pub const PEER_BUNDLES_QUEUED_MAX: usize = 1024;

/// What the node thread runs: the node's three entry points. The real node implements
/// it; tests drive the loop with fakes.
pub trait Core {
    /// Handles one event.
    fn handle(&mut self, io: &mut ProdIo, event: Event);
    /// Makes everything durable before the process exits.
    fn shutdown(&mut self, io: &mut ProdIo);
    /// How many times the users' SCRAM credentials changed so far.
    fn scram_changes(&self) -> u64 {
        0
    }
    /// A copy of the users' SCRAM credentials.
    fn scram_credentials(&self) -> ScramCredentials {
        ScramCredentials::new()
    }
    /// Why the node stopped serving, if it did.
    fn fatal(&self) -> Option<String>;
}

impl Core for Node {
    fn handle(&mut self, io: &mut ProdIo, event: Event) {
        Node::handle(self, io, event);
    }
    fn shutdown(&mut self, io: &mut ProdIo) {
        Node::shutdown(self, io);
    }
    fn fatal(&self) -> Option<String> {
        Node::fatal(self).map(str::to_string)
    }
    fn scram_changes(&self) -> u64 {
        self.cluster().scram.changes()
    }
    fn scram_credentials(&self) -> ScramCredentials {
        self.cluster().scram.all().clone()
    }
}

/// Hands the connections the SCRAM credentials each time the applied metadata changes
/// them; the connections read the latest copy when a client logs in.
pub struct CredentialsPublisher {
    sender: watch::Sender<Arc<ScramCredentials>>,
    published: Option<u64>,
}

impl CredentialsPublisher {
    /// Publishes to `sender`'s receivers.
    pub fn new(sender: watch::Sender<Arc<ScramCredentials>>) -> CredentialsPublisher {
        CredentialsPublisher {
            sender,
            published: None,
        }
    }

    /// Publishes `core`'s credentials if they changed since the last time.
    fn publish<C: Core>(&mut self, core: &C) {
        let changes = core.scram_changes();
        if self.published == Some(changes) {
            return;
        }
        self.sender.send_replace(Arc::new(core.scram_credentials()));
        self.published = Some(changes);
    }
}

/// A request on its way to the node, with the way back to its connection (`None` for
/// a request that gets no response: Produce with `acks=0`).
pub struct ClientRequest {
    /// The request.
    pub request: Request,
    /// Where the response goes.
    pub reply: Option<oneshot::Sender<ResponseKind>>,
}

/// The node thread's side of its queues.
pub struct Inbox {
    /// Client requests from the connection tasks.
    pub requests: mpsc::Receiver<ClientRequest>,
    /// Bundles from the peer transport.
    pub peers: mpsc::Receiver<PeerDelivery>,
    /// Sync completions from the disk's sync threads.
    pub completions: mpsc::UnboundedReceiver<DiskCompletion>,
    /// The other way: the SCRAM credentials, published to the connection tasks.
    pub credentials: CredentialsPublisher,
}

/// The senders matching an [`Inbox`].
pub struct Outbox {
    /// For connection tasks.
    pub requests: mpsc::Sender<ClientRequest>,
    /// For the peer transport.
    pub peers: mpsc::Sender<PeerDelivery>,
    /// For the disk's completion callback.
    pub completions: mpsc::UnboundedSender<DiskCompletion>,
    /// The SCRAM credentials the node thread publishes, for the connection tasks.
    pub credentials: watch::Receiver<Arc<ScramCredentials>>,
}

/// A connected pair of queues.
pub fn queues() -> (Outbox, Inbox) {
    let (requests_tx, requests_rx) = mpsc::channel(REQUESTS_QUEUED_MAX);
    let (peers_tx, peers_rx) = mpsc::channel(PEER_BUNDLES_QUEUED_MAX);
    let (completions_tx, completions_rx) = mpsc::unbounded_channel();
    let (credentials_tx, credentials_rx) = watch::channel(Arc::new(ScramCredentials::new()));
    (
        Outbox {
            requests: requests_tx,
            peers: peers_tx,
            completions: completions_tx,
            credentials: credentials_rx,
        },
        Inbox {
            requests: requests_rx,
            peers: peers_rx,
            completions: completions_rx,
            credentials: CredentialsPublisher::new(credentials_tx),
        },
    )
}

/// The [`NodeIo`] of a real broker: a [`ProdDisk`], the OS clocks, OS randomness,
/// timers, and the routes back to waiting connections.
pub struct ProdIo {
    disk: ProdDisk,
    origin: std::time::Instant,
    timers: BTreeSet<(Instant, TimerId)>,
    replies: HashMap<RequestId, oneshot::Sender<ResponseKind>>,
    next_request: u64,
    entropy: Entropy,
    peers: Option<PeerOutbox>,
}

impl ProdIo {
    /// A driver over `disk`, its monotonic clock starting now.
    pub fn new(disk: ProdDisk) -> std::io::Result<ProdIo> {
        Ok(ProdIo {
            disk,
            origin: std::time::Instant::now(),
            timers: BTreeSet::new(),
            replies: HashMap::new(),
            next_request: 0,
            entropy: Entropy::open()?,
            peers: None,
        })
    }

    /// Sends bundles through `peers` from now on; without it (a single-node broker)
    /// every bundle is dropped.
    pub fn set_peers(&mut self, peers: PeerOutbox) {
        self.peers = Some(peers);
    }

    /// Gives `request` an id and remembers where its response goes.
    fn admit(&mut self, client: ClientRequest) -> Event {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        if let Some(reply) = client.reply {
            self.replies.insert(id, reply);
        }
        Event::Client {
            id,
            request: client.request,
        }
    }

    /// The earliest timer deadline, as a tokio instant.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        let &(at, _) = self.timers.first()?;
        Some(tokio::time::Instant::from_std(
            self.origin + Duration::from_nanos(at.as_nanos()),
        ))
    }

    /// Removes and returns a timer that is due, if any.
    fn pop_due_timer(&mut self) -> Option<TimerId> {
        let &(at, timer) = self.timers.first()?;
        if at > self.now() {
            return None;
        }
        self.timers.pop_first();
        Some(timer)
    }
}

impl NodeIo for ProdIo {
    fn respond(&mut self, id: RequestId, response: ResponseKind) {
        match self.replies.remove(&id) {
            // The connection may be gone; its client will retry elsewhere.
            Some(reply) => drop(reply.send(response)),
            None => tracing::error!("node answered {id:?}, which is not waiting for a response"),
        }
    }

    fn send(&mut self, to: BrokerId, message: PeerMessage) {
        match &mut self.peers {
            Some(peers) => peers.send(to, message),
            // A single-node broker has no peers.
            None => tracing::debug!(
                "no peer transport: bundle for broker {to} ({} raft messages) dropped",
                message.raft.len()
            ),
        }
    }
}

impl Io for ProdIo {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn wall_clock_ms(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn random(&mut self) -> u64 {
        self.entropy.next_u64()
    }

    fn set_timer(&mut self, at: Instant, timer: TimerId) {
        self.timers.insert((at, timer));
    }
}

odradek_log::forward_disk!(ProdIo => disk);

/// OS randomness from `/dev/urandom`, read a block at a time.
struct Entropy {
    source: File,
    block: [u8; 512],
    used: usize,
}

impl Entropy {
    fn open() -> std::io::Result<Entropy> {
        Ok(Entropy {
            source: File::open("/dev/urandom")?,
            block: [0; 512],
            used: 512,
        })
    }

    fn next_u64(&mut self) -> u64 {
        if self.used + 8 > self.block.len() {
            // /dev/urandom does not fail once open; if it does, nothing random is safe.
            self.source
                .read_exact(&mut self.block)
                .expect("reading /dev/urandom");
            self.used = 0;
        }
        let bytes: [u8; 8] = self.block[self.used..self.used + 8]
            .try_into()
            .expect("eight bytes");
        self.used += 8;
        u64::from_le_bytes(bytes)
    }
}

/// Why the event loop returned.
#[derive(Debug, PartialEq, Eq)]
pub enum LoopEnd {
    /// Asked to stop (signal), or every connection sender is gone.
    Shutdown,
    /// The node declared itself unable to go on.
    Fatal(String),
}

/// Runs the node until `stop` fires or the node turns fatal. On a clean stop it calls
/// [`Core::shutdown`] before returning; on a fatal error it does not (recovery on the
/// next start is the way out of a failed fsync).
pub fn run_event_loop<C: Core>(
    core: &mut C,
    io: &mut ProdIo,
    mut inbox: Inbox,
    mut stop: oneshot::Receiver<()>,
) -> LoopEnd {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime with only a timer builds");
    let end = runtime.block_on(async {
        loop {
            inbox.credentials.publish(core);
            if let Some(reason) = core.fatal() {
                return LoopEnd::Fatal(reason);
            }
            let deadline = io.next_deadline();
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut stop => return LoopEnd::Shutdown,
                Some(completion) = inbox.completions.recv() => {
                    core.handle(io, Event::Disk(completion));
                }
                request = inbox.requests.recv() => match request {
                    Some(request) => {
                        let event = io.admit(request);
                        core.handle(io, event);
                    }
                    None => return LoopEnd::Shutdown,
                },
                Some(PeerDelivery { from, message }) = inbox.peers.recv() => {
                    core.handle(io, Event::Peer { from, message });
                }
                () = sleep => {}
            }
            drain(core, io, &mut inbox);
            for _ in 0..TIMERS_PER_WAKE_MAX {
                let Some(timer) = io.pop_due_timer() else {
                    break;
                };
                core.handle(io, Event::Timer(timer));
            }
        }
    });
    if end == LoopEnd::Shutdown {
        core.shutdown(io);
    }
    end
}

/// Handles what is already queued, up to [`EVENTS_PER_WAKE_MAX`] events: completions
/// first (they release waiting produces), then client requests and peer bundles in
/// turn, one of each, so a flood of either cannot starve the other.
fn drain<C: Core>(core: &mut C, io: &mut ProdIo, inbox: &mut Inbox) {
    let mut handled = 0;
    let mut peer_next = false;
    while handled < EVENTS_PER_WAKE_MAX {
        let event = if let Ok(completion) = inbox.completions.try_recv() {
            Event::Disk(completion)
        } else {
            let taken = if peer_next {
                take_peer(inbox).or_else(|| take_request(io, inbox))
            } else {
                take_request(io, inbox).or_else(|| take_peer(inbox))
            };
            let Some(event) = taken else {
                return;
            };
            // The other queue goes first next time.
            peer_next = !matches!(event, Event::Peer { .. });
            event
        };
        core.handle(io, event);
        handled += 1;
        if core.fatal().is_some() {
            return;
        }
    }
}

fn take_request(io: &mut ProdIo, inbox: &mut Inbox) -> Option<Event> {
    let request = inbox.requests.try_recv().ok()?;
    Some(io.admit(request))
}

fn take_peer(inbox: &mut Inbox) -> Option<Event> {
    let PeerDelivery { from, message } = inbox.peers.try_recv().ok()?;
    Some(Event::Peer { from, message })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use kafka_protocol::messages::{
        CreateTopicsResponse, ListOffsetsResponse, MetadataResponse, ProduceRequest, RequestKind,
    };

    use super::*;
    use crate::disk::tests::Scratch;
    use odradek_log::io::{Disk, IoId};

    /// A node stand-in: answers Metadata at once, ListOffsets when a timer it sets 30 ms
    /// later fires, CreateTopics when a directory sync completes; Produce never.
    #[derive(Default)]
    struct Fake {
        by_timer: BTreeMap<TimerId, RequestId>,
        by_sync: BTreeMap<IoId, RequestId>,
        timers_fired: Vec<(TimerId, Instant)>,
        produces: usize,
        fatal: Option<String>,
        shut_down: Arc<AtomicBool>,
    }

    impl Core for Fake {
        fn handle(&mut self, io: &mut ProdIo, event: Event) {
            match event {
                Event::Client { id, request } => match request.body {
                    RequestKind::Metadata(_) => {
                        io.respond(id, ResponseKind::Metadata(MetadataResponse::default()))
                    }
                    RequestKind::ListOffsets(_) => {
                        let timer = TimerId(id.0);
                        io.set_timer(io.now() + Duration::from_millis(30), timer);
                        self.by_timer.insert(timer, id);
                    }
                    RequestKind::CreateTopics(_) => {
                        let sync = io.sync_dir("");
                        self.by_sync.insert(sync, id);
                    }
                    RequestKind::Produce(_) => self.produces += 1,
                    RequestKind::DeleteTopics(_) => self.fatal = Some("told to fail".to_string()),
                    _ => unreachable!(),
                },
                Event::Timer(timer) => {
                    self.timers_fired.push((timer, io.now()));
                    let id = self.by_timer.remove(&timer).unwrap();
                    io.respond(
                        id,
                        ResponseKind::ListOffsets(ListOffsetsResponse::default()),
                    );
                }
                Event::Disk(done) => {
                    assert_eq!(done.result, Ok(()));
                    let id = self.by_sync.remove(&done.io).unwrap();
                    io.respond(
                        id,
                        ResponseKind::CreateTopics(CreateTopicsResponse::default()),
                    );
                }
                Event::Peer { .. } => unreachable!("no peers in this test"),
            }
        }
        fn shutdown(&mut self, _io: &mut ProdIo) {
            self.shut_down.store(true, Ordering::SeqCst);
        }
        fn fatal(&self) -> Option<String> {
            self.fatal.clone()
        }
    }

    struct Running {
        outbox: Outbox,
        stop: oneshot::Sender<()>,
        thread: std::thread::JoinHandle<(LoopEnd, Fake)>,
        shut_down: Arc<AtomicBool>,
        _dir: Scratch,
    }

    fn start() -> Running {
        let dir = Scratch::new();
        let (outbox, inbox) = queues();
        let completions = outbox.completions.clone();
        let disk =
            ProdDisk::open(&dir.0, Arc::new(move |done| drop(completions.send(done)))).unwrap();
        let (stop, stop_rx) = oneshot::channel();
        let shut_down = Arc::new(AtomicBool::new(false));
        let mut fake = Fake {
            shut_down: Arc::clone(&shut_down),
            ..Fake::default()
        };
        let thread = std::thread::spawn(move || {
            let mut io = ProdIo::new(disk).unwrap();
            let end = run_event_loop(&mut fake, &mut io, inbox, stop_rx);
            (end, fake)
        });
        Running {
            outbox,
            stop,
            thread,
            shut_down,
            _dir: dir,
        }
    }

    fn ask(running: &Running, body: RequestKind) -> oneshot::Receiver<ResponseKind> {
        let (reply, response) = oneshot::channel();
        let request = Request {
            api_version: 1,
            client_id: None,
            client_host: String::new(),
            principal: odradek_replication::request::ANONYMOUS.to_string(),
            listener: String::new(),
            body,
        };
        running
            .outbox
            .requests
            .blocking_send(ClientRequest {
                request,
                reply: Some(reply),
            })
            .unwrap();
        response
    }

    #[test]
    fn responses_find_their_request_whether_answered_now_by_timer_or_after_a_sync() {
        let running = start();
        let later = ask(&running, RequestKind::ListOffsets(Default::default()));
        let synced = ask(&running, RequestKind::CreateTopics(Default::default()));
        let now = ask(&running, RequestKind::Metadata(Default::default()));
        let produce = ProduceRequest::default().with_acks(0);
        let request = Request {
            api_version: 3,
            client_id: None,
            client_host: String::new(),
            principal: odradek_replication::request::ANONYMOUS.to_string(),
            listener: String::new(),
            body: RequestKind::Produce(produce),
        };
        running
            .outbox
            .requests
            .blocking_send(ClientRequest {
                request,
                reply: None,
            })
            .unwrap();

        assert!(matches!(
            now.blocking_recv().unwrap(),
            ResponseKind::Metadata(_)
        ));
        assert!(matches!(
            synced.blocking_recv().unwrap(),
            ResponseKind::CreateTopics(_)
        ));
        assert!(matches!(
            later.blocking_recv().unwrap(),
            ResponseKind::ListOffsets(_)
        ));

        running.stop.send(()).unwrap();
        let (end, fake) = running.thread.join().unwrap();
        assert_eq!(end, LoopEnd::Shutdown);
        assert!(running.shut_down.load(Ordering::SeqCst));
        assert_eq!(fake.produces, 1);
        let &[(timer, fired_at)] = fake.timers_fired.as_slice() else {
            panic!("{:?}", fake.timers_fired)
        };
        assert_eq!(timer, TimerId(0));
        assert!(
            fired_at >= Instant::from_nanos(30_000_000),
            "fired at {fired_at}"
        );
    }

    #[test]
    fn timers_fire_in_deadline_order() {
        let running = start();
        let replies: Vec<_> = (0..5)
            .map(|_| ask(&running, RequestKind::ListOffsets(Default::default())))
            .collect();
        for reply in replies {
            reply.blocking_recv().unwrap();
        }
        running.stop.send(()).unwrap();
        let (_, fake) = running.thread.join().unwrap();
        let fired: Vec<u64> = fake.timers_fired.iter().map(|(timer, _)| timer.0).collect();
        assert_eq!(fired, vec![0, 1, 2, 3, 4]);
        assert!(
            fake.timers_fired
                .windows(2)
                .all(|pair| pair[0].1 <= pair[1].1)
        );
    }

    #[test]
    fn a_fatal_node_ends_the_loop_without_a_clean_shutdown() {
        let running = start();
        let pending = ask(&running, RequestKind::DeleteTopics(Default::default()));
        let (end, _) = running.thread.join().unwrap();
        assert_eq!(end, LoopEnd::Fatal("told to fail".to_string()));
        assert!(!running.shut_down.load(Ordering::SeqCst));
        assert!(
            pending.blocking_recv().is_err(),
            "the waiting connection learns the broker is gone"
        );
    }

    /// Records the order in which events reach it: `C` client, `P` peer, `D` disk.
    #[derive(Default)]
    struct Recorder {
        order: String,
    }

    impl Core for Recorder {
        fn handle(&mut self, _io: &mut ProdIo, event: Event) {
            self.order.push(match event {
                Event::Client { .. } => 'C',
                Event::Peer { .. } => 'P',
                Event::Disk(_) => 'D',
                Event::Timer(_) => 'T',
            });
        }
        fn shutdown(&mut self, _io: &mut ProdIo) {}
        fn fatal(&self) -> Option<String> {
            None
        }
    }

    #[test]
    fn client_requests_and_peer_bundles_take_turns() {
        let dir = Scratch::new();
        let (outbox, mut inbox) = queues();
        let disk = ProdDisk::open(&dir.0, Arc::new(|_| {})).unwrap();
        let mut io = ProdIo::new(disk).unwrap();
        for _ in 0..5 {
            let request = Request {
                api_version: 1,
                client_id: None,
                client_host: String::new(),
                principal: odradek_replication::request::ANONYMOUS.to_string(),
                listener: String::new(),
                body: RequestKind::Metadata(Default::default()),
            };
            let client = ClientRequest {
                request,
                reply: None,
            };
            outbox.requests.try_send(client).unwrap();
        }
        for _ in 0..3 {
            let delivery = PeerDelivery {
                from: 2,
                message: PeerMessage::default(),
            };
            outbox.peers.try_send(delivery).unwrap();
        }
        let mut recorder = Recorder::default();
        drain(&mut recorder, &mut io, &mut inbox);
        assert_eq!(recorder.order, "CPCPCPCC");
    }

    #[test]
    fn entropy_is_not_constant() {
        let mut entropy = Entropy::open().unwrap();
        let draws: BTreeSet<u64> = (0..200).map(|_| entropy.next_u64()).collect();
        assert_eq!(draws.len(), 200);
    }
}
