//! Test harness: the real `odradek` binary on a free port with a throw-away data
//! directory, and a minimal blocking Kafka client built on `kafka-protocol`'s client side.
#![allow(dead_code)] // each test file uses a different part

pub mod requests;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// How long a test waits for the broker to start, or for an answer.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("odradek-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `odradek broker`, killed on drop.
pub struct Broker {
    pub child: Child,
    pub port: u16,
    pub data: TempDir,
    stderr: mpsc::Receiver<String>,
}

/// What `odradek` printed and how it exited, for runs expected to fail.
pub struct Failed {
    pub status: ExitStatus,
    pub stderr: String,
}

pub fn odradek() -> Command {
    Command::new(env!("CARGO_BIN_EXE_odradek"))
}

impl Broker {
    /// Starts a broker on a free port of 127.0.0.1 with its own data directory.
    pub fn start(extra: &[&str]) -> Broker {
        let data = TempDir::new("broker");
        Broker::start_in(data, extra)
    }

    /// Starts a broker on data directory `data`.
    pub fn start_in(data: TempDir, extra: &[&str]) -> Broker {
        let mut child = odradek()
            .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("odradek runs");
        let stdout = child.stdout.take().unwrap();
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(address) = line.strip_prefix("odradek broker listening on ") {
                    let port: u16 = address.rsplit_once(':').unwrap().1.parse().unwrap();
                    let _ = port_tx.send(port);
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (stderr_tx, stderr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                eprintln!("[broker] {line}");
                if stderr_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let port = match port_rx.recv_timeout(PATIENCE) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the broker did not print its listening line");
            }
        };
        Broker {
            child,
            port,
            data,
            stderr: stderr_rx,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Log lines printed so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not exit after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the process is still running.
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the broker exited"
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `odradek` with `args` expecting it to exit on its own (with a failure).
pub fn run_to_exit(args: &[&str]) -> Failed {
    let output = odradek().args(args).stdin(Stdio::null()).output().unwrap();
    Failed {
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A blocking client that speaks just enough Kafka to test the broker.
pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
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
