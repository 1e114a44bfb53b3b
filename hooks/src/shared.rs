//! Repositories shared by several unix accounts (`core.sharedRepository`, git-config(1)).
//!
//! In a shared repository every member's push runs tally's hooks as that member, so every
//! file tally keeps (the ledger and its WAL, the verdicts in `pending/`, the in-flight
//! markers, the published objects and `refs/tally/ledger`) must be writable by the group,
//! and the ledger key readable by it: any member's push appends and signs entries. Git does
//! the same for its own files (`adjust_shared_perm`).
//!
//! `tally init` reads `core.sharedRepository` once and records the answer in the mode of
//! `<repo>/tally/` itself: setgid and group-writable when shared (so every file created in it
//! gets the repository's group), as git marks its own shared directories. Every later tally
//! process (each hook, each server command) needs one `stat` of that directory to know, and
//! takes the matching umask before it writes anything: no git config parsing per hook.
//!
//! Modes that do not let the group write (`0640`, `umask`, `false`) are not shared for tally:
//! other accounts can read the repository but not push, so tally's files stay the owner's.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::config::TALLY_DIR;

/// How tally's files in one repository are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Owner only (git's default, `umask`, `false`, or a mode without group write).
    Private,
    /// Group-writable, as `core.sharedRepository` asks: `group`/`true`/`1`, `all`/`world`/
    /// `everybody`/`2` (also world-readable), or an octal mode that lets the group write.
    Shared {
        /// The permission bits of tally's files (`0660`, `0664`, or the configured mode).
        file_mode: u32,
    },
}

/// A `core.sharedRepository` value tally does not set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadSharing {
    /// A value git does not accept either.
    #[error(
        "core.sharedRepository = {value:?} is not a value git accepts (umask, group, all, or an octal mode such as 0660); fix it with git config core.sharedRepository group"
    )]
    Invalid {
        /// The value found.
        value: String,
    },
    /// A mode that lets every local user write: anyone on the host could replace the
    /// policy, the signers or the ledger.
    #[error(
        "core.sharedRepository = {value:?} lets every user of this machine write the repository, so anyone could replace tally's policy, signers and ledger; use group (git config core.sharedRepository group) and put the pushing accounts in the repository's group"
    )]
    WorldWritable {
        /// The value found.
        value: String,
    },
}

impl Sharing {
    /// Reads a `core.sharedRepository` value as git does (`git_config_perm`).
    pub fn parse(value: Option<&str>) -> Result<Sharing, BadSharing> {
        let Some(value) = value else {
            return Ok(Sharing::Private);
        };
        let v = value.trim();
        let mode = match v.to_ascii_lowercase().as_str() {
            "umask" | "false" | "no" | "off" | "0" => return Ok(Sharing::Private),
            "group" | "true" | "yes" | "on" | "1" | "" => 0o660,
            "all" | "world" | "everybody" | "2" => 0o664,
            _ => {
                let digits = v.strip_prefix('0').filter(|d| !d.is_empty());
                let mode = digits
                    .and_then(|d| u32::from_str_radix(d, 8).ok())
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| BadSharing::Invalid {
                        value: value.to_owned(),
                    })?;
                // git: the owner must be able to read and write.
                if mode & 0o600 != 0o600 {
                    return Err(BadSharing::Invalid {
                        value: value.to_owned(),
                    });
                }
                if mode & 0o002 != 0 {
                    return Err(BadSharing::WorldWritable {
                        value: value.to_owned(),
                    });
                }
                mode
            }
        };
        Ok(if mode & 0o020 == 0 {
            Sharing::Private
        } else {
            Sharing::Shared { file_mode: mode }
        })
    }

    /// The mode of `tally/` and of the directories in it: setgid, and search permission
    /// wherever the files' mode gives read.
    pub fn dir_mode(self) -> u32 {
        match self {
            Sharing::Private => 0o755,
            Sharing::Shared { file_mode } => 0o2000 | file_mode | ((file_mode & 0o444) >> 2),
        }
    }

    /// The mode of the ledger key: the owner's alone, or also the group's (never the
    /// world's) where every member's push signs entries.
    pub fn key_mode(self) -> u32 {
        match self {
            Sharing::Private => 0o600,
            Sharing::Shared { .. } => 0o640,
        }
    }

    /// The mode of the ledger database (SQLite gives its `-wal` and `-shm` files the same).
    pub fn ledger_mode(self) -> u32 {
        match self {
            Sharing::Private => 0o644,
            Sharing::Shared { file_mode } => file_mode,
        }
    }

    /// What `tally init` recorded in the mode of `<git_dir>/tally/` (see the module doc);
    /// `Private` when that directory is missing.
    pub fn of_repository(git_dir: &Path) -> Sharing {
        Sharing::of_tally_dir(&git_dir.join(TALLY_DIR))
    }

    /// [`Sharing::of_repository`], given `<git_dir>/tally` itself.
    pub fn of_tally_dir(dir: &Path) -> Sharing {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.mode() & 0o2000 != 0 && meta.mode() & 0o020 != 0 => Sharing::Shared {
                file_mode: meta.mode() & 0o666,
            },
            _ => Sharing::Private,
        }
    }
}

/// Takes the umask that makes every file and directory this process creates in a shared
/// repository group-writable (files `0666` and directories `0777` narrowed to the shared
/// mode); does nothing in a private one. Call before anything is written.
pub fn adopt_umask(git_dir: &Path) -> Sharing {
    let sharing = Sharing::of_repository(git_dir);
    if let Sharing::Shared { file_mode } = sharing {
        let allowed = file_mode | ((file_mode & 0o444) >> 2);
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(!allowed & 0o777));
    }
    sharing
}

/// Sets the mode of `path` (if it exists) to `mode`, and its group to `gid` if given.
pub fn set_mode(path: &Path, mode: u32, gid: Option<u32>) -> std::io::Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(gid) = gid.filter(|g| *g != meta.gid()) {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    if meta.mode() & 0o7777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_git_reads_them() {
        let shared = |v: &str| Sharing::parse(Some(v)).ok();
        assert_eq!(Sharing::parse(None).ok(), Some(Sharing::Private));
        for private in ["umask", "false", "0", "0600", "0640", "0644"] {
            assert_eq!(shared(private), Some(Sharing::Private), "{private}");
        }
        for group in ["group", "true", "1", "GROUP"] {
            assert_eq!(
                shared(group),
                Some(Sharing::Shared { file_mode: 0o660 }),
                "{group}"
            );
        }
        for all in ["all", "world", "everybody", "2"] {
            assert_eq!(
                shared(all),
                Some(Sharing::Shared { file_mode: 0o664 }),
                "{all}"
            );
        }
        assert_eq!(shared("0660"), Some(Sharing::Shared { file_mode: 0o660 }));
        assert_eq!(shared("0664"), Some(Sharing::Shared { file_mode: 0o664 }));
        assert!(matches!(
            Sharing::parse(Some("0666")),
            Err(BadSharing::WorldWritable { .. })
        ));
        for bad in ["sometimes", "0999", "0460", "07777", "-1"] {
            assert!(Sharing::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn directories_are_setgid_and_searchable_where_readable() {
        assert_eq!(Sharing::Shared { file_mode: 0o660 }.dir_mode(), 0o2770);
        assert_eq!(Sharing::Shared { file_mode: 0o664 }.dir_mode(), 0o2775);
        assert_eq!(Sharing::Private.dir_mode(), 0o755);
        assert_eq!(Sharing::Shared { file_mode: 0o664 }.key_mode(), 0o640);
    }
}
