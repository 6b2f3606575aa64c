//! The Io seam: the only door between Odradek's core logic and the world.
//!
//! Everything in `odradek-log`, `odradek-replication` and `odradek-model` reaches the
//! clock, the disk, timers and randomness through the traits in this file, and through
//! nothing else. Production (`bin/`) implements them over real files and a real clock;
//! the simulator (`sim/`) implements them over a seeded event queue and in-memory disks
//! that fail on purpose. Because the core never knows which one it runs on, the code the
//! simulator breaks is exactly the code production runs.
//!
//! ```text
//!             events in                                commands out
//!   DiskDone{io,result} ─┐                      ┌─► Disk::write_at / read_at (sync, page cache)
//!   Timer(id)          ──┼─►  core state machine ├─► Disk::sync(file) -> IoId (async)
//!   client requests    ──┘   (no I/O of its own) ├─► Io::set_timer(at, id)
//!                                                └─► responses, peer messages (replication)
//! ```
//!
//! # Durability contract
//!
//! Reads and writes go to the page cache and return at once: a write that returned is
//! visible to later reads, but it is *not durable*. A crash may lose any subset of the
//! writes that no completed sync covers, and may tear a write at sector granularity.
//! [`Disk::sync`] starts making a file durable and returns an [`IoId`]; the write is
//! durable only once the matching [`DiskCompletion`] arrives with `Ok`. A sync covers the
//! writes that returned before `sync` was called, not later ones. Nothing may be
//! reported durable to anyone before that completion.
//!
//! A failed sync (`EIO`) means the kernel may already have dropped the dirty pages: a
//! later sync that succeeds proves nothing about the earlier writes (the 2018
//! "fsyncgate" lesson). Callers treat a failed sync as fatal for the data it covered.
//!
//! Paths are `/`-separated and relative to the disk's root (the broker's data
//! directory); the core never sees an absolute path.

use core::fmt;
use core::ops::{Add, Sub};
pub use core::time::Duration;

/// A point on a monotonic clock, in nanoseconds since an arbitrary origin.
///
/// Production counts from process start; the simulator counts from zero. Only
/// differences between two `Instant`s of the same node mean anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant { nanos: 0 };

    /// The instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let delta = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant {
            nanos: self.nanos.saturating_add(delta),
        }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// An open file of a [`Disk`]. Ids are never reused by one disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u64);

/// One asynchronous disk operation in flight; its completion carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IoId(pub u64);

/// A timer the core asked for; it comes back as an event with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// The ways a disk operation fails. A bug is a panic; a disk failure is one of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The path does not exist.
    #[error("not found: {path}")]
    NotFound {
        /// The path that was asked for.
        path: String,
    },
    /// `OpenMode::CreateNew` found the file already there.
    #[error("already exists: {path}")]
    AlreadyExists {
        /// The path that was asked for.
        path: String,
    },
    /// The device is full (`ENOSPC`). Nothing of the failed write may be assumed written.
    #[error("no space left on device")]
    NoSpace,
    /// Any other I/O failure (`EIO`, a latent sector error, ...).
    #[error("i/o error: {message}")]
    Io {
        /// What the operating system or the simulator said.
        message: String,
    },
}

/// How [`Disk::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing file for reading only.
    Read,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Open for reading and writing, creating the file if it is missing.
    Create,
    /// Create a new file for reading and writing; fail if it exists.
    CreateNew,
}

/// The completion of an asynchronous disk operation started with [`Disk::sync`] or
/// [`Disk::sync_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskCompletion {
    /// The id the operation returned when it started.
    pub io: IoId,
    /// `Ok` once every write the sync covers is durable.
    pub result: Result<(), DiskError>,
}

/// Files and directories, with page-cache semantics and explicit, asynchronous durability.
///
/// See the module documentation for the durability contract.
pub trait Disk {
    /// Opens `path` as `mode` says.
    fn open(&mut self, path: &str, mode: OpenMode) -> Result<FileId, DiskError>;

    /// Closes `file`. Syncs already started on it still complete.
    fn close(&mut self, file: FileId);

    /// The current length of `file`, including writes that are not yet durable.
    fn file_len(&mut self, file: FileId) -> Result<u64, DiskError>;

    /// Reads into `buf` from `offset`; returns how many bytes were read, fewer than
    /// `buf.len()` only at the end of the file.
    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, DiskError>;

    /// Writes all of `data` at `offset`, extending the file if needed. Not durable until
    /// a later sync completes.
    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8]) -> Result<(), DiskError>;

    /// Cuts or extends `file` to `len` bytes. Not durable until a later sync completes.
    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), DiskError>;

    /// Starts making every write to `file` that returned before this call durable.
    /// The result arrives later as a [`DiskCompletion`] with the returned id.
    fn sync(&mut self, file: FileId) -> IoId;

    /// Starts making the directory entries of `path` (files created, renamed or
    /// removed in it) durable. Completes like [`Disk::sync`].
    fn sync_dir(&mut self, path: &str) -> IoId;

    /// Makes `file` durable before returning. Only for start-up and rare metadata
    /// writes: it blocks the caller for a whole device flush.
    fn sync_now(&mut self, file: FileId) -> Result<(), DiskError>;

    /// Makes the directory entries of `path` durable before returning; see
    /// [`Disk::sync_now`].
    fn sync_dir_now(&mut self, path: &str) -> Result<(), DiskError>;

    /// Creates `path` and any missing parents. Not durable until its parent is synced.
    fn create_dir_all(&mut self, path: &str) -> Result<(), DiskError>;

    /// The names (not paths) of the entries of directory `path`, sorted.
    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, DiskError>;

    /// Whether `path` exists (file or directory).
    fn exists(&mut self, path: &str) -> bool;

    /// Removes the file at `path`.
    fn remove_file(&mut self, path: &str) -> Result<(), DiskError>;

    /// Removes the directory at `path` and everything in it.
    fn remove_dir_all(&mut self, path: &str) -> Result<(), DiskError>;

    /// Renames `from` to `to`, replacing `to` if it exists (atomic on POSIX).
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;

    /// A log's recovery starts (`true`) or ends (`false`); calls nest (a replica's
    /// recovery includes its log's). A real disk ignores it. The
    /// simulator holds its *transient* read faults off meanwhile: recovery takes a
    /// batch that fails its check for a torn tail and cuts there, which is right for
    /// what a crash left half-written and wrong for a bit that flipped on one read of
    /// an intact, acknowledged batch. (Rot that stays on the medium is another fault,
    /// whose repair needs the replicas' help.)
    fn recovery_hint(&mut self, recovering: bool) {
        let _ = recovering;
    }
}

/// The whole seam a node sees: a [`Disk`], a clock, timers and randomness.
///
/// Network effects (responses to clients, messages to peers) are added by
/// `odradek-replication`, which owns those message types.
pub trait Io: Disk {
    /// The node's monotonic clock. Simulated clocks drift, step and stall per node.
    fn now(&self) -> Instant;

    /// Milliseconds since the Unix epoch, for record timestamps and time-based
    /// retention. May jump backwards or forwards; never use it to measure durations.
    fn wall_clock_ms(&self) -> i64;

    /// A uniformly random `u64`: from the OS in production, from the seed in the sim.
    fn random(&mut self) -> u64;

    /// Asks for a timer event with id `timer` at or after `at`. Timers are not
    /// cancelled: a state machine ignores a timer it no longer needs.
    fn set_timer(&mut self, at: Instant, timer: TimerId);

    /// A BUGGIFY site (FoundationDB's name): core code asks whether to take a rare but
    /// legal path here — an extra sync round, a smaller read, a roll now — so that the
    /// simulator exercises paths that production reaches only under load. Production
    /// never overrides this: it is always `false` there. The simulator turns sites on
    /// per seed and fires them with a per-seed probability, counting each firing.
    fn buggify(&mut self, site: &'static str) -> bool {
        let _ = site;
        false
    }
}

/// Implements [`Disk`] for a type by forwarding every call to one of its fields, so an
/// [`Io`] built around a disk (production's, the simulator's, a test's) says so in one
/// line: `odradek_log::forward_disk!(ProdIo => disk);`.
#[macro_export]
macro_rules! forward_disk {
    ($type:ty => $field:ident) => {
        impl $crate::io::Disk for $type {
            fn open(
                &mut self,
                path: &str,
                mode: $crate::io::OpenMode,
            ) -> Result<$crate::io::FileId, $crate::io::DiskError> {
                self.$field.open(path, mode)
            }
            fn close(&mut self, file: $crate::io::FileId) {
                self.$field.close(file)
            }
            fn file_len(&mut self, file: $crate::io::FileId) -> Result<u64, $crate::io::DiskError> {
                self.$field.file_len(file)
            }
            fn read_at(
                &mut self,
                file: $crate::io::FileId,
                offset: u64,
                buf: &mut [u8],
            ) -> Result<usize, $crate::io::DiskError> {
                self.$field.read_at(file, offset, buf)
            }
            fn write_at(
                &mut self,
                file: $crate::io::FileId,
                offset: u64,
                data: &[u8],
            ) -> Result<(), $crate::io::DiskError> {
                self.$field.write_at(file, offset, data)
            }
            fn truncate(
                &mut self,
                file: $crate::io::FileId,
                len: u64,
            ) -> Result<(), $crate::io::DiskError> {
                self.$field.truncate(file, len)
            }
            fn sync(&mut self, file: $crate::io::FileId) -> $crate::io::IoId {
                self.$field.sync(file)
            }
            fn sync_dir(&mut self, path: &str) -> $crate::io::IoId {
                self.$field.sync_dir(path)
            }
            fn sync_now(&mut self, file: $crate::io::FileId) -> Result<(), $crate::io::DiskError> {
                self.$field.sync_now(file)
            }
            fn sync_dir_now(&mut self, path: &str) -> Result<(), $crate::io::DiskError> {
                self.$field.sync_dir_now(path)
            }
            fn create_dir_all(&mut self, path: &str) -> Result<(), $crate::io::DiskError> {
                self.$field.create_dir_all(path)
            }
            fn read_dir(&mut self, path: &str) -> Result<Vec<String>, $crate::io::DiskError> {
                self.$field.read_dir(path)
            }
            fn exists(&mut self, path: &str) -> bool {
                self.$field.exists(path)
            }
            fn remove_file(&mut self, path: &str) -> Result<(), $crate::io::DiskError> {
                self.$field.remove_file(path)
            }
            fn remove_dir_all(&mut self, path: &str) -> Result<(), $crate::io::DiskError> {
                self.$field.remove_dir_all(path)
            }
            fn rename(&mut self, from: &str, to: &str) -> Result<(), $crate::io::DiskError> {
                self.$field.rename(from, to)
            }
            fn recovery_hint(&mut self, recovering: bool) {
                self.$field.recovery_hint(recovering)
            }
        }
    };
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.nanos / 1_000_000;
        let micros = (self.nanos / 1_000) % 1_000;
        write!(f, "{millis}.{micros:03}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_nanos(5);
        assert_eq!(t + Duration::from_nanos(7), Instant::from_nanos(12));
        assert_eq!(Instant::from_nanos(12) - t, Duration::from_nanos(7));
        assert_eq!(t - Instant::from_nanos(12), Duration::ZERO);
        assert_eq!(
            Instant::from_nanos(u64::MAX) + Duration::from_secs(1),
            Instant::from_nanos(u64::MAX)
        );
    }
}
