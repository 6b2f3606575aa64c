//! `MemDisk`: an in-memory [`Disk`] that keeps the durability contract of `io.rs` to the
//! letter and breaks it on purpose when asked. Pure code: no threads, no clock, its own
//! seeded PRNG ([`SplitMix64`], from [`crate::mixing`]), so every run is reproducible from its seed.
//!
//! # Fault model
//!
//! State. Every file is an inode with *durable* contents plus a list of *unsynced*
//! operations (writes and truncates) applied to its *current* contents, which reads see.
//! The directory tree likewise has a durable namespace plus a list of unsynced entry
//! operations (create, mkdir, remove, rename), each belonging to one parent directory.
//!
//! - `sync(file)` returns an [`IoId`] and queues a pending sync covering the file's
//!   operations so far (not later ones). Nothing happens until the owner completes it with
//!   [`MemDisk::complete_all_syncs`], [`MemDisk::complete_sync`] or
//!   [`MemDisk::complete_some_syncs`]. An `Ok` completion moves the covered operations
//!   into the durable contents.
//! - `sync_dir(dir)` does the same for the entry operations of `dir` (entries directly in
//!   it). A file whose data is synced but whose creation is not, can vanish at a crash.
//! - A sync can fail with `EIO` ([`MemDisk::fail_syncs`], or a completion chosen to
//!   fail). Like Linux after "fsyncgate", the covered file operations are then
//!   *dropped*: they stay visible to reads, but they never become durable, and a later
//!   sync that succeeds does not bring them back (only writing the bytes again does).
//!   A failed directory sync leaves its entry operations unsynced (still at risk).
//! - `sync_now` / `sync_dir_now` complete at once (and honour [`MemDisk::fail_syncs`]).
//! - [`MemDisk::crash`] keeps the durable state and a *random subset* of the unsynced
//!   operations (not only a suffix), in their original order. A kept write may be
//!   *torn*: only a random subset of the 512-byte sectors it touches lands. Unsynced
//!   entry operations are likewise kept or dropped at random (so a created file, a
//!   rename or a removal may be undone); entries whose directory did not survive go too.
//!   After a crash all file ids are invalid and pending syncs never complete.
//! - [`MemDisk::fail_writes_after`]: after `n` more writes succeed, every write fails
//!   (`EIO` or `ENOSPC`) until [`MemDisk::clear_write_faults`]. A failing write may
//!   leave a random strict prefix of its data in the file, as a real `pwrite` that ran
//!   out of space can.
//! - [`MemDisk::set_capacity_bytes`]: writes that would make the files' total current
//!   size exceed the capacity fail with `ENOSPC` (also leaving a strict prefix).
//! - [`MemDisk::corrupt_reads`]: latent corruption; reads of a file region return bytes
//!   with bit 0 flipped, the stored bytes stay intact. [`MemDisk::corrupt_stored`]: media
//!   rot; the stored bytes (durable, current, and unsynced writes) change for good.
//!
//! Not modelled: misdirected writes, latency (the simulator orders completions), and
//! rename between different directories (it belongs to the target's directory only).
//!
//! # Example
//!
//! ```
//! use odradek_log::io::{Disk, OpenMode};
//! use odradek_log::mem_disk::MemDisk;
//!
//! let mut disk = MemDisk::new(42);
//! disk.create_dir_all("t-0").unwrap();
//! disk.sync_dir_now("").unwrap();
//! let file = disk.open("t-0/a", OpenMode::CreateNew).unwrap();
//! disk.sync_dir_now("t-0").unwrap();
//! disk.write_at(file, 0, b"hello").unwrap();
//! let io = disk.sync(file);
//! let done = disk.complete_all_syncs();
//! assert_eq!(done[0].io, io);
//! disk.write_at(file, 5, b" world").unwrap(); // never synced
//! disk.crash(7);
//! let contents = disk.file_contents("t-0/a").unwrap();
//! assert!(contents.starts_with(b"hello"));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::io::{Disk, DiskCompletion, DiskError, FileId, IoId, OpenMode};
pub use crate::mixing::SplitMix64;

/// Bytes of one sector: the unit in which a crash tears a write.
pub const SECTOR_BYTES: u64 = 512;

/// Syncs a `MemDisk` holds pending at once before `sync` panics: a bound that catches
/// a caller that never completes its syncs.
pub const PENDING_SYNCS_MAX: usize = 1 << 16;

/// What a crash keeps of the state no completed sync covers. Probabilities in per mille.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashOptions {
    /// Chance that one unsynced write or truncate survives.
    pub keep_file_op_per_mille: u32,
    /// Chance that a surviving write is torn (only some of its sectors land).
    pub tear_write_per_mille: u32,
    /// Chance that one unsynced directory entry operation survives.
    pub keep_dir_op_per_mille: u32,
}

impl Default for CrashOptions {
    fn default() -> CrashOptions {
        CrashOptions {
            keep_file_op_per_mille: 500,
            tear_write_per_mille: 300,
            keep_dir_op_per_mille: 500,
        }
    }
}

/// The error a write fault injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// `EIO`.
    Io,
    /// `ENOSPC`.
    NoSpace,
}

impl WriteFault {
    fn to_error(self) -> DiskError {
        match self {
            WriteFault::Io => DiskError::Io {
                message: "injected write failure".to_string(),
            },
            WriteFault::NoSpace => DiskError::NoSpace,
        }
    }
}

/// Counters of what the disk did and which faults fired, so a test can tell a quiet
/// nemesis from a thorough one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemDiskStats {
    /// Successful `write_at` calls.
    pub writes: u64,
    /// Writes failed by a fault or the capacity limit.
    pub writes_failed: u64,
    /// Syncs (file and directory, async and `*_now`) that completed `Ok`.
    pub syncs_ok: u64,
    /// Syncs that completed with an error.
    pub syncs_failed: u64,
    /// Crashes.
    pub crashes: u64,
    /// Unsynced file operations a crash dropped.
    pub crash_ops_dropped: u64,
    /// Unsynced writes a crash tore.
    pub crash_writes_torn: u64,
    /// Unsynced directory operations a crash dropped.
    pub crash_dir_ops_dropped: u64,
    /// Reads that returned corrupted bytes.
    pub reads_corrupted: u64,
}

#[derive(Clone, Debug)]
enum FileOp {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
    /// Operations applied to `current` but not to `durable`, with a sequence number.
    unsynced: Vec<(u64, FileOp)>,
    next_seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Clone, Debug)]
enum DirOp {
    Create {
        path: String,
        inode: u64,
    },
    Mkdir {
        path: String,
    },
    Remove {
        path: String,
    },
    RemoveAll {
        path: String,
    },
    Rename {
        from: String,
        to: String,
        inode: u64,
    },
}

#[derive(Clone, Debug)]
struct UnsyncedDirOp {
    seq: u64,
    /// The directory whose sync makes this operation durable.
    parent: String,
    op: DirOp,
}

#[derive(Clone, Debug)]
enum PendingSync {
    /// A sync of a file id that was not open: completes with `EIO`.
    BadFile,
    File {
        inode: u64,
        upto_seq: u64,
    },
    Dir {
        path: String,
        upto_seq: u64,
    },
}

#[derive(Clone, Debug)]
struct OpenFile {
    inode: u64,
    path: String,
    writable: bool,
}

#[derive(Clone, Debug)]
struct WriteFaultArm {
    writes_left: u64,
    fault: WriteFault,
}

/// An in-memory disk with the durability contract of [`Disk`] and injectable faults;
/// see the module documentation for the fault model.
#[derive(Clone, Debug)]
pub struct MemDisk {
    rng: SplitMix64,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    namespace: BTreeMap<String, Entry>,
    durable_namespace: BTreeMap<String, Entry>,
    dir_ops: Vec<UnsyncedDirOp>,
    next_dir_seq: u64,
    open_files: BTreeMap<FileId, OpenFile>,
    next_file_id: u64,
    pending: BTreeMap<IoId, PendingSync>,
    next_io_id: u64,
    write_fault: Option<WriteFaultArm>,
    syncs_to_fail: u64,
    syncs_ok_before_one_failure: Option<u64>,
    capacity_bytes: Option<u64>,
    read_corruption: Vec<(String, u64, u64)>,
    /// One-shot flips `(path, at, mask, skip)`: after `skip` more reads of `path`
    /// covering byte `at`, the next one has it XORed with `mask`; later reads see the
    /// stored byte.
    next_read_flips: Vec<(String, u64, u8, u32)>,
    stats: MemDiskStats,
}

impl MemDisk {
    /// An empty disk whose own random choices (torn prefixes and the like) come from `seed`.
    pub fn new(seed: u64) -> MemDisk {
        MemDisk {
            rng: SplitMix64::new(seed),
            inodes: BTreeMap::new(),
            next_inode: 1,
            namespace: BTreeMap::new(),
            durable_namespace: BTreeMap::new(),
            dir_ops: Vec::new(),
            next_dir_seq: 0,
            open_files: BTreeMap::new(),
            next_file_id: 1,
            pending: BTreeMap::new(),
            next_io_id: 1,
            write_fault: None,
            syncs_to_fail: 0,
            syncs_ok_before_one_failure: None,
            capacity_bytes: None,
            read_corruption: Vec::new(),
            next_read_flips: Vec::new(),
            stats: MemDiskStats::default(),
        }
    }

    /// What happened so far.
    pub fn stats(&self) -> MemDiskStats {
        self.stats
    }

    /// Ids of the syncs started and not completed, oldest first.
    pub fn pending_syncs(&self) -> Vec<IoId> {
        self.pending.keys().copied().collect()
    }

    /// Completes the pending sync `io` with `result` (an `Err` drops the operations it
    /// covered: see the fault model). Returns `None` if `io` is not pending.
    /// [`MemDisk::fail_syncs`] turns an `Ok` into `EIO`.
    pub fn complete_sync(
        &mut self,
        io: IoId,
        result: Result<(), DiskError>,
    ) -> Option<DiskCompletion> {
        let pending = self.pending.remove(&io)?;
        let result = match (result, &pending) {
            (Ok(()), PendingSync::BadFile) => Err(eio("sync of a file that was not open")),
            (Ok(()), _) => self.take_sync_fault(),
            (Err(error), _) => Err(error),
        };
        match &result {
            Ok(()) => {
                self.stats.syncs_ok += 1;
                self.apply_sync(&pending, true);
            }
            Err(_) => {
                self.stats.syncs_failed += 1;
                self.apply_sync(&pending, false);
            }
        }
        Some(DiskCompletion { io, result })
    }

    /// Completes every pending sync, oldest first, `Ok` unless [`MemDisk::fail_syncs`]
    /// is armed.
    pub fn complete_all_syncs(&mut self) -> Vec<DiskCompletion> {
        let ids = self.pending_syncs();
        ids.into_iter()
            .filter_map(|io| self.complete_sync(io, Ok(())))
            .collect()
    }

    /// Completes each pending sync with probability `complete_per_mille`, failing each
    /// completed one with `EIO` with probability `fail_per_mille`. Others stay pending.
    pub fn complete_some_syncs(
        &mut self,
        complete_per_mille: u32,
        fail_per_mille: u32,
    ) -> Vec<DiskCompletion> {
        let mut done = Vec::new();
        for io in self.pending_syncs() {
            if !self.rng.chance(complete_per_mille) {
                continue;
            }
            let result = if self.rng.chance(fail_per_mille) {
                Err(eio("injected sync failure"))
            } else {
                Ok(())
            };
            done.extend(self.complete_sync(io, result));
        }
        done
    }

    /// Makes the next `count` sync completions (async or `*_now`) fail with `EIO`.
    pub fn fail_syncs(&mut self, count: u64) {
        self.syncs_to_fail = count;
    }

    /// Lets `syncs_ok` more syncs (async or `*_now`) succeed, then fails exactly one.
    pub fn fail_one_sync_after(&mut self, syncs_ok: u64) {
        self.syncs_ok_before_one_failure = Some(syncs_ok);
    }

    /// After `writes_ok` more successful writes, every write fails with `fault` until
    /// [`MemDisk::clear_write_faults`].
    pub fn fail_writes_after(&mut self, writes_ok: u64, fault: WriteFault) {
        self.write_fault = Some(WriteFaultArm {
            writes_left: writes_ok,
            fault,
        });
    }

    /// Disarms [`MemDisk::fail_writes_after`].
    pub fn clear_write_faults(&mut self) {
        self.write_fault = None;
    }

    /// Limits the total current size of all files (`None`: unlimited).
    pub fn set_capacity_bytes(&mut self, capacity_bytes: Option<u64>) {
        self.capacity_bytes = capacity_bytes;
    }

    /// Reads of `path` in `start..end` return bytes with bit 0 flipped (latent
    /// corruption, the stored bytes stay intact) until [`MemDisk::clear_read_corruption`].
    pub fn corrupt_reads(&mut self, path: &str, start: u64, end: u64) {
        self.read_corruption.push((normalize(path), start, end));
    }

    /// Of the reads of `path` that cover byte `at`, the one after the next `skip`
    /// sees it XORed with `mask`, once (a transient flip: reading again is right).
    pub fn flip_one_read(&mut self, path: &str, at: u64, mask: u8, skip: u32) {
        self.next_read_flips.push((normalize(path), at, mask, skip));
    }

    /// Ends every [`MemDisk::corrupt_reads`].
    pub fn clear_read_corruption(&mut self) {
        self.read_corruption.clear();
    }

    /// XORs the stored byte at `offset` of `path` with `mask`, in the durable and the
    /// current contents alike (media rot). Returns false if there is no such byte.
    pub fn corrupt_stored(&mut self, path: &str, offset: u64, mask: u8) -> bool {
        let Some(Entry::File(inode)) = self.namespace.get(&normalize(path)).copied() else {
            return false;
        };
        let inode = self.inodes.get_mut(&inode).expect("inode of a file");
        let mut changed = false;
        let at = offset as usize;
        if let Some(byte) = inode.durable.get_mut(at) {
            *byte ^= mask;
            changed = true;
        }
        if let Some(byte) = inode.current.get_mut(at) {
            *byte ^= mask;
            changed = true;
        }
        // Unsynced writes carry the flip too, so a later sync or a crash keeps it.
        for (_, op) in &mut inode.unsynced {
            if let FileOp::Write {
                offset: start,
                data,
            } = op
                && offset >= *start
                && offset < *start + data.len() as u64
            {
                data[(offset - *start) as usize] ^= mask;
            }
        }
        changed
    }

    /// Simulates a power loss with [`CrashOptions::default`], drawing from `seed`.
    pub fn crash(&mut self, seed: u64) {
        self.crash_with(seed, CrashOptions::default());
    }

    /// Simulates a power loss: keeps the durable state and a random subset of the
    /// unsynced operations, drawn from `seed` (see the fault model).
    pub fn crash_with(&mut self, seed: u64, options: CrashOptions) {
        let mut rng = SplitMix64::new(seed);
        self.stats.crashes += 1;
        // The namespace: durable entries plus a random subset of unsynced operations.
        let mut namespace = self.durable_namespace.clone();
        for op in std::mem::take(&mut self.dir_ops) {
            if rng.chance(options.keep_dir_op_per_mille) {
                apply_dir_op(&mut namespace, &op.op);
            } else {
                self.stats.crash_dir_ops_dropped += 1;
            }
        }
        remove_orphans(&mut namespace);
        // File contents: durable bytes plus a random subset of unsynced operations.
        let live: BTreeSet<u64> = namespace
            .values()
            .filter_map(|entry| match entry {
                Entry::File(inode) => Some(*inode),
                Entry::Dir => None,
            })
            .collect();
        let mut inodes = BTreeMap::new();
        for (id, inode) in std::mem::take(&mut self.inodes) {
            if !live.contains(&id) {
                continue;
            }
            let mut contents = inode.durable;
            for (_, op) in inode.unsynced {
                if !rng.chance(options.keep_file_op_per_mille) {
                    self.stats.crash_ops_dropped += 1;
                    continue;
                }
                match op {
                    FileOp::Truncate { len } => contents.resize(len as usize, 0),
                    FileOp::Write { offset, data } => {
                        if rng.chance(options.tear_write_per_mille) {
                            self.stats.crash_writes_torn += 1;
                            write_torn(&mut contents, offset, &data, &mut rng);
                        } else {
                            write_into(&mut contents, offset, &data);
                        }
                    }
                }
            }
            inodes.insert(
                id,
                Inode {
                    durable: contents.clone(),
                    current: contents,
                    unsynced: Vec::new(),
                    next_seq: inode.next_seq,
                },
            );
        }
        self.inodes = inodes;
        self.durable_namespace = namespace.clone();
        self.namespace = namespace;
        self.open_files.clear();
        self.pending.clear();
    }

    /// The current contents of the file at `path` (what reads see), if it exists.
    pub fn file_contents(&self, path: &str) -> Option<Vec<u8>> {
        match self.namespace.get(&normalize(path))? {
            Entry::File(inode) => Some(self.inodes[inode].current.clone()),
            Entry::Dir => None,
        }
    }

    /// The durable contents of the file at `path`, if the file exists now.
    pub fn durable_contents(&self, path: &str) -> Option<Vec<u8>> {
        match self.namespace.get(&normalize(path))? {
            Entry::File(inode) => Some(self.inodes[inode].durable.clone()),
            Entry::Dir => None,
        }
    }

    /// Paths of all files, sorted.
    pub fn file_paths(&self) -> Vec<String> {
        self.namespace
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::File(_)))
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Files currently open.
    pub fn open_file_count(&self) -> usize {
        self.open_files.len()
    }

    fn take_sync_fault(&mut self) -> Result<(), DiskError> {
        match self.syncs_ok_before_one_failure {
            Some(0) => {
                self.syncs_ok_before_one_failure = None;
                return Err(eio("injected sync failure"));
            }
            Some(ref mut count) => *count -= 1,
            None => {}
        }
        if self.syncs_to_fail > 0 {
            self.syncs_to_fail -= 1;
            return Err(eio("injected sync failure"));
        }
        Ok(())
    }

    fn apply_sync(&mut self, pending: &PendingSync, ok: bool) {
        match pending {
            PendingSync::BadFile => {}
            PendingSync::File { inode, upto_seq } => {
                let Some(inode) = self.inodes.get_mut(inode) else {
                    return;
                };
                let (covered, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut inode.unsynced)
                    .into_iter()
                    .partition(|(seq, _)| seq < upto_seq);
                inode.unsynced = rest;
                if ok {
                    for (_, op) in covered {
                        apply_file_op(&mut inode.durable, &op);
                    }
                }
            }
            PendingSync::Dir { path, upto_seq } => {
                // A failed directory sync leaves its operations unsynced: directory
                // entries live in the file system journal, not in dropped data pages.
                if !ok {
                    return;
                }
                let (covered, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dir_ops)
                    .into_iter()
                    .partition(|op| op.seq < *upto_seq && op.parent == *path);
                self.dir_ops = rest;
                for op in covered {
                    apply_dir_op(&mut self.durable_namespace, &op.op);
                }
            }
        }
    }

    fn start_sync(&mut self, pending: PendingSync) -> IoId {
        assert!(
            self.pending.len() < PENDING_SYNCS_MAX,
            "too many pending syncs: nobody completes them"
        );
        let io = IoId(self.next_io_id);
        self.next_io_id += 1;
        self.pending.insert(io, pending);
        io
    }

    fn sync_now_pending(&mut self, pending: PendingSync) -> Result<(), DiskError> {
        let result = self.take_sync_fault();
        match result {
            Ok(()) => self.stats.syncs_ok += 1,
            Err(_) => self.stats.syncs_failed += 1,
        }
        self.apply_sync(&pending, result.is_ok());
        result
    }

    fn open_file(&self, file: FileId) -> Result<&OpenFile, DiskError> {
        self.open_files
            .get(&file)
            .ok_or_else(|| eio(&format!("bad file id {}", file.0)))
    }

    fn push_dir_op(&mut self, parent: String, op: DirOp) {
        apply_dir_op(&mut self.namespace, &op);
        let seq = self.next_dir_seq;
        self.next_dir_seq += 1;
        self.dir_ops.push(UnsyncedDirOp { seq, parent, op });
    }

    fn total_current_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.current.len() as u64).sum()
    }

    fn push_file_op(&mut self, inode: u64, op: FileOp) {
        let inode = self.inodes.get_mut(&inode).expect("open inode");
        apply_file_op(&mut inode.current, &op);
        let seq = inode.next_seq;
        inode.next_seq += 1;
        inode.unsynced.push((seq, op));
    }
}

impl Disk for MemDisk {
    fn open(&mut self, path: &str, mode: OpenMode) -> Result<FileId, DiskError> {
        let path = normalize(path);
        let existing = self.namespace.get(&path).copied();
        let inode = match (existing, mode) {
            (Some(Entry::Dir), _) => return Err(eio(&format!("is a directory: {path}"))),
            (Some(Entry::File(_)), OpenMode::CreateNew) => {
                return Err(DiskError::AlreadyExists { path });
            }
            (Some(Entry::File(inode)), _) => inode,
            (None, OpenMode::Read | OpenMode::ReadWrite) => {
                return Err(DiskError::NotFound { path });
            }
            (None, OpenMode::Create | OpenMode::CreateNew) => {
                let parent = parent_of(&path);
                if !parent.is_empty() && self.namespace.get(&parent) != Some(&Entry::Dir) {
                    return Err(DiskError::NotFound { path: parent });
                }
                let inode = self.next_inode;
                self.next_inode += 1;
                self.inodes.insert(inode, Inode::default());
                self.push_dir_op(
                    parent,
                    DirOp::Create {
                        path: path.clone(),
                        inode,
                    },
                );
                inode
            }
        };
        let file = FileId(self.next_file_id);
        self.next_file_id += 1;
        self.open_files.insert(
            file,
            OpenFile {
                inode,
                path,
                writable: mode != OpenMode::Read,
            },
        );
        Ok(file)
    }

    fn close(&mut self, file: FileId) {
        self.open_files.remove(&file);
    }

    fn file_len(&mut self, file: FileId) -> Result<u64, DiskError> {
        let inode = self.open_file(file)?.inode;
        Ok(self.inodes[&inode].current.len() as u64)
    }

    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, DiskError> {
        let open = self.open_file(file)?.clone();
        let contents = &self.inodes[&open.inode].current;
        let start = (offset as usize).min(contents.len());
        let end = (start + buf.len()).min(contents.len());
        let count = end - start;
        buf[..count].copy_from_slice(&contents[start..end]);
        let mut corrupted = false;
        for (path, bad_start, bad_end) in &self.read_corruption {
            if *path != open.path {
                continue;
            }
            for (i, byte) in buf[..count].iter_mut().enumerate() {
                let at = offset + i as u64;
                if at >= *bad_start && at < *bad_end {
                    *byte ^= 0x01;
                    corrupted = true;
                }
            }
        }
        let flips = std::mem::take(&mut self.next_read_flips);
        for (path, at, mask, skip) in flips {
            if path == open.path && at >= offset && at < offset + count as u64 {
                if skip == 0 {
                    buf[(at - offset) as usize] ^= mask;
                    corrupted = true;
                } else {
                    self.next_read_flips.push((path, at, mask, skip - 1));
                }
            } else {
                self.next_read_flips.push((path, at, mask, skip));
            }
        }
        if corrupted {
            self.stats.reads_corrupted += 1;
        }
        Ok(count)
    }

    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let open = self.open_file(file)?.clone();
        if !open.writable {
            return Err(eio("file opened read-only"));
        }
        let mut failure = None;
        if let Some(arm) = &mut self.write_fault {
            if arm.writes_left == 0 {
                failure = Some(arm.fault.to_error());
            } else {
                arm.writes_left -= 1;
            }
        }
        if failure.is_none()
            && let Some(capacity) = self.capacity_bytes
        {
            let len = self.inodes[&open.inode].current.len() as u64;
            let growth = (offset + data.len() as u64).saturating_sub(len);
            if self.total_current_bytes() + growth > capacity {
                failure = Some(DiskError::NoSpace);
            }
        }
        if let Some(error) = failure {
            self.stats.writes_failed += 1;
            // A failed pwrite may have written a strict prefix of the data.
            if !data.is_empty() {
                let prefix = self.rng.below(data.len() as u64) as usize;
                let prefix = match self.capacity_bytes {
                    Some(capacity) => {
                        let len = self.inodes[&open.inode].current.len() as u64;
                        let free = capacity.saturating_sub(self.total_current_bytes());
                        let room = (len + free).saturating_sub(offset) as usize;
                        prefix.min(room)
                    }
                    None => prefix,
                };
                if prefix > 0 {
                    self.push_file_op(
                        open.inode,
                        FileOp::Write {
                            offset,
                            data: data[..prefix].to_vec(),
                        },
                    );
                }
            }
            return Err(error);
        }
        self.stats.writes += 1;
        self.push_file_op(
            open.inode,
            FileOp::Write {
                offset,
                data: data.to_vec(),
            },
        );
        Ok(())
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), DiskError> {
        let open = self.open_file(file)?.clone();
        if !open.writable {
            return Err(eio("file opened read-only"));
        }
        let current = self.inodes[&open.inode].current.len() as u64;
        if len > current
            && let Some(capacity) = self.capacity_bytes
            && self.total_current_bytes() + (len - current) > capacity
        {
            return Err(DiskError::NoSpace);
        }
        self.push_file_op(open.inode, FileOp::Truncate { len });
        Ok(())
    }

    fn sync(&mut self, file: FileId) -> IoId {
        // A sync of a closed or unknown file still completes, with EIO.
        let pending = match self.open_files.get(&file) {
            Some(open) => PendingSync::File {
                inode: open.inode,
                upto_seq: self.inodes[&open.inode].next_seq,
            },
            None => PendingSync::BadFile,
        };
        self.start_sync(pending)
    }

    fn sync_dir(&mut self, path: &str) -> IoId {
        let pending = PendingSync::Dir {
            path: normalize(path),
            upto_seq: self.next_dir_seq,
        };
        self.start_sync(pending)
    }

    fn sync_now(&mut self, file: FileId) -> Result<(), DiskError> {
        let inode = self.open_file(file)?.inode;
        let upto_seq = self.inodes[&inode].next_seq;
        self.sync_now_pending(PendingSync::File { inode, upto_seq })
    }

    fn sync_dir_now(&mut self, path: &str) -> Result<(), DiskError> {
        let pending = PendingSync::Dir {
            path: normalize(path),
            upto_seq: self.next_dir_seq,
        };
        self.sync_now_pending(pending)
    }

    fn create_dir_all(&mut self, path: &str) -> Result<(), DiskError> {
        let path = normalize(path);
        let mut prefix = String::new();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            let parent = prefix.clone();
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            match self.namespace.get(&prefix) {
                Some(Entry::Dir) => {}
                Some(Entry::File(_)) => {
                    return Err(eio(&format!("not a directory: {prefix}")));
                }
                None => self.push_dir_op(
                    parent,
                    DirOp::Mkdir {
                        path: prefix.clone(),
                    },
                ),
            }
        }
        Ok(())
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, DiskError> {
        let path = normalize(path);
        if !path.is_empty() && self.namespace.get(&path) != Some(&Entry::Dir) {
            return Err(DiskError::NotFound { path });
        }
        let names = self
            .namespace
            .keys()
            .filter(|entry| parent_of(entry) == path)
            .map(|entry| entry.rsplit('/').next().unwrap_or(entry).to_string())
            .collect();
        Ok(names)
    }

    fn exists(&mut self, path: &str) -> bool {
        let path = normalize(path);
        path.is_empty() || self.namespace.contains_key(&path)
    }

    fn remove_file(&mut self, path: &str) -> Result<(), DiskError> {
        let path = normalize(path);
        match self.namespace.get(&path) {
            Some(Entry::File(_)) => {
                self.push_dir_op(parent_of(&path), DirOp::Remove { path });
                Ok(())
            }
            Some(Entry::Dir) => Err(eio(&format!("is a directory: {path}"))),
            None => Err(DiskError::NotFound { path }),
        }
    }

    fn remove_dir_all(&mut self, path: &str) -> Result<(), DiskError> {
        let path = normalize(path);
        match self.namespace.get(&path) {
            Some(Entry::Dir) => {
                self.push_dir_op(parent_of(&path), DirOp::RemoveAll { path });
                Ok(())
            }
            Some(Entry::File(_)) => Err(eio(&format!("not a directory: {path}"))),
            None => Err(DiskError::NotFound { path }),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let from = normalize(from);
        let to = normalize(to);
        let inode = match self.namespace.get(&from) {
            Some(Entry::File(inode)) => *inode,
            Some(Entry::Dir) => return Err(eio(&format!("is a directory: {from}"))),
            None => return Err(DiskError::NotFound { path: from }),
        };
        if self.namespace.get(&to) == Some(&Entry::Dir) {
            return Err(eio(&format!("is a directory: {to}")));
        }
        let parent = parent_of(&to);
        if !parent.is_empty() && self.namespace.get(&parent) != Some(&Entry::Dir) {
            return Err(DiskError::NotFound { path: parent });
        }
        self.push_dir_op(parent, DirOp::Rename { from, to, inode });
        Ok(())
    }
}

fn eio(message: &str) -> DiskError {
    DiskError::Io {
        message: message.to_string(),
    }
}

/// `a//b/./c/` -> `a/b/c`; the root is the empty string.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn parent_of(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => path[..at].to_string(),
        None => String::new(),
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

fn apply_dir_op(namespace: &mut BTreeMap<String, Entry>, op: &DirOp) {
    match op {
        DirOp::Create { path, inode } => {
            namespace.insert(path.clone(), Entry::File(*inode));
        }
        DirOp::Mkdir { path } => {
            namespace.insert(path.clone(), Entry::Dir);
        }
        DirOp::Remove { path } => {
            if let Some(Entry::File(_)) = namespace.get(path) {
                namespace.remove(path);
            }
        }
        DirOp::RemoveAll { path } => {
            namespace.retain(|entry, _| !is_under(entry, path));
        }
        DirOp::Rename { from, to, inode } => {
            // Replayed after a crash without the create it depends on: nothing to move.
            if namespace.get(from) == Some(&Entry::File(*inode)) {
                namespace.remove(from);
                namespace.insert(to.clone(), Entry::File(*inode));
            }
        }
    }
}

/// Drops entries whose parent directory does not exist.
fn remove_orphans(namespace: &mut BTreeMap<String, Entry>) {
    // Keys are sorted, so a parent comes before its children.
    let keys: Vec<String> = namespace.keys().cloned().collect();
    for key in keys {
        let parent = parent_of(&key);
        if !parent.is_empty() && namespace.get(&parent) != Some(&Entry::Dir) {
            namespace.remove(&key);
        }
    }
}

fn apply_file_op(contents: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write { offset, data } => write_into(contents, *offset, data),
        FileOp::Truncate { len } => contents.resize(*len as usize, 0),
    }
}

fn write_into(contents: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if contents.len() < end {
        contents.resize(end, 0);
    }
    contents[start..end].copy_from_slice(data);
}

/// Lands a random subset of the sectors `data` touches. The file grows to cover the
/// last sector that landed (a torn append leaves zeros where sectors did not land).
fn write_torn(contents: &mut Vec<u8>, offset: u64, data: &[u8], rng: &mut SplitMix64) {
    let end = offset + data.len() as u64;
    let mut sector_start = offset - offset % SECTOR_BYTES;
    while sector_start < end {
        let sector_end = sector_start + SECTOR_BYTES;
        let from = sector_start.max(offset);
        let to = sector_end.min(end);
        if rng.chance(500) {
            let slice = &data[(from - offset) as usize..(to - offset) as usize];
            write_into(contents, from, slice);
        }
        sector_start = sector_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_with_file() -> (MemDisk, FileId) {
        let mut disk = MemDisk::new(1);
        disk.create_dir_all("d").unwrap();
        disk.sync_dir_now("").unwrap();
        let file = disk.open("d/f", OpenMode::CreateNew).unwrap();
        disk.sync_dir_now("d").unwrap();
        (disk, file)
    }

    #[test]
    fn write_is_visible_before_sync() {
        let (mut disk, file) = disk_with_file();
        disk.write_at(file, 0, b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(disk.read_at(file, 0, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(disk.durable_contents("d/f").unwrap(), b"");
    }

    #[test]
    fn sync_covers_only_earlier_writes() {
        let (mut disk, file) = disk_with_file();
        disk.write_at(file, 0, b"abc").unwrap();
        let io = disk.sync(file);
        disk.write_at(file, 3, b"def").unwrap();
        let done = disk.complete_all_syncs();
        assert_eq!(done, vec![DiskCompletion { io, result: Ok(()) }]);
        assert_eq!(disk.durable_contents("d/f").unwrap(), b"abc");
        assert_eq!(disk.file_contents("d/f").unwrap(), b"abcdef");
    }

    #[test]
    fn crash_keeps_everything_durable() {
        for seed in 0..50 {
            let (mut disk, file) = disk_with_file();
            disk.write_at(file, 0, &[7u8; 2000]).unwrap();
            disk.sync_now(file).unwrap();
            disk.write_at(file, 2000, &[9u8; 3000]).unwrap();
            disk.crash(seed);
            let contents = disk.file_contents("d/f").unwrap();
            assert_eq!(&contents[..2000], &[7u8; 2000][..]);
        }
    }

    #[test]
    fn crash_loses_or_tears_unsynced_writes_for_some_seed() {
        let mut lost = false;
        let mut torn = false;
        for seed in 0..100 {
            let (mut disk, file) = disk_with_file();
            disk.write_at(file, 0, &[9u8; 4096]).unwrap();
            disk.crash(seed);
            let contents = disk.file_contents("d/f").unwrap();
            lost |= contents.is_empty();
            torn |= !contents.is_empty() && contents != vec![9u8; 4096];
        }
        assert!(lost);
        assert!(torn);
    }

    #[test]
    fn failed_sync_drops_covered_writes_for_good() {
        let (mut disk, file) = disk_with_file();
        disk.write_at(file, 0, b"lost").unwrap();
        disk.fail_syncs(1);
        assert!(disk.sync_now(file).is_err());
        // fsyncgate: the retry succeeds but the data is not durable.
        disk.sync_now(file).unwrap();
        assert_eq!(disk.durable_contents("d/f").unwrap(), b"");
        assert_eq!(disk.file_contents("d/f").unwrap(), b"lost");
    }

    #[test]
    fn file_without_dir_sync_can_vanish_at_crash() {
        let mut vanished = false;
        for seed in 0..20 {
            let (mut disk, _) = disk_with_file();
            let file = disk.open("d/g", OpenMode::CreateNew).unwrap();
            disk.write_at(file, 0, b"x").unwrap();
            disk.sync_now(file).unwrap();
            disk.crash(seed);
            vanished |= !disk.exists("d/g");
            assert!(disk.exists("d/f"));
        }
        assert!(vanished);
    }

    #[test]
    fn write_countdown_fails_with_strict_prefix() {
        let (mut disk, file) = disk_with_file();
        disk.fail_writes_after(1, WriteFault::NoSpace);
        disk.write_at(file, 0, b"ok").unwrap();
        assert_eq!(
            disk.write_at(file, 2, b"0123456789"),
            Err(DiskError::NoSpace)
        );
        assert!(disk.file_contents("d/f").unwrap().len() < 12);
        disk.clear_write_faults();
        disk.write_at(file, 2, b"x").unwrap();
    }

    #[test]
    fn capacity_limit_is_enospc() {
        let (mut disk, file) = disk_with_file();
        disk.set_capacity_bytes(Some(10));
        disk.write_at(file, 0, b"0123456789").unwrap();
        assert_eq!(disk.write_at(file, 10, b"a"), Err(DiskError::NoSpace));
        disk.write_at(file, 0, b"overwrite").unwrap();
    }

    #[test]
    fn read_corruption_flips_bits_but_keeps_stored_bytes() {
        let (mut disk, file) = disk_with_file();
        disk.write_at(file, 0, b"abcd").unwrap();
        disk.corrupt_reads("d/f", 1, 2);
        let mut buf = [0u8; 4];
        disk.read_at(file, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"accd");
        assert_eq!(disk.file_contents("d/f").unwrap(), b"abcd");
    }

    #[test]
    fn rename_is_undone_by_crash_unless_dir_synced() {
        let (mut disk, file) = disk_with_file();
        disk.write_at(file, 0, b"new").unwrap();
        disk.sync_now(file).unwrap();
        disk.rename("d/f", "d/h").unwrap();
        disk.sync_dir_now("d").unwrap();
        disk.crash(3);
        assert!(disk.exists("d/h"));
        assert!(!disk.exists("d/f"));
        assert_eq!(disk.read_dir("d").unwrap(), vec!["h".to_string()]);
    }
}
