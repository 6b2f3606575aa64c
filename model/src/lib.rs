//! `odradek-model`: sequential specifications and checkers.
#![deny(missing_docs)]
