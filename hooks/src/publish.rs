//! Publication of the ledger to `refs/tally/ledger`, so an agent needs nothing but git.
//!
//! The ref points to a chain of commits, one per publication. Each commit's tree holds:
//!
//! - `entries`: the entries appended since the parent publication, each as a 4-byte
//!   big-endian length followed by the entry's stored bytes (exactly what was hashed);
//! - `range`: `<first seq> <size>\n`, the seqs `first..size` that `entries` holds;
//! - `checkpoint`: the signed checkpoint for `size` (C2SP signed note).
//!
//! Fetching the ref brings only the commits and blobs published since the last fetch, so an
//! agent's work is proportional to what is new. The commits are written with gix, which runs
//! no hooks, and the ref moves by compare-and-swap; a concurrent publisher that wins simply
//! makes this one retry. Publication is derived from the store and idempotent: a failed one
//! is completed by the next.

use std::path::Path;

use gix::ObjectId;
use gix::bstr::BString;
use gix::objs::tree::EntryKind;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use jiff::Timestamp;
use tally_ledger::Store;

/// The ref the ledger is published to; its format is read by the agent's
/// `tally_verify::agent::publication`, which also parses the `range` blob for both sides.
pub use tally_verify::agent::publication::{LEDGER_REF, Range};

/// Why publication failed. The ledger itself is intact; the next publication catches up.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish the ledger to {LEDGER_REF}: {0}")]
pub struct PublishError(String);

fn err(e: impl std::fmt::Display) -> PublishError {
    PublishError(e.to_string())
}

/// Reads the tip publication: its commit id and range, if the ref exists.
pub fn current(repo: &gix::Repository) -> Result<Option<(ObjectId, Range)>, PublishError> {
    let Some(mut r) = repo.try_find_reference(LEDGER_REF).map_err(err)? else {
        return Ok(None);
    };
    let id = r.peel_to_id().map_err(err)?.detach();
    let commit = repo.find_commit(id).map_err(err)?;
    let tree = commit.tree().map_err(err)?;
    let entry = tree
        .find_entry("range")
        .ok_or_else(|| err(format!("publication {id} has no range file")))?;
    let blob = entry.object().map_err(err)?;
    let range = Range::parse(&blob.data)
        .ok_or_else(|| err(format!("publication {id} has a malformed range file")))?;
    Ok(Some((id, range)))
}

/// Publishes every entry up to the store's latest checkpoint that is not yet published, and
/// that checkpoint. Does nothing when the ref is already current.
pub fn publish(git_dir: &Path, store: &Store, now: Timestamp) -> Result<(), PublishError> {
    let repo = gix::open_opts(git_dir, gix::open::Options::isolated()).map_err(err)?;
    publish_with(&repo, store, now)
}

/// [`publish`] with the repository already open.
pub fn publish_with(
    repo: &gix::Repository,
    store: &Store,
    now: Timestamp,
) -> Result<(), PublishError> {
    let mut last_error = String::new();
    for _ in 0..5 {
        let tip = current(repo)?;
        let checkpoint = store.latest_checkpoint().map_err(err)?;
        let first = tip.map_or(0, |(_, r)| r.size);
        if let Some((_, r)) = tip
            && r.size > checkpoint.size
        {
            return Err(err(format!(
                "the published ledger has {} entries but the store's checkpoint only {}; the store was rolled back",
                r.size, checkpoint.size
            )));
        }
        let note = checkpoint.note.text().to_owned();
        let unchanged = match tip {
            Some((id, r)) if r.size == checkpoint.size => {
                let commit = repo.find_commit(id).map_err(err)?;
                let tree = commit.tree().map_err(err)?;
                let published = tree
                    .find_entry("checkpoint")
                    .map(|e| e.object().map(|o| o.data.clone()));
                matches!(published, Some(Ok(data)) if data == note.as_bytes())
            }
            _ => false,
        };
        if unchanged {
            return Ok(());
        }
        let mut entries = Vec::new();
        store
            .raw_entries(first..checkpoint.size, |_, bytes| {
                entries.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                entries.extend_from_slice(bytes);
            })
            .map_err(err)?;
        let range = format!("{first} {}\n", checkpoint.size);
        // Written straight into the loose object directory: these objects are new by
        // construction (they hold a checkpoint signed just now), so the repository-level
        // write's "is it already there" lookup through every pack index is pure cost.
        let loose =
            gix::odb::loose::Store::at(repo.common_dir().join("objects"), repo.object_hash());
        let blob = |data: &[u8]| {
            gix::objs::Write::write_buf(&loose, gix::objs::Kind::Blob, data).map_err(err)
        };
        let tree = gix::objs::Tree {
            entries: vec![
                tree_entry("checkpoint", blob(note.as_bytes())?),
                tree_entry("entries", blob(&entries)?),
                tree_entry("range", blob(range.as_bytes())?),
            ],
        };
        let tree_id = gix::objs::Write::write(&loose, &tree).map_err(err)?;
        let who = gix::actor::Signature {
            name: "tally".into(),
            email: "tally@localhost".into(),
            time: gix::date::Time {
                seconds: now.as_second(),
                offset: 0,
            },
        };
        let commit = gix::objs::Commit {
            tree: tree_id,
            parents: tip.map(|(id, _)| id).into_iter().collect(),
            author: who.clone(),
            committer: who,
            encoding: None,
            message: format!("tally ledger: entries {first}..{}\n", checkpoint.size).into(),
            extra_headers: Vec::new(),
        };
        let commit_id = gix::objs::Write::write(&loose, &commit).map_err(err)?;
        let expected = match tip {
            Some((id, _)) => PreviousValue::MustExistAndMatch(gix::refs::Target::Object(id)),
            None => PreviousValue::MustNotExist,
        };
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: BString::from("tally: publish ledger"),
                },
                expected,
                new: gix::refs::Target::Object(commit_id),
            },
            name: LEDGER_REF.try_into().map_err(err)?,
            deref: false,
        };
        // The reflog identity is given, so gix need not work out the local time zone.
        let time = gix::date::Time {
            seconds: now.as_second(),
            offset: 0,
        };
        let mut time_buf = gix::date::parse::TimeBuf::default();
        let committer = gix::actor::SignatureRef {
            name: "tally".into(),
            email: "tally@localhost".into(),
            time: time.to_str(&mut time_buf),
        };
        match repo.edit_references_as(Some(edit), Some(committer)) {
            Ok(_) => return Ok(()),
            // Another publisher moved the ref first (or holds its lock): read it again and
            // retry.
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(err(format!(
        "the ref could not be updated after 5 attempts ({last_error}); the next publication catches up"
    )))
}

fn tree_entry(name: &str, oid: ObjectId) -> gix::objs::tree::Entry {
    gix::objs::tree::Entry {
        mode: EntryKind::Blob.into(),
        filename: name.into(),
        oid,
    }
}
