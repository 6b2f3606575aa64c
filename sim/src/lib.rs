//! `odradek-sim`: the deterministic simulator.
#![deny(missing_docs)]
