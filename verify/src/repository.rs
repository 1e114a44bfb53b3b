//! Opening a repository tally can read whole, and refusing, by name, the formats it cannot.
//!
//! git can store objects under SHA-256 ids (`extensions.objectFormat = sha256`) and refs in
//! the reftable format (`extensions.refStorage = reftable`). tally's object and ref readers
//! (gix) do not support either fully, and a half-read repository is the worst outcome: a hook
//! that cannot see a ref cannot judge it. So every entry point (`tally init`, each hook, the
//! agent) opens repositories through [`open`], which refuses those formats with a message
//! that says exactly that, instead of whatever error the first failing read would give.

use std::path::Path;

/// Why a repository cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError {
    /// The repository uses a format tally does not support.
    #[error(
        "{path} uses git's {format} ({setting}), which tally does not support: it refuses to guard or verify a repository it could only read in part; {fix}"
    )]
    Unsupported {
        /// What to do.
        fix: &'static str,
        /// The git directory.
        path: String,
        /// The format, in words.
        format: &'static str,
        /// The configuration that selects it.
        setting: String,
    },
    /// gix could not open it.
    #[error("cannot open repository {path}: {message}")]
    Open {
        /// The git directory.
        path: String,
        /// Why.
        message: String,
    },
}

/// Opens the repository at `git_dir` with the environment's git configuration ignored, or
/// refuses a format tally cannot read whole.
pub fn open(git_dir: &Path) -> Result<gix::Repository, RepositoryError> {
    check_format(git_dir)?;
    gix::open_opts(git_dir, gix::open::Options::isolated()).map_err(|e| RepositoryError::Open {
        path: git_dir.display().to_string(),
        message: e.to_string(),
    })
}

/// Refuses the formats tally does not support, from the repository's own config file (read
/// before gix, which may fail on them with an unrelated message). A missing or unreadable
/// config is left to [`open`] to report.
pub fn check_format(git_dir: &Path) -> Result<(), RepositoryError> {
    let Ok(text) = std::fs::read(git_dir.join("config")) else {
        return Ok(());
    };
    let Ok(config) = gix::config::File::from_bytes_no_includes(
        &text,
        gix::config::file::Metadata::from(gix::config::Source::Local),
        Default::default(),
    ) else {
        return Ok(());
    };
    let unsupported = |format, key: &str, value: &str, fix| RepositoryError::Unsupported {
        path: git_dir.display().to_string(),
        fix,
        format,
        setting: format!("{key} = {value}"),
    };
    if let Some(value) = config.string("extensions.objectFormat") {
        let value = value.to_string();
        if !value.eq_ignore_ascii_case("sha1") {
            return Err(unsupported(
                "SHA-256 object format",
                "extensions.objectFormat",
                &value,
                "keep the deployment branch in a SHA-1 repository (git init --bare --object-format=sha1)",
            ));
        }
    }
    if let Some(value) = config.string("extensions.refStorage") {
        let value = value.to_string();
        if !value.eq_ignore_ascii_case("files") {
            return Err(unsupported(
                "reftable ref storage",
                "extensions.refStorage",
                &value,
                "convert it back to files with git refs migrate --ref-format=files (git 2.46 or newer)",
            ));
        }
    }
    Ok(())
}
