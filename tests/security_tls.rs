//! TLS (issue 19 item 1), against real `odradek broker` processes with an `SSL`
//! listener and real clients: confluent-kafka and kafka-python
//! (tests/python/tls_client.py), kcat, Kafka's Java tools (PEM stores in their client
//! configs), and odradek's own tools with `--command-config`; and peer links over
//! mutual TLS in a three-broker cluster.
//!
//! Certificates are made here, at test time, with rcgen (never committed keys): a CA;
//! a server certificate for localhost and 127.0.0.1; a client certificate
//! `O=Odradek, OU=eng, CN=alice`; an expired server and an expired client certificate
//! of the same CA; a client certificate of another CA.
//!
//! Bad input: an untrusted, expired or missing client certificate where one is
//! required, an expired server certificate, plaintext Kafka bytes sent to the TLS port,
//! a client that opens TCP and never handshakes (closed after
//! `ssl.handshake.timeout.ms` while other connections are served), and bad keystores
//! (exit status 2, the key named).

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{Broker, Port, Run, TempDir, run, run_kcat, run_python};

/// Certificates and keys of one test, as PEM files in a temporary directory.
struct Pki {
    dir: TempDir,
}

/// A certificate's PEM and its key's PEM.
struct Issued {
    certificate: String,
    key: String,
}

fn issue(params: rcgen::CertificateParams, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> Issued {
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, issuer).unwrap();
    Issued {
        certificate: certificate.pem(),
        key: key.serialize_pem(),
    }
}

fn certificate_authority(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), rcgen::Issuer::new(params, key))
}

fn server_params(expired: bool) -> rcgen::CertificateParams {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    params
}

fn client_params(common_name: &str, expired: bool) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::OrganizationName, "Odradek");
    name.push(rcgen::DnType::OrganizationalUnitName, "eng");
    name.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = name;
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    params
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("tls-pki");
        let (ca, issuer) = certificate_authority("odradek test CA");
        let (other_ca, other_issuer) = certificate_authority("another CA");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca);
        write("other-ca.pem", &other_ca);
        for (name, issued) in [
            ("server", issue(server_params(false), &issuer)),
            ("expired-server", issue(server_params(true), &issuer)),
            ("alice", issue(client_params("alice", false), &issuer)),
            (
                "expired-alice",
                issue(client_params("alice", true), &issuer),
            ),
            (
                "mallory",
                issue(client_params("mallory", false), &other_issuer),
            ),
        ] {
            write(&format!("{name}.pem"), &issued.certificate);
            write(&format!("{name}.key"), &issued.key);
            // A keystore file as ssl.keystore.location reads it: key and chain.
            write(
                &format!("{name}-keystore.pem"),
                &format!("{}{}", issued.key, issued.certificate),
            );
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// A `--command-config` file for odradek's tools: SSL trusting the CA, presenting
    /// `identity`'s keystore if given.
    fn command_config(&self, identity: Option<&str>) -> PathBuf {
        let mut text = format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            self.path("ca.pem")
        );
        if let Some(identity) = identity {
            text.push_str(&format!(
                "ssl.keystore.type=PEM\nssl.keystore.location={}\n",
                self.path(&format!("{identity}-keystore.pem"))
            ));
        }
        let path = self.dir.path().join(format!(
            "client-{}.properties",
            identity.unwrap_or("anonymous")
        ));
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `--override` flags for an SSL listener with `keystore` (a `*-keystore.pem` file)
/// and `settings` (`key=value`).
fn ssl_flags(pki: &Pki, keystore: &str, settings: &[&str]) -> Vec<String> {
    let mut pairs = vec![
        "listeners=SSL://127.0.0.1:0".to_string(),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", pki.path(keystore)),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={}", pki.path("ca.pem")),
    ];
    pairs.extend(settings.iter().map(|setting| setting.to_string()));
    pairs
        .into_iter()
        .flat_map(|pair| ["--override".to_string(), pair])
        .collect()
}

fn start_ssl_broker(pki: &Pki, settings: &[&str]) -> Broker {
    let flags = ssl_flags(pki, "server-keystore.pem", settings);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Broker::start_with(Port::Free, &flags)
}

/// `odradek TOOL ARGS --bootstrap-server B --command-config C`.
fn tool(broker: &Broker, config: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let bootstrap = broker.bootstrap();
    let mut all = args.to_vec();
    all.extend(["--bootstrap-server", &bootstrap]);
    all.extend(["--command-config", config.to_str().unwrap()]);
    run(&all, stdin)
}

fn create_topic(broker: &Broker, config: &Path, topic: &str) {
    tool(
        broker,
        config,
        &["topics", "create", "--topic", topic, "--partitions", "1"],
        b"",
    )
    .ok();
}

/// Produces `values` with odradek's tool and reads them back; asserts they came back.
fn round_trip_with_tools(broker: &Broker, config: &Path, topic: &str) {
    create_topic(broker, config, topic);
    tool(
        broker,
        config,
        &["produce", "--topic", topic],
        b"one\ntwo\nthree\n",
    )
    .ok();
    let read = tool(
        broker,
        config,
        &[
            "consume",
            "--topic",
            topic,
            "--from-beginning",
            "--exit-at-end",
        ],
        b"",
    )
    .ok();
    let lines: Vec<&str> = read.stdout.lines().collect();
    assert_eq!(lines, ["one", "two", "three"], "{}", read.stderr);
}

/// Reads until the broker closes `stream`; panics if it stays open past `within`.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 256];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(error) => panic!("expected the connection to close: {error}"),
        }
    }
}

/// Waits until the broker's log has a line with each of `phrases`.
fn assert_logged(broker: &Broker, phrases: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = broker.log_lines();
        if lines
            .iter()
            .any(|line| phrases.iter().all(|phrase| line.contains(phrase)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {phrases:?}:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn odradek_tools_create_produce_and_consume_over_ssl_and_mtls() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &[]);
    round_trip_with_tools(&broker, &pki.command_config(None), "tools-ssl");
    let mtls = start_ssl_broker(&pki, &["ssl.client.auth=required"]);
    round_trip_with_tools(&mtls, &pki.command_config(Some("alice")), "tools-mtls");
}

#[test]
fn a_named_listener_mapped_to_ssl_with_inline_pem_serves_tls() {
    let pki = Pki::new();
    // Inline PEM as a properties file writes it with `\` continuations: one line.
    let one_line = |name: &str| pki.text(name).replace('\n', " ");
    let chain = format!(
        "listener.name.external.ssl.keystore.certificate.chain={}",
        one_line("server.pem")
    );
    let key = format!(
        "listener.name.external.ssl.keystore.key={}",
        one_line("server.key")
    );
    let flags = [
        "--override",
        "listeners=EXTERNAL://127.0.0.1:0",
        "--override",
        "listener.security.protocol.map=EXTERNAL:SSL",
        "--override",
        "listener.name.external.ssl.keystore.type=PEM",
        "--override",
        &chain,
        "--override",
        &key,
    ];
    let broker = Broker::start_with(Port::Free, &flags);
    round_trip_with_tools(&broker, &pki.command_config(None), "named-ssl");
    // Plain Kafka bytes to the TLS port: that connection closes, the broker says why.
    let frame = support::wire_client::Client::frame(
        kafka_protocol::messages::ApiKey::ApiVersions,
        3,
        1,
        &kafka_protocol::messages::RequestKind::ApiVersions(Default::default()),
    );
    let mut plain = TcpStream::connect(broker.address()).unwrap();
    plain.write_all(&frame).unwrap();
    let answer = read_until_closed(&mut plain, Duration::from_secs(5));
    // At most a TLS alert (content type 21), never a Kafka response.
    assert!(
        answer.is_empty() || answer[0] == 21,
        "a plaintext client got {answer:?}"
    );
    assert_logged(&broker, &["TLS handshake failed", "127.0.0.1"]);
    round_trip_with_tools(&broker, &pki.command_config(None), "named-ssl-after");
}

fn python_round_trip(broker: &Broker, pki: &Pki, client: &str, topic: &str, mtls: bool) {
    let bootstrap = broker.bootstrap();
    let ca = pki.path("ca.pem");
    let (cert, key) = (pki.path("alice.pem"), pki.path("alice.key"));
    let mut args = vec![
        "--client",
        client,
        "--bootstrap",
        &bootstrap,
        "--topic",
        topic,
        "--count",
        "20",
        "--ca",
        &ca,
    ];
    if mtls {
        args.extend(["--cert", &cert, "--key", &key]);
    }
    let output = run_python("tls_client.py", &args);
    output.assert_success(&format!("{client} over TLS (mtls: {mtls})"));
    assert!(output.stdout.contains("produced 20"), "{}", output.stdout);
    assert!(output.stdout.contains("consumed 20"), "{}", output.stdout);
}

#[test]
fn confluent_kafka_and_kafka_python_over_ssl_and_mtls() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &[]);
    let config = pki.command_config(None);
    for client in ["confluent", "kafka-python"] {
        let topic = format!("py-ssl-{client}");
        create_topic(&broker, &config, &topic);
        python_round_trip(&broker, &pki, client, &topic, false);
    }
    let mtls = start_ssl_broker(&pki, &["ssl.client.auth=required"]);
    let config = pki.command_config(Some("alice"));
    for client in ["confluent", "kafka-python"] {
        let topic = format!("py-mtls-{client}");
        create_topic(&mtls, &config, &topic);
        python_round_trip(&mtls, &pki, client, &topic, true);
    }
}

#[test]
fn kcat_produces_and_consumes_over_ssl() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &[]);
    create_topic(&broker, &pki.command_config(None), "kcat-ssl");
    let ca = pki.path("ca.pem");
    let bootstrap = broker.bootstrap();
    let base = [
        "-b",
        bootstrap.as_str(),
        "-X",
        "security.protocol=ssl",
        "-X",
        &format!("ssl.ca.location={ca}"),
    ];
    let mut produce = base.to_vec();
    produce.extend(["-P", "-t", "kcat-ssl", "-p", "0"]);
    run_kcat(&produce, b"first\nsecond\n");
    let mut consume = base.to_vec();
    consume.extend([
        "-C",
        "-t",
        "kcat-ssl",
        "-o",
        "beginning",
        "-e",
        "-f",
        "%s\n",
    ]);
    let output = run_kcat(&consume, b"");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "first\nsecond\n");
}

/// `odradek topics --list` over TLS presenting `identity`: its run.
fn list_as(broker: &Broker, pki: &Pki, identity: Option<&str>) -> Run {
    tool(
        broker,
        &pki.command_config(identity),
        &["topics", "--list"],
        b"",
    )
}

#[test]
fn client_certificates_that_are_untrusted_expired_or_missing_are_refused() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &["ssl.client.auth=required"]);
    for identity in [Some("mallory"), Some("expired-alice"), None] {
        let refused = list_as(&broker, &pki, identity).failed();
        assert!(
            refused.stderr.contains("cannot reach a broker"),
            "{identity:?}: {}",
            refused.stderr
        );
    }
    assert_logged(
        &broker,
        &["TLS handshake failed", "127.0.0.1", "UnknownIssuer"],
    );
    assert_logged(&broker, &["TLS handshake failed", "certificate expired"]);
    assert_logged(
        &broker,
        &["TLS handshake failed", "peer sent no certificates"],
    );
    // Nobody else noticed.
    list_as(&broker, &pki, Some("alice")).ok();
}

#[test]
fn requested_client_auth_serves_clients_with_and_without_certificates() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &["ssl.client.auth=requested"]);
    list_as(&broker, &pki, None).ok();
    list_as(&broker, &pki, Some("alice")).ok();
    list_as(&broker, &pki, Some("mallory")).failed();
}

#[test]
fn a_client_refuses_an_expired_server_certificate() {
    let pki = Pki::new();
    let flags = ssl_flags(&pki, "expired-server-keystore.pem", &[]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let broker = Broker::start_with(Port::Free, &flags);
    let refused = list_as(&broker, &pki, None).failed();
    assert!(
        refused.stderr.contains("TLS handshake failed")
            && refused.stderr.contains("certificate expired"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_client_that_never_handshakes_is_closed_after_the_timeout() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &["ssl.handshake.timeout.ms=1000"]);
    let mut silent = TcpStream::connect(broker.address()).unwrap();
    let opened = Instant::now();
    // Others are served while the silent one holds its connection.
    list_as(&broker, &pki, None).ok();
    let answer = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(
        answer.is_empty() || answer[0] == 21,
        "the silent client got {answer:?}"
    );
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "closed after {waited:?}"
    );
    assert_logged(
        &broker,
        &["TLS handshake not finished in time", "127.0.0.1"],
    );
    list_as(&broker, &pki, None).ok();
}

/// `odradek broker` with an SSL listener and `settings`: must fail at start.
fn failed_start(settings: &[String]) -> Run {
    let data = TempDir::new("tls-bad-config");
    let mut args = vec![
        "broker".to_string(),
        "--listen".to_string(),
        "127.0.0.1:0".to_string(),
        "--data-dir".to_string(),
        data.path().to_str().unwrap().to_string(),
        "--override".to_string(),
        "listeners=SSL://127.0.0.1:0".to_string(),
    ];
    for setting in settings {
        args.push("--override".to_string());
        args.push(setting.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, b"")
}

fn assert_config_error(settings: &[String], phrases: &[&str]) {
    let failed = failed_start(settings);
    assert_eq!(failed.code, Some(2), "{}", failed.stderr);
    for phrase in phrases {
        assert!(
            failed.stderr.contains(phrase),
            "stderr does not say {phrase:?}:\n{}",
            failed.stderr
        );
    }
}

#[test]
fn bad_keystores_stop_the_broker_with_exit_status_2_naming_the_key() {
    let pki = Pki::new();
    assert_config_error(&[], &["SSL listener SSL", "needs a keystore"]);
    assert_config_error(
        &["ssl.keystore.location=/nonexistent/odradek.pem".to_string()],
        &["ssl.keystore.location: cannot open /nonexistent/odradek.pem"],
    );
    let bad = pki.dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_config_error(
        &[format!("ssl.keystore.location={}", bad.display())],
        &["ssl.keystore.location=", "bad PEM"],
    );
    assert_config_error(
        &[
            "ssl.keystore.type=JKS".to_string(),
            format!("ssl.keystore.location={}", pki.path("server-keystore.pem")),
        ],
        &["ssl.keystore.type=JKS", "PEM"],
    );
    assert_config_error(
        &[
            format!("ssl.keystore.location={}", pki.path("server-keystore.pem")),
            "ssl.client.auth=required".to_string(),
        ],
        &["ssl.client.auth=required", "truststore"],
    );
}

/// Three brokers whose controller listener is SSL; `plaintext_peer` leaves broker 3's
/// peer listener (and its dialling) plain.
fn start_tls_cluster(pki: &Pki, plaintext_peer: bool) -> Vec<Broker> {
    let ports = support::free_ports(6);
    let (client, peer) = (&ports[..3], &ports[3..]);
    let voters = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, peer[i]))
        .collect::<Vec<_>>()
        .join(",");
    (0..3)
        .map(|i| {
            let peer_protocol = if plaintext_peer && i == 2 {
                "PLAINTEXT"
            } else {
                "SSL"
            };
            let mut flags = ssl_flags(
                pki,
                "server-keystore.pem",
                &[&format!(
                    "listener.security.protocol.map=SSL:SSL,CONTROLLER:{peer_protocol}"
                )],
            );
            flags[1] = format!(
                "listeners=SSL://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                client[i], peer[i]
            );
            let id = (i + 1).to_string();
            flags.extend([
                "--node-id".to_string(),
                id,
                "--voters".to_string(),
                voters.clone(),
            ]);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Broker::start_with(Port::Fixed(client[i]), &flags)
        })
        .collect()
}

#[test]
fn a_cluster_links_its_brokers_over_mutual_tls() {
    let pki = Pki::new();
    let brokers = start_tls_cluster(&pki, false);
    let config = pki.command_config(None);
    tool(
        &brokers[0],
        &config,
        &[
            "topics",
            "create",
            "--topic",
            "replicated",
            "--partitions",
            "1",
            "--replication-factor",
            "3",
        ],
        b"",
    )
    .ok();
    tool(
        &brokers[0],
        &config,
        &["produce", "--topic", "replicated", "--acks", "all"],
        b"a\nb\n",
    )
    .ok();
    let read = tool(
        &brokers[2],
        &config,
        &[
            "consume",
            "--topic",
            "replicated",
            "--from-beginning",
            "--exit-at-end",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        read.stdout.lines().collect::<Vec<_>>(),
        ["a", "b"],
        "{}",
        read.stderr
    );
}

#[test]
fn a_broker_whose_peer_link_is_plaintext_is_refused_by_the_tls_peers() {
    let pki = Pki::new();
    let brokers = start_tls_cluster(&pki, true);
    // Broker 3 dials broker 1's SSL peer listener in plaintext: the handshake fails.
    assert_logged(&brokers[0], &["TLS handshake failed", "127.0.0.1"]);
    // Brokers 1 and 2 are a quorum between themselves over TLS.
    let config = pki.command_config(None);
    create_topic(&brokers[0], &config, "two-of-three");
}

/// Kafka's own tools (the Java client) with a PEM truststore and keystore in their
/// `--command-config`, `--producer.config` and `--consumer.config`.
#[test]
fn kafka_tools_create_produce_and_consume_over_mtls() {
    let pki = Pki::new();
    let broker = start_ssl_broker(&pki, &["ssl.client.auth=required"]);
    let config = pki.command_config(Some("alice"));
    let config = config.to_str().unwrap();
    let bootstrap = broker.bootstrap();
    let java = |script: &str, args: &[&str], stdin: &[u8]| {
        let output = support::java::kafka_tool(script, args, stdin);
        output.assert_success(&format!("{script} {}", args.join(" ")));
        output
    };
    let server = ["--bootstrap-server", bootstrap.as_str()];
    let topic = ["--topic", "java-mtls"];
    java(
        "kafka-topics.sh",
        &[
            &server[..],
            &topic,
            &["--create", "--partitions", "1", "--command-config", config],
        ]
        .concat(),
        b"",
    );
    java(
        "kafka-console-producer.sh",
        &[&server[..], &topic, &["--producer.config", config]].concat(),
        b"java-1\njava-2\n",
    );
    let consumed = java(
        "kafka-console-consumer.sh",
        &[
            &server[..],
            &topic,
            &[
                "--consumer.config",
                config,
                "--from-beginning",
                "--max-messages",
                "2",
            ],
        ]
        .concat(),
        b"",
    );
    assert_eq!(
        consumed.stdout.lines().collect::<Vec<_>>(),
        ["java-1", "java-2"]
    );
}

/// kcat over SASL_SSL as `user` with SCRAM-SHA-512, trusting the test CA: its output,
/// whatever its exit status.
fn kcat_sasl_ssl(
    broker: &Broker,
    pki: &Pki,
    (user, password): (&str, &str),
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    let bootstrap = broker.bootstrap();
    let ca = format!("ssl.ca.location={}", pki.path("ca.pem"));
    let mut child = std::process::Command::new(support::kcat())
        .args([
            "-b",
            &bootstrap,
            "-X",
            "security.protocol=SASL_SSL",
            "-X",
            &ca,
        ])
        .args(["-X", "sasl.mechanisms=SCRAM-SHA-512"])
        .args(["-X", &format!("sasl.username={user}")])
        .args(["-X", &format!("sasl.password={password}")])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kcat");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("kcat's stdin");
    child.wait_with_output().expect("waiting for kcat")
}

/// SASL inside TLS: SCRAM-SHA-512 logins on a SASL_SSL listener, and the user a login
/// names meeting the ACLs: admin (a super user) creates the topic and grants alice
/// WRITE with Kafka's kafka-acls.sh over SASL_SSL; alice may produce, bob may not, and
/// a wrong password is refused.
#[test]
fn sasl_ssl_logs_users_in_and_the_acls_judge_them() {
    let pki = Pki::new();
    let mut flags = ssl_flags(
        &pki,
        "server-keystore.pem",
        &[
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin",
        ],
    );
    flags.extend([
        "--override".into(),
        "listeners=SASL_SSL://127.0.0.1:0".into(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let users = ["admin", "alice", "bob"]
        .map(|user| format!("SCRAM-SHA-512=[name={user},password={user}-secret,iterations=4096]"));
    let format: Vec<&str> = users
        .iter()
        .flat_map(|u| ["--add-scram", u.as_str()])
        .collect();
    let broker = Broker::start_formatted(&flags, &format);
    let produce = ["-P", "-t", "guarded", "-p", "0"];
    let admin = kcat_sasl_ssl(
        &broker,
        &pki,
        ("admin", "admin-secret"),
        &produce,
        b"by admin\n",
    );
    assert!(
        admin.status.success(),
        "{}",
        String::from_utf8_lossy(&admin.stderr)
    );

    let config = pki.dir.path().join("admin-sasl-ssl.properties");
    let jaas = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";"#;
    let text = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config={jaas}\n\
         ssl.truststore.type=PEM\nssl.truststore.location={}\n",
        pki.path("ca.pem")
    );
    std::fs::write(&config, text).unwrap();
    let bootstrap = broker.bootstrap();
    let args = [
        "--bootstrap-server",
        bootstrap.as_str(),
        "--command-config",
        config.to_str().unwrap(),
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "guarded",
    ];
    support::java::kafka_tool("kafka-acls.sh", &args, b"").assert_success("kafka-acls.sh --add");

    let alice = kcat_sasl_ssl(
        &broker,
        &pki,
        ("alice", "alice-secret"),
        &produce,
        b"by alice\n",
    );
    assert!(
        alice.status.success(),
        "{}",
        String::from_utf8_lossy(&alice.stderr)
    );
    let bob = kcat_sasl_ssl(&broker, &pki, ("bob", "bob-secret"), &produce, b"by bob\n");
    let refusal = String::from_utf8_lossy(&bob.stderr).to_lowercase();
    assert!(refusal.contains("authorization failed"), "bob: {refusal}");
    let wrong = kcat_sasl_ssl(&broker, &pki, ("alice", "nope"), &produce, b"x\n");
    let refusal = String::from_utf8_lossy(&wrong.stderr).to_lowercase();
    assert!(
        refusal.contains("authentication"),
        "a wrong password: {refusal}"
    );

    // confluent-kafka, seed 004's producer and group consumer, as admin over SASL_SSL.
    let ca = pki.path("ca.pem");
    let python = run_python(
        "sasl_clients.py",
        &[
            "confluent",
            &bootstrap,
            "SCRAM-SHA-512",
            "admin",
            "admin-secret",
            "user-events",
            "50",
            &ca,
        ],
    );
    python.assert_success("confluent-kafka over SASL_SSL");
    assert!(
        python.stdout.contains("produced 50") && python.stdout.contains("consumed 50"),
        "{}",
        python.stdout
    );

    let consume = ["-C", "-t", "guarded", "-o", "beginning", "-e", "-f", "%s\n"];
    let read = kcat_sasl_ssl(&broker, &pki, ("admin", "admin-secret"), &consume, b"");
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "by admin\nby alice\n"
    );
}
