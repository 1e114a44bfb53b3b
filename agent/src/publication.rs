//! Reading the ledger's publications at `refs/tally/ledger` out of a clone's object store.
//!
//! The format (the three blobs of each publication commit, their bounds, the entries'
//! framing) is `tally_ledger::publication`'s; this module finds those blobs in git objects.
//! An agent walks from the tip back only to the first publication that starts at or before the
//! size it pinned, so its work is proportional to what was published since its last run.
//! Everything read here is untrusted: sizes are bounded before anything is read, and the
//! entries are only believed once they hash to the signed root.

use gix::ObjectId;
use gix::objs::Kind;
use tally_ledger::publication::{
    CHECKPOINT, ENTRIES, MAX_CHECKPOINT_LEN, MAX_RANGE_LEN, RANGE, read_entries,
};

pub use tally_ledger::publication::{LEDGER_REF, Range};

use crate::error::AgentError;
use tally_verify::objects::{ObjectError, Objects};

/// One publication commit, its blobs located but not read.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The commit.
    pub commit: ObjectId,
    /// Its parent publication, if any.
    pub parent: Option<ObjectId>,
    /// What it covers.
    pub range: Range,
    /// The `checkpoint` blob.
    pub checkpoint: ObjectId,
    /// The `entries` blob.
    pub entries: ObjectId,
    /// Whether the tree holds these three blobs (regular files) and nothing else, as the
    /// server writes it. Readers ignore other entries; a mirror copies only exact ones.
    pub exact: bool,
}

/// Reads publication commits out of the clone's object store.
pub struct Reader<'a> {
    objects: &'a Objects,
    buf: Vec<u8>,
}

impl<'a> Reader<'a> {
    /// A reader over `objects`.
    pub fn new(objects: &'a Objects) -> Reader<'a> {
        Reader {
            objects,
            buf: Vec::new(),
        }
    }

    fn read(&mut self, id: ObjectId, kind: Kind) -> Result<&[u8], AgentError> {
        let objects = self.objects;
        objects
            .read(&id, kind, &mut self.buf)
            .map_err(|e| object_error(id, e))
    }

    /// Reads one publication commit: its single parent (or none), and its tree's three blobs.
    pub fn publication(&mut self, commit: ObjectId) -> Result<Publication, AgentError> {
        let bad = |problem: String| AgentError::Publication { commit, problem };
        let hash = self.objects.hash_kind();
        let (tree, parents) = {
            let raw = self.read(commit, Kind::Commit)?;
            let parsed = gix::objs::CommitRef::from_bytes(raw, hash)
                .map_err(|e| bad(format!("is not a valid commit: {e}")))?;
            (parsed.tree(), parsed.parents().collect::<Vec<ObjectId>>())
        };
        let parent = match parents.as_slice() {
            [] => None,
            [p] => Some(*p),
            more => return Err(bad(format!("has {} parents, expected one", more.len()))),
        };
        let raw = self.read(tree, Kind::Tree)?;
        let (mut range, mut checkpoint, mut entries) = (None, None, None);
        let mut exact = true;
        for entry in gix::objs::TreeRefIter::from_bytes(raw, hash) {
            let entry = entry.map_err(|e| bad(format!("has an unreadable tree: {e}")))?;
            if !entry.mode.is_blob() {
                exact = false;
                continue;
            }
            let name: &[u8] = entry.filename.as_ref();
            let slot = match name {
                n if n == RANGE.as_bytes() => &mut range,
                n if n == CHECKPOINT.as_bytes() => &mut checkpoint,
                n if n == ENTRIES.as_bytes() => &mut entries,
                _ => {
                    exact = false;
                    continue;
                }
            };
            exact &= entry.mode.kind() == gix::objs::tree::EntryKind::Blob && slot.is_none();
            *slot = Some(entry.oid.to_owned());
        }
        let missing = |name: &str| bad(format!("has no {name} file"));
        let range_id = range.ok_or_else(|| missing(RANGE))?;
        let checkpoint = checkpoint.ok_or_else(|| missing(CHECKPOINT))?;
        let entries = entries.ok_or_else(|| missing(ENTRIES))?;
        let data = self.blob(commit, range_id, MAX_RANGE_LEN)?;
        let range = Range::parse(data).ok_or_else(|| bad("has a malformed range file".into()))?;
        Ok(Publication {
            commit,
            parent,
            range,
            checkpoint,
            entries,
            exact,
        })
    }

    /// Reads a blob of publication `owner` of at most `max` bytes; a larger one is refused
    /// before it is inflated.
    fn blob(&mut self, owner: ObjectId, id: ObjectId, max: u64) -> Result<&[u8], AgentError> {
        let (_, size) = self.objects.header(&id).map_err(|e| object_error(id, e))?;
        if size > max {
            return Err(AgentError::Publication {
                commit: owner,
                problem: format!("has a blob {id} of {size} bytes, more than the {max} allowed"),
            });
        }
        self.read(id, Kind::Blob)
    }

    /// Reads a publication's signed checkpoint note.
    pub fn checkpoint(&mut self, publication: &Publication) -> Result<String, AgentError> {
        let commit = publication.commit;
        let data = self.blob(commit, publication.checkpoint, MAX_CHECKPOINT_LEN)?;
        String::from_utf8(data.to_vec()).map_err(|_| AgentError::Publication {
            commit,
            problem: "has a checkpoint that is not UTF-8".into(),
        })
    }

    /// Reads a publication's entries and calls `each(seq, bytes)` for every entry, in order.
    /// The blob must hold exactly the range's entries.
    pub fn entries(
        &mut self,
        publication: &Publication,
        each: impl FnMut(u64, &[u8]),
    ) -> Result<(), AgentError> {
        let commit = publication.commit;
        let range = publication.range;
        let blob = self.blob(commit, publication.entries, range.max_entries_len())?;
        read_entries(blob, range, each).map_err(|e| AgentError::Publication {
            commit,
            problem: e.to_string(),
        })
    }

    /// Walks from the tip back to the first publication that starts at or before `pinned`
    /// entries, checking that consecutive publications join up; returns them newest first.
    pub fn since(&mut self, tip: Publication, pinned: u64) -> Result<Vec<Publication>, AgentError> {
        let mut out = vec![tip];
        loop {
            let last = &out[out.len() - 1];
            if last.range.first <= pinned {
                return Ok(out);
            }
            let Some(parent) = last.parent else {
                return Err(AgentError::Publication {
                    commit: last.commit,
                    problem: format!(
                        "is the first publication but starts at entry {} instead of 0",
                        last.range.first
                    ),
                });
            };
            let expected = last.range.first;
            let next = self.publication(parent)?;
            if next.range.size != expected {
                return Err(AgentError::Publication {
                    commit: next.commit,
                    problem: format!(
                        "ends at entry {} but the publication after it starts at {expected}",
                        next.range.size
                    ),
                });
            }
            out.push(next);
        }
    }

    /// Checks that the publications from `new` back join `old` (the tip already copied, if
    /// any), every commit between them an exact publication ([`Publication::exact`]) whose
    /// entries start exactly where `old` ends: what a mirror checks before it copies a ledger
    /// the agent verified, so that copying `refs/tally/ledger` brings along only entries at or
    /// after `old`'s size. The agent believes (hashes) exactly those, provided it was pinned
    /// at or below that size; the caller checks that. A commit below that size is never read
    /// by the agent, so nothing below it may come along (issue 14's reviews: an unsigned
    /// commit beneath a copy of the tip publication, a publication overlapping `old` with
    /// garbage entries).
    ///
    /// `new` joins `old` when the oldest new publication's parent is `old`, or, where `old` is
    /// a heartbeat (a publication with no entries, which the server replaces with the next
    /// one), `old`'s parent. Heartbeats of `old`'s size in between (published after `old`, or
    /// replacing it) are walked through: they carry no entries. With no `old`, the walk must
    /// reach the first publication, which has none.
    ///
    /// Each publication that would come along must also hold exactly its range's entries
    /// (framing; their hashes are the agent's to check) and a checkpoint for its size signed
    /// by `key` for `origin`, so that no publication carries bytes the server did not write.
    pub fn joins(
        &mut self,
        new: ObjectId,
        old: Option<ObjectId>,
        key: &tally_ledger::VerifyingKey,
        origin: &str,
    ) -> Result<(), AgentError> {
        /// Heartbeats in a row that a join may pass through (the server replaces them, so
        /// there is normally at most one).
        const MAX_HEARTBEATS: usize = 64;
        let old = old.map(|id| self.publication(id)).transpose()?;
        let tip = self.publication(new)?;
        let from = old.as_ref().map_or(0, |o| o.range.size);
        let mut walked = self.since(tip, from)?;
        let refuse = |commit: ObjectId, problem: String| AgentError::Publication {
            commit,
            problem: format!("{problem}; do not copy this ledger"),
        };
        // Heartbeats of `old`'s size between `old` and the new publications: published after
        // `old` (a heartbeat, then a push, while the mirror was not looking), or replacing it
        // if it was a heartbeat itself. They carry no entries.
        if let Some(o) = &old {
            for _ in 0..MAX_HEARTBEATS {
                let Some(oldest) = walked.last() else { break };
                let Some(parent) = oldest.parent else { break };
                if oldest.range.first != o.range.size
                    || parent == o.commit
                    || Some(parent) == o.parent
                {
                    break;
                }
                // Not a publication at all: the checks below refuse the chain.
                let Ok(next) = self.publication(parent) else {
                    break;
                };
                if next.range.first != o.range.size || next.range.size != o.range.size {
                    break;
                }
                walked.push(next);
            }
        }
        if let Some(p) = walked.iter().find(|p| !p.exact) {
            return Err(refuse(
                p.commit,
                "holds more than its range, entries and checkpoint blobs, which the server never writes; ask the server's administrator to check refs/tally/ledger".into(),
            ));
        }
        let vkey = tally_ledger::VerifierKey::new(origin, *key)
            .map_err(|e| refuse(new, format!("cannot check its checkpoints: {e}")))?;
        for p in &walked {
            self.entries(p, |_, _| {})?;
            let note = self.checkpoint(p)?;
            let checkpoint = tally_ledger::checkpoint::SignedCheckpoint::parse(&note)
                .and_then(|signed| signed.verify(&vkey))
                .map_err(|e| {
                    refuse(
                        p.commit,
                        format!("carries a checkpoint that does not verify: {e}"),
                    )
                })?;
            if checkpoint.size() != p.range.size {
                return Err(refuse(
                    p.commit,
                    format!(
                        "carries a checkpoint for {} entries but its range ends at {}",
                        checkpoint.size(),
                        p.range.size
                    ),
                ));
            }
        }
        let Some(oldest) = walked.last() else {
            return Ok(());
        };
        if oldest.range.first != from {
            return Err(refuse(
                oldest.commit,
                format!(
                    "starts at entry {} but the ledger copied so far ends at {from}: it would bring entries that were not checked",
                    oldest.range.first
                ),
            ));
        }
        let joined = match &old {
            None => oldest.parent.is_none(),
            Some(o) => {
                oldest.parent == Some(o.commit)
                    || (o.range.first == o.range.size && oldest.parent == o.parent)
            }
        };
        if joined {
            return Ok(());
        }
        Err(refuse(
            oldest.commit,
            match (&old, oldest.parent) {
                (Some(o), Some(p)) => format!(
                    "has the parent {p}, which is not the publication {} already copied (or, for a heartbeat, its parent): refs/tally/ledger holds commits between them that are not publications",
                    o.commit
                ),
                (Some(o), None) => format!(
                    "starts a new chain instead of following the publication {} already copied",
                    o.commit
                ),
                (None, Some(p)) => format!(
                    "starts at entry 0 but has the parent {p}: refs/tally/ledger holds a commit before the first publication"
                ),
                (None, None) => "does not join".into(),
            },
        ))
    }
}

fn object_error(id: ObjectId, e: ObjectError) -> AgentError {
    match e {
        ObjectError::Missing { id } => AgentError::MissingObject { id },
        ObjectError::WrongKind {
            id,
            expected,
            found,
        } => AgentError::Publication {
            commit: id,
            problem: format!("is a {found} where a {expected} is expected"),
        },
        other => AgentError::Clone {
            message: format!("object {id}: {other}"),
        },
    }
}
