//! Why the agent did not approve a commit: one variant per failure, each saying what is wrong
//! and what the operator should do.

use std::path::PathBuf;

use gix::ObjectId;
use tally_ledger::{CheckpointError, EntryError, KeyError};

use tally_verify::refusal::{self, Group, Lineage};
use tally_verify::revision::{Problem, Violation};
use tally_verify::trust::LoadError;

/// Why `tally verify` (or the verify step of `tally pull`) approved nothing.
///
/// [`AgentError::is_setup`] separates what the operator must fix in the agent's own setup
/// (exit 2) from what the agent refused in what the server served (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    // ---- the agent's own setup (exit 2) ---------------------------------------------------
    /// The clone could not be found or opened.
    #[error("{}: not a git repository ({message}); pass --repo <CLONE>", path.display())]
    Repository {
        /// Where we looked.
        path: PathBuf,
        /// What git said.
        message: String,
    },
    /// The pinned ledger public key cannot be read.
    #[error(
        "cannot read the pinned ledger key: {0}; pass the line `tally ledger key` prints on the server, in a file, to --ledger-key"
    )]
    LedgerKey(#[source] KeyError),
    /// The agent's allowed_signers (or revocation file) cannot be read.
    #[error("cannot load the agent's allowed signers: {0}")]
    Signers(#[source] LoadError),
    /// The agent's `--policy` file cannot be read or parsed.
    #[error("{0}; fix the file given to --policy")]
    Policy(String),
    /// `--branch` is not a branch name.
    #[error("{name:?} is not a branch name; pass --branch <NAME> (e.g. main)")]
    BadBranch {
        /// What was given.
        name: String,
    },
    /// `--trust-from` is not a full commit id.
    #[error(
        "--trust-from {value:?} is not a full commit id of this clone; pass the id `git rev-parse <rev>` prints"
    )]
    BadTrustFrom {
        /// What was given.
        value: String,
    },
    /// Reading the clone's objects or refs failed for a reason other than what was served.
    #[error("cannot read the clone: {message}; check the clone with git fsck")]
    Clone {
        /// What failed.
        message: String,
    },
    /// Writing the state file or the fork evidence failed; nothing was approved.
    #[error("cannot write {}: {source}; fix the file system (space, permissions) and run again", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    // ---- the pinned state (exit 1: the trust anchor is unusable) -------------------------
    /// The state file exists but cannot be read or is not a valid state: never a fresh start.
    #[error(
        "state file {} is unusable: {reason}; restore it from a backup, or, after checking the server out of band, delete it to trust the ledger again from scratch",
        path.display()
    )]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state file was written for another branch.
    #[error(
        "state file {} pins {pinned}, not {branch}; give each branch its own --state file",
        path.display()
    )]
    StateBranch {
        /// The file.
        path: PathBuf,
        /// The branch it pins.
        pinned: String,
        /// The branch asked for.
        branch: String,
    },
    /// The pinned ledger key is not the one the state was verified with.
    #[error(
        "the ledger key in {} is {given}, not the key {pinned} that state file {} was pinned with; if the server's ledger key was really replaced, confirm the new key out of band, then delete the state file",
        key.display(), path.display()
    )]
    StateKey {
        /// The state file.
        path: PathBuf,
        /// The key file given.
        key: PathBuf,
        /// The given key's fingerprint, `SHA256:...`.
        given: String,
        /// The fingerprint of the key the state pins.
        pinned: String,
    },
    /// `tally ledger verify` in a clone was given no `--ledger-key`, and no agent state in
    /// the clone pins one.
    #[error(
        "no ledger key to verify the published ledger with: pass --ledger-key FILE (a file with the line `tally ledger key` prints on the server); no agent state in {} pins one",
        dir.display()
    )]
    NoLedgerKey {
        /// Where agent states are looked for.
        dir: PathBuf,
    },
    /// The clone's agent states pin different ledger keys.
    #[error(
        "the agent states in {} pin different ledger keys ({}); pass --ledger-key FILE to say which one to verify with",
        dir.display(), keys.join(", ")
    )]
    PinnedKeys {
        /// Where the states are.
        dir: PathBuf,
        /// Each key's fingerprint and the state that pins it.
        keys: Vec<String>,
    },
    /// Another run changed the state file while this one was verifying.
    #[error(
        "state file {} changed while this run was verifying (another tally verify or pull on the same branch?); run one agent per branch at a time, then run again",
        path.display()
    )]
    StateChanged {
        /// The file.
        path: PathBuf,
    },

    /// The clone has no `refs/tally/ledger`, and this agent has never verified one for the
    /// branch: a setup problem (nothing fetched yet, or a server that does not run tally).
    #[error(
        "the clone has no refs/tally/ledger; fetch it (git fetch <remote> +refs/tally/ledger:refs/tally/ledger, or use tally pull) and check that the server runs tally"
    )]
    NoLedger,

    // ---- what the server served (exit 1) --------------------------------------------------
    /// The clone has no `refs/tally/ledger`, but this agent verified one before: the server
    /// stopped publishing the ledger the agent follows.
    #[error(
        "the clone has no refs/tally/ledger, but this agent last verified its entry {deployed_seq} (checkpoint of {size} entries, ledger {origin}); a server that stops publishing its ledger is not deployed from: ask its administrator why refs/tally/ledger is gone, and fetch it again (git fetch <remote> +refs/tally/ledger:refs/tally/ledger)"
    )]
    LedgerGone {
        /// The seq of the entry last deployed.
        deployed_seq: u64,
        /// The size of the checkpoint last accepted.
        size: u64,
        /// The ledger's origin.
        origin: String,
    },
    /// A publication commit of `refs/tally/ledger` is malformed.
    #[error(
        "refs/tally/ledger: publication {commit} {problem}; the server's published ledger is damaged or forged: do not deploy, ask the server's administrator to run tally ledger verify"
    )]
    Publication {
        /// The publication commit.
        commit: ObjectId,
        /// What is wrong with it.
        problem: String,
    },
    /// A publication commit or blob is not in the clone.
    #[error(
        "refs/tally/ledger: object {id} is missing from the clone; fetch again (tally pull, or git fetch <remote> +refs/tally/ledger:refs/tally/ledger) and do not use a shallow clone"
    )]
    MissingObject {
        /// The object.
        id: ObjectId,
    },
    /// The newest checkpoint does not verify with the pinned ledger key.
    #[error(
        "the newest checkpoint (publication {commit}) does not verify with the pinned ledger key: {source}; do not deploy: the ledger was forged or the key pinned with --ledger-key is wrong"
    )]
    Checkpoint {
        /// The publication commit carrying it.
        commit: ObjectId,
        /// Why.
        source: CheckpointError,
    },
    /// The checkpoint is for another ledger than the pinned one.
    #[error(
        "the served ledger is {served:?}, but this agent pinned {pinned:?}: the remote serves another repository's ledger; check the remote URL"
    )]
    OtherLedger {
        /// The origin pinned in the state.
        pinned: String,
        /// The origin served.
        served: String,
    },
    /// The checkpoint is older than `--max-age` (freeze).
    #[error(
        "the newest checkpoint was signed {age_seconds} s ago, at {time}, more than --max-age {max_age_seconds} s: the server or a mirror may be freezing this agent on an old state; check that the server runs `tally ledger checkpoint` regularly and that this agent fetches from it"
    )]
    Stale {
        /// When it was signed.
        time: jiff::Timestamp,
        /// Its age.
        age_seconds: i64,
        /// The limit.
        max_age_seconds: u64,
    },
    /// The checkpoint claims a time in the agent's future.
    #[error(
        "the newest checkpoint claims to be signed at {time}, {ahead_seconds} s in this agent's future: fix the clock of the server or of this machine"
    )]
    FutureCheckpoint {
        /// Its time.
        time: jiff::Timestamp,
        /// How far ahead.
        ahead_seconds: i64,
    },
    /// The checkpoint is older than the last one this agent accepted (freeze or rollback).
    #[error(
        "the newest checkpoint was signed at {served}, before the one this agent accepted last ({pinned}): the server or a mirror serves an old state; do not deploy, check which server the remote points to"
    )]
    OlderCheckpoint {
        /// The served time.
        served: jiff::Timestamp,
        /// The pinned time.
        pinned: jiff::Timestamp,
    },
    /// The served ledger is smaller than the pinned one (rollback).
    #[error(
        "rollback: the served ledger has {served} entries, but this agent already saw {pinned}: the server was restored from an old copy or a mirror serves a stale one; do not deploy, investigate the server"
    )]
    Rollback {
        /// The pinned size.
        pinned: u64,
        /// The served size.
        served: u64,
    },
    /// Two signed checkpoints of the same size disagree (fork, split view).
    #[error(
        "fork: the served ledger has root {served_root} at size {size}, but this agent pinned root {pinned_root} at that size: the server shows different histories to different agents; both signed checkpoints are kept as evidence in {} and {}; do not deploy, report them to the server's administrators",
        evidence.0.display(), evidence.1.display()
    )]
    Fork {
        /// The size both checkpoints are for.
        size: u64,
        /// The pinned root, hex.
        pinned_root: String,
        /// The served root, hex.
        served_root: String,
        /// The files holding the pinned and the served checkpoint.
        evidence: (PathBuf, PathBuf),
    },
    /// The served entries do not extend the pinned tree to the signed root.
    #[error(
        "the published entries {from}..{to} do not extend the pinned checkpoint (size {from}) to the newest one's root: the ledger forked or its publication was tampered with; both checkpoints are kept in {} and {}; do not deploy, report them to the server's administrators",
        evidence.0.display(), evidence.1.display()
    )]
    Inconsistent {
        /// The pinned size.
        from: u64,
        /// The served size.
        to: u64,
        /// The files holding the pinned and the served checkpoint.
        evidence: (PathBuf, PathBuf),
    },
    /// A published entry does not decode.
    #[error(
        "ledger entry #{seq} is malformed ({source}); do not deploy, ask the server's administrator to run tally ledger verify"
    )]
    BadEntry {
        /// The entry.
        seq: u64,
        /// Why.
        source: EntryError,
    },
    /// The published entries break the hash chain or the ledger's rules.
    #[error(
        "ledger entry #{seq}: {problem}; do not deploy, ask the server's administrator to run tally ledger verify"
    )]
    BrokenChain {
        /// The entry.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// The ledger has no accepted entry for the branch.
    #[error(
        "the ledger ({size} entries) has no accepted entry for {branch}: nothing to deploy; check that the branch is protected on the server (tally init --branch)"
    )]
    NoEntry {
        /// The branch.
        branch: String,
        /// The ledger size.
        size: u64,
    },
    /// The entry this agent deployed was aborted afterwards.
    #[error(
        "ledger entry #{seq} ({commit}), which this agent deployed, was cancelled by a later aborted entry: the server says that move never happened; do not deploy, investigate the server"
    )]
    DeployedAborted {
        /// The entry.
        seq: u64,
        /// Its commit.
        commit: ObjectId,
    },
    /// The latest entry for the branch records no commit (a deletion) or an unusable id.
    #[error(
        "ledger entry #{seq} for {branch} {problem}; do not deploy, ask the server's administrator to run tally ledger verify"
    )]
    BadBranchEntry {
        /// The entry.
        seq: u64,
        /// The branch.
        branch: String,
        /// What is wrong.
        problem: String,
    },
    /// The latest entry is older than the one this agent deployed.
    #[error(
        "ledger entry #{seq} is older than entry #{deployed}, which this agent deployed; do not deploy, investigate the server"
    )]
    OlderEntry {
        /// The latest entry.
        seq: u64,
        /// The deployed entry.
        deployed: u64,
    },
    /// The entry's commit is not in the clone.
    #[error(
        "ledger entry #{seq} records commit {commit} for {branch}, which is not in this clone: fetch it (tally pull); if the server no longer has it, the branch was moved outside tally: do not deploy"
    )]
    CommitMissing {
        /// The entry.
        seq: u64,
        /// The branch.
        branch: String,
        /// The commit.
        commit: ObjectId,
    },
    /// The fetched branch is not where the ledger says.
    #[error(
        "{tracking} is at {tip}, but the ledger's latest accepted entry #{seq} for {branch} records {commit}: the branch was moved on the server without going through tally (or the ledger was fetched separately from the branch); staying on {}; fetch both in one go (tally pull) and, if this persists, do not deploy and investigate the server",
        deployed.map_or_else(|| "nothing (nothing deployed yet)".to_owned(), |d| d.to_string())
    )]
    BranchMoved {
        /// The local ref holding the fetched branch.
        tracking: String,
        /// Where it points.
        tip: ObjectId,
        /// The branch.
        branch: String,
        /// The entry.
        seq: u64,
        /// The entry's commit.
        commit: ObjectId,
        /// What this agent last deployed.
        deployed: Option<ObjectId>,
    },
    /// Neither the remote-tracking ref nor the local branch exists.
    #[error(
        "the clone has neither {tracking} nor {branch}; fetch the branch (tally pull, or git fetch <remote> {branch})"
    )]
    NoBranch {
        /// The remote-tracking ref looked for.
        tracking: String,
        /// The local branch looked for.
        branch: String,
    },
    /// The entry's commit has another tree than the entry records (mix-and-match).
    #[error(
        "commit {commit} has tree {found}, but ledger entry #{seq} records tree {expected}: the commit and the ledger do not match; do not deploy, investigate the server"
    )]
    TreeMismatch {
        /// The entry.
        seq: u64,
        /// The commit.
        commit: ObjectId,
        /// The entry's tree.
        expected: ObjectId,
        /// The commit's tree.
        found: ObjectId,
    },
    /// Several independent reasons (a checkpoint both stale and smaller than the pinned one).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<AgentError>),
    /// The approved tree itself breaks the tree or `.gitattributes` rules (history the
    /// agent did not judge commit by commit, e.g. before `--trust-from`).
    #[error("{}", violations.iter().map(|v| format!("{v}; do not deploy: a checkout of this tree is not the signed bytes")).collect::<Vec<_>>().join("\n"))]
    Checkout {
        /// Every violation found.
        violations: Vec<Violation>,
    },
    /// The files a checkout wrote differ from the verified tree.
    #[error(
        "the work tree {} differs from the verified tree {tree} in {total} file{}: {}; this machine's git configuration changed them on checkout (core.autocrlf, core.eol, .git/info/attributes, core.attributesFile, or a filter such as git-lfs): do not deploy; remove that configuration, run git checkout -f -- . and tally pull again",
        work_tree.display(), if *total == 1 { "" } else { "s" }, paths.join(", ")
    )]
    WorkTreeDiffers {
        /// The work tree.
        work_tree: PathBuf,
        /// The verified tree.
        tree: ObjectId,
        /// The first paths that differ, with how.
        paths: Vec<String>,
        /// How many differ in all.
        total: usize,
    },
    /// Some new commit breaks the rules, judged against the agent's own signers.
    #[error("{}", violation_lines(violations, lineage, allowed_signers).join("\n"))]
    Commits {
        /// Every violation found.
        violations: Vec<Violation>,
        /// The new commits' parents, to show the violations grouped by kind, as ranges (boxed:
        /// every other variant is small).
        lineage: Box<Lineage>,
        /// The agent's allowed_signers file, named in the fixes.
        allowed_signers: PathBuf,
        /// The last deployed commit (or `--trust-from`), if any.
        base: Option<ObjectId>,
        /// A commit `--trust-from` could start from: the branch's baseline in the ledger.
        baseline: Option<ObjectId>,
    },
}

impl AgentError {
    /// Whether the agent's own setup is at fault (exit 2) rather than what was served (exit 1).
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            AgentError::Repository { .. }
                | AgentError::LedgerKey(_)
                | AgentError::Signers(_)
                | AgentError::Policy(_)
                | AgentError::BadBranch { .. }
                | AgentError::BadTrustFrom { .. }
                | AgentError::Clone { .. }
                | AgentError::Write { .. }
                | AgentError::StateBranch { .. }
                | AgentError::StateKey { .. }
                | AgentError::NoLedgerKey { .. }
                | AgentError::NoLedger
                | AgentError::PinnedKeys { .. }
        )
    }

    /// Every name [`AgentError::reasons`] can give, so that metrics can start each at zero.
    pub const REASONS: &'static [&'static str] = &[
        "signature",
        "file",
        "tree",
        "history",
        "malformed",
        "rollback",
        "fork",
        "stale",
        "checkpoint",
        "moved_outside_ledger",
        "ledger",
        "no_ledger",
        "no_branch",
        "state",
        "checkout",
        "config",
        "other",
    ];

    /// The reasons as stable machine names, for metric labels and `/status` (`tally
    /// mirror`): a small fixed set, so that a label never carries server-chosen text. A
    /// [`AgentError::Several`] gives each distinct reason of its parts, in order.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        self.collect_reasons(&mut names);
        names
    }

    fn collect_reasons(&self, names: &mut Vec<&'static str>) {
        let mut add = |name: &'static str| {
            debug_assert!(AgentError::REASONS.contains(&name), "{name} not in REASONS");
            if !names.contains(&name) {
                names.push(name);
            }
        };
        match self {
            AgentError::Several(all) => {
                for e in all {
                    e.collect_reasons(names);
                }
            }
            AgentError::Commits { violations, .. } | AgentError::Checkout { violations } => {
                for v in violations {
                    let name = problem_reason(&v.problem);
                    debug_assert!(AgentError::REASONS.contains(&name), "{name} not in REASONS");
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
            AgentError::Rollback { .. }
            | AgentError::OlderCheckpoint { .. }
            | AgentError::OlderEntry { .. } => add("rollback"),
            AgentError::Fork { .. } | AgentError::Inconsistent { .. } => add("fork"),
            AgentError::Stale { .. } | AgentError::FutureCheckpoint { .. } => add("stale"),
            AgentError::Checkpoint { .. } | AgentError::OtherLedger { .. } => add("checkpoint"),
            AgentError::BranchMoved { .. }
            | AgentError::TreeMismatch { .. }
            | AgentError::CommitMissing { .. } => add("moved_outside_ledger"),
            AgentError::Publication { .. }
            | AgentError::MissingObject { .. }
            | AgentError::BadEntry { .. }
            | AgentError::BrokenChain { .. }
            | AgentError::NoEntry { .. }
            | AgentError::DeployedAborted { .. }
            | AgentError::BadBranchEntry { .. } => add("ledger"),
            AgentError::NoLedger | AgentError::LedgerGone { .. } => add("no_ledger"),
            AgentError::NoBranch { .. } => add("no_branch"),
            AgentError::CorruptState { .. } | AgentError::StateChanged { .. } => add("state"),
            AgentError::WorkTreeDiffers { .. } => add("checkout"),
            other if other.is_setup() => add("config"),
            _ => add("other"),
        }
    }

    /// One error for several reasons, or the only one; `None` for none.
    pub fn combine(mut reasons: Vec<AgentError>) -> Option<AgentError> {
        match reasons.len() {
            0 => None,
            1 => reasons.pop(),
            _ => Some(AgentError::Several(reasons)),
        }
    }

    /// The reasons, one line each, each saying what is wrong and what to do.
    pub fn lines(&self) -> Vec<String> {
        match self {
            AgentError::Several(all) => all.iter().flat_map(AgentError::lines).collect(),
            AgentError::Commits {
                violations,
                lineage,
                allowed_signers,
                base,
                baseline,
            } => {
                let mut lines = violation_lines(violations, lineage, allowed_signers);
                if base.is_none()
                    && let Some(b) = baseline
                {
                    lines.push(format!(
                        "the ledger records {b} as the branch's baseline at tally init (history before it was not checked by the server); if you trust it, run once with --trust-from {b}"
                    ));
                }
                lines
            }
            other => vec![other.to_string()],
        }
    }
}

/// At most this many kinds of problem are printed; the rest are counted.
const MAX_LINES: usize = 50;

/// One line per kind of problem ([`tally_verify::refusal::group`], as the hook shows a
/// refusal): 30 commits this agent does not trust are one line naming them as a range.
fn violation_lines(
    violations: &[Violation],
    lineage: &Lineage,
    signers: &std::path::Path,
) -> Vec<String> {
    let groups = refusal::group(violations);
    let mut lines: Vec<String> = groups
        .iter()
        .take(MAX_LINES)
        .map(|g| group_line(g, lineage, signers))
        .collect();
    if groups.len() > MAX_LINES {
        let hidden: usize = groups[MAX_LINES..]
            .iter()
            .map(|g| g.violations().len())
            .sum();
        lines.push(format!(
            "... and {hidden} more problem{} of {} other kinds",
            if hidden == 1 { "" } else { "s" },
            groups.len() - MAX_LINES
        ));
    }
    lines
}

/// One kind of problem as the operator of an agent needs it: the server accepted these
/// commits, so the fix is about the agent's trust or the server, not about re-signing.
fn group_line(g: &Group<'_>, lineage: &Lineage, signers: &std::path::Path) -> String {
    let (subject, is) = match g.subject(lineage) {
        None => (String::new(), ""),
        Some(s) if g.commits().len() == 1 => (format!("commit {s} "), "is "),
        Some(s) => (format!("{s} "), "are "),
    };
    let message = g.message();
    match g.problem() {
        Some(Problem::NonFastForward) => format!(
            "{subject}{}: the new commit does not descend from the last deployed one (history was rewritten); do not deploy, investigate the server",
            g.refname()
        ),
        Some(Problem::Merge { parents }) => format!(
            "{subject}{is}a merge ({parents} parents) but the history must be linear; do not deploy, investigate the server that accepted it"
        ),
        Some(Problem::RootCommit) => format!(
            "{subject}{is}a second root commit but the history must be linear; do not deploy, investigate the server that accepted it"
        ),
        Some(Problem::Signature(_)) => format!(
            "{subject}{is}refused by this agent's own signature check: {message}; this agent trusts only the signers in {}: if the signer is trusted, add their key there, otherwise do not deploy",
            signers.display()
        ),
        Some(Problem::Unreadable(_)) => {
            format!("{subject}{message}; fetch again (tally pull) or run git fsck on the clone")
        }
        _ => format!("{}; do not deploy", g.headline(lineage)),
    }
}

/// The machine name of a commit's problem ([`AgentError::reasons`]).
fn problem_reason(problem: &Problem) -> &'static str {
    match problem {
        Problem::Signature(_) => "signature",
        Problem::File(_) => "file",
        Problem::Tree(_) | Problem::Reserved | Problem::Shadows { .. } | Problem::Alias { .. } => {
            "tree"
        }
        Problem::NonFastForward
        | Problem::Merge { .. }
        | Problem::RootCommit
        | Problem::Deletion => "history",
        Problem::Unreadable(_) | Problem::Malformed(_) => "malformed",
        _ => "other",
    }
}
