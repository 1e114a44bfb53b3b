//! The publication format: how the ledger is published in the repository itself, at
//! [`LEDGER_REF`], so that an agent needs nothing but git to read it.
//!
//! The ref points to a chain of commits, one per publication. Each commit's tree holds three
//! blobs (and nothing else is read):
//!
//! - [`ENTRIES`]: the entries appended since the parent publication, each a `u32` big-endian
//!   length followed by the entry's stored bytes (exactly what was hashed);
//! - [`RANGE`]: `<first seq> <size>\n` in canonical decimal, the seqs `first..size` that
//!   `entries` holds ([`Range`]);
//! - [`CHECKPOINT`]: the signed checkpoint note for `size`.
//!
//! A publication whose range is empty only carries a fresher checkpoint (a heartbeat); one
//! heartbeat replaces a heartbeat tip instead of adding a commit ([`Range::replaces`]), so
//! history grows with entries, not with heartbeats.
//!
//! This module is the format's only definition: the server's writer (`tally-hooks`'
//! `publish`) and every reader (the agent, `tally ledger verify` on a clone) call it. The
//! git objects around it (commits, trees, the ref) are theirs; this crate stays free of git.
//! Everything here reads untrusted bytes: sizes are bounded before anything is read, and
//! entries are only believed once they hash to a signed root. `docs/ledger-format.md` has the
//! same in prose.

use crate::checkpoint::MAX_NOTE_LEN;
use crate::entry::MAX_ENCODED_LEN;

/// The ref the server publishes the ledger to.
pub const LEDGER_REF: &str = "refs/tally/ledger";

/// The tree entry holding the entries of a publication.
pub const ENTRIES: &str = "entries";
/// The tree entry holding the [`Range`].
pub const RANGE: &str = "range";
/// The tree entry holding the signed checkpoint note.
pub const CHECKPOINT: &str = "checkpoint";

/// The longest `range` blob read: two `u64` in decimal, a space and a newline.
pub const MAX_RANGE_LEN: u64 = 64;

/// The longest `checkpoint` blob read.
pub const MAX_CHECKPOINT_LEN: u64 = MAX_NOTE_LEN as u64;

/// What one publication says it covers: the entries `first..size`.
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

    /// The `range` blob for this range (what [`Range::parse`] reads).
    pub fn encode(&self) -> String {
        format!("{} {}\n", self.first, self.size)
    }

    /// The number of entries the publication holds.
    pub fn len(&self) -> u64 {
        self.size - self.first
    }

    /// Whether the publication holds no entry (a freshness heartbeat).
    pub fn is_empty(&self) -> bool {
        self.first == self.size
    }

    /// Whether a publication of `self` replaces the tip publication `tip` (takes its parents)
    /// rather than following it: both are heartbeats.
    pub fn replaces(&self, tip: &Range) -> bool {
        self.is_empty() && tip.is_empty()
    }

    /// The largest `entries` blob a publication of this range can hold, for bounding the
    /// read before anything is inflated.
    pub fn max_entries_len(&self) -> u64 {
        self.len()
            .saturating_mul(4 + MAX_ENCODED_LEN as u64)
            .min(u64::from(u32::MAX) * 16)
    }

    /// The publication commit's message.
    pub fn commit_message(&self) -> String {
        format!("tally ledger: entries {}..{}\n", self.first, self.size)
    }
}

/// Appends one entry's stored bytes to an `entries` blob.
pub fn push_entry(blob: &mut Vec<u8>, entry: &[u8]) {
    // Entries are at most MAX_ENCODED_LEN bytes, far below u32::MAX.
    blob.extend_from_slice(&(entry.len() as u32).to_be_bytes());
    blob.extend_from_slice(entry);
}

/// Why an `entries` blob does not hold exactly its range's entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntriesError {
    /// A length prefix or an entry is cut short, or a length exceeds the largest entry.
    #[error("has a truncated entries file")]
    Truncated,
    /// More entries than the range covers.
    #[error("holds more entries than its range {}..{}", range.first, range.size)]
    TooMany {
        /// The publication's range.
        range: Range,
    },
    /// Fewer entries than the range covers.
    #[error(
        "holds {} but its range says {}..{}",
        crate::log::count(*count, "entry", "entries"),
        range.first,
        range.size
    )]
    TooFew {
        /// How many it holds.
        count: u64,
        /// The publication's range.
        range: Range,
    },
}

/// Reads an `entries` blob of a publication of `range`, calling `each(seq, bytes)` for every
/// entry in order. The blob must hold exactly the range's entries.
pub fn read_entries(
    blob: &[u8],
    range: Range,
    mut each: impl FnMut(u64, &[u8]),
) -> Result<(), EntriesError> {
    let mut rest = blob;
    let mut seq = range.first;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(EntriesError::Truncated);
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_ENCODED_LEN || tail.len() < len {
            return Err(EntriesError::Truncated);
        }
        if seq == range.size {
            return Err(EntriesError::TooMany { range });
        }
        each(seq, &tail[..len]);
        seq += 1;
        rest = &tail[len..];
    }
    if seq != range.size {
        return Err(EntriesError::TooFew {
            count: seq - range.first,
            range,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn what_is_written_is_read_back() {
        let range = Range { first: 5, size: 8 };
        assert_eq!(Range::parse(range.encode().as_bytes()), Some(range));
        let mut blob = Vec::new();
        for entry in [&b"one"[..], b"", b"three"] {
            push_entry(&mut blob, entry);
        }
        let mut read = Vec::new();
        read_entries(&blob, range, |seq, bytes| read.push((seq, bytes.to_vec()))).unwrap();
        assert_eq!(
            read,
            vec![
                (5, b"one".to_vec()),
                (6, Vec::new()),
                (7, b"three".to_vec())
            ]
        );
    }

    #[test]
    fn entries_that_do_not_match_their_range_are_refused() {
        let mut blob = Vec::new();
        push_entry(&mut blob, b"one");
        push_entry(&mut blob, b"two");
        let none = |_: u64, _: &[u8]| {};
        let range = |first, size| Range { first, size };
        assert_eq!(
            read_entries(&blob, range(0, 1), none),
            Err(EntriesError::TooMany { range: range(0, 1) })
        );
        assert_eq!(
            read_entries(&blob, range(0, 3), none),
            Err(EntriesError::TooFew {
                count: 2,
                range: range(0, 3)
            })
        );
        for cut in 1..blob.len() {
            if cut == 7 {
                continue; // a whole first entry
            }
            assert_eq!(
                read_entries(&blob[..cut], range(0, 2), none),
                Err(EntriesError::Truncated),
                "{cut}"
            );
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            read_entries(&huge, range(0, 1), none),
            Err(EntriesError::Truncated)
        );
    }

    #[test]
    fn a_heartbeat_replaces_only_a_heartbeat() {
        let range = |first, size| Range { first, size };
        assert!(range(4, 4).replaces(&range(4, 4)));
        assert!(!range(4, 4).replaces(&range(3, 4)));
        assert!(!range(4, 5).replaces(&range(4, 4)));
    }
}
