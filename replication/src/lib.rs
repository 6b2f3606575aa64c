//! `odradek-replication`: the broker node as a pure state machine over the Io seam.
#![deny(missing_docs)]
