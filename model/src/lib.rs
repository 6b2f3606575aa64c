//! `odradek-model`: sequential specifications, histories and checkers.
//!
//! - [`history`]: client operations as invoked and completed (ok / fail / indefinite).
//! - [`log_spec`]: the sequential specification of one partition log, [`LogSpec`].
//! - [`linearizability`]: the per-partition linearizability checker (Wing & Gong's
//!   search, Lowe's memoisation, pruned by what a log allows), answering
//!   [`Verdict::Ok`], [`Verdict::Illegal`] with an explanation, or [`Verdict::Unknown`]
//!   when its budget runs out.
//! - [`anomalies`]: Jepsen's Kafka anomalies (lost write, duplicate, poll-skip,
//!   nonmonotonic poll and send, inconsistent offsets, unseen) plus phantom reads.
//! - [`check`]: [`check_history`] runs both and returns a [`CheckReport`].
//! - [`groups`]: consumer-group histories (assignments, offset commits, offset
//!   fetches) and [`groups::check_groups`]: one owner per partition per generation,
//!   generations only rise, acknowledged commits are never lost.
//!
//! How a history flows through the checkers:
//!
//! ```text
//!  sim/ workload ──invoke/complete──> History
//!                                       │
//!            ┌──────────────────────────┴───────────────────────────┐
//!            │ split by partition (P-compositionality)              │ whole history
//!            v                                                      v
//!   linearizability::check_partition                      anomalies::find_anomalies
//!     1. observations fix offsets ─ contradiction? ──┐      lost-write, duplicate,
//!     2. place sends by offset      (LogSpec replays │      poll-skip, nonmonotonic-*,
//!     3. place polls eagerly         the witness)    │      inconsistent-offsets,
//!     4. stop at the extent                          │      phantom, unseen
//!            │                                       │              │
//!            v                                       v              v
//!     Verdict::Ok { linearization } | Illegal(Violation) | Unknown   Anomalies
//!            └──────────────────────────┬───────────────────────────┘
//!                                       v
//!                       CheckReport: is_valid(), has_unknown(), render(), marked()
//! ```
//!
//! ```
//! use odradek_model::history::{Call, History, Outcome, PartitionKey, ProcessId, Reply};
//! use odradek_model::{CheckOptions, check_history};
//!
//! let partition = PartitionKey { topic: "t".into(), partition: 0 };
//! let mut history = History::new();
//! let send = history.invoke(ProcessId(1), partition.clone(), Call::Send { value: 7 }, 10);
//! history.complete(send, Outcome::Ok(Reply::Sent { offset: 0 }), 20);
//! let poll = history.invoke(ProcessId(2), partition, Call::Poll { offset: 0 }, 30);
//! let records = vec![(0, 7)];
//! history.complete(poll, Outcome::Ok(Reply::Polled { records }), 40);
//!
//! let report = check_history(&history, &CheckOptions::new().final_reads(true));
//! assert!(report.is_valid(), "{}", report.render());
//! ```
//!
//! What the checkers assume of a recorded history (a recorder that breaks these
//! makes them panic or report anomalies that are not the broker's):
//!
//! - every send carries a value no other send in the history carries;
//! - a process has at most one operation in flight;
//! - [`Outcome::Fail`](history::Outcome::Fail) only when the operation certainly did
//!   not take effect; anything uncertain (timeouts, lost connections) is
//!   [`Outcome::Indefinite`](history::Outcome::Indefinite);
//! - a poll's records start at the requested offset (a Kafka fetch returns whole
//!   batches, so records below the requested offset are dropped first, as Kafka
//!   clients do);
//! - unless [`CheckOptions::sequential_polls`] is turned off, a process polls each
//!   partition from where its previous `Ok` poll left off, or starts afresh after a
//!   failed or indefinite poll;
//! - [`CheckOptions::final_reads`] only when the run ends with complete reads of every
//!   partition after every write settled.
//!
//! Pure code: no I/O, no clock, no randomness. The simulator (`sim/`) records histories;
//! the checkers here decide whether they are allowed.
#![deny(missing_docs)]

pub mod anomalies;
pub mod check;
pub mod groups;
pub mod history;
pub mod linearizability;
pub mod log_spec;

pub use check::{CheckOptions, CheckReport, check_history};
pub use linearizability::Verdict;
pub use log_spec::LogSpec;
