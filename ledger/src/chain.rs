//! The hash chain, and the rules that hold between consecutive entries.
//!
//! Each entry carries the leaf hash of the entry before it (`prev_hash`; [`GENESIS`], 32 zero
//! bytes, for entry 0), so entries cannot be removed, reordered or altered without breaking
//! the chain at the next entry. The Merkle tree ([`crate::merkle`]) commits to the same leaves
//! and is what checkpoints sign; the chain makes a single damaged row easy to locate and lets a
//! reader check an entry against its neighbour without any tree.
//!
//! Besides the hashes, [`ChainVerifier`] enforces: seqs count up from 0 without gaps; every
//! entry belongs to the ledger's repository; an aborted entry cancels an earlier accepted or
//! policy-change entry, and no entry is aborted twice.

use crate::entry::{EntryView, Kind};
use crate::hex::Hex;
use crate::merkle::Hash;

/// The `prev_hash` of the first entry.
pub const GENESIS: Hash = [0; 32];

/// How the chain of entries is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// An entry's seq is not the one after its predecessor's (an entry is missing, duplicated
    /// or out of place).
    #[error("expected entry {expected}, found entry {found}")]
    SeqGap {
        /// The seq that should come next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// An entry's `prev_hash` is not its predecessor's leaf hash.
    #[error("entry {seq}: prev_hash is {}, but the previous entry's leaf hash is {}", Hex(.found), Hex(.expected))]
    BrokenChain {
        /// The entry whose `prev_hash` is wrong.
        seq: u64,
        /// The previous entry's leaf hash.
        expected: Hash,
        /// The `prev_hash` the entry carries.
        found: Hash,
    },
    /// An entry belongs to another repository's ledger.
    #[error("entry {seq} belongs to repository {found:?}, not {expected:?}")]
    RepositoryMismatch {
        /// The entry.
        seq: u64,
        /// This ledger's repository id.
        expected: String,
        /// The entry's repository id.
        found: String,
    },
    /// An aborted entry cancels an entry that does not record a move.
    #[error(
        "entry {seq} aborts entry {target}, a {kind} entry; only accepted and policy-change entries can be aborted"
    )]
    AbortsUncancellable {
        /// The aborting entry.
        seq: u64,
        /// The entry it names.
        target: u64,
        /// The named entry's kind.
        kind: Kind,
    },
    /// An entry is aborted a second time.
    #[error("entry {seq} aborts entry {target}, which an earlier entry already aborted")]
    AbortedTwice {
        /// The second aborting entry.
        seq: u64,
        /// The entry it names.
        target: u64,
    },
}

/// Checks entries one by one, in order, against the chain rules.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    repository: String,
    next_seq: u64,
    prev: Hash,
    /// The kind of every entry seen, by seq, so that aborts can be checked in one pass.
    kinds: Vec<u8>,
    aborted: Vec<bool>,
}

impl ChainVerifier {
    /// Starts a chain for the ledger of `repository`, before entry 0.
    pub fn new(repository: &str) -> ChainVerifier {
        ChainVerifier {
            repository: repository.to_owned(),
            next_seq: 0,
            prev: GENESIS,
            kinds: Vec::new(),
            aborted: Vec::new(),
        }
    }

    /// The seq the next entry must have (the number of entries checked so far).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The leaf hash of the last entry checked ([`GENESIS`] before the first).
    pub fn last_hash(&self) -> Hash {
        self.prev
    }

    /// Checks the next entry, given its parsed view and the leaf hash of its stored bytes.
    pub fn check(&mut self, entry: &EntryView<'_>, leaf: &Hash) -> Result<(), ChainError> {
        let seq = entry.seq;
        if seq != self.next_seq {
            return Err(ChainError::SeqGap {
                expected: self.next_seq,
                found: seq,
            });
        }
        if entry.prev_hash != self.prev {
            return Err(ChainError::BrokenChain {
                seq,
                expected: self.prev,
                found: entry.prev_hash,
            });
        }
        if entry.repository != self.repository {
            return Err(ChainError::RepositoryMismatch {
                seq,
                expected: self.repository.clone(),
                found: entry.repository.to_owned(),
            });
        }
        if let Some(target) = entry.aborts {
            // The entry decoder already guarantees target < seq, so both lookups hit.
            let index = usize::try_from(target).unwrap_or(usize::MAX);
            let kind = self.kinds.get(index).copied().and_then(Kind::from_code);
            match kind {
                Some(Kind::Accepted | Kind::PolicyChange) => {}
                Some(kind) => return Err(ChainError::AbortsUncancellable { seq, target, kind }),
                None => {
                    return Err(ChainError::SeqGap {
                        expected: seq,
                        found: target,
                    });
                }
            }
            match self.aborted.get_mut(index) {
                Some(done) if *done => return Err(ChainError::AbortedTwice { seq, target }),
                Some(done) => *done = true,
                None => {
                    return Err(ChainError::SeqGap {
                        expected: seq,
                        found: target,
                    });
                }
            }
        }
        self.kinds.push(entry.kind.code());
        self.aborted.push(false);
        self.prev = *leaf;
        self.next_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::entry::{Entry, tests::sample_accepted};
    use crate::merkle::leaf_hash;

    fn chain_of(kinds: &[(Kind, Option<u64>)]) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for (seq, (kind, aborts)) in kinds.iter().enumerate() {
            let entry = Entry {
                seq: seq as u64,
                kind: *kind,
                aborts: *aborts,
                prev_hash: prev,
                repository: "repo".to_owned(),
                ..sample_accepted()
            };
            let bytes = entry.encode().unwrap();
            prev = leaf_hash(&bytes);
            out.push(bytes);
        }
        out
    }

    fn run(entries: &[Vec<u8>]) -> Result<(), ChainError> {
        let mut chain = ChainVerifier::new("repo");
        for bytes in entries {
            let view = EntryView::parse(bytes).unwrap();
            chain.check(&view, &leaf_hash(bytes))?;
        }
        Ok(())
    }

    #[test]
    fn a_well_formed_chain_passes() {
        let entries = chain_of(&[
            (Kind::Accepted, None),
            (Kind::Rejected, None),
            (Kind::PolicyChange, None),
            (Kind::Aborted, Some(0)),
            (Kind::Aborted, Some(2)),
        ]);
        run(&entries).unwrap();
    }

    #[test]
    fn a_missing_entry_is_a_seq_gap() {
        let mut entries = chain_of(&[(Kind::Accepted, None); 4]);
        entries.remove(2);
        assert_eq!(
            run(&entries),
            Err(ChainError::SeqGap {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn a_changed_entry_breaks_the_chain_at_the_next_one() {
        let mut entries = chain_of(&[(Kind::Accepted, None); 3]);
        let original = leaf_hash(&entries[1]);
        // Re-encode entry 1 with another pusher: still well-formed, but a different leaf.
        let mut changed = Entry::decode(&entries[1]).unwrap();
        changed.pusher = "mallory".to_owned();
        entries[1] = changed.encode().unwrap();
        let err = run(&entries).unwrap_err();
        assert_eq!(
            err,
            ChainError::BrokenChain {
                seq: 2,
                expected: leaf_hash(&entries[1]),
                found: original
            }
        );
        assert!(err.to_string().starts_with("entry 2: prev_hash is "));
    }

    #[test]
    fn the_first_entry_must_start_from_genesis() {
        let mut entry = Entry::decode(&chain_of(&[(Kind::Accepted, None)])[0]).unwrap();
        entry.prev_hash = [1; 32];
        let bytes = entry.encode().unwrap();
        assert!(matches!(
            run(&[bytes]),
            Err(ChainError::BrokenChain {
                seq: 0,
                expected: GENESIS,
                ..
            })
        ));
    }

    #[test]
    fn an_entry_of_another_repository_is_refused() {
        let entries = chain_of(&[(Kind::Accepted, None)]);
        let mut chain = ChainVerifier::new("other");
        let view = EntryView::parse(&entries[0]).unwrap();
        assert!(matches!(
            chain.check(&view, &leaf_hash(&entries[0])),
            Err(ChainError::RepositoryMismatch { seq: 0, .. })
        ));
    }

    #[test]
    fn aborts_must_cancel_a_move_once() {
        let entries = chain_of(&[(Kind::Rejected, None), (Kind::Aborted, Some(0))]);
        assert_eq!(
            run(&entries),
            Err(ChainError::AbortsUncancellable {
                seq: 1,
                target: 0,
                kind: Kind::Rejected
            })
        );
        let entries = chain_of(&[
            (Kind::Accepted, None),
            (Kind::Aborted, Some(0)),
            (Kind::Aborted, Some(0)),
        ]);
        assert_eq!(
            run(&entries),
            Err(ChainError::AbortedTwice { seq: 2, target: 0 })
        );
        let entries = chain_of(&[
            (Kind::Accepted, None),
            (Kind::Aborted, Some(0)),
            (Kind::Aborted, Some(1)),
        ]);
        assert_eq!(
            run(&entries),
            Err(ChainError::AbortsUncancellable {
                seq: 2,
                target: 1,
                kind: Kind::Aborted
            })
        );
    }
}
