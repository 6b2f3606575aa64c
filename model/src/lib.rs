//! `odradek-model`: sequential specifications, histories and checkers.
//!
//! - [`history`]: client operations as invoked and completed (ok / fail / indefinite).
//! - [`log_spec`]: the sequential specification of one partition log.
//! - [`linearizability`]: the per-partition linearizability checker.
//!
//! Pure code: no I/O, no clock, no randomness. The simulator (`sim/`) records histories;
//! the checkers here decide whether they are allowed.
#![deny(missing_docs)]

pub mod history;
pub mod linearizability;
pub mod log_spec;
