//! Deliberately broken behaviours, compiled only with the `mutants` cargo feature.
//!
//! The simulator must not be vacuous: for each class of fault it injects, a broken
//! component has to be flagged within a bounded number of seeds (`sim/tests/mutants.rs`).
//! Several of those broken components live inside core code, where the real check or
//! rule is; each one is switched on at run time by a field of [`Mutants`], which
//! travels in [`crate::LogConfig`]. Without the feature neither the field nor any of
//! the hooks exist, so `cargo build --release -p odradek` ships none of it. See
//! `docs/decisions/0005-mutants.md` for the choice and its limits.

/// Which deliberate bugs are on. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// `PartitionLog::read` returns batches without checking their CRC.
    pub skip_read_crc: bool,
    /// Recovery checks only the framing (headers) of the active segment, not CRCs,
    /// so a torn batch whose length and offsets survived stays in the log.
    pub recovery_keeps_torn_tail: bool,
    /// The node's fetch reads up to the log end offset instead of the high watermark.
    pub serve_above_high_watermark: bool,
    /// Recovery does not consult the synced-through record: damage in synced bytes
    /// that no index file covers is cut as a torn tail, and nobody hears of it.
    pub recovery_ignores_synced_record: bool,
    /// A broker of a cluster that finds its data directory unformatted (a lost disk)
    /// formats it and starts as the same member, empty, as brokers did before the
    /// format step (decision 0010, item 5).
    pub format_lost_directory: bool,
    /// A broker of a cluster starts serving clients from whatever metadata it has
    /// applied, as brokers did before issue 15: nothing of its own log until the
    /// quorum's leader teaches it the commit point again, so it calls topics it knew
    /// unknown (decision 0011).
    pub serve_before_metadata_caught_up: bool,
    /// The log cleaner keeps the older record of a key instead of the newest when
    /// both share one batch.
    pub cleaner_drops_newest_value: bool,
    /// The log cleaner removes the old segment file before the cleaned one is
    /// durable, and renames the cleaned one in without syncing it first.
    pub swap_not_crash_safe: bool,
    /// The log cleaner removes tombstones at its first pass, ignoring
    /// `delete.retention.ms`.
    pub tombstones_removed_at_once: bool,
    /// A broker that replays its metadata log as it opens skips the config changes
    /// (alter-configs records) committed before it stopped: it comes back with the
    /// configs it started with, and learns only the changes made after.
    pub alter_configs_not_replayed: bool,
    /// DeleteRecords deletes the segment that holds its offset too, with the
    /// acknowledged records at and above the offset in it.
    pub delete_records_deletes_above_the_offset: bool,
    /// A broker replaying its metadata log at start skips the delete-records records,
    /// so its replicas start where they did before any DeleteRecords (whatever whole
    /// segments were deleted stay deleted).
    pub deleted_records_not_replayed: bool,
}
