//! One TCP connection to one broker: framing, correlation ids, pipelining and API
//! version negotiation.
//!
//! ```text
//!  callers ──send()──► encode ─► [frames channel] ─► writer task ─► socket
//!     ▲                  │ register correlation id
//!     │                  ▼
//!  Pending::wait ◄── oneshot ◄── reader task ◄── socket (matched by correlation id)
//! ```
//!
//! Any number of requests may be in flight: `send` registers the correlation id and
//! queues the frame without waiting for the answer, and the reader task hands each
//! response to whoever waits for that id, stamped with the instant it arrived (so a
//! benchmark measures the broker, not how soon it got round to awaiting). When either
//! task fails, the connection is marked closed and every waiter gets the reason.
//!
//! Versions: the first request is ApiVersions v3; a broker that does not know v3
//! answers UNSUPPORTED_VERSION with a v0 body (that is what Kafka and librdkafka do),
//! and the client retries with the highest ApiVersions version the broker listed. After
//! that each API is sent at the highest version both sides support.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::error::{ClientError, ClientResult, ErrorCode};
use crate::security::tls::ClientTls;

/// The reading side of a connection: a TCP stream's, or a TLS session's over it.
type ReadStream = Box<dyn AsyncRead + Send + Unpin>;
/// The writing side of a connection.
type WriteStream = Box<dyn AsyncWrite + Send + Unpin>;

/// Largest response frame accepted. A fetch answer is bounded by the `max_bytes` the
/// client asks for; anything far beyond that is a broken stream, not data.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Frames queued for the writer task before `send` waits (back-pressure, not a limit
/// on requests in flight, which is the caller's to choose).
const QUEUED_FRAMES_MAX: usize = 256;
/// Bytes the reader asks the socket for when it has no frame size to go by.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// The ApiVersions version tried first (librdkafka and the Java client do the same).
const API_VERSIONS_FIRST: i16 = 3;

/// How to open a connection.
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
    /// Sent in every request header.
    pub client_id: String,
    /// Limit for the TCP connect plus the ApiVersions exchange.
    pub connect_timeout: Duration,
    /// Limit for waiting on any one response.
    pub request_timeout: Duration,
    /// TLS to the brokers (`security.protocol=SSL`), or plain TCP.
    pub tls: Option<ClientTls>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            client_id: "odradek-cli".to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// The highest version of `key` this client knows how to fill in, if it speaks `key`.
///
/// Usually what the codec knows; lower where a later version changes meaning in a way
/// the client does not handle: Fetch v13+ and Produce v13+ name topics by id only.
pub fn client_max_version(key: ApiKey) -> i16 {
    let codec = key.valid_versions().max;
    match key {
        ApiKey::Fetch | ApiKey::Produce => codec.min(12),
        ApiKey::ApiVersions => codec.min(API_VERSIONS_FIRST),
        _ => codec,
    }
}

/// A response frame as it came off the socket.
#[derive(Debug)]
pub struct Frame {
    /// Response header and body (without the 4-byte size prefix).
    pub bytes: Bytes,
    /// When the reader task had the whole frame.
    pub received_at: Instant,
}

/// A request sent and not yet answered. `wait` decodes the answer.
#[must_use = "a pending response does nothing unless waited for"]
pub struct Pending<R> {
    receiver: oneshot::Receiver<ClientResult<Frame>>,
    version: i16,
    correlation_id: i32,
    address: Arc<str>,
    timeout: Duration,
    response: PhantomData<fn() -> R>,
}

impl<R: Decodable + HeaderVersion> Pending<R> {
    /// Waits for the response and decodes it.
    pub async fn wait(self) -> ClientResult<R> {
        self.wait_timed().await.map(|(response, _)| response)
    }

    /// Waits for the response; also returns when it arrived.
    pub async fn wait_timed(self) -> ClientResult<(R, Instant)> {
        let address = self.address.clone();
        let frame = match tokio::time::timeout(self.timeout, self.receiver).await {
            Err(_) => {
                return Err(ClientError::Closed {
                    address: address.to_string(),
                    reason: format!("no response within {:?}", self.timeout),
                });
            }
            Ok(Err(_)) => {
                return Err(ClientError::Closed {
                    address: address.to_string(),
                    reason: "connection dropped".to_string(),
                });
            }
            Ok(Ok(frame)) => frame?,
        };
        let received_at = frame.received_at;
        let response = decode_response::<R>(
            frame.bytes,
            self.version,
            self.correlation_id,
            &self.address,
        )?;
        Ok((response, received_at))
    }
}

fn decode_response<R: Decodable + HeaderVersion>(
    mut bytes: Bytes,
    version: i16,
    correlation_id: i32,
    address: &str,
) -> ClientResult<R> {
    let protocol = |reason: String| ClientError::Protocol {
        address: address.to_string(),
        reason,
    };
    let header = ResponseHeader::decode(&mut bytes, R::header_version(version))
        .map_err(|e| protocol(format!("bad response header: {e}")))?;
    if header.correlation_id != correlation_id {
        return Err(protocol(format!(
            "response for correlation id {} delivered to {correlation_id}",
            header.correlation_id
        )));
    }
    let response = R::decode(&mut bytes, version)
        .map_err(|e| protocol(format!("bad response body (v{version}): {e}")))?;
    if bytes.has_remaining() {
        return Err(protocol(format!(
            "{} bytes left over after a v{version} response",
            bytes.remaining()
        )));
    }
    Ok(response)
}

/// What the writer task is handed.
enum Outgoing {
    /// A whole request frame.
    Frame(Bytes),
    /// Answer once everything queued before has been written to the socket.
    Flush(oneshot::Sender<()>),
}

/// Who waits for which correlation id; `closed` once either task has stopped.
#[derive(Default)]
struct Waiters {
    closed: Option<String>,
    by_correlation_id: HashMap<i32, oneshot::Sender<ClientResult<Frame>>>,
}

struct Inner {
    address: Arc<str>,
    options: ConnectionOptions,
    client_id: StrBytes,
    next_correlation_id: AtomicI32,
    waiters: Mutex<Waiters>,
    frames: mpsc::Sender<Outgoing>,
    /// The broker's version range per API key, from ApiVersions.
    broker_versions: Mutex<HashMap<i16, (i16, i16)>>,
}

impl Inner {
    /// Marks the connection closed and fails every waiter with `reason`.
    fn close(&self, reason: String) {
        let waiting = {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            if waiters.closed.is_none() {
                waiters.closed = Some(reason.clone());
            }
            std::mem::take(&mut waiters.by_correlation_id)
        };
        for (_, waiter) in waiting {
            let _ = waiter.send(Err(ClientError::Closed {
                address: self.address.to_string(),
                reason: reason.clone(),
            }));
        }
    }
}

/// A connection to one broker. Cheap to clone; clones share the socket.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.inner.address)
            .finish()
    }
}

impl Connection {
    /// Connects to `address` (`host:port`) and negotiates API versions.
    pub async fn connect(address: &str, options: &ConnectionOptions) -> ClientResult<Connection> {
        let timeout = options.connect_timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(address, options)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Closed {
                address: address.to_string(),
                reason: format!("could not connect within {timeout:?}"),
            }),
        }
    }

    async fn connect_inner(address: &str, options: &ConnectionOptions) -> ClientResult<Connection> {
        let io_error = |source| ClientError::Io {
            address: address.to_string(),
            source,
        };
        let stream = TcpStream::connect(address).await.map_err(io_error)?;
        stream.set_nodelay(true).map_err(io_error)?;
        let (read_half, write_half): (ReadStream, WriteStream) = match &options.tls {
            None => {
                let (read_half, write_half) = stream.into_split();
                (Box::new(read_half), Box::new(write_half))
            }
            Some(tls) => {
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let stream = tls.connect(host, stream).await.map_err(|error| {
                    io_error(std::io::Error::new(
                        error.kind(),
                        format!("TLS handshake failed: {error}"),
                    ))
                })?;
                let (read_half, write_half) = tokio::io::split(stream);
                (Box::new(read_half), Box::new(write_half))
            }
        };
        let (frames, frames_receiver) = mpsc::channel(QUEUED_FRAMES_MAX);
        let inner = Arc::new(Inner {
            address: Arc::from(address),
            options: options.clone(),
            client_id: StrBytes::from_string(options.client_id.clone()),
            next_correlation_id: AtomicI32::new(1),
            waiters: Mutex::new(Waiters::default()),
            frames,
            broker_versions: Mutex::new(HashMap::new()),
        });
        tokio::spawn(write_frames(
            Arc::downgrade(&inner),
            write_half,
            frames_receiver,
        ));
        tokio::spawn(read_frames(Arc::downgrade(&inner), read_half));
        let connection = Connection { inner };
        connection.negotiate_versions().await?;
        // SASL authentication belongs here: Kafka's clients send ApiVersions first,
        // then SaslHandshake and SaslAuthenticate, before any other request.
        Ok(connection)
    }

    /// `host:port` this connection goes to.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Whether the connection has failed or been closed.
    pub fn is_closed(&self) -> bool {
        self.inner
            .waiters
            .lock()
            .expect("waiters lock")
            .closed
            .is_some()
    }

    /// The version range the broker advertised for `key`, if any.
    pub fn broker_versions(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.inner
            .broker_versions
            .lock()
            .expect("versions lock")
            .get(&(key as i16))
            .copied()
    }

    /// The highest version of `key` both sides support.
    pub fn version(&self, key: ApiKey) -> ClientResult<i16> {
        let unsupported = || ClientError::UnsupportedApi {
            api: key,
            address: self.inner.address.to_string(),
        };
        let (broker_min, broker_max) = self.broker_versions(key).ok_or_else(unsupported)?;
        negotiate(key, broker_min, broker_max).ok_or_else(unsupported)
    }

    /// Sends `request` at the highest common version and waits for the answer.
    pub async fn request<R: Request>(&self, request: &R) -> ClientResult<R::Response> {
        let key = api_key::<R>()?;
        let version = self.version(key)?;
        self.send(request, version).await?.wait().await
    }

    /// Sends `request` at `version` without waiting for the answer: any number of
    /// requests may be in flight on one connection.
    pub async fn send<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> ClientResult<Pending<R::Response>> {
        let correlation_id = self.next_correlation_id();
        let frame = self.encode(request, version, correlation_id)?;
        let receiver = self.wait_for(correlation_id)?;
        if self
            .inner
            .frames
            .send(Outgoing::Frame(frame))
            .await
            .is_err()
        {
            self.inner.close("writer stopped".to_string());
        }
        Ok(Pending {
            receiver,
            version,
            correlation_id,
            address: self.inner.address.clone(),
            timeout: self.inner.options.request_timeout,
            response: PhantomData,
        })
    }

    /// Where the response to `correlation_id` will arrive, unless the connection is
    /// closed.
    fn wait_for(
        &self,
        correlation_id: i32,
    ) -> ClientResult<oneshot::Receiver<ClientResult<Frame>>> {
        let (sender, receiver) = oneshot::channel();
        let mut waiters = self.inner.waiters.lock().expect("waiters lock");
        if let Some(reason) = &waiters.closed {
            return Err(self.closed(reason));
        }
        waiters.by_correlation_id.insert(correlation_id, sender);
        Ok(receiver)
    }

    /// Sends a request the broker does not answer (a Produce with acks=0).
    pub async fn send_without_response<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> ClientResult<()> {
        let correlation_id = self.next_correlation_id();
        let frame = self.encode(request, version, correlation_id)?;
        if let Some(reason) = &self.inner.waiters.lock().expect("waiters lock").closed {
            return Err(self.closed(reason));
        }
        self.inner
            .frames
            .send(Outgoing::Frame(frame))
            .await
            .map_err(|_| self.closed("writer stopped"))
    }

    /// Sends a Produce request at `version`; with `acks=0` the broker answers nothing,
    /// so there is no response to wait for (`None`).
    pub async fn send_produce(
        &self,
        request: &ProduceRequest,
        version: i16,
    ) -> ClientResult<Option<Pending<ProduceResponse>>> {
        if request.acks == 0 {
            self.send_without_response(request, version).await?;
            Ok(None)
        } else {
            Ok(Some(self.send(request, version).await?))
        }
    }

    /// Waits until every frame queued so far has been written to the socket.
    pub async fn flush(&self) -> ClientResult<()> {
        let (done, written) = oneshot::channel();
        self.inner
            .frames
            .send(Outgoing::Flush(done))
            .await
            .map_err(|_| self.closed("writer stopped"))?;
        written.await.map_err(|_| self.closed("writer stopped"))
    }

    fn closed(&self, reason: &str) -> ClientError {
        ClientError::Closed {
            address: self.inner.address.to_string(),
            reason: reason.to_string(),
        }
    }

    fn next_correlation_id(&self) -> i32 {
        // Wraps past i32::MAX; ids only need to be unique among requests in flight.
        self.inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
            & i32::MAX
    }

    fn encode<R: Request>(
        &self,
        request: &R,
        version: i16,
        correlation_id: i32,
    ) -> ClientResult<Bytes> {
        let key = api_key::<R>()?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.inner.client_id.clone()));
        let header_version = key.request_header_version(version);
        let encode_error =
            |e: anyhow::Error| ClientError::Other(format!("cannot encode {key:?} v{version}: {e}"));
        let size = header.compute_size(header_version).map_err(encode_error)?
            + request.compute_size(version).map_err(encode_error)?;
        let mut frame = BytesMut::with_capacity(4 + size);
        frame.put_u32(u32::try_from(size).map_err(|_| {
            ClientError::Other(format!("{key:?} request of {size} bytes is too large"))
        })?);
        header
            .encode(&mut frame, header_version)
            .map_err(encode_error)?;
        request.encode(&mut frame, version).map_err(encode_error)?;
        debug_assert_eq!(frame.len(), 4 + size);
        Ok(frame.freeze())
    }

    async fn negotiate_versions(&self) -> ClientResult<()> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("odradek"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = API_VERSIONS_FIRST;
        loop {
            let response = self.api_versions(&request, version).await?;
            if response.error_code == ErrorCode::UNSUPPORTED_VERSION.0 && version > 0 {
                // The v0 body lists the broker's ApiVersions range: retry with its highest.
                let broker_max = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map_or(0, |k| k.max_version);
                version = broker_max.clamp(0, version - 1);
                continue;
            }
            if response.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("ApiVersions v{version} with {}", self.address()),
                    response.error_code,
                    None,
                ));
            }
            let mut table = self.inner.broker_versions.lock().expect("versions lock");
            table.clear();
            for api in &response.api_keys {
                table.insert(api.api_key, (api.min_version, api.max_version));
            }
            return Ok(());
        }
    }

    /// One ApiVersions exchange. An UNSUPPORTED_VERSION answer comes in a v0 body
    /// whatever version was asked, so the error code (the first field in every
    /// version) is read before choosing how to decode the rest.
    async fn api_versions(
        &self,
        request: &ApiVersionsRequest,
        version: i16,
    ) -> ClientResult<ApiVersionsResponse> {
        let correlation_id = self.next_correlation_id();
        let frame = self.encode(request, version, correlation_id)?;
        let receiver = self.wait_for(correlation_id)?;
        self.inner
            .frames
            .send(Outgoing::Frame(frame))
            .await
            .map_err(|_| self.closed("writer stopped"))?;
        let frame = receiver
            .await
            .map_err(|_| self.closed("connection dropped"))??;
        // The ApiVersions response header is always v0: just the correlation id.
        let body = frame.bytes.slice(4.min(frame.bytes.len())..);
        let error_code = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let decode_version = if error_code == Some(ErrorCode::UNSUPPORTED_VERSION.0) {
            0
        } else {
            version
        };
        decode_response::<ApiVersionsResponse>(
            frame.bytes,
            decode_version,
            correlation_id,
            &self.inner.address,
        )
    }
}

/// The highest version of `key` in both the broker's range and the client's.
pub fn negotiate(key: ApiKey, broker_min: i16, broker_max: i16) -> Option<i16> {
    let client_min = key.valid_versions().min;
    let client_max = client_max_version(key);
    let high = broker_max.min(client_max);
    let low = broker_min.max(client_min);
    (low <= high).then_some(high)
}

fn api_key<R: Request>() -> ClientResult<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|_| ClientError::Other(format!("unknown api key {}", R::KEY)))
}

async fn write_frames(
    inner: std::sync::Weak<Inner>,
    write_half: WriteStream,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write_half);
    let result: std::io::Result<()> = async {
        // Ends when every `Connection` clone is gone (the queue's sender lives in `Inner`).
        while let Some(first) = queue.recv().await {
            let mut flushed = Vec::new();
            let mut next = Some(first);
            // Coalesce whatever else is queued into as few writes as possible.
            while let Some(outgoing) = next {
                match outgoing {
                    Outgoing::Frame(frame) => out.write_all(&frame).await?,
                    Outgoing::Flush(done) => flushed.push(done),
                }
                next = queue.try_recv().ok();
            }
            out.flush().await?;
            for done in flushed {
                let _ = done.send(());
            }
        }
        out.shutdown().await
    }
    .await;
    let reason = match result {
        Ok(()) => "connection closed by the client".to_string(),
        Err(e) => format!("write failed: {e}"),
    };
    if let Some(inner) = inner.upgrade() {
        inner.close(reason);
    }
}

async fn read_frames(inner: std::sync::Weak<Inner>, mut read_half: ReadStream) {
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let reason = loop {
        match read_frame(&mut read_half, &mut buffer).await {
            Ok(Some(bytes)) => {
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let received_at = Instant::now();
                let Some(correlation_id) = bytes
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                else {
                    break "response shorter than its header".to_string();
                };
                let waiter = inner
                    .waiters
                    .lock()
                    .expect("waiters lock")
                    .by_correlation_id
                    .remove(&correlation_id);
                match waiter {
                    // The waiter may have given up (timeout); the answer is dropped.
                    Some(waiter) => {
                        let _ = waiter.send(Ok(Frame { bytes, received_at }));
                    }
                    None => break format!("response with unknown correlation id {correlation_id}"),
                }
            }
            Ok(None) => break "closed by the broker".to_string(),
            Err(reason) => break reason,
        }
    };
    if let Some(inner) = inner.upgrade() {
        inner.close(reason);
    }
}

/// Reads one size-prefixed frame; `None` on a clean end of stream between frames.
async fn read_frame(
    read_half: &mut ReadStream,
    buffer: &mut BytesMut,
) -> Result<Option<Bytes>, String> {
    while buffer.len() < 4 {
        if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 4 {
            buffer.reserve(READ_CHUNK_BYTES);
        }
        match read_half.read_buf(buffer).await {
            Ok(0) if buffer.is_empty() => return Ok(None),
            Ok(0) => return Err("closed by the broker inside a frame".to_string()),
            Ok(_) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    let size = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
    let size = usize::try_from(size).map_err(|_| format!("negative frame size {size}"))?;
    if size > RESPONSE_BYTES_MAX {
        return Err(format!(
            "frame of {size} bytes is over the {RESPONSE_BYTES_MAX} byte limit"
        ));
    }
    let total = 4 + size;
    if buffer.len() < total {
        // Room for this frame and the start of the next one, without zeroing.
        buffer.reserve(total - buffer.len() + READ_CHUNK_BYTES);
    }
    while buffer.len() < total {
        match read_half.read_buf(buffer).await {
            Ok(0) => return Err("closed by the broker inside a frame".to_string()),
            Ok(_) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    buffer.advance(4);
    Ok(Some(buffer.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_highest_common_version() {
        assert_eq!(negotiate(ApiKey::Fetch, 4, 12), Some(12));
        // The client stops Fetch at v12 (v13 names topics by id only).
        assert_eq!(negotiate(ApiKey::Fetch, 4, 17), Some(12));
        assert_eq!(negotiate(ApiKey::Produce, 3, 9), Some(9));
        assert_eq!(negotiate(ApiKey::ApiVersions, 0, 4), Some(3));
        assert_eq!(negotiate(ApiKey::Metadata, 0, 1), Some(1));
        // Nothing in common.
        assert_eq!(negotiate(ApiKey::Fetch, 13, 17), None);
    }

    #[test]
    fn unsupported_version_answer_is_decoded_as_v0() {
        // What a broker that knows ApiVersions only up to v2 sends for a v3 request:
        // header (correlation id 7), then a v0 body: error 35, one api key entry.
        let mut frame = BytesMut::new();
        frame.put_i32(7);
        frame.put_i16(35);
        frame.put_i32(1);
        frame.put_i16(ApiKey::ApiVersions as i16);
        frame.put_i16(0);
        frame.put_i16(2);
        let response =
            decode_response::<ApiVersionsResponse>(frame.freeze(), 0, 7, "test").expect("decodes");
        assert_eq!(response.error_code, 35);
        assert_eq!(response.api_keys[0].max_version, 2);
    }

    #[test]
    fn mismatched_correlation_id_is_a_protocol_error() {
        let mut frame = BytesMut::new();
        frame.put_i32(8);
        frame.put_i16(0);
        frame.put_i32(0);
        let error = decode_response::<ApiVersionsResponse>(frame.freeze(), 0, 7, "test")
            .expect_err("wrong id");
        assert!(matches!(error, ClientError::Protocol { .. }), "{error}");
    }
}
