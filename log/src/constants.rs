//! Every bound of the storage engine, in one place (TigerBeetle style: a limit on every
//! queue, map and loop, named `*_max`, tied together by compile-time assertions).

/// Batches remembered per idempotent producer for duplicate detection. Kafka keeps 5,
/// matching `max.in.flight.requests.per.connection <= 5` for idempotent producers.
pub const PRODUCER_BATCHES_CACHED_MAX: usize = 5;

/// Idempotent producers remembered per partition; the least recently used is evicted.
pub const PRODUCERS_MAX: usize = 4096;

/// Segment files a partition keeps open at once (the active one included). Others are
/// closed and reopened on demand.
pub const SEGMENT_FILES_OPEN_MAX: usize = 8;

/// Segment data files one sync round covers. If more segments were rolled since the
/// last round, the round covers the oldest ones and the rest wait for the next round.
pub const SYNC_ROUND_SEGMENTS_MAX: usize = 16;

/// Segments whose index files one sync round writes (two files each).
pub const SYNC_ROUND_SEALS_MAX: usize = 4;

/// Syncs one partition has in flight at once: data files, index files, one
/// directory sync and one of the synced-through record.
pub const SYNCS_IN_FLIGHT_MAX: usize = SYNC_ROUND_SEGMENTS_MAX + 2 * SYNC_ROUND_SEALS_MAX + 2;

/// Largest `segment.bytes` honoured. Index positions are stored as `u64`, but a
/// segment this size already takes long to scan on recovery.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 40;

/// Smallest `segment.bytes` honoured (a segment must hold at least a batch header).
pub const SEGMENT_BYTES_MIN: u64 = 64;

/// Bytes read at once while scanning batch headers.
pub const SCAN_HEADER_BYTES: usize = crate::batch::BATCH_HEADER_BYTES;

/// Largest batch the recovery scanner will read into memory. Bigger "batches" are
/// treated as a corrupt length field. Kafka's `max.message.bytes` is an `int`.
pub const BATCH_BYTES_MAX: u64 = i32::MAX as u64;

/// Bytes recovery reads and writes back at once (see `docs/storage.md`, recovery).
pub const RECOVERY_REWRITE_CHUNK_BYTES: usize = 1 << 20;

/// Index entries one segment's offset or time index holds; `index.interval.bytes` is
/// raised for a segment that would need more.
pub const INDEX_ENTRIES_MAX: usize = 1 << 20;

/// Bytes one batch's records may decompress to (`log/src/compression.rs`); a batch
/// that inflates beyond it is not opened by the cleaner (it is kept as it is). Kafka's
/// `max.message.bytes` defaults to about 1 MiB of compressed records.
pub const RECORDS_DECOMPRESSED_BYTES_MAX: usize = 1 << 24;

/// Memory the log cleaner's key map (key -> newest offset) may take, counted as key
/// bytes plus [`CLEANER_MAP_ENTRY_OVERHEAD_BYTES`] per key. A pass whose dirty part
/// has more distinct keys cleans only up to where they fit; the next pass goes on.
/// The first batch of a pass is taken whatever its keys cost, so a pass always
/// makes progress (one batch's records are bounded by
/// [`RECORDS_DECOMPRESSED_BYTES_MAX`]).
pub const CLEANER_MAP_BYTES_MAX: u64 = 1 << 26;

/// What one key of the cleaner's map costs beyond its bytes (tree node, offset).
pub const CLEANER_MAP_ENTRY_OVERHEAD_BYTES: u64 = 48;

const _: () = assert!(PRODUCER_BATCHES_CACHED_MAX >= 1);
const _: () = assert!(CLEANER_MAP_BYTES_MAX >= CLEANER_MAP_ENTRY_OVERHEAD_BYTES);
const _: () = assert!(PRODUCERS_MAX >= 1);
// The active segment plus at least one segment being read or synced.
const _: () = assert!(SEGMENT_FILES_OPEN_MAX >= 2);
const _: () = assert!(SYNC_ROUND_SEGMENTS_MAX >= 1);
const _: () = assert!(SYNCS_IN_FLIGHT_MAX <= 64);
const _: () = assert!(SEGMENT_BYTES_MIN as usize >= crate::batch::BATCH_HEADER_BYTES);
const _: () = assert!(SEGMENT_BYTES_MIN < SEGMENT_BYTES_MAX);
