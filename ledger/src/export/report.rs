//! What [`verify_bundle`](super::verify_bundle) reports: the error when a bundle cannot be
//! examined at all, each kind of problem found in one, and the report that lists them.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// Why a bundle could not be examined at all (as opposed to a problem found in it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle directory cannot be read.
    #[error("{}: cannot read the bundle directory: {source}", path.display())]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The directory holds none of a bundle's signed files: it is not a bundle at all (a
    /// wrong path), as opposed to a bundle with files missing, which is a problem found.
    #[error(
        "{}: not an export bundle (no MANIFEST, MANIFEST.sig, export.json, ledger.bin or checkpoint); give the directory that `tally export --out` wrote",
        path.display()
    )]
    NotABundle {
        /// The directory.
        path: PathBuf,
    },
}

/// One thing wrong with a bundle, naming the file, and the row or line where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleProblem {
    /// `MANIFEST.sig` is not a valid signature of `MANIFEST` by the pinned ledger key.
    #[error("MANIFEST.sig: {reason}")]
    Signature {
        /// Why.
        reason: String,
    },
    /// A line of `MANIFEST` is malformed.
    #[error("MANIFEST line {line}: {reason}")]
    Manifest {
        /// The line number, from 1.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A file of the bundle is missing.
    #[error("{name}: missing from the bundle")]
    MissingFile {
        /// The file.
        name: String,
    },
    /// The directory holds something that is not part of the bundle.
    #[error("{name}: not part of a tally export bundle (extra file)")]
    ExtraFile {
        /// The file.
        name: String,
    },
    /// A file of the bundle is not listed in `MANIFEST`.
    #[error("{name}: not listed in MANIFEST")]
    Unlisted {
        /// The file.
        name: String,
    },
    /// A file's SHA-256 is not the one `MANIFEST` gives.
    #[error("{name}: SHA-256 is {found}, but MANIFEST says {expected} (the file was changed)")]
    HashMismatch {
        /// The file.
        name: String,
        /// The hash in `MANIFEST`.
        expected: String,
        /// The file's hash.
        found: String,
    },
    /// A file cannot be read.
    #[error("{name}: cannot be read: {reason}")]
    Unreadable {
        /// The file.
        name: String,
        /// Why.
        reason: String,
    },
    /// `export.json` is malformed or contradicts the rest of the bundle.
    #[error("export.json: {reason}")]
    Description {
        /// Why.
        reason: String,
    },
    /// The checkpoint does not parse or does not verify with the pinned key.
    #[error("checkpoint: {reason}")]
    Checkpoint {
        /// Why.
        reason: String,
    },
    /// `ledger_key.pub` is not the pinned key.
    #[error("ledger_key.pub: {reason}")]
    LedgerKey {
        /// Why.
        reason: String,
    },
    /// The policy files do not have the digest `export.json` gives.
    #[error(
        "policy files: their digest is {computed}, but export.json says {declared} (a policy file was changed)"
    )]
    PolicyDigest {
        /// The digest in `export.json`.
        declared: String,
        /// The digest of the files.
        computed: String,
    },
    /// An entry of `ledger.bin` is malformed or breaks the chain.
    #[error("ledger.bin entry {index} (byte offset {offset}): {reason}")]
    RawEntry {
        /// The entry's position in the file, from 0 (its expected seq).
        index: u64,
        /// Where it starts in the file.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// The entries do not hash to what the checkpoint signs.
    #[error("ledger.bin: {reason}")]
    Tree {
        /// What differs.
        reason: String,
    },
    /// A row of `entries.csv` or `entries.jsonl` is not what the raw entry says.
    #[error("{file} row {row} (line {line}): {reason}")]
    Row {
        /// The file.
        file: &'static str,
        /// The row number, from 1 (the CSV header is not a row).
        row: u64,
        /// The line the row starts on, from 1.
        line: u64,
        /// What differs.
        reason: String,
    },
    /// A row the raw entries call for is not there.
    #[error("{file}: row {row} (entry seq {seq}) is missing; the file ends after row {}", .row - 1)]
    MissingRow {
        /// The file.
        file: &'static str,
        /// The missing row's number, from 1.
        row: u64,
        /// The raw entry it should show.
        seq: u64,
    },
    /// A row with no raw entry to match it.
    #[error(
        "{file} row {row} (line {line}): extra row; no entry of ledger.bin in the range is left for it"
    )]
    ExtraRow {
        /// The file.
        file: &'static str,
        /// The row number, from 1.
        row: u64,
        /// The line it starts on.
        line: u64,
    },
    /// More row problems were found than are listed.
    #[error("more problems in the rows were not listed")]
    MoreRowProblems,
}

/// The outcome of [`verify_bundle`](super::verify_bundle).
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    /// Whether the bundle verified: no problem found.
    pub ok: bool,
    /// The ledger's origin, if the checkpoint could be read.
    pub origin: Option<String>,
    /// The checkpoint's size (entries in `ledger.bin`).
    pub size: Option<u64>,
    /// The checkpoint's root, hex.
    pub root: Option<String>,
    /// When the checkpoint was signed (RFC 3339), if it verified.
    pub checkpoint_time: Option<String>,
    /// The range's branch.
    pub branch: Option<String>,
    /// The range's start.
    pub since: Option<String>,
    /// The range's end.
    pub until: Option<String>,
    /// The number of rows checked.
    pub rows: u64,
    /// The digest of the bundled policy files.
    pub policy_digest: Option<String>,
    /// Everything found wrong, in the order: files and signature, hashes, entries, rows.
    #[serde(serialize_with = "serialize_problems")]
    pub problems: Vec<BundleProblem>,
}

fn serialize_problems<S: serde::Serializer>(
    problems: &[BundleProblem],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(problems.iter().map(ToString::to_string))
}
