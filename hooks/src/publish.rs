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
use gix::objs::Kind;
use gix::objs::tree::EntryKind;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix_zlib::Status;
use gix_zlib::stream::deflate::{Compress, FlushCompress};
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
        let mut loose = LooseWriter::new(repo);
        let tree = gix::objs::Tree {
            entries: vec![
                tree_entry("checkpoint", loose.write(Kind::Blob, note.as_bytes())?),
                tree_entry("entries", loose.write(Kind::Blob, &entries)?),
                tree_entry("range", loose.write(Kind::Blob, range.as_bytes())?),
            ],
        };
        let tree_id = loose.write_object(&tree)?;
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
        let commit_id = loose.write_object(&commit)?;
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

/// Writes the loose objects of one publication into `objects/`, with one zlib compressor for
/// all of them.
///
/// gix's loose store builds a new compressor for every object: a quarter of a megabyte of
/// fresh memory, faulted in and zeroed each time, about 0.2 ms per object here, and a
/// publication writes five. The objects are new by construction (they hold a checkpoint
/// signed just now), so there is no lookup through the pack indexes either; an object file
/// that exists already holds the same bytes and is kept.
struct LooseWriter {
    objects: std::path::PathBuf,
    hash: gix::hash::Kind,
    compress: Compress,
    plain: Vec<u8>,
    packed: Vec<u8>,
}

impl LooseWriter {
    fn new(repo: &gix::Repository) -> LooseWriter {
        LooseWriter {
            objects: repo.common_dir().join("objects"),
            hash: repo.object_hash(),
            compress: Compress::new(gix_zlib::Compression::BEST_SPEED),
            plain: Vec::new(),
            packed: Vec::new(),
        }
    }

    /// Writes an object given in its serialised form; returns its id.
    fn write(&mut self, kind: Kind, data: &[u8]) -> Result<ObjectId, PublishError> {
        let id = gix::objs::compute_hash(self.hash, kind, data).map_err(err)?;
        let hex = id.to_hex().to_string();
        let dir = self.objects.join(&hex[..2]);
        let path = dir.join(&hex[2..]);
        if path.exists() {
            return Ok(id);
        }
        // Git's loose format (gitformat-loose(5)): zlib of "<kind> <size>\0" and the data.
        self.plain.clear();
        self.plain
            .extend_from_slice(&gix::objs::encode::loose_header(kind, data.len() as u64));
        self.plain.extend_from_slice(data);
        self.compress.reset();
        self.packed.clear();
        self.packed
            .resize(self.plain.len() + self.plain.len() / 8 + 64, 0);
        let mut written = 0;
        loop {
            let before_in = self.compress.total_in();
            let before_out = self.compress.total_out();
            let status = self
                .compress
                .compress(
                    &self.plain[before_in as usize..],
                    &mut self.packed[written..],
                    FlushCompress::Finish,
                )
                .map_err(err)?;
            written += (self.compress.total_out() - before_out) as usize;
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError => {
                    let len = self.packed.len();
                    self.packed.resize(len * 2, 0);
                }
            }
        }
        if let Err(e) = std::fs::create_dir(&dir)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(err(format!("cannot create {}: {e}", dir.display())));
        }
        // A unique temporary name in the same directory, then rename: readers see the whole
        // object or none (git's own protocol, `odb_write_loose_object`).
        let tmp = dir.join(format!(
            "tmp_obj_tally_{}_{}",
            std::process::id(),
            &hex[2..12]
        ));
        let written_file = (|| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&tmp)?;
            f.write_all(&self.packed[..written])?;
            drop(f);
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written_file {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(format!("cannot write {}: {e}", path.display())));
        }
        Ok(id)
    }

    /// Writes a tree or commit.
    fn write_object(&mut self, object: &dyn gix::objs::WriteTo) -> Result<ObjectId, PublishError> {
        let mut data = Vec::with_capacity(object.size() as usize);
        object.write_to(&mut data).map_err(err)?;
        self.write(object.kind(), &data)
    }
}

fn tree_entry(name: &str, oid: ObjectId) -> gix::objs::tree::Entry {
    gix::objs::tree::Entry {
        mode: EntryKind::Blob.into(),
        filename: name.into(),
        oid,
    }
}
