//! Kafka's Java client (kafka-clients 4.1.1) as applications use it, against real
//! `odradek broker` processes (issue 16 part 3): the program of `tests/java/clients`
//! runs one scenario per subcommand and prints a JSON report; these tests assert on it.
//!
//! ```text
//!  test ──► Broker::start() / start_cluster()
//!       ──► java_client(["produce-codecs", BOOTSTRAP, ...]) ──► one JSON line ──► asserts
//! ```
//!
//! One broker: an idempotent acks=all producer with each codec and record headers,
//! everything read back; a group with the default assignors (range, eager) and with
//! cooperative-sticky (KIP-429); static membership (KIP-345); commitSync/commitAsync,
//! seek and offsetsForTimes; the Admin calls Kafka's tools make. Three brokers: the
//! same producer and Admin calls with replication factor 3, a cooperative rebalance, a
//! static member's restart, commits and seek, and a producer and a consumer that keep
//! going while partition 0's leader is killed with -9, and offsetsForTimes on a
//! replicated topic, past the leader-change markers (tests/FINDINGS.md J1); a consumer
//! that reads through a leader change validates its position with OffsetForLeaderEpoch
//! (KIP-320) and reads on exactly where it was.

mod support;

use std::collections::BTreeSet;

use support::clients::{java_client, report};
use support::json::Json;
use support::{Broker, bootstrap_list, start_cluster, start_cluster_logging};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn run(args: &[&str]) -> Json {
    let output = java_client(args);
    report(&output, &format!("java client {}", args[0]))
}

/// Every codec: 40 records acknowledged and read back with the same key, value,
/// headers (a repeated key and a null value among them), partition and offset.
fn assert_codecs(report: &Json, replicated: bool) {
    for codec in CODECS {
        let codec_report = &report[codec];
        assert_eq!(codec_report["errors"].array(), &[], "{codec}: {report}");
        assert_eq!(codec_report["acknowledged"].int(), 40, "{codec}: {report}");
        assert_eq!(codec_report["read"].int(), 40, "{codec}: {report}");
        assert_eq!(codec_report["matched"].int(), 40, "{codec}: {report}");
        if !replicated {
            // A fresh single-broker partition starts at offset 0; a replicated one
            // starts after its leader-change control record (tests/FINDINGS.md).
            assert_eq!(
                codec_report["first_offsets"].ints(),
                vec![0, 0],
                "{codec}: {report}"
            );
        }
    }
}

/// The data batches `odradek dump-log` finds in a partition directory, one line each.
fn data_batches(broker: &Broker, topic: &str, partition: i32) -> Vec<String> {
    let dir = broker.partition_dir(topic, partition);
    let dump = support::run(&["dump-log", dir.to_str().expect("UTF-8 path")], b"").ok();
    dump.stdout
        .lines()
        .filter(|line| line.starts_with("batch ") && line.contains(" control=false"))
        .map(str::to_string)
        .collect()
}

#[test]
fn java_producer_every_codec_with_headers_is_read_back_exactly() {
    let broker = Broker::start();
    let report = run(&["produce-codecs", &broker.bootstrap(), "codecs", "1"]);
    assert_codecs(&report, false);
    // On disk, every batch is in the codec the producer was given, with its producer
    // id (idempotence), and its CRC holds.
    for codec in CODECS {
        let topic = format!("codecs-{codec}");
        for partition in 0..2 {
            let batches = data_batches(&broker, &topic, partition);
            assert!(!batches.is_empty(), "{topic}-{partition}");
            for batch in &batches {
                assert!(batch.contains(&format!(" compression={codec} ")), "{batch}");
                assert!(batch.contains(" crc=ok "), "{batch}");
                assert!(!batch.contains(" producer_id=-1 "), "{batch}");
            }
        }
    }
}

fn partitions(value: &Json) -> BTreeSet<i64> {
    value.ints().into_iter().collect()
}

/// A alone had all four partitions; after B joined, each has two and together all four.
fn assert_split(report: &Json) {
    assert_eq!(report["a_alone"].ints(), vec![0, 1, 2, 3], "{report}");
    assert!(report["split"].boolean(), "{report}");
    let a = partitions(&report["a_after"]);
    let b = partitions(&report["b_after"]);
    assert_eq!(a.len(), 2, "{report}");
    assert_eq!(b.len(), 2, "{report}");
    assert!(a.is_disjoint(&b), "{report}");
    assert_eq!(
        a.union(&b).copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "{report}"
    );
    assert!(
        report["generation_after"].int() > report["generation_alone"].int(),
        "{report}"
    );
}

/// The events of a rebalance listener with one kind (`revoked`, `assigned`, `lost`).
fn events<'a>(events: &'a Json, kind: &str) -> Vec<&'a Json> {
    events
        .array()
        .iter()
        .map(|event| &event[kind])
        .filter(|value| !value.is_null())
        .collect()
}

/// The Java client's default assignors (range first, then cooperative-sticky) agree on
/// range, an eager protocol: when B joins, A gives up every partition, then gets two back.
#[test]
fn java_group_with_the_default_assignors_rebalances_eagerly() {
    let broker = Broker::start();
    let report = run(&["group-rebalance", &broker.bootstrap(), "eager", "default"]);
    assert_split(&report);
    let after = &report["a_events_after_b"];
    let revoked = events(after, "revoked");
    assert_eq!(
        revoked.first().map(|r| r.ints()),
        Some(vec![0, 1, 2, 3]),
        "{report}"
    );
    assert!(events(after, "lost").is_empty(), "{report}");
    let assigned = events(after, "assigned");
    assert_eq!(
        assigned.last().map(|a| partitions(a)),
        Some(partitions(&report["a_after"])),
        "{report}"
    );
}

/// KIP-429: with cooperative-sticky, A keeps what stays and gives up only the two
/// partitions that move to B; B is handed exactly those.
fn assert_cooperative(report: &Json) {
    assert_split(report);
    let after = &report["a_events_after_b"];
    let moved: BTreeSet<i64> = events(after, "revoked")
        .iter()
        .flat_map(|r| r.ints())
        .collect();
    assert_eq!(moved, partitions(&report["b_after"]), "{report}");
    assert!(events(after, "lost").is_empty(), "{report}");
    // Nothing A keeps was ever revoked, and it was given nothing new.
    let kept = partitions(&report["a_after"]);
    assert!(moved.is_disjoint(&kept), "{report}");
    for assigned in events(after, "assigned") {
        assert!(assigned.ints().is_empty(), "{report}");
    }
    let given_to_b: BTreeSet<i64> = events(&report["b_events"], "assigned")
        .iter()
        .flat_map(|a| a.ints())
        .collect();
    assert_eq!(given_to_b, partitions(&report["b_after"]), "{report}");
}

#[test]
fn java_group_with_cooperative_sticky_moves_only_what_moves() {
    let broker = Broker::start();
    let report = run(&[
        "group-rebalance",
        &broker.bootstrap(),
        "cooperative",
        "cooperative-sticky",
    ]);
    assert_cooperative(&report);
}

/// KIP-345: a static member that restarts within session.timeout.ms gets its partitions
/// back without a rebalance: the other member sees no callback, the generation stays.
#[test]
fn java_static_member_restarts_without_a_rebalance() {
    let broker = Broker::start();
    let report = run(&["static-member", &broker.bootstrap(), "static"]);
    assert_static_member(&report);
}

fn assert_static_member(report: &Json) {
    assert!(report["split"].boolean(), "{report}");
    assert!(report["rejoined"].boolean(), "{report}");
    assert_eq!(report["one_before"].array().len(), 2, "{report}");
    assert_eq!(report["one_after"], report["one_before"], "{report}");
    assert_eq!(report["two_after"], report["two_before"], "{report}");
    assert_eq!(
        report["generation_after"], report["generation_before"],
        "{report}"
    );
    assert_eq!(
        report["rejoined_generation"], report["generation_before"],
        "{report}"
    );
    assert_eq!(report["two_events_during_restart"].array(), &[], "{report}");
    assert!(report["rejoin_ms"].int() < 10_000, "{report}");
}

/// commitSync and commitAsync offsets (with their metadata) are what a new member of
/// the group and the Admin client see, and where the new member starts; seek,
/// offsetsForTimes, seekToBeginning/End, beginningOffsets and endOffsets. Record i is
/// in partition i % 2, stamped i seconds after a base ten minutes ago.
fn assert_commits(report: &Json, replicated: bool) {
    assert_eq!(report["first_read"].int(), 20, "{report}");
    assert_eq!(report["commit_async"].text(), "ok 4", "{report}");
    let committed = &report["committed_seen"];
    assert_eq!(committed["0"].int(), 6, "{report}");
    assert_eq!(committed["1"].int(), 4, "{report}");
    assert_eq!(committed["metadata_0"].text(), "sync", "{report}");
    assert_eq!(committed["metadata_1"].text(), "async", "{report}");
    assert_eq!(report.at("second_starts_at.0").int(), 6, "{report}");
    assert_eq!(report.at("second_starts_at.1").int(), 4, "{report}");
    assert_eq!(report.at("admin_offsets.0").int(), 6, "{report}");
    assert_eq!(report.at("admin_offsets.1").int(), 4, "{report}");
    assert!(
        report.at("after_seek.0").text().starts_with("3 v"),
        "{report}"
    );
    assert!(
        report.at("after_seek.1").text().starts_with("8 v"),
        "{report}"
    );
    assert_eq!(
        report.at("positions.0"),
        report.at("beginning.0"),
        "{report}"
    );
    assert_eq!(report.at("positions.1"), report.at("end.1"), "{report}");
    if !replicated {
        // On one broker record i is at offset i / 2.
        let times = &report["offsets_for_times"];
        assert_eq!(times["0"].int(), 4, "{report}");
        assert_eq!(times["1"].int(), 3, "{report}");
        assert_eq!(report.at("after_seek.0").text(), "3 v6", "{report}");
        assert_eq!(report.at("after_seek.1").text(), "8 v17", "{report}");
        assert_eq!(report.at("positions.0").int(), 0, "{report}");
        assert_eq!(report.at("positions.1").int(), 10, "{report}");
        assert_eq!(report.at("beginning.0").int(), 0, "{report}");
        assert_eq!(report.at("end.0").int(), 10, "{report}");
        assert_eq!(report.at("end.1").int(), 10, "{report}");
    }
}

/// offsetsForTimes, asked for 7 s after the base: partition 0 has records 6 and 8
/// around it, so the answer is record 8; partition 1 has record 7 exactly. A time past
/// every record has no answer.
fn assert_time_lookups(report: &Json) {
    let times = &report["offsets_for_times"];
    assert_eq!(times["0_timestamp"].int(), 8000, "{report}");
    assert_eq!(times["1_timestamp"].int(), 7000, "{report}");
    assert_eq!(report.at("read_at_times.0").text(), "v8", "{report}");
    assert_eq!(report.at("read_at_times.1").text(), "v7", "{report}");
    assert_eq!(
        report["offsets_for_times_past_the_end"].text(),
        "null",
        "{report}"
    );
}

#[test]
fn java_commits_seek_and_offsets_for_times() {
    let broker = Broker::start();
    let report = run(&["commits", &broker.bootstrap(), "commits", "1"]);
    assert_commits(&report, false);
    assert_time_lookups(&report);
}

/// offsetsForTimes on three brokers, the topic replicated three times: the leader-change
/// control record at offset 0 is stamped with the election, newer than the records'
/// own, and must never be the answer (tests/FINDINGS.md J1).
#[test]
fn java_offsets_for_times_on_a_cluster() {
    let brokers = start_cluster(&[]);
    let report = run(&["commits", &bootstrap_list(&brokers), "commits", "3"]);
    assert_commits(&report, true);
    assert_time_lookups(&report);
}

fn offsets(value: &Json) -> Vec<i64> {
    value.object().values().map(Json::int).collect()
}

/// The Admin calls, in order: createTopics (with configs), listTopics, describeTopics,
/// describeCluster, describeConfigs, incrementalAlterConfigs (then describeConfigs),
/// createPartitions, listConsumerGroups,
/// describeConsumerGroups, listConsumerGroupOffsets, listOffsets, deleteRecords (then
/// listOffsets earliest), deleteTopics.
fn assert_admin(report: &Json, brokers: usize) {
    let topic = "admin-topic";
    assert_eq!(report["createTopics"].text(), "ok", "{report}");
    assert!(
        report["listTopics"].texts().contains(&topic.to_string()),
        "{report}"
    );
    let described = &report["describeTopics"];
    assert_eq!(described["partitions"].int(), 2, "{report}");
    assert!(!described["internal"].boolean(), "{report}");
    let replicas = i64::try_from(brokers).unwrap();
    for partition in described["replicas"].array() {
        assert_eq!(partition["replicas"].int(), replicas, "{report}");
        assert_eq!(partition["isr"].int(), replicas, "{report}");
        assert!(partition["leader"].int() >= 1, "{report}");
    }
    let cluster = &report["describeCluster"];
    assert_eq!(cluster["nodes"].array().len(), brokers, "{report}");
    for node in cluster["nodes"].texts() {
        assert!(node.contains("@127.0.0.1:"), "{report}");
    }
    assert!(!cluster["cluster_id"].text().is_empty(), "{report}");
    assert!(cluster["controller"].int() >= 1, "{report}");
    // Answered by DescribeCluster: the Metadata fallback has no authorized operations.
    assert_eq!(
        cluster["authorized_operations"].texts(),
        [
            "ALTER",
            "ALTER_CONFIGS",
            "CLUSTER_ACTION",
            "CREATE",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            "IDEMPOTENT_WRITE"
        ],
        "{report}"
    );
    let configs = &report["describeConfigs"];
    assert_eq!(configs["topic_retention_ms"].text(), "3600000", "{report}");
    assert_eq!(configs["topic_cleanup_policy"].text(), "delete", "{report}");
    assert!(configs["broker_config_count"].int() > 0, "{report}");
    let altered = &report["incrementalAlterConfigs"];
    assert_eq!(altered["retention_ms"].text(), "7200000", "{report}");
    assert_eq!(
        altered["retention_source"].text(),
        "DYNAMIC_TOPIC_CONFIG",
        "{report}"
    );
    assert_eq!(altered["max_message_bytes"].text(), "2000000", "{report}");
    assert_eq!(
        report.at("createPartitions.partitions").int(),
        4,
        "{report}"
    );
    assert_eq!(report["group_read"].int(), 10, "{report}");
    assert!(
        !report.at("listConsumerGroups.admin-group").is_null(),
        "{report}"
    );
    let group = &report["describeConsumerGroups"];
    assert_eq!(group["state"].text(), "Stable", "{report}");
    assert_eq!(group["members"].array().len(), 1, "{report}");
    assert_eq!(
        group["members"].array()[0]["partitions"].ints(),
        vec![0, 1, 2, 3],
        "{report}"
    );
    // The member read everything, so its committed offsets are the log end offsets;
    // on a cluster a leader term begun after the last record adds a control record
    // past them (tests/FINDINGS.md J2).
    let committed = offsets(&report["listConsumerGroupOffsets"]);
    let latest = offsets(report.at("listOffsets.latest"));
    assert_eq!(committed.len(), 4, "{report}");
    assert_eq!(latest.len(), 4, "{report}");
    for (committed, latest) in committed.iter().zip(&latest) {
        assert!(committed <= latest, "{report}");
    }
    assert!(committed.iter().sum::<i64>() >= 10, "{report}");
    if brokers == 1 {
        assert_eq!(committed, latest, "{report}");
        // Record i went to partition i % 4, stamped i seconds after the base.
        assert_eq!(committed, vec![3, 3, 2, 2], "{report}");
        assert_eq!(
            offsets(report.at("listOffsets.earliest")),
            vec![0, 0, 0, 0],
            "{report}"
        );
        assert_eq!(
            offsets(report.at("listOffsets.for_timestamp_5s")),
            vec![2, 1, 1, 1],
            "{report}"
        );
        assert_eq!(
            offsets(report.at("listOffsets.max_timestamp")),
            vec![2, 2, 1, 1],
            "{report}"
        );
    }
    let deleted = &report["deleteRecords"];
    assert_eq!(deleted["low_watermark"].int(), 1, "{report}");
    assert_eq!(deleted["earliest"].int(), 1, "{report}");
    assert_eq!(report["deleteTopics"].text(), "gone", "{report}");
}

#[test]
fn java_admin_client_calls_on_one_broker() {
    let broker = Broker::start();
    let report = run(&["admin", &broker.bootstrap(), "admin", "1"]);
    assert_admin(&report, 1);
}

/// The producer with every codec and the Admin calls on three brokers, topics
/// replicated three times.
#[test]
fn java_producer_and_admin_on_a_three_broker_cluster() {
    let brokers = start_cluster(&[]);
    let bootstrap = bootstrap_list(&brokers);
    let codecs = run(&["produce-codecs", &bootstrap, "codecs", "3"]);
    assert_codecs(&codecs, true);
    let admin = run(&["admin", &bootstrap, "admin", "3"]);
    assert_admin(&admin, 3);
}

/// A cooperative rebalance, a static member's restart, and commits (RF 3) on three
/// brokers, whose group coordinator is the leader of a `__consumer_offsets` partition.
#[test]
fn java_groups_on_a_three_broker_cluster() {
    let brokers = start_cluster(&[]);
    let bootstrap = bootstrap_list(&brokers);
    let group = run(&[
        "group-rebalance",
        &bootstrap,
        "cooperative",
        "cooperative-sticky",
    ]);
    assert_cooperative(&group);
    let static_member = run(&["static-member", &bootstrap, "static"]);
    assert_static_member(&static_member);
    let commits = run(&["commits", &bootstrap, "commits", "3"]);
    assert_commits(&commits, true);
}

/// An idempotent acks=all producer writes 20,000 records to a topic replicated three
/// times, a group consumer reading them as they come; after 8,000 the process leading
/// partition 0 is killed with -9. Every acknowledged record is read once, at its
/// acknowledged offset, by the live consumer and by a fresh one afterwards.
#[test]
fn java_producer_and_consumer_survive_a_leader_killed_with_9() {
    let mut brokers = start_cluster(&[]);
    let bootstrap = bootstrap_list(&brokers);
    let pids = brokers
        .iter()
        .map(|b| b.pid().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let report = run(&["failover", &bootstrap, "failover", "20000", "8000", &pids]);
    let killed = report["killed_node"].int();
    assert!((1..=3).contains(&killed), "{report}");
    let victim = &mut brokers[usize::try_from(killed - 1).unwrap()];
    // Killed and not yet reaped, the process is a zombie (state Z); reaping a live
    // one would wait forever.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", victim.pid())).unwrap();
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    assert_eq!(state, Some("Z"), "the leader was not killed: {report}");
    victim.reap_killed();
    assert_eq!(report["live_consumer_errors"].array(), &[], "{report}");
    assert_eq!(report["acknowledged"].int(), 20_000, "{report}");
    assert_eq!(report["error_count"].int(), 0, "{report}");
    assert_eq!(report["out_of_order"].int(), 0, "{report}");
    for reader in ["live", "fresh"] {
        let seen = &report[reader];
        assert_eq!(seen["consumed"].int(), 20_000, "{reader}: {report}");
        assert_eq!(seen["missing"].int(), 0, "{reader}: {report}");
        assert_eq!(seen["moved"].int(), 0, "{reader}: {report}");
        assert_eq!(seen["duplicates"].int(), 0, "{reader}: {report}");
    }
    assert!(
        report["drain_seconds_after_kill"].float() < 30.0,
        "the cluster took too long to take writes again: {report}"
    );
}

/// KIP-320: a consumer whose position was read in the old leader's epoch asks the new
/// leader where that epoch ends (OffsetForLeaderEpoch) before it fetches again, finds
/// no truncation, and reads on: every record once, in order, no reset, no error. The
/// new leader's log shows the question was asked.
#[test]
fn kip_320_java_consumer_validates_its_position_after_a_leader_change() {
    let filter = "info,odradek_replication::offset_for_leader_epoch=debug";
    let mut brokers = start_cluster_logging(&[], Some(filter));
    let bootstrap = bootstrap_list(&brokers);
    let pids = brokers
        .iter()
        .map(|b| b.pid().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let report = run(&["leader-change", &bootstrap, "epochs", "100", &pids]);
    let killed = report["killed_node"].int();
    assert!((1..=3).contains(&killed), "{report}");
    brokers[usize::try_from(killed - 1).unwrap()].reap_killed();
    assert_eq!(report["errors"].array(), &[], "{report}");
    assert_eq!(report["consumed"].int(), 200, "{report}");
    assert!(report["in_order_exactly_once"].boolean(), "{report}");
    assert!(report["offsets_rising"].boolean(), "{report}");
    let epochs = report["epochs"].ints();
    assert!(epochs.len() >= 2, "records of two leader epochs: {report}");
    let asked: usize = brokers
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != usize::try_from(killed - 1).unwrap())
        .map(|(_, broker)| broker.stderr().matches("OffsetForLeaderEpoch").count())
        .sum();
    assert!(
        asked > 0,
        "no OffsetForLeaderEpoch reached a live broker: {report}"
    );
}
