//! Crashes and disk corruption with real processes: a real `odradek broker`, a real
//! confluent-kafka producer, `kill -9`, bytes flipped in the segment files on disk.
//!
//! - `kill_9_during_an_acks_all_stream_loses_no_acknowledged_record`: every record the
//!   producer was told is written (acks=all) is there after the broker is killed and
//!   restarted, at the offset it was told, once, in order; whatever else is there
//!   (written but not yet acknowledged when the broker died) is a whole record.
//! - `flipped_bytes_in_the_active_segment_tail_are_cut_at_restart_*`: the broker
//!   truncates the corrupt tail, serves every batch before it, keeps accepting writes,
//!   and `odradek dump-log` on a copy of the damaged file reports where it was.
//! - `a_torn_tail_is_cut_and_nothing_acknowledged_is_lost`: half a batch at the end
//!   (a write cut short) is dropped, every acknowledged record stays.
//!
//! Hostile bytes on the socket (garbage, a half-sent frame, a 2 GiB length prefix) are
//! tested in tests/frontend.rs, against the same binary.
//!
//! The kill moments are drawn from a seed printed by the test; set `ODRADEK_SEED` to
//! rerun one.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use support::{
    Broker, Record, TempDir, active_segment, assert_same_records, line_reader, parse_records,
    python, python_script, read_topic, run, run_python, sequence_of,
};

/// A small seeded generator (xorshift64*), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("ODRADEK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_nanos() as u64
            });
        eprintln!("seed {seed} (rerun with ODRADEK_SEED={seed})");
        Rng(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

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

/// The value of a record crash_producer.py wrote: `<i>:crash:xxx...`, 100 bytes.
fn assert_whole_crash_record(record: &Record, count: u64) {
    let value = record.value_text();
    let sequence = sequence_of(record);
    assert!(sequence < count, "record {record:?}: sequence out of range");
    let prefix = format!("{sequence}:crash:");
    assert_eq!(value.len(), 100, "whole value: {value:?}");
    assert!(value.starts_with(&prefix), "whole value: {value:?}");
    assert!(
        value[prefix.len()..].bytes().all(|b| b == b'x'),
        "whole value: {value:?}"
    );
    assert_eq!(
        record.key_text().as_deref(),
        Some(format!("key-{}", sequence % 16).as_str()),
        "the key that goes with {sequence}"
    );
}

#[test]
fn kill_9_during_an_acks_all_stream_loses_no_acknowledged_record() {
    const COUNT: u64 = 20_000;
    const KILLS: usize = 2;
    let mut rng = Rng::from_env_or_clock();
    let mut broker = Broker::start();
    create_topic(&broker, "crash", 3);

    let mut producer = Command::new(python())
        .arg("-u")
        .arg(python_script("crash_producer.py"))
        .args(["--bootstrap", &broker.bootstrap(), "--topic", "crash"])
        .args(["--count", &COUNT.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running crash_producer.py");
    let lines = line_reader(producer.stdout.take().expect("piped"));
    let producer_stderr = line_reader(producer.stderr.take().expect("piped"));
    let mut output: Vec<String> = Vec::new();
    let mut acks_seen = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut next_kill_at = 1_000 + rng.below(4_000);
    let mut kills = 0;
    let finished = loop {
        assert!(
            Instant::now() < deadline,
            "the producer did not finish within 300 s; last lines: {:?}",
            &output[output.len().saturating_sub(5)..]
        );
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if line.starts_with("ack ") {
                    acks_seen += 1;
                }
                let done = line.starts_with("produced ");
                output.push(line);
                if done {
                    break true;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break false,
        }
        if kills < KILLS && acks_seen >= next_kill_at {
            // A random moment after the Nth acknowledgement.
            std::thread::sleep(Duration::from_millis(rng.below(40)));
            eprintln!("kill -9 after {acks_seen} acknowledgements");
            broker.kill_9();
            kills += 1;
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            broker.restart();
            next_kill_at = acks_seen + 1_000 + rng.below(4_000);
        }
    };
    let status = producer.wait().expect("waiting for the producer");
    let stderr: Vec<String> = producer_stderr.try_iter().collect();
    assert!(
        finished && status.success(),
        "the producer ended badly ({status}); stderr:\n{}",
        stderr.join("\n")
    );
    assert_eq!(kills, KILLS, "the stream was long enough for every kill");
    let summary = output.last().expect("a summary line");
    eprintln!("producer: {summary}");

    let acked = parse_records(&output.join("\n"), "ack");
    let failed = output.iter().filter(|l| l.starts_with("failed ")).count();
    assert_eq!(
        failed, 0,
        "librdkafka gave up on records although the broker came back: {summary}"
    );
    assert_eq!(acked.len() as u64, COUNT, "every record acknowledged once");

    let read = read_topic("confluent", &broker.bootstrap(), "crash", 3);
    let by_place: BTreeMap<(i32, i64), &Record> =
        read.iter().map(|r| ((r.partition, r.offset), r)).collect();
    for record in &acked {
        let found = by_place
            .get(&(record.partition, record.offset))
            .unwrap_or_else(|| panic!("acknowledged record lost: {record:?}"));
        assert_eq!(*found, record, "the acknowledged record is at its offset");
    }
    let mut seen = BTreeSet::new();
    let mut per_partition: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for record in &read {
        assert_whole_crash_record(record, COUNT);
        let sequence = sequence_of(record);
        assert!(
            seen.insert(sequence),
            "record {sequence} is in the log twice (idempotence must drop retries)"
        );
        per_partition
            .entry(record.partition)
            .or_default()
            .push(sequence);
    }
    for (partition, sequences) in &per_partition {
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} is in produce order"
        );
    }
    assert_eq!(
        read.len() as u64,
        COUNT,
        "nothing but the acknowledged records"
    );
    // Offsets are contiguous from 0 in each partition (read_topic reads to the end).
    assert_same_records(&acked, &read, true);
}

/// One batch in a segment file, found by walking the length fields (independently of
/// the broker's own scanner).
#[derive(Clone, Copy, Debug)]
struct RawBatch {
    position: u64,
    base_offset: i64,
    size: u64,
}

fn walk_batches(bytes: &[u8]) -> Vec<RawBatch> {
    let mut batches = Vec::new();
    let mut position = 0usize;
    while position + 12 <= bytes.len() {
        let base_offset = i64::from_be_bytes(bytes[position..position + 8].try_into().unwrap());
        let length = i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap());
        let size = 12 + length as usize;
        assert!(
            position + size <= bytes.len(),
            "a clean segment has whole batches"
        );
        batches.push(RawBatch {
            position: position as u64,
            base_offset,
            size: size as u64,
        });
        position += size;
    }
    assert_eq!(position, bytes.len());
    batches
}

/// Writes `count` records in each of `runs` producer runs (so the log has several
/// batches), numbered on from `first`.
fn produce_in_runs(
    broker: &Broker,
    topic: &str,
    first: usize,
    runs: usize,
    count: usize,
) -> Vec<Record> {
    let mut acked = Vec::new();
    for run_index in 0..runs {
        let bootstrap = broker.bootstrap();
        let output = run_python(
            "produce.py",
            &[
                "--client",
                "confluent",
                "--bootstrap",
                &bootstrap,
                "--topic",
                topic,
                "--count",
                &count.to_string(),
                "--first",
                &(first + run_index * count).to_string(),
                "--acks",
                "all",
                "--linger-ms",
                "0",
            ],
        );
        output.assert_success("producing");
        acked.extend(parse_records(&output.stdout, "ack"));
    }
    acked
}

fn dump_log(path: &Path) -> support::Run {
    run(&["dump-log", path.to_str().expect("UTF-8 path")], b"")
}

/// Stops the broker (`clean`: SIGTERM, else kill -9), flips a byte in the records of
/// the active segment's last batch, restarts, and checks what the issue promises.
fn flipped_tail(clean: bool) {
    let mut broker = Broker::start();
    create_topic(&broker, "flip", 1);
    let acked = produce_in_runs(&broker, "flip", 0, 3, 40);
    if clean {
        broker.stop();
    } else {
        broker.kill_9();
    }
    let segment = active_segment(&broker.partition_dir("flip", 0));
    let mut bytes = std::fs::read(&segment).expect("reading the segment");
    let batches = walk_batches(&bytes);
    assert!(batches.len() >= 3, "several batches: {batches:?}");
    let last = *batches.last().unwrap();
    // A byte inside the last batch's records (past the 61-byte header): its CRC fails.
    let flip_at = (last.position + 61 + (last.size - 61) / 2) as usize;
    bytes[flip_at] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("writing the damaged segment");
    let evidence = TempDir::new("damaged-copy");
    let copy = evidence.path().join(segment.file_name().unwrap());
    std::fs::copy(&segment, &copy).expect("copying the damaged segment");

    // dump-log on the copy names the batch, the reason and what follows.
    let dumped = dump_log(&copy);
    assert_eq!(
        dumped.code,
        Some(3),
        "dump-log exits 3 on corruption\n{}",
        dumped.stdout
    );
    let expected = format!("CORRUPT at byte {}: crc mismatch: stored ", last.position);
    assert!(dumped.stdout.contains(&expected), "{}", dumped.stdout);
    let following = bytes.len() as u64 - last.position;
    assert!(
        dumped.stdout.contains(&format!(
            "; {following} bytes from byte {} to the end ({}) are not valid batches",
            last.position,
            bytes.len()
        )),
        "{}",
        dumped.stdout
    );
    assert_eq!(
        dumped
            .stdout
            .lines()
            .filter(|l| l.starts_with("batch "))
            .count(),
        batches.len() - 1,
        "every batch before the damaged one is listed"
    );

    broker.restart();
    let survivors: Vec<Record> = acked
        .iter()
        .filter(|r| r.offset < last.base_offset)
        .cloned()
        .collect();
    assert!(!survivors.is_empty());
    let read = read_topic("confluent", &broker.bootstrap(), "flip", 1);
    assert_eq!(
        read, survivors,
        "every batch before the corrupt one is served, nothing after it"
    );
    // The broker cut the file where the corruption began ...
    let cut = std::fs::metadata(&segment).expect("the segment").len();
    assert_eq!(cut, last.position, "the corrupt tail was truncated");
    // ... and goes on taking writes, from the offset the cut left.
    let more = produce_in_runs(&broker, "flip", 1000, 1, 25);
    assert_eq!(more[0].offset, last.base_offset);
    let read = read_topic("confluent", &broker.bootstrap(), "flip", 1);
    let mut expected = survivors;
    expected.extend(more);
    assert_eq!(read, expected);
    let clean_now = dump_log(&broker.partition_dir("flip", 0)).ok();
    assert!(
        !clean_now.stdout.contains("CORRUPT"),
        "{}",
        clean_now.stdout
    );
}

#[test]
fn flipped_bytes_in_the_active_segment_tail_are_cut_at_restart_after_kill_9() {
    flipped_tail(false);
}

#[test]
fn flipped_bytes_in_the_active_segment_tail_are_cut_at_restart_after_sigterm() {
    flipped_tail(true);
}

#[test]
fn a_torn_tail_is_cut_and_nothing_acknowledged_is_lost() {
    let mut broker = Broker::start();
    create_topic(&broker, "torn", 1);
    let acked = produce_in_runs(&broker, "torn", 0, 2, 30);
    broker.kill_9();
    let segment = active_segment(&broker.partition_dir("torn", 0));
    let mut bytes = std::fs::read(&segment).expect("reading the segment");
    let clean_len = bytes.len() as u64;
    let first = walk_batches(&bytes)[0];
    // The first 40 bytes of a batch: a write the crash cut short.
    let torn: Vec<u8> = bytes[first.position as usize..first.position as usize + 40].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&segment, &bytes).expect("writing the torn segment");
    let dumped = dump_log(&segment);
    assert_eq!(dumped.code, Some(3), "{}", dumped.stdout);
    assert!(
        dumped
            .stdout
            .contains(&format!("CORRUPT at byte {clean_len}: ")),
        "{}",
        dumped.stdout
    );
    broker.restart();
    let read = read_topic("confluent", &broker.bootstrap(), "torn", 1);
    assert_same_records(&acked, &read, true);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), clean_len);
    let more = produce_in_runs(&broker, "torn", 1000, 1, 10);
    assert_eq!(more[0].offset, acked.len() as i64);
}

/// `odradek dump-log` on a live broker's data directory changes nothing there.
#[test]
fn dump_log_reads_a_running_brokers_data_directory_without_touching_it() {
    let broker = Broker::start();
    create_topic(&broker, "live", 2);
    produce_in_runs(&broker, "live", 0, 1, 50);
    let listing = |dir: &Path| -> Vec<String> {
        let mut names = Vec::new();
        for entry in walk(dir) {
            names.push(entry);
        }
        names.sort();
        names
    };
    let before = listing(&broker.data_dir());
    let dumped = dump_log(&broker.data_dir()).ok();
    // Each partition directory, the metadata log's included.
    for partition in ["__cluster_metadata-0", "live-0", "live-1"] {
        assert!(
            dumped
                .stdout
                .contains(&format!("/{partition}/00000000000000000000.log\n")),
            "{partition} is dumped: {}",
            dumped.stdout
        );
    }
    assert!(dumped.stdout.contains("summary: "), "{}", dumped.stdout);
    assert_eq!(
        listing(&broker.data_dir()),
        before,
        "no file created or removed"
    );
    let with_records = run(
        &[
            "dump-log",
            "--print-records",
            broker.partition_dir("live", 0).to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    assert!(
        with_records.stdout.contains("| offset=0 "),
        "{}",
        with_records.stdout
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listing") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
