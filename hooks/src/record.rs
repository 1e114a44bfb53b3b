//! Where the hooks meet the ledger: the files under `<repo>/tally/`, verdicts handed from
//! `pre-receive` to `reference-transaction`, and the entries each step appends.
//!
//! Git runs `pre-receive` before the ref transaction and in parallel for concurrent pushes,
//! and a ref update can still fail after `pre-receive` accepted it. So `pre-receive` only
//! leaves its verdict in `pending/`; the append happens in `reference-transaction prepared`,
//! where git holds the ref locks (so the ledger's order is the branch's order), and only for
//! updates that match a verdict. `aborted` appends an `aborted` entry for what `prepared`
//! appended, so no entry claims a move that never happened.

use std::io::Write;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tally_ledger::{CommitSigner, Kind, NewEntry, SigningKey, Store, StoreError};
use tally_verify::revision::{Update, Verdict, Violation};

use crate::config::{Policy, TALLY_DIR};
use crate::pusher::Pusher;

/// A verdict older than this is not honoured: the ref update follows its pre-receive within
/// seconds. (The binding to the receiving process, [`Receiver`], is what ties a verdict to
/// its push; this only bounds how long a push's leftovers can lie around.)
pub const PENDING_TTL_SECONDS: i64 = 600;

/// The `git receive-pack` process a hook runs under, by pid and start time (so a reused pid
/// is another process): a verdict is usable only by the ref update of the push that produced
/// it. pre-receive cannot know whether a later hook (gitolite's `update`, the platform's own
/// checks) refuses the push; bound like this, a verdict left by a refused push cannot be used
/// by a `git update-ref` afterwards, which runs under no receive-pack.
///
/// Found by walking up from the hook's parent (a platform may put its own process between:
/// Gitea's `gitea hook`, a shell wrapper) to the nearest process whose command line is git's
/// receive-pack. Linux only (`/proc`); elsewhere there is no binding and the time to live
/// applies alone.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receiver {
    pid: u32,
    start: u64,
}

impl Receiver {
    /// The receive-pack process above this one, if any.
    pub fn current() -> Option<Receiver> {
        let mut pid = std::os::unix::process::parent_id();
        for _ in 0..8 {
            if pid <= 1 {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which is in parentheses and may hold anything.
            let fields: Vec<&str> = stat
                .get(stat.rfind(')')? + 1..)?
                .split_whitespace()
                .collect();
            let is_receive_pack = cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == b"receive-pack" || arg.ends_with(b"git-receive-pack"));
            if is_receive_pack {
                // stat(5): field 22, starttime; fields[0] is field 3.
                let start = fields.get(19)?.parse().ok()?;
                return Some(Receiver { pid, start });
            }
            pid = fields.get(1)?.parse().ok()?;
        }
        None
    }
}

/// The paths of tally's files in one repository.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `<git_dir>/tally`.
    pub dir: PathBuf,
}

impl Paths {
    /// Paths for the repository at `git_dir`.
    pub fn new(git_dir: &Path) -> Paths {
        Paths {
            dir: git_dir.join(TALLY_DIR),
        }
    }
    /// The SQLite ledger.
    pub fn ledger(&self) -> PathBuf {
        self.dir.join("ledger.sqlite")
    }
    /// The ledger's private key (OpenSSH format, mode 0600); the public key is beside it.
    pub fn key(&self) -> PathBuf {
        self.dir.join("ledger_key")
    }
    /// The public half of the ledger key.
    pub fn public_key(&self) -> PathBuf {
        tally_ledger::key::public_path(&self.key())
    }
    /// Loads the ledger key, group-readable where the repository is shared
    /// ([`crate::shared`]).
    pub fn load_key(&self) -> Result<SigningKey, tally_ledger::key::KeyError> {
        let readers = match crate::shared::Sharing::of_tally_dir(&self.dir) {
            crate::shared::Sharing::Private => tally_ledger::key::Readers::Owner,
            crate::shared::Sharing::Shared { .. } => tally_ledger::key::Readers::Group,
        };
        tally_ledger::key::load_signing_as(&self.key(), readers)
    }
    fn pending(&self) -> PathBuf {
        self.dir.join("pending")
    }
    fn inflight(&self) -> PathBuf {
        self.dir.join("inflight")
    }
}

/// Why the ledger side of a hook failed; the hook refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger's location cannot be known or reached.
    #[error(transparent)]
    Location(Box<crate::ledger::LocationError>),
    /// The ledger key cannot be used.
    #[error("ledger key: {0}")]
    Key(#[from] tally_ledger::KeyError),
    /// A verdict or in-flight file cannot be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A verdict file does not parse.
    #[error("{path}: corrupt verdict file ({message})")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl From<crate::ledger::LocationError> for RecordError {
    fn from(e: crate::ledger::LocationError) -> RecordError {
        RecordError::Location(Box::new(e))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The verdict pre-receive leaves for the ref transaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Pending {
    refname: String,
    old: Option<String>,
    new: Option<String>,
    new_tree: Option<String>,
    commits: Vec<PendingCommit>,
    pusher: String,
    policy_digest: String,
    created: i64,
    /// The push's receive-pack, where one could be found.
    #[serde(default)]
    receiver: Option<Receiver>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PendingCommit {
    commit: String,
    principal: String,
    fingerprint: String,
}

/// The file name for an update: the same update always maps to the same name.
fn update_key(refname: &str, old: Option<ObjectId>, new: Option<ObjectId>) -> String {
    let mut h = Sha256::new();
    h.update(refname.as_bytes());
    h.update([0]);
    h.update(old.map(|o| o.to_string()).unwrap_or_default());
    h.update([0]);
    h.update(new.map(|o| o.to_string()).unwrap_or_default());
    tally_ledger::hex::encode(&h.finalize())
}

fn raw(id: Option<ObjectId>) -> Option<Vec<u8>> {
    id.map(|i| i.as_bytes().to_vec())
}

fn from_hex(s: &Option<String>, path: &Path) -> Result<Option<Vec<u8>>, RecordError> {
    s.as_ref()
        .map(|h| {
            ObjectId::from_hex(h.as_bytes())
                .map(|i| i.as_bytes().to_vec())
                .map_err(|e| RecordError::Corrupt {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
        })
        .transpose()
}

/// Writes a file atomically: temporary name, then rename, so a reader sees all or nothing.
///
/// Not fsynced: these files only carry a verdict a few milliseconds from one hook to the
/// next. Losing one to a power cut fails closed (the move is refused, or verify reports the
/// missing `aborted` entry); the ledger itself is what is made durable.
///
/// Not `tempfile::NamedTempFile::persist` either, unlike tally's other atomic writes: tempfile
/// creates its files 0600 whatever the umask, and in a group-shared repository these files
/// must take the mode `shared::adopt_umask` set, like every file git writes there, so that
/// every member's hooks can read and replace them.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(io(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io(path)));
    if written.is_err() {
        // A full disk must not leave half a file behind under the temporary name.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Leaves accepted verdicts for `reference-transaction prepared`.
pub fn leave_verdicts(
    paths: &Paths,
    verdicts: &[Verdict],
    pusher: &Pusher,
    config: &Policy,
    now: Timestamp,
) -> Result<(), RecordError> {
    let dir = paths.pending();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    sweep_stale(&dir);
    for v in verdicts {
        let u = v.update();
        let pending = Pending {
            refname: u.refname.clone(),
            old: u.old.map(|o| o.to_string()),
            new: u.new.map(|o| o.to_string()),
            new_tree: v.new_tree().map(|t| t.to_string()),
            commits: v
                .commits()
                .iter()
                .map(|c| PendingCommit {
                    commit: c.id().to_string(),
                    principal: c.signer().principal().to_owned(),
                    fingerprint: c.signer().fingerprint().to_owned(),
                })
                .collect(),
            pusher: pusher.to_string(),
            policy_digest: config.digest_hex(),
            created: now.as_second(),
            receiver: Receiver::current(),
        };
        let bytes = serde_json::to_vec(&pending).map_err(|e| RecordError::Corrupt {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        write_atomic(&dir.join(update_key(&u.refname, u.old, u.new)), &bytes)?;
    }
    Ok(())
}

/// Removes verdicts older than their time to live: a push whose ref update failed before
/// `prepared` (another push won the ref lock) leaves its verdict behind, and nothing else
/// would ever remove it.
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ttl = std::time::Duration::from_secs(PENDING_TTL_SECONDS.unsigned_abs());
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ttl);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Takes the verdict for an update, if pre-receive left one that is still fresh and, with
/// `bound`, was left under the same receive-pack as this hook runs under.
fn take_verdict(
    paths: &Paths,
    update: &Update,
    now: Timestamp,
    bound: bool,
) -> Result<Option<Pending>, RecordError> {
    let path = paths
        .pending()
        .join(update_key(&update.refname, update.old, update.new));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let pending: Pending = serde_json::from_slice(&bytes).map_err(|e| RecordError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let matches = pending.refname == update.refname
        && pending.old == update.old.map(|o| o.to_string())
        && pending.new == update.new.map(|o| o.to_string());
    let fresh = now.as_second().saturating_sub(pending.created) <= PENDING_TTL_SECONDS
        && pending.created <= now.as_second() + 60;
    let same_push = !bound || pending.receiver.is_none() || pending.receiver == Receiver::current();
    Ok((matches && fresh && same_push).then_some(pending))
}

fn remove_verdict(paths: &Paths, update: &Update) {
    let path = paths
        .pending()
        .join(update_key(&update.refname, update.old, update.new));
    let _ = std::fs::remove_file(path);
}

/// The continuity rule (`tally_ledger::chain`): a protected ref moves only from where the
/// ledger last recorded it. A ref that moved outside tally (hooks deleted for a while, a
/// restore) would otherwise be adopted silently by the next push. `pre-receive` refuses such
/// a push with this violation, and `prepared` refuses the ref update.
///
/// A young in-flight marker for exactly the move from the ref's value to the recorded one
/// means another push holds the ref and is moving it right now: that is a race for the ref,
/// not a move outside tally, and the refusal says so. (Markers of transactions whose git died
/// are settled by [`reconcile`] first.) Likewise, with a shared ledger, a ref at an earlier
/// accepted commit than the recorded one is a replica that has not caught up yet.
pub fn off_ledger(
    paths: &Paths,
    store: &Store,
    update: &Update,
) -> Result<Option<Violation>, RecordError> {
    let at = store.position(&update.refname)?;
    let recorded = at
        .as_ref()
        .and_then(|p| p.commit.as_deref())
        .map(ObjectId::try_from)
        .transpose()
        .map_err(|e| RecordError::Corrupt {
            path: store.location(),
            message: format!(
                "the ledger records a malformed object id for {}: {e}",
                update.refname
            ),
        })?;
    if recorded == update.old {
        return Ok(None);
    }
    let racing = Update {
        refname: update.refname.clone(),
        old: update.old,
        new: recorded,
    };
    if racing_marker(paths, store, &racing)? {
        return Ok(Some(Violation {
            refname: update.refname.clone(),
            commit: None,
            path: None,
            problem: tally_verify::revision::Problem::Concurrent,
        }));
    }
    // On a shared ledger, a ref at an earlier accepted commit than the recorded one is a
    // replica that has not caught up yet (the move `catch_up` lets through), not a move
    // outside tally: telling an administrator to re-baseline it there would record a rollback.
    // Unless the recording node's marker of that move is still there: then its transaction may
    // never have completed, and no replica may ever hold the recorded commit.
    if let (Some(recorded), Some(at)) = (recorded, &at)
        && catch_up(paths, store, &racing)?
        && !has_marker(paths, store, &racing)?
    {
        return Ok(Some(Violation {
            refname: update.refname.clone(),
            commit: None,
            path: None,
            problem: tally_verify::revision::Problem::Behind {
                recorded,
                seq: at.seq,
            },
        }));
    }
    Ok(Some(Violation {
        refname: update.refname.clone(),
        commit: None,
        path: None,
        problem: tally_verify::revision::Problem::OffLedger {
            recorded,
            seq: at.map(|p| p.seq),
            actual: update.old,
        },
    }))
}

/// Opens the ledger and its key for appending.
pub fn open(paths: &Paths) -> Result<(Store, SigningKey), RecordError> {
    let key = paths.load_key()?;
    let store = crate::ledger::Location::with_key(paths, &key.verifying_key())?
        .open(&tally_ledger::Options::default())?;
    Ok((store, key))
}

/// [`open`] for a caller that loaded the policy already (the hooks): `policy.toml` is not
/// read again.
pub fn open_for(paths: &Paths, config: &Policy) -> Result<(Store, SigningKey), RecordError> {
    let key = paths.load_key()?;
    let store = crate::ledger::Location::from_policy(paths, config, Some(&key.verifying_key()))?
        .open(&tally_ledger::Options::default())?;
    Ok((store, key))
}

/// Whether `u` is a replica catching up (issue 15): with a shared ledger, a protected ref
/// moving to exactly the commit the ledger's latest entry for it says (an accepted or
/// adopted move another node recorded), from a commit an earlier, uncancelled entry set it
/// to (an accepted or adopted move, or the baseline `tally init` recorded), or from nothing.
/// Such a move is replication, not a move outside tally: it is let through without being
/// recorded again. Every other move without a verdict is refused as before.
///
/// The rows alone are not trusted for this: both entries must be in the ledger as this
/// node's own ledger key signed it (`in_signed_ledger`), so that write access to the
/// database is not enough to move a branch past the commit checks.
pub fn catch_up(paths: &Paths, store: &Store, u: &Update) -> Result<bool, RecordError> {
    if !store.is_shared() || u.new.is_none() {
        return Ok(false);
    }
    let Some(at) = store.position(&u.refname)? else {
        return Ok(false);
    };
    if at.commit != raw(u.new) || !matches!(at.kind, Kind::Accepted | Kind::Adopted) {
        return Ok(false);
    }
    let Some(old) = raw(u.old) else {
        return in_signed_ledger(paths, store, &[(at.seq, at.commit.as_deref())]);
    };
    // Newest first: an `aborted` entry comes before the entry it cancels.
    let mut cancelled = std::collections::HashSet::new();
    let mut earlier = None;
    store.log_each(
        &tally_ledger::Filter {
            refname: Some(u.refname.clone()),
            before: Some(at.seq),
            ..Default::default()
        },
        |record| {
            let e = &record.entry;
            match e.kind {
                Kind::Aborted => {
                    cancelled.extend(e.aborts);
                }
                Kind::Accepted | Kind::Adopted | Kind::PolicyChange
                    if !cancelled.contains(&e.seq) && e.new.as_deref() == Some(&old[..]) =>
                {
                    earlier = Some(e.seq);
                    return false;
                }
                _ => {}
            }
            true
        },
    )?;
    let Some(earlier) = earlier else {
        return Ok(false);
    };
    in_signed_ledger(
        paths,
        store,
        &[(at.seq, at.commit.as_deref()), (earlier, Some(&old[..]))],
    )
}

/// Whether each `(seq, commit)` is an entry of the ledger as this node's own ledger key
/// signed it: the entry's stored bytes (checked against their leaf hash and seq) set the
/// branch to `commit`, and an inclusion proof ties their leaf hash to the latest checkpoint,
/// whose signature is checked with `tally/ledger_key.pub`, not with the key the database
/// records. Anything that does not prove so is `false`: the move is then refused as any move
/// without a verdict.
fn in_signed_ledger(
    paths: &Paths,
    store: &Store,
    entries: &[(u64, Option<&[u8]>)],
) -> Result<bool, RecordError> {
    let public = tally_ledger::key::load_public(&paths.public_key())?;
    let Ok(key) = tally_ledger::VerifierKey::new(store.origin(), public) else {
        return Ok(false);
    };
    let Ok(signed) = store.latest_checkpoint()?.note.verify(&key) else {
        return Ok(false);
    };
    let (size, root) = (signed.size(), *signed.root());
    for &(seq, commit) in entries {
        if seq >= size {
            return Ok(false);
        }
        let Some(record) = store.entry(seq)? else {
            return Ok(false);
        };
        if record.entry.new.as_deref() != commit {
            return Ok(false);
        }
        let proof = store.inclusion_proof(seq, size)?;
        if tally_ledger::merkle::verify_inclusion(&record.leaf_hash, seq, size, &proof, &root)
            .is_err()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The node a marker of a shared ledger belongs to: this replica's random id
/// (`tally/node-id`, made by `tally init`, never copied between nodes: Gitaly keeps replicas
/// at the same path on hosts that may share a name), then the host and the repository path,
/// for people reading the rows.
fn node(paths: &Paths) -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    let repo = paths.dir.parent().unwrap_or(&paths.dir);
    match crate::ledger::node_id(paths) {
        Some(id) => format!("{id} {host}:{}", repo.display()),
        None => format!("{host}:{}", repo.display()),
    }
}

/// Whether this node left an in-flight marker of `u`: a file, or a row of the shared ledger
/// that this node wrote. Another node's marker of the same move (the same commit pushed to
/// two replicas at once) stands for that node's entry, which may well have landed there: an
/// `aborted` here must not cancel it.
fn has_marker(paths: &Paths, store: &Store, u: &Update) -> Result<bool, RecordError> {
    if store.is_shared() {
        return Ok(store
            .marker(&update_key(&u.refname, u.old, u.new))?
            .is_some_and(|m| m.node == node(paths)));
    }
    Ok(marker_path(paths, u).exists())
}

/// Whether a push in progress holds `u` (see [`off_ledger`]): its marker exists and, in a
/// shared ledger, is this node's or younger than [`FOREIGN_MARKER_SECONDS`].
fn racing_marker(paths: &Paths, store: &Store, u: &Update) -> Result<bool, RecordError> {
    if !store.is_shared() {
        return Ok(marker_path(paths, u).exists());
    }
    let Some(marker) = store.marker(&update_key(&u.refname, u.old, u.new))? else {
        return Ok(false);
    };
    let young = parse_marker(&marker.text).is_some_and(|(_, created)| {
        Timestamp::now().as_second().saturating_sub(created) < FOREIGN_MARKER_SECONDS
    });
    Ok(marker.node == node(paths) || young)
}

/// Removes the in-flight marker of `u`, if any.
fn remove_marker(paths: &Paths, store: &Store, u: &Update) -> Result<(), RecordError> {
    if store.is_shared() {
        store.remove_marker(&update_key(&u.refname, u.old, u.new))?;
    } else {
        let _ = std::fs::remove_file(marker_path(paths, u));
    }
    Ok(())
}

/// The reason a `policy-change` entry gives when nothing more precise is known: the files
/// were changed by other means than tally and the next append noticed.
pub const POLICY_CHANGED: &str = "policy.toml, allowed_signers or the revocation file changed";

/// Whether the policy in force differs from the one the store's last entry records (an empty
/// ledger records none).
pub fn policy_unrecorded(store: &Store, config: &Policy) -> Result<bool, RecordError> {
    let last = store.log(&tally_ledger::Filter {
        limit: Some(1),
        ..Default::default()
    })?;
    Ok(last
        .first()
        .is_none_or(|r| r.entry.policy_digest != config.digest))
}

/// A `policy change` entry when the policy differs from the one the last entry recorded.
pub fn policy_change(
    store: &Store,
    config: &Policy,
    pusher: &Pusher,
    reasons: Vec<String>,
) -> Result<Option<NewEntry>, RecordError> {
    let changed = policy_unrecorded(store, config)?;
    Ok(changed.then(|| entry_about(Kind::PolicyChange, None, pusher, config, reasons)))
}

/// Records a change of policy, signers or revocation file at once: appends a `policy-change`
/// entry with `reasons` if the policy in force differs from the one the last entry records,
/// and returns its seq (`None`: already recorded, nothing appended). The caller publishes.
///
/// Every entry carries the digest of the policy in force, so without this a change would
/// stay unrecorded until the next push, and an export made in between would ship a policy
/// no entry carries. `tally init` appends the same entry ([`policy_change`]) for the changes
/// it makes, and the hooks for the changes they find.
pub fn record_policy_change(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    reasons: Vec<String>,
    now: Timestamp,
) -> Result<Option<u64>, RecordError> {
    let (mut store, key) = open_for(paths, config)?;
    let Some(entry) = policy_change(&store, config, pusher, reasons)? else {
        return Ok(None);
    };
    let outcome = store.append(vec![entry], now, &key)?;
    Ok(Some(outcome.first_seq))
}

/// An entry of `kind` about `update` (or about no ref), without commits: the shape of every
/// entry but `accepted`.
pub(crate) fn entry_about(
    kind: Kind,
    update: Option<&Update>,
    pusher: &Pusher,
    config: &Policy,
    reasons: Vec<String>,
) -> NewEntry {
    NewEntry {
        kind,
        refname: update.map(|u| u.refname.clone()).unwrap_or_default(),
        old: update.and_then(|u| raw(u.old)),
        new: update.and_then(|u| raw(u.new)),
        new_tree: None,
        commits: Vec::new(),
        pusher: pusher.to_string(),
        policy_digest: config.digest,
        reasons,
        aborts: None,
    }
}

/// Most refused refs one refusal records as entries of their own; the rest are counted in
/// the last one.
pub const MAX_REFUSED_REFS: usize = 8;
/// Most reasons one refusal records, over all its entries.
pub const MAX_REFUSAL_REASONS: usize = 16;
/// Longest reason, and longest ref name, recorded (bytes, cut at a character boundary).
pub const MAX_REASON_LEN: usize = 240;

/// Appends `rejected` entries for a refused push or ref update: one per refused ref, bounded
/// (see [`bounded_refusal`]) so that every refusal is recorded and none can grow the ledger by
/// more than a few KiB.
pub fn append_rejected(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    refused: &[(Update, Vec<String>)],
    now: Timestamp,
) -> Result<u64, RecordError> {
    let (mut store, key) = open_for(paths, config)?;
    let mut entries: Vec<NewEntry> =
        policy_change(&store, config, pusher, vec![POLICY_CHANGED.into()])?
            .into_iter()
            .collect();
    for (u, reasons) in bounded_refusal(refused) {
        entries.push(entry_about(
            Kind::Rejected,
            Some(&u),
            pusher,
            config,
            reasons,
        ));
    }
    let outcome = store.append(entries, now, &key)?;
    Ok(outcome.size)
}

/// Bounds what a refusal puts into the ledger (issue 10, class 6): a pusher with no key
/// must not be able to append megabytes that stay forever, and a refusal too big to encode
/// must still be recorded.
///
/// At most [`MAX_REFUSED_REFS`] entries: past that, the last entry records how many more
/// refs were refused. At most [`MAX_REFUSAL_REASONS`] reasons over all entries (each entry
/// keeps at least its first), each cut to [`MAX_REASON_LEN`] bytes, as are ref names. An
/// entry that lost anything ends with one more reason: how many reasons there were in all and
/// the SHA-256 of the full list (each reason's UTF-8 bytes followed by a newline), so the
/// record still commits to exactly what the pusher was told.
pub fn bounded_refusal(refused: &[(Update, Vec<String>)]) -> Vec<(Update, Vec<String>)> {
    let mut groups: Vec<(Update, Vec<String>, Option<String>)> = refused
        .iter()
        .map(|(u, r)| (u.clone(), r.clone(), None))
        .collect();
    if groups.len() > MAX_REFUSED_REFS {
        let rest = groups.split_off(MAX_REFUSED_REFS - 1);
        let note = format!(
            "{} refs refused in this push are recorded in this one entry",
            rest.len()
        );
        let reasons = rest
            .iter()
            .flat_map(|(u, r, _)| r.iter().map(|reason| format!("{}: {reason}", u.refname)))
            .collect();
        let first = rest[0].0.clone();
        groups.push((first, reasons, Some(note)));
    }
    let per_entry = (MAX_REFUSAL_REASONS / groups.len().max(1)).max(1);
    groups
        .into_iter()
        .map(|(mut u, reasons, note)| {
            let mut kept: Vec<String> = note.into_iter().collect();
            let mut lost = reasons.len() > per_entry;
            if u.refname.len() > MAX_REASON_LEN {
                kept.push(format!(
                    "ref name of {} bytes, recorded cut to {MAX_REASON_LEN}",
                    u.refname.len()
                ));
                u.refname = cut(&u.refname, MAX_REASON_LEN).to_owned();
                lost = true;
            }
            for reason in reasons.iter().take(per_entry) {
                let short = cut(reason, MAX_REASON_LEN);
                lost |= short.len() < reason.len();
                kept.push(short.to_owned());
            }
            if lost {
                let mut h = Sha256::new();
                for reason in &reasons {
                    h.update(reason.as_bytes());
                    h.update(b"\n");
                }
                let digest = tally_ledger::hex::encode(&h.finalize());
                kept.push(format!(
                    "{} reason{} in all, cut to fit the ledger; sha256 of the full list: {digest}",
                    reasons.len(),
                    if reasons.len() == 1 { "" } else { "s" }
                ));
            }
            (u, kept)
        })
        .collect()
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The outcome of `prepared`.
pub enum Prepared {
    /// Every protected update matched a verdict; their entries are appended (the store is
    /// handed back for publication, when anything was appended).
    Recorded(Option<Box<Store>>),
    /// Some update did not come through an accepted push; reasons per update.
    Refused(Vec<(Update, String)>),
}

/// Why a protected ref update that no verdict of its push covers is refused.
fn no_verdict(u: &Update) -> String {
    format!(
        "{} moved outside an accepted push (no pre-receive verdict for {} -> {})",
        u.refname,
        u.old.map_or_else(
            || "(no expected old value)".to_owned(),
            |o| o.to_hex_with_len(10).to_string()
        ),
        short(u.new)
    )
}

/// The `update` hook, which git runs for each ref of a push after `pre-receive` and the
/// platform's own hooks, just before the ref transaction: the same rules as `prepared`
/// ([`crate::refs::judge`], a verdict of this push for exactly this update, a ledger and key
/// this account can use), applied where git still relays the hook's words to the pusher. A refusal in
/// `prepared` makes git die mid-push (`fatal: ref updates aborted by hook`), with the hook's
/// output on receive-pack's raw stderr, lost over HTTP; a refusal here is an ordinary
/// `remote:` message and `[remote rejected] (hook declined)`. `prepared` still applies every
/// rule: this only moves the refusals it can foresee to where the pusher sees them.
///
/// Returns the reasons to refuse, after recording them as a `rejected` entry; empty to let
/// the update through.
pub fn update_hook(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    update: &Update,
    now: Timestamp,
) -> Result<Vec<String>, RecordError> {
    let mut reasons = Vec::new();
    if let Some(problem) = crate::refs::judge(config, update) {
        let violation = Violation {
            refname: update.refname.clone(),
            commit: None,
            path: None,
            problem,
        };
        reasons.push(violation.to_string());
    } else if config.is_protected(&update.refname) {
        if take_verdict(paths, update, now, true)?.is_none() {
            let shared = config.file.ledger.is_some();
            if !shared || !catch_up(paths, &crate::ledger::open_for(paths, config)?, update)? {
                reasons.push(no_verdict(update));
            }
        } else {
            // What `prepared` will need, where a failure would reach the pusher only as a
            // dead connection: a key it can read, a ledger and a directory (for SQLite's
            // files) it can write. Checked by permission only: opening the ledger here would
            // cost every push about a millisecond (pre-receive opened it, and checked the
            // ledger's position of the branch, moments ago).
            use nix::unistd::{AccessFlags, access};
            let mut needed = vec![(paths.key(), AccessFlags::R_OK)];
            // A shared ledger is in the database: pre-receive reached it moments ago.
            if config.file.ledger.is_none() {
                needed.push((paths.ledger(), AccessFlags::R_OK | AccessFlags::W_OK));
                needed.push((paths.dir.clone(), AccessFlags::W_OK | AccessFlags::X_OK));
            }
            for (path, how) in needed {
                access(&path, how).map_err(|e| RecordError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::from(e),
                })?;
            }
        }
    }
    if !reasons.is_empty() {
        append_rejected(
            paths,
            config,
            pusher,
            &[(update.clone(), reasons.clone())],
            now,
        )?;
    }
    Ok(reasons)
}

/// `reference-transaction prepared`: refuses protected ref moves without a verdict, and
/// appends the accepted entries (plus a policy change if any) in one transaction.
///
/// `opened` is the ledger and key if the caller opened them already (a shared ledger, for
/// [`reconcile`]).
pub fn prepared(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    updates: &[Update],
    now: Timestamp,
    opened: Option<(Store, SigningKey)>,
) -> Result<Prepared, RecordError> {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut unjudged = Vec::new();
    for u in updates {
        if let Some(problem) = crate::refs::judge(config, u) {
            let violation = Violation {
                refname: u.refname.clone(),
                commit: None,
                path: None,
                problem,
            };
            refused.push((u.clone(), violation.to_string()));
            continue;
        }
        if !config.is_protected(&u.refname) {
            // A name the ref rules look at, being deleted: allowed.
            continue;
        }
        match take_verdict(paths, u, now, true)? {
            Some(p) => accepted.push((u.clone(), p)),
            None => unjudged.push(u),
        }
    }
    // One open of the ledger serves the catch-up and continuity checks and the append.
    let mut ledger = opened;
    let mut caught_up = false;
    if !unjudged.is_empty() {
        if ledger.is_none() {
            ledger = Some(open_for(paths, config)?);
        }
        for u in unjudged {
            match &ledger {
                Some((store, _)) if catch_up(paths, store, u)? => caught_up = true,
                _ => refused.push((u.clone(), no_verdict(u))),
            }
        }
    }
    if !accepted.is_empty() && ledger.is_none() {
        ledger = Some(open_for(paths, config)?);
    }
    if let (false, Some((store, _))) = (accepted.is_empty(), &ledger) {
        let mut kept = Vec::with_capacity(accepted.len());
        for (u, p) in accepted {
            match off_ledger(paths, store, &u)? {
                Some(gap) => refused.push((u, gap.to_string())),
                None => kept.push((u, p)),
            }
        }
        accepted = kept;
    }
    if !refused.is_empty() {
        let rejected: Vec<(Update, Vec<String>)> = refused
            .iter()
            .map(|(u, r)| (u.clone(), vec![r.clone()]))
            .collect();
        append_rejected(paths, config, pusher, &rejected, now)?;
        return Ok(Prepared::Refused(refused));
    }
    if accepted.is_empty() && caught_up {
        // Nothing to record; the caller publishes, so that this replica serves the entries
        // of the commits it now holds.
        return Ok(Prepared::Recorded(ledger.map(|(store, _)| Box::new(store))));
    }
    let Some(opened) = ledger.filter(|_| !accepted.is_empty()) else {
        return Ok(Prepared::Recorded(None));
    };
    let store = append_accepted(paths, opened, config, pusher, &accepted, now, true)?;
    Ok(Prepared::Recorded(Some(Box::new(store))))
}

/// Appends `accepted` entries for updates with their verdicts (plus a policy change if the
/// policy differs from the last entry's), in one transaction. With `in_flight`, leaves a
/// record per update so that `aborted` can cancel it.
fn append_accepted(
    paths: &Paths,
    (mut store, key): (Store, SigningKey),
    config: &Policy,
    pusher: &Pusher,
    accepted: &[(Update, Pending)],
    now: Timestamp,
    in_flight: bool,
) -> Result<Store, RecordError> {
    let mut entries: Vec<NewEntry> =
        policy_change(&store, config, pusher, vec![POLICY_CHANGED.into()])?
            .into_iter()
            .collect();
    let pending_path = paths.pending();
    for (u, p) in accepted {
        let mut commits = Vec::with_capacity(p.commits.len());
        for c in &p.commits {
            commits.push(CommitSigner {
                commit: from_hex(&Some(c.commit.clone()), &pending_path)?.unwrap_or_default(),
                principal: c.principal.clone(),
                fingerprint: c.fingerprint.clone(),
            });
        }
        let digest = decode_digest(&p.policy_digest).ok_or_else(|| RecordError::Corrupt {
            path: pending_path.display().to_string(),
            message: "bad policy digest".into(),
        })?;
        entries.push(NewEntry {
            kind: Kind::Accepted,
            refname: u.refname.clone(),
            old: raw(u.old),
            new: raw(u.new),
            new_tree: from_hex(&p.new_tree, &pending_path)?,
            commits,
            pusher: p.pusher.clone(),
            policy_digest: digest,
            reasons: Vec::new(),
            aborts: None,
        });
    }
    if in_flight && store.is_shared() {
        // In a shared ledger the markers are written in the append's own transaction: a
        // marker exists exactly when its entry does, whatever happens to the connection.
        let node = node(paths);
        let markers: Vec<tally_ledger::Marker> = accepted
            .iter()
            .map(|(u, _)| tally_ledger::Marker {
                key: update_key(&u.refname, u.old, u.new),
                text: marker_text(u, now),
                node: node.clone(),
            })
            .collect();
        store.append_marked(entries, &markers, now, &key)?;
    } else {
        // The in-flight marker files go down before the append, so that a crash at any
        // instant after it leaves a marker for `aborted` (or the next `prepared`) to act
        // on; a marker without an entry is harmless.
        if in_flight {
            let dir = paths.inflight();
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            for (u, _) in accepted {
                write_atomic(&marker_path(paths, u), marker_text(u, now).as_bytes())?;
            }
        }
        store.append(entries, now, &key)?;
    }
    for (u, _) in accepted {
        remove_verdict(paths, u);
    }
    Ok(store)
}

fn marker_path(paths: &Paths, u: &Update) -> PathBuf {
    paths.inflight().join(update_key(&u.refname, u.old, u.new))
}

fn marker_text(u: &Update, now: Timestamp) -> String {
    let hex = |id: Option<ObjectId>| id.map(|i| i.to_string()).unwrap_or_default();
    format!(
        "{}\n{}\n{}\n{}\n",
        u.refname,
        hex(u.old),
        hex(u.new),
        now.as_second()
    )
}

fn parse_marker(text: &str) -> Option<(Update, i64)> {
    let mut lines = text.lines();
    let refname = lines.next()?.to_owned();
    let id = |s: &str| -> Option<Option<ObjectId>> {
        if s.is_empty() {
            Some(None)
        } else {
            ObjectId::from_hex(s.as_bytes()).ok().map(Some)
        }
    };
    let old = id(lines.next()?)?;
    let new = id(lines.next()?)?;
    let created = lines.next()?.parse().ok()?;
    Some((Update { refname, old, new }, created))
}

/// `post-receive`, the fallback for hosting platforms that run no `reference-transaction`
/// hook: the moves already happened, so nothing can be refused; each protected move is
/// recorded as `accepted` if pre-receive left a verdict for it, else as `rejected` (it landed
/// without one). Where `reference-transaction` runs, it has consumed the verdicts and this
/// finds nothing to do.
pub fn post_receive(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    updates: &[Update],
    now: Timestamp,
) -> Result<bool, RecordError> {
    let mut accepted = Vec::new();
    let mut landed_without = Vec::new();
    for u in updates {
        // Not bound: on platforms without reference-transaction, pre-receive and post-receive
        // may run under different helper processes (Gitea's `gitea hook`), and the move has
        // already happened anyway.
        match take_verdict(paths, u, now, false)? {
            Some(p) => accepted.push((u.clone(), p)),
            None if ledger_has_move(paths, config, u)? => {}
            None => landed_without.push((
                u.clone(),
                vec![format!(
                    "{} moved to {} without a pre-receive verdict (recorded after the fact by post-receive)",
                    u.refname,
                    short(u.new)
                )],
            )),
        }
    }
    if !accepted.is_empty() {
        append_accepted(
            paths,
            open_for(paths, config)?,
            config,
            pusher,
            &accepted,
            now,
            false,
        )?;
    }
    if !landed_without.is_empty() {
        append_rejected(paths, config, pusher, &landed_without, now)?;
    }
    Ok(!accepted.is_empty() || !landed_without.is_empty())
}

/// Whether the newest entry of the ref already records this exact move (appended by
/// `reference-transaction` before post-receive ran).
fn ledger_has_move(paths: &Paths, config: &Policy, u: &Update) -> Result<bool, RecordError> {
    let store = crate::ledger::open_for(paths, config)?;
    if catch_up(paths, &store, u)? {
        return Ok(true);
    }
    let newest = store.log(&tally_ledger::Filter {
        refname: Some(u.refname.clone()),
        kind: Some(Kind::Accepted),
        limit: Some(1),
        ..Default::default()
    })?;
    Ok(newest
        .first()
        .is_some_and(|r| r.entry.old == raw(u.old) && r.entry.new == raw(u.new)))
}

/// `aborted`: appends an `aborted` entry for each accepted entry `prepared` appended for
/// these updates (found by the in-flight marker, then by ref, old and new in the ledger).
pub fn aborted(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    updates: &[Update],
    now: Timestamp,
) -> Result<(), RecordError> {
    let mut marked = Vec::new();
    let shared = config.file.ledger.is_some();
    let store = if shared && !updates.is_empty() {
        Some(crate::ledger::open_for(paths, config)?)
    } else {
        None
    };
    for u in updates {
        // A verdict whose update never reached `prepared` (it lost the race for the ref
        // lock) is void too.
        remove_verdict(paths, u);
        let marked_here = match &store {
            Some(store) => has_marker(paths, store, u)?,
            None => marker_path(paths, u).exists(),
        };
        if marked_here {
            marked.push(u.clone());
        }
    }
    drop(store);
    cancel(
        paths,
        config,
        pusher,
        &marked,
        "git aborted the ref transaction after the entry was recorded",
        now,
    )
}

/// Cancels the newest accepted entry of each update, if it records exactly that move and is
/// not cancelled yet, then removes the markers.
fn cancel(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    updates: &[Update],
    reason: &str,
    now: Timestamp,
) -> Result<(), RecordError> {
    if updates.is_empty() {
        return Ok(());
    }
    let (mut store, key) = open_for(paths, config)?;
    let mut entries = Vec::new();
    for u in updates {
        if let Some(seq) = uncancelled_entry(&store, u)? {
            entries.push(NewEntry {
                aborts: Some(seq),
                ..entry_about(
                    Kind::Aborted,
                    Some(u),
                    pusher,
                    config,
                    vec![reason.to_owned()],
                )
            });
        }
    }
    if !entries.is_empty() {
        store.append(entries, now, &key)?;
    }
    for u in updates {
        remove_marker(paths, &store, u)?;
    }
    Ok(())
}

/// The seq of the newest accepted entry of `u.refname` if it records exactly this move and
/// no `aborted` entry cancels it.
fn uncancelled_entry(store: &Store, u: &Update) -> Result<Option<u64>, RecordError> {
    let newest = |kind| {
        store.log(&tally_ledger::Filter {
            refname: Some(u.refname.clone()),
            kind: Some(kind),
            limit: Some(1),
            ..Default::default()
        })
    };
    let Some(accepted) = newest(Kind::Accepted)?.pop() else {
        return Ok(None);
    };
    let e = &accepted.entry;
    if e.old != raw(u.old) || e.new != raw(u.new) {
        return Ok(None);
    }
    let cancelled = newest(Kind::Aborted)?
        .pop()
        .is_some_and(|a| a.entry.aborts == Some(e.seq));
    Ok((!cancelled).then_some(e.seq))
}

/// Markers older than this belong to a transaction whose git process died between
/// `prepared` and `committed`/`aborted` (a live one finishes within milliseconds).
const STALE_MARKER_SECONDS: i64 = 60;

/// Settles in-flight markers. A marker whose ref no longer holds the move's old value is
/// dropped at once, whatever its age: the transaction that wrote it held the ref's lock
/// until it finished, so the ref can only have left the old value through that move (or
/// later ones). A marker whose ref still holds the old value belongs either to a live
/// transaction (young: left alone) or to one whose git died between `prepared` and
/// `committed` (older than 60 s): its entry is cancelled with an `aborted` entry. So markers
/// never pile up: `committed` does nothing, and each `prepared` clears what the ones before
/// it left. `current` reads a ref's value. Returns whether anything was appended.
///
/// With a shared ledger the markers are rows of its database, read through `shared` (the
/// caller's open store, so that a hook connects once); see `reconcile_shared`.
pub fn reconcile(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    now: Timestamp,
    current: impl Fn(&str) -> Option<ObjectId>,
    shared: Option<&Store>,
) -> Result<bool, RecordError> {
    if let Some(store) = shared.filter(|s| s.is_shared()) {
        return reconcile_shared(paths, config, pusher, now, current, store);
    }
    let Ok(dir) = std::fs::read_dir(paths.inflight()) else {
        return Ok(false);
    };
    let mut dead = Vec::new();
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Some((u, created)) = parse_marker(&text) else {
            // Unreadable marker: nothing to act on safely; verify reports any mismatch.
            let _ = std::fs::remove_file(entry.path());
            continue;
        };
        if current(&u.refname) != u.old {
            let _ = std::fs::remove_file(entry.path());
        } else if now.as_second().saturating_sub(created) >= STALE_MARKER_SECONDS {
            dead.push(u);
        }
    }
    let any = !dead.is_empty();
    cancel(
        paths,
        config,
        pusher,
        &dead,
        "the ref transaction never completed (git stopped between prepared and committed)",
        now,
    )?;
    Ok(any)
}

/// A marker another node of a shared ledger left stops counting as a push in progress (for
/// the refusal's words) after this long.
const FOREIGN_MARKER_SECONDS: i64 = 600;

/// [`reconcile`] for a shared ledger: the markers are rows of the database. This node's
/// markers are settled by the same rule as files. Another node's markers are never cancelled
/// here: only the node that wrote one can see whether its ref moved (this replica may simply
/// not have caught up with a move that landed there). Once older than
/// [`FOREIGN_MARKER_SECONDS`] and no longer about the ledger's latest move of its ref, such a
/// marker is deleted; an entry whose node died for good before `committed` is settled by an
/// administrator with `tally ledger adopt`, which the refusal names.
fn reconcile_shared(
    paths: &Paths,
    config: &Policy,
    pusher: &Pusher,
    now: Timestamp,
    current: impl Fn(&str) -> Option<ObjectId>,
    store: &Store,
) -> Result<bool, RecordError> {
    let here = node(paths);
    let mut dead = Vec::new();
    for marker in store.markers()? {
        let Some((u, created)) = parse_marker(&marker.text) else {
            store.remove_marker(&marker.key)?;
            continue;
        };
        let age = now.as_second().saturating_sub(created);
        if marker.node == here {
            if current(&u.refname) != u.old {
                store.remove_marker(&marker.key)?;
            } else if age >= STALE_MARKER_SECONDS {
                dead.push(u);
            }
        } else if age >= FOREIGN_MARKER_SECONDS
            && store
                .position(&u.refname)?
                .is_none_or(|p| p.commit != raw(u.new))
        {
            store.remove_marker(&marker.key)?;
        }
    }
    let any = !dead.is_empty();
    cancel(
        paths,
        config,
        pusher,
        &dead,
        "the ref transaction never completed (git stopped between prepared and committed)",
        now,
    )?;
    Ok(any)
}

fn short(id: Option<ObjectId>) -> String {
    id.map_or_else(|| "(none)".into(), |i| i.to_hex_with_len(10).to_string())
}

fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    tally_ledger::hex::decode_array(hex)
}

#[cfg(test)]
mod tests;
