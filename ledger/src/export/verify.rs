//! Verifying a bundle offline: [`verify_bundle`] checks the manifest and its signature, the
//! set of files, `export.json`, the checkpoint, the ledger key and the policy files, then
//! streams the entries and the rows (`stream.rs`) and checks every hash against `MANIFEST`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::checkpoint::{CheckpointError, SignedCheckpoint, VerifierKey};
use crate::hex;
use crate::merkle::Hash;

use super::manifest::{check_manifest_signature, fingerprint, parse_manifest};
use super::{
    ALLOWED_SIGNERS, BundleError, BundleProblem, BundleReport, CHECKPOINT, DESCRIPTION,
    Description, FORMAT, LEDGER_KEY, MANIFEST, MANIFEST_SIG, POLICY, README, REQUIRED,
    REVOKED_KEYS, policy_digest,
};

/// The largest small file (everything but the three row and entry files) the verifier reads.
const MAX_SMALL_FILE: u64 = 16 << 20;

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

/// One verification under way: the bundle's regular files, the problems found so far and the
/// hash of every file read.
pub(super) struct Verifier<'a> {
    pub(super) dir: &'a Path,
    pub(super) present: BTreeSet<String>,
    pub(super) problems: Vec<BundleProblem>,
    /// The SHA-256 of every file read.
    pub(super) hashes: BTreeMap<&'static str, Hash>,
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
}
