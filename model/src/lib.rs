//! `odradek-model`: sequential specifications, histories and checkers.
//!
//! - [`history`]: client operations as invoked and completed (ok / fail / indefinite).
//!
//! Pure code: no I/O, no clock, no randomness. The simulator (`sim/`) records histories;
//! the checkers here decide whether they are allowed.
#![deny(missing_docs)]

pub mod history;
