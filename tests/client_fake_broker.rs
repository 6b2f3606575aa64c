//! The client side on its own: `odradek` commands against a fake broker (see
//! `support/fake_broker.rs`), so version negotiation, pipelining and the benchmark's
//! counting are tested without depending on the real broker's state.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::fake_broker::{FakeBroker, FakeOptions};
use support::run;

/// The value of `key: value` on the line of `text` starting with `key:`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no `{key}:` line in:\n{text}"))
}

#[test]
fn api_versions_falls_back_when_the_broker_knows_only_v2() {
    let fake = FakeBroker::start(FakeOptions {
        api_versions_max: 2,
        ..FakeOptions::default()
    });
    let address = fake.address();
    let result = run(
        &[
            "bench",
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "fallback",
            "--records",
            "2500",
            "--batch-records",
            "100",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&result.stdout, "records"),
        "2500 sent, 2500 acknowledged, 0 failed"
    );
    let seen = fake.stats.api_versions_seen.lock().unwrap().clone();
    assert_eq!(
        &seen[..2],
        &[3, 2],
        "v3 first, then the broker's highest: {seen:?}"
    );
    assert_eq!(fake.stats.records_produced.load(Ordering::Relaxed), 2500);
}

#[test]
fn bench_produce_pipelines_and_counts_latency_per_request() {
    let fake = FakeBroker::start(FakeOptions {
        produce_delay: Duration::from_millis(20),
        ..FakeOptions::default()
    });
    let address = fake.address();
    let result = run(
        &[
            "bench",
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "pipelined",
            "--records",
            "4050",
            "--batch-records",
            "100",
            "--in-flight",
            "4",
            "--record-size",
            "50",
        ],
        b"",
    )
    .ok();
    // 40 full batches and one of 50: every record counted once.
    assert_eq!(
        field(&result.stdout, "records"),
        "4050 sent, 4050 acknowledged, 0 failed"
    );
    assert!(
        field(&result.stdout, "bytes").starts_with("202500 of record values"),
        "{}",
        result.stdout
    );
    assert_eq!(fake.stats.records_produced.load(Ordering::Relaxed), 4050);
    assert_eq!(fake.stats.produce_requests.load(Ordering::Relaxed), 41);
    let outstanding = fake.stats.max_outstanding.load(Ordering::Relaxed);
    assert!(
        outstanding >= 2,
        "requests were not pipelined (at most {outstanding} outstanding)"
    );
    assert!(
        outstanding <= 4,
        "more than --in-flight requests outstanding: {outstanding}"
    );
    // Every request waited the fake's 20 ms before its answer.
    let latency = field(
        &result.stdout,
        "latency ms (each request, send to ack, counted for every record in it)",
    );
    let p50: f64 = latency
        .split(", ")
        .find_map(|part| part.strip_prefix("p50 "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no p50 in {latency}"));
    assert!(p50 >= 20.0, "p50 {p50} ms is below the fake's delay");
}

#[test]
fn bench_produce_with_several_connections_and_a_rate_limit() {
    let fake = FakeBroker::start(FakeOptions::default());
    let address = fake.address();
    let result = run(
        &[
            "bench",
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "paced",
            "--records",
            "3000",
            "--batch-records",
            "100",
            "--connections",
            "3",
            "--throughput",
            "10000",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&result.stdout, "records"),
        "3000 sent, 3000 acknowledged, 0 failed"
    );
    // 3000 records at 10000/s take at least ~0.3 s.
    let elapsed: f64 = field(&result.stdout, "elapsed")
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!(elapsed >= 0.25, "rate limit ignored: {elapsed} s");
}

#[test]
fn bench_produce_for_a_duration() {
    let fake = FakeBroker::start(FakeOptions::default());
    let address = fake.address();
    let result = run(
        &[
            "bench",
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "timed",
            "--duration",
            "0.5",
            "--batch-records",
            "100",
            "--throughput",
            "20000",
        ],
        b"",
    )
    .ok();
    let records = field(&result.stdout, "records");
    let sent: u64 = records.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(
        records,
        format!("{sent} sent, {sent} acknowledged, 0 failed")
    );
    // About 0.5 s at 20000 records/s: up to 10000 and the batches in flight; fewer on
    // a machine too busy to keep the pace.
    assert!(
        (1_000..=12_000).contains(&sent),
        "{sent} records in 0.5 s at 20000/s"
    );
    assert_eq!(fake.stats.records_produced.load(Ordering::Relaxed), sent);
    assert!(
        result
            .stdout
            .contains("latency ms from the scheduled send time"),
        "{}",
        result.stdout
    );
}

#[test]
fn bench_consume_reads_to_the_end_offset() {
    let fake = FakeBroker::start(FakeOptions {
        log_end_offset: 100_000,
        ..FakeOptions::default()
    });
    fake.stats
        .topics
        .lock()
        .unwrap()
        .insert("log".to_string(), 2);
    let address = fake.address();
    let result = run(
        &[
            "bench",
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "log",
            "--fetch-bytes",
            "300000",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        field(&result.stdout, "records"),
        "200000 consumed of 200000 wanted"
    );
    let result = run(
        &[
            "bench",
            "consume",
            "--bootstrap-server",
            &address,
            "--topic",
            "log",
            "--records",
            "1500",
            "--decode",
        ],
        b"",
    )
    .ok();
    assert!(
        field(&result.stdout, "records").ends_with("consumed of 1500 wanted"),
        "{}",
        result.stdout
    );
}

#[test]
fn console_producer_sends_every_line() {
    let fake = FakeBroker::start(FakeOptions::default());
    fake.stats
        .topics
        .lock()
        .unwrap()
        .insert("lines".to_string(), 3);
    let address = fake.address();
    let input: String = (0..5000).map(|i| format!("key-{i}:value-{i}\n")).collect();
    run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "lines",
            "--key-separator",
            ":",
        ],
        input.as_bytes(),
    )
    .ok();
    assert_eq!(fake.stats.records_produced.load(Ordering::Relaxed), 5000);
    run(
        &[
            "produce",
            "--bootstrap-server",
            &address,
            "--topic",
            "lines",
            "--acks",
            "0",
        ],
        b"a\nb\nc\n",
    )
    .ok();
    // acks=0 gets no answer; the fake counts what arrived before the producer exited.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fake.stats.records_produced.load(Ordering::Relaxed) < 5003
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fake.stats.records_produced.load(Ordering::Relaxed), 5003);
}

#[test]
fn unreachable_broker_is_a_clear_error() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let result = run(&["topics", "list", "--bootstrap-server", &address], b"").failed();
    assert!(
        result
            .stderr
            .contains(&format!("cannot reach a broker at {address}")),
        "{}",
        result.stderr
    );
}

/// CPU seconds (user + system) of this process and of its waited-for children, from
/// `/proc/self/stat` (fields utime, stime, cutime, cstime, in clock ticks of 1/100 s).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // fields[0] is the state (field 3 of the line): utime is field 14, so index 11.
    let ticks = 100.0;
    (
        (fields[11] + fields[12]) / ticks,
        (fields[13] + fields[14]) / ticks,
    )
}

/// How fast the benchmark client itself is, against a fake broker that answers at
/// once: not a test of anything but the client. Run it with
/// `cargo test --release -p odradek --test client_fake_broker -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run by hand in release mode"]
fn client_capacity() {
    let fake = FakeBroker::start(FakeOptions {
        log_end_offset: 20_000_000,
        ..FakeOptions::default()
    });
    fake.stats
        .topics
        .lock()
        .unwrap()
        .insert("capacity".to_string(), 1);
    let address = fake.address();
    for (label, args) in [
        (
            "produce",
            vec![
                "bench",
                "produce",
                "--bootstrap-server",
                &address,
                "--topic",
                "capacity",
                "--records",
                "10000000",
                "--record-size",
                "100",
                "--batch-records",
                "1000",
            ],
        ),
        (
            "produce at 50000 records/s",
            vec![
                "bench",
                "produce",
                "--bootstrap-server",
                &address,
                "--topic",
                "capacity",
                "--throughput",
                "50000",
                "--duration",
                "3",
                "--batch-records",
                "100",
                "--in-flight",
                "64",
            ],
        ),
        (
            "consume",
            vec![
                "bench",
                "consume",
                "--bootstrap-server",
                &address,
                "--topic",
                "capacity",
            ],
        ),
        (
            "consume --decode",
            vec![
                "bench",
                "consume",
                "--bootstrap-server",
                &address,
                "--topic",
                "capacity",
                "--records",
                "5000000",
                "--decode",
            ],
        ),
    ] {
        let (own_before, children_before) = cpu_seconds();
        let started = std::time::Instant::now();
        let result = run(&args, b"").ok();
        let wall = started.elapsed().as_secs_f64();
        let (own_after, children_after) = cpu_seconds();
        println!("== bench {label}\n{}", result.stdout);
        println!(
            "client (odradek bench) CPU: {:.2} s over {wall:.2} s wall ({:.0}% of one core); fake broker CPU: {:.2} s\n",
            children_after - children_before,
            100.0 * (children_after - children_before) / wall,
            own_after - own_before
        );
    }
}
