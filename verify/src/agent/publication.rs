//! Reading the ledger as the server publishes it to `refs/tally/ledger`.
//!
//! The ref points to a chain of commits, one per publication (see the server's
//! `hooks/src/publish.rs`). Each commit's tree holds three blobs:
//!
//! - `entries`: the entries appended since the parent publication, each a `u32` big-endian
//!   length followed by the entry's stored bytes (exactly what was hashed);
//! - `range`: `<first seq> <size>\n`, the seqs `first..size` that `entries` holds;
//! - `checkpoint`: the signed checkpoint note for `size`.
//!
//! An agent walks from the tip back only to the first publication that starts at or before the
//! size it pinned, so its work is proportional to what was published since its last run.
//! Everything read here is untrusted: sizes are bounded before anything is read, and the
//! entries are only believed once they hash to the signed root.

use gix::ObjectId;
use gix::objs::Kind;
use tally_ledger::checkpoint::MAX_NOTE_LEN;
use tally_ledger::entry::MAX_ENCODED_LEN;

use super::error::AgentError;
use crate::objects::{ObjectError, Objects};

/// The ref the server publishes the ledger to.
pub const LEDGER_REF: &str = "refs/tally/ledger";

/// The longest `range` blob read: two `u64` in decimal, a space and a newline.
const MAX_RANGE_LEN: u64 = 64;

/// What one publication commit says it covers: the entries `first..size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first seq in `entries`.
    pub first: u64,
    /// The ledger size at the publication's checkpoint.
    pub size: u64,
}

impl Range {
    /// Parses a `range` blob strictly: `<first> <size>\n`, canonical decimals, `first <= size`.
    pub fn parse(bytes: &[u8]) -> Option<Range> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (a, b) = text.strip_suffix('\n')?.split_once(' ')?;
        let number = |s: &str| {
            let canonical = !s.is_empty()
                && s.bytes().all(|c| c.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            canonical.then(|| s.parse::<u64>().ok()).flatten()
        };
        let range = Range {
            first: number(a)?,
            size: number(b)?,
        };
        (range.first <= range.size).then_some(range)
    }

    /// The number of entries the publication holds.
    pub fn len(&self) -> u64 {
        self.size - self.first
    }

    /// Whether the publication holds no entry (a freshness heartbeat).
    pub fn is_empty(&self) -> bool {
        self.first == self.size
    }
}

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
        for entry in gix::objs::TreeRefIter::from_bytes(raw, hash) {
            let entry = entry.map_err(|e| bad(format!("has an unreadable tree: {e}")))?;
            if !entry.mode.is_blob() {
                continue;
            }
            let name: &[u8] = entry.filename.as_ref();
            let slot = match name {
                b"range" => &mut range,
                b"checkpoint" => &mut checkpoint,
                b"entries" => &mut entries,
                _ => continue,
            };
            *slot = Some(entry.oid.to_owned());
        }
        let missing = |name: &str| bad(format!("has no {name} file"));
        let range_id = range.ok_or_else(|| missing("range"))?;
        let checkpoint = checkpoint.ok_or_else(|| missing("checkpoint"))?;
        let entries = entries.ok_or_else(|| missing("entries"))?;
        let data = self.blob(commit, range_id, MAX_RANGE_LEN)?;
        let range = Range::parse(data).ok_or_else(|| bad("has a malformed range file".into()))?;
        Ok(Publication {
            commit,
            parent,
            range,
            checkpoint,
            entries,
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
        let data = self.blob(commit, publication.checkpoint, MAX_NOTE_LEN as u64)?;
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
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(), AgentError> {
        let commit = publication.commit;
        let bad = |problem: String| AgentError::Publication { commit, problem };
        let range = publication.range;
        let max = range
            .len()
            .saturating_mul(4 + MAX_ENCODED_LEN as u64)
            .min(u64::from(u32::MAX) * 16);
        let mut rest = self.blob(commit, publication.entries, max)?;
        let mut seq = range.first;
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(bad("has a truncated entries file".into()));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > MAX_ENCODED_LEN || tail.len() < len {
                return Err(bad("has a truncated entries file".into()));
            }
            if seq == range.size {
                return Err(bad(format!(
                    "holds more entries than its range {}..{}",
                    range.first, range.size
                )));
            }
            each(seq, &tail[..len]);
            seq += 1;
            rest = &tail[len..];
        }
        if seq != range.size {
            return Err(bad(format!(
                "holds {} entries but its range says {}..{}",
                seq - range.first,
                range.first,
                range.size
            )));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_parses_only_the_canonical_form() {
        assert_eq!(Range::parse(b"0 3\n"), Some(Range { first: 0, size: 3 }));
        assert_eq!(Range::parse(b"7 7\n"), Some(Range { first: 7, size: 7 }));
        for bad in [
            &b"0 3"[..],
            b"3 0\n",
            b"03 4\n",
            b"0  3\n",
            b"-1 3\n",
            b"0 3\n\n",
            b"0 18446744073709551616\n",
            b"",
        ] {
            assert_eq!(
                Range::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
