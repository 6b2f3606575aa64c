//! The TCP side: accepting connections and serving each with one task.
//!
//! Per connection, a reader and a writer run side by side in the same task:
//!
//! ```text
//!  socket ─► reader: frame ─► parse ─┬─ ApiVersions: encoded reply ─────────┐
//!                                    └─ node request ─► requests queue       │
//!                                         └─ oneshot receiver ───────────────┤ (FIFO, request order)
//!  socket ◄─ writer: await the oldest, encode, write ◄───────────────────────┘
//! ```
//!
//! Requests are pipelined: the reader keeps reading while earlier requests wait, up to
//! [`REQUESTS_IN_FLIGHT_MAX`] requests and [`REQUEST_BYTES_IN_FLIGHT_MAX`] bytes per
//! connection, and the writer answers strictly in request order, as Kafka clients
//! require. A Produce with `acks=0` gets no entry in the queue,
//! so it never holds back a later response. Anything a client sends that the front end
//! will not serve closes that connection only, with a log line saying why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::driver::ClientRequest;
use crate::security::Session;
use crate::security::sasl::{self, Authenticator, Gate, Next, SaslServer};
use crate::security::tls::ServerTls;
use crate::wire::{self, Inbound, Preamble};
use odradek_replication::Request;

/// Requests one connection may have waiting for responses. Kafka clients use 5 or
/// fewer when idempotent; librdkafka's default is far higher, so it simply waits.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 64;

/// Bytes of requests one connection may have read and not yet answered. Apache Kafka
/// reads one request per connection at a time; pipelining is allowed here, but not
/// 64 frames of `socket.request.max.bytes` each. A frame bigger than this (up to
/// `socket.request.max.bytes`) is read once it is the only one in flight.
pub const REQUEST_BYTES_IN_FLIGHT_MAX: usize = 128 * 1024 * 1024;

const _: () = assert!(
    REQUEST_BYTES_IN_FLIGHT_MAX <= u32::MAX as usize,
    "acquired as u32"
);

/// Bytes read from a socket at once while a frame is incomplete. Buffers grow with the
/// data that actually arrives, never with the size a frame claims.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// After a failed accept (out of file descriptors, ...), wait this long before the next.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Limits every connection shares.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `socket.request.max.bytes`.
    pub request_bytes_max: i32,
    /// `connections.max.idle.ms`: a connection with nothing in flight that sends nothing
    /// for this long is closed; so is one whose client stops reading responses.
    pub idle: Duration,
    /// `max.connections`: connections beyond it wait in the accept backlog.
    pub connections_max: usize,
}

/// Accepts connections on `listener`, the listener named `door.name` in `listeners`,
/// until the task is dropped. With TLS (an SSL or SASL_SSL listener) each connection's
/// task first runs the TLS handshake, bounded by its timeout; a connection whose
/// handshake fails is closed and noticed by no other. With SASL (SASL_PLAINTEXT or
/// SASL_SSL), each connection must authenticate before anything but ApiVersions is
/// served.
pub async fn serve(
    listener: TcpListener,
    door: Door,
    requests: mpsc::Sender<ClientRequest>,
    limits: Limits,
) {
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    loop {
        let permit = Arc::clone(&connections)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!("accept failed: {error}");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%peer, "cannot set TCP_NODELAY: {error}");
        }
        let requests = requests.clone();
        let limits = Arc::clone(&limits);
        let name = Arc::clone(&door.name);
        let tls = door.tls.clone();
        let sasl = door.sasl.clone().map(Authenticator::new);
        tokio::spawn(async move {
            match tls {
                None => {
                    let session = Session::anonymous();
                    connection(stream, peer, name, session, sasl, requests, &limits).await;
                }
                Some(tls) => {
                    if let Some((stream, session)) = tls.accept(stream, peer).await {
                        connection(stream, peer, name, session, sasl, requests, &limits).await;
                    }
                }
            }
            drop(permit);
        });
    }
}

/// How a listener's connections are let in: its name, its TLS and its SASL, each when
/// its security protocol asks for it.
#[derive(Clone)]
pub struct Door {
    /// The listener's name in `listeners`.
    pub name: Arc<str>,
    /// TLS, for SSL and SASL_SSL listeners.
    pub tls: Option<Arc<ServerTls>>,
    /// SASL, for SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<SaslServer>,
}

/// What one connection may have in flight: requests and their bytes.
#[derive(Clone)]
struct Budget {
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

/// One request's share of its connection's [`Budget`], given back when it is answered.
struct Share {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            requests: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
            bytes: Arc::new(Semaphore::new(REQUEST_BYTES_IN_FLIGHT_MAX)),
        }
    }

    /// Waits until a request of `size` bytes fits.
    async fn reserve(&self, size: usize) -> Share {
        let request = Arc::clone(&self.requests)
            .acquire_owned()
            .await
            .expect("never closed");
        let bytes = u32::try_from(size.min(REQUEST_BYTES_IN_FLIGHT_MAX)).expect("bounded above");
        let bytes = Arc::clone(&self.bytes)
            .acquire_many_owned(bytes)
            .await
            .expect("never closed");
        Share {
            _request: request,
            _bytes: bytes,
        }
    }

    /// Requests read and not yet answered, besides `reading` (one being read, or none).
    fn waiting(&self, reading: bool) -> usize {
        REQUESTS_IN_FLIGHT_MAX - self.requests.available_permits() - usize::from(reading)
    }
}

/// A response the writer owes, in request order.
enum Owed {
    /// Already encoded.
    Ready(Bytes, Share),
    /// The node will answer.
    Node {
        preamble: Preamble,
        response: oneshot::Receiver<ResponseKind>,
        _share: Share,
    },
}

/// Serves one connection until the client closes it, breaks a rule, or idles out.
/// `stream` is the TCP stream, or the TLS session over it; `session` says who the
/// client is so far; `sasl`, when the listener authenticates with SASL.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    listener: Arc<str>,
    session: Session,
    sasl: Option<Authenticator>,
    requests: mpsc::Sender<ClientRequest>,
    limits: &Limits,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    debug!(%peer, "connection opened");
    let (read_half, write_half) = tokio::io::split(stream);
    let (owed_tx, owed_rx) = mpsc::unbounded_channel();
    let reader = Reader {
        peer,
        listener,
        session,
        sasl,
        opened: Instant::now(),
        bare_tokens: false,
        requests,
        owed: owed_tx,
        budget: Budget::new(),
    };
    let reader = reader.read_requests(read_half, limits);
    let writer = write_responses(write_half, owed_rx, limits.idle);
    tokio::pin!(reader, writer);
    tokio::select! {
        read = &mut reader => match read {
            // The client closed its side: answer what it already asked, then close.
            Ok(()) => {
                if let Err(error) = writer.await {
                    debug!(%peer, "closing: {error:#}");
                }
            }
            Err(error) => warn!(%peer, "closing connection: {error:#}"),
        },
        written = &mut writer => if let Err(error) = written {
            debug!(%peer, "closing: {error:#}");
        },
    }
    debug!(%peer, "connection closed");
}

/// The reading side of one connection: who the client is, and where its requests and
/// owed responses go.
struct Reader {
    peer: SocketAddr,
    /// The name of the listener the connection came through.
    listener: Arc<str>,
    session: Session,
    /// The SASL state of a SASL listener's connection; `None` on other listeners.
    sasl: Option<Authenticator>,
    /// When the connection was accepted: authentication must end within
    /// [`sasl::AUTHENTICATION_TIME_MAX`] of it.
    opened: Instant,
    /// After a SaslHandshake v0, the SASL tokens come as bare size-prefixed frames
    /// (no Kafka header) until the exchange ends.
    bare_tokens: bool,
    requests: mpsc::Sender<ClientRequest>,
    owed: mpsc::UnboundedSender<Owed>,
    budget: Budget,
}

impl Reader {
    /// Reads frames until end of stream (`Ok`) or a reason to close (`Err`).
    async fn read_requests<R: AsyncRead + Unpin>(
        mut self,
        mut socket: ReadHalf<R>,
        limits: &Limits,
    ) -> anyhow::Result<()> {
        let mut buffer = BytesMut::new();
        loop {
            let next = next_frame(&mut socket, &mut buffer, &self.budget, limits);
            let next = match self.authentication_deadline() {
                None => next.await?,
                Some(deadline) => match tokio::time::timeout_at(deadline.into(), next).await {
                    Ok(next) => next?,
                    Err(_elapsed) => anyhow::bail!(
                        "SASL authentication not finished within {} s",
                        sasl::AUTHENTICATION_TIME_MAX.as_secs()
                    ),
                },
            };
            let Some((frame, share)) = next else {
                return Ok(());
            };
            if self.bare_tokens {
                if !self.answer_bare_token(frame, share)? {
                    return Ok(());
                }
                continue;
            }
            let open = match wire::parse_request(frame)? {
                Inbound::Reply(bytes) => self.owed.send(Owed::Ready(bytes, share)).is_ok(),
                Inbound::Node {
                    preamble,
                    api_key,
                    client_id,
                    body,
                } => {
                    debug!(peer = %self.peer, ?api_key, version = preamble.api_version, correlation_id = preamble.correlation_id, "request");
                    match api_key {
                        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
                            self.answer_sasl(preamble, body, share)?
                        }
                        _ => {
                            self.check_authenticated(api_key)?;
                            self.send_to_node(preamble, client_id, body, share).await?
                        }
                    }
                }
            };
            if !open {
                return Ok(()); // the writer is gone; the connection is closing
            }
        }
    }

    /// Answers a bare SASL token (after SaslHandshake v0) with a bare token; a failure
    /// closes the connection without an answer, as Kafka does for v0 clients.
    fn answer_bare_token(&mut self, token: Bytes, share: Share) -> anyhow::Result<bool> {
        use kafka_protocol::messages::SaslAuthenticateRequest;
        let sasl = self
            .sasl
            .as_mut()
            .expect("bare tokens only follow a SASL handshake");
        let request = SaslAuthenticateRequest::default().with_auth_bytes(token);
        match sasl.authenticate(&request, Instant::now()) {
            Next::Continue(response) => {
                if sasl.exchange_finished() {
                    self.bare_tokens = false;
                }
                if let Some(user) = sasl.user() {
                    self.session = Session::user(user);
                }
                let mut frame = BytesMut::with_capacity(4 + response.auth_bytes.len());
                frame.extend_from_slice(&(response.auth_bytes.len() as u32).to_be_bytes());
                frame.extend_from_slice(&response.auth_bytes);
                Ok(self.owed.send(Owed::Ready(frame.freeze(), share)).is_ok())
            }
            Next::Close(_, why) => {
                info!(peer = %self.peer, "SASL authentication failed, closing the connection: {why}");
                Ok(false)
            }
        }
    }

    /// Until a SASL connection has authenticated, when it must have.
    fn authentication_deadline(&self) -> Option<Instant> {
        let sasl = self.sasl.as_ref()?;
        (sasl.user().is_none()).then(|| self.opened + sasl::AUTHENTICATION_TIME_MAX)
    }

    /// Refuses (by closing) a request a SASL connection may not send yet, or any more.
    fn check_authenticated(&self, api_key: ApiKey) -> anyhow::Result<()> {
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        match sasl.gate(Instant::now()) {
            Gate::Open => Ok(()),
            Gate::NotAuthenticated => {
                anyhow::bail!("{api_key:?} request before SASL authentication")
            }
            Gate::Expired => anyhow::bail!(
                "{api_key:?} request after the SASL session expired (connections.max.reauth.ms)"
            ),
        }
    }

    /// Answers SaslHandshake and SaslAuthenticate on the connection itself. `Ok(false)`
    /// when the connection is to close after the answer (a failed authentication).
    fn answer_sasl(
        &mut self,
        preamble: Preamble,
        body: RequestKind,
        share: Share,
    ) -> anyhow::Result<bool> {
        let Some(sasl) = &mut self.sasl else {
            // Kafka answers ILLEGAL_SASL_STATE on a listener without SASL.
            let response = not_a_sasl_listener(&body);
            let frame = encode(&preamble, &response)?;
            return Ok(self.owed.send(Owed::Ready(frame, share)).is_ok());
        };
        let next = match &body {
            RequestKind::SaslHandshake(request) => match sasl.handshake(request) {
                Next::Continue(response) => Next::Continue(ResponseKind::SaslHandshake(response)),
                Next::Close(response, why) => {
                    Next::Close(ResponseKind::SaslHandshake(response), why)
                }
            },
            RequestKind::SaslAuthenticate(request) => {
                match sasl.authenticate(request, Instant::now()) {
                    Next::Continue(response) => {
                        Next::Continue(ResponseKind::SaslAuthenticate(response))
                    }
                    Next::Close(response, why) => {
                        Next::Close(ResponseKind::SaslAuthenticate(response), why)
                    }
                }
            }
            _ => unreachable!("only the SASL APIs are answered here"),
        };
        if let Some(user) = sasl.user() {
            self.session = Session::user(user);
        }
        if preamble.api_key == ApiKey::SaslHandshake as i16 && preamble.api_version == 0 {
            self.bare_tokens = matches!(next, Next::Continue(_));
        }
        let (response, close) = match next {
            Next::Continue(response) => (response, None),
            Next::Close(response, why) => (response, Some(why)),
        };
        let frame = encode(&preamble, &response)?;
        let open = self.owed.send(Owed::Ready(frame, share)).is_ok();
        if let Some(why) = close {
            info!(peer = %self.peer, "SASL authentication failed, closing the connection: {why}");
            return Ok(false);
        }
        Ok(open)
    }

    /// Hands one request to the node and queues its answer for the writer. `false`
    /// when the writer is gone.
    async fn send_to_node(
        &mut self,
        preamble: Preamble,
        client_id: Option<String>,
        body: RequestKind,
        share: Share,
    ) -> anyhow::Result<bool> {
        let (reply, response) = if wire::expects_response(&body) {
            let (reply, response) = oneshot::channel();
            (Some(reply), Some(response))
        } else {
            (None, None)
        };
        let request = Request {
            api_version: preamble.api_version,
            client_id,
            client_host: format!("/{}", self.peer.ip()),
            principal: self.session.principal().to_string(),
            listener: self.listener.to_string(),
            body,
        };
        if self
            .requests
            .send(ClientRequest { request, reply })
            .await
            .is_err()
        {
            anyhow::bail!("the broker is shutting down");
        }
        let Some(response) = response else {
            return Ok(true);
        };
        let owed = Owed::Node {
            preamble,
            response,
            _share: share,
        };
        Ok(self.owed.send(owed).is_ok())
    }
}

/// The answer to a SASL request on a listener that does not authenticate with SASL.
fn not_a_sasl_listener(body: &RequestKind) -> ResponseKind {
    use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
    match body {
        RequestKind::SaslHandshake(_) => ResponseKind::SaslHandshake(
            SaslHandshakeResponse::default().with_error_code(sasl::ILLEGAL_SASL_STATE),
        ),
        _ => ResponseKind::SaslAuthenticate(
            SaslAuthenticateResponse::default().with_error_code(sasl::ILLEGAL_SASL_STATE),
        ),
    }
}

/// Reads the next whole frame (without its size prefix), once the connection's budget
/// has room for it. `None` at a clean end of stream between frames.
async fn next_frame<R: AsyncRead + Unpin>(
    socket: &mut ReadHalf<R>,
    buffer: &mut BytesMut,
    budget: &Budget,
    limits: &Limits,
) -> anyhow::Result<Option<(Bytes, Share)>> {
    let mut share = None;
    loop {
        if buffer.len() >= 4 {
            let size = i32::from_be_bytes(buffer[..4].try_into().expect("four bytes"));
            let size = wire::check_frame_size(size, limits.request_bytes_max)?;
            let reserved = match share.take() {
                Some(reserved) => reserved,
                // Waits while the connection has as much in flight as it may have; the
                // socket is not read meanwhile, so TCP pushes back on the client.
                None => budget.reserve(size).await,
            };
            if buffer.len() >= 4 + size {
                buffer.advance(4);
                return Ok(Some((buffer.split_to(size).freeze(), reserved)));
            }
            share = Some(reserved);
            buffer.reserve((4 + size - buffer.len()).min(READ_CHUNK_BYTES));
        } else {
            buffer.reserve(READ_CHUNK_BYTES);
        }
        let read = match tokio::time::timeout(limits.idle, socket.read_buf(buffer)).await {
            Ok(read) => read?,
            Err(_elapsed) => {
                if budget.waiting(share.is_some()) == 0 {
                    anyhow::bail!(
                        "idle for {} ms (connections.max.idle.ms)",
                        limits.idle.as_millis()
                    );
                }
                continue; // waiting on the broker is not idleness
            }
        };
        if read == 0 {
            if buffer.is_empty() {
                return Ok(None);
            }
            anyhow::bail!(
                "connection closed in the middle of a request ({} bytes received)",
                buffer.len()
            );
        }
    }
}

/// Writes responses in request order. Responses that are already there when the
/// previous one is written go out together: small ones are gathered into one write of
/// up to [`WRITE_COALESCE_BYTES`], so a pipelining client is not answered one syscall
/// (and, with `TCP_NODELAY`, one packet) per response. The gathered bytes are flushed
/// before waiting for anything.
async fn write_responses<W: AsyncWrite + Unpin>(
    socket: WriteHalf<W>,
    mut owed: mpsc::UnboundedReceiver<Owed>,
    idle: Duration,
) -> anyhow::Result<()> {
    let mut out = Outgoing {
        socket,
        gathered: BytesMut::new(),
        idle,
    };
    loop {
        let next = match owed.try_recv() {
            Ok(next) => next,
            Err(mpsc::error::TryRecvError::Empty) => {
                out.flush().await?;
                match owed.recv().await {
                    Some(next) => next,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        let frame = match next {
            Owed::Ready(bytes, _share) => bytes,
            Owed::Node {
                preamble,
                mut response,
                _share,
            } => {
                let response = match response.try_recv() {
                    Ok(response) => response,
                    Err(oneshot::error::TryRecvError::Empty) => {
                        out.flush().await?;
                        response
                            .await
                            .map_err(|_| anyhow::anyhow!("the broker stopped before answering"))?
                    }
                    Err(oneshot::error::TryRecvError::Closed) => {
                        anyhow::bail!("the broker stopped before answering")
                    }
                };
                encode(&preamble, &response)?
            }
        };
        out.push(frame).await?;
    }
    out.flush().await?;
    out.socket.shutdown().await.ok();
    Ok(())
}

/// Responses gathered below this size are sent with one write; bigger ones are written
/// on their own, without a copy.
pub const WRITE_COALESCE_BYTES: usize = 64 * 1024;

/// The write half of a connection with its gathering buffer.
struct Outgoing<W> {
    socket: WriteHalf<W>,
    gathered: BytesMut,
    idle: Duration,
}

impl<W: AsyncWrite + Unpin> Outgoing<W> {
    async fn push(&mut self, frame: Bytes) -> anyhow::Result<()> {
        if frame.len() >= WRITE_COALESCE_BYTES {
            self.flush().await?;
            return write_within(&mut self.socket, &frame, self.idle).await;
        }
        self.gathered.extend_from_slice(&frame);
        if self.gathered.len() >= WRITE_COALESCE_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.gathered.is_empty() {
            write_within(&mut self.socket, &self.gathered, self.idle).await?;
            self.gathered.clear();
        }
        Ok(())
    }
}

/// Writes all of `bytes`, failing if the client reads nothing for `idle`.
async fn write_within<W: AsyncWrite + Unpin>(
    socket: &mut WriteHalf<W>,
    bytes: &[u8],
    idle: Duration,
) -> anyhow::Result<()> {
    match tokio::time::timeout(idle, socket.write_all(bytes)).await {
        Ok(written) => Ok(written?),
        Err(_elapsed) => anyhow::bail!(
            "client did not read its responses for {} ms",
            idle.as_millis()
        ),
    }
}

fn encode(preamble: &Preamble, response: &ResponseKind) -> anyhow::Result<Bytes> {
    let expected = preamble.api_key;
    if wire::response_api_key(response).map(|key| key as i16) != Some(expected) {
        // A node bug; the client cannot be answered with the wrong message.
        tracing::error!(
            api_key = expected,
            "node answered with a response of another API"
        );
        anyhow::bail!("mismatched response for api key {expected}");
    }
    wire::encode_response(preamble.correlation_id, preamble.api_version, response).inspect_err(
        |error| {
            tracing::error!(
                api_key = expected,
                version = preamble.api_version,
                "cannot encode response: {error:#}"
            );
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_budget_counts_requests_and_bytes() {
        let budget = Budget::new();
        assert_eq!(budget.waiting(false), 0);
        // A frame larger than the byte budget still fits, alone.
        let huge = budget.reserve(REQUEST_BYTES_IN_FLIGHT_MAX * 2).await;
        assert_eq!(budget.waiting(false), 1);
        assert_eq!(
            budget.waiting(true),
            0,
            "the frame being read is not waited on yet"
        );
        let blocked = tokio::time::timeout(Duration::from_millis(50), budget.reserve(1)).await;
        assert!(
            blocked.is_err(),
            "no bytes left while the huge frame is in flight"
        );
        drop(huge);
        let small: Vec<Share> = reserve_many(&budget, REQUESTS_IN_FLIGHT_MAX).await;
        assert_eq!(budget.waiting(false), REQUESTS_IN_FLIGHT_MAX);
        let blocked = tokio::time::timeout(Duration::from_millis(50), budget.reserve(1)).await;
        assert!(blocked.is_err(), "no request slots left");
        drop(small);
        assert_eq!(budget.waiting(false), 0);
    }

    async fn reserve_many(budget: &Budget, count: usize) -> Vec<Share> {
        let mut shares = Vec::new();
        for _ in 0..count {
            shares.push(budget.reserve(100).await);
        }
        shares
    }
}
