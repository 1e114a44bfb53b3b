//! The whole ledger as published at `refs/tally/ledger` in a clone: what `tally log` lists
//! and `tally ledger verify` checks where there is no store (an agent's clone, an auditor's).
//!
//! It reads through the one reader of publications ([`crate::publication::Reader`]) and
//! checks entries with the agent's own scan (`Scan`: the chain rules and the Merkle
//! frontier), so a clone is judged exactly as `tally verify` judges it. Unlike `tally verify`
//! it starts from nothing every time (no pinned size: every publication from the first one)
//! and writes nothing.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use tally_ledger::checkpoint::SignedCheckpoint;
use tally_ledger::log::Selection;
use tally_ledger::merkle::{Hash, leaf_hash};
use tally_ledger::report::VerifyOutcome;
use tally_ledger::{CheckpointError, EntryView, VerifierKey, VerifyingKey};
use tally_verify::objects::Objects;

use crate::error::AgentError;
use crate::publication::{LEDGER_REF, Publication, Reader};
use crate::{Scan, find_ref};

/// The clone's repository and object store.
struct Clone {
    repo: gix::Repository,
    objects: Objects,
}

impl Clone {
    fn open(git_dir: &Path) -> Result<Clone, AgentError> {
        let repo = tally_verify::repository::open(git_dir).map_err(|e| AgentError::Repository {
            path: git_dir.to_owned(),
            message: e.to_string(),
        })?;
        let objects = Objects::open(repo.common_dir(), None, Vec::new(), repo.object_hash())
            .map_err(|e| AgentError::Clone {
                message: e.to_string(),
            })?;
        Ok(Clone { repo, objects })
    }

    /// Every publication, newest first, joined up down to the first one.
    fn publications(&self, reader: &mut Reader<'_>) -> Result<Vec<Publication>, AgentError> {
        let tip = find_ref(&self.repo, LEDGER_REF)?.ok_or(AgentError::NoLedger)?;
        let tip = reader.publication(tip)?;
        reader.since(tip, 0)
    }
}

/// Whether the repository at `git_dir` has a `refs/tally/ledger`.
pub fn exists(git_dir: &Path) -> Result<bool, AgentError> {
    let clone = Clone::open(git_dir)?;
    Ok(find_ref(&clone.repo, LEDGER_REF)?.is_some())
}

/// Calls `each(entry, leaf hash)` for the published entries `selection` picks, newest
/// first, until it returns `false`. Entries are shown as published, not verified (that is
/// `tally ledger verify`), but each must decode and sit at its own seq.
pub fn log_each(
    git_dir: &Path,
    selection: &Selection,
    mut each: impl FnMut(&EntryView<'_>, &Hash) -> bool,
) -> Result<(), AgentError> {
    let clone = Clone::open(git_dir)?;
    let mut reader = Reader::new(&clone.objects);
    let mut left = selection.limit.unwrap_or(usize::MAX);
    for publication in clone.publications(&mut reader)? {
        if left == 0 {
            return Ok(());
        }
        let mut entries = Vec::new();
        reader.entries(&publication, |seq, bytes| {
            entries.push((seq, bytes.to_vec()))
        })?;
        for (seq, bytes) in entries.iter().rev() {
            let entry = EntryView::parse(bytes)
                .map_err(|source| AgentError::BadEntry { seq: *seq, source })?;
            if entry.seq != *seq {
                return Err(AgentError::BrokenChain {
                    seq: *seq,
                    problem: format!(
                        "is published at position {seq} but says it is entry #{}",
                        entry.seq
                    ),
                });
            }
            if !selection.matches(&entry) {
                continue;
            }
            if left == 0 || !each(&entry, &leaf_hash(bytes)) {
                return Ok(());
            }
            left -= 1;
        }
    }
    Ok(())
}

/// The ledger key `tally ledger verify` checks a clone's published ledger with.
#[derive(Debug, Clone)]
pub struct LedgerKey {
    /// The key.
    pub key: VerifyingKey,
    /// The origin pinned with it (by an agent state); `None`: the tip checkpoint's.
    pub origin: Option<String>,
    /// Where it came from, for the output: the `--ledger-key` file or the agent state.
    pub from: String,
    /// Whether it came from an agent state rather than `--ledger-key`.
    pub pinned: bool,
    /// What the clone's agent states that pin this key accepted last (size, root, state
    /// file): the published ledger must extend each, or it was rolled back or forked.
    pub checkpoints: Vec<(u64, Hash, PathBuf)>,
}

/// The ledger key to verify with: `--ledger-key` if given, else the one the clone's agent
/// states pin ([`crate::state::pinned_key`]), with the origin pinned with it; neither is a
/// setup error asking for `--ledger-key`.
pub fn ledger_key(git_dir: &Path, given: Option<&Path>) -> Result<LedgerKey, AgentError> {
    if let Some(path) = given {
        let key = tally_ledger::key::load_public(path).map_err(AgentError::LedgerKey)?;
        // States that pin this same key still say what this clone accepted before: a
        // published ledger that does not extend it is a rollback, whichever way the key came.
        let checkpoints = match crate::state::pinned_key(git_dir) {
            Ok(Some(pinned)) if pinned.key == key => pinned.checkpoints,
            _ => Vec::new(),
        };
        return Ok(LedgerKey {
            key,
            origin: None,
            from: path.display().to_string(),
            pinned: false,
            checkpoints,
        });
    }
    match crate::state::pinned_key(git_dir)? {
        Some(pinned) => Ok(LedgerKey {
            key: pinned.key,
            origin: Some(pinned.origin),
            from: format!("the agent state {}", pinned.path.display()),
            pinned: true,
            checkpoints: pinned.checkpoints,
        }),
        None => Err(AgentError::NoLedgerKey {
            dir: git_dir.join("tally").join("agent"),
        }),
    }
}

/// Verifies the whole published ledger, read-only: every publication joins the one before
/// it, the entries decode and chain, and each publication's checkpoint is signed by `key`
/// (under `origin` if pinned, else the tip's) and signs the Merkle root of the entries up to
/// it. Every bad checkpoint is reported; the first entry at fault ends the entries' check.
/// A key from an agent state is named in the outcome's notes.
/// Errors are the setup's (exit 2); what is wrong with the ledger is in the outcome.
pub fn verify(git_dir: &Path, key: &LedgerKey) -> Result<VerifyOutcome, AgentError> {
    let mut outcome = VerifyOutcome {
        source: LEDGER_REF.to_owned(),
        key: tally_ledger::key::fingerprint(&key.key),
        ..VerifyOutcome::default()
    };
    let clone = Clone::open(git_dir)?;
    match check(&clone, key, &mut outcome) {
        Ok(()) => {}
        Err(e) if e.is_setup() || matches!(e, AgentError::NoLedger) => return Err(e),
        Err(e) => outcome.problems.push(e.to_string()),
    }
    if key.pinned {
        outcome.notes.push(format!(
            "verified with the ledger key pinned by {}",
            key.from
        ));
    }
    outcome.ok = outcome.problems.is_empty();
    Ok(outcome)
}

fn check(
    clone: &Clone,
    ledger_key: &LedgerKey,
    outcome: &mut VerifyOutcome,
) -> Result<(), AgentError> {
    let key = &ledger_key.key;
    let origin = ledger_key.origin.as_deref();
    let pins = &ledger_key.checkpoints;
    // The root at each pinned size, as the scan passes it.
    let mut at_pin: Vec<Option<Hash>> = vec![None; pins.len()];
    let mut reader = Reader::new(&clone.objects);
    let publications = clone.publications(&mut reader)?;
    let tip = &publications[0];
    let origin = match origin {
        Some(o) => o.to_owned(),
        None => {
            let note = reader.checkpoint(tip)?;
            SignedCheckpoint::parse(&note)
                .map_err(|source| AgentError::Checkpoint {
                    commit: tip.commit,
                    source,
                })?
                .unverified()
                .origin
                .clone()
        }
    };
    let vkey = VerifierKey::new(&origin, *key).map_err(|source| AgentError::Checkpoint {
        commit: tip.commit,
        source,
    })?;
    let mut scan = Scan::new("", None);
    let mut unsigned = Vec::new();
    for publication in publications.iter().rev() {
        reader.entries(publication, |seq, bytes| {
            scan.push(seq, bytes);
            let size = scan.frontier.size();
            for (i, (pinned, _, _)) in pins.iter().enumerate() {
                if *pinned == size {
                    at_pin[i] = Some(scan.frontier.root());
                }
            }
        })?;
        match check_checkpoint(&mut reader, publication, &vkey, &scan) {
            Ok(()) => outcome.checkpoints += 1,
            Err(Bad::Unsigned(e)) => unsigned.push((publication.commit, e)),
            Err(Bad::Other(problem)) => outcome.problems.push(problem),
        }
    }
    outcome.size = scan.frontier.size();
    outcome.root = tally_ledger::hex::encode(&scan.frontier.root());
    // What this clone's agents accepted before must be a prefix of what is published now.
    for ((size, root, path), found) in pins.iter().zip(&at_pin) {
        if *size > outcome.size {
            outcome.problems.push(format!(
                "rollback: {LEDGER_REF} has {}, but the agent state {} accepted {} before: the server was restored from an old copy or a mirror serves a stale one",
                tally_ledger::log::count(outcome.size, "entry", "entries"),
                path.display(),
                tally_ledger::log::count(*size, "entry", "entries"),
            ));
        } else if *size > 0 && found.as_ref() != Some(root) {
            outcome.problems.push(format!(
                "fork: the first {size} entries of {LEDGER_REF} do not have the root {} that the agent state {} accepted: this is another history than the one deployed",
                tally_ledger::hex::encode(root),
                path.display(),
            ));
        }
    }
    match unsigned.as_slice() {
        [] => {}
        // The key signed none of them: one problem naming the key, not one per publication.
        [(_, first), ..] if unsigned.len() == publications.len() && publications.len() > 1 => {
            outcome.problems.insert(
                0,
                format!(
                    "{LEDGER_REF}: none of the {} published checkpoints is signed by the ledger key {} (the newest: {first}); check the ledger key: it must be the one `tally ledger key` prints on the server",
                    publications.len(),
                    vkey.fingerprint()
                ),
            );
        }
        _ => {
            for (commit, e) in &unsigned {
                outcome
                    .problems
                    .push(format!("{LEDGER_REF}: publication {commit}: {e}"));
            }
        }
    }
    if let Some(problem) = scan.problem.take() {
        outcome.problems.push(problem.to_string());
    }
    Ok(())
}

/// What is wrong with a publication's checkpoint.
enum Bad {
    /// Not signed by the ledger key at all (the wrong key, most likely).
    Unsigned(CheckpointError),
    /// Anything else, as a problem line.
    Other(String),
}

/// A publication's checkpoint is signed by the ledger key, for its range's size, and signs
/// the root of the entries scanned so far.
fn check_checkpoint(
    reader: &mut Reader<'_>,
    publication: &Publication,
    vkey: &VerifierKey,
    scan: &Scan<'_>,
) -> Result<(), Bad> {
    let commit: ObjectId = publication.commit;
    let at = |what: String| Bad::Other(format!("{LEDGER_REF}: publication {commit}: {what}"));
    let note = reader
        .checkpoint(publication)
        .map_err(|e| Bad::Other(e.to_string()))?;
    let signed = SignedCheckpoint::parse(&note).map_err(|e| at(e.to_string()))?;
    let checkpoint = signed.verify(vkey).map_err(|e| match e {
        CheckpointError::MissingSignature { .. } => Bad::Unsigned(e),
        other => at(other.to_string()),
    })?;
    if checkpoint.size() != publication.range.size {
        return Err(at(format!(
            "its checkpoint is for {} but its range ends at {}",
            tally_ledger::log::count(checkpoint.size(), "entry", "entries"),
            publication.range.size
        )));
    }
    if *checkpoint.root() != scan.frontier.root() {
        return Err(at(format!(
            "its checkpoint signs the root {} for {}, but the published entries give {}",
            tally_ledger::hex::encode(checkpoint.root()),
            tally_ledger::log::count(checkpoint.size(), "entry", "entries"),
            tally_ledger::hex::encode(&scan.frontier.root())
        )));
    }
    Ok(())
}
