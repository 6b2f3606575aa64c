//! `odradek-log`: the Io seam and the crash-safe segmented log.
//!
//! - [`io`]: the only way core code touches clocks, disks, timers and randomness.
//! - [`batch`]: RecordBatch v2 framing, CRC-32C validation, offset assignment.
//!
//! Nothing in this crate uses `std::fs`, `std::time`, threads, sockets or OS
//! randomness; a tidy test and clippy's `disallowed-methods` enforce it.
#![deny(missing_docs)]

pub mod batch;
pub mod io;
