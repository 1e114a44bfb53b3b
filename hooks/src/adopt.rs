//! `tally ledger adopt`: the deliberate, recorded re-baseline of a protected branch.
//!
//! The ledger covers each protected branch without gaps (`tally_ledger::chain`, continuity):
//! a branch that moved outside tally (hooks removed for a while, a restore from backup, a
//! branch newly put under protection) is refused by every hook until an administrator looks
//! and decides. Adopting is that decision, made visible: it judges the history the ledger has
//! not covered like a push would (signatures, linear history, file rules), then appends an
//! `adopted` entry naming the commit, every commit it judged and who signed it, where the
//! ledger had the branch before, and the administrator's reason. Agents see the entry and
//! still re-check every commit against their own signers.
//!
//! With `--commit` other than the branch's tip, the branch is moved there too (by
//! compare-and-swap against the tip that was judged), then the entry is appended: a crash in
//! between leaves the branch where the entry will say once `adopt` is run again, and every
//! push is refused until then, so nothing is lost and nothing unrecorded is deployed.

use std::io::Write;
use std::path::Path;

use gix::ObjectId;
use jiff::Timestamp;
use tally_ledger::{CommitSigner, Kind, NewEntry};
use tally_verify::objects::Objects;
use tally_verify::refusal::{self, Lineage};
use tally_verify::revision::{Checker, Update, Violation};

use crate::admin::AdminError;
use crate::config::Config;
use crate::pusher::Pusher;
use crate::record::{self, Paths};

/// What `tally ledger adopt` was asked.
#[derive(Debug, Clone, Default)]
pub struct AdoptOptions {
    /// The branch, short or full.
    pub branch: String,
    /// The commit to adopt (full hex id); default: the branch's tip.
    pub commit: Option<String>,
    /// Record the adoption without judging the history (history that predates the policy).
    pub unchecked: bool,
    /// Why, for the ledger.
    pub reason: Option<String>,
}

/// What `tally ledger adopt` refuses to do, before it writes anything (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// `--branch` is not a ref name.
    #[error("{0:?} is not a branch name")]
    BadBranch(String),
    /// The branch is not protected by the policy.
    #[error(
        "{0} is not a protected branch (policy.toml [branches] protected); only protected branches are recorded"
    )]
    NotProtected(String),
    /// `--commit` is not an object id.
    #[error("--commit {0:?} is not a full hex object id")]
    BadCommit(String),
    /// `--commit` names no commit here.
    #[error("--commit {0} is not a commit of this repository")]
    NoSuchCommit(ObjectId),
    /// No `--commit` and no branch to adopt.
    #[error("{0} does not exist; pass --commit <id> to create it at a commit")]
    NoBranch(String),
    /// The repository cannot be opened or read as the hooks read it.
    #[error(transparent)]
    Repository(#[from] crate::pre_receive::HookError),
    /// git update-ref could not be run.
    #[error("cannot run git update-ref: {0}")]
    RunGit(#[source] std::io::Error),
    /// git update-ref refused.
    #[error(
        "git update-ref could not move {refname} to {to} (did it move meanwhile?); nothing was recorded"
    )]
    Moved {
        /// The branch.
        refname: String,
        /// Where it was to go.
        to: ObjectId,
    },
}

use crate::admin::git;

/// Adopts the branch. `Ok(false)`: the history broke a rule; every problem was printed and
/// nothing was written.
pub fn adopt(
    git_dir: &Path,
    opts: &AdoptOptions,
    out: &mut impl Write,
    now: Timestamp,
) -> Result<bool, AdminError> {
    // A full ref name is taken as it is (a protected branch inside a GIT_NAMESPACE is
    // `refs/namespaces/<ns>/refs/heads/<name>`); a short one is a branch.
    let refname = if opts.branch.starts_with("refs/") {
        opts.branch.clone()
    } else {
        format!("refs/heads/{}", opts.branch)
    };
    gix::refs::FullName::try_from(refname.as_str())
        .map_err(|_| AdoptError::BadBranch(opts.branch.clone()))?;
    let config = Config::load(git_dir)?;
    if !config.is_protected(&refname) {
        return Err(AdoptError::NotProtected(refname).into());
    }
    let repo = crate::pre_receive::open_repo(git_dir).map_err(AdoptError::from)?;
    let tip = repo
        .try_find_reference(refname.as_str())
        .map_err(git(&refname))?
        .map(|mut r| r.peel_to_id().map(|id| id.detach()))
        .transpose()
        .map_err(git(&refname))?;
    let target = match &opts.commit {
        Some(text) => {
            let id = ObjectId::from_hex(text.trim().as_bytes())
                .map_err(|_| AdoptError::BadCommit(text.clone()))?;
            repo.find_commit(id)
                .map_err(|_| AdoptError::NoSuchCommit(id))?;
            id
        }
        None => tip.ok_or_else(|| AdoptError::NoBranch(refname.clone()))?,
    };
    let paths = Paths::new(git_dir);
    let (mut store, key) = record::open(&paths)?;
    let at = store.position(&refname)?;
    let recorded = at
        .as_ref()
        .and_then(|p| p.commit.as_deref())
        .and_then(|b| ObjectId::try_from(b).ok());
    if recorded == Some(target) && tip == Some(target) {
        let _ = writeln!(
            out,
            "{refname} is at {target}, where the ledger already has it (entry {}); nothing to adopt",
            at.map_or(0, |p| p.seq)
        );
        return Ok(true);
    }

    // Judge the history the ledger does not cover: everything not reachable from where the
    // ledger had this branch or from another protected branch's tip.
    let mut hidden: Vec<ObjectId> = recorded
        .into_iter()
        .filter(|id| repo.find_commit(*id).is_ok())
        .collect();
    hidden.extend(
        crate::pre_receive::recorded_tips(&repo, &store, &config, &refname)
            .map_err(AdoptError::from)?,
    );
    let update = Update {
        refname: refname.clone(),
        old: None,
        new: Some(target),
    };
    let mut commits = Vec::new();
    let mut reasons = vec![format!(
        "adopted by an administrator: {}",
        opts.reason.as_deref().unwrap_or("no reason given")
    )];
    reasons.push(format!(
        "the branch was at {}; the ledger had it at {}",
        tip.map_or_else(|| "nothing".to_owned(), |t| t.to_string()),
        recorded.map_or_else(|| "nothing".to_owned(), |r| r.to_string())
    ));
    let tree = repo
        .find_commit(target)
        .and_then(|c| c.tree_id())
        .map(|t| t.detach())
        .map_err(git(target))?;
    if opts.unchecked {
        reasons.push("its history was NOT checked (--unchecked)".into());
    } else {
        match judge(&repo, &config, &update, &hidden, now)? {
            Ok(checked) => {
                reasons.push(format!(
                    "its history was checked like a push: {} commit{} not covered before",
                    checked.len(),
                    if checked.len() == 1 { "" } else { "s" }
                ));
                commits = checked;
            }
            Err((violations, lineage)) => {
                refuse(out, target, &violations, &lineage);
                return Ok(false);
            }
        }
    }

    if tip != Some(target) {
        move_branch(git_dir, &refname, tip, target)?;
    }
    let pusher = Pusher::from_env();
    let entry = NewEntry {
        kind: Kind::Adopted,
        refname: refname.clone(),
        old: recorded.map(|r| r.as_bytes().to_vec()),
        new: Some(target.as_bytes().to_vec()),
        new_tree: Some(tree.as_bytes().to_vec()),
        commits,
        pusher: pusher.to_string(),
        policy_digest: config.digest,
        reasons,
        aborts: None,
    };
    let outcome = store.append(vec![entry], now, &key)?;
    let _ = writeln!(
        out,
        "adopted {target} on {refname}: entry {} (ledger size {})",
        outcome.size - 1,
        outcome.size
    );
    crate::publish::publish(git_dir, &store, now)?;
    Ok(true)
}

/// Moves the branch from `from` to `to` with git's compare-and-swap, without running the
/// repository's hooks: the move is recorded by the `adopted` entry appended right after, and
/// the reference-transaction hook would refuse it for want of a push verdict.
fn move_branch(
    git_dir: &Path,
    refname: &str,
    from: Option<ObjectId>,
    to: ObjectId,
) -> Result<(), AdminError> {
    let zero = ObjectId::null(to.kind());
    let status = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        // No file can exist under /dev/null, so git finds no hook to run.
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(["update-ref", "-m", "tally ledger adopt", refname])
        .arg(to.to_string())
        .arg(from.unwrap_or(zero).to_string())
        .status()
        .map_err(AdoptError::RunGit)?;
    if !status.success() {
        return Err(AdoptError::Moved {
            refname: refname.to_owned(),
            to,
        }
        .into());
    }
    Ok(())
}

/// What [`judge`] found: the signer of every commit, or every violation with the lineage
/// that shows them grouped.
type Judged = Result<Vec<CommitSigner>, (Vec<Violation>, Lineage)>;

/// Checks the history of `update` that `hidden` does not cover, as a push would be checked:
/// the signer of every commit, or the problems found.
fn judge(
    repo: &gix::Repository,
    config: &Config,
    update: &Update,
    hidden: &[ObjectId],
    now: Timestamp,
) -> Result<Judged, AdminError> {
    let objects = Objects::open(repo.common_dir(), None, Vec::new(), repo.object_hash())
        .map_err(git("the object database"))?;
    let mut checker = Checker::new(&objects, &config.trust, Some(&config.files), now);
    let report = checker.check(update, hidden);
    let lineage = report.lineage().clone();
    Ok(report
        .into_verdict()
        .map_err(|v| (v, lineage))
        .map(|verdict| {
            verdict
                .commits()
                .iter()
                .map(|c| CommitSigner {
                    commit: c.id().as_bytes().to_vec(),
                    principal: c.signer().principal().to_owned(),
                    fingerprint: c.signer().fingerprint().to_owned(),
                })
                .collect()
        }))
}

/// Says why `target`'s history cannot be adopted (one line per kind of problem, as a push's
/// refusal shows them), and the two ways on.
fn refuse(out: &mut impl Write, target: ObjectId, violations: &[Violation], lineage: &Lineage) {
    let _ = writeln!(
        out,
        "not adopted: {} problem{} in the history of {target} that the ledger does not cover:",
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for group in refusal::group(violations) {
        let _ = writeln!(out, "  {}", group.headline(lineage));
    }
    let _ = writeln!(
        out,
        "fix the history, or, if it predates the policy and you trust it, adopt it with --unchecked (recorded as such)"
    );
}
