//! `odradek broker` as one of a cluster, from outside: the cluster flags, the peer
//! listener of a real process (its handshake refuses strangers and other clusters, with
//! a log line saying why, and the client port is unaffected), and a clean SIGTERM.
//!
//! The transport between two brokers (bundles both ways, re-dialling, cut connections,
//! bad frames) is tested inside the binary, in `bin/src/peers.rs`, where two transports
//! run in one process; replication is not wired into the node yet, so two broker
//! processes have nothing to say to each other.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind, ResponseKind};
use support::{Broker, Port, run};

const DEADLINE: Duration = Duration::from_secs(15);

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until the broker's log has a line containing `needle`.
fn wait_for_log(broker: &Broker, needle: &str) {
    let deadline = Instant::now() + DEADLINE;
    while !broker.log_lines().iter().any(|line| line.contains(needle)) {
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}; log:\n{}",
            broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_serving_clients(broker: &Broker) {
    let mut client = broker.client();
    let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
    match client.call(ApiKey::ApiVersions, 0, &request) {
        ResponseKind::ApiVersions(response) => assert_eq!(response.error_code, 0),
        other => panic!("not an ApiVersions response: {other:?}"),
    }
}

/// Reads until the broker closes the connection.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut read = Vec::new();
    match stream.read_to_end(&mut read) {
        Ok(_) => read,
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => read,
        Err(error) => panic!("the broker did not close the connection: {error}"),
    }
}

/// A peer handshake (see bin/src/peers.rs): magic, version, from, to, identity.
fn handshake(from: i32, to: i32, identity: u64) -> Vec<u8> {
    let mut bytes = b"ODRK".to_vec();
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&from.to_be_bytes());
    bytes.extend_from_slice(&to.to_be_bytes());
    bytes.extend_from_slice(&identity.to_be_bytes());
    bytes
}

#[test]
fn a_cluster_broker_refuses_strangers_on_its_peer_port_and_stops_cleanly() {
    let (own, other) = (free_port(), free_port());
    let voters = format!("1@127.0.0.1:{own},2@127.0.0.1:{other}");
    let mut broker = Broker::start_with(Port::Free, &["--node-id", "1", "--voters", &voters]);
    wait_for_log(&broker, "peer listener started");

    // A broker of another cluster: the listener answers with its own handshake (so the
    // dialler can tell why), logs the reason, and closes.
    let mut stranger = TcpStream::connect(("127.0.0.1", own)).unwrap();
    stranger.write_all(&handshake(2, 1, 0xBAD)).unwrap();
    let answer = read_until_closed(&mut stranger);
    assert_eq!(answer.len(), 22, "one handshake, then closed: {answer:?}");
    assert_eq!(&answer[..4], b"ODRK");
    assert_eq!(&answer[6..10], &1i32.to_be_bytes(), "from broker 1");
    wait_for_log(&broker, "has a different voter set");

    // A Kafka client on the peer port.
    let mut client = TcpStream::connect(("127.0.0.1", own)).unwrap();
    client
        .write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF])
        .unwrap();
    assert!(read_until_closed(&mut client).is_empty());
    wait_for_log(&broker, "not an odradek peer");

    assert_serving_clients(&broker);
    broker.stop();
    wait_for_log(&broker, "peer transport stopped");
}

#[test]
fn a_broker_without_voters_opens_no_peer_listener() {
    let mut broker = Broker::start();
    assert_serving_clients(&broker);
    broker.stop();
    let log = broker.stderr();
    assert!(!log.contains("peer listener"), "{log}");
}

#[test]
fn bad_cluster_flags_exit_with_status_2_and_say_why() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--voters", "2@127.0.0.1:9093,3@127.0.0.1:9094"],
            "node.id 1 is not one of the voters (2, 3)",
        ),
        (
            &["--voters", "1@127.0.0.1:9093,1@127.0.0.1:9094"],
            "voter id 1 appears twice",
        ),
        (
            &["--peer-listen", "127.0.0.1:9093"],
            "--peer-listen needs --voters",
        ),
        (
            &["--override", "controller.quorum.voters=1@127.0.0.1"],
            "controller.quorum.voters",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["broker"];
        args.extend_from_slice(flags);
        let failed = run(&args, b"").failed();
        assert_eq!(failed.code, Some(2), "{flags:?}: {}", failed.stderr);
        assert!(
            failed.stderr.contains(expected),
            "{flags:?}: expected {expected:?} in:\n{}",
            failed.stderr
        );
    }
}

#[test]
fn broker_help_documents_the_cluster_flags() {
    let help = run(&["broker", "--help"], b"").ok().stdout;
    for flag in [
        "--voters <ID@HOST:PORT,...>",
        "--peer-listen <HOST:PORT>",
        "--node-id <N>",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_cluster_broker_starts_only_on_a_formatted_directory() {
    let home = support::TempDir::new("format");
    let data = home.path().join("data");
    let data = data.to_str().expect("a UTF-8 path");
    let voters = format!("1@127.0.0.1:{},2@127.0.0.1:{}", free_port(), free_port());
    let flags = ["--node-id", "1", "--voters", &voters, "--data-dir", data];
    let with = |command: &str, more: &[&str]| {
        let mut args = vec![command];
        args.extend_from_slice(&flags);
        args.extend_from_slice(more);
        run(&args, b"")
    };

    // Unformatted: the broker says why and what to do, and writes nothing.
    let refused = with("broker", &["--listen", "127.0.0.1:0"]).failed();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    for needle in ["not formatted", "odradek format", "lost its disk"] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    let entries: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert!(entries.is_empty(), "{entries:?}");

    // A cluster id with a space is a usage error.
    let bad = with("format", &["--cluster-id", "a b"]).failed();
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);

    let formatted = with("format", &["--cluster-id", "orders-cluster"]).ok();
    assert!(
        formatted.stdout.contains("formatted"),
        "{}",
        formatted.stdout
    );
    let properties = std::fs::read_to_string(home.path().join("data/meta.properties")).unwrap();
    for line in [
        "version=1",
        "node.id=1",
        "cluster.id=orders-cluster",
        "directory.id=",
    ] {
        assert!(properties.contains(line), "{line}: {properties}");
    }

    // Once only, unless asked to leave a formatted directory alone; never for
    // another node.
    let again = with("format", &[]).failed();
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("formatted already"),
        "{}",
        again.stderr
    );
    with("format", &["--ignore-formatted"]).ok();
    let mut other = vec!["format", "--node-id", "2", "--data-dir", data];
    other.extend_from_slice(&["--ignore-formatted"]);
    let other = run(&other, b"").failed();
    assert!(other.stderr.contains("for node 1"), "{}", other.stderr);
    assert_eq!(
        std::fs::read_to_string(home.path().join("data/meta.properties")).unwrap(),
        properties,
        "left as it was"
    );
}
