//! Three real `odradek broker` processes on 127.0.0.1 form a cluster (issue 4):
//! a topic with replication factor 3, an idempotent acks=all confluent-kafka producer
//! streaming into it, and a kill -9 of a partition leader part-way through. Every
//! acknowledged record must be read back afterwards exactly once, at the offset it
//! was acknowledged at, in order; the cluster must elect a new leader within
//! seconds. Then all three brokers stop and start again, and the data is still there.

mod support;

use std::time::{Duration, Instant};

use support::{Broker, run, run_python, start_cluster};

const RECORDS: usize = 20_000;
const KILL_AT: usize = 8_000;

/// The number after `"key": ` in a flat JSON object.
fn number(json: &str, key: &str) -> f64 {
    let pattern = format!("\"{key}\": ");
    let start = json
        .find(&pattern)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pattern.len();
    let text: String = json[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    text.parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// The leader of each partition, from `odradek topics describe`, once all have one.
fn leaders(bootstrap: &str, topic: &str) -> Option<Vec<i32>> {
    let described = run(
        &[
            "topics",
            "describe",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
        ],
        b"",
    );
    if described.code != Some(0) {
        return None;
    }
    let leaders: Vec<i32> = described
        .stdout
        .lines()
        .filter_map(|line| line.split("Leader: ").nth(1))
        .filter_map(|rest| rest.split('\t').next()?.parse().ok())
        .collect();
    (leaders.len() == 3).then_some(leaders)
}

fn wait_for<T>(what: &str, patience: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: gave up after {patience:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_leader_killed_mid_stream_loses_no_acknowledged_record() {
    let mut brokers: Vec<Broker> = start_cluster(&[]);
    let bootstrap = brokers
        .iter()
        .map(Broker::bootstrap)
        .collect::<Vec<_>>()
        .join(",");

    // Only the controller creates topics; ask each broker until one accepts.
    wait_for("creating the topic", Duration::from_secs(30), || {
        brokers.iter().find_map(|broker| {
            let created = run(
                &[
                    "topics",
                    "create",
                    "--bootstrap-server",
                    &broker.bootstrap(),
                    "--topic",
                    "orders",
                    "--partitions",
                    "3",
                    "--replication-factor",
                    "3",
                ],
                b"",
            );
            (created.code == Some(0)).then_some(())
        })
    });
    let before = wait_for(
        "leaders for every partition",
        Duration::from_secs(30),
        || leaders(&brokers[0].bootstrap(), "orders"),
    );

    let victim = before[0];
    let victim_index = usize::try_from(victim - 1).unwrap();
    let pid = brokers[victim_index].pid().to_string();
    let records = RECORDS.to_string();
    let kill_at = KILL_AT.to_string();
    let output = run_python(
        "cluster_failover.py",
        &[&bootstrap, "orders", &records, &kill_at, &pid],
    );
    output.assert_success("the failover stream");
    let report = output.stdout.trim();
    eprintln!("failover report: {report}");
    assert_eq!(number(report, "acknowledged") as usize, RECORDS, "{report}");
    assert_eq!(number(report, "unflushed"), 0.0, "{report}");
    assert_eq!(number(report, "missing"), 0.0, "{report}");
    assert_eq!(number(report, "duplicates"), 0.0, "{report}");
    assert_eq!(number(report, "moved"), 0.0, "{report}");
    assert_eq!(number(report, "out_of_order"), 0.0, "{report}");
    assert!(
        number(report, "seconds_to_drain_after_kill") < 15.0,
        "the cluster took too long to take writes again: {report}"
    );
    // The killed process is gone; the survivors elected someone else.
    brokers[victim_index].reap_killed();
    let survivor = &brokers[(victim_index + 1) % 3];
    let after = wait_for("a new leader", Duration::from_secs(10), || {
        leaders(&survivor.bootstrap(), "orders").filter(|l| l[0] != victim && l[0] >= 0)
    });
    assert_ne!(after[0], victim);

    // The killed broker comes back; then the whole cluster stops and starts again.
    brokers[victim_index].restart();
    for broker in &mut brokers {
        broker.stop();
    }
    for broker in &mut brokers {
        broker.restart();
    }
    wait_for(
        "leaders after a full restart",
        Duration::from_secs(30),
        || leaders(&brokers[0].bootstrap(), "orders"),
    );
    let output = run_python(
        "cluster_failover.py",
        &["--read-only", &bootstrap, "orders", &records],
    );
    output.assert_success("reading back after the restart");
    let report = output.stdout.trim();
    assert_eq!(number(report, "consumed") as usize, RECORDS, "{report}");
    assert_eq!(number(report, "duplicates"), 0.0, "{report}");
}
