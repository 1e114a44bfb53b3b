//! What a storage backend offers the ledger, and the read rules written once over it.
//!
//! A backend stores rows: entries (encoded bytes, leaf hash, the Merkle nodes each completes,
//! and the columns readers filter on), checkpoints, and the head with its frontier. It knows
//! nothing of what the rows mean. [`ReadTx`] is what it offers to readers; [`AppendTx`] adds the writes of one serialised append. Everything that
//! gives rows a meaning lives here and in `append.rs`, once, for every backend: where the
//! ledger puts a ref (the fold over `chain::effect`), the checks every entry read back passes
//! (its leaf hash, its seq, its encoding), and the Merkle nodes that proofs need. The SQLite
//! backend is `sql.rs`; a second backend (issue 15's PostgreSQL) is one more module
//! implementing these two traits. The one exception is the whole-ledger audit
//! (`verify.rs`): its checking stages are shared, but its reader streams the backend's own
//! rows, index columns and stored nodes included, because those are what it audits; a
//! backend brings that reader with it.

use std::collections::HashSet;
use std::ops::Range;

use crate::chain::{Effect, Position, effect};
use crate::checkpoint::SignedCheckpoint;
use crate::entry::{EntryView, Kind};
use crate::merkle::{Frontier, Hash, ProofError, leaf_hash};

use super::{Corruption, Filter, Head, Record, StoreError, StoredCheckpoint};

/// A callback over stored entries: `(seq, bytes, stored leaf hash)`; `Ok(false)` stops.
pub(crate) type EntryFn<'f> = dyn FnMut(u64, &[u8], &Hash) -> Result<bool, StoreError> + 'f;

/// What a backend offers readers: each call reads one committed state (inside an append, the
/// state so far). Rows are untrusted: the backend reports
/// a missing row or a value of the wrong type as a [`Corruption`], and the rules in this module
/// check what the rows mean.
pub(crate) trait ReadTx {
    /// The current head and its Merkle frontier.
    fn head(&mut self) -> Result<StoredHead, StoreError>;
    /// Every ref name any entry carries, in byte order.
    fn refnames(&mut self) -> Result<Vec<String>, StoreError>;
    /// The entries of `refname` whose kind can move it (accepted, aborted, policy-change,
    /// adopted), newest first, until `f` returns `false`.
    fn moves(&mut self, refname: &str, f: &mut EntryFn<'_>) -> Result<(), StoreError>;
    /// The entries with seqs in `range`, oldest first, until `f` returns `false`.
    fn entries(&mut self, range: Range<u64>, f: &mut EntryFn<'_>) -> Result<(), StoreError>;
    /// The entries that `filter` selects by its index columns, newest first, at most
    /// `filter.limit`, until `f` returns `false`. The caller checks each against its bytes.
    fn select(&mut self, filter: &Filter, f: &mut EntryFn<'_>) -> Result<(), StoreError>;
    /// The stored leaf hash of entry `seq`.
    fn leaf(&mut self, seq: u64) -> Result<Hash, StoreError>;
    /// The Merkle nodes entry `seq` completes, concatenated, lowest level first.
    fn nodes(&mut self, seq: u64) -> Result<Vec<u8>, StoreError>;
    /// The stored checkpoints in signing order (newest first if `newest_first`), until `f`
    /// returns `false`.
    fn checkpoints(
        &mut self,
        newest_first: bool,
        f: &mut dyn FnMut(StoredCheckpoint) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

/// What an append needs from a backend besides reading, inside one transaction that
/// serialises with every other append to the same ledger; reads see what the transaction
/// wrote so far. Nothing is visible to other readers until the caller commits.
pub(crate) trait AppendTx: ReadTx {
    /// The kind of entry `seq`, if it exists.
    fn kind_of(&mut self, seq: u64) -> Result<Option<i64>, StoreError>;
    /// Whether an `aborted` entry already cancels entry `seq`.
    fn is_aborted(&mut self, seq: u64) -> Result<bool, StoreError>;
    /// Stores one entry: its encoded bytes, leaf hash, the Merkle nodes it completes, and the
    /// columns readers filter on.
    fn insert_entry(&mut self, row: &EntryRow<'_>) -> Result<(), StoreError>;
    /// Keeps a signed checkpoint.
    fn insert_checkpoint(
        &mut self,
        checkpoint: &SignedCheckpoint,
        size: u64,
        root: &Hash,
        time: u64,
    ) -> Result<(), StoreError>;
    /// Moves the head from `from` to the new values; `false` if it is no longer at `from`.
    fn move_head(
        &mut self,
        from: &Head,
        to: &Head,
        frontier: &Frontier,
    ) -> Result<bool, StoreError>;
}

/// The stored head, with its frontier.
pub(crate) struct StoredHead {
    pub(crate) head: Head,
    pub(crate) frontier: Frontier,
}

/// One entry as a backend stores it.
pub(crate) struct EntryRow<'a> {
    /// Its seq.
    pub seq: u64,
    /// The encoded entry: what is hashed, stored and published.
    pub bytes: &'a [u8],
    /// Its leaf hash.
    pub leaf: &'a Hash,
    /// The Merkle nodes the entry completes, concatenated (see `Frontier::append_collecting`).
    pub nodes: &'a [u8],
    /// Its kind's code.
    pub kind: i64,
    /// Its ref name.
    pub refname: &'a str,
    /// The entry it aborts, if any.
    pub aborts: Option<u64>,
}

/// The kinds of entry that can move a ref, as [`ReadTx::moves`] selects them.
pub(crate) const MOVING_KINDS: [Kind; 4] = [
    Kind::Accepted,
    Kind::Aborted,
    Kind::PolicyChange,
    Kind::Adopted,
];

/// Where the ledger says `refname` is: newest first over the ref's entries that can move it,
/// the first one that sets it and that no later `aborted` entry cancels.
pub(crate) fn position(
    tx: &mut impl ReadTx,
    refname: &str,
) -> Result<Option<Position>, StoreError> {
    let mut cancelled = HashSet::new();
    let mut found = None;
    tx.moves(refname, &mut |seq, bytes, _| {
        let view =
            EntryView::parse(bytes).map_err(|source| StoreError::BadEntry { seq, source })?;
        match effect(&view) {
            Effect::Cancels(target) => {
                cancelled.insert(target);
            }
            Effect::Sets { .. } if !cancelled.contains(&seq) => {
                found = Some(Position {
                    seq,
                    kind: view.kind,
                    commit: view.new.map(<[u8]>::to_vec),
                    tree: view.new_tree.map(<[u8]>::to_vec),
                });
                return Ok(false);
            }
            Effect::Sets { .. } | Effect::Nothing => {}
        }
        Ok(true)
    })?;
    Ok(found)
}

/// An entry read back: its bytes must hash to its stored leaf hash, decode, and carry the seq
/// it is stored under.
pub(crate) fn record(seq: u64, bytes: &[u8], stored: &Hash) -> Result<Record, StoreError> {
    let computed = leaf_hash(bytes);
    if &computed != stored {
        return Err(StoreError::DamagedEntry {
            seq,
            problem: "its bytes do not match its leaf hash",
        });
    }
    let view = EntryView::parse(bytes).map_err(|source| StoreError::BadEntry { seq, source })?;
    if view.seq != seq {
        return Err(StoreError::DamagedEntry {
            seq,
            problem: "it is stored under another entry's seq",
        });
    }
    Ok(Record {
        entry: view.to_entry(),
        leaf_hash: computed,
    })
}

/// The hash of the complete subtree of `2^level` leaves starting at leaf `index << level`,
/// from the stored leaf hashes and nodes.
pub(crate) fn node(tx: &mut impl ReadTx, level: u32, index: u64) -> Result<Hash, StoreError> {
    if level == 0 {
        return tx.leaf(index);
    }
    // The node is completed by its last leaf, and stored in that leaf's row, after the
    // nodes of the levels below it (see Frontier::append_collecting).
    let last = index
        .checked_add(1)
        .and_then(|i| i.checked_mul(1u64 << level))
        .and_then(|i| i.checked_sub(1))
        .ok_or(ProofError::SizeTooLarge { size: u64::MAX })?;
    let nodes = tx.nodes(last)?;
    let wrong_length = || Corruption {
        table: "entries",
        row: i64::try_from(last).unwrap_or(i64::MAX),
        column: "nodes",
        problem: "blob of the wrong length",
    };
    if nodes.len() != 32 * last.trailing_ones() as usize {
        return Err(wrong_length().into());
    }
    let at = (level as usize - 1) * 32;
    nodes
        .get(at..at + 32)
        .and_then(|n| Hash::try_from(n).ok())
        .ok_or_else(|| wrong_length().into())
}
