//! What `tally ledger verify` found, wherever it looked (the server's store, or the ledger
//! published at `refs/tally/ledger` in a clone): one shape for both, printed as text or as
//! the JSON object documented in `docs/ledger-format.md`.

use serde::Serialize;

/// What `tally ledger verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyOutcome {
    /// Whether everything holds (no problem).
    pub ok: bool,
    /// What was verified: `"store"` (the server's `tally/ledger.sqlite`) or
    /// `"refs/tally/ledger"` (the published ledger, in a clone).
    pub source: String,
    /// The fingerprint (`SHA256:...`) of the ledger key the checkpoints were verified with.
    pub key: String,
    /// Entries verified.
    pub size: u64,
    /// Their Merkle root, hex (empty if the entries could not be verified).
    pub root: String,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Problems found, each naming what is wrong: every bad checkpoint, and the first
    /// entry that breaks the chain (entries after it are not judged).
    pub problems: Vec<String>,
    /// Remarks that are not failures (publication lagging, say).
    pub notes: Vec<String>,
}
