//! The mirror's directory: the fetch cache, the served repository, the agent's states, and the
//! lock that keeps a second mirror out of it.
//!
//! ```text
//! <DIR>/mirror.lock       held (flock) while a mirror runs in <DIR>
//! <DIR>/cache.git         the fetch cache: whatever the upstream served; never served
//! <DIR>/served.git        what is served: verified commits and the verified ledger only
//! <DIR>/tally/agent/      the agent's pinned state per branch (and fork evidence)
//! <DIR>/served.json       what was served last, per branch, for /status after a restart
//! ```
//!
//! Both repositories are created by the mirror with a configuration of its own: no background
//! maintenance (`gc.autoDetach=false`, so that no git outlives the mirror holding a lock), the
//! served repository refuses deletions even from the mirror, and its HEAD names the first
//! branch.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tally_agent::git::Git;

use crate::MirrorError;

/// The paths of a mirror's directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<DIR>`, absolute.
    pub dir: PathBuf,
    /// The fetch cache.
    pub cache: PathBuf,
    /// The served repository.
    pub served: PathBuf,
    /// The lock, held for the life of the process.
    _lock: std::sync::Arc<nix::fcntl::Flock<File>>,
}

/// Git configuration of both repositories.
const COMMON_CONFIG: &[(&str, &str)] = &[
    // Maintenance runs in the foreground of the git the mirror started, never detached: a
    // detached gc would outlive a killed mirror and hold locks the next one needs.
    ("gc.autoDetach", "false"),
    ("maintenance.autoDetach", "false"),
    // Objects and refs reach the disk before git reports success.
    ("core.fsync", "committed,reference"),
    ("core.fsyncMethod", "fsync"),
    ("core.logAllRefUpdates", "true"),
];

/// Git configuration of the served repository only.
const SERVED_CONFIG: &[(&str, &str)] = &[
    // Nothing served is ever deleted. Branches only move forward because the mirror pushes
    // them without force (git's push refuses a non-fast-forward itself) and only to what the
    // agent approved as a descendant of what it approved before. refs/tally/ledger must be
    // allowed to move sideways: the server replaces a heartbeat publication with the next
    // one, and the agent has checked the ledger it points to for rollback and fork.
    ("receive.denyNonFastForwards", "false"),
    ("receive.denyDeletes", "true"),
    // Serving: no ref is hidden, and what clients may ask for stays git's default for a
    // stateless server (wants reachable from a ref).
    ("uploadpack.allowFilter", "true"),
    ("http.receivepack", "false"),
];

/// How old a git lock file must be before a cycle treats it as left by a killed git. The
/// mirror runs one git at a time in each repository and git holds a ref lock for milliseconds,
/// so an older lock is stale (a git killed with the mirror, e.g. by a container runtime).
pub const STALE_LOCK_AGE: Duration = Duration::from_secs(10);

impl Layout {
    /// Creates or opens `<DIR>`, takes its lock, and makes sure both repositories exist with
    /// the mirror's configuration and the served HEAD names `branches[0]`.
    pub fn open(dir: &Path, branches: &[String]) -> Result<Layout, MirrorError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            MirrorError::Dir(format!(
                "cannot {what} {}: {e}; check --dir (it must be writable by the mirror's account)",
                dir.display()
            ))
        };
        fs::create_dir_all(dir).map_err(|e| fail("create", &e))?;
        let dir = dir.canonicalize().map_err(|e| fail("open", &e))?;
        let lock_path = dir.join("mirror.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| fail("lock", &e))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| {
                if errno == nix::errno::Errno::EWOULDBLOCK {
                    MirrorError::Dir(format!(
                        "another tally mirror is running in {} (it holds {}); stop it, or pass another --dir",
                        dir.display(),
                        lock_path.display()
                    ))
                } else {
                    fail("lock", &errno)
                }
            })?;
        let layout = Layout {
            cache: dir.join("cache.git"),
            served: dir.join("served.git"),
            dir,
            _lock: std::sync::Arc::new(lock),
        };
        layout.init(&layout.cache, COMMON_CONFIG)?;
        let served_config: Vec<(&str, &str)> =
            COMMON_CONFIG.iter().chain(SERVED_CONFIG).copied().collect();
        layout.init(&layout.served, &served_config)?;
        let head = branches.first().ok_or_else(|| {
            MirrorError::Config("no branch to mirror; pass --branch <NAME>".to_owned())
        })?;
        layout.git(&layout.served, &["symbolic-ref", "HEAD", head])?;
        layout.drop_unmirrored(branches)?;
        // A mirror killed mid-cycle may have left locks; none can be live now that we hold
        // the directory's lock, except from a git it started that is still finishing.
        layout.remove_stale_locks(STALE_LOCK_AGE);
        Ok(layout)
    }

    /// Recreates a repository removed while the mirror runs (the cache may be deleted to
    /// rebuild it); returns whether the served one had to be recreated, so that the caller
    /// forgets what it served.
    pub fn ensure(&self, branches: &[String]) -> Result<bool, MirrorError> {
        if !self.cache.join("HEAD").exists() {
            tracing::warn!(path = %self.cache.display(), "the fetch cache is gone: recreating it");
            self.init(&self.cache, COMMON_CONFIG)?;
        }
        if self.served.join("HEAD").exists() {
            return Ok(false);
        }
        tracing::warn!(path = %self.served.display(), "the served repository is gone: recreating it, empty until the next verified push");
        let served_config: Vec<(&str, &str)> =
            COMMON_CONFIG.iter().chain(SERVED_CONFIG).copied().collect();
        self.init(&self.served, &served_config)?;
        if let Some(head) = branches.first() {
            self.git(&self.served, &["symbolic-ref", "HEAD", head])?;
        }
        Ok(true)
    }

    /// Deletes served branches that are no longer mirrored (dropped from `--branch`): they
    /// would be served as they were, never updated and never reported.
    fn drop_unmirrored(&self, branches: &[String]) -> Result<(), MirrorError> {
        let listed = self.git(
            &self.served,
            &["for-each-ref", "--format=%(refname)", "refs/heads/"],
        )?;
        for refname in listed.lines().filter(|r| !branches.iter().any(|b| b == r)) {
            tracing::warn!(
                branch = refname,
                "no longer mirrored (not a --branch): no longer served"
            );
            self.git(
                &self.served,
                &["update-ref", "-d", "--end-of-options", refname],
            )?;
        }
        Ok(())
    }

    /// `git init --bare` unless the repository exists, then the given configuration.
    fn init(&self, repo: &Path, config: &[(&str, &str)]) -> Result<(), MirrorError> {
        if !repo.join("HEAD").exists() {
            // Made beside and renamed into place, so that a kill leaves no half-made repository.
            let temporary = self.dir.join(format!(
                ".{}.new",
                repo.file_name().and_then(|n| n.to_str()).unwrap_or("repo")
            ));
            if temporary.exists() {
                fs::remove_dir_all(&temporary).map_err(|e| {
                    MirrorError::Dir(format!("cannot remove {}: {e}", temporary.display()))
                })?;
            }
            let path = temporary.to_string_lossy().into_owned();
            self.git(
                &self.dir,
                &["init", "--quiet", "--bare", "--initial-branch=main", &path],
            )?;
            fs::rename(&temporary, repo)
                .map_err(|e| MirrorError::Dir(format!("cannot create {}: {e}", repo.display())))?;
        }
        for (key, value) in config {
            self.git(repo, &["config", key, value])?;
        }
        Ok(())
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Result<String, MirrorError> {
        Git { dir }.output(args).map_err(|e| {
            MirrorError::Dir(format!(
                "git {} in {} failed: {e}",
                args.first().unwrap_or(&""),
                dir.display()
            ))
        })
    }

    /// Removes git lock files in both repositories older than `age` (refs, packed-refs, HEAD,
    /// config, shallow): what a git killed while updating refs leaves behind, which would
    /// otherwise stop every later update. Returns how many it removed.
    pub fn remove_stale_locks(&self, age: Duration) -> usize {
        let mut removed = 0;
        for repo in [&self.cache, &self.served] {
            let mut candidates = Vec::new();
            for name in [
                "packed-refs.lock",
                "HEAD.lock",
                "config.lock",
                "shallow.lock",
            ] {
                candidates.push(repo.join(name));
            }
            collect_locks(&repo.join("refs"), &mut candidates, 0);
            for path in candidates {
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|elapsed| elapsed >= age);
                if meta.is_file() && old && fs::remove_file(&path).is_ok() {
                    tracing::warn!(path = %path.display(), "removed a stale git lock left by a killed git");
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Every `*.lock` file under `dir`, at most a few levels deep (ref names nest).
fn collect_locks(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_locks(&path, out, depth + 1),
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "lock") => {
                out.push(path);
            }
            _ => {}
        }
    }
}
