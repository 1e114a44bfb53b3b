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

use super::manifest::{Listed, check_manifest_signature, fingerprint, parse_manifest};
use super::{
    ALLOWED_SIGNERS, BundleError, BundleProblem, BundleReport, CHECKPOINT, DESCRIPTION,
    Description, FORMAT, LEDGER_KEY, MANIFEST, MANIFEST_SIG, POLICY, README, REQUIRED,
    REVOKED_KEYS, Range, policy_digest,
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
    let mut v = Verifier::open(dir)?;
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
    let listed = v.check_manifest(pinned);

    // What the bundle says it holds.
    let (description, range) = v.check_description(&mut report);

    // Which files there must be.
    let policy_names = v.check_files(description.as_ref(), listed.as_ref());

    // The checkpoint, verified with the pinned key.
    let checkpoint = v.check_checkpoint(pinned, description.as_ref(), &mut report);

    // The bundle's copy of the key, for information, must be the pinned one.
    v.check_ledger_key(pinned);

    // The policy files and their digest.
    report.policy_digest = v.check_policy(&policy_names, description.as_ref());

    // The README, for its hash alone.
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
    if let Some(listed) = &listed {
        v.check_hashes(listed);
    }
    // What the entries and rows showed is listed last: files and signature, hashes, entries,
    // rows (the order BundleReport documents).
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

impl<'a> Verifier<'a> {
    /// Lists the bundle directory. Only regular files count as present; anything else is
    /// reported as an extra file.
    fn open(dir: &'a Path) -> Result<Verifier<'a>, BundleError> {
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
        let signed = [
            MANIFEST,
            MANIFEST_SIG,
            DESCRIPTION,
            super::LEDGER_BIN,
            CHECKPOINT,
        ];
        if !signed.iter().any(|name| present.contains(*name)) {
            return Err(BundleError::NotABundle {
                path: dir.to_owned(),
            });
        }
        Ok(Verifier {
            dir,
            present,
            problems,
            hashes: BTreeMap::new(),
        })
    }
}

impl Verifier<'_> {
    /// Checks `MANIFEST.sig` over `MANIFEST` with the pinned key, and parses `MANIFEST`;
    /// `None` if `MANIFEST` is missing or unreadable.
    fn check_manifest(&mut self, pinned: &VerifyingKey) -> Option<Listed> {
        let manifest = self.read_small(MANIFEST);
        let signature = self.read_small(MANIFEST_SIG);
        if let (Some(manifest), Some(signature)) = (&manifest, &signature)
            && let Err(reason) = check_manifest_signature(signature, manifest, pinned)
        {
            self.problems.push(BundleProblem::Signature { reason });
        }
        manifest.map(|m| parse_manifest(&m, &mut self.problems))
    }

    /// Reads `export.json` and the range it records, and copies the range into the report;
    /// `None` for what is missing or malformed (reported).
    fn check_description(
        &mut self,
        report: &mut BundleReport,
    ) -> (Option<Description>, Option<Range>) {
        let description =
            self.read_small(DESCRIPTION).and_then(|bytes| {
                match serde_json::from_slice::<Description>(&bytes) {
                    Ok(d) if d.format != FORMAT => {
                        self.problems.push(BundleProblem::Description {
                            reason: format!(
                                "format {:?} is not {FORMAT:?}; this build reads only that",
                                d.format
                            ),
                        });
                        None
                    }
                    Ok(d) => Some(d),
                    Err(e) => {
                        self.problems.push(BundleProblem::Description {
                            reason: format!("not a valid description ({e})"),
                        });
                        None
                    }
                }
            });
        let range = description.as_ref().and_then(|d| match d.range() {
            Ok(range) => Some(range),
            Err(reason) => {
                self.problems.push(BundleProblem::Description { reason });
                None
            }
        });
        if let Some(d) = &description {
            report.branch = d.branch.clone();
            report.since = d.since.clone();
            report.until = d.until.clone();
        }
        (description, range)
    }

    /// Checks that the directory holds exactly the bundle's files and that `MANIFEST` lists
    /// exactly those it covers; returns the names of the policy files there must be.
    fn check_files(
        &mut self,
        description: Option<&Description>,
        listed: Option<&Listed>,
    ) -> Vec<&'static str> {
        let mut expected: BTreeSet<String> = REQUIRED.iter().map(|s| (*s).to_owned()).collect();
        let policy_names = self.policy_names(description);
        expected.extend(policy_names.iter().map(|s| (*s).to_owned()));
        for name in &expected {
            if !self.present.contains(name) {
                self.problems
                    .push(BundleProblem::MissingFile { name: name.clone() });
            }
        }
        for name in &self.present {
            if !expected.contains(name) {
                self.problems
                    .push(BundleProblem::ExtraFile { name: name.clone() });
            }
        }
        if let Some(listed) = listed {
            for name in &expected {
                if name != MANIFEST && name != MANIFEST_SIG && !listed.contains_key(name) {
                    self.problems
                        .push(BundleProblem::Unlisted { name: name.clone() });
                }
            }
            for (name, (_, line)) in listed {
                if !expected.contains(name) || name == MANIFEST || name == MANIFEST_SIG {
                    self.problems.push(BundleProblem::Manifest {
                        line: *line,
                        reason: format!(
                            "lists {name:?}, which is not a file of the bundle it covers"
                        ),
                    });
                }
            }
        }
        policy_names
    }

    /// The policy files there must be: those `export.json` names (which must be the policy
    /// file and allowed_signers, with or without the revocation file), or, without a
    /// description, those two and the revocation file if it is there.
    fn policy_names(&mut self, description: Option<&Description>) -> Vec<&'static str> {
        let mut policy_names = vec![POLICY, ALLOWED_SIGNERS];
        match description {
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
                    self.problems.push(BundleProblem::Description {
                        reason: format!(
                            "policy_files {:?} is not [{POLICY:?}, {ALLOWED_SIGNERS:?}] with or without {REVOKED_KEYS:?}",
                            d.policy_files
                        ),
                    });
                }
            }
            None if self.present.contains(REVOKED_KEYS) => policy_names.push(REVOKED_KEYS),
            None => {}
        }
        policy_names
    }

    /// Reads the checkpoint, verifies it with the pinned key, compares it with `export.json`
    /// and copies what it signs into the report; `None` if it is missing or does not parse.
    fn check_checkpoint(
        &mut self,
        pinned: &VerifyingKey,
        description: Option<&Description>,
        report: &mut BundleReport,
    ) -> Option<SignedCheckpoint> {
        let checkpoint = self.read_small(CHECKPOINT).and_then(|bytes| {
            let parsed = std::str::from_utf8(&bytes)
                .map_err(|_| CheckpointError::NotANote)
                .and_then(SignedCheckpoint::parse);
            match parsed {
                Ok(note) => Some(note),
                Err(e) => {
                    self.problems.push(BundleProblem::Checkpoint {
                        reason: e.to_string(),
                    });
                    None
                }
            }
        });
        let verified = checkpoint.as_ref().and_then(|note| {
            match VerifierKey::new(&note.unverified().origin, *pinned).and_then(|k| note.verify(&k))
            {
                Ok(verified) => Some(verified),
                Err(e) => {
                    self.problems.push(BundleProblem::Checkpoint {
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
            if let Some(d) = description {
                let mut differs = |what: &str, declared: String, signed: String| {
                    if declared != signed {
                        self.problems.push(BundleProblem::Description {
                            reason: format!(
                                "{what} is {declared}, but the checkpoint says {signed}"
                            ),
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
        checkpoint
    }

    /// Checks that `ledger_key.pub`, the bundle's copy of the key, is the pinned key.
    fn check_ledger_key(&mut self, pinned: &VerifyingKey) {
        let Some(bytes) = self.read_small(LEDGER_KEY) else {
            return;
        };
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
            self.problems.push(BundleProblem::LedgerKey { reason });
        }
    }

    /// Reads the policy files and checks their digest against `export.json`; returns the
    /// digest, `None` if a policy file could not be read.
    fn check_policy(
        &mut self,
        policy_names: &[&'static str],
        description: Option<&Description>,
    ) -> Option<String> {
        let policy: Vec<Option<Vec<u8>>> =
            policy_names.iter().map(|n| self.read_small(n)).collect();
        let [Some(p), Some(s), rest @ ..] = &policy[..] else {
            return None;
        };
        let revoked = match rest {
            [Some(r)] => r.as_slice(),
            [] => &[][..],
            _ => return None,
        };
        let computed = hex::encode(&policy_digest(p, s, revoked));
        if let Some(d) = description
            && d.policy_digest != computed
        {
            self.problems.push(BundleProblem::PolicyDigest {
                declared: d.policy_digest.clone(),
                computed: computed.clone(),
            });
        }
        Some(computed)
    }

    /// Compares the hash of every file read with the one `MANIFEST` lists.
    fn check_hashes(&mut self, listed: &Listed) {
        for (name, (expected_hash, _)) in listed {
            if let Some(found) = self.hashes.get(name.as_str())
                && found != expected_hash
            {
                self.problems.push(BundleProblem::HashMismatch {
                    name: name.clone(),
                    expected: hex::encode(expected_hash),
                    found: hex::encode(found),
                });
            }
        }
    }
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
