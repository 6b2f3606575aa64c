//! The run's timeline for people: what the nemesis did, when nodes went down and came
//! back, the phases, and where a check failed. It is recorded beside the trace, never
//! hashed (the trace's events are), so it may grow new details freely; the HTML report
//! (`html.rs`) draws it under the history.

use crate::faults::Nemesis;

/// One entry of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEvent {
    /// Global simulated time.
    pub at_ns: u64,
    /// What happened.
    pub kind: TimelineKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimelineKind {
    /// The nemesis acted (or was told to skip this event).
    Nemesis {
        /// Position among the run's nemesis events (`--nemesis-skip`, `--nemeses-max`
        /// count these); `None` for the follow-ups that end an episode (repair, disk
        /// space back).
        number: Option<u64>,
        /// What it did.
        nemesis: Nemesis,
        /// The node it aimed at.
        node: u32,
        /// Skipped by `--nemesis-skip` or `--nemeses-max`: drawn, not applied.
        skipped: bool,
        /// When the episode ends, if it has a length (a pause, a partition, a clog, a
        /// full disk, a clock stall).
        until_ns: Option<u64>,
        /// Particulars, for a tooltip.
        detail: String,
    },
    /// A node opened (incarnation counts from 1).
    NodeUp {
        /// The node.
        node: u32,
        /// Its incarnation.
        incarnation: u64,
    },
    /// A node stopped.
    NodeDown {
        /// The node.
        node: u32,
        /// Why: power loss, killed, clean restart, fatal exit, restart at heal.
        why: String,
    },
    /// A node failed to open (with a disk fault during recovery: retried).
    NodeStartFailed {
        /// The node.
        node: u32,
        /// The error.
        error: String,
    },
    /// The run moved to a phase: `liveness` (faults healed), `final reads`, `done`.
    Phase(&'static str),
    /// A check failed here (the run stops), or the simulated code panicked.
    Violation(String),
}
