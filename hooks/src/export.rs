//! `tally export`: writes an audit bundle of a repository's ledger.
//!
//! The bundle's format, and its offline verifier, live in `tally_ledger::export`, which needs
//! no SQLite; this module gathers what only the server has: the store's raw entries and latest
//! checkpoint, the ledger key to sign the manifest, and the policy files in force.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use tally_ledger::StoreError;
use tally_ledger::export::{BundleWriter, ExportError as BundleError, Range, Seal, Summary};

use crate::config::{POLICY_FILE, Policy, parse_policy};
use crate::record::Paths;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The bundle directory to create (absent, or an empty directory).
    pub out: PathBuf,
    /// Only rows of this branch (short or full name), plus the ledger-wide entries.
    pub branch: Option<String>,
    /// Only rows appended at or after this time.
    pub since: Option<Timestamp>,
    /// Only rows appended before this time.
    pub until: Option<Timestamp>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The options are contradictory.
    #[error("{0}")]
    Usage(String),
    /// The ledger cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger's location cannot be known or reached.
    #[error(transparent)]
    Location(Box<crate::ledger::LocationError>),
    /// The ledger key cannot be used.
    #[error("ledger key: {0}")]
    Key(#[from] tally_ledger::KeyError),
    /// The policy files cannot be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A policy file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The ledger key on disk is not the one the ledger was created with.
    #[error(
        "{}: not the key this ledger was created with; the bundle would not verify against the ledger's key",
        path.display()
    )]
    WrongKey {
        /// The key file.
        path: PathBuf,
    },
    /// The policy in force is recorded by no entry (its files were changed by hand since).
    #[error(
        "the policy in force (digest {digest}) is carried by no ledger entry: policy.toml, allowed_signers or the revocation file changed outside tally since the last entry; record it with `tally ledger checkpoint`, then export again"
    )]
    PolicyUnrecorded {
        /// The digest of the policy in force, hex.
        digest: String,
    },
    /// The ledger cannot be appended to.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// The policy files changed while they were being read.
    #[error("the policy files changed during the export; run it again")]
    PolicyChanged,
    /// Writing the bundle failed, or the ledger does not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl From<crate::ledger::LocationError> for ExportError {
    fn from(e: crate::ledger::LocationError) -> ExportError {
        ExportError::Location(Box::new(e))
    }
}

impl ExportError {
    /// Whether the ledger itself failed verification (exit 1), rather than the export being
    /// impossible (exit 2).
    pub fn is_verification_failure(&self) -> bool {
        matches!(self, ExportError::Bundle(e) if e.is_verification_failure())
    }
}

/// The full ref name of a branch argument (`main` or `refs/heads/main`).
pub fn full_ref(branch: &str) -> String {
    if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    }
}

/// Writes a bundle of the ledger of the repository at `git_dir` up to its latest checkpoint,
/// with the rows `opts` selects, and prints one line saying what it wrote.
pub fn export(
    git_dir: &Path,
    opts: &ExportOptions,
    out: &mut impl Write,
) -> Result<Summary, ExportError> {
    if let (Some(since), Some(until)) = (opts.since, opts.until)
        && since >= until
    {
        return Err(ExportError::Usage(format!(
            "--since {since} is not before --until {until}: the range would be empty"
        )));
    }
    let paths = Paths::new(git_dir);
    let store = crate::ledger::open_read_only(&paths)?;
    let key = paths.load_key()?;
    if key.verifying_key().to_bytes() != store.public_key() {
        return Err(ExportError::WrongKey { path: paths.key() });
    }

    // The policy files in force, byte for byte, and a check that they are what the hooks
    // digest right now (so the bundle's policy_digest is the one new entries record).
    let read =
        |path: PathBuf| std::fs::read(&path).map_err(|source| ExportError::Read { path, source });
    let policy_path = paths.dir.join(POLICY_FILE);
    let policy = read(policy_path.clone())?;
    let file = parse_policy(&policy_path, &policy)?;
    let signers = read(paths.dir.join(&file.signatures.allowed_signers))?;
    let revoked = file
        .signatures
        .revocation_file
        .as_ref()
        .map(|p| read(paths.dir.join(p)))
        .transpose()?;
    let in_force = Policy::load(git_dir)?;
    let digest =
        tally_ledger::export::policy_digest(&policy, &signers, revoked.as_deref().unwrap_or(&[]));
    if digest != in_force.digest {
        return Err(ExportError::PolicyChanged);
    }
    // The bundle's policy must be one an entry carries, so that a reader can tell since when
    // it was in force.
    if crate::record::policy_unrecorded(&store, &in_force)? {
        return Err(ExportError::PolicyUnrecorded {
            digest: in_force.digest_hex(),
        });
    }

    let checkpoint = store.latest_checkpoint()?.note;
    let size = checkpoint.unverified().size;
    let range = Range {
        branch: opts.branch.as_deref().map(full_ref),
        since: opts.since,
        until: opts.until,
    };
    let mut writer = BundleWriter::create(&opts.out, store.repository(), range)?;
    let mut failed = None;
    store.raw_entries(0..size, |_, bytes| {
        if failed.is_none()
            && let Err(e) = writer.push(bytes)
        {
            failed = Some(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let version = format!("tally {}", env!("CARGO_PKG_VERSION"));
    let summary = writer.finish(Seal {
        checkpoint: &checkpoint,
        key: &key,
        policy: &policy,
        allowed_signers: &signers,
        revoked_keys: revoked.as_deref(),
        exported_at: Timestamp::now(),
        exported_by: &version,
    })?;
    let d = &summary.description;
    let rows = match (d.first_seq, d.last_seq) {
        (Some(first), Some(last)) => format!("{} rows (seq {first} to {last})", d.rows),
        _ => "0 rows".to_owned(),
    };
    let _ = writeln!(
        out,
        "exported {rows} of {} entries to {}\n  checkpoint root {}",
        d.size,
        summary.path.display(),
        d.root,
    );
    let _ = writeln!(
        out,
        "verify with: tally export verify {} --ledger-key <key from tally ledger key>",
        summary.path.display()
    );
    Ok(summary)
}
