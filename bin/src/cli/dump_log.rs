//! `odradek dump-log PATH...`: decodes segment files and checks every batch, like
//! Kafka's `kafka-dump-log.sh`.
//!
//! A PATH is a segment file (`<base offset>.log`, or any file of batches), a partition
//! directory (its `*.log` files in offset order), or a data directory (each partition
//! directory in it). Every file is read with the same scanner recovery uses
//! (`odradek_log::segment::scan_segment`) over the broker's own real-file disk, opened
//! read-only: nothing is locked, created or changed, so it is safe on the data
//! directory of a running broker.
//!
//! ```text
//! Dumping data/orders-0/00000000000000000000.log
//! batch position=0 base_offset=0 last_offset=2 records=3 size=120 crc=ok compression=none ...
//! | offset=0 timestamp=1700000000000 key="k" value="v1" headers=0        (--print-records)
//! CORRUPT at byte 120: crc mismatch: stored 0x..., computed 0x...; 87 bytes from byte 120 to the end (207) are not valid batches
//! summary: 1 batches, 3 records, offsets 0..2, 120 of 207 bytes valid
//! ```
//!
//! Exit status: 0 when every file is clean, [`EXIT_CORRUPT`] (3) when a scan stopped
//! early (a short, malformed or CRC-failing batch, or offsets that do not follow on), 1
//! when a path cannot be read, 2 for bad flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use odradek_log::batch::{BatchHeader, Compression};
use odradek_log::io::{Disk, OpenMode};
use odradek_log::segment::{SegmentFileKind, SegmentScan, parse_segment_file_name, scan_segment};

use crate::disk::ProdDisk;

/// Exit status of `odradek dump-log` when corruption was found.
pub const EXIT_CORRUPT: u8 = 3;

/// Flags of `odradek dump-log`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Segment files, partition directories or data directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also decode each batch (decompressing it) and print its records' keys and values.
    #[arg(long)]
    print_records: bool,
}

/// The error `dump-log` ends with when a scan found corruption (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("corruption found in {files} of {scanned} segment files")]
pub struct CorruptionFound {
    /// Files with corruption.
    pub files: usize,
    /// Files scanned.
    pub scanned: usize,
}

/// Totals over every file dumped.
#[derive(Default)]
struct Totals {
    files: usize,
    corrupt_files: usize,
}

/// Runs `odradek dump-log`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut totals = Totals::default();
    let mut out = String::new();
    for path in &args.paths {
        for (dir, names) in segment_files(path)? {
            let mut disk = ProdDisk::open_read_only(&dir)?;
            let mut previous_end: Option<i64> = None;
            for name in names {
                let full = dir.join(&name);
                out.push_str(&format!("Dumping {}\n", full.display()));
                let scan = scan_segment(&mut disk, &name)
                    .with_context(|| format!("cannot read {}", full.display()))?;
                let mut corrupt = scan.stop.is_some();
                if let (Some(end), Some(base)) = (previous_end, scan.base_offset)
                    && end != base
                {
                    out.push_str(&format!(
                        "CORRUPT: this segment starts at offset {base} but the previous one ends at {end}\n"
                    ));
                    corrupt = true;
                }
                dump_scan(&mut disk, &name, &scan, args.print_records, &mut out)?;
                previous_end = scan
                    .batches
                    .last()
                    .map(|b| b.header.next_offset())
                    .or(scan.base_offset);
                totals.files += 1;
                if corrupt {
                    totals.corrupt_files += 1;
                }
                print!("{out}");
                out.clear();
            }
        }
    }
    if totals.corrupt_files > 0 {
        return Err(CorruptionFound {
            files: totals.corrupt_files,
            scanned: totals.files,
        }
        .into());
    }
    Ok(())
}

/// The segment files `path` names, grouped by directory: `(directory, file names)`.
fn segment_files(path: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<String>)>> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.is_file() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a UTF-8 file name", path.display()))?
            .to_string();
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Ok(vec![(dir, vec![name])]);
    }
    let logs = logs_in(path)?;
    if !logs.is_empty() {
        return Ok(vec![(path.to_path_buf(), logs)]);
    }
    // A data directory: every partition directory in it.
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for dir in entries {
        let logs = logs_in(&dir)?;
        if !logs.is_empty() {
            found.push((dir, logs));
        }
    }
    if found.is_empty() {
        bail!(
            "no segment files (*.log) in {} or its subdirectories",
            path.display()
        );
    }
    Ok(found)
}

/// The segment data files of directory `dir`, in offset order.
fn logs_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut disk = ProdDisk::open_read_only(dir)?;
    let mut logs: Vec<(i64, String)> = disk
        .read_dir("")
        .map_err(|error| anyhow::anyhow!("cannot list {}: {error}", dir.display()))?
        .into_iter()
        .filter_map(|name| match parse_segment_file_name(&name) {
            Some((base, SegmentFileKind::Log)) => Some((base, name)),
            _ => None,
        })
        .collect();
    logs.sort();
    Ok(logs.into_iter().map(|(_, name)| name).collect())
}

fn compression_name(header: &BatchHeader) -> String {
    match header.compression() {
        Some(Compression::None) => "none".to_string(),
        Some(Compression::Gzip) => "gzip".to_string(),
        Some(Compression::Snappy) => "snappy".to_string(),
        Some(Compression::Lz4) => "lz4".to_string(),
        Some(Compression::Zstd) => "zstd".to_string(),
        None => format!("unknown({})", header.attributes & 0x07),
    }
}

/// Writes one file's batches, its corruption if any, and its summary.
fn dump_scan(
    disk: &mut ProdDisk,
    name: &str,
    scan: &SegmentScan,
    print_records: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    let mut records = 0i64;
    for batch in &scan.batches {
        let h = &batch.header;
        records += i64::from(h.record_count);
        out.push_str(&format!(
            "batch position={} base_offset={} last_offset={} records={} size={} crc=ok \
             compression={} timestamp_type={} base_timestamp={} max_timestamp={} \
             producer_id={} producer_epoch={} base_sequence={} partition_leader_epoch={} \
             transactional={} control={}\n",
            batch.position,
            h.base_offset,
            h.last_offset(),
            h.record_count,
            h.size_bytes(),
            compression_name(h),
            if h.is_log_append_time() {
                "log_append"
            } else {
                "create"
            },
            h.base_timestamp,
            h.max_timestamp,
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.partition_leader_epoch,
            h.is_transactional(),
            h.is_control(),
        ));
        if print_records {
            print_batch_records(disk, name, batch.position, h, out)?;
        }
    }
    if let Some(stop) = &scan.stop {
        let following = scan.file_bytes - stop.position;
        out.push_str(&format!(
            "CORRUPT at byte {}: {}; {following} bytes from byte {} to the end ({}) are not valid batches\n",
            stop.position, stop.reason, stop.position, scan.file_bytes
        ));
    }
    let offsets = match (scan.batches.first(), scan.batches.last()) {
        (Some(first), Some(last)) => format!(
            "offsets {}..{}",
            first.header.base_offset,
            last.header.last_offset()
        ),
        _ => "no offsets".to_string(),
    };
    out.push_str(&format!(
        "summary: {} batches, {records} records, {offsets}, {} of {} bytes valid{}\n",
        scan.batches.len(),
        scan.valid_bytes,
        scan.file_bytes,
        if scan.stop.is_some() { ", CORRUPT" } else { "" }
    ));
    Ok(())
}

/// Decodes one (already CRC-checked) batch and writes a line per record.
fn print_batch_records(
    disk: &mut ProdDisk,
    name: &str,
    position: u64,
    header: &BatchHeader,
    out: &mut String,
) -> anyhow::Result<()> {
    let file = disk
        .open(name, OpenMode::Read)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut bytes = vec![0u8; header.size_bytes() as usize];
    let mut read = 0;
    let result = loop {
        if read == bytes.len() {
            break Ok(());
        }
        match disk.read_at(file, position + read as u64, &mut bytes[read..]) {
            Ok(0) => break Ok(()),
            Ok(n) => read += n,
            Err(error) => break Err(error),
        }
    };
    disk.close(file);
    result.map_err(|error| anyhow::anyhow!("{error}"))?;
    if read < bytes.len() {
        bail!("{name}: batch at byte {position} became shorter while reading");
    }
    let mut buf = Bytes::from(bytes);
    match RecordBatchDecoder::decode(&mut buf) {
        Ok(set) => {
            for record in set.records {
                out.push_str(&format!(
                    "| offset={} timestamp={}{} key={} value={} headers={}\n",
                    record.offset,
                    record.timestamp,
                    if record.timestamp_type == TimestampType::LogAppend {
                        " (log append time)"
                    } else {
                        ""
                    },
                    escaped(record.key.as_deref()),
                    escaped(record.value.as_deref()),
                    record.headers.len(),
                ));
            }
        }
        // The CRC matched, so the client wrote records this decoder cannot read
        // (an unknown codec, say): report it and go on with the next batch.
        Err(error) => out.push_str(&format!("| cannot decode the records: {error:#}\n")),
    }
    Ok(())
}

/// `null`, or the bytes in double quotes with non-printable bytes escaped (`\xNN`).
fn escaped(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".to_string(),
        Some(bytes) => format!("\"{}\"", bytes.escape_ascii()),
    }
}

#[cfg(test)]
mod tests {
    use odradek_log::batch::{assign, build_batch_with_keys};

    use super::*;
    use crate::disk::tests::Scratch;

    /// Writes `batches` (each a list of (key, value)) as a segment file with offsets
    /// assigned from `base`; returns the file's path and each batch's byte position.
    fn write_segment(dir: &Path, base: i64, batches: &[&[(&[u8], &[u8])]]) -> (PathBuf, Vec<u64>) {
        std::fs::create_dir_all(dir).unwrap();
        let mut bytes = Vec::new();
        let mut positions = Vec::new();
        let mut offset = base;
        for records in batches {
            let keyed: Vec<(Option<&[u8]>, &[u8])> =
                records.iter().map(|(k, v)| (Some(*k), *v)).collect();
            let mut batch = build_batch_with_keys(1_700_000_000_000, None, keyed);
            assign(&mut batch, offset, 0);
            positions.push(bytes.len() as u64);
            offset += records.len() as i64;
            bytes.extend_from_slice(&batch);
        }
        let path = dir.join(format!("{base:020}.log"));
        std::fs::write(&path, &bytes).unwrap();
        (path, positions)
    }

    fn dump(path: &Path, print_records: bool) -> (String, Option<CorruptionFound>) {
        let mut out = String::new();
        let mut corruption = None;
        let mut files = 0;
        let mut corrupt = 0;
        for (dir, names) in segment_files(path).unwrap() {
            let mut disk = ProdDisk::open_read_only(&dir).unwrap();
            for name in names {
                let scan = scan_segment(&mut disk, &name).unwrap();
                files += 1;
                if scan.stop.is_some() {
                    corrupt += 1;
                }
                dump_scan(&mut disk, &name, &scan, print_records, &mut out).unwrap();
            }
        }
        if corrupt > 0 {
            corruption = Some(CorruptionFound {
                files: corrupt,
                scanned: files,
            });
        }
        (out, corruption)
    }

    #[test]
    fn a_clean_segment_is_listed_batch_by_batch_with_its_records() {
        let scratch = Scratch::new();
        let (path, positions) = write_segment(
            &scratch.0.join("t-0"),
            0,
            &[
                &[(b"k1", b"one"), (b"k2", b"two")],
                &[(b"k\n", b"\x00\xff\"")],
            ],
        );
        let (out, corruption) = dump(&path, true);
        assert!(corruption.is_none(), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("batch position=0 base_offset=0 last_offset=1 records=2 "),
            "{out}"
        );
        assert!(lines[0].contains(" crc=ok compression=none "), "{out}");
        assert!(lines[0].contains(" producer_id=-1 "), "{out}");
        assert_eq!(
            lines[1],
            "| offset=0 timestamp=1700000000000 key=\"k1\" value=\"one\" headers=0"
        );
        assert_eq!(
            lines[2],
            "| offset=1 timestamp=1700000000000 key=\"k2\" value=\"two\" headers=0"
        );
        assert!(
            lines[3].starts_with(&format!(
                "batch position={} base_offset=2 last_offset=2 records=1 ",
                positions[1]
            )),
            "{out}"
        );
        // Non-printable bytes and quotes are escaped.
        assert_eq!(
            lines[4],
            "| offset=2 timestamp=1700000000000 key=\"k\\n\" value=\"\\x00\\xff\\\"\" headers=0"
        );
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            lines[5],
            format!("summary: 2 batches, 3 records, offsets 0..2, {size} of {size} bytes valid")
        );
    }

    #[test]
    fn a_flipped_byte_is_reported_with_its_batch_position_and_what_follows() {
        let scratch = Scratch::new();
        let (path, positions) = write_segment(
            &scratch.0.join("t-0"),
            0,
            &[&[(b"a", b"1")], &[(b"b", b"2")], &[(b"c", b"3")]],
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let size = bytes.len() as u64;
        // A byte of the second batch's records: its CRC no longer matches.
        let flip = positions[1] as usize + 65;
        bytes[flip] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (out, corruption) = dump(&path, false);
        let corruption = corruption.expect("corruption found");
        assert_eq!((corruption.files, corruption.scanned), (1, 1));
        let following = size - positions[1];
        assert!(
            out.contains(&format!(
                "CORRUPT at byte {}: crc mismatch: stored ",
                positions[1]
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "; {following} bytes from byte {} to the end ({size}) are not valid batches",
                positions[1]
            )),
            "{out}"
        );
        assert_eq!(out.lines().filter(|l| l.starts_with("batch ")).count(), 1);
        assert!(
            out.ends_with(&format!(
                "summary: 1 batches, 1 records, offsets 0..0, {} of {size} bytes valid, CORRUPT\n",
                positions[1]
            )),
            "{out}"
        );
    }

    #[test]
    fn a_torn_tail_is_reported_as_truncated() {
        let scratch = Scratch::new();
        let (path, positions) = write_segment(
            &scratch.0.join("t-0"),
            5,
            &[&[(b"a", b"1")], &[(b"b", b"2")]],
        );
        let bytes = std::fs::read(&path).unwrap();
        let cut = positions[1] as usize + 30;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let (out, corruption) = dump(&path, false);
        assert!(corruption.is_some());
        assert!(
            out.contains(&format!(
                "CORRUPT at byte {}: batch truncated",
                positions[1]
            )),
            "{out}"
        );
        assert!(out.contains("offsets 5..5"), "{out}");
    }

    #[test]
    fn a_directory_is_dumped_segment_by_segment_and_a_data_directory_partition_by_partition() {
        let scratch = Scratch::new();
        let partition = scratch.0.join("orders-0");
        write_segment(&partition, 0, &[&[(b"a", b"1")], &[(b"b", b"2")]]);
        write_segment(&partition, 2, &[&[(b"c", b"3")]]);
        std::fs::write(partition.join("00000000000000000000.index"), b"ignored").unwrap();
        write_segment(&scratch.0.join("orders-1"), 0, &[&[(b"d", b"4")]]);
        let found = segment_files(&scratch.0).unwrap();
        let listed: Vec<(String, Vec<String>)> = found
            .iter()
            .map(|(dir, names)| {
                (
                    dir.file_name().unwrap().to_str().unwrap().to_string(),
                    names.clone(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                (
                    "orders-0".to_string(),
                    vec![
                        "00000000000000000000.log".to_string(),
                        "00000000000000000002.log".to_string()
                    ]
                ),
                (
                    "orders-1".to_string(),
                    vec!["00000000000000000000.log".to_string()]
                ),
            ]
        );
        let (out, corruption) = dump(&partition, false);
        assert!(corruption.is_none(), "{out}");
        assert_eq!(out.matches("summary: ").count(), 2, "{out}");
        // Nothing was created in the directories dumped.
        let mut names: Vec<String> = std::fs::read_dir(&partition)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "00000000000000000000.index",
                "00000000000000000000.log",
                "00000000000000000002.log"
            ]
        );
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let scratch = Scratch::new();
        std::fs::create_dir_all(&scratch.0).unwrap();
        let error = segment_files(&scratch.0).unwrap_err();
        assert!(error.to_string().contains("no segment files"), "{error:#}");
    }

    #[test]
    fn the_read_only_disk_refuses_changes() {
        let scratch = Scratch::new();
        let (path, _) = write_segment(&scratch.0.join("t-0"), 0, &[&[(b"a", b"1")]]);
        let mut disk = ProdDisk::open_read_only(path.parent().unwrap()).unwrap();
        assert!(disk.open("x.log", OpenMode::Create).is_err());
        assert!(
            disk.open("00000000000000000000.log", OpenMode::ReadWrite)
                .is_err()
        );
        assert!(disk.create_dir_all("sub").is_err());
        assert!(disk.remove_file("00000000000000000000.log").is_err());
        assert!(disk.rename("00000000000000000000.log", "y.log").is_err());
        assert!(path.exists());
        assert!(!path.parent().unwrap().join(crate::disk::LOCK_FILE).exists());
    }
}
