//! The server-side ledger commands: `tally log`, `tally ledger verify|key|checkpoint`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use gix::ObjectId;
use jiff::Timestamp;
use tally_ledger::log::{LogWriter, Selection, count};
use tally_ledger::publication::read_entries;
pub use tally_ledger::report::VerifyOutcome;
use tally_ledger::{Filter, Store, VerifierKey};

use crate::publish::{self, LEDGER_REF, Range};
use crate::record::Paths;

/// Why a server-side ledger command could not run (exit 2), as opposed to finding a problem
/// (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The path given (or the current directory) cannot be opened.
    #[error("{} cannot be opened ({source}); pass --repo <REPO>", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not in a git repository.
    #[error("{} is not in a git repository ({source}); pass --repo <REPO>", path.display())]
    NotARepository {
        /// The path.
        path: PathBuf,
        /// What gix said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading the repository (refs, commits, trees, blobs) failed.
    #[error("cannot read {what}: {source}")]
    Git {
        /// What was being read.
        what: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Running as the repository's owner failed.
    #[error(transparent)]
    Owner(#[from] crate::owner::OwnerError),
    /// The ledger store failed.
    #[error(transparent)]
    Store(#[from] tally_ledger::StoreError),
    /// The ledger's location cannot be known or reached.
    #[error(transparent)]
    Location(Box<crate::ledger::LocationError>),
    /// A ledger key file is missing or unusable.
    #[error(transparent)]
    Key(#[from] tally_ledger::KeyError),
    /// The verifier key does not fit the ledger.
    #[error(transparent)]
    Checkpoint(#[from] tally_ledger::CheckpointError),
    /// The public key beside the ledger key is not the one the ledger was created with.
    #[error(
        "{} is the key {found}, not the key {created} the ledger was created with; restore it from a backup",
        path.display()
    )]
    WrongPublicKey {
        /// The public key file.
        path: PathBuf,
        /// Its key's fingerprint.
        found: String,
        /// The fingerprint of the key the ledger was created with.
        created: String,
    },
    /// The policy cannot be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Recording failed.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// Publication failed.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    /// The published ledger does not have the publication format.
    #[error("{LEDGER_REF}: publication {commit} {problem}")]
    Publication {
        /// The publication commit.
        commit: gix::ObjectId,
        /// What is wrong with it.
        problem: String,
    },
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// JSON output could not be produced.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `tally ledger migrate` cannot move the ledger.
    #[error("{0}")]
    Migrate(String),
    /// `tally ledger adopt` was given something it cannot adopt.
    #[error(transparent)]
    Adopt(#[from] crate::adopt::AdoptError),
}

impl From<crate::ledger::LocationError> for AdminError {
    fn from(e: crate::ledger::LocationError) -> AdminError {
        AdminError::Location(Box::new(e))
    }
}

/// Maps a repository read error, naming what was read.
pub(crate) fn git<E: std::error::Error + Send + Sync + 'static>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> AdminError {
    move |e| AdminError::Git {
        what: what.to_string(),
        source: Box::new(e),
    }
}

/// The repository a command works on: `--repo`, else the one git says we are in. Run as
/// root, the process becomes the repository's owner here (`crate::owner`), before anything
/// is read or written.
pub fn find_repo(arg: Option<&Path>) -> Result<PathBuf, AdminError> {
    let start = arg.unwrap_or(Path::new("."));
    // Absolute first: gix resolves a relative `..` path against the repository it finds
    // around the current directory (`--repo ../deploy.git` from inside a clone failed).
    let absolute = start.canonicalize().map_err(|e| AdminError::Path {
        path: start.to_owned(),
        source: e,
    })?;
    let repo = gix::discover(&absolute).map_err(|e| AdminError::NotARepository {
        path: start.to_owned(),
        source: Box::new(e),
    })?;
    let dir = repo.git_dir().to_owned();
    let dir = dir.canonicalize().unwrap_or(dir);
    // Run as root, every command that touches the repository does so as its owner, so that
    // no file it writes (a SQLite -wal or -shm file included) locks the hooks out.
    // Said to a person at a terminal; from cron (root's crontab) a successful command stays
    // silent, since cron mails whatever a job prints.
    if let Some(line) = crate::owner::act_as_owner(&dir)?
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        eprintln!("tally: {line}");
    }
    // In a repository several accounts push to, what this command writes stays theirs too.
    crate::shared::adopt_umask(&dir);
    Ok(dir)
}

/// Whether `git_dir` holds a ledger store: a tally-guarded repository, as opposed to a
/// clone, which can at most hold the ledger as published at `refs/tally/ledger`.
pub fn has_store(git_dir: &Path) -> bool {
    let paths = Paths::new(git_dir);
    match crate::ledger::Location::of(&paths) {
        Ok(crate::ledger::Location::Sqlite(path)) => std::fs::symlink_metadata(path).is_ok(),
        // A shared ledger: the policy names it; opening it says whether it is there.
        Ok(crate::ledger::Location::Postgres { .. }) => true,
        // An unreadable policy in a guarded repository: opening says what is wrong.
        Err(_) => paths.dir.join(crate::config::POLICY_FILE).exists(),
    }
}

fn open_store(git_dir: &Path) -> Result<Store, AdminError> {
    Ok(crate::ledger::open_read_only(&Paths::new(git_dir))?)
}

fn hex(bytes: &Option<Vec<u8>>) -> String {
    bytes
        .as_ref()
        .map(|b| tally_ledger::hex::encode(b))
        .unwrap_or_default()
}

/// Writes the store's entries that `selection` picks, newest first, through `out` (the
/// caller finishes it). A closed pipe (`tally log | head`) ends the listing quietly.
pub fn log<W: Write>(
    git_dir: &Path,
    selection: &Selection,
    out: &mut LogWriter<W>,
) -> Result<(), AdminError> {
    let store = open_store(git_dir)?;
    let filter = Filter {
        refname: selection.refname.clone(),
        kind: selection.kind,
        before: None,
        limit: selection.limit,
    };
    let mut result = Ok(());
    store.log_each(&filter, |record| {
        match out.entry(&record.entry.view(), &record.leaf_hash) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
            Err(e) => {
                result = Err(AdminError::Output(e));
                false
            }
        }
    })?;
    result
}

/// The fingerprint of the key the ledger records it was created with.
fn created_key(store: &Store) -> String {
    tally_ledger::VerifyingKey::from_bytes(&store.public_key()).map_or_else(
        |_| "(an invalid key)".to_owned(),
        |k| tally_ledger::key::fingerprint(&k),
    )
}

/// Reads the ledger's verifier key: `--ledger-key` if given, else `tally/ledger_key.pub`.
/// A key that is not the one the ledger was created with is named, with that one, as the
/// problem (rather than every checkpoint failing with it).
fn verifier(
    git_dir: &Path,
    store: &Store,
    pinned: Option<&Path>,
) -> Result<Result<VerifierKey, String>, AdminError> {
    let path = pinned.map_or_else(|| Paths::new(git_dir).public_key(), Path::to_path_buf);
    let key = tally_ledger::key::load_public(&path)?;
    if key.to_bytes() != store.public_key() {
        let created = created_key(store);
        let what = if pinned.is_some() {
            "check that you pinned the key `tally ledger key` prints on the server, or find out who changed the ledger's key"
        } else {
            "restore it from a backup, or find out who changed the ledger's key"
        };
        return Ok(Err(format!(
            "{} is the key {}, but this ledger was created with the key {created}: its checkpoints cannot verify with it; {what}",
            path.display(),
            tally_ledger::key::fingerprint(&key),
        )));
    }
    Ok(Ok(VerifierKey::new(store.origin(), key)?))
}

/// Prints the ledger's public key as one OpenSSH line.
/// With `json`, an object with the OpenSSH line, the checkpoint origin, and the C2SP note
/// verifier key (`<origin>+<key id>+<key>`) that other note tools accept.
pub fn key(git_dir: &Path, json: bool, out: &mut impl Write) -> Result<(), AdminError> {
    let path = Paths::new(git_dir).public_key();
    let key = tally_ledger::key::load_public(&path)?;
    let store = open_store(git_dir)?;
    if store.public_key() != key.to_bytes() {
        return Err(AdminError::WrongPublicKey {
            path,
            found: tally_ledger::key::fingerprint(&key),
            created: created_key(&store),
        });
    }
    let line = tally_ledger::key::public_line(&key, store.origin());
    if json {
        let verifier = VerifierKey::new(store.origin(), key)?;
        let value = serde_json::json!({
            "openssh": line,
            "origin": store.origin(),
            "note_verifier_key": verifier.to_string(),
        });
        let _ = writeln!(out, "{value}");
    } else {
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

/// Signs a fresh checkpoint of the current head and publishes it: the freshness heartbeat.
/// A policy changed by hand since the last entry is recorded first (a `policy-change` entry),
/// so the checkpoint covers the policy in force; a policy that does not load is reported on
/// standard error and the heartbeat still beats (the hooks refuse every push meanwhile).
/// Returns the signed note.
pub fn checkpoint(git_dir: &Path) -> Result<tally_ledger::SignedCheckpoint, AdminError> {
    let paths = Paths::new(git_dir);
    let now = Timestamp::now();
    match crate::config::Policy::load(git_dir) {
        Ok(policy) => {
            let reasons = vec![format!(
                "{} (recorded by tally ledger checkpoint)",
                crate::record::POLICY_CHANGED
            )];
            let pusher = crate::pusher::Pusher::from_env();
            crate::record::record_policy_change(&paths, &policy, &pusher, reasons, now)?;
        }
        Err(e) => eprintln!("tally: warning: {e}"),
    }
    let (mut store, key) = crate::record::open(&paths)?;
    let note = store.checkpoint(now, &key)?;
    publish::publish(git_dir, &store, now)?;
    Ok(note)
}

/// Verifies the whole ledger, that each protected branch is where its latest accepted entry
/// says, and that `refs/tally/ledger` publishes exactly the store's entries.
pub fn verify(
    git_dir: &Path,
    pinned_key: Option<&Path>,
    err: &mut impl Write,
) -> Result<VerifyOutcome, AdminError> {
    let store = open_store(git_dir)?;
    let mut outcome = VerifyOutcome {
        source: "store".into(),
        ..VerifyOutcome::default()
    };
    let key = match verifier(git_dir, &store, pinned_key)? {
        Ok(key) => key,
        Err(problem) => {
            outcome.problems.push(problem);
            return Ok(outcome);
        }
    };
    outcome.key = key.fingerprint();
    let terminal = std::io::stderr().is_terminal();
    let report = store.verify(&key, |done, total| {
        if terminal {
            let _ = write!(err, "\rverifying the ledger: {done}/{total} entries");
        }
    });
    if terminal {
        let _ = writeln!(err);
    }
    let positions = match report {
        Ok(r) => {
            outcome.size = r.size;
            outcome.root = hex(&Some(r.root.to_vec()));
            outcome.checkpoints = r.checkpoints;
            r.positions
        }
        Err(e) => {
            outcome
                .problems
                .extend(e.into_problems().iter().map(ToString::to_string));
            return Ok(outcome);
        }
    };
    check_branches(git_dir, &positions, &mut outcome)?;
    check_publication(git_dir, &store, &mut outcome)?;
    outcome.ok = outcome.problems.is_empty();
    Ok(outcome)
}

/// Each protected branch must point where the ledger puts it (the verified entries'
/// positions, `tally_ledger::chain`: the latest accepted, baseline or adopted entry not
/// aborted); a protected branch the ledger knows must still exist.
fn check_branches(
    git_dir: &Path,
    positions: &std::collections::BTreeMap<String, tally_ledger::chain::Position>,
    outcome: &mut VerifyOutcome,
) -> Result<(), AdminError> {
    let config = crate::config::Policy::load(git_dir)?;
    let repo =
        gix::open_opts(git_dir, gix::open::Options::isolated()).map_err(git(git_dir.display()))?;
    let mut actual = std::collections::BTreeMap::new();
    // Every protected branch, inside GIT_NAMESPACEs too.
    for r in repo
        .references()
        .map_err(git("the refs"))?
        .all()
        .map_err(git("the refs"))?
    {
        let mut r = r.map_err(|e| AdminError::Git {
            what: "the refs".into(),
            source: Box::new(e),
        })?;
        let name = r.name().as_bstr().to_string();
        if config.is_protected(&name) {
            let id = r.peel_to_id().map_err(git(&name))?.detach();
            actual.insert(name, id);
        }
    }
    let id =
        |bytes: &[u8]| ObjectId::try_from(bytes).map_or_else(|_| "?".into(), |i| i.to_string());
    for (name, tip) in &actual {
        match positions.get(name).map(|p| (p, p.commit.as_deref())) {
            Some((_, Some(commit))) if commit == tip.as_bytes() => {}
            Some((at, Some(commit))) => outcome.problems.push(format!(
                "{name} points to {tip} but the ledger records it at {} (entry {}): the branch was moved outside tally; find out how, then put it back or re-baseline it with `tally ledger adopt --branch {}`",
                id(commit),
                at.seq,
                name.strip_prefix("refs/heads/").unwrap_or(name)
            )),
            _ => outcome.problems.push(format!(
                "{name} points to {tip} but no entry records it: the branch was created outside tally; re-baseline it with `tally ledger adopt --branch {}` if it is right",
                name.strip_prefix("refs/heads/").unwrap_or(name)
            )),
        }
    }
    for (name, at) in positions {
        if config.is_protected(name) && at.commit.is_some() && !actual.contains_key(name) {
            outcome.problems.push(format!(
                "{name} is recorded in the ledger but no longer exists: the branch was deleted outside tally"
            ));
        }
    }
    Ok(())
}

/// Walks the publication commits and compares every published entry with the store's bytes
/// and every published checkpoint with a stored one.
fn check_publication(
    git_dir: &Path,
    store: &Store,
    outcome: &mut VerifyOutcome,
) -> Result<(), AdminError> {
    let repo =
        gix::open_opts(git_dir, gix::open::Options::isolated()).map_err(git(git_dir.display()))?;
    let Some((tip, tip_range)) = publish::current(&repo)? else {
        outcome
            .notes
            .push(format!("{LEDGER_REF} does not exist yet; the next push or `tally ledger checkpoint` publishes it"));
        return Ok(());
    };
    let mut stored_notes = HashSet::new();
    store.for_each_checkpoint(|c| {
        stored_notes.insert(c.note.text().to_owned());
        Ok(())
    })?;
    let mut cursor = Some(tip);
    let mut expect_size = tip_range.size;
    while let Some(id) = cursor {
        let commit = repo.find_commit(id).map_err(git(id))?;
        let tree = commit.tree().map_err(git(id))?;
        let read = |name: &str| -> Result<Vec<u8>, AdminError> {
            let entry = tree
                .find_entry(name)
                .ok_or_else(|| AdminError::Publication {
                    commit: id,
                    problem: format!("lacks {name}"),
                })?;
            Ok(entry.object().map_err(git(id))?.data.clone())
        };
        let range = Range::parse(&read("range")?).ok_or_else(|| AdminError::Publication {
            commit: id,
            problem: "has a malformed range".into(),
        })?;
        if range.size != expect_size {
            outcome.problems.push(format!(
                "{LEDGER_REF}: publication {id} ends at {} but the next one starts at {expect_size}",
                range.size
            ));
            return Ok(());
        }
        let note = String::from_utf8(read("checkpoint")?).unwrap_or_default();
        if !stored_notes.contains(&note) {
            outcome.problems.push(format!(
                "{LEDGER_REF}: publication {id} carries a checkpoint the store never signed"
            ));
        }
        let blob = read("entries")?;
        let mut published = Vec::new();
        if let Err(e) = read_entries(&blob, range, |_, bytes| published.push(bytes.to_vec())) {
            outcome
                .problems
                .push(format!("{LEDGER_REF}: publication {id} {e}"));
            return Ok(());
        }
        let mut mismatch = None;
        store.raw_entries(range.first..range.size, |seq, bytes| {
            let i = (seq - range.first) as usize;
            if mismatch.is_none() && published.get(i).is_none_or(|p| *p != bytes) {
                mismatch = Some(seq);
            }
        })?;
        if let Some(seq) = mismatch {
            outcome.problems.push(format!(
                "{LEDGER_REF}: entry #{seq} as published in {id} differs from the store"
            ));
        }
        expect_size = range.first;
        cursor = commit.parent_ids().next().map(|p| p.detach());
        if cursor.is_none() && range.first != 0 {
            outcome.problems.push(format!(
                "{LEDGER_REF}: the first publication starts at entry {} instead of 0",
                range.first
            ));
        }
    }
    let head = store.head()?;
    if tip_range.size < head.size {
        outcome.notes.push(format!(
            "{LEDGER_REF} publishes {} of {}; the next push or `tally ledger checkpoint` catches up",
            tip_range.size,
            count(head.size, "entry", "entries")
        ));
    }
    Ok(())
}

/// Where `tally ledger migrate` moves a ledger.
#[derive(Debug, Clone)]
pub enum MigrateTo {
    /// SQLite in the repository (`--to sqlite`).
    Sqlite,
    /// A PostgreSQL database.
    Postgres(crate::config::LedgerSection),
}

/// Moves the repository's ledger to another backend without changing a byte of any entry
/// or checkpoint (issue 15): copies it under its write lock (pushes wait, then are refused
/// as busy), points `policy.toml`'s `[ledger]` table at the copy before releasing the lock,
/// and verifies the copy. The old ledger is left where it was, unchanged, for the
/// administrator to archive. Returns the report lines.
pub fn migrate(git_dir: &Path, to: &MigrateTo) -> Result<Vec<String>, AdminError> {
    use crate::ledger::Location;
    let paths = Paths::new(git_dir);
    let from = Location::of(&paths)?;
    let policy_path = paths.dir.join(crate::config::POLICY_FILE);
    let to_target = match to {
        MigrateTo::Sqlite => None,
        MigrateTo::Postgres(section) => {
            Some(crate::ledger::target(&policy_path, &paths.dir, section)?)
        }
    };
    let destination_text = match &to_target {
        None => paths.ledger().display().to_string(),
        Some(target) => target.display(),
    };
    match (&from, &to_target) {
        (Location::Sqlite(_), None) => {
            return Err(AdminError::Migrate(format!(
                "the ledger is already in SQLite at {destination_text}"
            )));
        }
        (Location::Postgres { target, .. }, Some(to)) if to.display() == target.display() => {
            return Err(AdminError::Migrate(format!(
                "the ledger is already in {destination_text}"
            )));
        }
        _ => {}
    }
    let mut store = from.open(&tally_ledger::Options::default())?;
    let before = store.head()?;
    let options = tally_ledger::Options::default();
    let sqlite_path = paths.ledger();
    let destination = match &to_target {
        None => {
            let path = &sqlite_path;
            if path.exists() {
                return Err(AdminError::Migrate(format!(
                    "{} exists already (an older ledger?); move it aside first",
                    path.display()
                )));
            }
            tally_ledger::Destination::Sqlite(path)
        }
        Some(target) => {
            tally_ledger::Destination::Postgres(Box::new(crate::ledger::connect(target, &options)?))
        }
    };
    let section = match to {
        MigrateTo::Sqlite => None,
        MigrateTo::Postgres(section) => Some(section.clone()),
    };
    let switch = |_: &Store| -> Result<(), String> {
        let text =
            std::fs::read(&policy_path).map_err(|e| format!("{}: {e}", policy_path.display()))?;
        let edited = crate::config::with_ledger_section(&policy_path, &text, section.as_ref())
            .map_err(|e| e.to_string())?;
        let temp = paths.dir.join(".policy.toml.migrate");
        std::fs::write(&temp, edited.as_bytes())
            .and_then(|()| {
                std::fs::set_permissions(&temp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            })
            .and_then(|()| std::fs::File::open(&temp)?.sync_all())
            .and_then(|()| std::fs::rename(&temp, &policy_path))
            .and_then(|()| std::fs::File::open(&paths.dir)?.sync_all())
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                format!("{}: {e}", policy_path.display())
            })
    };
    let copy = store.migrate(destination, &options, switch)?;
    crate::shared::adopt_umask(git_dir);
    let key = verifier(git_dir, &copy, None)?.map_err(|p| AdminError::Migrate(p.to_string()))?;
    let report = copy.verify(&key, |_, _| {}).map_err(|e| {
        AdminError::Migrate(format!(
            "the copy at {destination_text} does not verify: {e}; policy.toml now points at it; run `tally ledger verify`"
        ))
    })?;
    // The same entries, so the publication is current already; this only confirms it.
    publish::publish(git_dir, &copy, Timestamp::now())?;
    Ok(vec![
        format!("ledger moved: {} to {}", from.display(), copy.location()),
        format!(
            "  {} and {}, not a byte changed: root {} at size {} (was {})",
            count(report.size, "entry", "entries"),
            count(report.checkpoints, "checkpoint", "checkpoints"),
            tally_ledger::hex::encode(&report.root),
            report.size,
            before.size
        ),
        format!(
            "  {} now names it; the old ledger at {} is unchanged: archive it, do not write to it",
            policy_path.display(),
            from.display()
        ),
        "  the next push or `tally ledger checkpoint` records the changed policy.toml (a policy-change entry); give every other node the new policy.toml".to_owned(),
    ])
}
