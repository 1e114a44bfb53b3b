//! Audit export bundles: a self-contained directory that an auditor verifies offline, with
//! nothing but the ledger's public key.
//!
//! A bundle holds, for one signed checkpoint of the ledger:
//!
//! | file             | what it is |
//! |------------------|------------|
//! | `entries.csv`    | the exported rows (the entries the range selects), RFC 4180 CSV, columns [`CSV_COLUMNS`] |
//! | `entries.jsonl`  | the same rows, one JSON object per line |
//! | `ledger.bin`     | the raw bytes of *every* entry up to the checkpoint, each a `u32` big-endian length then the bytes |
//! | `checkpoint`     | the signed checkpoint (C2SP signed note) those entries hash to |
//! | `ledger_key.pub` | the ledger's public key (OpenSSH line), for information only |
//! | `policy.toml`, `allowed_signers`, `revoked_keys` | the policy files in force at export time (the last only if configured) |
//! | `export.json`    | what was exported: the range, the counts, the policy digest ([`Description`]) |
//! | `README`         | plain words for the auditor |
//! | `MANIFEST`       | `sha256sum` lines for every file above |
//! | `MANIFEST.sig`   | an SSHSIG (`ssh-keygen -Y sign -n tally-export`) over `MANIFEST` by the ledger key |
//!
//! The rows are derived from the raw entries and nothing else, so [`verify_bundle`] can check
//! them exactly: it re-derives every row from `ledger.bin` with the same range and compares
//! bytes. The raw entries are the whole ledger, not only the range, so the verifier recomputes
//! every leaf hash, the hash chain and the RFC 6962 root, which proves the inclusion of every
//! exported row in the signed checkpoint and that no entry of the range was left out.
//!
//! This module has no SQLite in it: [`BundleWriter`] takes the raw entries from whoever holds
//! the ledger (the store, in `tally-hooks`), and [`verify_bundle`] reads only the bundle
//! directory. The byte-exact layout is documented in `docs/export.md`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::entry::EntryView;
use crate::merkle::Hash;

// The parts, a file each: the row formats (`rows`); writing a bundle (`write`, with its
// `readme`); `MANIFEST` and its signature (`manifest`); `verify_bundle` and its checks
// (`verify`), streaming `ledger.bin` and the rows together (`stream`), saying what differs in
// a wrong row (`diff`), and what it reports (`report`); and the threads that hash the three
// streamed files as they are written or read (`hashing`). This file holds what they share:
// the file names and columns, the range, `export.json` and the policy digest.
mod diff;
mod hashing;
mod manifest;
mod readme;
mod report;
mod rows;
mod stream;
mod verify;
mod write;

pub use report::{BundleError, BundleProblem, BundleReport};
pub use rows::{csv_header, csv_row, json_row};
pub use verify::verify_bundle;
pub use write::{BundleWriter, ExportError, Seal, Summary};

/// The `format` value of `export.json` this crate writes and reads.
pub const FORMAT: &str = "tally-export/1";
/// The SSHSIG namespace of `MANIFEST.sig` (`ssh-keygen -Y sign -n tally-export`).
pub const SIGNATURE_NAMESPACE: &str = "tally-export";

/// `README`: plain words for the auditor.
pub const README: &str = "README";
/// `export.json`: what was exported ([`Description`]).
pub const DESCRIPTION: &str = "export.json";
/// `entries.jsonl`: the rows as JSON lines.
pub const ENTRIES_JSONL: &str = "entries.jsonl";
/// `entries.csv`: the rows as RFC 4180 CSV.
pub const ENTRIES_CSV: &str = "entries.csv";
/// `ledger.bin`: every raw entry up to the checkpoint, length-prefixed.
pub const LEDGER_BIN: &str = "ledger.bin";
/// `checkpoint`: the signed checkpoint note.
pub const CHECKPOINT: &str = "checkpoint";
/// `ledger_key.pub`: the ledger's public key as the exporter had it.
pub const LEDGER_KEY: &str = "ledger_key.pub";
/// `policy.toml`: the policy file in force.
pub const POLICY: &str = "policy.toml";
/// `allowed_signers`: the allowed signers in force.
pub const ALLOWED_SIGNERS: &str = "allowed_signers";
/// `revoked_keys`: the revocation file in force, when one is configured (whatever its name
/// in the repository).
pub const REVOKED_KEYS: &str = "revoked_keys";
/// `MANIFEST`: the SHA-256 of every other file.
pub const MANIFEST: &str = "MANIFEST";
/// `MANIFEST.sig`: the ledger key's SSHSIG over `MANIFEST`.
pub const MANIFEST_SIG: &str = "MANIFEST.sig";

/// The files every bundle has, besides the policy files.
const REQUIRED: [&str; 9] = [
    README,
    DESCRIPTION,
    ENTRIES_JSONL,
    ENTRIES_CSV,
    LEDGER_BIN,
    CHECKPOINT,
    LEDGER_KEY,
    MANIFEST,
    MANIFEST_SIG,
];

/// The columns of `entries.csv`, in order. List-valued columns (`commits`, `principals`,
/// `fingerprints`, `reasons`) hold one item per line, joined by a line feed; `principals` and
/// `fingerprints` line up with `commits`.
pub const CSV_COLUMNS: [&str; 17] = [
    "seq",
    "time",
    "kind",
    "ref",
    "old",
    "new",
    "new_tree",
    "commits",
    "principals",
    "fingerprints",
    "pusher",
    "policy_digest",
    "reasons",
    "aborts",
    "repository",
    "prev_hash",
    "leaf_hash",
];

/// The fields of an `entries.jsonl` object, in order (those of `tally log --json`).
pub const JSON_FIELDS: [&str; 15] = [
    "seq",
    "kind",
    "time",
    "repository",
    "ref",
    "old",
    "new",
    "new_tree",
    "commits",
    "pusher",
    "policy_digest",
    "reasons",
    "aborts",
    "prev_hash",
    "leaf_hash",
];

// =============================================================================================
// The range

/// Which entries become rows: a branch and a time window. The raw entries are always the whole
/// ledger up to the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// Only entries of this full ref name (`refs/heads/main`), plus the ledger-wide entries
    /// (empty ref, such as the policy change `tally init` records), which apply to every branch.
    pub branch: Option<String>,
    /// Only entries appended at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only entries appended before this time (exclusive, so consecutive periods do not
    /// overlap).
    pub until: Option<jiff::Timestamp>,
}

impl Range {
    /// Whether the range selects this entry.
    pub fn contains(&self, entry: &EntryView<'_>) -> bool {
        self.branch
            .as_deref()
            .is_none_or(|b| entry.refname == b || entry.refname.is_empty())
            && self.since.is_none_or(|t| entry.time >= t)
            && self.until.is_none_or(|t| entry.time < t)
    }
}

/// `export.json`: what a bundle says it holds. Every field is checked by [`verify_bundle`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// [`FORMAT`].
    pub format: String,
    /// The ledger's checkpoint origin.
    pub origin: String,
    /// The repository id every entry carries.
    pub repository: String,
    /// The number of entries in `ledger.bin`: the checkpoint's size.
    pub size: u64,
    /// The checkpoint's Merkle root, lowercase hex.
    pub root: String,
    /// The range's branch (full ref name), or `null` for every branch.
    pub branch: Option<String>,
    /// The range's start (RFC 3339, inclusive), or `null`.
    pub since: Option<String>,
    /// The range's end (RFC 3339, exclusive), or `null`.
    pub until: Option<String>,
    /// The number of rows in `entries.csv` and `entries.jsonl`.
    pub rows: u64,
    /// The seq of the first row, `null` when there is none.
    pub first_seq: Option<u64>,
    /// The seq of the last row, `null` when there is none.
    pub last_seq: Option<u64>,
    /// The policy files in the bundle, by their bundle names.
    pub policy_files: Vec<String>,
    /// [`policy_digest`] of those files, lowercase hex: compare it with the entries'
    /// `policy_digest` to see since when that policy was in force.
    pub policy_digest: String,
    /// When the bundle was written (RFC 3339).
    pub exported_at: String,
    /// What wrote it (`tally <version>`).
    pub exported_by: String,
}

impl Description {
    /// The range the rows were selected with.
    pub fn range(&self) -> Result<Range, String> {
        let time = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    v.parse::<jiff::Timestamp>()
                        .map_err(|e| format!("{field} {v:?} is not an RFC 3339 time: {e}"))
                })
                .transpose()
        };
        if let Some(branch) = &self.branch
            && !branch.starts_with("refs/")
        {
            return Err(format!("branch {branch:?} is not a full ref name"));
        }
        Ok(Range {
            branch: self.branch.clone(),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
        })
    }
}

/// The policy digest the hooks record in every entry: SHA-256 over the label
/// `tally policy digest v1\n`, then the policy file, allowed_signers and the revocation file
/// (empty when none is configured), each preceded by its length as a `u64` big-endian.
pub fn policy_digest(policy: &[u8], allowed_signers: &[u8], revoked_keys: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"tally policy digest v1\n");
    for bytes in [policy, allowed_signers, revoked_keys] {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    h.finalize().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
