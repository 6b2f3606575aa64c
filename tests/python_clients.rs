//! Real, unmodified Python Kafka clients against a real `odradek broker` process:
//! kafka-python 3.x (idempotent by default: InitProducerId), confluent-kafka
//! (librdkafka; idempotence on and off, acks all / 1 / 0) and aiokafka (ApiVersions v0
//! probe, fixed old request versions). Producers print every acknowledgement
//! (tests/python/produce.py); consumers assign every partition explicitly from the
//! earliest offset, without a consumer group (tests/python/consume.py), and read up to
//! the end offset the broker reports. What is read must be exactly what was
//! acknowledged: same partition, offset, key and value, each partition contiguous from
//! offset 0 and in produce order.
//!
//! Compressed producers (gzip, snappy, lz4, zstd from each client) show that the broker
//! stores a compressed batch as it came and every client decodes every other's.

mod support;

use std::time::{Duration, Instant};

use support::{
    Broker, Port, Record, assert_same_records, parse_records, read_topic, run, run_python,
};

const CLIENTS: [&str; 3] = ["confluent", "kafka-python", "aiokafka"];
const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];

/// Produces with `tests/python/produce.py`; returns the acknowledged records.
fn produce(
    broker: &Broker,
    client: &str,
    topic: &str,
    count: usize,
    extra: &[&str],
) -> Vec<Record> {
    let bootstrap = broker.bootstrap();
    let count_text = count.to_string();
    let mut args = vec![
        "--client",
        client,
        "--bootstrap",
        &bootstrap,
        "--topic",
        topic,
        "--count",
        &count_text,
    ];
    args.extend_from_slice(extra);
    let output = run_python("produce.py", &args);
    output.assert_success(&format!("{client} producing to {topic} with {extra:?}"));
    let acked = parse_records(&output.stdout, "ack");
    assert_eq!(
        acked.len(),
        count,
        "{client}: every record acknowledged\n{}",
        output.stdout
    );
    acked
}

/// Creates topics through confluent-kafka's AdminClient (CreateTopics).
fn create_topics(broker: &Broker, topics: &[(&str, usize)]) {
    let bootstrap = broker.bootstrap();
    let mut args = vec!["--bootstrap".to_string(), bootstrap, "create".to_string()];
    for (name, partitions) in topics {
        args.push(name.to_string());
        args.push(partitions.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_python("admin.py", &args).assert_success("creating topics");
}

/// Reads `topic` with every client and checks each against `acked`.
fn assert_every_client_reads(broker: &Broker, topic: &str, partitions: usize, acked: &[Record]) {
    for client in CLIENTS {
        let read = read_topic(client, &broker.bootstrap(), topic, partitions);
        assert_same_records(acked, &read, true);
        eprintln!("{client} read {topic}: {} records", read.len());
    }
}

/// The partitions the records landed in, and which keys went where: a key always goes
/// to one partition (every client's default partitioner hashes the key).
fn assert_keys_stick_to_one_partition(acked: &[Record]) {
    let mut home = std::collections::BTreeMap::new();
    for record in acked {
        let previous = home.insert(record.key.clone(), record.partition);
        assert!(
            previous.is_none_or(|p| p == record.partition),
            "key {:?} went to partitions {previous:?} and {}",
            record.key_text(),
            record.partition
        );
    }
}

#[test]
fn kafka_python_idempotent_by_default_round_trips_through_every_client() {
    let broker = Broker::start();
    create_topics(&broker, &[("kp-default", 3)]);
    // No --idempotence: kafka-python 3.x's default (on) asks InitProducerId first.
    let acked = produce(&broker, "kafka-python", "kp-default", 300, &[]);
    assert_keys_stick_to_one_partition(&acked);
    let partitions: std::collections::BTreeSet<i32> = acked.iter().map(|r| r.partition).collect();
    assert!(
        partitions.len() > 1,
        "5 keys over 3 partitions use more than one: {partitions:?}"
    );
    assert_every_client_reads(&broker, "kp-default", 3, &acked);
    assert_batches_have_producer_ids(&broker, "kp-default", 3, true);
}

#[test]
fn confluent_idempotent_acks_all_over_auto_created_partitions() {
    // Auto-created on first use with the broker's num.partitions.
    let broker = Broker::start_with(Port::Free, &["--override", "num.partitions=4"]);
    let acked = produce(
        &broker,
        "confluent",
        "conf-idem",
        1000,
        &["--acks", "all", "--idempotence", "true", "--keys", "7"],
    );
    assert_keys_stick_to_one_partition(&acked);
    assert_every_client_reads(&broker, "conf-idem", 4, &acked);
    assert_batches_have_producer_ids(&broker, "conf-idem", 4, true);
}

#[test]
fn confluent_without_idempotence_acks_1_and_acks_all() {
    let broker = Broker::start();
    create_topics(&broker, &[("conf-acks1", 3), ("conf-acksall", 2)]);
    let acked = produce(
        &broker,
        "confluent",
        "conf-acks1",
        500,
        &["--acks", "1", "--idempotence", "false"],
    );
    assert_every_client_reads(&broker, "conf-acks1", 3, &acked);
    assert_batches_have_producer_ids(&broker, "conf-acks1", 3, false);
    let acked = produce(
        &broker,
        "confluent",
        "conf-acksall",
        500,
        &["--acks", "all", "--idempotence", "false", "--keys", "0"],
    );
    assert_every_client_reads(&broker, "conf-acksall", 2, &acked);
}

/// acks=0: the producer is told nothing, so the records are checked by content once
/// they are all readable.
#[test]
fn confluent_acks_0_records_all_arrive() {
    let broker = Broker::start();
    create_topics(&broker, &[("conf-acks0", 2)]);
    let sent = produce(
        &broker,
        "confluent",
        "conf-acks0",
        400,
        &["--acks", "0", "--idempotence", "false"],
    );
    assert!(
        sent.iter().all(|r| r.offset == -1),
        "acks=0 reports no offsets"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let read = loop {
        let read = read_topic("confluent", &broker.bootstrap(), "conf-acks0", 2);
        if read.len() >= sent.len() || Instant::now() > deadline {
            break read;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_same_records(&sent, &read, false);
}

#[test]
fn aiokafka_produces_and_consumes() {
    let broker = Broker::start();
    create_topics(&broker, &[("aio-default", 2), ("aio-idem", 3)]);
    // aiokafka's defaults (no idempotence) ...
    let acked = produce(&broker, "aiokafka", "aio-default", 300, &["--acks", "1"]);
    assert_every_client_reads(&broker, "aio-default", 2, &acked);
    // ... and its idempotent producer (InitProducerId, acks=all).
    let acked = produce(
        &broker,
        "aiokafka",
        "aio-idem",
        300,
        &["--acks", "all", "--idempotence", "true"],
    );
    assert_every_client_reads(&broker, "aio-idem", 3, &acked);
    assert_batches_have_producer_ids(&broker, "aio-idem", 3, true);
}

/// librdkafka reads with isolation.level=read_committed unless told otherwise, so a
/// wrong last stable offset would hide records from it. consume.py leaves confluent at
/// its default; here the other two clients ask for read_committed explicitly too.
#[test]
fn read_committed_consumers_see_every_record() {
    let broker = Broker::start();
    create_topics(&broker, &[("committed", 2)]);
    let acked = produce(&broker, "kafka-python", "committed", 200, &[]);
    for client in CLIENTS {
        let bootstrap = broker.bootstrap();
        let output = run_python(
            "consume.py",
            &[
                "--client",
                client,
                "--bootstrap",
                &bootstrap,
                "--topic",
                "committed",
                "--partitions",
                "2",
                "--isolation",
                "read_committed",
            ],
        );
        output.assert_success(&format!("{client} with read_committed"));
        assert_same_records(&acked, &parse_records(&output.stdout, "record"), true);
        // The end offsets the clients were told are the high watermarks: nothing is
        // held back as uncommitted (there are no transactions).
        let ends: i64 = output
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("end "))
            .map(|l| l.split(' ').nth(1).unwrap().parse::<i64>().unwrap())
            .sum();
        assert_eq!(
            ends,
            acked.len() as i64,
            "{client}: end offsets add up to what was written"
        );
    }
}

/// Produces `count` records with every codec from `client`, reads each topic back with
/// every client, and checks that the segment holds compressed batches of that codec.
fn compressed_round_trip(client: &str) {
    let broker = Broker::start();
    for codec in CODECS {
        let topic = format!("{client}-{codec}");
        let acked = produce(
            &broker,
            client,
            &topic,
            300,
            &[
                "--compression",
                codec,
                "--value-bytes",
                "200",
                "--linger-ms",
                "50",
                "--keys",
                "3",
            ],
        );
        create_or_check(&broker, &topic);
        assert_every_client_reads(&broker, &topic, 1, &acked);
        let dump = dump_partition(&broker, &topic, 0);
        // librdkafka enables lz4 only if the broker advertises FindCoordinator
        // (tests/FINDINGS.md, finding 2); the broker does since consumer groups, so
        // every client's batches are stored with the codec it chose.
        let stored = codec;
        let batches: Vec<&str> = dump.lines().filter(|l| l.starts_with("batch ")).collect();
        assert!(!batches.is_empty(), "{dump}");
        assert!(
            batches
                .iter()
                .all(|l| l.contains(&format!(" compression={stored} "))),
            "every stored batch of {topic} is {stored}, as the client sent it:\n{dump}"
        );
    }
}

/// Auto-created topics have one partition (the broker default).
fn create_or_check(broker: &Broker, topic: &str) {
    assert!(
        broker.partition_dir(topic, 0).is_dir(),
        "{topic} was auto-created with partition 0"
    );
    assert!(
        !broker.partition_dir(topic, 1).exists(),
        "{topic} has one partition"
    );
}

#[test]
fn compressed_batches_from_confluent() {
    compressed_round_trip("confluent");
}

#[test]
fn compressed_batches_from_kafka_python() {
    compressed_round_trip("kafka-python");
}

#[test]
fn compressed_batches_from_aiokafka() {
    compressed_round_trip("aiokafka");
}

/// `odradek dump-log` of one partition directory of a running broker.
fn dump_partition(broker: &Broker, topic: &str, partition: i32) -> String {
    let dir = broker.partition_dir(topic, partition);
    let dir = dir.to_str().expect("UTF-8 path");
    let dumped = run(&["dump-log", dir], b"").ok();
    dumped.stdout
}

/// Idempotent producers stamp their batches with the producer id InitProducerId gave
/// them; others leave -1.
fn assert_batches_have_producer_ids(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    idempotent: bool,
) {
    for partition in 0..partitions {
        let dump = dump_partition(broker, topic, partition);
        for line in dump.lines().filter(|l| l.starts_with("batch ")) {
            let producer_id: i64 = line
                .split(' ')
                .find_map(|field| field.strip_prefix("producer_id="))
                .unwrap_or_else(|| panic!("no producer_id in {line:?}"))
                .parse()
                .expect("a number");
            if idempotent {
                assert!(
                    producer_id >= 0,
                    "{topic}-{partition}: idempotent batch without a producer id: {line}"
                );
            } else {
                assert_eq!(producer_id, -1, "{topic}-{partition}: {line}");
            }
        }
    }
}

/// `message.timestamp.type=LogAppendTime`, created by confluent-kafka's AdminClient:
/// records sent with a 1970 timestamp by confluent-kafka and kafka-python come back
/// with the broker's time, in the produce response (librdkafka's timestamp type 2,
/// LogAppendTime) and in the records a consumer reads.
#[test]
fn log_append_time_topics_replace_the_producers_time() {
    let broker = Broker::start();
    let before_ms = now_ms();
    let out = run_python(
        "log_append_time.py",
        &["--bootstrap", &broker.bootstrap(), "--topic", "stamped"],
    );
    out.assert_success("log_append_time.py");
    let after_ms = now_ms();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let fields: Vec<[&str; 3]> = lines
        .iter()
        .map(|words| [words[0], words[1], words[2]])
        .collect();
    assert_eq!(
        fields,
        [
            ["produced", "confluent", "2"],
            ["produced", "kafka-python", "-"],
            ["read", "confluent", "2"],
            ["read", "kafka-python", "2"],
        ],
        "{}{}",
        out.stdout,
        out.stderr
    );
    for words in &lines {
        let ms: u128 = words[3].parse().expect("milliseconds");
        assert!(
            (before_ms..=after_ms).contains(&ms),
            "{words:?}: not the broker's time"
        );
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// A compacted topic (issue 18): 100,000 updates over 1,000 keys, the last update of
/// every tenth key a tombstone, written by confluent-kafka and by kafka-python; once
/// the cleaner has run, a fresh consumer of each client reads every key exactly once,
/// with its newest value (a deleted key: its tombstone, kept for
/// `delete.retention.ms`), and nothing else.
#[test]
fn compacted_topics_keep_one_value_per_key_for_every_client() {
    let broker = Broker::start_with(Port::Free, &["--override", "log.cleaner.backoff.ms=200"]);
    for client in ["confluent", "kafka-python"] {
        let topic = format!("compacted-{client}");
        let out = run_python(
            "compacted.py",
            &[
                "--bootstrap",
                &broker.bootstrap(),
                "--topic",
                &topic,
                "--client",
                client,
            ],
        );
        out.assert_success("compacted.py");
        let lines: Vec<&str> = out.stdout.lines().collect();
        // 1,000 keys and the end marker; 100 of the keys end in a tombstone.
        assert_eq!(
            lines,
            [
                "produced 100001",
                "read confluent 1001 1001 0 100 0",
                "read kafka-python 1001 1001 0 100 0",
            ],
            "{client}\n{}{}",
            out.stdout,
            out.stderr
        );
    }
}
