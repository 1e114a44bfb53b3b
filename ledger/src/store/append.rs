//! Appending to a ledger, whatever stores it.
//!
//! The rules of an append (what the store assigns to each entry, the continuity and abort
//! rules of `chain.rs`, the Merkle frontier, the checkpoint of the new head, the
//! compare-and-swap of the head) are written once, here, against `backend::AppendTx`: the
//! handful of reads and writes a storage backend offers inside one serialised transaction.
//! The SQLite store implements it over a `BEGIN IMMEDIATE` transaction; a second backend
//! (issue 15's PostgreSQL) implements the same trait and appends byte for byte the same
//! entries, hashes and checkpoints.

use crate::SigningKey;
use crate::chain::{Effect, continuity, effect_of};
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::entry::{Entry, Kind};
use crate::merkle::{Hash, leaf_hash};

use super::backend::{AppendTx, EntryRow, StoredHead, position};
use super::{AppendOutcome, Head, NewEntry, StoreError};

/// What the store assigns to every entry of an append.
pub(crate) struct Ledger<'a> {
    /// The checkpoint origin.
    pub origin: &'a str,
    /// The repository id stored in each entry.
    pub repository: &'a str,
}

/// Appends `entries` and signs a checkpoint of the new head, inside `tx`. On any error the
/// caller drops the transaction and nothing is written.
pub(crate) fn append(
    tx: &mut impl AppendTx,
    ledger: &Ledger<'_>,
    entries: Vec<NewEntry>,
    now: jiff::Timestamp,
    time: u64,
    key: &SigningKey,
) -> Result<AppendOutcome, StoreError> {
    if entries.is_empty() {
        return Err(StoreError::NothingToAppend);
    }
    // 1. The head, consistent with its frontier.
    let StoredHead { head, mut frontier } = consistent_head(tx)?;
    let first_seq = head.size;
    let mut prev = head.last_leaf;
    let mut nodes = Vec::with_capacity(64 * 32);
    for new in entries {
        // 2. The entry, with what the store assigns.
        let entry = assign(new, frontier.size(), now, ledger.repository, prev);
        let bytes = entry.encode().map_err(|source| StoreError::Encode {
            seq: entry.seq,
            source,
        })?;
        // 3. The chain's rules between this entry and the ledger so far.
        check_rules(tx, &entry)?;
        // 4. Stored, with the Merkle nodes it completes.
        let leaf = leaf_hash(&bytes);
        nodes.clear();
        frontier.append_collecting(&leaf, |node| nodes.extend_from_slice(node));
        tx.insert_entry(&EntryRow {
            seq: entry.seq,
            bytes: &bytes,
            leaf: &leaf,
            nodes: &nodes,
            kind: i64::from(entry.kind.code()),
            refname: &entry.refname,
            aborts: entry.aborts,
        })?;
        prev = leaf;
    }
    // 5. A checkpoint of the new head, and the head moved by compare-and-swap.
    let new_head = Head {
        size: frontier.size(),
        root: frontier.root(),
        last_leaf: prev,
    };
    let checkpoint = sign(tx, ledger, &new_head, time, key)?;
    if !tx.move_head(&head, &new_head, &frontier)? {
        return Err(StoreError::HeadMoved {
            expected_size: head.size,
        });
    }
    Ok(AppendOutcome {
        first_seq,
        size: new_head.size,
        root: new_head.root,
        checkpoint,
    })
}

/// Signs and keeps a fresh checkpoint of the current head (the freshness heartbeat).
pub(crate) fn heartbeat(
    tx: &mut impl AppendTx,
    ledger: &Ledger<'_>,
    time: u64,
    key: &SigningKey,
) -> Result<SignedCheckpoint, StoreError> {
    let StoredHead { head, .. } = consistent_head(tx)?;
    sign(tx, ledger, &head, time, key)
}

fn consistent_head(tx: &mut impl AppendTx) -> Result<StoredHead, StoreError> {
    let stored = tx.head()?;
    if stored.frontier.size() != stored.head.size || stored.frontier.root() != stored.head.root {
        return Err(StoreError::HeadInconsistent);
    }
    Ok(stored)
}

fn assign(new: NewEntry, seq: u64, now: jiff::Timestamp, repository: &str, prev: Hash) -> Entry {
    Entry {
        seq,
        kind: new.kind,
        time: now,
        repository: repository.to_owned(),
        refname: new.refname,
        old: new.old,
        new: new.new,
        new_tree: new.new_tree,
        commits: new.commits,
        pusher: new.pusher,
        policy_digest: new.policy_digest,
        reasons: new.reasons,
        aborts: new.aborts,
        prev_hash: prev,
    }
}

/// Continuity (a move starts where the ledger has the ref) and the abort rules (an `aborted`
/// entry cancels the latest entry that set its ref, once, and only a kind that can be
/// cancelled).
fn check_rules(tx: &mut impl AppendTx, entry: &Entry) -> Result<(), StoreError> {
    let effect = effect_of(entry.kind, &entry.refname, entry.aborts);
    if effect == (Effect::Sets { continuous: true }) {
        let at = position(tx, &entry.refname)?;
        continuity(entry.seq, &entry.refname, entry.old.as_deref(), at.as_ref())?;
    }
    let Some(target) = entry.aborts else {
        return Ok(());
    };
    if position(tx, &entry.refname)?.is_none_or(|p| p.seq != target) {
        return Err(StoreError::BadAbort {
            target,
            problem: "it is not the latest entry that set the aborted entry's ref",
        });
    }
    let cancellable =
        [Kind::Accepted, Kind::PolicyChange, Kind::Adopted].map(|k| i64::from(k.code()));
    match tx.kind_of(target)? {
        None => {
            return Err(StoreError::BadAbort {
                target,
                problem: "no such entry",
            });
        }
        Some(k) if !cancellable.contains(&k) => {
            return Err(StoreError::BadAbort {
                target,
                problem: "only accepted, policy-change and adopted entries can be aborted",
            });
        }
        Some(_) => {}
    }
    if tx.is_aborted(target)? {
        return Err(StoreError::BadAbort {
            target,
            problem: "it is already aborted",
        });
    }
    Ok(())
}

fn sign(
    tx: &mut impl AppendTx,
    ledger: &Ledger<'_>,
    head: &Head,
    time: u64,
    key: &SigningKey,
) -> Result<SignedCheckpoint, StoreError> {
    let checkpoint = Checkpoint {
        origin: ledger.origin.to_owned(),
        size: head.size,
        root: head.root,
    }
    .sign(time, key)?;
    tx.insert_checkpoint(&checkpoint, head.size, &head.root, time)?;
    Ok(checkpoint)
}
