//! `odradek groups` against a real broker: a group with offsets committed by
//! kafka-python, then list, describe (committed offset, log end and lag, exact),
//! a live member and its assignment, reset-offsets (dry run, then --execute), delete,
//! and the errors (a group with members, a group that does not exist, no broker).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Broker, Port, Run, free_ports, python, run};

/// `odradek groups ARGS --bootstrap-server BOOTSTRAP`.
fn groups(bootstrap: &str, args: &[&str]) -> Run {
    let mut all = vec!["groups"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap-server", bootstrap]);
    run(&all, b"")
}

/// The rows of the table in `stdout` whose header starts with `header` (cells split
/// at whitespace), up to the next blank line. Panics if there is no such table.
fn table(stdout: &str, header: &[&str]) -> Vec<Vec<String>> {
    let mut lines = stdout.lines().skip_while(|line| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        !cells.starts_with(header)
    });
    assert!(
        lines.next().is_some(),
        "no table headed {header:?} in:\n{stdout}"
    );
    lines
        .take_while(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The describe command's per-partition table.
fn offsets_table(stdout: &str) -> Vec<Vec<String>> {
    table(stdout, &["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET"])
}

/// Rows as written in a test: cells separated by spaces.
fn rows(expected: &[&str]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|row| row.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Commits `offsets` ((partition, offset)s of `topic`) for `group` the way a
/// consumer outside any generation does, with kafka-python.
fn commit_with_kafka_python(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let script = r#"
import sys
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
bootstrap, group, topic = sys.argv[1:4]
consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
offsets = {}
for spec in sys.argv[4:]:
    partition, offset = spec.split("=")
    fields = len(OffsetAndMetadata._fields)
    value = OffsetAndMetadata(int(offset), "", -1) if fields == 3 else OffsetAndMetadata(int(offset), "")
    offsets[TopicPartition(topic, int(partition))] = value
consumer.commit(offsets)
consumer.close()
print("committed")
"#;
    let specs: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}={o}")).collect();
    let mut command = Command::new(python());
    command
        .arg("-u")
        .arg("-c")
        .arg(script)
        .args([bootstrap, group, topic])
        .args(&specs);
    support::run_with_patience(command, "kafka-python commit").assert_success("the commit");
}

/// A kafka-python consumer subscribed to `topic` in `group` (client id
/// `live-reader`, no commits of its own) that stays until its stdin closes.
struct LiveMember {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// Everything it printed after its assignment, and its stderr, once it exits.
    output: Option<std::thread::JoinHandle<(String, String)>>,
}

impl LiveMember {
    /// Starts the member and returns once it has an assignment (printed as
    /// `assigned [partitions]`, returned too).
    fn join(bootstrap: &str, group: &str, topic: &str) -> (LiveMember, String) {
        let script = r#"
import sys
from kafka import KafkaConsumer
bootstrap, group, topic = sys.argv[1:4]
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         enable_auto_commit=False, client_id="live-reader")
while not consumer.assignment():
    consumer.poll(timeout_ms=200)
print("assigned", sorted(p.partition for p in consumer.assignment()), flush=True)
sys.stdin.read()
consumer.close()
print("closed", flush=True)
"#;
        let mut child = Command::new(python())
            .arg("-u")
            .arg("-c")
            .arg(script)
            .args([bootstrap, group, topic])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the kafka-python member");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut stderr = child.stderr.take().expect("piped");
        let mut line = String::new();
        // Bounded by the script itself: kafka-python gives up on a dead broker.
        stdout.read_line(&mut line).expect("reading the member");
        let output = std::thread::spawn(move || {
            let (mut rest, mut errors) = (String::new(), String::new());
            let _ = stdout.read_to_string(&mut rest);
            let _ = stderr.read_to_string(&mut errors);
            (rest, errors)
        });
        let member = LiveMember {
            child: Some(child),
            stdin,
            output: Some(output),
        };
        assert!(
            line.starts_with("assigned"),
            "the member printed {line:?} instead of its assignment"
        );
        (member, line.trim().to_string())
    }

    /// Closes its stdin: it leaves the group (LeaveGroup) and exits.
    fn leave(mut self) {
        let mut stdin = self.stdin.take().expect("still in the group");
        let _ = stdin.flush();
        drop(stdin);
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("polling the member") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the member did not leave within a minute"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let (stdout, stderr) = self.output.take().expect("once").join().expect("reader");
        assert!(status.success(), "the member failed ({status}): {stderr}");
        assert_eq!(stdout.trim(), "closed", "{stderr}");
    }
}

impl Drop for LiveMember {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn odradek_groups_lists_describes_resets_and_deletes() {
    let broker = Broker::start_with(
        Port::Free,
        &["--override", "group.initial.rebalance.delay.ms=0"],
    );
    let bootstrap = broker.bootstrap();
    run(
        &[
            "topics",
            "create",
            "--topic",
            "ledger",
            "--partitions",
            "2",
            "--bootstrap-server",
            &bootstrap,
        ],
        b"",
    )
    .ok();
    // Five records on partition 0, three on partition 1.
    for (partition, lines) in [("0", "a\nb\nc\nd\ne\n"), ("1", "f\ng\nh\n")] {
        run(
            &[
                "produce",
                "--topic",
                "ledger",
                "--partition",
                partition,
                "--bootstrap-server",
                &bootstrap,
            ],
            lines.as_bytes(),
        )
        .ok();
    }
    // Nothing yet.
    assert_eq!(groups(&bootstrap, &["list"]).ok().stdout, "");
    commit_with_kafka_python(&bootstrap, "auditors", "ledger", &[(0, 2), (1, 3)]);

    // A group created by commits alone has no protocol type.
    let listed = groups(&bootstrap, &["list"]).ok();
    assert_eq!(
        table(&listed.stdout, &["GROUP", "STATE", "PROTOCOL-TYPE"]),
        rows(&["auditors Empty -"]),
        "{}",
        listed.stdout
    );

    let described = groups(&bootstrap, &["describe", "auditors"]).ok().stdout;
    assert!(
        described.contains("Consumer group 'auditors' has no active members."),
        "{described}"
    );
    assert!(
        described.contains("Group 'auditors' is Empty (coordinator: broker 1,"),
        "{described}"
    );
    let before = rows(&[
        "auditors ledger 0 2 5 3 - - -",
        "auditors ledger 1 3 3 0 - - -",
    ]);
    assert_eq!(offsets_table(&described), before, "{described}");
    assert!(
        !described.contains("#PARTITIONS"),
        "no members: {described}"
    );
    // kafka-consumer-groups' spelling says the same.
    let kafka_style = groups(&bootstrap, &["--describe", "--group", "auditors"]).ok();
    assert_eq!(offsets_table(&kafka_style.stdout), before);

    // A live member: it owns both partitions, and the group can be neither reset nor
    // deleted under it.
    let (member, assigned) = LiveMember::join(&bootstrap, "auditors", "ledger");
    assert_eq!(assigned, "assigned [0, 1]");
    let described = groups(&bootstrap, &["describe", "auditors"]).ok().stdout;
    assert!(
        described.contains("Group 'auditors' is Stable (coordinator: broker 1, protocol type: consumer, assignor: range, members: 1)."),
        "{described}"
    );
    let offsets = offsets_table(&described);
    assert_eq!(offsets.len(), 2, "{described}");
    for (row, expected) in offsets.iter().zip(&before) {
        assert_eq!(row[..6], expected[..6], "{described}");
        assert!(row[6].starts_with("live-reader-"), "{described}");
        assert_eq!(row[7..], ["/127.0.0.1", "live-reader"], "{described}");
    }
    let members = table(&described, &["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID"]);
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(members[0][1], offsets[0][6], "{described}");
    assert_eq!(
        members[0][2..],
        ["/127.0.0.1", "live-reader", "2", "ledger(0,1)"],
        "{described}"
    );
    let listed = groups(&bootstrap, &["--list"]).ok().stdout;
    assert_eq!(
        table(&listed, &["GROUP"]),
        rows(&["auditors Stable consumer"])
    );
    let refused = groups(
        &bootstrap,
        &[
            "reset-offsets",
            "auditors",
            "--topic",
            "ledger",
            "--to-earliest",
            "--execute",
        ],
    )
    .failed();
    assert_eq!(
        refused.stderr.trim(),
        "odradek: error: Assignments can only be reset if the group 'auditors' is inactive, but the current state is Stable."
    );
    let refused = groups(&bootstrap, &["delete", "auditors"]).failed();
    assert_eq!(
        refused.stderr.trim(),
        "odradek: error: cannot delete: group 'auditors' has active members, stop its consumers first (NON_EMPTY_GROUP (68))"
    );
    member.leave();
    let described = groups(&bootstrap, &["describe", "auditors"]).ok().stdout;
    assert_eq!(offsets_table(&described), before, "{described}");

    // The dry run (Kafka's command line) prints the plan and commits nothing.
    let plan = groups(
        &bootstrap,
        &[
            "--group",
            "auditors",
            "--reset-offsets",
            "--to-earliest",
            "--topic",
            "ledger",
        ],
    )
    .ok()
    .stdout;
    assert_eq!(
        table(&plan, &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]),
        rows(&["auditors ledger 0 0", "auditors ledger 1 0"]),
        "{plan}"
    );
    assert!(plan.contains("Dry run: nothing was committed"), "{plan}");
    let described = groups(&bootstrap, &["describe", "auditors"]).ok().stdout;
    assert_eq!(offsets_table(&described), before, "{described}");

    // --execute commits; describe shows the new offsets and lags.
    for (target, expected) in [
        (
            &["--to-earliest"][..],
            [
                "auditors ledger 0 0 5 5 - - -",
                "auditors ledger 1 0 3 3 - - -",
            ],
        ),
        (
            &["--to-latest"][..],
            [
                "auditors ledger 0 5 5 0 - - -",
                "auditors ledger 1 3 3 0 - - -",
            ],
        ),
        // Kept within each partition's log: partition 1 ends at 3.
        (
            &["--to-offset", "4"][..],
            [
                "auditors ledger 0 4 5 1 - - -",
                "auditors ledger 1 3 3 0 - - -",
            ],
        ),
    ] {
        let mut args = vec![
            "reset-offsets",
            "auditors",
            "--topic",
            "ledger",
            "--execute",
        ];
        args.extend_from_slice(target);
        let reset = groups(&bootstrap, &args).ok();
        assert!(
            reset
                .stdout
                .contains("Committed the new offsets of group 'auditors'."),
            "{}",
            reset.stdout
        );
        let described = groups(&bootstrap, &["describe", "--group", "auditors"])
            .ok()
            .stdout;
        assert_eq!(offsets_table(&described), rows(&expected), "{target:?}");
    }

    // Deleted: gone from the list; describing or deleting it again is an error.
    let deleted = groups(&bootstrap, &["delete", "auditors"]).ok();
    assert_eq!(
        deleted.stdout.trim(),
        "Deletion of requested consumer groups ('auditors') was successful."
    );
    assert_eq!(groups(&bootstrap, &["list"]).ok().stdout, "");
    let missing = groups(&bootstrap, &["describe", "auditors"]).failed();
    assert_eq!(
        missing.stderr.trim(),
        "odradek: error: Consumer group 'auditors' does not exist."
    );
    let missing = groups(&bootstrap, &["delete", "auditors"]).failed();
    assert_eq!(
        missing.stderr.trim(),
        "odradek: error: cannot delete: group 'auditors' does not exist (GROUP_ID_NOT_FOUND (69))"
    );
}

#[test]
fn odradek_groups_usage_errors_and_no_broker() {
    // Nothing listens on a port that was just free.
    let nowhere = format!("127.0.0.1:{}", free_ports(1)[0]);
    for (args, error) in [
        (&["describe"][..], "describe needs a group"),
        (&["frob"][..], "unknown action 'frob'"),
        (&["list", "auditors"][..], "list takes no group"),
        (&["reset-offsets", "g", "--to-latest"][..], "needs --topic"),
        (
            &["reset-offsets", "g", "--topic", "t"][..],
            "needs --to-earliest, --to-latest or --to-offset N",
        ),
        (
            &["list"][..],
            &format!("cannot reach a broker at {nowhere}"),
        ),
        (
            &["describe", "g"][..],
            &format!("cannot reach a broker at {nowhere}"),
        ),
    ] {
        let failed = groups(&nowhere, args).failed();
        assert!(
            failed.stderr.starts_with("odradek: error: ") && failed.stderr.contains(error),
            "{args:?}: {}",
            failed.stderr
        );
        assert_eq!(failed.stderr.trim().lines().count(), 1, "{}", failed.stderr);
    }
}
