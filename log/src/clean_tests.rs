//! Tests of the log cleaner (`partition/clean.rs`, `cleaning.rs`): unit tests, one rule
//! each, and a model-based property test with crashes in the middle of swaps, which
//! the `mutants` tests below reuse to show it catches each cleaner mutant.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use super::*;
use crate::batch::{BatchHeader, Compression, build_producer_batch};
use crate::cleaning::{OpenedBatch, compress_batch};
use crate::mem_disk::MemDisk;

const DIR: &str = "compacted-0";
const NOW: i64 = 1_700_000_000_000;
const RETENTION_MS: i64 = 1000;
const PRODUCER: i64 = 77;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        index_interval_bytes: 64,
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: RETENTION_MS,
        min_cleanable_dirty_ratio_per_mille: 0,
        ..LogConfig::default()
    }
}

/// A record as read back: offset, key, value, timestamp.
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);

fn keyed(records: &[(Option<&str>, Option<&str>)]) -> Vec<u8> {
    build_producer_batch(
        NOW,
        None,
        records
            .iter()
            .map(|(k, v)| (k.map(str::as_bytes), v.map(str::as_bytes))),
    )
}

fn sync_all(log: &mut PartitionLog, disk: &mut MemDisk) {
    for _ in 0..100 {
        if log.start_sync(disk).is_empty() {
            return;
        }
        for completion in disk.complete_all_syncs() {
            log.on_sync_complete(&completion);
        }
    }
    panic!("sync rounds never end");
}

/// Rolls the active segment and seals everything, so that all but the new, empty
/// active segment is cleanable.
fn seal_all(log: &mut PartitionLog, disk: &mut MemDisk) {
    log.roll_now(disk).expect("roll");
    sync_all(log, disk);
}

/// Runs cleaning steps until a pass ends or there is nothing to do.
fn clean_fully(
    log: &mut PartitionLog,
    disk: &mut MemDisk,
    now_ms: i64,
) -> Result<CleanProgress, LogError> {
    for _ in 0..100_000 {
        match log.clean_step(disk, now_ms, i64::MAX, 512)? {
            CleanProgress::Working { .. } => continue,
            done => return Ok(done),
        }
    }
    panic!("a cleaning pass never ends");
}

/// Every batch from the log start, read as a consumer reads: from each read's next
/// offset on.
fn read_batches(log: &mut PartitionLog, disk: &mut MemDisk) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(disk, offset, i64::MAX, 1 << 20).expect("read");
        assert!(read.next_offset > offset, "reads move on");
        let mut at = 0;
        while at < read.bytes.len() {
            let header = batch::BatchHeader::parse(&read.bytes[at..]).expect("header");
            let bytes = &read.bytes[at..at + header.size_bytes() as usize];
            at += bytes.len();
            out.push((header, bytes.to_vec()));
        }
        offset = read.next_offset;
    }
    out
}

/// Every record of every batch from the log start, each batch's codec with it.
fn read_records(log: &mut PartitionLog, disk: &mut MemDisk) -> Vec<(Rec, Compression)> {
    let mut out = Vec::new();
    for (header, bytes) in read_batches(log, disk) {
        if header.is_control() {
            continue;
        }
        let opened = OpenedBatch::open(&bytes, &header).expect("opens");
        for record in opened.records().expect("parses") {
            let rec = (
                record.offset,
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
                record.timestamp,
            );
            out.push((rec, header.compression().expect("codec")));
        }
    }
    out
}

/// `Err` unless the batches cover every offset from the log start to the log end,
/// each in exactly one batch.
fn check_contiguous(log: &PartitionLog, batches: &[(BatchHeader, Vec<u8>)]) -> Result<(), String> {
    let mut expected = batches
        .first()
        .map_or(log.log_start_offset(), |(h, _)| h.base_offset);
    if expected > log.log_start_offset() {
        return Err(format!(
            "the first batch starts at {expected}, above the log start {}",
            log.log_start_offset()
        ));
    }
    for (header, _) in batches {
        if header.base_offset != expected {
            return Err(format!(
                "a batch at {} follows one that ended at {expected}",
                header.base_offset
            ));
        }
        expected = header.next_offset();
    }
    if expected != log.log_end_offset() {
        return Err(format!(
            "batches end at {expected}, the log at {}",
            log.log_end_offset()
        ));
    }
    Ok(())
}

fn offsets_and_values(records: &[(Rec, Compression)]) -> Vec<(i64, Option<String>)> {
    records
        .iter()
        .map(|((offset, _, value, _), _)| {
            let value = value
                .as_ref()
                .map(|v| String::from_utf8(v.clone()).expect("utf8"));
            (*offset, value)
        })
        .collect()
}

/// `PartitionLog::append`, but records without a key are taken too: a compacted log
/// refuses them, yet holds them when its topic was compacted only after they were
/// written, and the cleaner must remove them.
fn append_any(
    log: &mut PartitionLog,
    disk: &mut MemDisk,
    bytes: &mut [u8],
    epoch: i32,
    now_ms: i64,
) -> Result<AppendOutcome, AppendError> {
    let compacted = log.config().clone();
    log.set_config(LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..compacted.clone()
    });
    let appended = log.append(disk, bytes, epoch, now_ms);
    log.set_config(compacted);
    appended
}

fn open(disk: &mut MemDisk) -> PartitionLog {
    PartitionLog::open(disk, DIR, config(), NOW)
        .expect("open")
        .0
}

fn append(log: &mut PartitionLog, disk: &mut MemDisk, mut bytes: Vec<u8>) {
    append_any(log, disk, &mut bytes, 1, NOW).expect("append");
}

/// k0 and k1 written over and over, with a keyless record in between.
fn overwritten_keys(log: &mut PartitionLog, disk: &mut MemDisk) {
    append(
        log,
        disk,
        keyed(&[(Some("k0"), Some("a")), (Some("k1"), Some("b"))]),
    );
    append(log, disk, keyed(&[(None, Some("keyless"))]));
    append(log, disk, keyed(&[(Some("k0"), Some("c"))]));
    append(
        log,
        disk,
        keyed(&[(Some("k1"), Some("d")), (Some("k0"), Some("e"))]),
    );
    append(log, disk, keyed(&[(Some("k2"), Some("f"))]));
}

#[test]
fn compaction_keeps_the_newest_record_of_each_key_at_its_offset() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    overwritten_keys(&mut log, &mut disk);
    seal_all(&mut log, &mut disk);
    assert!(log.needs_cleaning(NOW, i64::MAX));
    let done = clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert!(
        matches!(
            done,
            CleanProgress::PassDone {
                cleaned_through: 7,
                ..
            }
        ),
        "{done:?}"
    );
    assert_eq!(log.cleaned_through(), Some(7));
    let expected = vec![
        (4, Some("d".to_string())),
        (5, Some("e".to_string())),
        (6, Some("f".to_string())),
    ];
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        expected
    );
    assert!(!log.needs_cleaning(NOW, i64::MAX));
    let batches = read_batches(&mut log, &mut disk);
    check_contiguous(&log, &batches).expect("no gap");
    // Emptied batches became fillers; batches with records keep their boundaries.
    let spans: Vec<(i64, i64, bool)> = batches
        .iter()
        .map(|(h, _)| (h.base_offset, h.last_offset(), h.is_filler()))
        .collect();
    assert!(
        spans.ends_with(&[(4, 5, false), (6, 6, false)]),
        "{spans:?}"
    );
    assert!(spans[..spans.len() - 2].iter().all(|s| s.2), "{spans:?}");
    // Recovery finds the log contiguous, and the sealed segments stay sealed.
    log.close(&mut disk).expect("close");
    let mut log = open(&mut disk);
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        expected
    );
    assert_eq!(log.log_end_offset(), 7);
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("g"))]));
    assert_eq!(log.log_end_offset(), 8);
}

#[test]
fn a_read_at_an_emptied_offset_returns_its_filler_and_a_lookup_passes_it() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    overwritten_keys(&mut log, &mut disk);
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    for removed in 0..4 {
        let read = log.read(&mut disk, removed, i64::MAX, 1).expect("read");
        let header = batch::validate_stored(&read.bytes, u32::MAX).expect("one batch");
        assert!(header.is_filler(), "{removed}: {header:?}");
        assert!(header.base_offset <= removed && removed <= header.last_offset());
        assert_eq!(read.first_offset, Some(header.base_offset));
        assert_eq!(read.next_offset, header.next_offset());
        assert_eq!(header.max_timestamp, NOW, "the run's newest timestamp");
    }
    let found = log
        .offset_for_timestamp(&mut disk, NOW, i64::MAX)
        .expect("lookup");
    assert_eq!(found, Some((4, NOW)));
}

#[test]
fn a_truncation_inside_a_filler_keeps_its_part_below_and_ends_exactly_there() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    overwritten_keys(&mut log, &mut disk);
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    let read = log.read(&mut disk, 0, i64::MAX, 1).expect("read");
    let filler = batch::validate_stored(&read.bytes, u32::MAX).expect("one batch");
    assert!(
        filler.is_filler() && filler.last_offset() >= 2,
        "{filler:?}"
    );
    log.truncate_to(&mut disk, 2).expect("truncate");
    assert_eq!(log.log_end_offset(), 2);
    let read = log.read(&mut disk, 0, i64::MAX, 1 << 20).expect("read");
    let kept = batch::validate_stored(&read.bytes, u32::MAX).expect("one batch");
    assert!(kept.is_filler(), "{kept:?}");
    assert_eq!((kept.base_offset, kept.last_offset()), (0, 1));
    assert_eq!(kept.partition_leader_epoch, filler.partition_leader_epoch);
    assert_eq!(
        read.bytes.len(),
        kept.size_bytes() as usize,
        "nothing after it"
    );
    // Appends go on from there, and the log reopens the same.
    append(&mut log, &mut disk, keyed(&[(Some("k9"), Some("z"))]));
    log.flush_now(&mut disk).expect("flush");
    drop(log);
    let reopened = open(&mut disk);
    assert_eq!(reopened.log_end_offset(), 3);
}

#[test]
fn tombstones_stay_for_delete_retention_after_the_first_pass_then_go() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("a"))]));
    append(
        &mut log,
        &mut disk,
        keyed(&[(Some("k0"), None), (Some("k1"), Some("b"))]),
    );
    seal_all(&mut log, &mut disk);
    let first_pass = NOW + 50;
    clean_fully(&mut log, &mut disk, first_pass).expect("clean");
    let records = read_records(&mut log, &mut disk);
    assert_eq!(
        offsets_and_values(&records),
        vec![(1, None), (2, Some("b".to_string()))]
    );
    // The delete horizon replaced the base timestamp; the records kept their own.
    assert!(records.iter().all(|((_, _, _, ts), _)| *ts == NOW));
    // A later pass before the horizon keeps it; one after removes it.
    for (now, tombstone_kept) in [
        (first_pass + RETENTION_MS - 1, true),
        (first_pass + RETENTION_MS, false),
    ] {
        append(&mut log, &mut disk, keyed(&[(Some("k2"), Some("c"))]));
        seal_all(&mut log, &mut disk);
        clean_fully(&mut log, &mut disk, now).expect("clean");
        let kept = offsets_and_values(&read_records(&mut log, &mut disk)).contains(&(1, None));
        assert_eq!(kept, tombstone_kept, "at {now}");
    }
}

#[test]
fn compressed_batches_are_cleaned_and_written_back_with_their_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut disk = MemDisk::new(1);
        let mut log = open(&mut disk);
        let records = [
            (Some("k0"), Some("a")),
            (Some("k0"), Some("b")),
            (Some("k1"), Some("c")),
        ];
        append(&mut log, &mut disk, compress_batch(&keyed(&records), codec));
        append(
            &mut log,
            &mut disk,
            compress_batch(&keyed(&[(Some("k1"), Some("d"))]), codec),
        );
        seal_all(&mut log, &mut disk);
        clean_fully(&mut log, &mut disk, NOW).expect("clean");
        let read = read_records(&mut log, &mut disk);
        assert_eq!(
            offsets_and_values(&read),
            vec![(1, Some("b".to_string())), (3, Some("d".to_string()))],
            "{codec:?}"
        );
        assert!(read.iter().all(|(_, c)| *c == codec), "{codec:?}");
    }
}

#[test]
fn compact_alone_deletes_nothing_by_retention_and_compact_delete_does() {
    for (policy, deleted) in [
        (CleanupPolicy::Compact, 0),
        (CleanupPolicy::CompactDelete, 1),
    ] {
        let mut disk = MemDisk::new(1);
        let config = LogConfig {
            cleanup_policy: policy,
            retention_ms: 10,
            ..config()
        };
        let mut log = PartitionLog::open(&mut disk, DIR, config, NOW)
            .expect("open")
            .0;
        append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("a"))]));
        seal_all(&mut log, &mut disk);
        let report = log.maintain(&mut disk, NOW + 1000).expect("maintain");
        assert_eq!(report.segments_deleted, deleted, "{policy:?}");
    }
}

#[test]
fn the_last_batch_of_a_producer_stays_empty_and_its_state_survives_reopen() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    let mut produced = build_producer_batch(
        NOW,
        Some((PRODUCER, 3, 0)),
        [(Some(&b"k0"[..]), Some(&b"a"[..]))],
    );
    append_any(&mut log, &mut disk, &mut produced, 1, NOW).expect("append");
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("b"))]));
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("c"))]));
    seal_all(&mut log, &mut disk);
    let before = log.producer_state(PRODUCER).expect("known");
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        vec![(2, Some("c".to_string()))]
    );
    let read = log.read(&mut disk, 0, i64::MAX, 1).expect("read");
    let header = batch::validate_stored(&read.bytes, u32::MAX).expect("valid");
    assert_eq!(
        (header.base_offset, header.record_count, header.producer_id),
        (0, 0, PRODUCER)
    );
    log.close(&mut disk).expect("close");
    let mut log = open(&mut disk);
    let after = log.producer_state(PRODUCER).expect("still known");
    assert_eq!(
        (after.producer_epoch, after.last_sequence),
        (before.producer_epoch, before.last_sequence)
    );
    // Once a later batch of the producer is durable, the empty one joins a filler.
    let mut later = build_producer_batch(
        NOW,
        Some((PRODUCER, 3, 1)),
        [(Some(&b"k1"[..]), Some(&b"x"[..]))],
    );
    append_any(&mut log, &mut disk, &mut later, 1, NOW).expect("append");
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("d"))]));
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    let read = log.read(&mut disk, 0, i64::MAX, 1).expect("read");
    let header = batch::validate_stored(&read.bytes, u32::MAX).expect("valid");
    assert!(header.is_filler(), "{header:?}");
    assert_eq!(header.base_offset, 0);
}

/// Appends one batch of `records` in leader epoch `epoch`.
fn append_in(log: &mut PartitionLog, disk: &mut MemDisk, epoch: i32, records: &[(&str, &str)]) {
    let records: Vec<_> = records.iter().map(|(k, v)| (Some(*k), Some(*v))).collect();
    let mut bytes = keyed(&records);
    append_any(log, disk, &mut bytes, epoch, NOW).expect("append");
}

/// `(base offset, last offset, is a filler, leader epoch)` of every batch.
fn spans(log: &mut PartitionLog, disk: &mut MemDisk) -> Vec<(i64, i64, bool, i32)> {
    read_batches(log, disk)
        .iter()
        .map(|(h, _)| {
            let filler = h.is_filler();
            (
                h.base_offset,
                h.last_offset(),
                filler,
                h.partition_leader_epoch,
            )
        })
        .collect()
}

#[test]
fn a_filler_never_spans_two_leader_epochs() {
    let mut disk = MemDisk::new(1);
    let config = LogConfig {
        segment_bytes: 4096,
        ..config()
    };
    let mut log = PartitionLog::open(&mut disk, DIR, config, NOW)
        .expect("open")
        .0;
    append_in(&mut log, &mut disk, 1, &[("k0", "a")]);
    append_in(&mut log, &mut disk, 1, &[("k0", "b")]);
    append_in(&mut log, &mut disk, 2, &[("k0", "c")]);
    append_in(&mut log, &mut disk, 2, &[("k0", "d")]);
    append_in(&mut log, &mut disk, 3, &[("k0", "e")]);
    seal_all(&mut log, &mut disk);
    let epochs = log.batch_epochs(&mut disk).expect("epochs");
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(
        spans(&mut log, &mut disk),
        vec![(0, 1, true, 1), (2, 3, true, 2), (4, 4, false, 3)]
    );
    assert_eq!(log.batch_epochs(&mut disk).expect("epochs"), epochs);
    log.close(&mut disk).expect("close");
    let mut log = open(&mut disk);
    assert_eq!(log.batch_epochs(&mut disk).expect("epochs"), epochs);
}

#[test]
fn a_later_pass_merges_an_old_filler_with_batches_it_empties() {
    let mut disk = MemDisk::new(1);
    let config = LogConfig {
        segment_bytes: 4096,
        ..config()
    };
    let mut log = PartitionLog::open(&mut disk, DIR, config, NOW)
        .expect("open")
        .0;
    append_in(&mut log, &mut disk, 1, &[("k0", "a")]);
    append_in(&mut log, &mut disk, 1, &[("k1", "b")]);
    append_in(&mut log, &mut disk, 1, &[("k0", "c")]);
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(
        spans(&mut log, &mut disk),
        vec![(0, 0, true, 1), (1, 1, false, 1), (2, 2, false, 1)]
    );
    // A pass that changes nothing in the first segment leaves it alone.
    append_in(&mut log, &mut disk, 1, &[("k2", "d")]);
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(
        spans(&mut log, &mut disk)[..3],
        [(0, 0, true, 1), (1, 1, false, 1), (2, 2, false, 1)]
    );
    append_in(&mut log, &mut disk, 1, &[("k1", "e")]);
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(
        spans(&mut log, &mut disk),
        vec![
            (0, 1, true, 1),
            (2, 2, false, 1),
            (3, 3, false, 1),
            (4, 4, false, 1)
        ]
    );
}

#[test]
fn a_damaged_cleaner_checkpoint_counts_the_whole_log_as_maybe_cleaned() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    overwritten_keys(&mut log, &mut disk);
    seal_all(&mut log, &mut disk);
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    let end = log.log_end_offset();
    log.close(&mut disk).expect("close");
    let path = crate::segment::join(DIR, crate::segment::CLEANER_CHECKPOINT);
    let file = disk
        .open(&path, crate::io::OpenMode::ReadWrite)
        .expect("open");
    disk.write_at(file, 9, &[0xff]).expect("write");
    disk.sync_now(file).expect("sync");
    disk.close(file);
    let log = open(&mut disk);
    assert_eq!(log.cleaned_through(), Some(end));
    assert_eq!(log.first_dirty_offset(), None);
}

#[test]
fn needs_cleaning_follows_the_dirty_ratio_and_the_compaction_lags() {
    let mut disk = MemDisk::new(1);
    let strict = LogConfig {
        min_cleanable_dirty_ratio_per_mille: 1000,
        ..config()
    };
    let mut log = PartitionLog::open(&mut disk, DIR, strict.clone(), NOW)
        .expect("open")
        .0;
    overwritten_keys(&mut log, &mut disk);
    seal_all(&mut log, &mut disk);
    assert!(log.needs_cleaning(NOW, i64::MAX), "all dirty: ratio 1");
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("x"))]));
    seal_all(&mut log, &mut disk);
    assert!(!log.needs_cleaning(NOW, i64::MAX), "mostly clean");
    log.set_config(LogConfig {
        max_compaction_lag_ms: 100,
        ..strict.clone()
    });
    assert!(log.needs_cleaning(NOW + 101, i64::MAX), "overdue");
    log.set_config(LogConfig {
        min_compaction_lag_ms: 100,
        min_cleanable_dirty_ratio_per_mille: 0,
        ..strict
    });
    assert!(!log.needs_cleaning(NOW + 50, i64::MAX), "too young");
    assert!(log.needs_cleaning(NOW + 100, i64::MAX));
    assert!(!log.needs_cleaning(NOW, 3), "below offset_max only");
}

#[test]
fn a_failure_or_crash_at_any_point_of_a_pass_keeps_every_newest_value() {
    for syncs_ok in 0..24 {
        let mut disk = MemDisk::new(syncs_ok);
        let mut log = open(&mut disk);
        overwritten_keys(&mut log, &mut disk);
        seal_all(&mut log, &mut disk);
        let all = read_records(&mut log, &mut disk);
        disk.fail_one_sync_after(syncs_ok);
        let _ = clean_fully(&mut log, &mut disk, NOW);
        disk.fail_one_sync_after(u64::MAX);
        drop(log);
        disk.crash(syncs_ok);
        let mut log = open(&mut disk);
        let read = read_records(&mut log, &mut disk);
        assert!(read.iter().all(|r| all.contains(r)), "{syncs_ok}: {read:?}");
        for newest in [4, 5, 6] {
            assert!(
                read.iter().any(|((o, ..), _)| *o == newest),
                "{syncs_ok}: {newest}"
            );
        }
        clean_fully(&mut log, &mut disk, NOW).expect("a pass after the crash");
        let cleaned = offsets_and_values(&read_records(&mut log, &mut disk));
        assert_eq!(
            cleaned.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
    }
}

/// Three keys overwritten by 40 one-record batches (70 bytes each): ten rolled
/// segments of 280 bytes (`segment.bytes` 300). A first pass cleans each in place
/// (no full segment fits next to another's output); three more records, in a new
/// segment, make the log dirty again, for the pass that groups.
fn many_small_segments(log: &mut PartitionLog, disk: &mut MemDisk) {
    let append_values =
        |log: &mut PartitionLog, disk: &mut MemDisk, values: std::ops::Range<i32>| {
            for i in values {
                let key = format!("k{}", i % 3);
                let value = format!("v{i}");
                append(log, disk, keyed(&[(Some(&key), Some(&value))]));
            }
        };
    append_values(log, disk, 0..40);
    seal_all(log, disk);
    assert!(closed_segments(log).1 >= 10);
    clean_fully(log, disk, NOW).expect("the first pass");
    append_values(log, disk, 40..43);
    seal_all(log, disk);
}

/// The offsets and values a cleaned `many_small_segments` log holds.
fn newest_of_many() -> Vec<(i64, Option<String>)> {
    (40..43).map(|i| (i, Some(format!("v{i}")))).collect()
}

/// The bytes of the closed segments, and how many there are.
fn closed_segments(log: &PartitionLog) -> (u64, usize) {
    let closed = &log.segments[..log.segments.len() - 1];
    (closed.iter().map(|s| s.size_bytes).sum(), closed.len())
}

#[test]
fn adjacent_cleaned_segments_are_grouped_into_one_within_segment_bytes() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    many_small_segments(&mut log, &mut disk);
    let (_, before) = closed_segments(&log);
    assert!(before >= 11, "{before} segments");
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        newest_of_many()
    );
    let (bytes, after) = closed_segments(&log);
    // Grouping goes by the old segments' bytes: a 280-byte segment that will be
    // emptied joins no group that already holds a filler, so the fillers of 0..36
    // and the group of 36..43 stay apart, and a later pass merges them.
    let segment_bytes = config().segment_bytes;
    assert!(
        after as u64 <= 2 * bytes / segment_bytes + 1,
        "{after}, {bytes} bytes"
    );
    assert_eq!(after, 2, "{before} segments became {after}");
    let batches = read_batches(&mut log, &mut disk);
    check_contiguous(&log, &batches).expect("no gap");
    // One filler per group for the emptied batches, then the three newest.
    assert_eq!(batches.len(), 5, "{batches:?}");
    // The other segments' files are gone; the grouped one is sealed and reopens so.
    let logs = disk
        .read_dir(DIR)
        .expect("dir")
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .count();
    assert_eq!(logs, 3);
    log.close(&mut disk).expect("close");
    let mut log = open(&mut disk);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        newest_of_many()
    );
}

#[test]
fn a_failure_or_crash_at_any_point_of_a_grouped_swap_keeps_every_newest_value() {
    for (syncs_ok, seed) in (0..40).flat_map(|s| (0..4).map(move |seed| (s, seed))) {
        let mut disk = MemDisk::new(syncs_ok);
        let mut log = open(&mut disk);
        many_small_segments(&mut log, &mut disk);
        let all = read_records(&mut log, &mut disk);
        disk.fail_one_sync_after(syncs_ok);
        let _ = clean_fully(&mut log, &mut disk, NOW);
        disk.fail_one_sync_after(u64::MAX);
        drop(log);
        disk.crash(syncs_ok * 4 + seed);
        let mut log = open(&mut disk);
        assert_eq!(log.log_end_offset(), 43, "{syncs_ok}");
        let batches = read_batches(&mut log, &mut disk);
        check_contiguous(&log, &batches).expect("no gap");
        let read = read_records(&mut log, &mut disk);
        assert!(read.iter().all(|r| all.contains(r)), "{syncs_ok}: {read:?}");
        for newest in 40..43 {
            assert!(
                read.iter().any(|((o, ..), _)| *o == newest),
                "{syncs_ok}: {newest}"
            );
        }
        clean_fully(&mut log, &mut disk, NOW).expect("a pass after the crash");
        assert_eq!(
            offsets_and_values(&read_records(&mut log, &mut disk)),
            newest_of_many()
        );
        assert!(closed_segments(&log).1 <= 2, "{syncs_ok}");
    }
}

#[test]
fn recovery_removes_a_grouped_segments_leftover_and_keeps_later_segments() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    many_small_segments(&mut log, &mut disk);
    let second = log.segments[1].base_offset;
    let leftover = disk
        .file_contents(&join(DIR, &segment_file_name(second, SegmentFileKind::Log)))
        .expect("second segment");
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    append(&mut log, &mut disk, keyed(&[(Some("k0"), Some("later"))]));
    log.close(&mut disk).expect("close");
    // As if a crash came after the rename and before this file's removal.
    let path = join(DIR, &segment_file_name(second, SegmentFileKind::Log));
    let file = disk.open(&path, OpenMode::CreateNew).expect("create");
    disk.write_at(file, 0, &leftover).expect("write");
    disk.sync_now(file).expect("sync");
    disk.close(file);
    disk.sync_dir_now(DIR).expect("sync dir");
    let (mut log, report) = PartitionLog::open(&mut disk, DIR, config(), NOW).expect("open");
    assert!(report.truncation.is_none(), "{:?}", report.truncation);
    assert!(!disk.exists(&path));
    assert_eq!(log.log_end_offset(), 44);
    let mut expected = newest_of_many();
    expected.push((43, Some("later".to_string())));
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        expected
    );
}

#[test]
fn leftovers_of_a_group_are_kept_instead_of_it_when_the_log_start_is_among_them() {
    let mut disk = MemDisk::new(1);
    let mut log = open(&mut disk);
    many_small_segments(&mut log, &mut disk);
    // The first group is 0..36 (segments 0, 4, …, 32); keep copies of its last two.
    let path = |base: i64| join(DIR, &segment_file_name(base, SegmentFileKind::Log));
    let copies: Vec<(i64, Vec<u8>)> = [28, 32]
        .into_iter()
        .map(|base| (base, disk.file_contents(&path(base)).expect("segment")))
        .collect();
    clean_fully(&mut log, &mut disk, NOW).expect("clean");
    assert_eq!(log.segments[1].base_offset, 36, "grouped 0..36");
    log.close(&mut disk).expect("close");
    // As if a crash came while 5 removed the group's files, oldest first, with the
    // log start moved to 30 meanwhile.
    for (base, bytes) in &copies {
        let file = disk
            .open(&path(*base), OpenMode::CreateNew)
            .expect("create");
        disk.write_at(file, 0, bytes).expect("write");
        disk.sync_now(file).expect("sync");
        disk.close(file);
    }
    write_checkpoint(&mut disk, DIR, 30).expect("checkpoint");
    disk.sync_dir_now(DIR).expect("sync dir");
    let (mut log, report) = PartitionLog::open(&mut disk, DIR, config(), NOW).expect("open");
    assert!(report.truncation.is_none(), "{:?}", report.truncation);
    assert!(
        !disk.exists(&path(0)),
        "the group lay below the start, as far as open saw"
    );
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (30, 43));
    let batches = read_batches(&mut log, &mut disk);
    check_contiguous(&log, &batches).expect("no gap");
    // The old copies of 28..36 (fillers of the first pass) cover the offsets up to
    // the next segment; the newest values are there.
    assert_eq!(batches[0].0.base_offset, 28);
    assert_eq!(
        offsets_and_values(&read_records(&mut log, &mut disk)),
        newest_of_many()
    );
}

// ---- the model-based property test ----

#[derive(Clone, Debug)]
enum Op {
    /// A batch of records `(key, value)`: key `None` is keyless, value `None` a
    /// tombstone; compressed with `codec`; from the idempotent producer if `produced`.
    Append {
        records: Vec<(Option<u8>, Option<u8>)>,
        codec: Compression,
        produced: bool,
    },
    Sync,
    Roll,
    Clean {
        budget: u64,
    },
    Advance {
        ms: i64,
    },
    /// Later appends come in the next leader epoch.
    NewEpoch,
    /// Fails one sync after this many more succeed (maybe in the middle of a swap).
    FailSyncAfter {
        syncs_ok: u64,
    },
    Crash {
        seed: u64,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let record = (
        prop_oneof![1 => Just(None), 8 => (0u8..4).prop_map(Some)],
        prop_oneof![1 => Just(None), 5 => any::<u8>().prop_map(Some)],
    );
    let codec = prop_oneof![
        6 => Just(Compression::None),
        1 => Just(Compression::Gzip),
        1 => Just(Compression::Snappy),
        1 => Just(Compression::Lz4),
        1 => Just(Compression::Zstd),
    ];
    prop_oneof![
        10 => (prop::collection::vec(record, 1..4), codec, any::<bool>())
            .prop_map(|(records, codec, produced)| Op::Append { records, codec, produced }),
        3 => Just(Op::Sync),
        2 => Just(Op::Roll),
        5 => (50u64..3000).prop_map(|budget| Op::Clean { budget }),
        3 => (1i64..600).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::NewEpoch),
        1 => (0u64..12).prop_map(|syncs_ok| Op::FailSyncAfter { syncs_ok }),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
    ]
}

/// One appended record as the model knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Appended {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    /// Wall clock at the append: a tombstone may go no earlier than
    /// `delete.retention.ms` after it (the cleaner passes it at the earliest then).
    appended_ms: i64,
    /// The leader epoch of its batch.
    epoch: i32,
}

/// What was appended, by offset, and the producer's sequences by batch.
#[derive(Default)]
struct Model {
    records: BTreeMap<i64, Appended>,
    /// Last offset of each batch appended, by base offset.
    batches: BTreeMap<i64, i64>,
    /// `(base offset, last offset, last sequence)` of the producer's batches.
    produced: Vec<(i64, i64, i32)>,
    next_sequence: i32,
}

impl Model {
    fn forget_from(&mut self, log_end_offset: i64) {
        self.records.retain(|offset, _| *offset < log_end_offset);
        self.batches.retain(|_, last| *last < log_end_offset);
        self.produced.retain(|(_, last, _)| *last < log_end_offset);
        self.next_sequence = self.produced.last().map_or(0, |(_, _, seq)| seq + 1);
    }
}

/// A run: the disk, the log, the model and the clock.
struct Run {
    disk: MemDisk,
    log: Option<PartitionLog>,
    config: LogConfig,
    model: Model,
    now_ms: i64,
    /// The leader epoch of appends.
    epoch: i32,
}

impl Run {
    fn log(&mut self) -> &mut PartitionLog {
        self.log.as_mut().expect("open")
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Append {
                records,
                codec,
                produced,
            } => self.append(records, *codec, *produced),
            Op::Sync => {
                let log = self.log.as_mut().expect("open");
                log.start_sync(&mut self.disk);
                for completion in self.disk.complete_all_syncs() {
                    log.on_sync_complete(&completion);
                }
            }
            Op::Roll => {
                let log = self.log.as_mut().expect("open");
                let _ = log.roll_now(&mut self.disk);
            }
            Op::Clean { budget } => {
                let (now, log) = (self.now_ms, self.log.as_mut().expect("open"));
                let _ = log.clean_step(&mut self.disk, now, i64::MAX, *budget);
            }
            Op::Advance { ms } => self.now_ms += ms,
            Op::NewEpoch => self.epoch += 1,
            Op::FailSyncAfter { syncs_ok } => self.disk.fail_one_sync_after(*syncs_ok),
            Op::Crash { seed } => return self.crash(*seed),
        }
        self.check()
    }

    fn append(&mut self, records: &[(Option<u8>, Option<u8>)], codec: Compression, produced: bool) {
        let keys: Vec<Option<Vec<u8>>> = records
            .iter()
            .map(|(k, _)| k.map(|k| vec![b'k', k]))
            .collect();
        let values: Vec<Option<Vec<u8>>> = records
            .iter()
            .map(|(_, v)| v.map(|v| vec![b'v', v]))
            .collect();
        let producer = produced.then_some((PRODUCER, 0, self.model.next_sequence));
        let pairs = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (k.as_deref(), v.as_deref()));
        let mut bytes = build_producer_batch(self.now_ms, producer, pairs);
        if codec != Compression::None {
            bytes = compress_batch(&bytes, codec);
        }
        let (now, epoch) = (self.now_ms, self.epoch);
        let log = self.log.as_mut().expect("open");
        let Ok(AppendOutcome::Appended {
            base_offset,
            last_offset,
            ..
        }) = append_any(log, &mut self.disk, &mut bytes, epoch, now)
        else {
            return;
        };
        for (at, (key, value)) in keys.into_iter().zip(values).enumerate() {
            let appended = Appended {
                key,
                value,
                timestamp: now,
                appended_ms: now,
                epoch,
            };
            self.model.records.insert(base_offset + at as i64, appended);
        }
        self.model.batches.insert(base_offset, last_offset);
        if produced {
            let last_sequence = self.model.next_sequence + (last_offset - base_offset) as i32;
            self.model
                .produced
                .push((base_offset, last_offset, last_sequence));
            self.model.next_sequence = last_sequence + 1;
        }
    }

    fn crash(&mut self, seed: u64) -> Result<(), String> {
        let durable = self.log().durable_offset();
        self.log = None;
        self.disk.crash(seed);
        let mut opened = PartitionLog::open(&mut self.disk, DIR, self.config.clone(), self.now_ms);
        if opened.is_err() {
            // An injected sync failure hit the open itself: power off and on again.
            self.disk.crash(seed.wrapping_add(1));
            opened = PartitionLog::open(&mut self.disk, DIR, self.config.clone(), self.now_ms);
        }
        let (log, _) = opened.map_err(|error| format!("reopen: {error}"))?;
        if log.log_end_offset() < durable {
            return Err(format!(
                "lost durable offsets: end {} < {durable}",
                log.log_end_offset()
            ));
        }
        self.model.forget_from(log.log_end_offset());
        let state = log.producer_state(PRODUCER).map(|s| s.last_sequence);
        let expected = self.model.produced.last().map(|(_, _, seq)| *seq);
        self.log = Some(log);
        if state != expected {
            return Err(format!(
                "producer state after reopen {state:?}, expected {expected:?}"
            ));
        }
        self.check()
    }

    /// The rules of the records ([`Run::check_records`]) and of the batches that hold
    /// them ([`Run::check_layout`]).
    fn check(&mut self) -> Result<(), String> {
        let log = self.log.as_mut().expect("open");
        if log.failure().is_some() {
            return Ok(());
        }
        log.check_invariants();
        self.check_layout()?;
        self.check_records()
    }

    /// The batches cover every offset from the log start to the log end, each in one
    /// batch; a batch that is not a filler has the bounds of a batch appended, and a
    /// filler starts where one started and ends where one ended; every offset's leader
    /// epoch, by the batch headers, is the one it was appended in, so the epoch cache
    /// rebuilt from them ([`PartitionLog::batch_epochs`]) is the same as before any
    /// cleaning; and no two fillers of one epoch are neighbours in a segment (the size
    /// bound: a segment's rewrite merges them, and only rewrites write fillers).
    fn check_layout(&mut self) -> Result<(), String> {
        let log = self.log.as_mut().expect("open");
        let batches = read_batches(log, &mut self.disk);
        check_contiguous(log, &batches)?;
        let segment_bases: std::collections::BTreeSet<i64> =
            log.segments.iter().map(|s| s.base_offset).collect();
        for pair in batches.windows(2) {
            let (first, second) = (&pair[0].0, &pair[1].0);
            if first.is_filler()
                && second.is_filler()
                && first.partition_leader_epoch == second.partition_leader_epoch
                && !segment_bases.contains(&second.base_offset)
            {
                return Err(format!(
                    "fillers at {} and {} of one epoch in one segment",
                    first.base_offset, second.base_offset
                ));
            }
        }
        let appended = &self.model.batches;
        let last_offsets: std::collections::BTreeSet<i64> = appended.values().copied().collect();
        for (header, _) in &batches {
            let (base, last) = (header.base_offset, header.last_offset());
            let bounds_kept = if header.is_filler() {
                appended.contains_key(&base) && last_offsets.contains(&last)
            } else {
                appended.get(&base) == Some(&last)
            };
            if !bounds_kept {
                return Err(format!("batch {base}..={last} has bounds never appended"));
            }
            for offset in base..=last {
                let epoch = self.model.records.get(&offset).map(|a| a.epoch);
                if epoch != Some(header.partition_leader_epoch) {
                    return Err(format!(
                        "offset {offset} is in epoch {} by its batch, appended in {epoch:?}",
                        header.partition_leader_epoch
                    ));
                }
            }
        }
        let mut expected: Vec<(i32, i64)> = Vec::new();
        for (offset, appended) in &self.model.records {
            if expected
                .last()
                .is_none_or(|(epoch, _)| *epoch != appended.epoch)
            {
                expected.push((appended.epoch, *offset));
            }
        }
        let epochs = log
            .batch_epochs(&mut self.disk)
            .map_err(|e| e.to_string())?;
        if epochs != expected {
            return Err(format!("epochs {epochs:?}, appended {expected:?}"));
        }
        Ok(())
    }

    /// What is read was appended at that offset (a subsequence, offsets unchanged);
    /// every record at or above `cleaned_through` is there; every key's newest record
    /// is there, unless it is a tombstone older than the retention.
    fn check_records(&mut self) -> Result<(), String> {
        let log = self.log.as_mut().expect("open");
        let read = read_records(log, &mut self.disk);
        let cleaned_through = log.cleaned_through().unwrap_or(i64::MIN);
        let mut seen = BTreeMap::new();
        for ((offset, key, value, timestamp), _) in read {
            let appended = self
                .model
                .records
                .get(&offset)
                .ok_or(format!("offset {offset} never appended"))?;
            let got = (&key, &value, timestamp);
            if got != (&appended.key, &appended.value, appended.timestamp) {
                return Err(format!(
                    "offset {offset}: read {got:?}, appended {appended:?}"
                ));
            }
            seen.insert(offset, ());
        }
        let mut newest: BTreeMap<&Vec<u8>, (i64, &Appended)> = BTreeMap::new();
        for (offset, appended) in &self.model.records {
            if *offset >= cleaned_through && !seen.contains_key(offset) {
                return Err(format!(
                    "offset {offset} above cleaned_through {cleaned_through} is gone"
                ));
            }
            if let Some(key) = &appended.key {
                newest.insert(key, (*offset, appended));
            }
        }
        for (key, (offset, appended)) in newest {
            let may_go = appended.value.is_none()
                && self.now_ms >= appended.appended_ms + self.config.delete_retention_ms;
            if !may_go && !seen.contains_key(&offset) {
                return Err(format!("newest record of {key:?} at {offset} is gone"));
            }
        }
        Ok(())
    }
}

/// Runs `ops` against a fresh log with `config`; `Err` names the first broken rule.
fn run_ops(ops: &[Op], config: &LogConfig) -> Result<(), String> {
    let mut disk = MemDisk::new(7);
    let (log, _) =
        PartitionLog::open(&mut disk, DIR, config.clone(), NOW).map_err(|e| e.to_string())?;
    let mut run = Run {
        disk,
        log: Some(log),
        config: config.clone(),
        model: Model::default(),
        now_ms: NOW,
        epoch: 1,
    };
    for op in ops {
        run.apply(op)?;
    }
    // Whatever the faults left: a crash, then a whole pass from a healthy disk.
    run.disk.fail_one_sync_after(u64::MAX);
    run.crash(1)?;
    let now = run.now_ms;
    let log = run.log.as_mut().expect("open");
    sync_all(log, &mut run.disk);
    let _ = log.roll_now(&mut run.disk);
    sync_all(log, &mut run.disk);
    clean_fully(log, &mut run.disk, now).map_err(|e| e.to_string())?;
    run.check()
}

fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn compaction_matches_the_model_across_crashes(ops in ops_strategy()) {
        let result = run_ops(&ops, &config());
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

/// Whether the property test finds a broken rule within `cases` cases under `config`.
#[cfg(feature = "mutants")]
fn caught_within(config: LogConfig, cases: u32) -> bool {
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(&ops_strategy(), |ops| {
            run_ops(&ops, &config).map_err(TestCaseError::fail)
        })
        .is_err()
}

#[cfg(feature = "mutants")]
mod mutants {
    use super::*;
    use crate::mutants::Mutants;

    fn with(mutants: Mutants) -> LogConfig {
        LogConfig {
            mutants,
            ..config()
        }
    }

    #[test]
    fn the_model_catches_cleaner_drops_newest_value() {
        let config = with(Mutants {
            cleaner_drops_newest_value: true,
            ..Mutants::default()
        });
        assert!(caught_within(config, 200));
    }

    #[test]
    fn the_model_catches_swap_not_crash_safe() {
        let config = with(Mutants {
            swap_not_crash_safe: true,
            ..Mutants::default()
        });
        assert!(caught_within(config, 200));
    }

    #[test]
    fn the_model_catches_tombstones_removed_at_once() {
        let config = with(Mutants {
            tombstones_removed_at_once: true,
            ..Mutants::default()
        });
        assert!(caught_within(config, 200));
    }

    #[test]
    fn the_healthy_cleaner_passes_the_same_cases() {
        assert!(!caught_within(config(), 200));
    }
}
