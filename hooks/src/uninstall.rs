//! `tally uninstall`: removes the hooks `tally init` wrote, and nothing else.
//!
//! The hooks fail closed: without a working tally they refuse every push. Uninstalling is how
//! a repository stops being guarded on purpose, instead of by breaking pushes. The ledger,
//! its key, the policy and the signers stay as evidence of what was accepted until now (and
//! `tally init` guards the repository again from them); `receive.fsckObjects` stays, since it
//! is git's own check and harms nothing. Idempotent: a second run removes nothing and
//! records nothing.
//!
//! The removal is recorded first, as a `policy-change` entry ("tally uninstalled by ..."),
//! and published: an agent or auditor reading the ledger then sees why the branch may move
//! without entries from here on, instead of a silent gap. If it cannot be recorded, nothing
//! is removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::init::{HOOKS, is_tally_hook};
use crate::record::Paths;

/// Why `tally uninstall` stopped; nothing was removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UninstallError {
    /// Not a bare git repository.
    #[error("{path} is not a bare git repository ({reason})")]
    NotBare {
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The uninstall cannot be recorded in the ledger.
    #[error(
        "cannot record the uninstall in the ledger ({reason}), so no hook was removed; fix what it names (tally policy check for the policy, tally ledger verify for the ledger) and run it again, or remove the hooks by hand: {hooks}"
    )]
    Record {
        /// Why.
        reason: String,
        /// The hooks to remove.
        hooks: String,
    },
    /// Some hooks cannot be removed (every one was tried; the uninstall is recorded).
    #[error(
        "cannot remove {failed}; removed: {removed}; the hooks left still run and fail closed: remove them by hand, or run tally init again to guard the repository"
    )]
    Remove {
        /// Each hook that stayed, with why.
        failed: String,
        /// The hooks that were removed (or "none").
        removed: String,
    },
}

/// One hook file and what became of it.
#[derive(Debug, Serialize)]
pub struct HookOutcome {
    /// Its path.
    pub path: PathBuf,
    /// `removed`, `kept` (not tally's) or `absent`.
    pub action: &'static str,
}

/// What `tally uninstall` did.
#[derive(Debug, Serialize)]
pub struct Uninstalled {
    /// The repository's git directory.
    pub repo: PathBuf,
    /// Every hook tally installs, and what became of its file.
    pub hooks: Vec<HookOutcome>,
    /// The seq of the `policy-change` entry that records the uninstall, if one was appended.
    pub recorded: Option<u64>,
    /// Whether `refs/tally/ledger` was brought up to date; a failure is in `warnings`.
    pub published: bool,
    /// What stays, each with why.
    pub kept: Vec<String>,
    /// Things to know (`core.hooksPath` set, a platform's hook scripts, a publication that
    /// failed).
    pub warnings: Vec<String>,
}

/// Removes tally's hooks from the bare repository `repo` and says what it did.
pub fn uninstall(repo: &Path) -> Result<Uninstalled, UninstallError> {
    let opened = gix::open_opts(repo, gix::open::Options::isolated()).map_err(|e| {
        UninstallError::NotBare {
            path: repo.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    if !opened.is_bare() {
        return Err(UninstallError::NotBare {
            path: repo.display().to_string(),
            reason: "it has a working tree".into(),
        });
    }
    let git_dir = opened.git_dir().to_owned();
    let hooks_dir = git_dir.join("hooks");
    let mut hooks = Vec::new();
    for (name, _) in HOOKS {
        let path = hooks_dir.join(name);
        let action = if is_tally_hook(&path) {
            "removed"
        } else if std::fs::symlink_metadata(&path).is_ok() {
            "kept"
        } else {
            "absent"
        };
        hooks.push(HookOutcome { path, action });
    }
    let removing: Vec<&HookOutcome> = hooks.iter().filter(|h| h.action == "removed").collect();
    let mut done = Uninstalled {
        repo: git_dir.clone(),
        recorded: None,
        published: false,
        kept: kept(&git_dir),
        warnings: Vec::new(),
        hooks: Vec::new(),
    };
    if !removing.is_empty() {
        let list: Vec<String> = removing
            .iter()
            .map(|h| h.path.display().to_string())
            .collect();
        let now = jiff::Timestamp::now();
        let (seq, published) = record(&git_dir, now).map_err(|reason| UninstallError::Record {
            reason,
            hooks: list.join(" "),
        })?;
        done.recorded = seq;
        match published {
            Ok(()) => done.published = seq.is_some(),
            Err(e) => done.warnings.push(format!("warning: {e}")),
        }
        // Every removal is tried, so that a failure leaves as few hooks as possible and the
        // error names exactly what is left.
        let (mut failed, mut removed) = (Vec::new(), Vec::new());
        for h in &removing {
            match std::fs::remove_file(&h.path) {
                Ok(()) => removed.push(h.path.display().to_string()),
                Err(e) => failed.push(format!("{} ({e})", h.path.display())),
            }
        }
        if !failed.is_empty() {
            return Err(UninstallError::Remove {
                failed: failed.join(", "),
                removed: if removed.is_empty() {
                    "none".to_owned()
                } else {
                    removed.join(", ")
                },
            });
        }
    }
    if let Some(value) = crate::init::git_config_get(&git_dir, "core.hooksPath") {
        done.warnings.push(format!(
            "core.hooksPath is set to {value:?}: git runs the hooks from there, not from hooks/; remove tally's from there by hand"
        ));
    }
    if removing.is_empty() && Paths::new(&git_dir).dir.exists() {
        done.warnings.push(
            "no hook of tally's is in hooks/: if a platform runs tally (Gitea's pre-receive.d, GitLab's custom hooks, gitolite), remove it there".into(),
        );
    }
    done.hooks = hooks;
    Ok(done)
}

/// Appends the `policy-change` entry that records the uninstall and publishes it. `None`
/// when there is no ledger to record in (`tally init` never completed).
#[allow(clippy::type_complexity)]
fn record(
    git_dir: &Path,
    now: jiff::Timestamp,
) -> Result<(Option<u64>, Result<(), crate::publish::PublishError>), String> {
    let paths = Paths::new(git_dir);
    if !crate::admin::has_store(git_dir) {
        return Ok((None, Ok(())));
    }
    let policy = crate::config::Policy::load(git_dir).map_err(|e| e.to_string())?;
    let pusher = crate::pusher::Pusher::from_env();
    let entry = crate::record::entry_about(
        tally_ledger::Kind::PolicyChange,
        None,
        &pusher,
        &policy,
        vec![format!(
            "tally uninstalled by {pusher}: hooks removed; pushes are no longer checked or recorded until tally init runs again"
        )],
    );
    let (mut store, key) = crate::record::open(&paths).map_err(|e| e.to_string())?;
    let outcome = store
        .append(vec![entry], now, &key)
        .map_err(|e| e.to_string())?;
    let published = crate::publish::publish(git_dir, &store, now);
    Ok((Some(outcome.first_seq), published))
}

/// What stays, and why.
fn kept(git_dir: &Path) -> Vec<String> {
    let mut kept = Vec::new();
    let paths = Paths::new(git_dir);
    if paths.dir.exists() {
        kept.push(format!(
            "{}: the ledger, its key, the policy and allowed_signers, as evidence of what was accepted until now (tally ledger verify and tally export still work; tally init guards the repository again)",
            paths.dir.display()
        ));
    }
    kept.push(
        "git config receive.fsckObjects=true: git's own check of pushed objects, which tally turned on; unset it with git config --unset receive.fsckObjects if you must".into(),
    );
    kept
}

/// Prints what [`uninstall`] did, for a person.
pub fn report(done: &Uninstalled, out: &mut impl Write) {
    let _ = writeln!(out, "tally uninstall: {}", done.repo.display());
    for h in &done.hooks {
        let what = match h.action {
            "removed" => "removed (tally's)",
            "kept" => "kept: not tally's, left as it was",
            _ => "absent",
        };
        let _ = writeln!(out, "  hook      {}: {what}", h.path.display());
    }
    if let Some(seq) = done.recorded {
        let _ = writeln!(
            out,
            "  ledger    recorded the uninstall as entry #{seq} (policy-change)"
        );
    }
    if done.published {
        let _ = writeln!(out, "  published {}", crate::publish::LEDGER_REF);
    }
    for k in &done.kept {
        let _ = writeln!(out, "  kept      {k}");
    }
    for w in &done.warnings {
        let _ = writeln!(out, "  note      {w}");
    }
    let removed = done.hooks.iter().any(|h| h.action == "removed");
    let _ = writeln!(
        out,
        "{}",
        if removed {
            "pushes are no longer checked by tally nor recorded in its ledger"
        } else {
            "nothing to remove: no hook of tally's is installed here"
        }
    );
}
