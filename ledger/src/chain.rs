//! The hash chain, and the rules that hold between consecutive entries.
//!
//! Each entry carries the leaf hash of the entry before it (`prev_hash`; [`GENESIS`], 32 zero
//! bytes, for entry 0), so entries cannot be removed, reordered or altered without breaking
//! the chain at the next entry. The Merkle tree ([`crate::merkle`]) commits to the same leaves
//! and is what checkpoints sign; the chain makes a single damaged row easy to locate and lets a
//! reader check an entry against its neighbour without any tree.
//!
//! Besides the hashes, [`ChainVerifier`] enforces: seqs count up from 0 without gaps; every
//! entry belongs to the ledger's repository; an aborted entry cancels the latest entry that
//! set its ref (accepted, policy-change baseline or adopted), and no entry is aborted twice;
//! and **continuity**: each `accepted` move of a ref starts where the ledger last recorded
//! that ref (absent if never set or deleted), so the ledger covers every ref without gaps and
//! a ref that moved outside tally shows. Only an `adopted` entry (a deliberate re-baseline)
//! or a baseline of `tally init` sets a ref without that check.
//!
//! This is also the one place that says where the ledger puts each ref ([`Position`]): the
//! server's `ledger verify`, export verify and the agent all read it from here, and the
//! store's newest-first lookup ([`crate::Store::position`]) applies the same [`effect`].

use std::collections::HashMap;

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
    /// An aborted entry cancels an entry that is not the latest to set its ref.
    #[error("entry {seq} aborts entry {target}, which is not the latest entry that set {refname}")]
    AbortsNotLatest {
        /// The aborting entry.
        seq: u64,
        /// The entry it names.
        target: u64,
        /// The aborting entry's ref.
        refname: String,
    },
    /// An accepted move starts somewhere other than where the ledger last recorded the ref:
    /// the ref moved outside tally in between, and no entry covers that move.
    #[error(
        "entry {seq} moves {refname} from {} but the ledger last recorded it at {}{}: it moved outside tally in between, and no entry covers that move",
        oid(.old), oid(.recorded), .recorded_seq.map(|s| format!(" (entry {s})")).unwrap_or_default()
    )]
    Gap {
        /// The accepted entry.
        seq: u64,
        /// Its ref.
        refname: String,
        /// Where the entry says the ref was.
        old: Option<Vec<u8>>,
        /// Where the ledger last recorded the ref.
        recorded: Option<Vec<u8>>,
        /// The entry that recorded it, if any.
        recorded_seq: Option<u64>,
    },
}

/// An object id for a message: hex, or `nothing` for an absent ref.
fn oid(id: &Option<Vec<u8>>) -> String {
    id.as_ref()
        .map_or_else(|| "nothing (absent)".to_owned(), |id| Hex(id).to_string())
}

/// Where the ledger says a ref is: the latest entry that set it and was not aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The entry.
    pub seq: u64,
    /// Its kind: accepted, policy-change (a baseline) or adopted.
    pub kind: Kind,
    /// The commit it set the ref to; `None` for a deletion.
    pub commit: Option<Vec<u8>>,
    /// That commit's tree.
    pub tree: Option<Vec<u8>>,
}

/// What an entry does to where the ledger says refs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// It sets its ref; `continuous` when its old value must be where the ledger had the ref
    /// (an accepted move), not for a baseline or an adoption.
    Sets {
        /// Whether the continuity rule applies.
        continuous: bool,
    },
    /// It cancels the entry with this seq, which set the same ref.
    Cancels(u64),
    /// It records something (a refusal, a policy change) that moves no ref.
    Nothing,
}

/// The effect of an entry on ref positions: the one rule every reader of positions applies.
pub fn effect(entry: &EntryView<'_>) -> Effect {
    effect_of(entry.kind, entry.refname, entry.aborts)
}

/// [`effect`] from the fields it depends on (for an entry not encoded yet).
pub fn effect_of(kind: Kind, refname: &str, aborts: Option<u64>) -> Effect {
    if refname.is_empty() {
        return Effect::Nothing;
    }
    match (kind, aborts) {
        (Kind::Aborted, Some(target)) => Effect::Cancels(target),
        (Kind::Accepted, _) => Effect::Sets { continuous: true },
        (Kind::PolicyChange | Kind::Adopted, _) => Effect::Sets { continuous: false },
        _ => Effect::Nothing,
    }
}

/// The continuity rule for one move: entry `seq` moves `refname` from `old`, and the ledger
/// last put the ref at `at` (`None`: never set). The chain verifier applies it forwards; the
/// store applies it on append.
pub fn continuity(
    seq: u64,
    refname: &str,
    old: Option<&[u8]>,
    at: Option<&Position>,
) -> Result<(), ChainError> {
    let recorded = at.and_then(|p| p.commit.as_deref());
    if recorded == old {
        return Ok(());
    }
    Err(ChainError::Gap {
        seq,
        refname: refname.to_owned(),
        old: old.map(<[u8]>::to_vec),
        recorded: recorded.map(<[u8]>::to_vec),
        recorded_seq: at.map(|p| p.seq),
    })
}

/// A ref's position while verifying forwards, with what it was before, so that an abort of
/// the latest entry can restore it.
#[derive(Clone, Debug)]
enum Slot {
    /// Known from the entries seen (or seeded by the caller).
    Known {
        at: Position,
        /// The position before `at`, if it is known: `Some(None)` for "never set".
        before: Option<Option<Position>>,
    },
    /// Unknown: a verifier resumed in the middle of a ledger, for a ref it was not told
    /// about, or after an abort whose earlier position it never saw.
    Unknown,
}

/// Checks entries one by one, in order, against the chain rules.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    repository: String,
    next_seq: u64,
    prev: Hash,
    /// The first seq checked (0, or where a resumed verifier starts).
    start: u64,
    /// The kind of every entry seen, by `seq - start`, so that aborts can be checked in one
    /// pass.
    kinds: Vec<u8>,
    aborted: Vec<bool>,
    /// Where the ledger puts each ref that an entry set.
    refs: HashMap<String, Slot>,
    /// Whether refs not in `refs` are known to be absent (from entry 0) or unknown (resumed).
    from_start: bool,
}

impl ChainVerifier {
    /// Starts a chain for the ledger of `repository`, before entry 0.
    pub fn new(repository: &str) -> ChainVerifier {
        ChainVerifier {
            repository: repository.to_owned(),
            next_seq: 0,
            prev: GENESIS,
            start: 0,
            kinds: Vec::new(),
            aborted: Vec::new(),
            refs: HashMap::new(),
            from_start: true,
        }
    }

    /// Resumes a chain at entry `next_seq`, whose predecessor's leaf hash is `prev`, knowing
    /// only the positions in `known` (an agent's pinned state). Refs it is not told about
    /// are unknown until an entry sets them, and aborts of entries before `next_seq` cannot
    /// have their target's kind checked (the caller handles those it cares about).
    pub fn resume(
        repository: &str,
        next_seq: u64,
        prev: Hash,
        known: impl IntoIterator<Item = (String, Position)>,
    ) -> ChainVerifier {
        ChainVerifier {
            repository: repository.to_owned(),
            next_seq,
            prev,
            start: next_seq,
            kinds: Vec::new(),
            aborted: Vec::new(),
            refs: known
                .into_iter()
                .map(|(name, at)| (name, Slot::Known { at, before: None }))
                .collect(),
            from_start: false,
        }
    }

    /// Where the ledger puts `refname` after the entries checked so far: `Ok(None)` if no
    /// entry set it, `Err(())` if this verifier cannot know (resumed without it).
    #[allow(clippy::result_unit_err)]
    pub fn position(&self, refname: &str) -> Result<Option<&Position>, ()> {
        match self.refs.get(refname) {
            Some(Slot::Known { at, .. }) => Ok(Some(at)),
            Some(Slot::Unknown) => Err(()),
            None if self.from_start => Ok(None),
            None => Err(()),
        }
    }

    /// Every ref an entry set, with where the ledger puts it (known positions only).
    pub fn positions(&self) -> impl Iterator<Item = (&str, &Position)> {
        self.refs.iter().filter_map(|(name, slot)| match slot {
            Slot::Known { at, .. } => Some((name.as_str(), at)),
            Slot::Unknown => None,
        })
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
            self.check_abort(seq, target)?;
        }
        self.track(entry)?;
        self.kinds.push(entry.kind.code());
        self.aborted.push(false);
        self.prev = *leaf;
        self.next_seq += 1;
        Ok(())
    }

    /// The aborted entry must be an earlier entry that set a ref, not aborted before. Targets
    /// before a resumed verifier's start cannot be checked here.
    fn check_abort(&mut self, seq: u64, target: u64) -> Result<(), ChainError> {
        let Some(index) = target.checked_sub(self.start) else {
            return Ok(());
        };
        // The entry decoder already guarantees target < seq, so both lookups hit.
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let kind = self.kinds.get(index).copied().and_then(Kind::from_code);
        match kind {
            Some(Kind::Accepted | Kind::PolicyChange | Kind::Adopted) => {}
            Some(kind) => return Err(ChainError::AbortsUncancellable { seq, target, kind }),
            None => {
                return Err(ChainError::SeqGap {
                    expected: seq,
                    found: target,
                });
            }
        }
        match self.aborted.get_mut(index) {
            Some(done) if *done => Err(ChainError::AbortedTwice { seq, target }),
            Some(done) => {
                *done = true;
                Ok(())
            }
            None => Err(ChainError::SeqGap {
                expected: seq,
                found: target,
            }),
        }
    }

    /// Applies the entry's [`effect`] to the ref positions, checking continuity.
    fn track(&mut self, entry: &EntryView<'_>) -> Result<(), ChainError> {
        let seq = entry.seq;
        match effect(entry) {
            Effect::Nothing => Ok(()),
            Effect::Sets { continuous } => {
                let at = Position {
                    seq,
                    kind: entry.kind,
                    commit: entry.new.map(<[u8]>::to_vec),
                    tree: entry.new_tree.map(<[u8]>::to_vec),
                };
                let before = match self.refs.get(entry.refname) {
                    Some(Slot::Known { at, .. }) => Some(Some(at.clone())),
                    Some(Slot::Unknown) => None,
                    None if self.from_start => Some(None),
                    None => None,
                };
                if continuous && let Some(before) = &before {
                    continuity(seq, entry.refname, entry.old, before.as_ref())?;
                }
                self.refs
                    .insert(entry.refname.to_owned(), Slot::Known { at, before });
                Ok(())
            }
            Effect::Cancels(target) => {
                let not_latest = || ChainError::AbortsNotLatest {
                    seq,
                    target,
                    refname: entry.refname.to_owned(),
                };
                let restored = match self.refs.get(entry.refname) {
                    Some(Slot::Known { at, .. }) if at.seq != target => return Err(not_latest()),
                    Some(Slot::Known { before, .. }) => before.clone(),
                    Some(Slot::Unknown) => return Ok(()),
                    None if self.from_start => return Err(not_latest()),
                    None => None,
                };
                let name = entry.refname.to_owned();
                match restored {
                    Some(Some(previous)) => {
                        self.refs.insert(
                            name,
                            Slot::Known {
                                at: previous,
                                before: None,
                            },
                        );
                    }
                    Some(None) => {
                        self.refs.remove(&name);
                    }
                    None => {
                        self.refs.insert(name, Slot::Unknown);
                    }
                }
                Ok(())
            }
        }
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
            // Every entry moves a ref of its own from nothing; an abort names its target's.
            let owner = aborts.unwrap_or(seq as u64);
            let entry = Entry {
                seq: seq as u64,
                kind: *kind,
                aborts: *aborts,
                prev_hash: prev,
                repository: "repo".to_owned(),
                refname: format!("refs/heads/t{owner}"),
                old: None,
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

    /// `(kind, refname, old, new, aborts)`, with ids `[n; 20]`.
    type Move<'a> = (Kind, &'a str, Option<u8>, Option<u8>, Option<u64>);

    /// Entries of the moves, chained.
    fn moves(list: &[Move<'_>]) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for (seq, (kind, refname, old, new, aborts)) in list.iter().enumerate() {
            let entry = Entry {
                seq: seq as u64,
                kind: *kind,
                aborts: *aborts,
                prev_hash: prev,
                repository: "repo".to_owned(),
                refname: (*refname).to_owned(),
                old: old.map(|n| vec![n; 20]),
                new: new.map(|n| vec![n; 20]),
                ..sample_accepted()
            };
            let bytes = entry.encode().unwrap();
            prev = leaf_hash(&bytes);
            out.push(bytes);
        }
        out
    }

    fn positions(entries: &[Vec<u8>]) -> ChainVerifier {
        let mut chain = ChainVerifier::new("repo");
        for bytes in entries {
            chain
                .check(&EntryView::parse(bytes).unwrap(), &leaf_hash(bytes))
                .unwrap();
        }
        chain
    }

    const MAIN: &str = "refs/heads/main";

    /// Issue 10, class 2: a branch moved outside tally and then pushed on from there leaves an
    /// accepted entry whose old commit is not where the ledger had the branch.
    #[test]
    fn an_accepted_move_from_where_the_ledger_never_put_the_ref_is_a_gap() {
        let entries = moves(&[
            (Kind::Accepted, MAIN, None, Some(1), None),
            (Kind::Accepted, MAIN, Some(1), Some(2), None),
            // main moved 2 -> 7 outside tally; the next push starts from 7.
            (Kind::Accepted, MAIN, Some(7), Some(8), None),
        ]);
        assert_eq!(
            run(&entries),
            Err(ChainError::Gap {
                seq: 2,
                refname: MAIN.to_owned(),
                old: Some(vec![7; 20]),
                recorded: Some(vec![2; 20]),
                recorded_seq: Some(1),
            })
        );
        let message = run(&entries).unwrap_err().to_string();
        assert!(
            message.contains("it moved outside tally in between"),
            "{message}"
        );
    }

    #[test]
    fn a_first_move_must_create_the_ref() {
        let entries = moves(&[(Kind::Accepted, MAIN, Some(1), Some(2), None)]);
        assert!(matches!(
            run(&entries),
            Err(ChainError::Gap { recorded: None, .. })
        ));
    }

    #[test]
    fn deletion_and_recreation_are_continuous_and_refusals_move_nothing() {
        let entries = moves(&[
            (Kind::Accepted, MAIN, None, Some(1), None),
            (Kind::Rejected, MAIN, Some(1), Some(9), None),
            (Kind::Accepted, MAIN, Some(1), None, None),
            (Kind::Accepted, MAIN, None, Some(3), None),
        ]);
        let chain = positions(&entries);
        assert_eq!(
            chain.position(MAIN).unwrap().unwrap().commit,
            Some(vec![3; 20])
        );
        let recreated_from_old = moves(&[
            (Kind::Accepted, MAIN, None, Some(1), None),
            (Kind::Accepted, MAIN, Some(1), None, None),
            (Kind::Accepted, MAIN, Some(1), Some(3), None),
        ]);
        assert!(matches!(
            run(&recreated_from_old),
            Err(ChainError::Gap { seq: 2, .. })
        ));
    }

    #[test]
    fn an_abort_puts_the_ref_back_and_must_cancel_its_latest_move() {
        let entries = moves(&[
            (Kind::Accepted, MAIN, None, Some(1), None),
            (Kind::Accepted, MAIN, Some(1), Some(2), None),
            (Kind::Aborted, MAIN, Some(1), Some(2), Some(1)),
            (Kind::Accepted, MAIN, Some(1), Some(3), None),
        ]);
        let chain = positions(&entries);
        assert_eq!(chain.position(MAIN).unwrap().unwrap().seq, 3);
        let stale = moves(&[
            (Kind::Accepted, MAIN, None, Some(1), None),
            (Kind::Accepted, MAIN, Some(1), Some(2), None),
            (Kind::Aborted, MAIN, None, Some(1), Some(0)),
        ]);
        assert!(matches!(
            run(&stale),
            Err(ChainError::AbortsNotLatest {
                seq: 2,
                target: 0,
                ..
            })
        ));
    }

    #[test]
    fn adoption_and_baselines_set_the_ref_without_continuity() {
        let entries = moves(&[
            (Kind::PolicyChange, MAIN, None, Some(1), None),
            (Kind::Accepted, MAIN, Some(1), Some(2), None),
            (Kind::Adopted, MAIN, Some(2), Some(7), None),
            (Kind::Accepted, MAIN, Some(7), Some(8), None),
        ]);
        let chain = positions(&entries);
        let at = chain.position(MAIN).unwrap().unwrap();
        assert_eq!((at.seq, at.kind), (3, Kind::Accepted));
        assert_eq!(chain.position("refs/heads/other"), Ok(None));
    }

    #[test]
    fn a_resumed_chain_checks_what_it_was_told_and_learns_the_rest() {
        let entries = moves(&[
            (Kind::Accepted, MAIN, None, Some(1), None),
            (Kind::Accepted, MAIN, Some(1), Some(2), None),
            (Kind::Accepted, "refs/heads/b", Some(5), Some(6), None),
            (Kind::Accepted, MAIN, Some(3), Some(4), None),
        ]);
        let seed = Position {
            seq: 1,
            kind: Kind::Accepted,
            commit: Some(vec![2; 20]),
            tree: None,
        };
        let mut chain =
            ChainVerifier::resume("repo", 2, leaf_hash(&entries[1]), [(MAIN.to_owned(), seed)]);
        let view = EntryView::parse(&entries[2]).unwrap();
        chain.check(&view, &leaf_hash(&entries[2])).unwrap();
        assert!(
            chain.position("refs/heads/c").is_err(),
            "unknown, not absent"
        );
        let view = EntryView::parse(&entries[3]).unwrap();
        assert!(matches!(
            chain.check(&view, &leaf_hash(&entries[3])),
            Err(ChainError::Gap { seq: 3, .. })
        ));
    }
}
