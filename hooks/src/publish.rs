//! Publication of the ledger to `refs/tally/ledger`, so an agent needs nothing but git.
//!
//! What a publication holds is `tally_ledger::publication`'s format (one commit per
//! publication; blobs `entries`, `range`, `checkpoint`); this module writes it as git objects.
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

use tally_ledger::publication::{CHECKPOINT, ENTRIES, RANGE, push_entry};
pub use tally_ledger::publication::{LEDGER_REF, Range};

/// Why publication failed. The ledger itself is intact; the next publication catches up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The repository could not be opened.
    #[error("cannot publish the ledger to {LEDGER_REF}: cannot open the repository: {0}")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Reading the published tip (the ref, its commit, tree or blobs) failed.
    #[error("cannot publish the ledger to {LEDGER_REF}: cannot read {what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The published tip does not have the publication format.
    #[error("cannot publish the ledger to {LEDGER_REF}: publication {commit} {problem}")]
    Malformed {
        /// The publication commit.
        commit: ObjectId,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The store could not be read.
    #[error("cannot publish the ledger to {LEDGER_REF}: {0}")]
    Store(#[from] tally_ledger::StoreError),
    /// The ledger's location cannot be known or reached.
    #[error(transparent)]
    Location(Box<crate::ledger::LocationError>),
    /// The published ledger is ahead of the store: the store was rolled back.
    #[error(
        "cannot publish the ledger to {LEDGER_REF}: the published ledger has {published} entries but the store's checkpoint only {checkpoint}; the store was rolled back"
    )]
    RolledBack {
        /// Entries published.
        published: u64,
        /// Entries at the store's latest checkpoint.
        checkpoint: u64,
    },
    /// Writing an object failed.
    #[error("cannot publish the ledger to {LEDGER_REF}: cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding an object failed.
    #[error("cannot publish the ledger to {LEDGER_REF}: cannot encode an object: {0}")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Other publishers kept moving the ref.
    #[error(
        "cannot publish the ledger to {LEDGER_REF}: the ref could not be updated after {attempts} attempts ({last}); the next publication catches up"
    )]
    Contended {
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

fn read<E: std::error::Error + Send + Sync + 'static>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> PublishError {
    move |e| PublishError::Read {
        what: what.to_string(),
        source: Box::new(e),
    }
}

fn encode<E: std::error::Error + Send + Sync + 'static>(e: E) -> PublishError {
    PublishError::Encode(Box::new(e))
}

/// Reads the tip publication: its commit id and range, if the ref exists.
pub fn current(repo: &gix::Repository) -> Result<Option<(ObjectId, Range)>, PublishError> {
    let Some(mut r) = repo
        .try_find_reference(LEDGER_REF)
        .map_err(read(LEDGER_REF))?
    else {
        return Ok(None);
    };
    let id = r.peel_to_id().map_err(read(LEDGER_REF))?.detach();
    let commit = repo.find_commit(id).map_err(read(id))?;
    let tree = commit.tree().map_err(read(id))?;
    let entry = tree.find_entry(RANGE).ok_or(PublishError::Malformed {
        commit: id,
        problem: "has no range file",
    })?;
    let blob = entry.object().map_err(read(id))?;
    let range = Range::parse(&blob.data).ok_or(PublishError::Malformed {
        commit: id,
        problem: "has a malformed range file",
    })?;
    Ok(Some((id, range)))
}

/// Publishes the ledger from the store at `paths`; a failure is printed as a warning and
/// changes no outcome (the store is the record, and the next publication catches up).
pub fn publish_or_warn(
    git_dir: &Path,
    paths: &crate::record::Paths,
    now: Timestamp,
    reporter: &mut crate::output::Reporter<impl std::io::Write>,
) {
    let result = crate::ledger::open(paths)
        .map_err(|e| PublishError::Location(Box::new(e)))
        .and_then(|store| publish(git_dir, &store, now));
    if let Err(e) = result {
        reporter.error(&format!("warning: {e}"));
    }
}

/// Publishes every entry up to the store's latest checkpoint that is not yet published, and
/// that checkpoint. Does nothing when the ref is already current.
pub fn publish(git_dir: &Path, store: &Store, now: Timestamp) -> Result<(), PublishError> {
    let repo = gix::open_opts(git_dir, gix::open::Options::isolated())
        .map_err(|e| PublishError::Open(Box::new(e)))?;
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
        let checkpoint = store.latest_checkpoint()?;
        let first = tip.map_or(0, |(_, r)| r.size);
        if let Some((_, r)) = tip
            && r.size > checkpoint.size
        {
            return Err(PublishError::RolledBack {
                published: r.size,
                checkpoint: checkpoint.size,
            });
        }
        let note = checkpoint.note.text().to_owned();
        let unchanged = match tip {
            Some((id, r)) if r.size == checkpoint.size => {
                let commit = repo.find_commit(id).map_err(read(id))?;
                let tree = commit.tree().map_err(read(id))?;
                let published = tree
                    .find_entry(CHECKPOINT)
                    .map(|e| e.object().map(|o| o.data.clone()));
                matches!(published, Some(Ok(data)) if data == note.as_bytes())
            }
            _ => false,
        };
        if unchanged {
            return Ok(());
        }
        let mut entries = Vec::new();
        store.raw_entries(first..checkpoint.size, |_, bytes| {
            push_entry(&mut entries, bytes)
        })?;
        let range = Range {
            first,
            size: checkpoint.size,
        };
        let mut loose = LooseWriter::new(repo);
        // Tree entries in git's order (by name).
        let tree = gix::objs::Tree {
            entries: vec![
                tree_entry(CHECKPOINT, loose.write(Kind::Blob, note.as_bytes())?),
                tree_entry(ENTRIES, loose.write(Kind::Blob, &entries)?),
                tree_entry(RANGE, loose.write(Kind::Blob, range.encode().as_bytes())?),
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
        // A publication that only carries a fresher checkpoint (a heartbeat) replaces a tip
        // that did the same, rather than adding a commit: history grows with entries, not
        // with heartbeats (issue 11: 105,000 commits a year at one every 5 minutes). Agents
        // fetch the ref forced and walk parents only down to their pinned size, which a
        // replaced heartbeat never held.
        let parents: Vec<ObjectId> = match tip {
            Some((id, r)) if range.replaces(&r) => repo
                .find_commit(id)
                .map_err(read(id))?
                .parent_ids()
                .map(|p| p.detach())
                .collect(),
            Some((id, _)) => vec![id],
            None => Vec::new(),
        };
        let commit = gix::objs::Commit {
            tree: tree_id,
            parents: parents.into(),
            author: who.clone(),
            committer: who,
            encoding: None,
            message: range.commit_message().into(),
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
            name: LEDGER_REF.try_into().map_err(encode)?,
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
    Err(PublishError::Contended {
        attempts: 5,
        last: last_error,
    })
}

/// Writes the loose objects of one publication into `objects/`: small ones as stored zlib
/// blocks (see [`STORE_UP_TO`]), larger ones with one compressor for all of them.
///
/// gix's loose store builds a new compressor for every object: a quarter of a megabyte of
/// fresh memory, faulted in and zeroed each time, and a publication writes five. The
/// objects are new by construction (they hold a checkpoint signed just now), so there is no
/// lookup through the pack indexes either; an object file that exists already holds the
/// same bytes and is kept.
struct LooseWriter {
    objects: std::path::PathBuf,
    hash: gix::hash::Kind,
    /// Made on the first object larger than [`STORE_UP_TO`]; most publications have none.
    compress: Option<Compress>,
    plain: Vec<u8>,
    packed: Vec<u8>,
}

/// Objects up to this size (header included) are written as stored deflate blocks, not
/// compressed.
///
/// A publication's objects are a few hundred bytes to a few kilobytes: compressing them
/// saves little disk (and `git gc` packs and compresses them anyway), while setting up a
/// compressor allocates and clears about 300 KB, 0.2 to 0.4 ms of every push on the
/// project's machine, mostly page faults. The entries of a push of thousands of commits
/// are bigger, and those are compressed.
const STORE_UP_TO: usize = 64 * 1024;

impl LooseWriter {
    fn new(repo: &gix::Repository) -> LooseWriter {
        LooseWriter {
            objects: repo.common_dir().join("objects"),
            hash: repo.object_hash(),
            compress: None,
            plain: Vec::new(),
            packed: Vec::new(),
        }
    }

    /// Writes an object given in its serialised form; returns its id.
    fn write(&mut self, kind: Kind, data: &[u8]) -> Result<ObjectId, PublishError> {
        let id = gix::objs::compute_hash(self.hash, kind, data).map_err(encode)?;
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
        if self.plain.len() <= STORE_UP_TO {
            stored_zlib(&self.plain, &mut self.packed);
        } else {
            self.deflate()?;
        }
        if let Err(e) = std::fs::create_dir(&dir)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(PublishError::Write {
                path: dir,
                source: e,
            });
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
            f.write_all(&self.packed)?;
            drop(f);
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written_file {
            let _ = std::fs::remove_file(&tmp);
            return Err(PublishError::Write { path, source: e });
        }
        Ok(id)
    }

    /// Compresses `plain` into `packed` (one zlib stream).
    fn deflate(&mut self) -> Result<(), PublishError> {
        let compress = self
            .compress
            .get_or_insert_with(|| Compress::new(gix_zlib::Compression::BEST_SPEED));
        compress.reset();
        self.packed.clear();
        self.packed
            .resize(self.plain.len() + self.plain.len() / 8 + 64, 0);
        let mut written = 0;
        loop {
            let before_in = compress.total_in();
            let before_out = compress.total_out();
            let status = compress
                .compress(
                    &self.plain[before_in as usize..],
                    &mut self.packed[written..],
                    FlushCompress::Finish,
                )
                .map_err(encode)?;
            written += (compress.total_out() - before_out) as usize;
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError => {
                    let len = self.packed.len();
                    self.packed.resize(len * 2, 0);
                }
            }
        }
        self.packed.truncate(written);
        Ok(())
    }

    /// Writes a tree or commit.
    fn write_object(&mut self, object: &dyn gix::objs::WriteTo) -> Result<ObjectId, PublishError> {
        let mut data = Vec::with_capacity(object.size() as usize);
        object.write_to(&mut data).map_err(encode)?;
        self.write(object.kind(), &data)
    }
}

/// Writes `data` into `out` as a zlib stream (RFC 1950) of stored deflate blocks (RFC 1951,
/// section 3.2.4): no compression, so no compressor state to set up, and every zlib reader,
/// git's included, reads it.
fn stored_zlib(data: &[u8], out: &mut Vec<u8>) {
    /// The most a stored block holds: its length is 16 bits.
    const BLOCK: usize = 0xffff;
    out.clear();
    out.reserve(data.len() + 5 * (data.len() / BLOCK + 1) + 6);
    // CMF 0x78: deflate with a 32 KB window; FLG 0x01: no dictionary, and 0x7801 is a
    // multiple of 31 as the header check requires.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = data.chunks(BLOCK).peekable();
    if data.is_empty() {
        // One final, empty stored block.
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL in bit 0, BTYPE 00 (stored); the rest of the byte pads to the boundary.
        out.push(u8::from(blocks.peek().is_none()));
        let len = u16::try_from(block.len()).expect("blocks are at most 0xffff bytes");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
}

/// Adler-32 (RFC 1950, section 8), the checksum that ends a zlib stream.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    // The most bytes before `b` could overflow 32 bits (zlib's NMAX).
    const RUN: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for run in data.chunks(RUN) {
        for &byte in run {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

fn tree_entry(name: &str, oid: ObjectId) -> gix::objs::tree::Entry {
    gix::objs::tree::Entry {
        mode: EntryKind::Blob.into(),
        filename: name.into(),
        oid,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Inflates a whole zlib stream with gix's own decompressor, which checks the header and
    /// the Adler-32 trailer.
    fn inflate(stream: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len + 16];
        let mut z = gix_zlib::Decompress::new();
        let status = z
            .decompress(stream, &mut out, gix_zlib::FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(z.total_in() as usize, stream.len(), "trailing bytes");
        out.truncate(z.total_out() as usize);
        out
    }

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"a"), 0x0062_0062);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Long enough for the modulo to matter in both sums.
        assert_eq!(adler32(&[0xff; 100_000]), 0x149a_302c);
    }

    #[test]
    fn stored_zlib_streams_inflate_to_their_input() {
        let mut out = Vec::new();
        for len in [0, 1, 100, 0xfffe, 0xffff, 0x10000, 3 * 0xffff + 7, 300_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            stored_zlib(&data, &mut out);
            assert_eq!(inflate(&out, len), data, "{len} bytes");
        }
    }

    /// Small objects are stored, large ones compressed; git reads both as its own.
    #[test]
    fn loose_objects_are_read_by_git_stored_or_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init_bare(dir.path()).unwrap();
        let mut writer = LooseWriter::new(&repo);
        let small = b"small: 1\n".to_vec();
        let large: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 1000).to_be_bytes())
            .collect();
        for (data, stored) in [(&small, true), (&large, false)] {
            let id = writer.write(Kind::Blob, data).unwrap();
            let hex = id.to_hex().to_string();
            let file = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
            let bytes = std::fs::read(&file).unwrap();
            // A stored stream's first block header follows the two zlib header bytes.
            assert_eq!(bytes.get(2) == Some(&0x01), stored, "{} bytes", data.len());
            assert_eq!(bytes.len() < data.len(), !stored, "{} bytes", data.len());
            let out = std::process::Command::new("git")
                .args(["cat-file", "blob", &hex])
                .env("GIT_DIR", dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert!(out.stdout == *data, "git read back other bytes");
            // Writing it again finds it and writes nothing.
            assert_eq!(writer.write(Kind::Blob, data).unwrap(), id);
        }
        let out = std::process::Command::new("git")
            .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
            .env("GIT_DIR", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    }

    #[test]
    fn a_corrupt_stored_stream_is_refused_by_zlib() {
        let mut out = Vec::new();
        stored_zlib(b"blob 5\0hello", &mut out);
        let mut bad = out.clone();
        *bad.last_mut().unwrap() ^= 1;
        let mut buf = [0u8; 64];
        let mut z = gix_zlib::Decompress::new();
        assert!(
            z.decompress(&bad, &mut buf, gix_zlib::FlushDecompress::Finish)
                .is_err(),
            "a wrong Adler-32 must fail"
        );
    }
}
