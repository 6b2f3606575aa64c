//! Debian's kcat (librdkafka 2.0.2, an old client that cannot parse tagged fields in
//! an ApiVersions v3 answer it did not expect) against a real `odradek broker`: it
//! lists metadata (`-L`), produces keyed records (`-P -K`) with every codec, and
//! consumes from the beginning to the end (`-C -e -o beginning`); what it reads is
//! checked by content, and checked against what the Python clients read.
//!
//! kcat is required: if it is missing, the test installs Debian's package when it can
//! (root and apt-get) and fails saying how to install it otherwise.

mod support;

use std::collections::BTreeMap;

use support::{Broker, parse_records, read_topic, run, run_kcat, run_python};

fn create_topic(broker: &Broker, topic: &str, partitions: usize) {
    let bootstrap = broker.bootstrap();
    run_python(
        "admin.py",
        &[
            "--bootstrap",
            &bootstrap,
            "create",
            topic,
            &partitions.to_string(),
        ],
    )
    .assert_success("creating the topic");
}

/// `kcat -b BOOTSTRAP ARGS` with `stdin`; returns its stdout.
fn kcat(broker: &Broker, args: &[&str], stdin: &str) -> String {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["-b", bootstrap.as_str()];
    all.extend_from_slice(args);
    let output = run_kcat(&all, stdin.as_bytes());
    String::from_utf8(output.stdout).expect("kcat prints UTF-8 here")
}

/// One line of `kcat -C -f '%p %o %k %s\n'`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    partition: i32,
    offset: i64,
    key: String,
    value: String,
}

fn consume(broker: &Broker, topic: &str) -> Vec<Line> {
    let out = kcat(
        broker,
        &[
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %k %s\\n",
        ],
        "",
    );
    let mut lines: Vec<Line> = out
        .lines()
        .map(|line| {
            let mut fields = line.splitn(4, ' ');
            let mut next = || {
                fields
                    .next()
                    .unwrap_or_else(|| panic!("short line {line:?}"))
            };
            Line {
                partition: next().parse().expect("partition"),
                offset: next().parse().expect("offset"),
                key: next().to_string(),
                value: next().to_string(),
            }
        })
        .collect();
    // kcat interleaves partitions as they arrive; each partition is in order.
    lines.sort_by_key(|l| (l.partition, l.offset));
    lines
}

/// Input for `kcat -P -K:`: `key-<i mod 5>:value <i>` lines.
fn keyed_input(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("key-{}:value {i}\n", i % 5))
        .collect()
}

/// Every produced line is read back once, each key in one partition, each partition
/// contiguous from 0 and in produce order.
fn assert_keyed_read_back(lines: &[Line], count: usize) {
    assert_eq!(lines.len(), count, "{lines:?}");
    let mut home: BTreeMap<&str, i32> = BTreeMap::new();
    let mut per_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for line in lines {
        let i: usize = line
            .value
            .strip_prefix("value ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected value {line:?}"));
        assert_eq!(line.key, format!("key-{}", i % 5), "{line:?}");
        let partition = *home.entry(line.key.as_str()).or_insert(line.partition);
        assert_eq!(partition, line.partition, "a key stays in one partition");
        per_partition.entry(line.partition).or_default().push(i);
    }
    let mut all: Vec<usize> = Vec::new();
    for (partition, values) in &per_partition {
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} in produce order: {values:?}"
        );
        all.extend(values);
    }
    for (partition, offsets) in lines
        .iter()
        .fold(BTreeMap::<i32, Vec<i64>>::new(), |mut m, l| {
            m.entry(l.partition).or_default().push(l.offset);
            m
        })
    {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {partition} contiguous from 0");
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..count).collect::<Vec<_>>(),
        "each record exactly once"
    );
}

#[test]
fn kcat_lists_broker_and_topic_metadata() {
    let broker = Broker::start();
    let listing = kcat(&broker, &["-L"], "");
    assert!(listing.contains(" 1 brokers:"), "{listing}");
    assert!(
        listing.contains(&format!("broker 1 at 127.0.0.1:{}", broker.port())),
        "{listing}"
    );
    create_topic(&broker, "listed", 3);
    let listing = kcat(&broker, &["-L", "-t", "listed"], "");
    assert!(
        listing.contains("topic \"listed\" with 3 partitions:"),
        "{listing}"
    );
    for partition in 0..3 {
        assert!(
            listing.contains(&format!(
                "partition {partition}, leader 1, replicas: 1, isrs: 1"
            )),
            "{listing}"
        );
    }
}

#[test]
fn kcat_produces_keyed_records_and_consumes_them_from_the_beginning() {
    let broker = Broker::start();
    create_topic(&broker, "keyed", 3);
    kcat(
        &broker,
        &["-P", "-t", "keyed", "-K", ":"],
        &keyed_input(0, 120),
    );
    let lines = consume(&broker, "keyed");
    assert_keyed_read_back(&lines, 120);
    assert!(
        lines.iter().map(|l| l.partition).max() > Some(0),
        "5 keys over 3 partitions use more than one"
    );
    // A second run appends after the first.
    kcat(
        &broker,
        &["-P", "-t", "keyed", "-K", ":"],
        &keyed_input(120, 30),
    );
    assert_keyed_read_back(&consume(&broker, "keyed"), 150);
    // The Python clients read what kcat wrote, at the same offsets.
    let read = read_topic("kafka-python", &broker.bootstrap(), "keyed", 3);
    let lines = consume(&broker, "keyed");
    assert_eq!(read.len(), lines.len());
    for (record, line) in read.iter().zip(&lines) {
        assert_eq!(
            (record.partition, record.offset),
            (line.partition, line.offset)
        );
        assert_eq!(record.key_text().as_deref(), Some(line.key.as_str()));
        assert_eq!(record.value_text(), line.value);
    }
}

#[test]
fn kcat_produces_to_an_explicit_partition_and_auto_creates_topics() {
    let broker = Broker::start_with(support::Port::Free, &["--override", "num.partitions=2"]);
    kcat(
        &broker,
        &["-P", "-t", "auto", "-p", "1", "-K", ":"],
        &keyed_input(0, 20),
    );
    let lines = consume(&broker, "auto");
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().all(|l| l.partition == 1), "{lines:?}");
    let listing = kcat(&broker, &["-L", "-t", "auto"], "");
    assert!(
        listing.contains("topic \"auto\" with 2 partitions:"),
        "{listing}"
    );
}

/// librdkafka 2.0.2 compresses with each codec it enables (only zstd here, see
/// tests/FINDINGS.md), and decodes every codec the Python clients compressed.
#[test]
fn kcat_compressed_batches_both_ways() {
    let broker = Broker::start();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        kcat(
            &broker,
            &["-P", "-t", &topic, "-K", ":", "-z", codec],
            &keyed_input(0, 100),
        );
        assert_keyed_read_back(&consume(&broker, &topic), 100);
        let dir = broker.partition_dir(&topic, 0);
        let dump = run(&["dump-log", dir.to_str().unwrap()], b"").ok().stdout;
        // librdkafka up to 2.11 uses gzip, snappy and lz4 only if the broker serves
        // Produce v0, which Odradek (like Kafka 4) does not: it sends those batches
        // uncompressed ("Broker does not support compression type gzip: not
        // compressing batch"). zstd needs Produce v7 and is used. tests/FINDINGS.md.
        // librdkafka also sends a batch uncompressed when compressing does not make it
        // smaller, as with a batch of one short record (the first record kcat reads
        // may leave alone): only batches of several records are asserted.
        let stored = if codec == "zstd" { "zstd" } else { "none" };
        let batches: Vec<&str> = dump.lines().filter(|l| l.starts_with("batch ")).collect();
        assert!(
            batches
                .iter()
                .filter(|l| !l.contains(" records=1 "))
                .all(|l| l.contains(&format!(" compression={stored} ")))
                && batches
                    .iter()
                    .any(|l| l.contains(&format!(" compression={stored} "))),
            "{topic}: batches stored as {stored}:\n{dump}"
        );

        // kafka-python's compressed batches, read by kcat.
        let topic = format!("python-{codec}");
        let bootstrap = broker.bootstrap();
        let output = run_python(
            "produce.py",
            &[
                "--client",
                "kafka-python",
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--count",
                "100",
                "--compression",
                codec,
                "--linger-ms",
                "50",
            ],
        );
        output.assert_success("kafka-python producing");
        let acked = parse_records(&output.stdout, "ack");
        let lines = consume(&broker, &topic);
        assert_eq!(lines.len(), acked.len());
        for (record, line) in acked.iter().zip(&lines) {
            assert_eq!(
                (record.partition, record.offset),
                (line.partition, line.offset)
            );
            assert_eq!(record.key_text().as_deref(), Some(line.key.as_str()));
            assert_eq!(record.value_text(), line.value);
        }
    }
}
