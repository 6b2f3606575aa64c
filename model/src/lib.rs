//! `odradek-model`: sequential specifications, histories and checkers.
//!
//! - [`history`]: client operations as invoked and completed (ok / fail / indefinite).
//! - [`log_spec`]: the sequential specification of one partition log.
//! - [`linearizability`]: the per-partition linearizability checker.
//! - [`anomalies`]: Jepsen's Kafka anomalies (lost write, duplicate, poll-skip, ...).
//! - [`check`]: [`check_history`] runs them all and reports.
//!
//! Pure code: no I/O, no clock, no randomness. The simulator (`sim/`) records histories;
//! the checkers here decide whether they are allowed.
#![deny(missing_docs)]

pub mod anomalies;
pub mod check;
pub mod history;
pub mod linearizability;
pub mod log_spec;

pub use check::{CheckOptions, CheckReport, check_history};
