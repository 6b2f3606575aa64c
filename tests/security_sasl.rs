//! SASL on a real broker's `SASL_PLAINTEXT` listener (issue 19 part 2): real clients
//! (kafka-python, confluent-kafka, aiokafka, kcat, Kafka's kafka-configs) log in with
//! PLAIN and SCRAM; bad logins, requests before authentication, slow and failing
//! clients are refused over the raw wire (tests/support/wire_client.rs).

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    ApiKey, MetadataRequest, RequestKind, ResponseKind, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use odradek_replication::scram::ScramMechanism;
use support::wire_client::Client;
use support::{Broker, TempDir, kcat, run_python};

const JAAS: &str = r#"listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

/// A broker with seed 004's SASL settings, PLAIN added, and SCRAM users `admin`
/// (both mechanisms) from `format --add-scram`.
fn sasl_broker(extra: &[&str]) -> Broker {
    let mut args = vec![
        "--override",
        "listeners=SASL_PLAINTEXT://127.0.0.1:0",
        "--override",
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "--override",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256",
        "--override",
        "security.inter.broker.protocol=SASL_PLAINTEXT",
        "--override",
        JAAS,
    ];
    args.extend_from_slice(extra);
    Broker::start_formatted(
        &args,
        &[
            "--add-scram",
            "SCRAM-SHA-256=[name=admin,password=admin-secret]",
            "--add-scram",
            "SCRAM-SHA-512=[name=admin,password=admin-secret,iterations=8192]",
        ],
    )
}

fn kcat_sasl(
    broker: &Broker,
    mechanism: &str,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    let bootstrap = broker.bootstrap();
    let mut command = Command::new(kcat());
    command
        .args(["-b", &bootstrap, "-X", "security.protocol=SASL_PLAINTEXT"])
        .args(["-X", &format!("sasl.mechanisms={mechanism}")])
        .args(["-X", &format!("sasl.username={user}")])
        .args(["-X", &format!("sasl.password={password}")])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running kcat");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("stdin");
    child.wait_with_output().expect("kcat")
}

fn assert_ok(output: &std::process::Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn python_clients(
    broker: &Broker,
    library: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    topic: &str,
) -> String {
    let bootstrap = broker.bootstrap();
    let out = run_python(
        "sasl_clients.py",
        &[library, &bootstrap, mechanism, user, password, topic, "100"],
    );
    out.assert_success(&format!("{library} {mechanism}"));
    out.stdout
}

#[test]
fn real_clients_log_in_with_scram_and_plain_and_users_survive_a_restart() {
    let mut broker = sasl_broker(&[]);
    let stdout = python_clients(
        &broker,
        "kafka-python",
        "SCRAM-SHA-256",
        "admin",
        "admin-secret",
        "user-events",
    );
    assert!(
        stdout.contains("produced 100") && stdout.contains("consumed 100"),
        "{stdout}"
    );
    let stdout = python_clients(
        &broker,
        "confluent",
        "SCRAM-SHA-512",
        "admin",
        "admin-secret",
        "c512",
    );
    assert!(stdout.contains("consumed 100"), "{stdout}");
    let stdout = python_clients(
        &broker,
        "confluent",
        "PLAIN",
        "alice",
        "alice-secret",
        "cplain",
    );
    assert!(stdout.contains("consumed 100"), "{stdout}");
    let stdout = python_clients(&broker, "aiokafka", "PLAIN", "alice", "alice-secret", "aio");
    assert!(stdout.contains("consumed 100"), "{stdout}");
    let produced = kcat_sasl(
        &broker,
        "SCRAM-SHA-256",
        "admin",
        "admin-secret",
        &["-P", "-t", "k"],
        b"one\ntwo\n",
    );
    assert_ok(&produced, "kcat produce");
    broker.stop();
    broker.restart();
    let consumed = kcat_sasl(
        &broker,
        "SCRAM-SHA-256",
        "admin",
        "admin-secret",
        &["-C", "-t", "k", "-e", "-o", "beginning"],
        b"",
    );
    assert_eq!(
        assert_ok(&consumed, "kcat consume after restart"),
        "one\ntwo\n"
    );
}

#[test]
fn kafka_configs_adds_a_scram_user_through_a_sasl_login() {
    let mut broker = sasl_broker(&[]);
    let dir = TempDir::new("sasl-command-config");
    let command_config = dir.path().join("admin.properties");
    std::fs::write(
        &command_config,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";\n",
    )
    .unwrap();
    let bootstrap = broker.bootstrap();
    let config = command_config.display().to_string();
    let tool = |args: &[&str]| {
        let mut all = vec![
            "--bootstrap-server",
            bootstrap.as_str(),
            "--command-config",
            config.as_str(),
        ];
        all.extend_from_slice(args);
        let out = support::java::kafka_tool("kafka-configs.sh", &all, b"");
        out.assert_success("kafka-configs");
        out.stdout
    };
    let out = tool(&[
        "--alter",
        "--add-config",
        "SCRAM-SHA-256=[iterations=8192,password=carol-secret]",
        "--entity-type",
        "users",
        "--entity-name",
        "carol",
    ]);
    assert!(
        out.contains("Completed updating config for user carol."),
        "{out}"
    );
    let out = tool(&[
        "--describe",
        "--entity-type",
        "users",
        "--entity-name",
        "carol",
    ]);
    assert!(out.contains("SCRAM-SHA-256=iterations=8192"), "{out}");
    assert_ok(
        &kcat_sasl(
            &broker,
            "SCRAM-SHA-256",
            "carol",
            "carol-secret",
            &["-L"],
            b"",
        ),
        "carol logs in",
    );
    let wrong = kcat_sasl(
        &broker,
        "SCRAM-SHA-256",
        "carol",
        "admin-secret",
        &["-L", "-m", "5"],
        b"",
    );
    assert!(!wrong.status.success(), "a wrong password is refused");
    broker.stop();
    broker.restart();
    assert_ok(
        &kcat_sasl(
            &broker,
            "SCRAM-SHA-256",
            "carol",
            "carol-secret",
            &["-L"],
            b"",
        ),
        "carol after a restart",
    );
}

// ---------------------------------------------------------------------------------
// The raw wire

fn handshake(
    client: &mut Client,
    version: i16,
    mechanism: &str,
) -> kafka_protocol::messages::SaslHandshakeResponse {
    let request = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_string(mechanism.to_string()));
    match client.call(
        ApiKey::SaslHandshake,
        version,
        &RequestKind::SaslHandshake(request),
    ) {
        ResponseKind::SaslHandshake(response) => response,
        other => panic!("{other:?}"),
    }
}

fn authenticate(
    client: &mut Client,
    token: &[u8],
) -> kafka_protocol::messages::SaslAuthenticateResponse {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(token.to_vec().into());
    match client.call(
        ApiKey::SaslAuthenticate,
        2,
        &RequestKind::SaslAuthenticate(request),
    ) {
        ResponseKind::SaslAuthenticate(response) => response,
        other => panic!("{other:?}"),
    }
}

fn plain_login(
    client: &mut Client,
    user: &str,
    password: &str,
) -> kafka_protocol::messages::SaslAuthenticateResponse {
    assert_eq!(handshake(client, 1, "PLAIN").error_code, 0);
    authenticate(client, format!("\0{user}\0{password}").as_bytes())
}

fn metadata(client: &mut Client) -> ResponseKind {
    client.call(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default()),
    )
}

/// SCRAM-SHA-256 client-first and the server-first answer; the client nonce is `cnonce`.
fn scram_first(client: &mut Client, user: &str, cnonce: &str) -> String {
    assert_eq!(handshake(client, 1, "SCRAM-SHA-256").error_code, 0);
    let response = authenticate(client, format!("n,,n={user},r={cnonce}").as_bytes());
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    String::from_utf8(response.auth_bytes.to_vec()).unwrap()
}

/// client-final for `server_first` with `password`, its nonce replaced by `nonce`.
fn scram_final(
    user: &str,
    cnonce: &str,
    server_first: &str,
    password: &str,
    nonce: Option<&str>,
) -> String {
    let mechanism = ScramMechanism::Sha256;
    let attr = |name: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let salt = decode64(&attr("s"));
    let iterations: u32 = attr("i").parse().unwrap();
    let nonce = nonce.map(str::to_string).unwrap_or_else(|| attr("r"));
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = mechanism.hmac_of(&salted, b"Client Key");
    let stored_key = mechanism.hash_of(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("n={user},r={cnonce},{server_first},{without_proof}");
    let signature = mechanism.hmac_of(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    format!("{without_proof},p={}", encode64(&proof))
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                B64[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn decode64(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | B64.iter().position(|&b| b == c).unwrap() as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[test]
fn bad_logins_are_answered_then_closed() {
    let broker = sasl_broker(&[
        "--override",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,PLAIN",
    ]);
    // A request other than ApiVersions and the SASL ones before authentication.
    let mut client = broker.client();
    client.call(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(Default::default()),
    );
    client.send(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    client.assert_closed_within(Duration::from_secs(5));
    // A mechanism not enabled on this listener, and one not served at all.
    for mechanism in ["SCRAM-SHA-512", "GSSAPI"] {
        let mut client = broker.client();
        let response = handshake(&mut client, 1, mechanism);
        assert_eq!(response.error_code, 33, "{mechanism}");
        let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
        assert_eq!(enabled, ["SCRAM-SHA-256", "PLAIN"]);
        client.assert_closed_within(Duration::from_secs(5));
    }
    // PLAIN: a wrong password, an unknown user.
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let mut client = broker.client();
        let response = plain_login(&mut client, user, password);
        assert_eq!(response.error_code, 58, "{user}");
        assert!(response.error_message.is_some());
        client.assert_closed_within(Duration::from_secs(5));
    }
    // SCRAM: an unknown user, a wrong password (bad proof), a changed nonce.
    let mut client = broker.client();
    assert_eq!(handshake(&mut client, 1, "SCRAM-SHA-256").error_code, 0);
    assert_eq!(
        authenticate(&mut client, b"n,,n=mallory,r=abcdef").error_code,
        58
    );
    client.assert_closed_within(Duration::from_secs(5));
    let mut client = broker.client();
    let first = scram_first(&mut client, "admin", "clientnonce1");
    let response = authenticate(
        &mut client,
        scram_final("admin", "clientnonce1", &first, "wrong", None).as_bytes(),
    );
    assert_eq!(response.error_code, 58);
    client.assert_closed_within(Duration::from_secs(5));
    let mut client = broker.client();
    let first = scram_first(&mut client, "admin", "clientnonce2");
    let other_nonce = "othernonce2".to_string()
        + &first[first.find("clientnonce2").unwrap() + 12..first.find(",s=").unwrap()];
    let response = authenticate(
        &mut client,
        scram_final(
            "admin",
            "clientnonce2",
            &first,
            "admin-secret",
            Some(&other_nonce),
        )
        .as_bytes(),
    );
    assert_eq!(response.error_code, 58);
    client.assert_closed_within(Duration::from_secs(5));
    // The right proof logs in, and then the other APIs are served.
    let mut client = broker.client();
    let first = scram_first(&mut client, "admin", "clientnonce3");
    let response = authenticate(
        &mut client,
        scram_final("admin", "clientnonce3", &first, "admin-secret", None).as_bytes(),
    );
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    assert!(String::from_utf8_lossy(&response.auth_bytes).starts_with("v="));
    assert!(matches!(metadata(&mut client), ResponseKind::Metadata(_)));
    let log = broker.stderr();
    assert!(
        log.contains("Metadata request before SASL authentication"),
        "{log}"
    );
    assert!(log.contains("wrong password for \"admin\""), "{log}");
}

#[test]
fn kip_368_sessions_expire_and_re_authenticate_as_the_same_user() {
    let broker = sasl_broker(&["--override", "connections.max.reauth.ms=1500"]);
    let mut client = broker.client();
    let response = plain_login(&mut client, "alice", "alice-secret");
    assert_eq!(response.error_code, 0);
    assert_eq!(response.session_lifetime_ms, 1500);
    assert!(matches!(metadata(&mut client), ResponseKind::Metadata(_)));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        plain_login(&mut client, "alice", "alice-secret").error_code,
        0,
        "re-authentication"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        matches!(metadata(&mut client), ResponseKind::Metadata(_)),
        "the new session counts"
    );
    // Another user on the same connection is refused.
    assert_eq!(
        plain_login(&mut client, "admin", "admin-secret").error_code,
        58
    );
    client.assert_closed_within(Duration::from_secs(5));
    // A session that expired closes the connection at its next request.
    let mut client = broker.client();
    assert_eq!(
        plain_login(&mut client, "alice", "alice-secret").error_code,
        0
    );
    std::thread::sleep(Duration::from_millis(1700));
    client.send(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    client.assert_closed_within(Duration::from_secs(5));
}

#[test]
fn slow_and_failing_clients_do_not_hold_up_a_good_one() {
    let broker = sasl_broker(&[]);
    let port = broker.port();
    let started = Instant::now();
    let mut slow = broker.client();
    slow.call(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(Default::default()),
    );
    // 200 failed logins in a row while a good client produces.
    let failing = std::thread::spawn(move || {
        for _ in 0..200 {
            let mut client = Client::connect(port);
            let response = plain_login(&mut client, "alice", "not-her-password");
            assert_eq!(response.error_code, 58);
        }
    });
    let lines: String = (0..200).map(|i| format!("record-{i}\n")).collect();
    assert_ok(
        &kcat_sasl(
            &broker,
            "SCRAM-SHA-256",
            "admin",
            "admin-secret",
            &["-P", "-t", "busy"],
            lines.as_bytes(),
        ),
        "produce",
    );
    failing
        .join()
        .expect("the failing logins all got their answer");
    let consumed = kcat_sasl(
        &broker,
        "PLAIN",
        "alice",
        "alice-secret",
        &["-C", "-t", "busy", "-e", "-o", "beginning"],
        b"",
    );
    assert_eq!(assert_ok(&consumed, "consume"), lines);
    // The client that never authenticates is closed within the bound (10 s).
    slow.assert_closed_within(Duration::from_secs(15));
    let held = started.elapsed();
    assert!(held >= Duration::from_secs(9), "closed too early: {held:?}");
    assert!(
        broker
            .stderr()
            .contains("SASL authentication not finished within 10 s")
    );
}
