//! The deployment agent's check: which commit of a branch may be deployed, judged from the
//! clone alone against what the agent pinned last time (`tally verify`, and the verify step of
//! `tally pull`).
//!
//! The agent trusts three things the operator pinned (the ledger's public key, its own
//! allowed_signers file, the branch) and what it verified itself before (its state file). It
//! never takes the server's word for anything else. In order (issue 4, `docs/agent.md`):
//!
//! 1. the newest checkpoint, from the tip of `refs/tally/ledger`, must verify with the pinned
//!    ledger key (other keys' signature lines are ignored, a bad one from the pinned key fails);
//! 2. freshness: with `--max-age`, its `cosignature/v1` time must be recent; it is never older
//!    than the last checkpoint accepted (freeze);
//! 3. consistency: the ledger is not smaller than the pinned one (rollback), has the pinned
//!    root at the pinned size (fork: both signed notes are kept as evidence), and the published
//!    entries since then extend the pinned Merkle frontier to exactly the new signed root. That
//!    recomputation *is* a consistency proof (the new tree's first leaves are the pinned tree's
//!    subtrees) and also proves every new entry's inclusion; the entries' hash chain and
//!    rules are checked as they stream;
//! 4. the latest accepted entry for the branch (an `accepted` entry, or the branch's baseline at
//!    `tally init`, not cancelled by an `aborted` entry) is not older than the deployed one;
//! 5. its commit is in the clone, the fetched branch points to it (a branch moved on the server
//!    without a ledger entry is refused), and its tree is the entry's (no mix-and-match);
//! 6. every commit since the last deployed one (on the first run: the whole history, or from
//!    `--trust-from`) is linear, descends from it, and is signed by a signer of the agent's own
//!    allowed_signers, by the same rules as the server's hook ([`tally_verify::revision::Checker`]
//!    without the file policy).
//!
//! Only then is the state replaced (atomically) and the commit approved. The work is
//! proportional to what was published since the last run: the walk over `refs/tally/ledger`
//! stops at the first publication that starts at or before the pinned size. The agent writes
//! nothing but its state file, and fork evidence next to it.
//!
//! This crate is what runs on deployment machines. It depends on `tally-verify` (the
//! judgement) and on `tally-ledger` without its SQLite store: an agent reads the published
//! ledger and never links SQLite.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod checkout;
pub mod error;
pub mod git;
pub mod publication;
pub mod published;
pub mod report;
pub mod state;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::ObjectId;
use jiff::Timestamp;
use tally_ledger::chain::Position;
use tally_ledger::checkpoint::SignedCheckpoint;
use tally_ledger::merkle::{Frontier, Hash, leaf_hash};
use tally_ledger::{ChainVerifier, EntryView, GENESIS, Kind, VerifiedCheckpoint, VerifierKey};

pub use error::AgentError;
use publication::{LEDGER_REF, Publication, Reader};
use state::State;

use tally_verify::objects::Objects;
use tally_verify::revision::{CheckedCommit, Checker, Update};

/// How far in the agent's future a checkpoint's time may be when `--max-age` is given (clock
/// skew between the server and the agent).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// What the operator pinned and asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clone's git directory (see [`discover`]).
    pub git_dir: PathBuf,
    /// The ledger's public key: an OpenSSH public key file, as `tally ledger key` prints it.
    pub ledger_key: PathBuf,
    /// The agent's own allowed_signers file.
    pub allowed_signers: PathBuf,
    /// The branch, short (`main`) or full (`refs/heads/main`).
    pub branch: String,
    /// The remote whose tracking ref (`refs/remotes/<remote>/<branch>`) holds the fetched
    /// branch; when that ref is absent, the local branch is used.
    pub remote: String,
    /// The state file; default [`state::default_path`].
    pub state: Option<PathBuf>,
    /// The oldest acceptable checkpoint, if freshness is enforced.
    pub max_age: Option<Duration>,
    /// On the first run only: the commit whose history is trusted without checking (a full id).
    pub trust_from: Option<String>,
    /// The file rules' policy (`[files]`, `[syntax]` of a policy.toml); default: tally's
    /// default policy.
    pub policy: Option<PathBuf>,
    /// The time of the check.
    pub now: Timestamp,
}

/// A clone found from a path.
#[derive(Debug, Clone)]
pub struct Location {
    /// Its git directory.
    pub git_dir: PathBuf,
    /// Its work tree, if it is not bare.
    pub work_tree: Option<PathBuf>,
}

/// Finds the clone that `start` (default: the current directory) is in.
pub fn discover(start: Option<&Path>) -> Result<Location, AgentError> {
    let given = start.unwrap_or(Path::new("."));
    // Absolute first: gix resolves a relative `..` path against the repository it finds
    // around the current directory.
    let absolute = given.canonicalize().map_err(|e| AgentError::Repository {
        path: given.to_owned(),
        message: e.to_string(),
    })?;
    let start = absolute.as_path();
    let repo = gix::discover(start).map_err(|e| AgentError::Repository {
        path: start.to_owned(),
        message: e.to_string(),
    })?;
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    Ok(Location {
        git_dir: canonical(repo.git_dir()),
        work_tree: repo.workdir().map(canonical),
    })
}

/// Returns the full ref name of a branch given short or full.
pub fn full_branch(name: &str) -> Result<String, AgentError> {
    let bad = || AgentError::BadBranch {
        name: name.to_owned(),
    };
    let full = if name.starts_with("refs/heads/") {
        name.to_owned()
    } else if name.starts_with("refs/") || name.is_empty() {
        return Err(bad());
    } else {
        format!("refs/heads/{name}")
    };
    gix::refs::FullName::try_from(full.as_str()).map_err(|_| bad())?;
    Ok(full)
}

/// Parses a `--max-age` value: one or more `<number><unit>` with units `s`, `m`, `h`, `d`,
/// `w` (`90s`, `10m`, `2h`, `1d`, `1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration; write e.g. 90s, 10m, 2h, 1d or 1h30m (units s, m, h, d, w)"
        )
    };
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let mut chars = tail.chars();
        let unit: u64 = match chars.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            Some('w') => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|t| i64::try_from(*t).is_ok())
            .ok_or_else(bad)?;
        rest = chars.as_str();
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A commit approved for deployment, with what it was approved on.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The branch (full ref name).
    pub branch: String,
    /// The approved commit.
    pub commit: ObjectId,
    /// Its tree.
    pub tree: ObjectId,
    /// The ledger entry that records it.
    pub seq: u64,
    /// The commit deployed before (or `--trust-from` on a first run), if any.
    pub previous: Option<ObjectId>,
    /// Every commit checked in this run, oldest first, with its signer.
    pub commits: Vec<CheckedCommit>,
    /// The checkpoint the approval rests on.
    pub checkpoint: VerifiedCheckpoint,
    /// Its signed note.
    pub note: String,
    /// The local ref the fetched branch was read from.
    pub tracking: String,
    /// The state file.
    pub state: PathBuf,
    /// Whether this was the first run (no state before).
    pub first_run: bool,
    /// The size of the checkpoint pinned before this run (`None` on a first run).
    pub pinned_size: Option<u64>,
    /// The pinned ledger key's fingerprint, `SHA256:...`.
    pub ledger_key: String,
}

impl Approval {
    /// The approval as `tally verify --json` prints it.
    pub fn to_json(&self) -> serde_json::Value {
        let signers: Vec<serde_json::Value> = self
            .commits
            .iter()
            .map(|c| {
                serde_json::json!({
                    "commit": c.id().to_string(),
                    "principal": c.signer().principal(),
                    "fingerprint": c.signer().fingerprint(),
                    "key_type": c.signer().key_type(),
                    "certificate_authority": c.signer().certificate_authority(),
                })
            })
            .collect();
        let time = i64::try_from(self.checkpoint.time())
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|t| t.to_string());
        serde_json::json!({
            "branch": self.branch,
            "commit": self.commit.to_string(),
            "tree": self.tree.to_string(),
            "seq": self.seq,
            "previous": self.previous.map(|p| p.to_string()),
            "signers": signers,
            "checkpoint": {
                "origin": self.checkpoint.origin(),
                "size": self.checkpoint.size(),
                "root": state::to_hex(self.checkpoint.root()),
                "time": time,
                "note": self.note,
            },
            "tracking": self.tracking,
            "state": self.state.display().to_string(),
            "first_run": self.first_run,
        })
    }
}

/// Runs the agent's checks on the clone and, if they all pass, pins the new state and returns
/// the approved commit.
pub fn verify(opts: &Options) -> Result<Approval, AgentError> {
    let (approval, pin) = verify_unpinned(opts)?;
    pin.store()?;
    Ok(approval)
}

/// The new state of an approval, not yet written: [`verify_unpinned`] returns it so that the
/// caller can act on the approval first and pin only after (`tally mirror` pins once the
/// approved commit is served, so that its pinned state is never ahead of what it serves).
#[derive(Debug)]
#[must_use = "nothing is pinned until Pin::store"]
pub struct Pin {
    path: PathBuf,
    expected: Option<Vec<u8>>,
    bytes: Option<Vec<u8>>,
}

impl Pin {
    /// Writes the new state (atomically); refused if another run changed the file since it was
    /// read. Nothing to write if the state did not change.
    pub fn store(self) -> Result<(), AgentError> {
        match &self.bytes {
            Some(bytes) => state::store(&self.path, self.expected.as_deref(), bytes),
            None => Ok(()),
        }
    }
}

/// [`verify`] without writing the state: the approval and the [`Pin`] that records it.
pub fn verify_unpinned(opts: &Options) -> Result<(Approval, Pin), AgentError> {
    let setup = Setup::load(opts)?;
    let pinned = setup.loaded.state.as_ref();
    let mut reader = Reader::new(&setup.objects);
    // 1. The newest checkpoint, signed by the pinned key.
    let tip = verified_tip(&setup, &mut reader, pinned)?;
    // 2. Freshness, and 3. size and root against the pinned ones.
    check_against_pinned(&setup, &tip, pinned)?;
    // 3. The entries since the pinned size extend the pinned tree to the signed root.
    let mut scan = scan_since(&setup, &mut reader, &tip, pinned)?;
    // 4. The latest accepted entry for the branch.
    let chosen = latest_entry(&setup, &scan, &tip, pinned)?;
    // 5. The fetched branch is the entry's commit, with the entry's tree.
    let tracking = check_fetched(&setup, &chosen, pinned)?;
    // 6. Every new commit, against the agent's own signers; then the whole tree deployed.
    let (base, commits) = check_new_commits(&setup, &scan, &chosen, pinned)?;
    check_whole_tree(&setup, &chosen)?;
    // Everything holds: the new state, pinned by the caller.
    let pin = new_state(&setup, &mut scan, &tip, &chosen, pinned);
    let approval = Approval {
        branch: setup.branch,
        commit: chosen.commit,
        tree: chosen.tree,
        seq: chosen.seq,
        previous: base,
        commits,
        checkpoint: tip.checkpoint,
        note: tip.note,
        tracking,
        state: setup.state_path,
        first_run: pinned.is_none(),
        pinned_size: pinned.map(|s| s.checkpoint.size()),
        ledger_key: tally_ledger::key::fingerprint(&setup.key),
    };
    Ok((approval, pin))
}

/// What a run of the agent reads before it checks anything: the operator's pinned inputs,
/// the clone, and the state of the last run.
struct Setup<'o> {
    opts: &'o Options,
    branch: String,
    key: tally_ledger::VerifyingKey,
    trust: tally_verify::trust::Trust,
    files: tally_verify::files::FileRules,
    repo: gix::Repository,
    state_path: PathBuf,
    loaded: state::Loaded,
    objects: Objects,
}

impl<'o> Setup<'o> {
    fn load(opts: &'o Options) -> Result<Setup<'o>, AgentError> {
        let branch = full_branch(&opts.branch)?;
        let key =
            tally_ledger::key::load_public(&opts.ledger_key).map_err(AgentError::LedgerKey)?;
        let trust =
            tally_verify::trust::load(&opts.allowed_signers, None).map_err(AgentError::Signers)?;
        let files = match &opts.policy {
            Some(path) => tally_verify::files::load_policy(path).map_err(AgentError::Policy)?,
            None => tally_verify::files::FileRules::new(
                &tally_verify::files::FilePolicy::default(),
                tally_verify::syntax::Limits::default(),
            )
            .map_err(|e| AgentError::Policy(e.to_string()))?,
        };
        let repo =
            tally_verify::repository::open(&opts.git_dir).map_err(|e| AgentError::Repository {
                path: opts.git_dir.clone(),
                message: e.to_string(),
            })?;
        let state_path = opts
            .state
            .clone()
            .unwrap_or_else(|| state::default_path(repo.git_dir(), &branch));
        let loaded = state::load(&state_path, &branch, &key, &opts.ledger_key)?;
        let objects = Objects::open(repo.common_dir(), None, Vec::new(), repo.object_hash())
            .map_err(|e| AgentError::Clone {
                message: e.to_string(),
            })?;
        Ok(Setup {
            opts,
            branch,
            key,
            trust,
            files,
            repo,
            state_path,
            loaded,
            objects,
        })
    }
}

/// The tip publication and its verified checkpoint (step 1).
struct Tip {
    publication: Publication,
    note: String,
    checkpoint: VerifiedCheckpoint,
    vkey: VerifierKey,
    origin: String,
}

/// Step 1: the newest checkpoint, from the tip of `refs/tally/ledger`, verifies with the
/// pinned ledger key under the pinned origin, and covers exactly its publication's range.
fn verified_tip(
    setup: &Setup<'_>,
    reader: &mut Reader<'_>,
    pinned: Option<&State>,
) -> Result<Tip, AgentError> {
    let tip_id = find_ref(&setup.repo, LEDGER_REF)?.ok_or_else(|| match pinned {
        None => AgentError::NoLedger,
        Some(s) => AgentError::LedgerGone {
            deployed_seq: s.deployed_seq,
            size: s.checkpoint.size(),
            origin: s.origin.clone(),
        },
    })?;
    let publication = reader.publication(tip_id)?;
    let note = reader.checkpoint(&publication)?;
    let bad = |source| AgentError::Checkpoint {
        commit: tip_id,
        source,
    };
    let signed = SignedCheckpoint::parse(&note).map_err(bad)?;
    let served_origin = &signed.unverified().origin;
    let origin = match pinned {
        Some(s) if s.origin != *served_origin => {
            return Err(AgentError::OtherLedger {
                pinned: s.origin.clone(),
                served: served_origin.clone(),
            });
        }
        Some(s) => s.origin.clone(),
        None => served_origin.clone(),
    };
    let vkey = VerifierKey::new(&origin, setup.key).map_err(bad)?;
    let checkpoint = signed.verify(&vkey).map_err(bad)?;
    if checkpoint.size() != publication.range.size {
        return Err(AgentError::Publication {
            commit: tip_id,
            problem: format!(
                "carries a checkpoint for {} entries but its range ends at {}",
                checkpoint.size(),
                publication.range.size
            ),
        });
    }
    Ok(Tip {
        publication,
        note,
        checkpoint,
        vkey,
        origin,
    })
}

/// Steps 2 and 3 against the pinned state: freshness, no rollback, no fork at the pinned
/// size. Every reason that applies is reported (a restored backup is typically both older and
/// smaller).
fn check_against_pinned(
    setup: &Setup<'_>,
    tip: &Tip,
    pinned: Option<&State>,
) -> Result<(), AgentError> {
    let checkpoint = &tip.checkpoint;
    let mut reasons = check_freshness(checkpoint, pinned, setup.opts);
    if let Some(s) = pinned {
        let start = s.checkpoint.size();
        if checkpoint.size() < start {
            reasons.push(AgentError::Rollback {
                pinned: start,
                served: checkpoint.size(),
            });
        }
        if checkpoint.size() == start && checkpoint.root() != s.checkpoint.root() {
            let evidence = keep_evidence(&setup.state_path, &s.note, &tip.note, setup.opts.now)?;
            reasons.push(fork(s, checkpoint, evidence));
        }
    }
    match AgentError::combine(reasons) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Step 3: streams the entries published since the pinned size through the chain rules and
/// the pinned Merkle frontier, which must end at the signed root.
fn scan_since<'s>(
    setup: &'s Setup<'_>,
    reader: &mut Reader<'_>,
    tip: &Tip,
    pinned: Option<&State>,
) -> Result<Scan<'s>, AgentError> {
    let start = pinned.map_or(0, |s| s.checkpoint.size());
    let publications = reader.since(tip.publication.clone(), start)?;
    let mut scan = Scan::new(&setup.branch, pinned);
    for publication in publications.iter().rev() {
        reader.entries(publication, |seq, bytes| {
            if seq >= start {
                scan.push(seq, bytes);
            }
        })?;
    }
    if scan.frontier.root() != *tip.checkpoint.root() {
        return Err(diverged(
            reader,
            &tip.vkey,
            pinned,
            &publications,
            &tip.checkpoint,
            &tip.note,
            &setup.state_path,
            setup.opts.now,
        )?);
    }
    if let Some(problem) = scan.problem.take() {
        return Err(problem);
    }
    Ok(scan)
}

/// Step 4: the latest accepted entry for the branch, never older than the deployed one nor
/// one that cancels it.
fn latest_entry(
    setup: &Setup<'_>,
    scan: &Scan<'_>,
    tip: &Tip,
    pinned: Option<&State>,
) -> Result<Chosen, AgentError> {
    let hash_len = setup.objects.hash_kind().len_in_bytes();
    let chosen = scan.latest(pinned, tip.checkpoint.size(), hash_len)?;
    if let Some(s) = pinned {
        if scan.aborted.contains(&s.deployed_seq) {
            return Err(AgentError::DeployedAborted {
                seq: s.deployed_seq,
                commit: s.deployed_commit,
            });
        }
        if chosen.seq < s.deployed_seq {
            return Err(AgentError::OlderEntry {
                seq: chosen.seq,
                deployed: s.deployed_seq,
            });
        }
    }
    Ok(chosen)
}

/// Step 5: the entry's commit is in the clone, the fetched branch points to it, and its tree
/// is the entry's. Returns the fetched ref's name.
fn check_fetched(
    setup: &Setup<'_>,
    chosen: &Chosen,
    pinned: Option<&State>,
) -> Result<String, AgentError> {
    let branch = &setup.branch;
    let (tracking, tip_commit) = fetched_branch(&setup.repo, &setup.opts.remote, branch)?;
    if !setup.objects.contains(&chosen.commit) {
        return Err(AgentError::CommitMissing {
            seq: chosen.seq,
            branch: branch.clone(),
            commit: chosen.commit,
        });
    }
    if tip_commit != chosen.commit {
        return Err(AgentError::BranchMoved {
            tracking,
            tip: tip_commit,
            branch: branch.clone(),
            seq: chosen.seq,
            commit: chosen.commit,
            deployed: pinned.map(|s| s.deployed_commit),
        });
    }
    let tree = commit_tree(&setup.objects, chosen.commit)?;
    if tree != chosen.tree {
        return Err(AgentError::TreeMismatch {
            seq: chosen.seq,
            commit: chosen.commit,
            expected: chosen.tree,
            found: tree,
        });
    }
    Ok(tracking)
}

/// Step 6: every commit since the deployed one (on a first run: the whole history, or from
/// `--trust-from`) is linear, descends from it, is signed by the agent's own signers and
/// passes the file rules. Returns the base and the commits checked.
fn check_new_commits(
    setup: &Setup<'_>,
    scan: &Scan<'_>,
    chosen: &Chosen,
    pinned: Option<&State>,
) -> Result<(Option<ObjectId>, Vec<CheckedCommit>), AgentError> {
    let opts = setup.opts;
    let base = match (pinned, &opts.trust_from) {
        (Some(s), _) => Some(s.deployed_commit),
        (None, Some(text)) => {
            let bad = || AgentError::BadTrustFrom {
                value: text.clone(),
            };
            let id = ObjectId::from_hex(text.trim().as_bytes()).map_err(|_| bad())?;
            if id.kind() != setup.objects.hash_kind() || !setup.objects.contains(&id) {
                return Err(bad());
            }
            Some(id)
        }
        (None, None) => None,
    };
    if base == Some(chosen.commit) {
        return Ok((base, Vec::new()));
    }
    let mut checker = Checker::new(&setup.objects, &setup.trust, Some(&setup.files), opts.now);
    let update = Update {
        refname: setup.branch.clone(),
        old: base,
        new: Some(chosen.commit),
    };
    let report = checker.check(&update, &[]);
    let lineage = Box::new(report.lineage().clone());
    let verdict = report
        .into_verdict()
        .map_err(|violations| AgentError::Commits {
            violations,
            lineage,
            allowed_signers: opts.allowed_signers.clone(),
            base,
            baseline: scan.baseline,
        })?;
    Ok((base, verdict.into_commits()))
}

/// The whole tree deployed (not only what the new commits changed): git's tree rules and no
/// `.gitattributes` that would make a checkout differ from the signed bytes.
fn check_whole_tree(setup: &Setup<'_>, chosen: &Chosen) -> Result<(), AgentError> {
    let violations = tally_verify::revision::check_checkout(
        &setup.objects,
        &setup.branch,
        chosen.commit,
        chosen.tree,
    )
    .map_err(|e| AgentError::Clone {
        message: e.to_string(),
    })?;
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AgentError::Checkout { violations })
    }
}

/// Replaces the state file (atomically) with what this run verified, unless nothing changed.
fn new_state(
    setup: &Setup<'_>,
    scan: &mut Scan<'_>,
    tip: &Tip,
    chosen: &Chosen,
    pinned: Option<&State>,
) -> Pin {
    let repository = scan
        .repository
        .clone()
        .or_else(|| pinned.map(|s| s.repository.clone()))
        .unwrap_or_default();
    let new_state = State {
        branch: setup.branch.clone(),
        origin: tip.origin.clone(),
        repository,
        checkpoint: tip.checkpoint.clone(),
        note: tip.note.clone(),
        frontier: std::mem::take(&mut scan.frontier),
        last_leaf: scan.last_leaf,
        publication: tip.publication.commit,
        deployed_seq: chosen.seq,
        deployed_commit: chosen.commit,
        deployed_tree: chosen.tree,
    };
    let unchanged = pinned.is_some_and(|s| {
        s.note == new_state.note
            && s.publication == new_state.publication
            && s.deployed_seq == new_state.deployed_seq
    });
    Pin {
        path: setup.state_path.clone(),
        expected: setup.loaded.raw.clone(),
        bytes: (!unchanged).then(|| state::to_bytes(&new_state, &setup.key, setup.opts.now)),
    }
}

/// Step 2: `--max-age`, clock skew, and never older than the pinned checkpoint.
fn check_freshness(
    checkpoint: &VerifiedCheckpoint,
    pinned: Option<&State>,
    opts: &Options,
) -> Vec<AgentError> {
    let mut reasons = Vec::new();
    // `SignedCheckpoint::verify` guarantees the time fits an i64.
    let seconds = i64::try_from(checkpoint.time()).unwrap_or(i64::MAX);
    let time = Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX);
    if let Some(max_age) = opts.max_age {
        let age = opts.now.as_second().saturating_sub(seconds);
        let skew = i64::try_from(MAX_CLOCK_SKEW.as_secs()).unwrap_or(i64::MAX);
        if age < -skew {
            reasons.push(AgentError::FutureCheckpoint {
                time,
                ahead_seconds: -age,
            });
        }
        if age > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX) {
            reasons.push(AgentError::Stale {
                time,
                age_seconds: age,
                max_age_seconds: max_age.as_secs(),
            });
        }
    }
    if let Some(s) = pinned
        && checkpoint.time() < s.checkpoint.time()
    {
        let pinned_time = i64::try_from(s.checkpoint.time())
            .ok()
            .and_then(|t| Timestamp::from_second(t).ok())
            .unwrap_or(Timestamp::MAX);
        reasons.push(AgentError::OlderCheckpoint {
            served: time,
            pinned: pinned_time,
        });
    }
    reasons
}

fn fork(pinned: &State, served: &VerifiedCheckpoint, evidence: (PathBuf, PathBuf)) -> AgentError {
    AgentError::Fork {
        size: pinned.checkpoint.size(),
        pinned_root: state::to_hex(pinned.checkpoint.root()),
        served_root: state::to_hex(served.root()),
        evidence,
    }
}

/// The published entries do not lead from the pinned frontier to the signed root. When the
/// publication chain holds a signed checkpoint at the pinned size with another root, that is
/// a fork proven by two signatures; otherwise the entries and the checkpoint disagree.
#[allow(clippy::too_many_arguments)]
fn diverged(
    reader: &mut Reader<'_>,
    vkey: &VerifierKey,
    pinned: Option<&State>,
    publications: &[Publication],
    served: &VerifiedCheckpoint,
    served_note: &str,
    state_path: &Path,
    now: Timestamp,
) -> Result<AgentError, AgentError> {
    let Some(s) = pinned else {
        let commit = publications
            .first()
            .map_or(ObjectId::null(gix::hash::Kind::Sha1), |p| p.commit);
        return Ok(AgentError::Publication {
            commit,
            problem: format!(
                "publishes entries 0..{} that do not hash to its checkpoint's root",
                served.size()
            ),
        });
    };
    let size = s.checkpoint.size();
    let at_pinned_size = match publications.last() {
        Some(oldest) if oldest.range.first == size => oldest.parent,
        _ => None,
    };
    if let Some(parent) = at_pinned_size
        && let Ok(publication) = reader.publication(parent)
        && publication.range.size == size
        && let Ok(text) = reader.checkpoint(&publication)
        && let Ok(signed) = SignedCheckpoint::parse(&text)
        && let Ok(checkpoint) = signed.verify(vkey)
        && checkpoint.size() == size
        && checkpoint.root() != s.checkpoint.root()
    {
        let evidence = keep_evidence(state_path, &s.note, &text, now)?;
        return Ok(fork(s, &checkpoint, evidence));
    }
    let evidence = keep_evidence(state_path, &s.note, served_note, now)?;
    Ok(AgentError::Inconsistent {
        from: size,
        to: served.size(),
        evidence,
    })
}

/// Writes the pinned and the served checkpoint next to the state file; returns their paths.
fn keep_evidence(
    state_path: &Path,
    pinned: &str,
    served: &str,
    now: Timestamp,
) -> Result<(PathBuf, PathBuf), AgentError> {
    let name = state_path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let dir = state_path.parent().unwrap_or(Path::new("."));
    let mut last_error = None;
    for attempt in 0..100 {
        let suffix = if attempt == 0 {
            String::new()
        } else {
            format!("-{attempt}")
        };
        let stem = format!("{name}.fork-{}{suffix}", now.as_second());
        let paths = (
            dir.join(format!("{stem}.pinned.checkpoint")),
            dir.join(format!("{stem}.served.checkpoint")),
        );
        match state::write_new(&paths.0, pinned.as_bytes())
            .and_then(|()| state::write_new(&paths.1, served.as_bytes()))
        {
            Ok(()) => return Ok(paths),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(source) => {
                return Err(AgentError::Write {
                    path: paths.0,
                    source,
                });
            }
        }
    }
    Err(AgentError::Write {
        path: dir.to_owned(),
        source: last_error.unwrap_or_else(|| std::io::Error::other("no free evidence name")),
    })
}

/// The ref `tally pull` fetches the branch into: a namespace of tally's own, which no name a
/// pusher creates on the server can reach (a mirror clone copies the server's
/// `refs/remotes/...` verbatim).
pub fn fetched_ref(remote: &str, branch: &str) -> String {
    let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    format!("refs/tally/remotes/{remote}/{short}")
}

/// Where the fetched branch is, and which ref said so: [`fetched_ref`] if `tally pull` (or
/// the operator, with that refspec) fetched it; else the remote's tracking ref, unless the
/// clone mirrors the server's refs (`remote.<name>.mirror`), where that name is whatever a
/// pusher made it; else the local branch.
fn fetched_branch(
    repo: &gix::Repository,
    remote: &str,
    branch: &str,
) -> Result<(String, ObjectId), AgentError> {
    let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    let own = fetched_ref(remote, branch);
    if let Some(id) = find_ref(repo, &own)? {
        return Ok((own, id));
    }
    let tracking = format!("refs/remotes/{remote}/{short}");
    let mirror = repo
        .config_snapshot()
        .boolean(format!("remote.{remote}.mirror").as_str())
        .unwrap_or(false);
    if !mirror && let Some(id) = find_ref(repo, &tracking)? {
        return Ok((tracking, id));
    }
    match find_ref(repo, branch)? {
        Some(id) => Ok((branch.to_owned(), id)),
        None => Err(AgentError::NoBranch {
            tracking: own,
            branch: branch.to_owned(),
        }),
    }
}

/// Where a ref points, without peeling tags (tally's refs point to commits).
fn find_ref(repo: &gix::Repository, name: &str) -> Result<Option<ObjectId>, AgentError> {
    let clone_error = |e: &dyn std::fmt::Display| AgentError::Clone {
        message: format!("{name}: {e}"),
    };
    let Some(mut r) = repo.try_find_reference(name).map_err(|e| clone_error(&e))? else {
        return Ok(None);
    };
    if let Some(id) = r.target().try_id() {
        return Ok(Some(id.to_owned()));
    }
    Ok(Some(r.peel_to_id().map_err(|e| clone_error(&e))?.detach()))
}

fn commit_tree(objects: &Objects, id: ObjectId) -> Result<ObjectId, AgentError> {
    let mut buf = Vec::new();
    let raw = objects
        .read(&id, gix::objs::Kind::Commit, &mut buf)
        .map_err(|e| AgentError::Clone {
            message: e.to_string(),
        })?;
    gix::objs::CommitRefIter::from_bytes(raw, objects.hash_kind())
        .tree_id()
        .map_err(|e| AgentError::Clone {
            message: format!("commit {id}: {e}"),
        })
}

/// The entry chosen for deployment.
#[derive(Debug, Clone, Copy)]
struct Chosen {
    seq: u64,
    commit: ObjectId,
    tree: ObjectId,
}

/// Streams the new entries: extends the frontier, checks them with the ledger's own chain
/// rules ([`ChainVerifier`]: hashes, seqs, repository, aborts and continuity), and keeps what
/// step 4 needs about the branch.
struct Scan<'a> {
    branch: &'a str,
    frontier: Frontier,
    last_leaf: Hash,
    repository: Option<String>,
    /// The chain rules, resumed at the pinned size with the pinned branch position (created
    /// at the first entry on a first run, when the repository id is known).
    chain: Option<ChainVerifier>,
    /// Every seq an aborted entry cancels, in the scanned range.
    aborted: HashSet<u64>,
    /// The branch's latest baseline (`tally init`) commit, for the `--trust-from` hint.
    baseline: Option<ObjectId>,
    /// The first problem found.
    problem: Option<AgentError>,
}

impl<'a> Scan<'a> {
    fn new(branch: &'a str, pinned: Option<&State>) -> Scan<'a> {
        let chain = pinned.map(|s| {
            let at = Position {
                seq: s.deployed_seq,
                kind: Kind::Accepted,
                commit: Some(s.deployed_commit.as_bytes().to_vec()),
                tree: Some(s.deployed_tree.as_bytes().to_vec()),
            };
            ChainVerifier::resume(
                &s.repository,
                s.checkpoint.size(),
                s.last_leaf,
                [(branch.to_owned(), at)],
            )
        });
        Scan {
            branch,
            frontier: pinned.map_or_else(Frontier::new, |s| s.frontier.clone()),
            last_leaf: pinned.map_or(GENESIS, |s| s.last_leaf),
            repository: pinned.map(|s| s.repository.clone()),
            chain,
            aborted: HashSet::new(),
            baseline: None,
            problem: None,
        }
    }

    fn push(&mut self, seq: u64, bytes: &[u8]) {
        let leaf = leaf_hash(bytes);
        self.frontier.append(&leaf);
        if self.problem.is_none()
            && let Err(problem) = self.check(seq, bytes, &leaf)
        {
            self.problem = Some(problem);
        }
        self.last_leaf = leaf;
    }

    fn check(&mut self, seq: u64, bytes: &[u8], leaf: &Hash) -> Result<(), AgentError> {
        let entry =
            EntryView::parse(bytes).map_err(|source| AgentError::BadEntry { seq, source })?;
        if entry.seq != seq {
            return Err(AgentError::BrokenChain {
                seq,
                problem: format!(
                    "is published at position {seq} but says it is entry #{}",
                    entry.seq
                ),
            });
        }
        let chain = self
            .chain
            .get_or_insert_with(|| ChainVerifier::new(entry.repository));
        chain
            .check(&entry, leaf)
            .map_err(|e| AgentError::BrokenChain {
                seq,
                problem: e.to_string(),
            })?;
        if self.repository.is_none() {
            self.repository = Some(entry.repository.to_owned());
        }
        if let Some(target) = entry.aborts {
            self.aborted.insert(target);
        }
        if entry.refname == self.branch && entry.kind == Kind::PolicyChange {
            self.baseline = entry.new.and_then(|id| ObjectId::try_from(id).ok());
        }
        Ok(())
    }

    /// Where the ledger puts the branch (the latest entry that set it and was not aborted):
    /// among the new entries, else the one this agent deployed.
    fn latest(
        &self,
        pinned: Option<&State>,
        size: u64,
        hash_len: usize,
    ) -> Result<Chosen, AgentError> {
        let position = match &self.chain {
            Some(chain) => chain.position(self.branch).ok().flatten().cloned(),
            None => None,
        };
        let Some(at) = position else {
            return match pinned {
                Some(s) => Ok(Chosen {
                    seq: s.deployed_seq,
                    commit: s.deployed_commit,
                    tree: s.deployed_tree,
                }),
                None => Err(AgentError::NoEntry {
                    branch: self.branch.to_owned(),
                    size,
                }),
            };
        };
        let bad = |problem: &str| AgentError::BadBranchEntry {
            seq: at.seq,
            branch: self.branch.to_owned(),
            problem: problem.to_owned(),
        };
        let id = |bytes: &Option<Vec<u8>>, what: &str| match bytes {
            None if what == "commit" => Err(bad("records no commit (a deletion of the branch)")),
            None => Err(bad(&format!("records no {what}"))),
            Some(b) if b.len() != hash_len => Err(bad(&format!(
                "records a {what} id of {} bytes, but this clone's ids are {hash_len} bytes",
                b.len()
            ))),
            Some(b) => ObjectId::try_from(b.as_slice()).map_err(|_| bad("records a bad id")),
        };
        Ok(Chosen {
            seq: at.seq,
            commit: id(&at.commit, "commit")?,
            tree: id(&at.tree, "tree")?,
        })
    }
}

#[cfg(test)]
mod tests;
