//! A minimal blocking Kafka client built on `kafka-protocol`'s client side, for tests
//! that speak the wire protocol to the broker directly: exact versions, pipelining,
//! and frames no real client would send.
//!
//! ```text
//!  test ──► Broker::client() ──► Client::connect(port)
//!            call()  = send() + receive()      (one request, its response)
//!            send() … send(), receive() …      (pipelined; responses must come in order)
//!            frame() + stream.write_all()      (hand-made or partial frames)
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// How long the client waits for a response, and a test for what a request should
/// have caused (e.g. acks=0 records becoming visible).
pub const RESPONSE_PATIENCE: Duration = Duration::from_secs(20);

/// A blocking client that speaks just enough Kafka to test the broker.
pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(RESPONSE_PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_correlation: 1,
        }
    }

    /// Encodes a request frame.
    pub fn frame(key: ApiKey, version: i16, correlation_id: i32, body: &RequestKind) -> Bytes {
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from("odradek-test")))
            .encode(&mut frame, key.request_header_version(version))
            .unwrap();
        body.encode(&mut frame, version)
            .unwrap_or_else(|error| panic!("encoding {key:?} v{version}: {error:#}"));
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        frame.freeze()
    }

    /// Sends a request; returns its correlation id.
    pub fn send(&mut self, key: ApiKey, version: i16, body: &RequestKind) -> i32 {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        self.stream
            .write_all(&Client::frame(key, version, correlation_id, body))
            .unwrap();
        correlation_id
    }

    /// Reads one response frame: (correlation id, body bytes after the header).
    pub fn receive_raw(&mut self, key: ApiKey, version: i16) -> (i32, Bytes) {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("response size");
        let size = i32::from_be_bytes(size);
        assert!(size >= 4, "response size {size}");
        let mut frame = vec![0u8; size as usize];
        self.stream.read_exact(&mut frame).expect("response body");
        let mut frame = Bytes::from(frame);
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        (header.correlation_id, frame)
    }

    /// Reads and decodes one response, checking its correlation id.
    pub fn receive(&mut self, key: ApiKey, version: i16, correlation_id: i32) -> ResponseKind {
        let (received, mut body) = self.receive_raw(key, version);
        assert_eq!(
            received, correlation_id,
            "{key:?} v{version}: responses out of order"
        );
        let response = ResponseKind::decode(key, &mut body, version)
            .unwrap_or_else(|error| panic!("decoding {key:?} v{version} response: {error:#}"));
        assert_eq!(
            body.remaining(),
            0,
            "{key:?} v{version}: bytes left after the response"
        );
        response
    }

    /// Sends a request and waits for its response.
    pub fn call(&mut self, key: ApiKey, version: i16, body: &RequestKind) -> ResponseKind {
        let correlation_id = self.send(key, version, body);
        self.receive(key, version, correlation_id)
    }

    /// Waits until the broker closes the connection; panics if it answers instead or
    /// keeps it open past `within`.
    pub fn assert_closed_within(&mut self, within: Duration) {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("expected the connection to close, got {n} bytes"),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) => {}
            Err(error) => panic!("expected the connection to close: {error}"),
        }
    }
}
