//! `odradek topics`, `produce`, `consume` and `bench` against the real `odradek broker`.

mod support;

use std::collections::BTreeMap;

use support::{Broker, bootstrap_list, run, start_cluster};

fn topics(broker: &Broker, args: &[&str]) -> support::Run {
    let address = broker.address();
    let mut all = vec!["topics"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap-server", &address]);
    run(&all, b"")
}

/// The value of `key: value` on the line of `text` starting with `key:`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no `{key}:` line in:\n{text}"))
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let broker = Broker::start();
    // The seed's kafka-topics.sh command, program name swapped, replication factor 1.
    let created = topics(
        &broker,
        &[
            "--create",
            "--topic",
            "user-events",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
    )
    .ok();
    assert_eq!(created.stdout, "Created topic user-events.\n");
    topics(
        &broker,
        &[
            "create",
            "--topic",
            "orders",
            "--config",
            "retention.ms=60000",
        ],
    )
    .ok();

    let listed = topics(&broker, &["--list"]).ok();
    assert_eq!(listed.stdout, "orders\nuser-events\n");

    let described = topics(&broker, &["--describe", "--topic", "user-events"]).ok();
    let lines: Vec<&str> = described.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", described.stdout);
    assert!(
        lines[0].starts_with("Topic: user-events\tTopicId: "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: "),
        "{}",
        lines[0]
    );
    let topic_id = lines[0]
        .split('\t')
        .nth(1)
        .unwrap()
        .trim_start_matches("TopicId: ");
    assert_eq!(topic_id.len(), 22, "Kafka's base64 topic id: {topic_id}");
    assert_ne!(topic_id, "AAAAAAAAAAAAAAAAAAAAAA");
    for (partition, line) in lines[1..].iter().enumerate() {
        assert_eq!(
            *line,
            format!("\tTopic: user-events\tPartition: {partition}\tLeader: 1\tReplicas: 1\tIsr: 1")
        );
    }
    let described = topics(&broker, &["describe", "--topic", "orders"]).ok();
    assert!(
        described.stdout.contains("retention.ms=60000"),
        "{}",
        described.stdout
    );
    // Without --topic: every topic.
    let described = topics(&broker, &["describe"]).ok();
    assert_eq!(
        described
            .stdout
            .lines()
            .filter(|l| l.starts_with("Topic: "))
            .count(),
        2
    );

    topics(
        &broker,
        &["--alter", "--topic", "user-events", "--partitions", "5"],
    )
    .ok();
    let described = topics(&broker, &["describe", "--topic", "user-events"]).ok();
    assert!(
        described.stdout.contains("PartitionCount: 5"),
        "{}",
        described.stdout
    );
    assert!(
        described.stdout.contains("\tPartition: 4\t"),
        "{}",
        described.stdout
    );
    let shrink = topics(
        &broker,
        &["alter", "--topic", "user-events", "--partitions", "2"],
    )
    .failed();
    assert!(
        shrink.stderr.contains("INVALID_PARTITIONS (37)"),
        "{}",
        shrink.stderr
    );

    let again = topics(&broker, &["create", "--topic", "orders"]).failed();
    assert!(
        again.stderr.contains("TOPIC_ALREADY_EXISTS (36)"),
        "{}",
        again.stderr
    );
    topics(&broker, &["create", "--topic", "orders", "--if-not-exists"]).ok();

    let deleted = topics(&broker, &["--delete", "--topic", "orders"]).ok();
    assert_eq!(deleted.stdout, "");
    let listed = topics(&broker, &["list"]).ok();
    assert_eq!(listed.stdout, "user-events\n");
    let missing = topics(&broker, &["delete", "--topic", "orders"]).failed();
    assert!(
        missing.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION (3)"),
        "{}",
        missing.stderr
    );
    topics(&broker, &["delete", "--topic", "orders", "--if-exists"]).ok();
    let missing = topics(&broker, &["describe", "--topic", "orders"]).failed();
    assert!(
        missing.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION (3)"),
        "{}",
        missing.stderr
    );
}

#[test]
fn replication_factor_two_is_refused_clearly_on_one_broker() {
    let broker = Broker::start();
    let address = broker.address();
    // Exactly the seed's command with the program name swapped.
    let refused = run(
        &[
            "topics",
            "--create",
            "--bootstrap-server",
            &address,
            "--topic",
            "user-events",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
        ],
        b"",
    )
    .failed();
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .contains("create topic user-events: INVALID_REPLICATION_FACTOR (38)"),
        "{}",
        refused.stderr
    );
    let listed = topics(&broker, &["list"]).ok();
    assert_eq!(listed.stdout, "");
}

#[test]
fn bad_flags_are_usage_errors() {
    let broker = Broker::start();
    let missing_topic = topics(&broker, &["create"]).failed();
    assert_eq!(missing_topic.code, Some(2), "{}", missing_topic.stderr);
    let no_action = topics(&broker, &["--topic", "t"]).failed();
    assert_eq!(no_action.code, Some(2), "{}", no_action.stderr);
}

#[test]
fn keyed_records_round_trip_in_order_per_partition() {
    let broker = Broker::start();
    let address = broker.address();
    topics(
        &broker,
        &["create", "--topic", "events", "--partitions", "4"],
    )
    .ok();
    let records = 2000;
    let input: String = (0..records)
        .map(|i| format!("user-{}:event-{i}\n", i % 37))
        .collect();
    run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "events",
            "--key-separator",
            ":",
        ],
        input.as_bytes(),
    )
    .ok();
    let consumed = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "events",
            "--from-beginning",
            "-e",
            "--print-partition",
            "--print-offset",
            "--print-key",
        ],
        b"",
    )
    .ok();
    assert!(
        consumed
            .stderr
            .contains(&format!("Processed a total of {records} messages")),
        "{}",
        consumed.stderr
    );
    let mut by_partition: BTreeMap<i32, Vec<(i64, String, usize)>> = BTreeMap::new();
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    for line in consumed.stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line}");
        let partition: i32 = fields[0]
            .strip_prefix("Partition:")
            .unwrap()
            .parse()
            .unwrap();
        let offset: i64 = fields[1].strip_prefix("Offset:").unwrap().parse().unwrap();
        let key = fields[2].to_string();
        let index: usize = fields[3].strip_prefix("event-").unwrap().parse().unwrap();
        assert_eq!(
            key,
            format!("user-{}", index % 37),
            "key and value stay together"
        );
        let previous = partition_of_key.insert(key.clone(), partition);
        assert!(
            previous.is_none_or(|p| p == partition),
            "key {key} in two partitions"
        );
        by_partition
            .entry(partition)
            .or_default()
            .push((offset, key, index));
    }
    let total: usize = by_partition.values().map(Vec::len).sum();
    assert_eq!(total, records);
    assert!(
        by_partition.len() >= 3,
        "37 keys over 4 partitions use most of them"
    );
    for (partition, rows) in &by_partition {
        for (expected_offset, (offset, _, _)) in rows.iter().enumerate() {
            assert_eq!(
                *offset, expected_offset as i64,
                "partition {partition}: offsets 0, 1, 2, ..."
            );
        }
        assert!(
            rows.windows(2).all(|w| w[0].2 < w[1].2),
            "partition {partition}: records in the order they were produced"
        );
    }
}

#[test]
fn one_partition_from_an_offset_with_a_limit() {
    let broker = Broker::start();
    let address = broker.address();
    topics(
        &broker,
        &["create", "--topic", "numbers", "--partitions", "2"],
    )
    .ok();
    let input: String = (0..100).map(|i| format!("{i}\n")).collect();
    run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "numbers",
            "--partition",
            "1",
        ],
        input.as_bytes(),
    )
    .ok();
    let consumed = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "numbers",
            "--partition",
            "1",
            "--offset",
            "90",
            "-e",
        ],
        b"",
    )
    .ok();
    let expected: String = (90..100).map(|i| format!("{i}\n")).collect();
    assert_eq!(consumed.stdout, expected);
    let consumed = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "numbers",
            "--from-beginning",
            "--max-messages",
            "5",
        ],
        b"",
    )
    .ok();
    assert_eq!(consumed.stdout, "0\n1\n2\n3\n4\n");
    let empty = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "numbers",
            "--partition",
            "0",
            "--from-beginning",
            "-e",
        ],
        b"",
    )
    .ok();
    assert_eq!(empty.stdout, "");
    let bad = run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "numbers",
            "--partition",
            "7",
        ],
        b"x\n",
    )
    .failed();
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
}

#[test]
fn acks_zero_one_and_idempotent_all_deliver() {
    let broker = Broker::start();
    let address = broker.address();
    topics(
        &broker,
        &["create", "--topic", "modes", "--partitions", "1"],
    )
    .ok();
    for (acks, extra) in [("1", None), ("all", Some("--idempotent")), ("0", None)] {
        let mut args = vec![
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "modes",
            "--acks",
            acks,
        ];
        args.extend(extra);
        let input: String = (0..50).map(|i| format!("acks-{acks}-{i}\n")).collect();
        run(&args, input.as_bytes()).ok();
    }
    // acks=0 is not acknowledged, so wait for its records to show up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let consumed = run(
            &[
                "consume",
                "--bootstrap-server",
                &address,
                "--topic",
                "modes",
                "--from-beginning",
                "-e",
            ],
            b"",
        )
        .ok();
        let lines: Vec<&str> = consumed.stdout.lines().collect();
        if lines.len() == 150 || std::time::Instant::now() >= deadline {
            assert_eq!(lines.len(), 150, "{}", consumed.stdout);
            assert_eq!(lines[0], "acks-1-0");
            assert_eq!(lines[50], "acks-all-0");
            assert_eq!(lines[149], "acks-0-49");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn idempotent_needs_acks_all() {
    let broker = Broker::start();
    let address = broker.address();
    let refused = run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "t",
            "--idempotent",
            "--acks",
            "1",
        ],
        b"x\n",
    )
    .failed();
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
}

#[test]
fn bench_produce_then_consume_counts_agree() {
    let broker = Broker::start();
    let address = broker.address();
    let produced = run(
        &[
            "bench",
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "bench",
            "--partitions",
            "2",
            "--records",
            "20500",
            "--batch-records",
            "1000",
            "--in-flight",
            "4",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&produced.stdout, "records"),
        "20500 sent, 20500 acknowledged, 0 failed",
        "{}",
        produced.stdout
    );
    assert!(
        field(&produced.stdout, "bytes").starts_with("2050000 of record values"),
        "{}",
        produced.stdout
    );
    assert!(field(&produced.stdout, "throughput").ends_with("MB/s of values (1 MB = 10^6 bytes)"));
    assert!(produced.stdout.contains("p99.9"), "{}", produced.stdout);
    let consumed = run(
        &[
            "bench",
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "bench",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&consumed.stdout, "records"),
        "20500 consumed of 20500 wanted",
        "{}",
        consumed.stdout
    );
    let decoded = run(
        &[
            "bench",
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "bench",
            "--decode",
            "--records",
            "5000",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&decoded.stdout, "records"),
        "5000 consumed of 5000 wanted",
        "{}",
        decoded.stdout
    );
    // The records are those the benchmark counted: distinct 100-byte values.
    let sample = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "bench",
            "--partition",
            "0",
            "--from-beginning",
            "--max-messages",
            "3",
        ],
        b"",
    )
    .ok();
    let values: Vec<&str> = sample.stdout.lines().collect();
    assert_eq!(values.len(), 3);
    assert_ne!(values[0], values[1]);
}

/// On a cluster, a topic the benchmark creates appears in Metadata a moment before its
/// leaders serve it (the benchmark waits, as clients retry), and each partition's log
/// holds a leader-change marker that takes an offset and is no record (the consumer
/// reads to the end offsets and counts records, not offsets). Both failed before
/// (issue 23's two tool bugs).
#[test]
fn bench_on_a_cluster_waits_for_new_leaders_and_counts_records_not_offsets() {
    let brokers = start_cluster(&["--override", "default.replication.factor=3"]);
    let bootstrap = bootstrap_list(&brokers);
    let produced = run(
        &[
            "bench",
            "produce",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "fresh",
            "--partitions",
            "3",
            "--records",
            "3000",
            "--batch-records",
            "100",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&produced.stdout, "records"),
        "3000 sent, 3000 acknowledged, 0 failed",
        "{}",
        produced.stdout
    );
    let consumed = run(
        &[
            "bench",
            "consume",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "fresh",
            "--decode",
        ],
        b"",
    )
    .ok();
    let records = field(&consumed.stdout, "records");
    assert!(
        records.starts_with("3000 consumed of "),
        "{}",
        consumed.stdout
    );
    let wanted: u64 = records
        .trim_start_matches("3000 consumed of ")
        .trim_end_matches(" wanted")
        .parse()
        .unwrap();
    assert!(
        wanted > 3000,
        "every partition has a leader marker taking an offset: {}",
        consumed.stdout
    );
}

#[test]
fn consumer_waits_for_records_and_stops_on_its_own() {
    let broker = Broker::start();
    let address = broker.address();
    topics(
        &broker,
        &["create", "--topic", "later", "--partitions", "1"],
    )
    .ok();
    // Following an empty topic from offset 0: the consumer long-polls until records come.
    let consumer = std::thread::spawn({
        let address = address.clone();
        move || {
            run(
                &[
                    "consume",
                    "--bootstrap-server",
                    &address,
                    "--topic",
                    "later",
                    "--offset",
                    "0",
                    "--max-messages",
                    "3",
                ],
                b"",
            )
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "later",
        ],
        b"one\ntwo\nthree\nfour\n",
    )
    .ok();
    let consumed = consumer.join().unwrap().ok();
    assert_eq!(consumed.stdout, "one\ntwo\nthree\n");
    // --timeout-ms ends a consumer that has nothing more to read.
    let started = std::time::Instant::now();
    let consumed = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "later",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ],
        b"",
    )
    .ok();
    assert_eq!(consumed.stdout, "one\ntwo\nthree\nfour\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn console_tool_properties_work_like_kafkas() {
    let broker = Broker::start();
    let address = broker.address();
    topics(
        &broker,
        &["create", "--topic", "props", "--partitions", "1"],
    )
    .ok();
    run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "props",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        b"k1:v1\nk2:v2\n",
    )
    .ok();
    let consumed = run(
        &[
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "props",
            "--from-beginning",
            "-e",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=|",
        ],
        b"",
    )
    .ok();
    assert_eq!(consumed.stdout, "k1|v1\nk2|v2\n");
}
