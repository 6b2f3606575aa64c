//! The simulated disk: [`MemDisk`] (which keeps the durability contract and knows how
//! to crash) plus the faults this file injects on top of it, drawn per seed.
//!
//! # Fault model (disk)
//!
//! | fault | how | what the node must do |
//! | --- | --- | --- |
//! | lost unsynced writes at a crash | `MemDisk::crash_with`: a random *subset* of unsynced writes, truncates and directory operations survives (not only a suffix), with per-seed keep and tear rates | recovery keeps every acknowledged record and cuts what is incomplete |
//! | torn writes | a surviving write lands only on some of its 512-byte sectors | recovery stops at the first bad CRC, never serves the torn batch |
//! | read bit flips | a read returns a buffer with one bit flipped; the stored bytes stay good (a transient fault: a retry reads right) | never serve a batch that fails its CRC |
//! | latent sector errors | a read fails with `EIO` | a storage error to the client, nothing worse |
//! | write errors | a write fails with `EIO`, leaving a random strict prefix in the file | the append is refused and the log unchanged |
//! | ENOSPC episodes | for a while every write fails with `ENOSPC` (prefixes left as above) | refuse, then recover when space is back |
//! | fsync failure | a sync completes with `EIO`; `MemDisk` then drops the writes it covered for good ("fsyncgate"): a later sync that succeeds does not bring them back | take the partition offline (metadata: stop the node); never acknowledge what it covered |
//! | sync latency | each completion arrives after a seeded latency, with rare spikes | group commit; nothing acknowledged early |
//!
//! The faults are active during the safety phase only; [`SimDisk::set_faults_active`]
//! turns them off when faults heal. Read faults are also held off while a node opens
//! and while any log recovers ([`Disk::recovery_hint`]; in a cluster a partition's log
//! opens when the metadata naming it is applied, after `Node::open`): recovery checks
//! each batch once, and a bit flipped on the way looks like damage on the medium.
//! Before replicas recorded how far they had synced, recovery cut such a batch as a
//! torn tail, and the cluster simulator found acknowledged records lost that way. Now
//! a flip below the synced-through record would make the replica recover from the
//! others for nothing (docs/decisions/0010-losing-acknowledged-state.md), and two
//! doing so at once leave no majority.
//!
//! | media rot (`rot`, clusters of 3+ brokers) | one bit changes at rest: of a batch's record data that recovery can tell was durable (its segment's index files, or the partition's synced-through record, prove it), in any segment of a data partition, one replica per partition for the whole run; or of one copy of a Raft hard state whose other copy is the same; or of the slot of a synced-through record that the other slot makes up for, or of an index file of a sealed segment that record covers whole (`FaultInjector::rot`, `nemesis.rs`) | never serve the batch; a read, or recovery, that finds it makes the replica mark itself recovering, cut its log there and recover from the others without voting until restored; read the hard state from the whole copy, the record from the other slot; distrust the index file and check the segment (decision 0010) |
//!
//! | misdirected write (`misdirect`, clusters of 3+ brokers) | armed on one node (`FaultInjector::misdirect`, `nemesis.rs`, [`SimDisk::arm_misdirect`]): its next write into a segment file of one data partition lands on the record data of a durable batch elsewhere on the disk (as rot picks them), at rest; the write's own place keeps what it held, zeros past the old end, though the file grows and the write reports success. Both partitions are that node's to damage for the whole run | as for rot: the batch that never landed is synced and maybe acknowledged, and a read or recovery must find it missing and repair it; the one overwritten likewise |
//!
//! Disk wipes are a process fault (`FaultInjector::wipe`, `nemesis.rs`, [`SimDisk::wipe`]): the whole disk
//! is replaced by an empty one.
//!
//! Not injected yet: rot of batch headers, of checkpoint files and of index files the
//! record does not cover, and misdirected writes of other files (index files, the
//! synced-through record, hard states). On a single replica rot and misdirected
//! writes destroy acknowledged records for good (the CRC detects them, only a peer
//! can repair them), so every such seed would fail for reasons that are not bugs.
//!
//! The mutant [`SimDisk::set_fsync_lies`] makes syncs report success without making
//! anything durable (the writes they covered are dropped from the durable state, as a
//! drive with a volatile cache that acknowledges flushes would do).

use std::collections::{BTreeMap, BTreeSet};

use odradek_log::io::{Disk, DiskCompletion, DiskError, FileId, IoId, OpenMode};
use odradek_log::mem_disk::{CrashOptions, MemDisk, WriteFault};

use crate::rng::SimRng;

/// The disk faults of one seed (rates in parts per million per operation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// A read returns a flipped bit.
    pub read_flip_ppm: u64,
    /// A read fails with `EIO`.
    pub read_error_ppm: u64,
    /// A write fails with `EIO`.
    pub write_error_ppm: u64,
    /// A sync completes with `EIO`.
    pub sync_error_ppm: u64,
    /// What a crash keeps of unsynced state.
    pub crash: CrashRates,
    /// Sync latency.
    pub latency: SyncLatency,
    /// Classes switched off after the draw (`--keep-faults`).
    pub muted: DiskMuted,
}

/// Disk fault classes switched off after the seed drew them (`--keep-faults`): their
/// random draws are still made, so the disk's random stream stays as it was for the
/// classes kept, and their effects are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskMuted {
    /// Read bit flips.
    pub read_flip: bool,
    /// Read errors.
    pub read_error: bool,
    /// Write errors.
    pub write_error: bool,
    /// Sync errors.
    pub sync_error: bool,
    /// Sync latency: latencies fall in the default range.
    pub sync_latency: bool,
}

/// Per-mille rates given to `MemDisk::crash_with`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashRates {
    /// Chance an unsynced write or truncate survives.
    pub keep_file_op_per_mille: u32,
    /// Chance a surviving write is torn.
    pub tear_write_per_mille: u32,
    /// Chance an unsynced directory operation survives.
    pub keep_dir_op_per_mille: u32,
}

impl Default for CrashRates {
    fn default() -> CrashRates {
        let options = CrashOptions::default();
        CrashRates {
            keep_file_op_per_mille: options.keep_file_op_per_mille,
            tear_write_per_mille: options.tear_write_per_mille,
            keep_dir_op_per_mille: options.keep_dir_op_per_mille,
        }
    }
}

/// How long a sync takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncLatency {
    /// Shortest latency.
    pub min_ns: u64,
    /// Longest ordinary latency.
    pub max_ns: u64,
    /// Chance of a spike.
    pub spike_ppm: u64,
    /// Longest spike.
    pub spike_max_ns: u64,
}

impl Default for SyncLatency {
    fn default() -> SyncLatency {
        SyncLatency {
            min_ns: 100_000,
            max_ns: 2_000_000,
            spike_ppm: 0,
            spike_max_ns: 100_000_000,
        }
    }
}

/// What the disk's faults did (names as printed in `faults:`).
pub const DISK_COUNTERS: &[&str] = &[
    "disk.read-flip",
    "disk.read-error",
    "disk.write-error",
    "disk.enospc",
    "disk.sync-error",
    "disk.sync-now-error",
    "disk.sync-spike",
    "disk.crash-lost-op",
    "disk.crash-torn-write",
    "disk.crash-lost-dir-op",
    "disk.fsync-lie",
    "disk.rot",
    "disk.misdirected-write",
];

/// The offset partition directory `dir`'s durable synced-through record vouches for;
/// `i64::MIN` if it has none.
pub(crate) fn durable_synced_through(disk: &MemDisk, dir: &str) -> i64 {
    disk.durable_contents(&format!(
        "{dir}/{}",
        odradek_log::synced::SYNCED_THROUGH_FILE
    ))
    .and_then(|bytes| odradek_log::synced::synced_through(&bytes))
    .unwrap_or(i64::MIN)
}

/// The record data of every batch on `disk` that recovery would know was durable
/// (the durable index files of its segment, or the partition's durable
/// synced-through record, prove it), in data partitions (not `__` ones): `(path,
/// first byte, byte count)`. Where media rot and misdirected writes may strike.
pub(crate) fn durable_record_data(disk: &MemDisk) -> Vec<(String, u64, u64)> {
    let paths = disk.file_paths();
    let mut candidates = Vec::new();
    for dir in paths
        .iter()
        .filter_map(|path| path.split_once('/').map(|(dir, _)| dir))
        .filter(|dir| !dir.starts_with("__"))
        .collect::<BTreeSet<_>>()
    {
        let mut segments: Vec<&String> = paths
            .iter()
            .filter(|path| path.starts_with(&format!("{dir}/")) && path.ends_with(".log"))
            .collect();
        segments.sort();
        let synced_through = durable_synced_through(disk, dir);
        for path in segments {
            let stem = &path[..path.len() - 4];
            let Some(data) = disk.durable_contents(path) else {
                continue;
            };
            let Some(base) = stem
                .rsplit_once('/')
                .and_then(|(_, name)| name.parse::<i64>().ok())
            else {
                continue;
            };
            // Only bytes whose durability recovery can tell: rot anywhere else looks
            // like a torn write (decision 0010, item 3).
            let proven = match (
                disk.durable_contents(&format!("{stem}.index")),
                disk.durable_contents(&format!("{stem}.timeindex")),
            ) {
                (Some(offsets), Some(times)) => odradek_log::partition::proven_durable_bytes(
                    base,
                    &offsets,
                    &times,
                    data.len() as u64,
                ),
                _ => None,
            }
            .unwrap_or(0) as usize;
            let mut at = 0usize;
            let mut expected = base;
            while let Ok(header) = odradek_log::batch::BatchHeader::parse(&data[at..]) {
                let size = header.size_bytes() as usize;
                let body = odradek_log::batch::BATCH_HEADER_BYTES;
                if header.base_offset != expected || size <= body || at + size > data.len() {
                    break;
                }
                if at + size > proven && header.next_offset() > synced_through {
                    break;
                }
                candidates.push((path.clone(), (at + body) as u64, (size - body) as u64));
                at += size;
                expected = header.next_offset();
            }
        }
    }
    candidates
}

/// A [`MemDisk`] with the seed's faults on top.
pub struct SimDisk {
    inner: MemDisk,
    rng: SimRng,
    faults: DiskFaults,
    active: bool,
    recovering: bool,
    /// Recoveries running ([`Disk::recovery_hint`], which nests): read faults held off
    /// too while any runs.
    log_recovering: u32,
    full: bool,
    fsync_lies: bool,
    started: Vec<IoId>,
    counters: BTreeMap<&'static str, u64>,
    /// Faults fired since [`SimDisk::take_fired`] was last called.
    fired: u64,
    /// The path of each open file (misdirected writes choose by path).
    paths: BTreeMap<FileId, String>,
    /// A misdirected write waiting for its write ([`SimDisk::arm_misdirect`]).
    misdirect: Option<Misdirect>,
}

/// An armed misdirected write.
struct Misdirect {
    /// The partition directory whose next segment write goes astray.
    dir: String,
    /// Where it lands: `(path, first byte, byte count)` of a batch's record data.
    landing: (String, u64, u64),
}

impl SimDisk {
    /// An empty disk; `rng` draws its faults.
    pub fn new(rng: SimRng, memdisk_seed: u64, faults: DiskFaults) -> SimDisk {
        let mut inner = MemDisk::new(memdisk_seed);
        inner.sync_dir_now("").expect("an empty disk's root syncs");
        SimDisk {
            inner,
            rng,
            faults,
            active: true,
            recovering: false,
            log_recovering: 0,
            full: false,
            fsync_lies: false,
            started: Vec::new(),
            counters: DISK_COUNTERS.iter().map(|name| (*name, 0)).collect(),
            fired: 0,
            paths: BTreeMap::new(),
            misdirect: None,
        }
    }

    /// A disk wipe: the disk is replaced by an empty one (seeded with
    /// `memdisk_seed`), for good. Nothing written before survives, durable or not.
    pub fn wipe(&mut self, memdisk_seed: u64) {
        let mut inner = MemDisk::new(memdisk_seed);
        inner.sync_dir_now("").expect("an empty disk's root syncs");
        self.inner = inner;
        self.started.clear();
        self.paths.clear();
        self.misdirect = None;
        self.set_full(false);
    }

    /// Arms a misdirected write: the next write into a segment file of partition
    /// directory `dir` lands on `landing` (`(path, first byte, byte count)` of a
    /// durable batch's record data, from [`durable_record_data`]) instead, and its own
    /// place keeps what it held. If that batch is no longer there when the write
    /// comes, the write goes where it should. The world picks both (`FaultInjector::misdirect`, `nemesis.rs`).
    pub fn arm_misdirect(&mut self, dir: String, landing: (String, u64, u64)) {
        self.misdirect = Some(Misdirect { dir, landing });
    }

    /// Does the armed misdirected write, if `file` is its target; `None` if not.
    fn misdirected_write(
        &mut self,
        file: FileId,
        offset: u64,
        data: &[u8],
    ) -> Option<Result<(), DiskError>> {
        let armed = self.misdirect.as_ref()?;
        let path = self.paths.get(&file)?;
        if !path.ends_with(".log") || !path.starts_with(&format!("{}/", armed.dir)) {
            return None;
        }
        let path = path.clone();
        let (landing_path, start, len) = self.misdirect.take().expect("armed").landing;
        if !durable_record_data(&self.inner).contains(&(landing_path.clone(), start, len)) {
            // Cut or rewritten since: not the durable batch it was armed for.
            self.tally("disk.misdirect-missed");
            return None;
        }
        // Its own place keeps what it held (nothing past the end): the file grows, as
        // the file system recorded the write, but the data went elsewhere.
        let current = self.inner.file_contents(&path).unwrap_or_default();
        let kept: Vec<u8> = (0..data.len())
            .map(|k| current.get(offset as usize + k).copied().unwrap_or(0))
            .collect();
        if let Err(error) = self.inner.write_at(file, offset, &kept) {
            return Some(Err(error));
        }
        // It lands at rest, on durable bytes.
        let landed = self
            .inner
            .durable_contents(&landing_path)
            .unwrap_or_default();
        for (k, byte) in data.iter().take(len as usize).enumerate() {
            let at = start + k as u64;
            let mask = landed.get(at as usize).map_or(0, |old| old ^ byte);
            if mask != 0 {
                self.inner.corrupt_stored(&landing_path, at, mask);
            }
        }
        // Not counted as fired, like rot: it must never excuse a start that fails.
        self.tally("disk.misdirected-write");
        Some(Ok(()))
    }

    /// Turns the injected faults on or off (off when faults heal).
    pub fn set_faults_active(&mut self, active: bool) {
        self.active = active;
        if !active {
            self.set_full(false);
        }
    }

    /// Marks the node as opening (recovery): read faults are held off meanwhile.
    pub fn set_recovering(&mut self, recovering: bool) {
        self.recovering = recovering;
    }

    /// Starts or ends an ENOSPC episode.
    pub fn set_full(&mut self, full: bool) {
        self.full = full;
        if full {
            self.inner.fail_writes_after(0, WriteFault::NoSpace);
        } else {
            self.inner.clear_write_faults();
        }
    }

    /// Whether an ENOSPC episode is on.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The mutant: syncs report success and make nothing durable.
    pub fn set_fsync_lies(&mut self, lies: bool) {
        self.fsync_lies = lies;
    }

    /// Ids of syncs started since the last call, oldest first.
    pub fn take_started(&mut self) -> Vec<IoId> {
        std::mem::take(&mut self.started)
    }

    /// How many faults fired since the last call.
    pub fn take_fired(&mut self) -> u64 {
        std::mem::take(&mut self.fired)
    }

    /// A latency for the next sync.
    pub fn sync_latency_ns(&mut self) -> u64 {
        let latency = self.faults.latency;
        let latency_ns = if self.active && self.rng.chance(latency.spike_ppm) {
            let spike_ns = self
                .rng
                .log_range(latency.max_ns.max(1), latency.spike_max_ns.max(2));
            if !self.faults.muted.sync_latency {
                self.count("disk.sync-spike");
                return spike_ns;
            }
            spike_ns
        } else {
            self.rng
                .range(latency.min_ns, latency.max_ns.max(latency.min_ns + 1))
        };
        if self.faults.muted.sync_latency {
            // The draw is made as drawn; its value is folded into the default range.
            let default = SyncLatency::default();
            return default.min_ns + latency_ns % (default.max_ns - default.min_ns);
        }
        latency_ns
    }

    /// Completes pending sync `io` (`None` if it is not pending any more: a crash
    /// cleared it). Fails it with the seed's rate; lies if the mutant is on.
    pub fn complete(&mut self, io: IoId) -> Option<DiskCompletion> {
        let fail = self.active
            && self.rng.chance(self.faults.sync_error_ppm)
            && !self.faults.muted.sync_error;
        if fail {
            let completion = self.inner.complete_sync(io, Err(injected("sync")))?;
            self.count("disk.sync-error");
            return Some(completion);
        }
        if self.fsync_lies {
            // Dropping the covered writes from the durable state (they stay readable
            // until a crash) and answering Ok is exactly a lying flush.
            self.inner.complete_sync(io, Err(injected("lie")))?;
            self.count("disk.fsync-lie");
            return Some(DiskCompletion { io, result: Ok(()) });
        }
        self.inner.complete_sync(io, Ok(()))
    }

    /// Power loss: keeps a random subset of unsynced state (see the fault model).
    pub fn crash(&mut self, seed: u64) {
        let before = self.inner.stats();
        let rates = self.faults.crash;
        self.inner.crash_with(
            seed,
            CrashOptions {
                keep_file_op_per_mille: rates.keep_file_op_per_mille,
                tear_write_per_mille: rates.tear_write_per_mille,
                keep_dir_op_per_mille: rates.keep_dir_op_per_mille,
            },
        );
        let after = self.inner.stats();
        self.add(
            "disk.crash-lost-op",
            after.crash_ops_dropped - before.crash_ops_dropped,
        );
        self.add(
            "disk.crash-torn-write",
            after.crash_writes_torn - before.crash_writes_torn,
        );
        self.add(
            "disk.crash-lost-dir-op",
            after.crash_dir_ops_dropped - before.crash_dir_ops_dropped,
        );
        self.started.clear();
        self.paths.clear();
        // MemDisk keeps its write-fault arm across a crash; re-arm from the episode
        // state so both agree whatever the crash did.
        let full = self.full;
        self.set_full(full);
    }

    /// The counters of faults that fired.
    pub fn counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.counters
    }

    /// The wrapped disk (for inspection).
    pub fn inner(&self) -> &MemDisk {
        &self.inner
    }

    /// Media rot: XORs the byte at `offset` of `path` with `mask` in its durable (and
    /// current) contents, for good. The world picks where (`FaultInjector::rot`, `nemesis.rs`); the caller
    /// counts it.
    pub fn rot(&mut self, path: &str, offset: u64, mask: u8) {
        let changed = self.inner.corrupt_stored(path, offset, mask);
        // Not counted as fired: rot must never excuse a start that fails. Recovery
        // that meets it cuts it as damage and the replica repairs.
        assert!(
            changed,
            "rot of a byte that does not exist: {path} at {offset}"
        );
    }

    fn count(&mut self, name: &'static str) {
        self.add(name, 1);
    }

    /// Counts a fault without counting it as fired (see [`SimDisk::take_fired`]).
    fn tally(&mut self, name: &'static str) {
        *self.counters.entry(name).or_insert(0) += 1;
    }

    fn add(&mut self, name: &'static str, by: u64) {
        *self.counters.entry(name).or_insert(0) += by;
        self.fired += by;
    }

    fn read_faults_on(&self) -> bool {
        self.active && !self.recovering && self.log_recovering == 0
    }
}

fn injected(what: &str) -> DiskError {
    DiskError::Io {
        message: format!("injected {what} failure"),
    }
}

impl Disk for SimDisk {
    fn open(&mut self, path: &str, mode: OpenMode) -> Result<FileId, DiskError> {
        let file = self.inner.open(path, mode)?;
        self.paths.insert(file, path.trim_matches('/').to_string());
        Ok(file)
    }

    fn close(&mut self, file: FileId) {
        self.paths.remove(&file);
        self.inner.close(file)
    }

    fn file_len(&mut self, file: FileId) -> Result<u64, DiskError> {
        self.inner.file_len(file)
    }

    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, DiskError> {
        if self.read_faults_on()
            && self.rng.chance(self.faults.read_error_ppm)
            && !self.faults.muted.read_error
        {
            self.count("disk.read-error");
            return Err(injected("read (latent sector error)"));
        }
        let read = self.inner.read_at(file, offset, buf)?;
        if read > 0 && self.read_faults_on() && self.rng.chance(self.faults.read_flip_ppm) {
            let at = self.rng.below(read as u64) as usize;
            let bit = self.rng.below(8);
            if !self.faults.muted.read_flip {
                buf[at] ^= 1 << bit;
                self.count("disk.read-flip");
            }
        }
        Ok(read)
    }

    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.full {
            let result = self.inner.write_at(file, offset, data);
            if result.is_err() {
                self.count("disk.enospc");
            }
            return result;
        }
        if self.active
            && self.rng.chance(self.faults.write_error_ppm)
            && !self.faults.muted.write_error
        {
            self.inner.fail_writes_after(0, WriteFault::Io);
            let result = self.inner.write_at(file, offset, data);
            self.inner.clear_write_faults();
            if result.is_err() {
                self.count("disk.write-error");
            }
            return result;
        }
        if self.read_faults_on()
            && let Some(result) = self.misdirected_write(file, offset, data)
        {
            return result;
        }
        self.inner.write_at(file, offset, data)
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), DiskError> {
        self.inner.truncate(file, len)
    }

    fn sync(&mut self, file: FileId) -> IoId {
        let io = self.inner.sync(file);
        self.started.push(io);
        io
    }

    fn sync_dir(&mut self, path: &str) -> IoId {
        let io = self.inner.sync_dir(path);
        self.started.push(io);
        io
    }

    fn sync_now(&mut self, file: FileId) -> Result<(), DiskError> {
        if self.active
            && self.rng.chance(self.faults.sync_error_ppm)
            && !self.faults.muted.sync_error
        {
            self.inner.fail_syncs(1);
            let result = self.inner.sync_now(file);
            self.inner.fail_syncs(0);
            self.count("disk.sync-now-error");
            return result;
        }
        if self.fsync_lies {
            self.inner.fail_syncs(1);
            let _ = self.inner.sync_now(file);
            self.inner.fail_syncs(0);
            self.count("disk.fsync-lie");
            return Ok(());
        }
        self.inner.sync_now(file)
    }

    fn sync_dir_now(&mut self, path: &str) -> Result<(), DiskError> {
        if self.active
            && self.rng.chance(self.faults.sync_error_ppm)
            && !self.faults.muted.sync_error
        {
            self.inner.fail_syncs(1);
            let result = self.inner.sync_dir_now(path);
            self.inner.fail_syncs(0);
            self.count("disk.sync-now-error");
            return result;
        }
        self.inner.sync_dir_now(path)
    }

    fn create_dir_all(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.create_dir_all(path)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, DiskError> {
        self.inner.read_dir(path)
    }

    fn exists(&mut self, path: &str) -> bool {
        self.inner.exists(path)
    }

    fn remove_file(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.remove_file(path)
    }

    fn remove_dir_all(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.remove_dir_all(path)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.inner.rename(from, to)
    }

    fn recovery_hint(&mut self, recovering: bool) {
        if recovering {
            self.log_recovering += 1;
        } else {
            self.log_recovering = self.log_recovering.saturating_sub(1);
        }
    }
}
