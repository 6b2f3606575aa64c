//! Consumer groups with real clients against real `odradek broker` processes (issue 5):
//!
//! - three confluent-kafka consumers in one group split a six-partition topic with no
//!   overlap; one leaves (close), one is killed with kill -9, and the survivor takes
//!   over every partition, continuing from the committed offsets; every record produced
//!   is consumed;
//! - kafka-python and aiokafka consumers commit and resume after a consumer restart, a
//!   clean broker restart and a kill -9 of the broker: nothing committed is read again,
//!   nothing is skipped;
//! - on a three-broker cluster, committed offsets survive the loss of the group
//!   coordinator's broker.
//!
//! The members are `tests/python/group_member.py` processes; they print what they
//! were assigned, every record, and each completed synchronous commit, one line each.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use support::{Broker, Port, line_reader, python, python_script, run, run_python, start_cluster};

/// How long any wait in these tests may take before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// One running group member and what it printed so far.
struct Member {
    child: Child,
    lines: Receiver<String>,
    /// The partitions it owns now (its last `assigned` line).
    assignment: Vec<i32>,
    /// Every record it printed: (partition, offset, value).
    records: Vec<(i32, i64, String)>,
    /// Records printed before its last `committed` line.
    committed_records: usize,
    closed: bool,
}

impl Member {
    fn start(client: &str, bootstrap: &str, group: &str, topic: &str, extra: &[&str]) -> Member {
        let mut child = Command::new(python())
            .arg("-u")
            .arg(python_script("group_member.py"))
            .args([
                "consume",
                "--client",
                client,
                "--bootstrap",
                bootstrap,
                "--group",
                group,
                "--topic",
                topic,
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting a group member");
        let lines = line_reader(child.stdout.take().expect("piped"));
        Member {
            child,
            lines,
            assignment: Vec::new(),
            records: Vec::new(),
            committed_records: 0,
            closed: false,
        }
    }

    /// Takes in every line printed so far.
    fn pump(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            let mut words = line.split(' ');
            match words.next() {
                Some("assigned") => {
                    self.assignment = words
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().expect("a partition"))
                        .collect();
                }
                Some("record") => {
                    let partition = words.next().expect("partition").parse().expect("number");
                    let offset = words.next().expect("offset").parse().expect("number");
                    let value = words.next().expect("value").to_string();
                    self.records.push((partition, offset, value));
                }
                Some("committed") => self.committed_records = self.records.len(),
                Some("closed") => self.closed = true,
                _ => eprintln!("member: {line}"),
            }
        }
    }

    fn values(&self) -> BTreeSet<String> {
        self.records.iter().map(|(_, _, v)| v.clone()).collect()
    }

    /// Asks it to leave the group (SIGTERM: it closes its consumer).
    fn leave(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// Waits for the process to end by itself; true if it exited 0.
    fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling") {
                std::thread::sleep(Duration::from_millis(100));
                self.pump();
                return status.success();
            }
            assert!(Instant::now() < deadline, "a member never exited");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pumps every member until `done` holds, or fails after [`PATIENCE`] saying `what`.
fn wait_until(
    members: &mut [&mut Member],
    what: &str,
    mut done: impl FnMut(&[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        for member in members.iter_mut() {
            member.pump();
        }
        if done(members) {
            return;
        }
        if Instant::now() > deadline {
            let state: Vec<String> = members
                .iter()
                .map(|m| {
                    format!(
                        "assignment {:?}, {} records, closed {}",
                        m.assignment,
                        m.records.len(),
                        m.closed
                    )
                })
                .collect();
            panic!("{what} did not happen within {PATIENCE:?}: {state:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes values r<from>..r<from+count-1> to `topic`, record i to partition i % partitions.
fn produce(bootstrap: &str, topic: &str, partitions: i32, from: usize, count: usize) {
    run_python(
        "group_member.py",
        &[
            "produce",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--from",
            &from.to_string(),
            "--count",
            &count.to_string(),
        ],
    )
    .assert_success("producing");
}

fn values(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("r{i}")).collect()
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32, replication_factor: i32) -> bool {
    run(
        &[
            "topics",
            "create",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--replication-factor",
            &replication_factor.to_string(),
        ],
        b"",
    )
    .code
        == Some(0)
}

/// The first offset `member` read of `partition`, if any.
fn first_offset(member: &Member, partition: i32) -> Option<i64> {
    member
        .records
        .iter()
        .find(|(p, _, _)| *p == partition)
        .map(|(_, o, _)| *o)
}

/// The offset after the last record `member` read of `partition` before its last
/// commit (what it committed for it), if it committed any.
fn committed_position(member: &Member, partition: i32) -> Option<i64> {
    member.records[..member.committed_records]
        .iter()
        .filter(|(p, _, _)| *p == partition)
        .map(|(_, o, _)| o + 1)
        .max()
}

#[test]
fn three_confluent_members_split_six_partitions_and_take_over_from_committed_offsets() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    assert!(create_topic(&bootstrap, "orders", 6, 1));
    produce(&bootstrap, "orders", 6, 0, 600);

    // Kafka's default group.initial.rebalance.delay.ms (3 s) lets the three land in
    // one generation.
    let session = ["--session-ms", "6000"];
    let mut a = Member::start("confluent", &bootstrap, "splitters", "orders", &session);
    let mut b = Member::start("confluent", &bootstrap, "splitters", "orders", &session);
    let mut c = Member::start("confluent", &bootstrap, "splitters", "orders", &session);
    wait_until(&mut [&mut a, &mut b, &mut c], "a three-way split", |m| {
        let all: Vec<i32> = m.iter().flat_map(|m| m.assignment.clone()).collect();
        let distinct: BTreeSet<i32> = all.iter().copied().collect();
        m.iter().all(|m| m.assignment.len() == 2) && all.len() == 6 && distinct.len() == 6
    });
    let split: Vec<Vec<i32>> = [&a, &b, &c].iter().map(|m| m.assignment.clone()).collect();
    eprintln!("split: {split:?}");
    wait_until(
        &mut [&mut a, &mut b, &mut c],
        "the first 600 consumed",
        |m| {
            let seen: BTreeSet<String> = m.iter().flat_map(|m| m.values()).collect();
            seen.is_superset(&values(0..600))
        },
    );
    // No overlap: each record was read by the member owning its partition, once.
    for member in [&a, &b, &c] {
        for (partition, _, _) in &member.records {
            assert!(
                member.assignment.contains(partition),
                "a member read partition {partition} it does not own: {:?}",
                member.assignment
            );
        }
    }
    let total: usize = [&a, &b, &c].iter().map(|m| m.records.len()).sum();
    assert_eq!(
        total, 600,
        "every record read exactly once while the split held"
    );

    // a leaves cleanly; b dies without a word (its session, 6 s, runs out).
    a.leave();
    wait_until(&mut [&mut a], "a closing", |m| m[0].closed);
    let b_owned = b.assignment.clone();
    let a_owned = a.assignment_before_close(&split[0]);
    b.kill_9();
    b.pump();
    produce(&bootstrap, "orders", 6, 600, 300);
    wait_until(
        &mut [&mut c],
        "c owning all six partitions and every record",
        |m| {
            let mut seen: BTreeSet<String> = m[0].values();
            seen.extend(a.values());
            seen.extend(b.values());
            m[0].assignment.len() == 6 && seen.is_superset(&values(0..900))
        },
    );

    // c took over from where a and b had committed: nothing committed read again,
    // nothing skipped.
    for (owner, partitions) in [(&a, &a_owned), (&b, &b_owned)] {
        for &partition in partitions {
            let committed = committed_position(owner, partition).unwrap_or(0);
            let read_up_to = owner
                .records
                .iter()
                .filter(|(p, _, _)| *p == partition)
                .map(|(_, o, _)| o + 1)
                .max()
                .unwrap_or(0);
            let resumed = first_offset(&c, partition).expect("c read the partition");
            assert!(
                committed <= resumed && resumed <= read_up_to,
                "partition {partition}: the previous owner committed {committed} and read up to {read_up_to}; c started at {resumed}"
            );
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for member in [&a, &b, &c] {
        for (_, _, value) in &member.records {
            *counts.entry(value.clone()).or_insert(0) += 1;
        }
    }
    let duplicates = counts.values().filter(|&&n| n > 1).count();
    eprintln!(
        "consumed {} distinct of 900, {duplicates} read twice (only what the killed member read after its last commit may be)",
        counts.len()
    );
    assert!(
        counts
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
            .is_superset(&values(0..900))
    );
}

impl Member {
    /// What the member owned before its close revoked everything: `split` unless it
    /// printed another assignment since.
    fn assignment_before_close(&self, split: &[i32]) -> Vec<i32> {
        if self.assignment.is_empty() {
            split.to_vec()
        } else {
            self.assignment.clone()
        }
    }
}

/// A member of `group` that reads exactly `count` records and leaves; returns the
/// values it read.
fn read_and_leave(
    client: &str,
    bootstrap: &str,
    group: &str,
    topic: &str,
    count: usize,
) -> Vec<String> {
    let mut member = Member::start(
        client,
        bootstrap,
        group,
        topic,
        &["--max-records", &count.to_string()],
    );
    assert!(member.wait_exit(), "{client} member failed");
    assert!(member.closed, "{client} member closed its consumer");
    member.records.iter().map(|(_, _, v)| v.clone()).collect()
}

fn resume_through_restarts(client: &str) {
    let topic = format!("resume-{client}");
    let group = format!("resumers-{client}");
    let mut broker = Broker::start_with(
        Port::Free,
        &["--override", "group.initial.rebalance.delay.ms=0"],
    );
    let bootstrap = broker.bootstrap();
    assert!(create_topic(&bootstrap, &topic, 2, 1));
    produce(&bootstrap, &topic, 2, 0, 100);

    // A consumer restart: the second member reads exactly what the first did not.
    let first = read_and_leave(client, &bootstrap, &group, &topic, 40);
    assert!(first.len() >= 40, "{client}: {first:?}");
    let rest = 100 - first.len();
    let second = read_and_leave(client, &bootstrap, &group, &topic, rest);
    let mut all: Vec<String> = first.iter().chain(&second).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        first.len() + second.len(),
        "{client}: something read twice"
    );
    assert_eq!(
        all.into_iter().collect::<BTreeSet<_>>(),
        values(0..100),
        "{client}"
    );

    // A clean broker restart keeps the committed offsets.
    broker.stop();
    broker.restart();
    produce(&bootstrap, &topic, 2, 100, 50);
    let third = read_and_leave(client, &bootstrap, &group, &topic, 50);
    assert_eq!(
        third.into_iter().collect::<BTreeSet<_>>(),
        values(100..150),
        "{client}: after a clean restart only the new records"
    );

    // So does kill -9: acknowledged commits were fsynced.
    broker.kill_9();
    broker.restart();
    produce(&bootstrap, &topic, 2, 150, 50);
    let fourth = read_and_leave(client, &bootstrap, &group, &topic, 50);
    assert_eq!(
        fourth.into_iter().collect::<BTreeSet<_>>(),
        values(150..200),
        "{client}: after kill -9 only the new records"
    );
}

#[test]
fn kafka_python_members_commit_and_resume_through_broker_restarts() {
    resume_through_restarts("kafka-python");
}

#[test]
fn aiokafka_members_commit_and_resume_through_broker_restarts() {
    resume_through_restarts("aiokafka");
}

/// The node id of `group`'s coordinator as `broker` names it, once it names one.
fn coordinator(broker: &Broker, group: &str) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut client = broker.client();
        let request = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
        );
        if let ResponseKind::FindCoordinator(response) =
            client.call(ApiKey::FindCoordinator, 3, &request)
            && response.error_code == 0
        {
            return response.node_id.0;
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn committed_offsets_survive_the_loss_of_the_coordinators_broker() {
    let mut brokers = start_cluster(&[
        "--override",
        "group.initial.rebalance.delay.ms=0",
        "--override",
        "offsets.topic.num.partitions=6",
    ]);
    let bootstrap = brokers
        .iter()
        .map(Broker::bootstrap)
        .collect::<Vec<_>>()
        .join(",");
    // Only the controller creates topics; ask each broker until one accepts.
    let deadline = Instant::now() + PATIENCE;
    while !brokers
        .iter()
        .any(|b| create_topic(&b.bootstrap(), "ledger", 2, 3))
    {
        assert!(Instant::now() < deadline, "the topic was never created");
        std::thread::sleep(Duration::from_millis(200));
    }
    produce(&bootstrap, "ledger", 2, 0, 100);
    let first = read_and_leave("confluent", &bootstrap, "auditors", "ledger", 100);
    assert_eq!(first.into_iter().collect::<BTreeSet<_>>(), values(0..100));

    // The broker that coordinates the group dies; another leads its offsets partition.
    let victim = coordinator(&brokers[0], "auditors");
    let victim_index = usize::try_from(victim - 1).expect("node ids from 1");
    brokers[victim_index].kill_9();
    let survivor = &brokers[(victim_index + 1) % 3];
    let deadline = Instant::now() + PATIENCE;
    while coordinator(survivor, "auditors") == victim {
        assert!(Instant::now() < deadline, "no new coordinator");
        std::thread::sleep(Duration::from_millis(200));
    }
    let survivors = brokers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim_index)
        .map(|(_, b)| b.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    produce(&survivors, "ledger", 2, 100, 50);
    let second = read_and_leave("confluent", &survivors, "auditors", "ledger", 50);
    assert_eq!(
        second.into_iter().collect::<BTreeSet<_>>(),
        values(100..150),
        "the new coordinator resumed the group at its committed offsets"
    );
}
