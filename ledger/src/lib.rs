//! The tally ledger: a hash-chained, RFC 6962 Merkle-rooted, ed25519-signed record of every
//! revision a protected branch accepted and every push it refused.
//!
//! The pieces, each a module:
//!
//! - [`entry`]: one ledger entry and its byte encoding (versioned, length-prefixed,
//!   domain-separated). The encoded bytes are what is stored and what is hashed; nothing is ever
//!   re-serialised to be verified.
//! - [`chain`]: the hash chain (each entry carries the previous entry's leaf hash) and the rules
//!   that hold between entries (sequence numbers, aborts).
//! - [`merkle`]: the RFC 6962 Merkle tree over the entries: roots, inclusion and consistency
//!   proofs and their verification, and the incremental [`merkle::Frontier`].
//! - [`checkpoint`]: C2SP `tlog-checkpoint` notes signed as C2SP `signed-note`s, with a
//!   `cosignature/v1` timestamp from the same key for freshness.
//! - [`key`]: the ledger key, an OpenSSH ed25519 key file.
//! - [`log`]: how `tally log` shows entries (text and JSON), and [`report`]: what
//!   `tally ledger verify` reports, whatever it verified.
//! - [`publication`]: the format of the ledger's publication at `refs/tally/ledger` (the
//!   blobs of each publication commit), for the server's writer and every reader.
//! - `pgconnect` (cargo feature `store`): how tally connects to a PostgreSQL ledger, with
//!   libpq's conventions (environment, pgpass, service file, sslmode) and rustls.
//! - `store` (cargo feature `store`, on by default): the SQLite store: appends in one
//!   transaction with a compare-and-swap head, every checkpoint ever signed, and whole-ledger
//!   verification. Agents read the published ledger and build without it (no SQLite).
//!
//! The byte-exact formats are documented in `docs/ledger-format.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod key;
pub mod log;
pub mod merkle;
#[cfg(feature = "store")]
pub mod pgconnect;
pub mod publication;
pub mod report;
#[cfg(feature = "store")]
pub mod store;

pub mod hex;

pub use chain::{ChainError, ChainVerifier, GENESIS};
pub use checkpoint::{
    Checkpoint, CheckpointError, SignedCheckpoint, VerifiedCheckpoint, VerifierKey,
};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use entry::{CommitSigner, Entry, EntryError, EntryView, Kind};
pub use key::KeyError;
pub use merkle::{Frontier, Hash, ProofError};
#[cfg(feature = "store")]
pub use store::{
    AppendOutcome, Destination, Filter, Head, Marker, NewEntry, Options, Postgres, Record, Store,
    StoreError, VerifyError, VerifyReport,
};
