//! `tally pull`: fetch, verify, then fast-forward the work tree to the approved commit.
//!
//! Fetching and moving the work tree are git's job, so they shell out to `git` (this is not a
//! hook's hot path). Nothing moves unless every check passed: the work tree and the local
//! branch stay where they were on any failure, and local changes are never touched.

use clap::Args;
use std::io::Write;
use tally_agent as agent;
use tally_agent::git::Git;

use super::verify::{AgentArgs, Class, failure, print_approval, refusal, warn_first_run};
use crate::cli::Outcome;

/// Arguments of `tally pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Give up the fetch after this long (e.g. 30s, 2m) and exit 3, so that an unattended
    /// agent retries instead of hanging on an unreachable server.
    #[arg(long, value_name = "DURATION", value_parser = agent::parse_duration, default_value = "60s")]
    fetch_timeout: std::time::Duration,
}

/// Runs `tally pull`.
pub fn run(args: PullArgs, out: &mut impl Write) -> Outcome {
    let timeout = args.fetch_timeout;
    let args = args.agent;
    let json = args.json;
    let location = match agent::discover(args.repo.as_deref()) {
        Ok(l) => l,
        Err(e) => return refusal("pull", &e, json, None, out),
    };
    let opts = args.options(location.git_dir.clone());
    let Some(work_tree) = location.work_tree.clone() else {
        return Outcome::Config(format!(
            "{} is a bare repository: tally pull moves a work tree; in a bare clone run git fetch, then tally verify",
            location.git_dir.display()
        ));
    };
    let branch = match agent::full_branch(&args.branch) {
        Ok(b) => b,
        Err(e) => return refusal("pull", &e, json, None, out),
    };
    let short = branch.strip_prefix("refs/heads/").unwrap_or(&branch);
    let git = Git { dir: &work_tree };

    // Before anything is fetched: the work tree must be on the branch and clean.
    match git.output(&["symbolic-ref", "-q", "HEAD"]) {
        Ok(head) if head == branch => {}
        _ => {
            return Outcome::Config(format!(
                "the work tree in {} is not on {short}; tally pull only fast-forwards that branch: run git switch {short}",
                work_tree.display()
            ));
        }
    }
    if let Some(lines) = local_changes(&git) {
        return failure("pull", Class::Local, &lines, json, Some(&opts), out);
    }

    let fetch = git.output_within(
        timeout,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &args.remote,
            &format!("+{branch}:{}", agent::fetched_ref(&args.remote, &branch)),
            "+refs/tally/ledger:refs/tally/ledger",
        ],
    );
    if let Err(e) = fetch {
        // The server answered, without a ledger: not a network problem that a retry fixes.
        if e.contains("couldn't find remote ref refs/tally/ledger") {
            let state = opts
                .state
                .clone()
                .unwrap_or_else(|| agent::state::default_path(&location.git_dir, &branch));
            let (class, line) = if state.exists() {
                (
                    Class::Refused,
                    format!(
                        "{} has no refs/tally/ledger, but this agent verified its ledger before ({}): a server that stops publishing its ledger is not deployed from; ask its administrator why refs/tally/ledger is gone",
                        args.remote,
                        state.display()
                    ),
                )
            } else {
                (
                    Class::Config,
                    format!(
                        "{} has no refs/tally/ledger: check that the remote is the tally-guarded repository (git remote -v) and that the server runs tally (tally init)",
                        args.remote
                    ),
                )
            };
            return failure("pull", class, &[line], json, Some(&opts), out);
        }
        let line = format!(
            "git fetch {} failed: {e}; nothing was judged or moved: try again later, and if it persists check the remote's URL and that the server publishes refs/tally/ledger",
            args.remote
        );
        return failure("pull", Class::Retry, &[line], json, Some(&opts), out);
    }

    let approval = match agent::verify(&opts) {
        Ok(a) => a,
        Err(e) => return refusal("pull", &e, json, Some(&opts), out),
    };
    let approved = approval.commit.to_string();
    // Verification pinned the ledger; a failure from here on must still say a first run's
    // warnings, which no later run repeats.
    macro_rules! local_failure {
        ($lines:expr) => {{
            warn_first_run("pull", &approval);
            return failure("pull", Class::Local, $lines, json, Some(&opts), out);
        }};
    }

    // The local branch must be behind or at the approved commit: only a fast-forward.
    let local = git
        .output(&[
            "rev-parse",
            "-q",
            "--verify",
            &format!("{branch}^{{commit}}"),
        ])
        .ok();
    if local.as_deref() != Some(approved.as_str()) {
        if let Some(local) = &local
            && git
                .output(&["merge-base", "--is-ancestor", local, &approved])
                .is_err()
        {
            let line = format!(
                "local {short} is at {local}, which is not an ancestor of the approved commit {approved}: it has commits the ledger did not approve; tally pull only fast-forwards, so nothing was moved; if the approved commit is what should run, reset to it yourself (git reset --keep {approved})"
            );
            local_failure!(&[line]);
        }
        if let Some(lines) = local_changes(&git) {
            local_failure!(&lines);
        }
        if let Err(e) = git.output(&["merge", "--ff-only", "--quiet", &approved]) {
            let line = format!(
                "git merge --ff-only {approved} failed: {e}; the work tree was not moved: fix what git reports (untracked files in the way?), then run tally pull again"
            );
            local_failure!(&[line]);
        }
        match git.output(&["rev-parse", "HEAD"]) {
            Ok(head) if head == approved => {}
            other => {
                let head = other.unwrap_or_else(|e| e);
                let line = format!(
                    "HEAD is at {head} after the fast-forward, not at the approved commit {approved}; check the clone (git status) before deploying"
                );
                local_failure!(&[line]);
            }
        }
    }
    // Whatever this machine's git configuration did on checkout, what is on disk must be the
    // verified tree, byte for byte.
    let objects = match tally_verify::objects::Objects::open(
        &location.git_dir,
        None,
        Vec::new(),
        approval.commit.kind(),
    ) {
        Ok(o) => o,
        Err(e) => {
            warn_first_run("pull", &approval);
            return Outcome::Config(format!("cannot read the clone's objects: {e}"));
        }
    };
    if let Err(e) = agent::checkout::compare(&objects, approval.tree, &work_tree) {
        warn_first_run("pull", &approval);
        return refusal("pull", &e, json, Some(&opts), out);
    }
    print_approval("pull", out, &approval, &opts, args.json)
}

/// The reason lines when tracked files have local changes, staged or not: pull never touches
/// them. Untracked files are left to git, which refuses to overwrite them.
fn local_changes(git: &Git<'_>) -> Option<Vec<String>> {
    match git.output(&["status", "--porcelain", "--untracked-files=no"]) {
        Ok(changes) if changes.is_empty() => None,
        Ok(changes) => {
            let count = changes.lines().count();
            let first = changes.lines().next().unwrap_or_default().trim();
            Some(vec![format!(
                "the work tree has local changes ({count} changed paths, e.g. {first:?}); tally pull never touches them, so nothing was fetched or moved: commit, stash (git stash) or discard them, then run tally pull again"
            )])
        }
        Err(e) => Some(vec![format!("git status failed: {e}")]),
    }
}
