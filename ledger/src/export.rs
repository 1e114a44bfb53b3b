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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufRead, Read};
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::ChainVerifier;
use crate::checkpoint::{CheckpointError, SignedCheckpoint, VerifierKey};
use crate::entry::{EntryView, MAX_ENCODED_LEN};
use crate::hex::{self, Hex};
use crate::merkle::{Frontier, Hash, leaf_hash};

mod diff;
mod hashing;
mod manifest;
mod readme;
mod report;
mod rows;
mod write;

use diff::{csv_difference, json_difference};
use hashing::ChunkReader;
use manifest::{check_manifest_signature, fingerprint, parse_manifest};
pub use report::{BundleError, BundleProblem, BundleReport};
pub use rows::{csv_header, csv_row, json_row};
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

/// The largest small file (everything but the three row and entry files) the verifier reads.
const MAX_SMALL_FILE: u64 = 16 << 20;
/// After this many problems in the rows, the verifier stops listing more.
const MAX_ROW_PROBLEMS: usize = 20;

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

/// Verifies a bundle offline against the pinned ledger key (never the bundle's own copy).
///
/// Checks, and reports every failure rather than the first: `MANIFEST.sig` is an SSHSIG by
/// the pinned key over `MANIFEST`; the directory holds exactly the bundle's files, each listed
/// in `MANIFEST` with its SHA-256; `export.json` is well-formed; the checkpoint verifies with
/// the pinned key; `ledger.bin` decodes strictly, chains, and hashes to the checkpoint's root
/// and size; the rows of `entries.jsonl` and `entries.csv` are exactly those the raw entries
/// give for the range `export.json` records, in order; the policy files have the recorded
/// digest; `ledger_key.pub` is the pinned key.
pub fn verify_bundle(dir: &Path, pinned: &VerifyingKey) -> Result<BundleReport, BundleError> {
    let listing = fs::read_dir(dir).map_err(|source| BundleError::Unreadable {
        path: dir.to_owned(),
        source,
    })?;
    let mut present = BTreeSet::new();
    let mut problems = Vec::new();
    for item in listing {
        let item = item.map_err(|source| BundleError::Unreadable {
            path: dir.to_owned(),
            source,
        })?;
        let name = item.file_name().to_string_lossy().into_owned();
        // Only regular files count: a symlink could point anywhere.
        match item.file_type() {
            Ok(t) if t.is_file() => {
                present.insert(name);
            }
            _ => problems.push(BundleProblem::ExtraFile { name }),
        }
    }
    let mut v = Verifier {
        dir,
        present,
        problems,
        hashes: BTreeMap::new(),
    };
    let mut report = BundleReport {
        ok: false,
        origin: None,
        size: None,
        root: None,
        checkpoint_time: None,
        branch: None,
        since: None,
        until: None,
        rows: 0,
        policy_digest: None,
        problems: Vec::new(),
    };

    // The manifest and its signature.
    let manifest = v.read_small(MANIFEST);
    let signature = v.read_small(MANIFEST_SIG);
    if let (Some(manifest), Some(signature)) = (&manifest, &signature)
        && let Err(reason) = check_manifest_signature(signature, manifest, pinned)
    {
        v.problems.push(BundleProblem::Signature { reason });
    }
    let listed = manifest
        .as_deref()
        .map(|m| parse_manifest(m, &mut v.problems))
        .unwrap_or_default();

    // What the bundle says it holds.
    let description = v.read_small(DESCRIPTION).and_then(|bytes| {
        match serde_json::from_slice::<Description>(&bytes) {
            Ok(d) if d.format != FORMAT => {
                v.problems.push(BundleProblem::Description {
                    reason: format!(
                        "format {:?} is not {FORMAT:?}; this build reads only that",
                        d.format
                    ),
                });
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                v.problems.push(BundleProblem::Description {
                    reason: format!("not a valid description ({e})"),
                });
                None
            }
        }
    });
    let range = description.as_ref().and_then(|d| match d.range() {
        Ok(range) => Some(range),
        Err(reason) => {
            v.problems.push(BundleProblem::Description { reason });
            None
        }
    });
    if let Some(d) = &description {
        report.branch = d.branch.clone();
        report.since = d.since.clone();
        report.until = d.until.clone();
    }

    // Which files there must be.
    let mut expected: BTreeSet<String> = REQUIRED.iter().map(|s| (*s).to_owned()).collect();
    let mut policy_names = vec![POLICY, ALLOWED_SIGNERS];
    match &description {
        Some(d) => {
            let mut names: Vec<&str> = d.policy_files.iter().map(String::as_str).collect();
            names.sort_unstable();
            let mut allowed_with = vec![ALLOWED_SIGNERS, POLICY, REVOKED_KEYS];
            allowed_with.sort_unstable();
            let mut allowed_without = vec![ALLOWED_SIGNERS, POLICY];
            allowed_without.sort_unstable();
            if names == allowed_with {
                policy_names.push(REVOKED_KEYS);
            } else if names != allowed_without {
                v.problems.push(BundleProblem::Description {
                    reason: format!(
                        "policy_files {:?} is not [{POLICY:?}, {ALLOWED_SIGNERS:?}] with or without {REVOKED_KEYS:?}",
                        d.policy_files
                    ),
                });
            }
        }
        None if v.present.contains(REVOKED_KEYS) => policy_names.push(REVOKED_KEYS),
        None => {}
    }
    expected.extend(policy_names.iter().map(|s| (*s).to_owned()));
    for name in &expected {
        if !v.present.contains(name) {
            v.problems
                .push(BundleProblem::MissingFile { name: name.clone() });
        }
    }
    for name in &v.present {
        if !expected.contains(name) {
            v.problems
                .push(BundleProblem::ExtraFile { name: name.clone() });
        }
    }
    if manifest.is_some() {
        for name in &expected {
            if name != MANIFEST && name != MANIFEST_SIG && !listed.contains_key(name) {
                v.problems
                    .push(BundleProblem::Unlisted { name: name.clone() });
            }
        }
        for (name, (_, line)) in &listed {
            if !expected.contains(name) || name == MANIFEST || name == MANIFEST_SIG {
                v.problems.push(BundleProblem::Manifest {
                    line: *line,
                    reason: format!("lists {name:?}, which is not a file of the bundle it covers"),
                });
            }
        }
    }

    // The checkpoint, verified with the pinned key.
    let checkpoint = v.read_small(CHECKPOINT).and_then(|bytes| {
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| CheckpointError::NotANote)
            .and_then(SignedCheckpoint::parse);
        match parsed {
            Ok(note) => Some(note),
            Err(e) => {
                v.problems.push(BundleProblem::Checkpoint {
                    reason: e.to_string(),
                });
                None
            }
        }
    });
    let verified = checkpoint.as_ref().and_then(|note| {
        match VerifierKey::new(&note.unverified().origin, *pinned).and_then(|k| note.verify(&k)) {
            Ok(verified) => Some(verified),
            Err(e) => {
                v.problems.push(BundleProblem::Checkpoint {
                    reason: format!("{e} (with the pinned key {})", fingerprint(pinned)),
                });
                None
            }
        }
    });
    if let Some(note) = &checkpoint {
        let c = note.unverified();
        report.origin = Some(c.origin.clone());
        report.size = Some(c.size);
        report.root = Some(hex::encode(&c.root));
        if let Some(d) = &description {
            let mut differs = |what: &str, declared: String, signed: String| {
                if declared != signed {
                    v.problems.push(BundleProblem::Description {
                        reason: format!("{what} is {declared}, but the checkpoint says {signed}"),
                    });
                }
            };
            differs("origin", d.origin.clone(), c.origin.clone());
            differs("size", d.size.to_string(), c.size.to_string());
            differs("root", d.root.clone(), hex::encode(&c.root));
        }
    }
    if let Some(verified) = &verified {
        report.checkpoint_time = i64::try_from(verified.time())
            .ok()
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map(|t| t.to_string());
    }

    // The bundle's copy of the key, for information, must be the pinned one.
    if let Some(bytes) = v.read_small(LEDGER_KEY) {
        let reason = match std::str::from_utf8(&bytes)
            .ok()
            .map(crate::key::parse_public_line)
        {
            Some(Ok(key)) if key == *pinned => None,
            Some(Ok(key)) => Some(format!(
                "is the key {}, not the pinned ledger key {}",
                fingerprint(&key),
                fingerprint(pinned)
            )),
            Some(Err(e)) => Some(e.to_string()),
            None => Some("not UTF-8".to_owned()),
        };
        if let Some(reason) = reason {
            v.problems.push(BundleProblem::LedgerKey { reason });
        }
    }

    // The policy files and their digest.
    let policy: Vec<Option<Vec<u8>>> = policy_names.iter().map(|n| v.read_small(n)).collect();
    if let [Some(p), Some(s), rest @ ..] = &policy[..] {
        let revoked = match rest {
            [Some(r)] => Some(r.as_slice()),
            [] => Some(&[][..]),
            _ => None,
        };
        if let Some(revoked) = revoked {
            let computed = hex::encode(&policy_digest(p, s, revoked));
            if let Some(d) = &description
                && d.policy_digest != computed
            {
                v.problems.push(BundleProblem::PolicyDigest {
                    declared: d.policy_digest.clone(),
                    computed: computed.clone(),
                });
            }
            report.policy_digest = Some(computed);
        }
    }
    let _ = v.read_small(README);

    // The entries and the rows, streamed together.
    let mut content = Vec::new();
    let streamed = v.stream(
        range.as_ref(),
        description.as_ref(),
        checkpoint.as_ref(),
        &mut content,
    );
    report.rows = streamed.rows;

    // Every hash against the manifest.
    for (name, (expected_hash, _)) in &listed {
        if let Some(found) = v.hashes.get(name.as_str())
            && found != expected_hash
        {
            v.problems.push(BundleProblem::HashMismatch {
                name: name.clone(),
                expected: hex::encode(expected_hash),
                found: hex::encode(found),
            });
        }
    }
    v.problems.extend(content);
    report.ok = v.problems.is_empty();
    report.problems = v.problems;
    Ok(report)
}

struct Verifier<'a> {
    dir: &'a Path,
    present: BTreeSet<String>,
    problems: Vec<BundleProblem>,
    /// The SHA-256 of every file read.
    hashes: BTreeMap<&'static str, Hash>,
}

/// What streaming the entries found.
struct Streamed {
    rows: u64,
}

impl Verifier<'_> {
    /// Reads a small file whole and records its hash; `None` if it is missing (already
    /// reported) or unreadable (reported here).
    fn read_small(&mut self, name: &'static str) -> Option<Vec<u8>> {
        if !self.present.contains(name) {
            return None;
        }
        let path = self.dir.join(name);
        let result = File::open(&path).and_then(|file| {
            let mut bytes = Vec::new();
            file.take(MAX_SMALL_FILE + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_SMALL_FILE {
                return Err(io::Error::other(format!(
                    "larger than {MAX_SMALL_FILE} bytes"
                )));
            }
            Ok(bytes)
        });
        match result {
            Ok(bytes) => {
                self.hashes.insert(name, Sha256::digest(&bytes).into());
                Some(bytes)
            }
            Err(e) => {
                self.problems.push(BundleProblem::Unreadable {
                    name: name.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    fn open_stream(&mut self, name: &'static str) -> Option<Rows> {
        if !self.present.contains(name) {
            return None;
        }
        match File::open(self.dir.join(name)) {
            Ok(file) => Some(Rows {
                name,
                reader: ChunkReader::open(file),
                buf: Vec::new(),
                expected: Vec::new(),
                rows: 0,
                lines: 0,
                stopped: false,
            }),
            Err(e) => {
                self.problems.push(BundleProblem::Unreadable {
                    name: name.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    /// Streams `ledger.bin`, `entries.jsonl` and `entries.csv` in step: every raw entry is
    /// decoded, chained and added to the tree, and every entry in the range is compared with
    /// the next row of each file. Then each file is read to its end for its hash.
    fn stream(
        &mut self,
        range: Option<&Range>,
        description: Option<&Description>,
        checkpoint: Option<&SignedCheckpoint>,
        content: &mut Vec<BundleProblem>,
    ) -> Streamed {
        let mut bin = self.open_stream(LEDGER_BIN);
        let mut jsonl = self.open_stream(ENTRIES_JSONL);
        let mut csv = self.open_stream(ENTRIES_CSV);
        let mut rows = 0u64;
        let mut first_seq = None;
        let mut last_seq = None;
        let mut row_problems = 0usize;
        let mut push_row_problem = |content: &mut Vec<BundleProblem>, p: BundleProblem| {
            row_problems += 1;
            if row_problems <= MAX_ROW_PROBLEMS {
                content.push(p);
            } else if row_problems == MAX_ROW_PROBLEMS + 1 {
                content.push(BundleProblem::MoreRowProblems);
            }
        };

        // The CSV header.
        if let Some(csv) = &mut csv {
            let mut header = Vec::new();
            csv_header(&mut header);
            match csv.next_csv_record() {
                Ok(true) if csv.buf == header => {}
                Ok(_) => {
                    csv.stopped = true;
                    push_row_problem(
                        content,
                        BundleProblem::Row {
                            file: ENTRIES_CSV,
                            row: 0,
                            line: 1,
                            reason: format!(
                                "the header is not the documented column list {}",
                                CSV_COLUMNS.join(",")
                            ),
                        },
                    );
                }
                Err(e) => {
                    csv.stopped = true;
                    content.push(BundleProblem::Unreadable {
                        name: ENTRIES_CSV.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
            csv.rows = 0;
        }

        let mut frontier = Frontier::new();
        let mut entry_ok = true;
        if let Some(bin) = &mut bin {
            let mut chain: Option<ChainVerifier> = None;
            let mut offset = 0u64;
            let mut bytes = Vec::new();
            loop {
                let index = frontier.size();
                let raw_problem = |reason: String| BundleProblem::RawEntry {
                    index,
                    offset,
                    reason,
                };
                match read_raw_entry(&mut bin.reader, &mut bytes) {
                    Ok(None) => break,
                    Ok(Some(())) => {}
                    Err(reason) => {
                        content.push(raw_problem(reason));
                        entry_ok = false;
                        break;
                    }
                }
                let view = match EntryView::parse(&bytes) {
                    Ok(view) => view,
                    Err(e) => {
                        content.push(raw_problem(format!("does not decode: {e}")));
                        entry_ok = false;
                        break;
                    }
                };
                let leaf = leaf_hash(&bytes);
                let repository = description.map_or(view.repository, |d| d.repository.as_str());
                let chain = chain.get_or_insert_with(|| ChainVerifier::new(repository));
                if let Err(e) = chain.check(&view, &leaf) {
                    content.push(raw_problem(e.to_string()));
                    entry_ok = false;
                    break;
                }
                frontier.append(&leaf);
                offset += 4 + bytes.len() as u64;

                let Some(range) = range else { continue };
                if !range.contains(&view) {
                    continue;
                }
                rows += 1;
                first_seq.get_or_insert(view.seq);
                last_seq = Some(view.seq);
                for rows_file in [&mut jsonl, &mut csv].into_iter().flatten() {
                    if rows_file.stopped {
                        continue;
                    }
                    rows_file.expected.clear();
                    let is_csv = rows_file.name == ENTRIES_CSV;
                    if is_csv {
                        csv_row(&view, &leaf, &mut rows_file.expected);
                    } else {
                        json_row(&view, &leaf, &mut rows_file.expected);
                    }
                    if let Some(problem) = rows_file.compare_next(view.seq) {
                        rows_file.stopped = true;
                        push_row_problem(content, problem);
                    }
                }
            }
        }

        // What the entries add up to, against the checkpoint.
        if entry_ok && bin.is_some() {
            if let Some(note) = checkpoint {
                let signed = note.unverified();
                if signed.size != frontier.size() {
                    content.push(BundleProblem::Tree {
                        reason: format!(
                            "holds {} entries, but the checkpoint signs size {}",
                            frontier.size(),
                            signed.size
                        ),
                    });
                } else if signed.root != frontier.root() {
                    content.push(BundleProblem::Tree {
                        reason: format!(
                            "the entries' Merkle root is {}, but the checkpoint signs {}",
                            Hex(&frontier.root()),
                            Hex(&signed.root)
                        ),
                    });
                }
            }
            if let Some(d) = description
                && range.is_some()
            {
                let mut differs = |what: &str, declared: String, found: String| {
                    if declared != found {
                        content.push(BundleProblem::Description {
                            reason: format!(
                                "{what} is {declared}, but the entries of ledger.bin in the range give {found}"
                            ),
                        });
                    }
                };
                let show = |s: Option<u64>| s.map_or("null".to_owned(), |s| s.to_string());
                differs("rows", d.rows.to_string(), rows.to_string());
                differs("first_seq", show(d.first_seq), show(first_seq));
                differs("last_seq", show(d.last_seq), show(last_seq));
            }
        }

        // Rows left over.
        if entry_ok && bin.is_some() && range.is_some() {
            for rows_file in [&mut jsonl, &mut csv].into_iter().flatten() {
                if rows_file.stopped {
                    continue;
                }
                let more = if rows_file.name == ENTRIES_CSV {
                    rows_file.next_csv_record()
                } else {
                    rows_file.next_line()
                };
                match more {
                    Ok(false) => {}
                    Ok(true) => push_row_problem(
                        content,
                        BundleProblem::ExtraRow {
                            file: rows_file.name,
                            row: rows_file.rows,
                            line: rows_file.lines - rows_file.buf_lines() + 1,
                        },
                    ),
                    Err(e) => content.push(BundleProblem::Unreadable {
                        name: rows_file.name.to_owned(),
                        reason: e.to_string(),
                    }),
                }
            }
        }

        // Read every file to its end, for its hash.
        for stream in [bin, jsonl, csv].into_iter().flatten() {
            match stream.reader.finish() {
                Ok(hash) => {
                    self.hashes.insert(stream.name, hash);
                }
                Err(e) => content.push(BundleProblem::Unreadable {
                    name: stream.name.to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
        Streamed { rows }
    }
}

/// Reads one length-prefixed entry of `ledger.bin` into `bytes`; `None` at a clean end.
fn read_raw_entry(reader: &mut impl Read, bytes: &mut Vec<u8>) -> Result<Option<()>, String> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("the file ends inside an entry's length (truncated)".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_ENCODED_LEN {
        return Err(format!(
            "claims a length of {len} bytes, more than an entry can have"
        ));
    }
    bytes.clear();
    bytes.resize(len, 0);
    reader.read_exact(bytes).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            format!("the file ends inside the entry's {len} bytes (truncated)")
        } else {
            format!("cannot be read: {e}")
        }
    })?;
    Ok(Some(()))
}

/// One of the two row files, read row by row.
struct Rows {
    name: &'static str,
    reader: ChunkReader,
    /// The last row read, with its line break.
    buf: Vec<u8>,
    /// The row the raw entry calls for.
    expected: Vec<u8>,
    /// Rows read so far.
    rows: u64,
    /// Lines read so far.
    lines: u64,
    /// Set after the first wrong row: later rows would only repeat it.
    stopped: bool,
}

impl Rows {
    /// Reads the next line of a JSON Lines file into `buf`; `false` at the end.
    fn next_line(&mut self) -> io::Result<bool> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(false);
        }
        self.rows += 1;
        self.lines += 1;
        Ok(true)
    }

    /// Reads the next CSV record into `buf`, across the line breaks inside quoted fields;
    /// `false` at the end.
    fn next_csv_record(&mut self) -> io::Result<bool> {
        self.buf.clear();
        let mut quoted = false;
        loop {
            let start = self.buf.len();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                break;
            }
            self.lines += 1;
            // Inside a quoted field every quote toggles the state; a doubled quote toggles
            // it twice. A record ends at a line feed outside quotes.
            let quotes = self.buf[start..].iter().filter(|b| **b == b'"').count();
            quoted ^= quotes % 2 == 1;
            if !quoted {
                break;
            }
        }
        if self.buf.is_empty() {
            return Ok(false);
        }
        self.rows += 1;
        Ok(true)
    }

    /// The number of physical lines `buf` spans.
    fn buf_lines(&self) -> u64 {
        let breaks = self.buf.iter().filter(|b| **b == b'\n').count() as u64;
        if self.buf.ends_with(b"\n") {
            breaks
        } else {
            breaks + 1
        }
    }

    /// Reads the next row and compares it with `expected`, the row for entry `seq`.
    fn compare_next(&mut self, seq: u64) -> Option<BundleProblem> {
        let is_csv = self.name == ENTRIES_CSV;
        let read = if is_csv {
            self.next_csv_record()
        } else {
            self.next_line()
        };
        match read {
            Err(e) => {
                return Some(BundleProblem::Unreadable {
                    name: self.name.to_owned(),
                    reason: e.to_string(),
                });
            }
            Ok(false) => {
                return Some(BundleProblem::MissingRow {
                    file: self.name,
                    row: self.rows + 1,
                    seq,
                });
            }
            Ok(true) => {}
        }
        if self.buf == self.expected {
            return None;
        }
        let reason = if is_csv {
            csv_difference(&self.buf, &self.expected)
        } else {
            json_difference(&self.buf, &self.expected)
        };
        Some(BundleProblem::Row {
            file: self.name,
            row: self.rows,
            line: self.lines - self.buf_lines() + 1,
            reason: format!("{reason} (ledger.bin entry seq {seq})"),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
