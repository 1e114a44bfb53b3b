//! The tally ledger.
//!
//! Not built yet: the hash chain, the RFC 6962 Merkle tree, signed checkpoints and the SQLite
//! store arrive with the ledger issue. This crate exists so that the dependency graph of the
//! workspace (`hooks` -> {`ledger`, `verify`}) is in place; it exports nothing that pretends to
//! record anything.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
