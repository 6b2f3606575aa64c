//! Unit tests of `PartitionLog`, one rule each.

use super::*;
use crate::batch::build_batch;
use crate::mem_disk::{MemDisk, WriteFault};
use crate::segment::decode_index;

const DIR: &str = "topic-0";
const NOW: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

fn open(disk: &mut MemDisk) -> (PartitionLog, OpenReport) {
    PartitionLog::open(disk, DIR, config(), NOW).expect("open")
}

fn batch(values: usize, value_bytes: usize) -> Vec<u8> {
    let value = vec![b'x'; value_bytes];
    let values: Vec<&[u8]> = (0..values).map(|_| value.as_slice()).collect();
    build_batch(NOW, None, &values)
}

fn append(log: &mut PartitionLog, disk: &mut MemDisk, mut bytes: Vec<u8>) -> AppendOutcome {
    log.append(disk, &mut bytes, 1, NOW).expect("append")
}

/// Runs sync rounds until the log has nothing left to sync.
fn sync_all(log: &mut PartitionLog, disk: &mut MemDisk) {
    loop {
        let ids = log.start_sync(disk);
        if ids.is_empty() {
            break;
        }
        for completion in disk.complete_all_syncs() {
            log.on_sync_complete(&completion);
        }
    }
    assert!(!log.sync_in_flight());
}

fn read_all(log: &mut PartitionLog, disk: &mut MemDisk, offset: i64) -> ReadResult {
    log.read(disk, offset, i64::MAX, u32::MAX).expect("read")
}

/// A power loss that keeps nothing unsynced: no file or directory operation, no torn
/// write.
fn crash_losing_everything_unsynced(disk: &mut MemDisk, seed: u64) {
    disk.crash_with(
        seed,
        crate::mem_disk::CrashOptions {
            keep_file_op_per_mille: 0,
            tear_write_per_mille: 0,
            keep_dir_op_per_mille: 0,
        },
    );
}

#[test]
fn append_assigns_contiguous_offsets_from_log_end() {
    let mut disk = MemDisk::new(1);
    let (mut log, report) = open(&mut disk);
    assert_eq!((report.log_start_offset, report.log_end_offset), (0, 0));
    assert_eq!(
        append(&mut log, &mut disk, batch(3, 10)),
        AppendOutcome::Appended {
            base_offset: 0,
            last_offset: 2,
            max_timestamp: NOW
        }
    );
    assert_eq!(
        append(&mut log, &mut disk, batch(1, 10)),
        AppendOutcome::Appended {
            base_offset: 3,
            last_offset: 3,
            max_timestamp: NOW
        }
    );
    assert_eq!(log.log_end_offset(), 4);
    log.check_invariants();
}

#[test]
fn append_is_durable_only_after_its_sync_round_completes() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(2, 10));
    assert_eq!(log.durable_offset(), 0);
    let ids = log.start_sync(&mut disk);
    assert!(!ids.is_empty());
    assert!(log.sync_in_flight());
    // A second round waits for the first.
    append(&mut log, &mut disk, batch(1, 10));
    assert!(log.start_sync(&mut disk).is_empty());
    let completions = disk.complete_all_syncs();
    let (last, rest) = completions.split_last().unwrap();
    for completion in rest {
        assert!(!log.on_sync_complete(completion));
        assert_eq!(log.durable_offset(), 0);
    }
    assert!(log.on_sync_complete(last));
    // The append made during the round is not covered by it.
    assert_eq!(log.durable_offset(), 2);
    sync_all(&mut log, &mut disk);
    assert_eq!(log.durable_offset(), 3);
}

#[test]
fn start_sync_with_nothing_to_sync_returns_no_ids() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    assert!(log.start_sync(&mut disk).is_empty());
    append(&mut log, &mut disk, batch(1, 10));
    sync_all(&mut log, &mut disk);
    assert!(log.start_sync(&mut disk).is_empty());
}

#[test]
fn failed_sync_takes_the_log_offline_for_good() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    log.start_sync(&mut disk);
    disk.fail_syncs(1);
    for completion in disk.complete_all_syncs() {
        assert!(!log.on_sync_complete(&completion));
    }
    assert!(log.failure().is_some());
    assert_eq!(log.durable_offset(), 0);
    assert!(log.start_sync(&mut disk).is_empty());
    let mut more = batch(1, 10);
    assert_eq!(
        log.append(&mut disk, &mut more, 1, NOW),
        Err(AppendError::Failed)
    );
    assert_eq!(log.read(&mut disk, 0, 10, 100), Err(ReadError::Failed));
}

#[test]
fn read_from_inside_a_batch_returns_the_whole_batch() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let first = batch(3, 10);
    append(&mut log, &mut disk, first.clone());
    append(&mut log, &mut disk, batch(2, 10));
    let result = log.read(&mut disk, 1, i64::MAX, 1).unwrap();
    assert_eq!(result.first_offset, Some(0));
    assert_eq!(result.next_offset, 3);
    assert_eq!(result.bytes.len(), first.len());
    let header = batch::validate(&result.bytes, u32::MAX).unwrap();
    assert_eq!(header.base_offset, 0);
    assert_eq!(header.partition_leader_epoch, 1);
}

#[test]
fn read_stops_before_the_batch_holding_max_offset() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(2, 10));
    append(&mut log, &mut disk, batch(2, 10));
    let result = log.read(&mut disk, 0, 3, u32::MAX).unwrap();
    assert_eq!(result.next_offset, 2);
    let at_high_watermark = log.read(&mut disk, 2, 2, u32::MAX).unwrap();
    assert!(at_high_watermark.bytes.is_empty());
    assert_eq!(at_high_watermark.first_offset, None);
}

#[test]
fn kip_74_read_returns_one_batch_larger_than_max_bytes() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 300));
    append(&mut log, &mut disk, batch(1, 300));
    let result = log.read(&mut disk, 0, i64::MAX, 10).unwrap();
    assert_eq!(result.next_offset, 1);
    let both = log.read(&mut disk, 0, i64::MAX, 10_000).unwrap();
    assert_eq!(both.next_offset, 2);
}

#[test]
fn read_outside_the_log_is_out_of_range_and_at_the_end_is_empty() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(2, 10));
    assert_eq!(
        log.read(&mut disk, 3, i64::MAX, 100),
        Err(ReadError::OffsetOutOfRange {
            log_start_offset: 0,
            log_end_offset: 2
        })
    );
    let end = log.read(&mut disk, 2, i64::MAX, 100).unwrap();
    assert!(end.bytes.is_empty());
    assert_eq!(end.next_offset, 2);
}

#[test]
fn oversized_batch_is_message_too_large() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    log.set_config(LogConfig {
        max_message_bytes: 100,
        ..config()
    });
    let mut big = batch(1, 200);
    assert!(matches!(
        log.append(&mut disk, &mut big, 1, NOW),
        Err(AppendError::TooLarge { max: 100, .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn batch_with_bad_crc_is_refused() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let mut bad = batch(1, 10);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        log.append(&mut disk, &mut bad, 1, NOW),
        Err(AppendError::Batch(BatchError::CrcMismatch { .. }))
    ));
}

#[test]
fn retried_idempotent_batch_is_a_duplicate_and_is_not_written() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let first = build_batch(NOW, Some((7, 0, 0)), &[b"a", b"b"]);
    append(&mut log, &mut disk, batch(1, 10));
    append(&mut log, &mut disk, first.clone());
    assert_eq!(
        append(&mut log, &mut disk, first),
        AppendOutcome::Duplicate {
            base_offset: 1,
            last_offset: 2,
            max_timestamp: NOW
        }
    );
    assert_eq!(log.log_end_offset(), 3);
    let gap = build_batch(NOW, Some((7, 0, 5)), &[b"c"]);
    let mut gap_bytes = gap;
    assert_eq!(
        log.append(&mut disk, &mut gap_bytes, 1, NOW),
        Err(AppendError::OutOfOrderSequence {
            producer_id: 7,
            expected: 2,
            received: 5
        })
    );
    let entry = log.producer_state(7).unwrap();
    assert_eq!(entry.last_sequence, 1);
}

#[test]
fn producer_state_is_rebuilt_on_open() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let first = build_batch(NOW, Some((7, 3, 0)), &[b"a"]);
    append(&mut log, &mut disk, first.clone());
    sync_all(&mut log, &mut disk);
    drop(log);
    disk.crash(9);
    let (mut log, _) = open(&mut disk);
    assert_eq!(log.producer_state(7).unwrap().producer_epoch, 3);
    assert!(matches!(
        append(&mut log, &mut disk, first),
        AppendOutcome::Duplicate { base_offset: 0, .. }
    ));
}

#[test]
fn segment_rolls_before_segment_bytes_would_be_exceeded() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..10 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    assert!(log.segment_count() >= 4);
    for segment in &log.segments {
        assert!(segment.size_bytes <= 1024);
    }
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 10);
    log.check_invariants();
}

#[test]
fn durable_batches_survive_a_crash_and_reopen_with_the_same_offsets() {
    for seed in 0..20 {
        let mut disk = MemDisk::new(seed);
        let (mut log, _) = open(&mut disk);
        for i in 0..12 {
            append(&mut log, &mut disk, batch(1 + i % 3, 100));
        }
        sync_all(&mut log, &mut disk);
        let durable = read_all(&mut log, &mut disk, 0);
        for _ in 0..5 {
            append(&mut log, &mut disk, batch(1, 100));
        }
        log.start_sync(&mut disk);
        drop(log);
        disk.crash(seed);
        let (mut log, report) = open(&mut disk);
        assert!(report.log_end_offset >= durable.next_offset);
        let after = log
            .read(&mut disk, 0, durable.next_offset, u32::MAX)
            .unwrap();
        assert_eq!(after, durable);
        log.check_invariants();
    }
}

#[test]
fn recovery_cuts_a_torn_tail_and_reports_it() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    sync_all(&mut log, &mut disk);
    let good_bytes = log.size_bytes();
    drop(log);
    // Half a batch after the good one, as a torn write would leave.
    let path = format!("{DIR}/00000000000000000000.log");
    let file = disk.open(&path, OpenMode::ReadWrite).unwrap();
    let mut torn = batch(1, 100);
    batch::assign(&mut torn, 1, 1);
    disk.write_at(file, good_bytes, &torn[..40]).unwrap();
    disk.close(file);
    let (log, report) = open(&mut disk);
    let truncation = report.truncation.expect("a cut");
    assert_eq!(truncation.position, good_bytes);
    assert_eq!(truncation.offset, 1);
    assert_eq!(truncation.bytes_removed, 40);
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(
        disk.durable_contents(&path).unwrap().len() as u64,
        good_bytes
    );
}

#[test]
fn recovery_cuts_at_a_bad_crc_and_drops_later_segments() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..8 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    sync_all(&mut log, &mut disk);
    // Force a rescan of the first segment by removing its seal.
    drop(log);
    let first = format!("{DIR}/00000000000000000000.log");
    disk.remove_file(&format!("{DIR}/00000000000000000000.index"))
        .unwrap();
    let size = disk.file_contents(&first).unwrap().len() as u64;
    assert!(disk.corrupt_stored(&first, size - 1, 0x40));
    let (mut log, report) = open(&mut disk);
    let truncation = report.truncation.expect("a cut");
    assert!(truncation.reason.contains("crc"), "{}", truncation.reason);
    assert_eq!(log.segment_count(), 1);
    let result = read_all(&mut log, &mut disk, 0);
    assert_eq!(result.next_offset, log.log_end_offset());
    log.check_invariants();
}

#[test]
fn bit_flip_in_a_sealed_segment_is_never_served() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..8 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    sync_all(&mut log, &mut disk);
    let first = format!("{DIR}/00000000000000000000.log");
    disk.corrupt_stored(&first, 100, 0x01);
    assert!(matches!(
        log.read(&mut disk, 0, i64::MAX, u32::MAX),
        Err(ReadError::Corrupt { offset: 0, .. })
    ));
    // Recovery trusts the sealed segment without checking CRCs; reads still check.
    drop(log);
    let (mut log, _) = open(&mut disk);
    assert!(matches!(
        log.read(&mut disk, 0, i64::MAX, u32::MAX),
        Err(ReadError::Corrupt { .. })
    ));
    assert!(log.read(&mut disk, 1, i64::MAX, u32::MAX).is_ok());
}

#[test]
fn enospc_during_append_leaves_the_log_unchanged() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    let before = read_all(&mut log, &mut disk, 0);
    disk.fail_writes_after(0, WriteFault::NoSpace);
    let mut next = batch(2, 200);
    assert_eq!(
        log.append(&mut disk, &mut next, 1, NOW),
        Err(AppendError::Disk(DiskError::NoSpace))
    );
    disk.clear_write_faults();
    assert_eq!(log.log_end_offset(), 1);
    let path = format!("{DIR}/00000000000000000000.log");
    assert_eq!(disk.file_contents(&path).unwrap().len(), before.bytes.len());
    append(&mut log, &mut disk, batch(1, 10));
    sync_all(&mut log, &mut disk);
    drop(log);
    let (log, report) = open(&mut disk);
    assert_eq!(report.truncation, None);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn retention_bytes_deletes_oldest_durable_segments_and_persists_log_start() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    log.set_config(LogConfig {
        retention_bytes: 1500,
        ..config()
    });
    for _ in 0..12 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    // Nothing durable yet: nothing may go.
    let report = log.maintain(&mut disk, NOW).unwrap();
    assert_eq!(report.segments_deleted, 0);
    sync_all(&mut log, &mut disk);
    let report = log.maintain(&mut disk, NOW).unwrap();
    assert!(report.segments_deleted > 0);
    assert_eq!(report.log_start_offset, log.log_start_offset());
    assert!(log.size_bytes() >= 1500 - 400);
    assert!(matches!(
        log.read(&mut disk, 0, i64::MAX, 100),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    let start = log.log_start_offset();
    drop(log);
    disk.crash(5);
    let (log, report) = open(&mut disk);
    assert_eq!(report.log_start_offset, start);
    assert_eq!(log.log_end_offset(), 12);
}

#[test]
fn delete_segments_below_keeps_the_segment_holding_the_offset() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..12 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    assert!(log.segment_count() > 3, "small segments");
    // Nothing durable yet: nothing may go.
    let report = log.delete_segments_below(&mut disk, 7).unwrap();
    assert_eq!(report.segments_deleted, 0);
    sync_all(&mut log, &mut disk);
    let report = log.delete_segments_below(&mut disk, 7).unwrap();
    assert!(report.segments_deleted > 0);
    let start = log.log_start_offset();
    assert!(start <= 7 && start > 0, "start {start}");
    // Offset 7 is still readable: its segment stays.
    assert_eq!(read_all(&mut log, &mut disk, 7).next_offset, 12);
    let again = log.delete_segments_below(&mut disk, 7).unwrap();
    assert_eq!(again.segments_deleted, 0);
    drop(log);
    disk.crash(5);
    let (log, report) = open(&mut disk);
    assert_eq!(report.log_start_offset, start);
    assert_eq!(log.log_end_offset(), 12);
}

#[test]
fn retention_ms_deletes_segments_by_their_newest_timestamp() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..6 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    sync_all(&mut log, &mut disk);
    log.set_config(LogConfig {
        segment_ms: i64::MAX,
        ..config()
    });
    let segments = log.segment_count();
    assert!(segments > 1);
    let retention_ms = config().retention_ms;
    assert_eq!(
        log.maintain(&mut disk, NOW + retention_ms)
            .unwrap()
            .segments_deleted,
        0
    );
    let report = log.maintain(&mut disk, NOW + retention_ms + 1).unwrap();
    assert_eq!(report.segments_deleted, segments - 1);
    assert_eq!(log.segment_count(), 1, "only the active segment is left");
    assert_eq!(log.log_start_offset(), log.segments[0].base_offset);
}

/// A segment of control batches only has no record timestamp: it goes by time with the
/// next dated segment, not at once (replicas would drop their first offsets each on
/// its own).
#[test]
fn a_segment_without_record_timestamps_goes_with_the_next_dated_one() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let mut marker = crate::batch::build_leader_change_batch(0, 1, 1, NOW);
    log.append(&mut disk, &mut marker, 1, NOW).expect("append");
    log.roll_now(&mut disk).unwrap();
    append(&mut log, &mut disk, batch(1, 300));
    log.roll_now(&mut disk).unwrap();
    append(&mut log, &mut disk, batch(1, 300));
    sync_all(&mut log, &mut disk);
    log.set_config(LogConfig {
        segment_ms: i64::MAX,
        ..config()
    });
    assert_eq!(log.segment_count(), 3);
    let retention_ms = config().retention_ms;
    let report = log.maintain(&mut disk, NOW + 1).unwrap();
    assert_eq!(report.segments_deleted, 0, "the marker's segment is kept");
    let report = log.maintain(&mut disk, NOW + retention_ms + 1).unwrap();
    assert_eq!(report.segments_deleted, 2, "with the dated one after it");
    assert_eq!(log.log_start_offset(), 2);
}

#[test]
fn segment_ms_rolls_the_active_segment() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    let segment_ms = config().segment_ms;
    assert!(!log.maintain(&mut disk, NOW + segment_ms).unwrap().rolled);
    assert!(
        log.maintain(&mut disk, NOW + segment_ms + 1)
            .unwrap()
            .rolled
    );
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn truncate_to_removes_the_suffix_durably() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..10 {
        append(&mut log, &mut disk, batch(2, 150));
    }
    sync_all(&mut log, &mut disk);
    // Offset 7 is inside the batch 6..=7: the whole batch goes.
    log.truncate_to(&mut disk, 7).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.durable_offset(), 6);
    append(&mut log, &mut disk, batch(1, 10));
    assert_eq!(log.log_end_offset(), 7);
    sync_all(&mut log, &mut disk);
    drop(log);
    disk.crash(3);
    let (mut log, report) = open(&mut disk);
    assert_eq!(report.log_end_offset, 7);
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 7);
}

#[test]
fn offset_for_timestamp_finds_the_first_batch_at_or_after_it() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for i in 0..20i64 {
        let mut b = build_batch(1000 + i * 10, None, &[&[b'x'; 100]]);
        log.append(&mut disk, &mut b, 1, NOW).unwrap();
    }
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 1055, i64::MAX).unwrap(),
        Some((6, 1060))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 0, i64::MAX).unwrap(),
        Some((0, 1000))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 5000, i64::MAX).unwrap(),
        None
    );
    assert_eq!(log.offset_for_timestamp(&mut disk, 1055, 6).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((1190, 19)));
}

/// ListOffsets by time names a record, never a leader-change marker: on a replicated
/// partition the marker of a later election is newer than every record (J1 in
/// tests/FINDINGS.md), and a lookup sent there would skip the records it asked for.
#[test]
fn lookups_by_time_pass_over_control_batches() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let marker = |base| batch::build_leader_change_batch(base, 1, 1, NOW + 60_000);
    log.append_replicated(&mut disk, &marker(0), NOW).unwrap();
    for i in 0..3i64 {
        let mut b = build_batch(1000 + i * 10, None, &[b"x"]);
        batch::assign(&mut b, 1 + i, 1);
        log.append_replicated(&mut disk, &b, NOW).unwrap();
    }
    log.append_replicated(&mut disk, &marker(4), NOW).unwrap();
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 0, i64::MAX).unwrap(),
        Some((1, 1000))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 1011, i64::MAX).unwrap(),
        Some((3, 1020))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 1021, i64::MAX).unwrap(),
        None
    );
    assert_eq!(log.max_timestamp(), Some((1020, 3)));
}

/// Kafka answers the record, not its batch: a batch whose records were created over a
/// while is entered at the first one created at or after the time asked.
#[test]
fn lookup_by_time_finds_the_record_inside_its_batch() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, build_batch(500, None, &[b"a"]));
    let spread = batch::build_batch_spread_in_time(1000, 100, &[b"b", b"c", b"d"]);
    append(&mut log, &mut disk, spread);
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 1150, i64::MAX).unwrap(),
        Some((3, 1200))
    );
    assert_eq!(
        log.offset_for_timestamp(&mut disk, 1000, i64::MAX).unwrap(),
        Some((1, 1000))
    );
    assert_eq!(log.max_timestamp(), Some((1200, 1)));
}

#[test]
fn missing_or_garbage_index_is_rebuilt_on_open() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..8 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    sync_all(&mut log, &mut disk);
    let all = read_all(&mut log, &mut disk, 0);
    drop(log);
    let index = format!("{DIR}/00000000000000000000.index");
    assert!(disk.corrupt_stored(&index, 3, 0xff));
    let (mut log, report) = open(&mut disk);
    assert_eq!(report.truncation, None);
    assert_eq!(read_all(&mut log, &mut disk, 0), all);
    let bytes = disk.file_contents(&index).unwrap();
    assert!(decode_index(SegmentFileKind::OffsetIndex, &bytes).is_ok());
}

#[test]
fn rolled_segments_are_sealed_by_later_sync_rounds() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..8 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    sync_all(&mut log, &mut disk);
    let segments = log.segment_count();
    for segment in &log.segments[..segments - 1] {
        assert_eq!(segment.state, SealState::Sealed);
        let index = format!(
            "{DIR}/{}",
            segment_file_name(segment.base_offset, SegmentFileKind::TimeIndex)
        );
        assert!(disk.durable_contents(&index).is_some());
    }
}

#[test]
fn stray_temp_files_are_removed_on_open() {
    let mut disk = MemDisk::new(1);
    let (log, _) = open(&mut disk);
    drop(log);
    let temp = format!("{DIR}/log-start-offset.checkpoint.tmp");
    let file = disk.open(&temp, OpenMode::Create).unwrap();
    disk.close(file);
    open(&mut disk);
    assert!(!disk.exists(&temp));
}

#[test]
fn delete_removes_the_partition_directory() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    log.delete(&mut disk).unwrap();
    assert!(!disk.exists(DIR));
    assert_eq!(disk.open_file_count(), 0);
}

#[test]
fn open_files_stay_bounded_while_reading_many_segments() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..60 {
        append(&mut log, &mut disk, batch(1, 300));
    }
    sync_all(&mut log, &mut disk);
    assert!(log.segment_count() > SEGMENT_FILES_OPEN_MAX);
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 60);
    assert!(disk.open_file_count() <= SEGMENT_FILES_OPEN_MAX);
}

#[test]
fn fsyncgate_reopen_writes_surviving_bytes_again_before_calling_them_durable() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    log.start_sync(&mut disk);
    disk.fail_syncs(1);
    for completion in disk.complete_all_syncs() {
        log.on_sync_complete(&completion);
    }
    assert!(log.failure().is_some());
    drop(log);
    // Reopen in the same "kernel": the bytes are readable but were dropped as clean.
    let (log, report) = open(&mut disk);
    assert_eq!(report.log_end_offset, 1);
    assert_eq!(log.durable_offset(), 1);
    drop(log);
    disk.crash(1);
    let (log, _) = open(&mut disk);
    assert_eq!(log.log_end_offset(), 1, "what open called durable survived");
}

/// close() seals the active segment, but open still checks the CRCs of the last
/// segment (the active one again): a corrupt batch there is cut, not left to stall
/// readers. Found by tests/crash.rs (kill the broker with SIGTERM, flip a byte).
#[test]
fn a_flipped_byte_in_the_last_segment_after_a_clean_close_is_cut_at_open() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..3 {
        append(&mut log, &mut disk, batch(1, 10));
    }
    sync_all(&mut log, &mut disk);
    log.close(&mut disk).unwrap();
    let path = format!("{DIR}/00000000000000000000.log");
    let index = format!("{DIR}/00000000000000000000.index");
    assert!(disk.durable_contents(&index).is_some(), "close sealed it");
    let len = disk.file_contents(&path).unwrap().len() as u64;
    let last_batch_at = len - batch(1, 10).len() as u64;
    assert!(disk.corrupt_stored(&path, len - 3, 0x40));
    let (mut log, report) = open(&mut disk);
    let truncation = report.truncation.expect("a cut");
    assert!(truncation.reason.contains("crc"), "{}", truncation.reason);
    assert_eq!(truncation.position, last_batch_at);
    assert_eq!(truncation.offset, 2);
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 2);
    append(&mut log, &mut disk, batch(1, 10));
    assert_eq!(log.log_end_offset(), 3);
    log.check_invariants();
}

#[test]
fn close_seals_the_active_segment_when_everything_is_durable() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    sync_all(&mut log, &mut disk);
    log.close(&mut disk).unwrap();
    assert_eq!(disk.open_file_count(), 0);
    let index = format!("{DIR}/00000000000000000000.index");
    assert!(disk.durable_contents(&index).is_some());
    let (mut log, report) = open(&mut disk);
    assert_eq!(report.log_end_offset, 1);
    // The active segment has no index files while it takes appends.
    assert!(!disk.exists(&index));
    append(&mut log, &mut disk, batch(1, 10));
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn sealed_segment_timestamps_come_from_its_checksummed_index_not_unchecked_headers() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for i in 0..8i64 {
        let mut b = build_batch(1000 + i, None, &[&[b'x'; 300]]);
        log.append(&mut disk, &mut b, 1, NOW).unwrap();
    }
    sync_all(&mut log, &mut disk);
    let expected = log.max_timestamp();
    drop(log);
    // Flip the top bit of max_timestamp (byte 35) of the first batch, in a sealed segment.
    let first = format!("{DIR}/00000000000000000000.log");
    assert!(disk.corrupt_stored(&first, 35, 0x40));
    let (mut log, report) = open(&mut disk);
    assert_eq!(
        report.truncation, None,
        "sealed: headers are not CRC-checked"
    );
    assert_eq!(log.max_timestamp(), expected);
    assert!(matches!(
        log.read(&mut disk, 0, i64::MAX, u32::MAX),
        Err(ReadError::Corrupt { offset: 0, .. })
    ));
}

/// Found by `odradek sim --seed 100507`: the first open made the directory and failed
/// to sync its parent; the second open saw the directory and skipped the sync, so a
/// power loss later took the directory, and every acknowledged batch in it, away.
#[test]
fn open_after_a_failed_directory_sync_still_makes_the_directory_durable() {
    let mut disk = MemDisk::new(1);
    disk.fail_syncs(1);
    assert!(PartitionLog::open(&mut disk, DIR, config(), NOW).is_err());
    let (mut log, _) = open(&mut disk);
    append(&mut log, &mut disk, batch(2, 10));
    sync_all(&mut log, &mut disk);
    assert_eq!(log.durable_offset(), 2);
    crash_losing_everything_unsynced(&mut disk, 7);
    let (log, _) = open(&mut disk);
    assert_eq!(log.log_end_offset(), 2);
}

/// Found by `odradek sim --seed 104547`: recovery cut a torn tail (rewrite, truncate,
/// sync) and the sync failed, so the cut existed only in the page cache (fsyncgate).
/// The next open saw a clean segment, the log rolled and acknowledged records in a new
/// segment; after a power loss the old tail was back, and recovery cut it together
/// with every later segment. A bad tail whose checked batches end where the next
/// segment begins is cut alone now.
#[test]
fn a_cut_undone_by_a_failed_sync_does_not_take_later_segments_with_it() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    for _ in 0..3 {
        append(&mut log, &mut disk, batch(1, 10));
    }
    sync_all(&mut log, &mut disk);
    log.close(&mut disk).expect("close");
    // A torn write that reached the medium after the last batch.
    let path = join(DIR, &segment_file_name(0, SegmentFileKind::Log));
    let file = disk.open(&path, OpenMode::ReadWrite).expect("open segment");
    let end = disk.file_len(file).expect("len");
    disk.write_at(file, end, &[0x5a; 40]).expect("write junk");
    disk.sync_now(file).expect("sync junk");
    disk.close(file);
    // Open: parent directory sync, partition directory sync, then the sync of the
    // cut segment fails.
    disk.fail_one_sync_after(2);
    assert!(PartitionLog::open(&mut disk, DIR, config(), NOW).is_err());
    let (mut log, _) = open(&mut disk);
    assert_eq!(log.log_end_offset(), 3);
    log.roll_now(&mut disk).expect("roll");
    for _ in 0..2 {
        append(&mut log, &mut disk, batch(1, 10));
    }
    sync_all(&mut log, &mut disk);
    assert_eq!(log.durable_offset(), 5);
    drop(log);
    crash_losing_everything_unsynced(&mut disk, 3);
    let (mut log, report) = open(&mut disk);
    assert_eq!(report.log_end_offset, 5, "{report:?}");
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 5);
    log.check_invariants();
}

/// Found by `odradek sim --seed 95003651`: a leader's batches 1 and 2 (epoch 3) were
/// unsynced at a crash that kept batch 2 but not batch 1; recovery cut the log at 1,
/// and the cut's sync failed, so the cut lived only in the page cache. The next leader
/// (epoch 4) appended its own batch 1, exactly as long as the old one, and synced it;
/// after a power loss the never-durable cut was gone, and the old epoch-3 batch 2 sat
/// right behind the new epoch-4 batch 1 with an offset that fit. Recovery takes no
/// batch of an older epoch after a newer one: it cuts there.
#[test]
fn a_stale_batch_behind_a_cut_undone_by_a_failed_sync_is_cut_again() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    log.append(&mut disk, &mut batch(1, 10), 3, NOW).unwrap();
    sync_all(&mut log, &mut disk);
    log.close(&mut disk).expect("close");
    // What the crash left: a torn batch 1 (as long as the batch the next leader will
    // write), then the old leader's batch 2, whole, in epoch 3.
    let new_batch_1 = batch(1, 10);
    let path = join(DIR, &segment_file_name(0, SegmentFileKind::Log));
    let file = disk.open(&path, OpenMode::ReadWrite).expect("open segment");
    let end = disk.file_len(file).expect("len");
    disk.write_at(file, end, &vec![0x5a; new_batch_1.len()])
        .expect("torn batch 1");
    let stale = leader_batch(2, 3, 1, None);
    disk.write_at(file, end + new_batch_1.len() as u64, &stale)
        .expect("old batch 2");
    disk.sync_now(file).expect("sync");
    disk.close(file);
    // Open: parent directory sync, partition directory sync, then the sync of the cut.
    disk.fail_one_sync_after(2);
    assert!(PartitionLog::open(&mut disk, DIR, config(), NOW).is_err());
    let (mut log, _) = open(&mut disk);
    assert_eq!(log.log_end_offset(), 1, "the cut, in the page cache");
    log.append(&mut disk, &mut new_batch_1.clone(), 4, NOW)
        .unwrap();
    sync_all(&mut log, &mut disk);
    drop(log);
    crash_losing_everything_unsynced(&mut disk, 5);
    let (mut log, report) = open(&mut disk);
    assert_eq!(
        report.log_end_offset, 2,
        "the epoch-3 batch 2 is cut: {report:?}"
    );
    let epochs = log.batch_epochs(&mut disk).expect("epochs");
    assert_eq!(epochs, vec![(3, 0), (4, 1)]);
    log.check_invariants();
}

/// A batch of `records` one-byte records, as a leader wrote it: at `base_offset`, in
/// `epoch`.
fn leader_batch(
    base_offset: i64,
    epoch: i32,
    records: usize,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let values: Vec<&[u8]> = (0..records).map(|_| b"r".as_slice()).collect();
    let mut bytes = build_batch(NOW, producer, &values);
    crate::batch::assign(&mut bytes, base_offset, epoch);
    bytes
}

#[test]
fn append_replicated_keeps_the_leaders_offsets_and_epochs_and_rolls_like_append() {
    let mut disk = MemDisk::new(1);
    let (mut leader, _) = PartitionLog::open(&mut disk, "leader-0", config(), NOW).unwrap();
    let (mut follower, _) = PartitionLog::open(&mut disk, "follower-0", config(), NOW).unwrap();
    for i in 0..12 {
        let mut bytes = batch(1 + i % 3, 100);
        leader
            .append(&mut disk, &mut bytes, 1 + (i / 5) as i32, NOW)
            .unwrap();
    }
    let copied = read_all(&mut leader, &mut disk, 0);
    let mut position = 0;
    while position < copied.bytes.len() {
        let header = BatchHeader::parse(&copied.bytes[position..]).unwrap();
        let end = position + header.size_bytes() as usize;
        follower
            .append_replicated(&mut disk, &copied.bytes[position..end], NOW)
            .unwrap();
        position = end;
    }
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.segment_count(), leader.segment_count());
    assert_eq!(read_all(&mut follower, &mut disk, 0), copied);
    assert_eq!(
        follower.durable_offset(),
        0,
        "not durable before a sync round"
    );
    sync_all(&mut follower, &mut disk);
    assert_eq!(follower.durable_offset(), follower.log_end_offset());
    follower.check_invariants();
}

#[test]
fn append_replicated_refuses_gaps_overlaps_and_bad_crcs_and_leaves_the_log_unchanged() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    log.append_replicated(&mut disk, &leader_batch(0, 1, 2, None), NOW)
        .unwrap();
    let not_at_end = AppendError::Batch(BatchError::InvalidHeader {
        reason: "a replicated batch must start at the log end offset",
    });
    for base_offset in [0, 1, 3] {
        assert_eq!(
            log.append_replicated(&mut disk, &leader_batch(base_offset, 1, 1, None), NOW),
            Err(not_at_end.clone())
        );
    }
    let mut corrupt = leader_batch(2, 1, 1, None);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(matches!(
        log.append_replicated(&mut disk, &corrupt, NOW),
        Err(AppendError::Batch(BatchError::CrcMismatch { .. }))
    ));
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 2);
    log.check_invariants();
}

#[test]
fn append_replicated_skips_sequence_checks_but_records_producers_for_a_later_leader() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    // Sequence 5 of an unknown producer: a leader would refuse it here, a follower
    // copies what its leader accepted.
    let replicated = leader_batch(0, 1, 2, Some((7, 0, 5)));
    log.append_replicated(&mut disk, &replicated, NOW).unwrap();
    let entry = log.producer_state(7).unwrap();
    assert_eq!(entry.last_sequence, 6);
    // Promoted to leader, the log answers the producer's retry as a duplicate...
    let mut retry = build_batch(NOW, Some((7, 0, 5)), &[b"r", b"r"]);
    assert_eq!(
        log.append(&mut disk, &mut retry, 2, NOW),
        Ok(AppendOutcome::Duplicate {
            base_offset: 0,
            last_offset: 1,
            max_timestamp: NOW
        })
    );
    // ...and takes the next sequence.
    let mut next = build_batch(NOW, Some((7, 0, 7)), &[b"r"]);
    assert!(matches!(
        log.append(&mut disk, &mut next, 2, NOW),
        Ok(AppendOutcome::Appended { base_offset: 2, .. })
    ));
}

#[test]
fn batch_epochs_lists_each_epoch_change_across_segments_and_reopens() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    assert_eq!(log.batch_epochs(&mut disk).unwrap(), vec![]);
    // Epoch 1 at 0..6, epoch 2 at 6..9, epoch 5 at 9..12 (3 records per batch).
    for epoch in [1, 1, 2, 5] {
        let mut bytes = batch(3, 300);
        log.append(&mut disk, &mut bytes, epoch, NOW).unwrap();
    }
    assert!(log.segment_count() >= 3, "the changes span segments");
    let expected = vec![(1, 0), (2, 6), (5, 9)];
    assert_eq!(log.batch_epochs(&mut disk).unwrap(), expected);
    sync_all(&mut log, &mut disk);
    log.close(&mut disk).unwrap();
    let (mut log, _) = open(&mut disk);
    assert_eq!(log.batch_epochs(&mut disk).unwrap(), expected);
    log.truncate_to(&mut disk, 7).unwrap();
    assert_eq!(log.batch_epochs(&mut disk).unwrap(), vec![(1, 0)]);
}

#[test]
fn reset_starts_an_empty_log_at_the_offset_durably_and_remembers_the_epoch_before_it() {
    for seed in 0..10 {
        let mut disk = MemDisk::new(seed);
        let (mut log, _) = open(&mut disk);
        for _ in 0..8 {
            append(&mut log, &mut disk, batch(2, 200));
        }
        sync_all(&mut log, &mut disk);
        append(&mut log, &mut disk, batch(1, 10));
        // A round in flight when the reset comes covers files that are gone.
        assert!(!log.start_sync(&mut disk).is_empty());
        log.reset(&mut disk, 100, 7).unwrap();
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.durable_offset()
            ),
            (100, 100, 100)
        );
        assert_eq!(log.epoch_before_start(), Some(7));
        assert_eq!(log.segment_count(), 1);
        for completion in disk.complete_all_syncs() {
            assert!(!log.on_sync_complete(&completion));
        }
        assert_eq!(log.durable_offset(), 100);
        assert_eq!(log.batch_epochs(&mut disk).unwrap(), vec![]);
        assert!(matches!(
            log.read(&mut disk, 99, i64::MAX, u32::MAX),
            Err(ReadError::OffsetOutOfRange {
                log_start_offset: 100,
                ..
            })
        ));
        log.append_replicated(&mut disk, &leader_batch(100, 8, 2, None), NOW)
            .unwrap();
        log.check_invariants();
        drop(log);
        // Durable when it returned: a crash right away keeps the reset.
        disk.crash(seed);
        let (log, report) = open(&mut disk);
        assert_eq!(report.log_start_offset, 100);
        assert!(report.log_end_offset == 100 || report.log_end_offset == 102);
        assert_eq!(log.epoch_before_start(), Some(7));
        let names = disk.read_dir(DIR).unwrap();
        assert!(
            names
                .iter()
                .all(|name| !name.starts_with("00000000000000000000")),
            "old segments are gone: {names:?}"
        );
        log.check_invariants();
    }
}

#[test]
fn reset_interrupted_by_a_crash_leaves_the_old_prefix_or_the_new_empty_log() {
    // Write faults strike the leader epoch checkpoint (0), the log start checkpoint (1),
    // or nothing (2); a crash follows at once.
    for writes_ok in 0..3 {
        for seed in 0..10 {
            let mut disk = MemDisk::new(seed);
            let (mut log, _) = open(&mut disk);
            for _ in 0..10 {
                append(&mut log, &mut disk, batch(2, 150));
            }
            sync_all(&mut log, &mut disk);
            // Offset 11 is in the batch 10..=11: it and everything after it go first.
            let kept = log.read(&mut disk, 0, 10, u32::MAX).unwrap();
            disk.fail_writes_after(writes_ok, WriteFault::Io);
            let reset = log.reset(&mut disk, 12, 4);
            assert_eq!(reset.is_ok(), writes_ok >= 2, "{reset:?}");
            disk.clear_write_faults();
            drop(log);
            disk.crash(seed);
            let (mut log, report) = open(&mut disk);
            if report.log_start_offset == 12 {
                assert_eq!(report.log_end_offset, 12);
                assert_eq!(log.epoch_before_start(), Some(4));
            } else {
                assert!(writes_ok < 2);
                assert_eq!(report.log_start_offset, 0);
                assert_eq!(
                    report.log_end_offset, 10,
                    "the durable prefix, nothing above"
                );
                assert_eq!(read_all(&mut log, &mut disk, 0), kept);
            }
            log.check_invariants();
        }
    }
}

#[test]
fn reset_below_the_log_start_is_refused() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    log.reset(&mut disk, 50, 3).unwrap();
    assert!(matches!(
        log.reset(&mut disk, 49, 3),
        Err(LogError::OffsetOutOfRange { offset: 49, .. })
    ));
    // At the log start itself: the log is emptied there again.
    log.append_replicated(&mut disk, &leader_batch(50, 4, 1, None), NOW)
        .unwrap();
    log.reset(&mut disk, 50, 3).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
}

#[test]
fn retention_persists_the_epoch_before_the_new_log_start() {
    let mut disk = MemDisk::new(1);
    let mut config = config();
    config.retention_bytes = 0;
    let (mut log, _) = PartitionLog::open(&mut disk, DIR, config.clone(), NOW).unwrap();
    for epoch in [1, 2, 2, 3, 3] {
        let mut bytes = batch(2, 400);
        log.append(&mut disk, &mut bytes, epoch, NOW).unwrap();
    }
    sync_all(&mut log, &mut disk);
    assert_eq!(log.epoch_before_start(), None);
    // One batch per segment; the bound keeps what holds offsets at or above 4.
    let report = log.maintain_below(&mut disk, NOW, 4).unwrap();
    assert_eq!(report.log_start_offset, 4);
    assert_eq!(log.epoch_before_start(), Some(2));
    // One batch per segment: all but the active one ([8, 10), epoch 3) go.
    assert_eq!(log.maintain(&mut disk, NOW).unwrap().log_start_offset, 8);
    assert_eq!(log.epoch_before_start(), Some(3));
    drop(log);
    disk.crash(3);
    let (log, report) = PartitionLog::open(&mut disk, DIR, config, NOW).unwrap();
    assert_eq!(report.log_start_offset, 8);
    assert_eq!(log.epoch_before_start(), Some(3));
}

#[test]
fn maintain_below_never_deletes_a_segment_holding_the_bound() {
    let mut disk = MemDisk::new(1);
    let mut config = config();
    config.retention_bytes = 0;
    let (mut log, _) = PartitionLog::open(&mut disk, DIR, config, NOW).unwrap();
    for _ in 0..6 {
        append(&mut log, &mut disk, batch(2, 400));
    }
    sync_all(&mut log, &mut disk);
    // One batch per segment: [0, 2), [2, 4), ..., [10, 12) the active one.
    assert_eq!(log.segment_count(), 6);
    assert_eq!(
        log.maintain_below(&mut disk, NOW, 1)
            .unwrap()
            .segments_deleted,
        0
    );
    assert_eq!(
        log.maintain_below(&mut disk, NOW, 3)
            .unwrap()
            .log_start_offset,
        2
    );
    assert_eq!(
        log.maintain_below(&mut disk, NOW, 4)
            .unwrap()
            .log_start_offset,
        4
    );
    assert_eq!(
        log.maintain_below(&mut disk, NOW, 100)
            .unwrap()
            .log_start_offset,
        10
    );
}

#[test]
fn epoch_checkpoint_round_trips_and_damage_reads_as_unknown() {
    let bytes = encode_epoch_checkpoint(&[(10, 3), (20, 4)]);
    assert_eq!(
        decode_epoch_checkpoint(&bytes),
        Some(vec![(10, 3), (20, 4)])
    );
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        assert_eq!(decode_epoch_checkpoint(&damaged), None, "byte {at}");
    }
    assert_eq!(decode_epoch_checkpoint(&bytes[..bytes.len() - 1]), None);
}

/// A sync round started before a truncation covers only the bytes written before it:
/// when it completes after the truncation and new appends, `durable_offset` stays at
/// the cut, and a crash then keeps everything below it.
#[test]
fn a_sync_round_started_before_a_truncation_never_covers_what_was_appended_after_it() {
    for seed in 0..20 {
        let mut disk = MemDisk::new(seed);
        let (mut log, _) = open(&mut disk);
        for _ in 0..4 {
            append(&mut log, &mut disk, build_batch(NOW, None, &[b"a", b"a"]));
        }
        assert!(!log.start_sync(&mut disk).is_empty());
        log.truncate_to(&mut disk, 4).unwrap();
        assert_eq!(log.log_end_offset(), 4);
        assert!(log.durable_offset() <= 4, "a truncation lowers it at once");
        for _ in 0..3 {
            append(&mut log, &mut disk, build_batch(NOW, None, &[b"b", b"b"]));
        }
        for completion in disk.complete_all_syncs() {
            log.on_sync_complete(&completion);
        }
        assert_eq!(
            log.durable_offset(),
            4,
            "the old round covers the cut, not past it"
        );
        let durable = log.read(&mut disk, 0, 4, u32::MAX).unwrap();
        assert_eq!(durable.next_offset, 4);
        drop(log);
        disk.crash(seed);
        let (mut log, report) = open(&mut disk);
        assert!(report.log_end_offset >= 4);
        assert_eq!(log.read(&mut disk, 0, 4, u32::MAX).unwrap(), durable);
        log.check_invariants();
    }
}

/// The producer-state rebuild that a truncation runs reads each batch's header, then
/// the whole batch to check its CRC. A bit flipped on the first read only (here in the
/// producer epoch: 0 read as 4096) must not reach the producer state: it would fence
/// the producer, whose epochs are far below, for thousands of bumps. Found by the
/// cluster simulator (seed 9000186 with `--nodes 3 --groups`).
#[test]
fn a_flip_on_the_header_read_does_not_reach_the_producer_state() {
    let mut disk = MemDisk::new(1);
    let (mut log, _) = open(&mut disk);
    let mut first = build_batch(NOW, Some((7, 0, 0)), &[b"a", b"b"]);
    log.append(&mut disk, &mut first, 1, NOW).unwrap();
    let mut second = build_batch(NOW, Some((7, 0, 2)), &[b"c"]);
    log.append(&mut disk, &mut second, 1, NOW).unwrap();
    sync_all(&mut log, &mut disk);
    // The producer epoch's high byte is at byte 51 of a batch header. The truncation
    // reads the first batch's header to find the cut (read 0), then the rebuild reads
    // it (read 1, flipped) and the whole batch for its CRC (read 2).
    disk.flip_one_read(&format!("{DIR}/00000000000000000000.log"), 51, 0x10, 1);
    log.truncate_to(&mut disk, 2).unwrap();
    assert_eq!(disk.stats().reads_corrupted, 1, "the flip was read");
    assert_eq!(log.producer_state(7).unwrap().producer_epoch, 0);
    let mut retry = build_batch(NOW, Some((7, 0, 2)), &[b"c"]);
    assert!(matches!(
        log.append(&mut disk, &mut retry, 1, NOW).unwrap(),
        AppendOutcome::Appended { base_offset: 2, .. }
    ));
}

/// Three segments of three batches each (segment_bytes 1024, batches of ~300 bytes),
/// all durable: offsets 0..9, segment bases 0, 3 and 6.
fn three_sealed_segments(disk: &mut MemDisk) -> PartitionLog {
    let (mut log, _) = open(disk);
    for _ in 0..9 {
        append(&mut log, disk, batch(1, 240));
        sync_all(&mut log, disk);
    }
    assert_eq!(
        log.segments
            .iter()
            .map(|segment| segment.base_offset)
            .collect::<Vec<_>>(),
        vec![0, 3, 6]
    );
    log
}

#[test]
fn a_read_that_fails_its_check_once_is_read_again() {
    let mut disk = MemDisk::new(1);
    let mut log = three_sealed_segments(&mut disk);
    let whole = read_all(&mut log, &mut disk, 4);
    // A bit flipped in the record data of the batch at offset 4, on two reads in a
    // row: the third reads right.
    let path = format!("{DIR}/00000000000000000003.log");
    let size = disk.file_contents(&path).unwrap().len() as u64 / 3;
    disk.flip_one_read(&path, size + 100, 0x01, 0);
    disk.flip_one_read(&path, size + 100, 0x01, 1);
    assert_eq!(read_all(&mut log, &mut disk, 4), whole);
    assert_eq!(disk.stats().reads_corrupted, 2, "both flips were read");
    // Flipped on many reads in a row, it is still not damage: one read is right.
    for skip in 0..DAMAGE_CONFIRM_READS - 1 {
        disk.flip_one_read(&path, size + 100, 0x01, skip);
    }
    assert!(!log.damage_confirmed(&mut disk, 4));
}

#[test]
fn rot_is_corrupt_on_every_read_and_cut_damaged_removes_it_durably() {
    let mut disk = MemDisk::new(1);
    let mut log = three_sealed_segments(&mut disk);
    // Rot in the record data of the batch at offset 4, on the medium.
    let path = format!("{DIR}/00000000000000000003.log");
    let size = disk.file_contents(&path).unwrap().len() as u64 / 3;
    assert!(disk.corrupt_stored(&path, size + 100, 0x01));
    match log.read(&mut disk, 4, i64::MAX, u32::MAX) {
        Err(ReadError::Corrupt { offset: 4, .. }) => {}
        other => panic!("expected the batch at 4 corrupt, got {other:?}"),
    }
    // The batches before it still read; a read from below stops before it.
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 4);
    assert!(log.damage_confirmed(&mut disk, 4));
    assert!(!log.damage_confirmed(&mut disk, 3));
    // truncate_to trusts only a checked batch at the cut, so it refuses to cut there.
    assert!(matches!(
        log.truncate_to(&mut disk, 4),
        Err(LogError::Corrupt { offset: 4, .. })
    ));
    log.cut_damaged(&mut disk, 4).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.durable_offset(), 4);
    log.check_invariants();
    // Durable at once: a crash brings back the cut log, and appends go on from 4.
    drop(log);
    disk.crash(3);
    let (mut log, report) = open(&mut disk);
    assert_eq!(report.log_end_offset, 4);
    assert_eq!(read_all(&mut log, &mut disk, 0).next_offset, 4);
    assert!(matches!(
        append(&mut log, &mut disk, batch(1, 10)),
        AppendOutcome::Appended { base_offset: 4, .. }
    ));
}

#[test]
fn cut_damaged_refuses_when_an_earlier_batch_is_damaged_too() {
    let mut disk = MemDisk::new(1);
    let mut log = three_sealed_segments(&mut disk);
    // Rot in the batches at offsets 1 and 7.
    let first = format!("{DIR}/00000000000000000000.log");
    let size = disk.file_contents(&first).unwrap().len() as u64 / 3;
    assert!(disk.corrupt_stored(&first, size + 100, 0x01));
    let last = format!("{DIR}/00000000000000000006.log");
    assert!(disk.corrupt_stored(&last, size + 100, 0x01));
    // The cut at 7 rebuilds producer state from the batches below it: 1 fails.
    assert!(matches!(
        log.cut_damaged(&mut disk, 7),
        Err(LogError::Corrupt { offset: 1, .. })
    ));
    assert_eq!(log.log_end_offset(), 9, "nothing changed");
    // Not a batch boundary... there is none inside a one-record batch; out of range:
    assert!(matches!(
        log.cut_damaged(&mut disk, 9),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.cut_damaged(&mut disk, 1).unwrap();
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(
        log.segments
            .iter()
            .map(|segment| segment.base_offset)
            .collect::<Vec<_>>(),
        vec![0]
    );
    log.check_invariants();
}

/// Bytes the index files prove durable, read back from the disk for segment `base`.
fn proven(disk: &MemDisk, base: i64) -> Option<u64> {
    let stem = format!("{DIR}/{base:020}");
    proven_durable_bytes(
        base,
        &disk.durable_contents(&format!("{stem}.index"))?,
        &disk.durable_contents(&format!("{stem}.timeindex"))?,
        disk.durable_contents(&format!("{stem}.log"))?.len() as u64,
    )
}

/// Opens the log, recording what `on_damage` was told.
fn open_noting_damage(disk: &mut MemDisk) -> (PartitionLog, OpenReport, Vec<i64>) {
    open_noting_damage_with(disk, config())
}

/// Opens a log with a synced-through record, recording what `on_damage` was told.
fn open_recorded(disk: &mut MemDisk) -> (PartitionLog, OpenReport, Vec<i64>) {
    let config = LogConfig {
        synced_record: true,
        ..config()
    };
    open_noting_damage_with(disk, config)
}

fn open_noting_damage_with(
    disk: &mut MemDisk,
    config: LogConfig,
) -> (PartitionLog, OpenReport, Vec<i64>) {
    let mut damage = Vec::new();
    let (log, report) = PartitionLog::open_with(disk, DIR, config, NOW, &mut |_, offset| {
        damage.push(offset);
        Ok(())
    })
    .expect("open");
    (log, report, damage)
}

#[test]
fn recovery_calls_rot_in_proven_bytes_damage_and_says_so_before_cutting() {
    let mut disk = MemDisk::new(1);
    let log = three_sealed_segments(&mut disk);
    // Closing seals the last segment too: its index files prove all of it durable.
    log.close(&mut disk).unwrap();
    let last = format!("{DIR}/00000000000000000006.log");
    let size = disk.durable_contents(&last).unwrap().len() as u64;
    assert_eq!(proven(&disk, 6), Some(size));
    // Rot in the batch at offset 7. The last segment is checked at open: the cut is
    // damage, and the owner hears of it first.
    assert!(disk.corrupt_stored(&last, size / 3 + 100, 0x01));
    let (log, report, damage) = open_noting_damage(&mut disk);
    assert_eq!(damage, vec![7]);
    let truncation = report.truncation.expect("cut");
    assert!(truncation.damaged);
    assert_eq!((truncation.offset, log.log_end_offset()), (7, 7));
    // A torn tail (bytes no index proves) is cut without a word.
    let mut disk = MemDisk::new(2);
    let mut log = three_sealed_segments(&mut disk);
    append(&mut log, &mut disk, batch(1, 10));
    sync_all(&mut log, &mut disk);
    drop(log);
    let size = disk.durable_contents(&last).unwrap().len() as u64;
    assert_eq!(
        proven(&disk, 6),
        None,
        "the active segment has no index files"
    );
    assert!(disk.corrupt_stored(&last, size - 3, 0x01));
    let (log, report, damage) = open_noting_damage(&mut disk);
    assert!(damage.is_empty());
    assert!(!report.truncation.expect("cut").damaged);
    assert_eq!(log.log_end_offset(), 9);
}

#[test]
fn the_synced_record_tells_rot_in_the_active_segment_from_a_torn_tail() {
    let mut disk = MemDisk::new(3);
    let (mut log, _, _) = open_recorded(&mut disk);
    for _ in 0..3 {
        append(&mut log, &mut disk, batch(1, 10));
    }
    // The first round syncs the data; durable only once the second one has put the
    // offset into the record.
    assert!(!log.start_sync(&mut disk).is_empty());
    for completion in disk.complete_all_syncs() {
        log.on_sync_complete(&completion);
    }
    assert_eq!(log.durable_offset(), 0, "synced, not recorded yet");
    sync_all(&mut log, &mut disk);
    assert_eq!(log.durable_offset(), 3);
    let record = disk
        .durable_contents(&format!("{DIR}/{}", crate::synced::SYNCED_THROUGH_FILE))
        .expect("record file");
    assert_eq!(crate::synced::synced_through(&record), Some(3));
    // Two more batches, synced but never recorded: a crash may tear them.
    append(&mut log, &mut disk, batch(1, 10));
    append(&mut log, &mut disk, batch(1, 10));
    assert!(!log.start_sync(&mut disk).is_empty());
    for completion in disk.complete_all_syncs() {
        log.on_sync_complete(&completion);
    }
    assert_eq!(log.durable_offset(), 3);
    drop(log);
    let active = format!("{DIR}/00000000000000000000.log");
    let size = disk.durable_contents(&active).unwrap().len() as u64;
    let batch_bytes = size / 5;
    // Damage above the record (offset 4) looks like a torn tail: cut without a word.
    assert!(disk.corrupt_stored(&active, 4 * batch_bytes + 70, 0x01));
    let (log, report, damage) = open_recorded(&mut disk);
    assert!(damage.is_empty());
    assert!(!report.truncation.expect("cut").damaged);
    assert_eq!(log.log_end_offset(), 4);
    drop(log);
    // Rot below it (offset 1) in the active segment, which has no index files, is
    // damage: the owner hears of it before the cut.
    assert!(disk.corrupt_stored(&active, batch_bytes + 70, 0x01));
    let (log, report, damage) = open_recorded(&mut disk);
    assert_eq!(damage, vec![1]);
    let truncation = report.truncation.expect("cut");
    assert!(truncation.damaged);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_log_that_ends_below_the_synced_record_lost_its_end() {
    let mut disk = MemDisk::new(5);
    let (mut log, _, _) = open_recorded(&mut disk);
    for _ in 0..3 {
        append(&mut log, &mut disk, batch(1, 10));
    }
    sync_all(&mut log, &mut disk);
    assert_eq!(log.durable_offset(), 3);
    drop(log);
    // The file loses its last batch whole: every batch left is sound, yet offset 2
    // was synced.
    let active = format!("{DIR}/00000000000000000000.log");
    let size = disk.durable_contents(&active).unwrap().len() as u64;
    let file = disk.open(&active, OpenMode::ReadWrite).unwrap();
    disk.truncate(file, size / 3 * 2).unwrap();
    disk.sync_now(file).unwrap();
    disk.close(file);
    let (log, report, damage) = open_recorded(&mut disk);
    assert_eq!(damage, vec![2]);
    assert!(report.truncation.expect("reported").damaged);
    assert_eq!(log.log_end_offset(), 2);
    drop(log);
    // The record now names the end: the next open finds nothing wrong.
    let (_, report, damage) = open_recorded(&mut disk);
    assert!(damage.is_empty() && report.truncation.is_none());
}

#[test]
fn a_rotted_index_file_under_the_synced_record_loses_no_proof() {
    let mut disk = MemDisk::new(6);
    let (mut log, _, _) = open_recorded(&mut disk);
    for _ in 0..9 {
        append(&mut log, &mut disk, batch(1, 240));
        sync_all(&mut log, &mut disk);
    }
    assert_eq!(log.durable_offset(), 9);
    drop(log);
    // The first segment's index no longer vouches for it, and its record data rotted
    // too: the record still says offset 1 was durable.
    let first = format!("{DIR}/00000000000000000000");
    assert!(proven(&disk, 0).is_some());
    assert!(disk.corrupt_stored(&format!("{first}.index"), 3, 0x04));
    assert_eq!(proven(&disk, 0), None);
    let size = disk
        .durable_contents(&format!("{first}.log"))
        .unwrap()
        .len() as u64;
    assert!(disk.corrupt_stored(&format!("{first}.log"), size / 3 + 100, 0x01));
    let (log, report, damage) = open_recorded(&mut disk);
    assert_eq!(damage, vec![1]);
    assert!(report.truncation.expect("cut").damaged);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_cut_lowers_the_synced_record_before_the_bytes_change() {
    let mut disk = MemDisk::new(4);
    let (mut log, _, _) = open_recorded(&mut disk);
    for _ in 0..4 {
        append(&mut log, &mut disk, batch(1, 10));
    }
    sync_all(&mut log, &mut disk);
    assert_eq!(log.durable_offset(), 4);
    log.truncate_to(&mut disk, 2).unwrap();
    let path = format!("{DIR}/{}", crate::synced::SYNCED_THROUGH_FILE);
    let record = disk.durable_contents(&path).expect("record file");
    assert_eq!(crate::synced::synced_through(&record), Some(2));
    // Different batches at the same offsets, never synced: a torn one is a torn tail,
    // not damage, although the old record covered those offsets.
    append(&mut log, &mut disk, batch(2, 30));
    append(&mut log, &mut disk, batch(2, 30));
    drop(log);
    let active = format!("{DIR}/00000000000000000000.log");
    let size = disk.file_contents(&active).unwrap().len() as u64;
    assert!(disk.corrupt_stored(&active, size - 5, 0x01));
    let (log, report, damage) = open_recorded(&mut disk);
    assert!(damage.is_empty(), "{report:?}");
    assert!(!report.truncation.expect("cut").damaged);
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn a_failing_damage_callback_fails_the_open_and_cuts_nothing() {
    let mut disk = MemDisk::new(1);
    let log = three_sealed_segments(&mut disk);
    log.close(&mut disk).unwrap();
    let last = format!("{DIR}/00000000000000000006.log");
    let size = disk.durable_contents(&last).unwrap().len() as u64;
    assert!(disk.corrupt_stored(&last, size / 3 + 100, 0x01));
    let failed = PartitionLog::open_with(&mut disk, DIR, config(), NOW, &mut |_, _| {
        Err(DiskError::Io {
            message: "injected".to_string(),
        })
    });
    assert!(failed.is_err());
    assert_eq!(disk.durable_contents(&last).unwrap().len() as u64, size);
    assert_eq!(
        proven(&disk, 6),
        Some(size),
        "the proof is kept for the next try"
    );
}

#[test]
fn a_truncation_keeps_the_proof_that_the_bytes_it_keeps_were_durable() {
    let mut disk = MemDisk::new(1);
    let mut log = three_sealed_segments(&mut disk);
    log.truncate_to(&mut disk, 5).unwrap();
    // The cut segment (base 3) is the active one now, and its index files describe
    // what stayed of it: offsets 3 and 4.
    let path = format!("{DIR}/00000000000000000003.log");
    let kept = disk.durable_contents(&path).unwrap().len() as u64;
    assert_eq!(proven(&disk, 3), Some(kept));
    log.check_invariants();
    // Appends go on after it; rot in the kept batch at 4 is then damage at the next
    // open, not a torn tail.
    append(&mut log, &mut disk, batch(1, 10));
    sync_all(&mut log, &mut disk);
    drop(log);
    assert!(disk.corrupt_stored(&path, kept - 3, 0x01));
    let (log, report, damage) = open_noting_damage(&mut disk);
    assert_eq!(damage, vec![4]);
    assert!(report.truncation.expect("cut").damaged);
    assert_eq!(log.log_end_offset(), 4);
}
