//! `odradek-log`: the Io seam and the crash-safe segmented log.
//!
//! - [`io`]: the only way core code touches clocks, disks, timers and randomness.
//! - [`batch`]: RecordBatch v2 framing, CRC-32C validation, offset assignment.
//! - [`partition`]: [`PartitionLog`], one partition's segmented log: appends, group
//!   commit, reads, recovery, retention, idempotent-producer state.
//! - [`segment`]: segment file names, the batch scanner (also behind
//!   `odradek dump-log`), index and checkpoint formats.
//! - [`producer`]: idempotent-producer sequence checks.
//! - [`compression`]: the batch codecs (gzip, snappy, lz4, zstd), for the cleaner.
//! - [`cleaning`]: the log cleaner's key map, per-batch rule and filler runs (log compaction);
//!   `PartitionLog::clean_step` runs it over the segments.
//! - [`synced`]: the synced-through record that tells damage from a torn write.
//! - [`mem_disk`]: [`mem_disk::MemDisk`], an in-memory [`io::Disk`] with crashes and
//!   injected faults, for tests and the simulator.
//! - [`mixing`]: the one seeded generator (SplitMix64) and one stable hash (FNV-1a)
//!   every crate uses.
//! - [`constants`]: every bound, in one place.
//! - `mutants` (cargo feature `mutants` only): deliberate bugs the simulator must catch.
//!
//! ```text
//!  broker node ──append/read/start_sync──► PartitionLog ──write_at/sync──► Disk
//!       ▲                                       ▲                           │
//!       └──────── on_sync_complete(DiskCompletion) ◄──────────────────────────┘
//! ```
//!
//! Nothing in this crate uses `std::fs`, `std::time`, threads, sockets or OS
//! randomness; a tidy test and clippy's `disallowed-methods` enforce it. On-disk
//! formats are described in `docs/storage.md`.
#![deny(missing_docs)]

pub mod batch;
pub mod cleaning;
pub mod compression;
pub mod constants;
pub mod io;
pub mod mem_disk;
pub mod mixing;
#[cfg(feature = "mutants")]
pub mod mutants;
pub mod partition;
pub mod producer;
pub mod segment;
pub mod synced;

pub use partition::{
    AppendError, AppendOutcome, CleanProgress, CleanupPolicy, LogConfig, LogError,
    MaintenanceReport, OpenReport, PartitionLog, ReadError, ReadResult, Truncation,
};
pub use producer::{ProducerBatch, ProducerEntry};
pub use segment::{SegmentScan, scan_segment};
