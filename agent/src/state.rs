//! The agent's pinned state: what it verified last, in one small JSON file per branch.
//!
//! The file is the agent's trust anchor against rollback, fork and freeze, so it is read
//! strictly: a file that exists but does not parse, has another version, or whose parts do not
//! agree (the checkpoint note against the pinned key, its size, root and time, the Merkle
//! frontier against the root) is an error, never a fresh start. A missing file is the first run
//! (trust on first use).
//!
//! Updates are atomic: the new state is written to a temporary file in the same directory,
//! fsynced, renamed over the old one, and the directory is fsynced, so a crash leaves the old
//! or the new state, never a mix.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use gix::ObjectId;
use serde::{Deserialize, Serialize};
use tally_ledger::checkpoint::SignedCheckpoint;
use tally_ledger::merkle::{Frontier, Hash};
use tally_ledger::{VerifiedCheckpoint, VerifierKey, VerifyingKey};

use crate::error::AgentError;

/// The state format this build writes and the only one it reads.
pub const VERSION: u32 = 1;

/// The largest state file read: a state is about 2 KB (the note, the frontier of at most 64
/// hashes, a few ids).
const MAX_STATE_LEN: u64 = 256 * 1024;

/// The state file as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// [`VERSION`].
    version: u32,
    /// The full ref name of the branch this state pins.
    branch: String,
    /// The ledger's origin (the checkpoint key name), pinned on first use.
    origin: String,
    /// The repository id every entry carries, pinned on first use.
    repository: String,
    /// The ledger public key the state was verified with, as an OpenSSH line.
    ledger_key: String,
    /// The last accepted checkpoint.
    checkpoint: CheckpointState,
    /// The Merkle frontier at the checkpoint's size: `Frontier::to_bytes`, hex.
    frontier: String,
    /// The leaf hash of the last entry (the next entry's `prev_hash`), hex.
    last_leaf: String,
    /// The `refs/tally/ledger` commit the checkpoint came from.
    publication: String,
    /// What this agent approved last.
    deployed: Deployed,
    /// When this state was written (RFC 3339), for the operator.
    updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointState {
    /// The signed note, verbatim.
    note: String,
    size: u64,
    /// Hex.
    root: String,
    /// Unix seconds of its `cosignature/v1` timestamp.
    time: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deployed {
    seq: u64,
    commit: String,
    tree: String,
}

/// A state read and checked: everything the next run builds on.
#[derive(Debug, Clone)]
pub struct State {
    /// The branch (full ref name).
    pub branch: String,
    /// The ledger's origin.
    pub origin: String,
    /// The repository id of every entry.
    pub repository: String,
    /// The last accepted checkpoint, verified again when the state was read.
    pub checkpoint: VerifiedCheckpoint,
    /// Its signed note, verbatim (kept as evidence on a fork).
    pub note: String,
    /// The Merkle frontier at the checkpoint's size.
    pub frontier: Frontier,
    /// The leaf hash of the last entry.
    pub last_leaf: Hash,
    /// The publication commit the checkpoint came from.
    pub publication: ObjectId,
    /// The seq of the entry last deployed.
    pub deployed_seq: u64,
    /// Its commit.
    pub deployed_commit: ObjectId,
    /// Its tree.
    pub deployed_tree: ObjectId,
}

/// A state file as found on disk: the parsed state and the exact bytes (to notice a concurrent
/// writer before replacing it).
#[derive(Debug)]
pub struct Loaded {
    /// The state, `None` on the first run.
    pub state: Option<State>,
    /// The bytes read, `None` if there was no file.
    pub raw: Option<Vec<u8>>,
}

/// The default state file of `branch` in the clone whose git directory is `git_dir`:
/// `<git_dir>/tally/agent/<branch>.json`, with the short branch name escaped so that it is one
/// file name. Inside the git directory, two clones never share a state.
pub fn default_path(git_dir: &Path, branch: &str) -> PathBuf {
    let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    let mut name = String::new();
    for b in short.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    git_dir
        .join("tally")
        .join("agent")
        .join(format!("{name}.json"))
}

/// Reads the state at `path`: `None` if there is no file; an error if it exists but is not a
/// state for `branch` verified with `key`.
pub fn load(
    path: &Path,
    branch: &str,
    key: &VerifyingKey,
    key_file: &Path,
) -> Result<Loaded, AgentError> {
    let corrupt = |reason: String| AgentError::CorruptState {
        path: path.to_owned(),
        reason,
    };
    let raw = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Loaded {
                state: None,
                raw: None,
            });
        }
        Err(e) => return Err(corrupt(format!("cannot read it: {e}"))),
        Ok(meta) if !meta.is_file() => return Err(corrupt("not a regular file".into())),
        Ok(meta) if meta.len() > MAX_STATE_LEN => {
            return Err(corrupt(format!("{} bytes is too large", meta.len())));
        }
        Ok(_) => fs::read(path).map_err(|e| corrupt(format!("cannot read it: {e}")))?,
    };
    let file: StateFile =
        serde_json::from_slice(&raw).map_err(|e| corrupt(format!("not a state file: {e}")))?;
    if file.version != VERSION {
        return Err(corrupt(format!(
            "version {} (this tally reads version {VERSION})",
            file.version
        )));
    }
    if file.branch != branch {
        return Err(AgentError::StateBranch {
            path: path.to_owned(),
            pinned: file.branch,
            branch: branch.to_owned(),
        });
    }
    let pinned_key = tally_ledger::key::parse_public_line(&file.ledger_key)
        .map_err(|e| corrupt(format!("ledger_key: {e}")))?;
    if pinned_key != *key {
        return Err(AgentError::StateKey {
            path: path.to_owned(),
            key: key_file.to_owned(),
            given: tally_ledger::key::fingerprint(key),
            pinned: tally_ledger::key::fingerprint(&pinned_key),
        });
    }
    let state = check(file, key).map_err(corrupt)?;
    Ok(Loaded {
        state: Some(state),
        raw: Some(raw),
    })
}

/// A ledger key an agent state pins, for commands that verify without `--ledger-key`.
#[derive(Debug, Clone)]
pub struct PinnedKey {
    /// The key.
    pub key: VerifyingKey,
    /// The ledger origin pinned with it.
    pub origin: String,
    /// The state file that pins it.
    pub path: PathBuf,
    /// What every state that pins this key accepted last: size, root and state file. A
    /// published ledger must extend each (no rollback, no fork).
    pub checkpoints: Vec<(u64, Hash, PathBuf)>,
}

/// The ledger key the agent states of the clone at `git_dir` pin (`<git_dir>/tally/agent/`,
/// where [`default_path`] puts them): the one `tally verify` verified with, so that
/// `tally ledger verify` in the clone needs no `--ledger-key`. `None` if no state pins one;
/// an error if states disagree or one is damaged (read as strictly as [`load`] reads it).
pub fn pinned_key(git_dir: &Path) -> Result<Option<PinnedKey>, AgentError> {
    let dir = git_dir.join("tally").join("agent");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AgentError::CorruptState {
                path: dir,
                reason: format!("cannot read the directory: {e}"),
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut found: Vec<PinnedKey> = Vec::new();
    for path in paths {
        let corrupt = |reason: String| AgentError::CorruptState {
            path: path.clone(),
            reason,
        };
        let meta = fs::symlink_metadata(&path).map_err(|e| corrupt(e.to_string()))?;
        if !meta.is_file() || meta.len() > MAX_STATE_LEN {
            return Err(corrupt("not a regular file of a state's size".into()));
        }
        // A key taken from a file that others could have written proves nothing: whoever
        // wrote it could pair it with a forged ledger.
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o022 != 0 {
                return Err(corrupt(
                    "it is writable by other accounts, so the key it pins cannot be trusted; give the ledger key with --ledger-key".into(),
                ));
            }
        }
        let raw = fs::read(&path).map_err(|e| corrupt(format!("cannot read it: {e}")))?;
        let file: StateFile =
            serde_json::from_slice(&raw).map_err(|e| corrupt(format!("not a state file: {e}")))?;
        let key = tally_ledger::key::parse_public_line(&file.ledger_key)
            .map_err(|e| corrupt(format!("ledger_key: {e}")))?;
        // The same checks `load` makes: the pinned note verifies with the pinned key.
        let state = check(file.clone(), &key).map_err(corrupt)?;
        let pinned = (
            state.checkpoint.size(),
            *state.checkpoint.root(),
            path.clone(),
        );
        if let Some(known) = found.iter_mut().find(|f| f.key == key) {
            known.checkpoints.push(pinned);
        } else {
            found.push(PinnedKey {
                key,
                origin: file.origin,
                checkpoints: vec![pinned],
                path,
            });
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(AgentError::PinnedKeys {
            dir,
            keys: found
                .iter()
                .map(|f| {
                    format!(
                        "{} in {}",
                        tally_ledger::key::fingerprint(&f.key),
                        f.path.display()
                    )
                })
                .collect(),
        }),
    }
}

/// Checks that the parts of a state file agree, and returns the state.
fn check(file: StateFile, key: &VerifyingKey) -> Result<State, String> {
    let vkey = VerifierKey::new(&file.origin, *key).map_err(|e| format!("origin: {e}"))?;
    let note = SignedCheckpoint::parse(&file.checkpoint.note)
        .map_err(|e| format!("checkpoint note: {e}"))?;
    let checkpoint = note
        .verify(&vkey)
        .map_err(|e| format!("checkpoint note does not verify: {e}"))?;
    let root = hash_from_hex(&file.checkpoint.root).ok_or("checkpoint root is not 32 bytes hex")?;
    if checkpoint.size() != file.checkpoint.size
        || *checkpoint.root() != root
        || checkpoint.time() != file.checkpoint.time
    {
        return Err("checkpoint size, root or time differ from the signed note".into());
    }
    let frontier_bytes = bytes_from_hex(&file.frontier).ok_or("frontier is not hex")?;
    let frontier = Frontier::from_bytes(&frontier_bytes).map_err(|e| format!("frontier: {e}"))?;
    if frontier.size() != checkpoint.size() || frontier.root() != root {
        return Err("the Merkle frontier does not match the checkpoint".into());
    }
    let last_leaf = hash_from_hex(&file.last_leaf).ok_or("last_leaf is not 32 bytes hex")?;
    let id = |field: &str, hex: &str| {
        ObjectId::from_hex(hex.as_bytes()).map_err(|e| format!("{field}: {e}"))
    };
    if file.deployed.seq >= checkpoint.size() {
        return Err(format!(
            "deployed entry #{} is beyond the checkpoint's {} entries",
            file.deployed.seq,
            checkpoint.size()
        ));
    }
    Ok(State {
        branch: file.branch,
        origin: file.origin,
        repository: file.repository,
        note: file.checkpoint.note,
        checkpoint,
        frontier,
        last_leaf,
        publication: id("publication", &file.publication)?,
        deployed_seq: file.deployed.seq,
        deployed_commit: id("deployed.commit", &file.deployed.commit)?,
        deployed_tree: id("deployed.tree", &file.deployed.tree)?,
    })
}

/// Serialises a state.
pub fn to_bytes(state: &State, key: &VerifyingKey, now: jiff::Timestamp) -> Vec<u8> {
    let file = StateFile {
        version: VERSION,
        branch: state.branch.clone(),
        origin: state.origin.clone(),
        repository: state.repository.clone(),
        ledger_key: tally_ledger::key::public_line(key, ""),
        checkpoint: CheckpointState {
            note: state.note.clone(),
            size: state.checkpoint.size(),
            root: to_hex(state.checkpoint.root()),
            time: state.checkpoint.time(),
        },
        frontier: to_hex(&state.frontier.to_bytes()),
        last_leaf: to_hex(&state.last_leaf),
        publication: state.publication.to_string(),
        deployed: Deployed {
            seq: state.deployed_seq,
            commit: state.deployed_commit.to_string(),
            tree: state.deployed_tree.to_string(),
        },
        updated: now.to_string(),
    };
    // Serialising plain strings and integers cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Replaces the state file with `bytes`, atomically, if it still holds `expected` (the bytes
/// read at the start of the run, `None` if there was no file).
pub fn store(path: &Path, expected: Option<&[u8]>, bytes: &[u8]) -> Result<(), AgentError> {
    let now = match fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(AgentError::Write {
                path: path.to_owned(),
                source,
            });
        }
    };
    if now.as_deref() != expected {
        return Err(AgentError::StateChanged {
            path: path.to_owned(),
        });
    }
    write_atomic(path, bytes).map_err(|source| AgentError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory (`tempfile`: a
/// unique name, created 0600, removed if anything fails), fsync and rename, then fsyncs the
/// directory so that the rename itself is durable.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new()
        .prefix(".tally-state-")
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Writes a new file that must not exist yet, durably (fork evidence).
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    tally_ledger::hex::encode(bytes)
}

fn bytes_from_hex(hex: &str) -> Option<Vec<u8>> {
    tally_ledger::hex::decode_lower(hex)
}

fn hash_from_hex(hex: &str) -> Option<Hash> {
    bytes_from_hex(hex)?.try_into().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_one_escaped_file_per_branch() {
        let dir = Path::new("/clone/.git");
        assert_eq!(
            default_path(dir, "refs/heads/main"),
            Path::new("/clone/.git/tally/agent/main.json")
        );
        assert_eq!(
            default_path(dir, "refs/heads/env/prod"),
            Path::new("/clone/.git/tally/agent/env%2Fprod.json")
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_uppercase_and_odd_lengths() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&bytes), "0001abff");
        assert_eq!(bytes_from_hex("0001abff").unwrap(), bytes);
        assert_eq!(bytes_from_hex("0001ABFF"), None);
        assert_eq!(bytes_from_hex("abc"), None);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.json");
        store(&path, None, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        store(&path, Some(b"one"), b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_state_changed_by_someone_else_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        store(&path, None, b"one").unwrap();
        let err = store(&path, None, b"two").unwrap_err();
        assert!(matches!(err, AgentError::StateChanged { .. }), "{err}");
        let err = store(&path, Some(b"zero"), b"two").unwrap_err();
        assert!(matches!(err, AgentError::StateChanged { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
    }

    /// A state file pinning the ledger key of `seed`, as `tally verify` writes it.
    fn state_bytes(seed: u8, branch: &str) -> Vec<u8> {
        let signing = tally_ledger::SigningKey::from_bytes(&[seed; 32]);
        let mut frontier = Frontier::new();
        frontier.append(&[1; 32]);
        let origin = "tally/test";
        let note = tally_ledger::Checkpoint {
            origin: origin.into(),
            size: 1,
            root: frontier.root(),
        }
        .sign(1_767_225_600, &signing)
        .unwrap();
        let vkey = VerifierKey::new(origin, signing.verifying_key()).unwrap();
        let null = ObjectId::null(gix::hash::Kind::Sha1);
        let state = State {
            branch: branch.into(),
            origin: origin.into(),
            repository: "repo".into(),
            checkpoint: note.verify(&vkey).unwrap(),
            note: note.text().into(),
            frontier,
            last_leaf: [1; 32],
            publication: null,
            deployed_seq: 0,
            deployed_commit: null,
            deployed_tree: null,
        };
        to_bytes(
            &state,
            &signing.verifying_key(),
            jiff::Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn the_pinned_key_is_the_one_every_state_agrees_on() {
        let git_dir = tempfile::tempdir().unwrap();
        assert!(pinned_key(git_dir.path()).unwrap().is_none());
        let main = default_path(git_dir.path(), "refs/heads/main");
        let prod = default_path(git_dir.path(), "refs/heads/prod");
        store(&main, None, &state_bytes(1, "refs/heads/main")).unwrap();
        let key = tally_ledger::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let pinned = pinned_key(git_dir.path()).unwrap().unwrap();
        assert_eq!((pinned.key, pinned.origin.as_str()), (key, "tally/test"));
        // A second branch with the same key: still that key.
        store(&prod, None, &state_bytes(1, "refs/heads/prod")).unwrap();
        assert_eq!(pinned_key(git_dir.path()).unwrap().unwrap().key, key);
        // With another key: which one is for the operator to say.
        let raw = fs::read(&prod).unwrap();
        store(&prod, Some(&raw), &state_bytes(2, "refs/heads/prod")).unwrap();
        let err = pinned_key(git_dir.path()).unwrap_err();
        assert!(matches!(err, AgentError::PinnedKeys { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&tally_ledger::key::fingerprint(&key)),
            "{err}"
        );
        // A damaged state is an error, never skipped.
        fs::write(&prod, b"{").unwrap();
        let err = pinned_key(git_dir.path()).unwrap_err();
        assert!(matches!(err, AgentError::CorruptState { .. }), "{err}");
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let key = tally_ledger::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let path = dir.path().join("state.json");
        for bad in [&b""[..], b"{", b"{\"version\": 1}", b"\x00\x01"] {
            fs::write(&path, bad).unwrap();
            let err = load(&path, "refs/heads/main", &key, Path::new("k")).unwrap_err();
            assert!(matches!(err, AgentError::CorruptState { .. }), "{err}");
        }
        fs::remove_file(&path).unwrap();
        let loaded = load(&path, "refs/heads/main", &key, Path::new("k")).unwrap();
        assert!(loaded.state.is_none() && loaded.raw.is_none());
    }
}
