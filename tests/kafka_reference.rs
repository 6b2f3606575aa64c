//! Apache Kafka itself, the reference Odradek is measured and compared against: the
//! broker of the pinned kafka_2.13 jar (tests/java/pom.xml), started by
//! `tests/java/kafka-server` in KRaft combined mode. This smoke test is what the
//! benchmark (bench/versus-kafka.sh) and the differential tests stand on: one node
//! starts from a fresh directory, serves Kafka's own tools, and stops.
//!
//! ```text
//!  KafkaServer::start(1) ──► kafka-server start ──► StorageTool format, kafka.Kafka
//!  kafka-topics.sh --create ─► kafka-console-producer.sh ─► kafka-console-consumer.sh
//!  KafkaServer::stop() ──► SIGTERM, controlled shutdown
//! ```
//!
//! Needs a JDK and Maven (or the jars already in target/kafka-jars): tests/support/java.rs.

mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use support::java::{KafkaServer, kafka_tool};

/// Runs Kafka's `script` and asserts it exited 0.
fn tool_ok(script: &str, args: &[&str], stdin: &[u8]) -> String {
    let output = kafka_tool(script, args, stdin);
    output.assert_success(&format!("{script} {}", args.join(" ")));
    output.stdout
}

#[test]
fn apache_kafka_starts_serves_the_console_tools_and_stops() {
    let started = Instant::now();
    let mut kafka = KafkaServer::start(1, &["log.flush.interval.messages=1"]);
    let bootstrap = kafka.bootstrap().to_string();
    eprintln!("Apache Kafka served clients after {:?}", started.elapsed());

    let created = tool_ok(
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--create",
            "--topic",
            "reference",
            "--partitions",
            "1",
        ],
        b"",
    );
    assert!(created.contains("Created topic reference."), "{created}");

    tool_ok(
        "kafka-console-producer.sh",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "reference",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        b"k1:one\nk2:two\nk3:three\n",
    );

    let consumed = tool_ok(
        "kafka-console-consumer.sh",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "reference",
            "--from-beginning",
            "--max-messages",
            "3",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=:",
        ],
        b"",
    );
    let records: Vec<&str> = consumed.lines().collect();
    assert_eq!(records, ["k1:one", "k2:two", "k3:three"], "{consumed}");

    // The extra property reached the broker: Kafka logs its configuration at start.
    let log = std::fs::read_to_string(kafka.node_dir(1).join("server.log")).expect("server.log");
    assert!(
        log.contains("log.flush.interval.messages = 1\n"),
        "Kafka did not take log.flush.interval.messages=1"
    );

    let pid = std::fs::read_to_string(kafka.node_dir(1).join("pid")).expect("pid file");
    kafka.stop();
    let alive = Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .expect("running kill -0");
    assert!(
        !alive.success(),
        "Kafka (pid {}) still runs after stop",
        pid.trim()
    );
    eprintln!("the whole test took {:?}", started.elapsed());
}
