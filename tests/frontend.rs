//! The broker process and its wire front end, from outside: start-up and shutdown,
//! ApiVersions in every version, and hostile input that must close one connection and
//! nothing more.

mod support;

use std::io::Write;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, RequestHeader, RequestKind,
    ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use support::wire_client::Client;
use support::{Broker, Port, Run, TempDir, run};

/// The versions the broker must advertise. Kept apart from `src/versions.rs` on
/// purpose: changing what is advertised means changing what is tested.
const ADVERTISED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
];

fn api_versions_request(version: i16) -> RequestKind {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request = request
            .with_client_software_name(StrBytes::from("odradek-test"))
            .with_client_software_version(StrBytes::from("1.0"));
    }
    RequestKind::ApiVersions(request)
}

fn api_versions(client: &mut Client, version: i16) -> ApiVersionsResponse {
    match client.call(ApiKey::ApiVersions, version, &api_versions_request(version)) {
        ResponseKind::ApiVersions(response) => response,
        other => panic!("not an ApiVersions response: {other:?}"),
    }
}

/// Asserts the broker still serves a new connection.
fn assert_serving(broker: &mut Broker) {
    broker.assert_alive();
    let response = api_versions(&mut broker.client(), 3);
    assert_eq!(response.error_code, 0);
}

#[test]
fn api_versions_in_every_served_version_lists_the_table() {
    let broker = Broker::start();
    let mut client = broker.client();
    for version in 0..=3 {
        let response = api_versions(&mut client, version);
        assert_eq!(response.error_code, 0, "v{version}");
        let listed: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|key| (key.api_key, key.min_version, key.max_version))
            .collect();
        let expected: Vec<(i16, i16, i16)> = ADVERTISED
            .iter()
            .map(|&(key, min, max)| (key as i16, min, max))
            .collect();
        assert_eq!(listed, expected, "v{version}");
    }
}

#[test]
fn a_too_new_api_versions_gets_unsupported_version_in_a_v0_body() {
    let broker = Broker::start();
    let mut client = broker.client();
    for (index, version) in [4, 5, 100, i16::MAX].into_iter().enumerate() {
        // Sent the way a newer client would (flexible header v2, a body this broker
        // cannot know); the broker must answer without understanding the body.
        let correlation_id = 1000 + index as i32;
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from("future-client")))
            .encode(&mut frame, 2)
            .unwrap();
        frame.put_slice(&[3, b'f', b'c', 2, b'9', 0]); // a v3-like body
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        client.stream.write_all(&frame).unwrap();

        // Response header v0 (no tagged fields), then exactly a v0 body.
        let (received, mut body) = client.receive_raw(ApiKey::ApiVersions, 0);
        assert_eq!(received, correlation_id);
        let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert!(
            !body.has_remaining(),
            "v{version}: the error reply is exactly a v0 body"
        );
        assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
        assert_eq!(response.api_keys.len(), 1);
        let entry = &response.api_keys[0];
        assert_eq!(
            (entry.api_key, entry.min_version, entry.max_version),
            (ApiKey::ApiVersions as i16, 0, 3)
        );
    }
    // The fallback a client then makes works on the same connection.
    assert_eq!(api_versions(&mut client, 3).error_code, 0);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let broker = Broker::start();
    let mut client = broker.client();
    let mut batch = Vec::new();
    for index in 0..200 {
        let version = (index % 4) as i16;
        batch.extend_from_slice(&Client::frame(
            ApiKey::ApiVersions,
            version,
            index,
            &api_versions_request(version),
        ));
    }
    client.stream.write_all(&batch).unwrap();
    for index in 0..200 {
        let version = (index % 4) as i16;
        let response = client.receive(ApiKey::ApiVersions, version, index);
        assert!(matches!(response, ResponseKind::ApiVersions(r) if r.error_code == 0));
    }
}

/// Sends `bytes` on a fresh connection and expects the broker to close it.
fn assert_refused(broker: &mut Broker, what: &str, bytes: &[u8]) {
    let mut client = broker.client();
    client.stream.write_all(bytes).unwrap();
    client.stream.flush().unwrap();
    client.assert_closed_within(Duration::from_secs(10));
    assert_serving(broker);
    eprintln!("refused: {what}");
}

/// Sends `bytes` (a request with correlation id 42) on a fresh connection and expects
/// a response to it.
fn assert_answered(broker: &mut Broker, key: ApiKey, version: i16, bytes: &[u8]) {
    let mut client = broker.client();
    client.stream.write_all(bytes).unwrap();
    client.stream.flush().unwrap();
    client.receive(key, version, 42);
}

fn header(key: i16, version: i16) -> BytesMut {
    let mut frame = BytesMut::new();
    frame.put_i16(key);
    frame.put_i16(version);
    frame.put_i32(42);
    frame.put_i16(-1); // null client id
    frame
}

fn sized(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

#[test]
fn hostile_input_closes_only_that_connection() {
    let mut broker = Broker::start();
    // A connection that stays open and idle throughout must not be disturbed.
    let mut bystander = broker.client();

    assert_refused(
        &mut broker,
        "an HTTP request",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_refused(
        &mut broker,
        "a 2 GiB length prefix",
        &0x7fff_ffff_i32.to_be_bytes(),
    );
    assert_refused(
        &mut broker,
        "a 2^31 length prefix (negative as i32)",
        &0x8000_0000_u32.to_be_bytes(),
    );
    assert_refused(&mut broker, "a negative size", &(-5_i32).to_be_bytes());
    assert_refused(&mut broker, "a zero size", &0_i32.to_be_bytes());
    assert_refused(&mut broker, "a size below a header", &sized(&[0, 18, 0]));
    assert_refused(&mut broker, "an unknown API key", &sized(&header(999, 0)));
    assert_refused(&mut broker, "a negative API key", &sized(&header(-1, 0)));
    assert_refused(
        &mut broker,
        "a known API this broker does not serve",
        &sized(&header(ApiKey::SaslHandshake as i16, 1)),
    );
    assert_refused(
        &mut broker,
        "a too-new Metadata",
        &sized(&header(ApiKey::Metadata as i16, 13)),
    );
    assert_refused(
        &mut broker,
        "a too-old Produce",
        &sized(&header(ApiKey::Produce as i16, 2)),
    );
    let mut bomb = header(ApiKey::Metadata as i16, 1);
    bomb.put_i32(i32::MAX); // "2^31 topics follow" (an allocation bomb for a naive decoder)
    assert_refused(
        &mut broker,
        "an array claiming 2^31 elements",
        &sized(&bomb),
    );
    let mut bomb = header(ApiKey::Produce as i16, 7);
    bomb.put_i16(-1);
    bomb.put_i16(1);
    bomb.put_i32(1000);
    bomb.put_i32(1); // one topic
    bomb.put_i16(1);
    bomb.put_u8(b't');
    bomb.put_i32(0x4000_0000); // 2^30 partitions
    assert_refused(
        &mut broker,
        "a nested array claiming 2^30 elements",
        &sized(&bomb),
    );
    // The group APIs go through the same walk: a JoinGroup v5 (non-flexible) whose
    // protocols array claims 2^31-1 entries, a flexible JoinGroup v6 claiming 2^31-2
    // (compact array: varint count + 1), and an OffsetCommit with a nested bomb. The
    // same JoinGroups with no protocols are answered: the frames are well formed up to
    // the count.
    for (count, bomb) in [(0, [0, 0, 0, 0]), (i32::MAX, [0x7f, 0xff, 0xff, 0xff])] {
        let mut join = header(ApiKey::JoinGroup as i16, 5);
        join.put_i16(1); // group_id "g"
        join.put_u8(b'g');
        join.put_i32(10_000); // session_timeout_ms
        join.put_i32(10_000); // rebalance_timeout_ms
        join.put_i16(0); // member_id ""
        join.put_i16(-1); // group_instance_id null
        join.put_i16(8); // protocol_type "consumer"
        join.put_slice(b"consumer");
        join.put_slice(&bomb); // protocols
        if count == 0 {
            assert_answered(&mut broker, ApiKey::JoinGroup, 5, &sized(&join));
        } else {
            let what = "a JoinGroup v5 claiming 2^31-1 protocols";
            assert_refused(&mut broker, what, &sized(&join));
        }
    }
    for (count, varint) in [
        (0, &[1][..]),
        (i32::MAX - 1, &[0xff, 0xff, 0xff, 0xff, 0x07][..]),
    ] {
        let mut join = header(ApiKey::JoinGroup as i16, 6);
        join.put_u8(0); // flexible header: no tagged fields
        join.put_u8(2); // group_id "g" (compact: length + 1)
        join.put_u8(b'g');
        join.put_i32(10_000); // session_timeout_ms
        join.put_i32(10_000); // rebalance_timeout_ms
        join.put_u8(1); // member_id ""
        join.put_u8(0); // group_instance_id null
        join.put_u8(9); // protocol_type "consumer"
        join.put_slice(b"consumer");
        join.put_slice(varint); // protocols: count + 1
        if count == 0 {
            join.put_u8(0); // no tagged fields
            assert_answered(&mut broker, ApiKey::JoinGroup, 6, &sized(&join));
        } else {
            let what = "a flexible JoinGroup v6 claiming 2^31-2 protocols";
            assert_refused(&mut broker, what, &sized(&join));
        }
    }
    for partitions in [0, 0x4000_0000] {
        let mut commit = header(ApiKey::OffsetCommit as i16, 2);
        commit.put_i16(1); // group_id "g"
        commit.put_u8(b'g');
        commit.put_i32(-1); // generation_id
        commit.put_i16(0); // member_id ""
        commit.put_i64(-1); // retention_time_ms
        commit.put_i32(1); // one topic
        commit.put_i16(1);
        commit.put_u8(b't');
        commit.put_i32(partitions);
        if partitions == 0 {
            assert_answered(&mut broker, ApiKey::OffsetCommit, 2, &sized(&commit));
        } else {
            let what = "an OffsetCommit claiming 2^30 partitions in a topic";
            assert_refused(&mut broker, what, &sized(&commit));
        }
    }
    let mut truncated = header(ApiKey::Metadata as i16, 1);
    truncated.put_i32(3);
    truncated.put_i16(10);
    truncated.put_slice(b"abc");
    assert_refused(
        &mut broker,
        "a body that ends inside a field",
        &sized(&truncated),
    );
    let mut bad_string = header(ApiKey::Metadata as i16, 1);
    bad_string.put_i32(1);
    bad_string.put_i16(-7);
    assert_refused(&mut broker, "a negative string length", &sized(&bad_string));
    let mut bad_header = BytesMut::new();
    bad_header.put_i16(ApiKey::ApiVersions as i16);
    bad_header.put_i16(0);
    bad_header.put_i32(1);
    bad_header.put_i16(200); // client id longer than the frame
    assert_refused(&mut broker, "a header that ends early", &sized(&bad_header));

    // Random garbage in frames of plausible sizes.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20 {
        let mut garbage = Vec::new();
        let len = 8 + (state % 200) as usize;
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            garbage.push(state as u8);
        }
        let mut client = broker.client();
        // Any of: closed, or answered (a garbage frame can be a valid ApiVersions).
        client.stream.write_all(&sized(&garbage)).unwrap();
        drop(client);
    }
    assert_serving(&mut broker);

    let response = api_versions(&mut bystander, 0);
    assert_eq!(
        response.error_code, 0,
        "the idle bystander connection still works"
    );
}

#[test]
fn a_half_sent_frame_neither_stalls_others_nor_lives_forever() {
    let mut broker =
        Broker::start_with(Port::Free, &["--override", "connections.max.idle.ms=1000"]);
    let frame = Client::frame(ApiKey::ApiVersions, 3, 1, &api_versions_request(3));
    let mut stalled = broker.client();
    stalled.stream.write_all(&frame[..frame.len() / 2]).unwrap();
    // Another client is served while the first one's frame is incomplete.
    assert_serving(&mut broker);
    // The stalled connection idles out.
    stalled.assert_closed_within(Duration::from_secs(10));
    // A client that sends half a frame and hangs up is just a closed connection.
    let mut quitter = broker.client();
    quitter.stream.write_all(&frame[..5]).unwrap();
    drop(quitter);
    assert_serving(&mut broker);
}

#[test]
fn idle_connections_are_closed_and_busy_ones_are_not() {
    let broker = Broker::start_with(Port::Free, &["--override", "connections.max.idle.ms=500"]);
    let mut idle = broker.client();
    idle.assert_closed_within(Duration::from_secs(10));
    let mut busy = broker.client();
    for _ in 0..10 {
        assert_eq!(api_versions(&mut busy, 2).error_code, 0);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_and_sigint_stop_the_broker_cleanly() {
    for signal in ["TERM", "INT"] {
        let mut broker = Broker::start();
        assert_serving(&mut broker);
        let status = broker.signal_and_wait(signal);
        assert!(status.success(), "SIG{signal}: {status:?}");
    }
}

/// Asserts that `odradek` exited with `code` and that its stderr says each of `phrases`.
fn assert_exit(failed: &Run, code: i32, phrases: &[&str]) {
    assert_eq!(failed.code, Some(code), "{}", failed.stderr);
    for phrase in phrases {
        assert!(
            failed.stderr.contains(phrase),
            "stderr does not say {phrase:?}:\n{}",
            failed.stderr
        );
    }
}

#[test]
fn a_second_broker_on_the_same_data_directory_refuses_to_start() {
    let broker = Broker::start();
    let data = broker.data_dir().to_str().unwrap().to_string();
    let failed = run(
        &["broker", "--listen", "127.0.0.1:0", "--data-dir", &data],
        b"",
    );
    assert_exit(&failed, 1, &["in use by another odradek process"]);
}

#[test]
fn a_taken_port_is_reported() {
    let broker = Broker::start();
    let other = TempDir::new("second");
    let listen = format!("127.0.0.1:{}", broker.port());
    let failed = run(
        &[
            "broker",
            "--listen",
            &listen,
            "--data-dir",
            other.path().to_str().unwrap(),
        ],
        b"",
    );
    assert_exit(&failed, 1, &["cannot listen on", "port is taken"]);
}

#[test]
fn an_unusable_data_directory_is_reported() {
    let dir = TempDir::new("file-not-dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let failed = run(
        &[
            "broker",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_exit(&failed, 1, &["data directory"]);
}

#[test]
fn bad_configuration_exits_with_status_2_naming_the_key() {
    let failed = run(&["broker", "--override", "num.partitions=lots"], b"");
    assert_exit(&failed, 2, &["num.partitions"]);

    let dir = TempDir::new("config");
    let path = dir.path().join("server.properties");
    std::fs::write(
        &path,
        "# a config file\nbroker.id=1\nsocket.request.max.bytes=-3\n",
    )
    .unwrap();
    let failed = run(&["broker", "--config", path.to_str().unwrap()], b"");
    assert_exit(
        &failed,
        2,
        &["socket.request.max.bytes", "server.properties:3"],
    );

    let failed = run(
        &["broker", "--config", "/nonexistent/server.properties"],
        b"",
    );
    assert_exit(&failed, 2, &[]);
}

#[test]
fn a_kafka_server_properties_file_is_accepted() {
    let dir = TempDir::new("properties");
    let path = dir.path().join("server.properties");
    // The server.properties of the Kafka guide in the shared seeds, with our port and
    // data directory: unused keys only warn.
    std::fs::write(
        &path,
        "broker.id=1\nlisteners=PLAINTEXT://localhost:0\nlog.dirs=/var/kafka-logs\n\
         zookeeper.connect=localhost:2181\nlog.retention.hours=168\nlog.retention.bytes=1073741824\n\
         log.segment.bytes=1073741824\ndefault.replication.factor=3\nmin.insync.replicas=2\n\
         num.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\n\
         socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\n",
    )
    .unwrap();
    let mut broker = Broker::start_with(Port::Free, &["--config", path.to_str().unwrap()]);
    assert_serving(&mut broker);
    let warnings = broker.log_lines();
    assert!(
        warnings
            .iter()
            .any(|line| line.contains("zookeeper.connect")),
        "{warnings:?}"
    );
}

#[test]
fn a_small_socket_request_max_bytes_is_enforced() {
    let mut broker =
        Broker::start_with(Port::Free, &["--override", "socket.request.max.bytes=1000"]);
    let mut big = header(ApiKey::Metadata as i16, 1);
    big.put_i32(1);
    big.put_i16(1000);
    big.put_slice(&[b'a'; 1000]);
    assert_refused(
        &mut broker,
        "a frame over socket.request.max.bytes",
        &sized(&big),
    );
    // Just under the limit is served (ApiVersions v0 with padding is still valid).
    let mut client = broker.client();
    let response = client.call(ApiKey::ApiVersions, 0, &api_versions_request(0));
    assert!(matches!(response, ResponseKind::ApiVersions(r) if r.error_code == 0));
}

/// The brokers a Metadata v1 answer on `client` lists, as (host, port).
fn advertised(client: &mut Client) -> Vec<(String, i32)> {
    let request = RequestKind::Metadata(MetadataRequest::default());
    let ResponseKind::Metadata(response) = client.call(ApiKey::Metadata, 1, &request) else {
        panic!("not a Metadata response");
    };
    response
        .brokers
        .iter()
        .map(|broker| (broker.host.to_string(), broker.port))
        .collect()
}

#[test]
fn each_client_listener_is_served_and_advertises_its_own_endpoint() {
    let external = support::free_ports(1)[0];
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:{external}");
    let advertised_external = format!("advertised.listeners=EXTERNAL://localhost:{external}");
    let broker = Broker::start_with(
        Port::Free,
        &[
            "--override",
            &listeners,
            "--override",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
            "--override",
            &advertised_external,
        ],
    );
    let internal = vec![("127.0.0.1".to_string(), i32::from(broker.port()))];
    assert_eq!(advertised(&mut broker.client()), internal);
    let external_endpoint = vec![("localhost".to_string(), i32::from(external))];
    assert_eq!(
        advertised(&mut Client::connect(external)),
        external_endpoint
    );
    // A client that bootstraps through the external listener is sent back to it, and
    // what it writes is read through the internal one.
    let through_external = format!("localhost:{external}");
    run(
        &[
            "produce",
            "--bootstrap-server",
            &through_external,
            "--topic",
            "two-doors",
        ],
        b"in by the side door\n",
    )
    .ok();
    let read = run(
        &[
            "consume",
            "--bootstrap-server",
            &broker.address(),
            "--topic",
            "two-doors",
            "--from-beginning",
            "--max-messages",
            "1",
        ],
        b"",
    )
    .ok();
    assert_eq!(read.stdout.trim(), "in by the side door");
}
