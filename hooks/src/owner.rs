//! One owner for every file in a guarded repository.
//!
//! The hooks run as the hosting account (`git`, `gitea`, `git` for GitLab). A tally command run
//! as root (a provisioning script, root's crontab) that created `tally/ledger.sqlite-wal`, a
//! loose object or a lock as root would break every later push: the hosting account could no
//! longer write them. So every server-side command that touches a repository first becomes the
//! repository's owner when it runs as root: it takes the owner's uid, primary gid and
//! supplementary groups (as `su` would), and says so on stderr. Where it cannot, it refuses
//! before writing anything and names the command to run instead.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Gid, Uid, User, initgroups, setgid, setuid};

/// Why a command cannot run as the repository's owner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerError {
    /// The repository could not be examined.
    #[error("cannot read the owner of {path}: {source}")]
    Stat {
        /// The repository.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Switching to the owner failed.
    #[error(
        "{path} belongs to uid {uid}, and this root process could not become that user ({reason}); nothing was written: run the command as the repository's owner, e.g. sudo -u '#{uid}' tally ..."
    )]
    Switch {
        /// The repository.
        path: String,
        /// The owner.
        uid: u32,
        /// Why.
        reason: String,
    },
}

/// When running as root, becomes the owner of `git_dir` (unless root owns it) and returns a
/// line saying so; otherwise does nothing. Call before anything is written.
pub fn act_as_owner(git_dir: &Path) -> Result<Option<String>, OwnerError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let meta = match std::fs::metadata(git_dir) {
        Ok(meta) => meta,
        // Nothing there: the command itself says what is missing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(OwnerError::Stat {
                path: git_dir.display().to_string(),
                source,
            });
        }
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let uid = Uid::from_raw(meta.uid());
    let fail = |reason: String| OwnerError::Switch {
        path: git_dir.display().to_string(),
        uid: meta.uid(),
        reason,
    };
    let user = User::from_uid(uid)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no such user in the passwd database".into()))?;
    let name = CString::new(user.name.as_bytes()).map_err(|e| fail(e.to_string()))?;
    initgroups(&name, user.gid).map_err(|e| fail(format!("initgroups: {e}")))?;
    setgid(user.gid).map_err(|e| fail(format!("setgid: {e}")))?;
    setuid(uid).map_err(|e| fail(format!("setuid: {e}")))?;
    if Uid::effective().is_root() || Gid::effective() != user.gid {
        return Err(fail("the switch did not take".into()));
    }
    Ok(Some(format!(
        "running as {} (uid {}), the owner of {}, so that every file tally writes stays theirs",
        user.name,
        uid,
        git_dir.display()
    )))
}
