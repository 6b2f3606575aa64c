//! The seed documents' producer examples (shared/seeds/*.txt), copied unchanged into
//! tests/python/seeds/, run against a real `odradek broker`, and their records come
//! back through a consumer that assigns every partition from the earliest offset: same
//! keys, same values, same order, nothing more.
//!
//! The examples connect to `localhost:9092`, so each test runs its broker on
//! 127.0.0.1:9092; they take turns through one lock (tests of one binary run in
//! parallel threads), and a taken port 9092 fails them with a message saying so.
//!
//! Not run here: the seeds' consumer examples. Each one joins a consumer group
//! (`group.id` + `subscribe`) and loops forever; consumer groups are a later issue.
//! Seed 000's combined confluent producer + consumer block is one of them, and seed
//! 004's "Producer Configuration" block names hosts `kafka1..3:9092` that do not exist.

mod support;

use std::process::Command;
use std::sync::Mutex;

use support::{
    Broker, Port, Record, TempDir, python, python_script, read_topic, run_with_patience,
};

/// One broker on port 9092 at a time.
static PORT_9092: Mutex<()> = Mutex::new(());

const SEED_PORT: u16 = 9092;

/// Runs the seed copy `script` unchanged, in an empty working directory, against a
/// fresh broker on 127.0.0.1:9092; returns its stdout and the broker (still running).
fn run_seed(script: &str) -> (String, Broker) {
    let broker = Broker::start_with(Port::Fixed(SEED_PORT), &[]);
    let cwd = TempDir::new("seed-cwd");
    let mut command = Command::new(python());
    command
        .arg("-u")
        .arg(python_script(&format!("seeds/{script}")))
        .current_dir(cwd.path());
    let output = run_with_patience(command, script);
    output.assert_success(script);
    (output.stdout, broker)
}

fn read_back(broker: &Broker, topic: &str) -> Vec<Record> {
    // Auto-created with the broker default num.partitions=1, as Kafka would.
    read_topic("confluent", &broker.bootstrap(), topic, 1)
}

fn text(record: &Record) -> (Option<String>, String) {
    (record.key_text(), record.value_text())
}

fn assert_offsets_from_zero(records: &[Record]) {
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.partition, 0);
        assert_eq!(record.offset, index as i64, "offsets are contiguous from 0");
    }
}

#[test]
fn seed000_kafka_python_uber_data_producer() {
    let _turn = PORT_9092
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (_stdout, broker) = run_seed("seed000_uber_data_producer.py");
    let records = read_back(&broker, "uber_data");
    assert_offsets_from_zero(&records);
    let got: Vec<_> = records.iter().map(text).collect();
    assert_eq!(
        got,
        vec![
            (
                None,
                r#"{"location": "San Francisco", "ride_request": true}"#.to_string()
            ),
            (
                None,
                r#"{"location": "New York", "driver_availability": 10}"#.to_string()
            ),
        ]
    );
}

#[test]
fn seed001_confluent_my_topic_producer_with_delivery_report() {
    let _turn = PORT_9092
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (stdout, broker) = run_seed("seed001_my_topic_producer.py");
    assert_eq!(stdout, "Message delivered to my_topic [0]\n");
    let records = read_back(&broker, "my_topic");
    assert_offsets_from_zero(&records);
    let got: Vec<_> = records.iter().map(text).collect();
    assert_eq!(got, vec![(Some("key".to_string()), "value".to_string())]);
}

/// The two copies of seed 001's JSON producer ("Kafka Producer Example" and the same
/// code without comments under "Full Example Code") print and write the same.
fn assert_example_topic(stdout: &str, broker: &Broker) {
    assert_eq!(
        stdout,
        "Message produced: b'1'\nMessage produced: b'2'\nMessage produced: b'3'\n"
    );
    let records = read_back(broker, "example-topic");
    assert_offsets_from_zero(&records);
    let got: Vec<_> = records.iter().map(text).collect();
    let expected: Vec<_> = (1..=3)
        .map(|n| {
            (
                Some(n.to_string()),
                format!(r#"{{"key": {n}, "value": "Message {n}"}}"#),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn seed001_confluent_kafka_producer_example_json_values() {
    let _turn = PORT_9092
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (stdout, broker) = run_seed("seed001_kafka_producer_example.py");
    assert_example_topic(&stdout, &broker);
}

#[test]
fn seed001_confluent_full_example_producer() {
    let _turn = PORT_9092
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (stdout, broker) = run_seed("seed001_full_example_producer.py");
    assert_example_topic(&stdout, &broker);
}

#[test]
fn seed004_kafka_python_user_events_json_producer() {
    let _turn = PORT_9092
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (stdout, broker) = run_seed("seed004_user_events_producer.py");
    let printed: Vec<String> = (0..100).map(|i| format!("Sent message {i}")).collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), printed);
    let records = read_back(&broker, "user-events");
    assert_eq!(records.len(), 100, "100 messages sent, 100 read back");
    assert_offsets_from_zero(&records);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.key, None);
        // json.dumps of {'user_id': ..., 'action': 'page_view', 'timestamp': time.time()}
        let value = record.value_text();
        let prefix = format!(r#"{{"user_id": "user_{i}", "action": "page_view", "timestamp": "#);
        let timestamp = value
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("record {i} is not the seed's event {i}: {value}"));
        let seconds: f64 = timestamp
            .parse()
            .unwrap_or_else(|_| panic!("record {i}: timestamp {timestamp:?} is not a number"));
        assert!(
            seconds > 1.5e9,
            "record {i}: timestamp {seconds} is a Unix time"
        );
    }
}
