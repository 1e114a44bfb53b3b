//! Moving a ledger from one backend to the other (`tally ledger migrate`) without changing a
//! byte of any entry or checkpoint.
//!
//! The copy runs while the source's write lock is held (SQLite's `BEGIN IMMEDIATE`, or the
//! PostgreSQL ledger row's lock), so no push appends in between: pushes wait, then are refused
//! as busy. Every entry is copied with its stored bytes after its leaf hash is checked; the
//! Merkle nodes each entry completes are recomputed from the leaves (they are a function of
//! them, and `tally ledger verify` checks them), and the recomputed head must be the source's.
//! Checkpoints are copied with their ids and notes as stored. The destination is written in
//! one transaction; the caller's `switch` (pointing the repository at the copy) runs before
//! the source's lock is released, and if it fails the copy is removed again.

use std::path::Path;

use rusqlite::params;

use super::backend::{EntryRow, ReadTx, StoredHead, record};
use super::pg::{self, PgError};
use super::sql::{SqliteTx, to_sql};
use super::{Backend, Head, Options, Postgres, Store, StoreError, StoredCheckpoint};
use crate::merkle::Frontier;

/// Where [`Store::migrate`] copies a ledger.
#[derive(Debug)]
pub enum Destination<'a> {
    /// A new SQLite file (it must not exist).
    Sqlite(&'a Path),
    /// A PostgreSQL database (its schema is created or upgraded; it must not hold a ledger
    /// for this repository yet).
    Postgres(Box<Postgres>),
}

/// The writes of a copy, in the destination's transaction.
trait Import {
    fn entry(&mut self, row: &EntryRow<'_>) -> Result<(), StoreError>;
    fn checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError>;
    fn head(&mut self, head: &Head, frontier: &Frontier) -> Result<(), StoreError>;
}

struct SqliteImport<'t>(&'t rusqlite::Transaction<'t>);

impl Import for SqliteImport<'_> {
    fn entry(&mut self, row: &EntryRow<'_>) -> Result<(), StoreError> {
        super::sql::insert_entry(self.0, row)
    }

    fn checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        let mut insert = self.0.prepare_cached(
            "INSERT INTO checkpoints (id, size, root, time, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        insert.execute(params![
            c.id,
            to_sql(c.size)?,
            c.root.as_slice(),
            to_sql(c.time)?,
            c.note.text()
        ])?;
        Ok(())
    }

    fn head(&mut self, head: &Head, frontier: &Frontier) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE head SET size = ?1, root = ?2, last_leaf = ?3, frontier = ?4 WHERE id = 1",
            params![
                to_sql(head.size)?,
                head.root.as_slice(),
                head.last_leaf.as_slice(),
                frontier.to_bytes()
            ],
        )?;
        Ok(())
    }
}

impl<C: postgres::GenericClient> Import for pg::Pg<'_, C> {
    fn entry(&mut self, row: &EntryRow<'_>) -> Result<(), StoreError> {
        super::backend::AppendTx::insert_entry(self, row)
    }

    fn checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        self.import_checkpoint(c)
    }

    fn head(&mut self, head: &Head, frontier: &Frontier) -> Result<(), StoreError> {
        let empty = Head {
            size: 0,
            root: crate::merkle::EMPTY_ROOT,
            last_leaf: crate::GENESIS,
        };
        if super::backend::AppendTx::move_head(self, &empty, head, frontier)? {
            Ok(())
        } else {
            Err(StoreError::HeadMoved { expected_size: 0 })
        }
    }
}

/// What is copied: the source's head, and its newest checkpoint at the time of the lock.
struct Snapshot {
    head: StoredHead,
    newest_checkpoint: i64,
}

fn snapshot(src: &mut impl ReadTx) -> Result<Snapshot, StoreError> {
    let head = src.head()?;
    if head.frontier.size() != head.head.size || head.frontier.root() != head.head.root {
        return Err(StoreError::HeadInconsistent);
    }
    let mut newest = None;
    src.checkpoints(true, &mut |c| {
        newest = Some(c.id);
        Ok(false)
    })?;
    Ok(Snapshot {
        head,
        newest_checkpoint: newest.unwrap_or(0),
    })
}

/// Copies every entry and checkpoint of `src` into `dst`, then sets `dst`'s head.
fn copy(
    src: &mut impl ReadTx,
    dst: &mut impl Import,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    let want = &snapshot.head.head;
    let mut frontier = Frontier::new();
    let mut nodes = Vec::new();
    let mut last_leaf = crate::GENESIS;
    let mut result = Ok(());
    src.entries(0..want.size, &mut |seq, bytes, leaf| {
        let record = record(seq, bytes, leaf)?;
        if seq != frontier.size() {
            return Err(StoreError::DamagedEntry {
                seq,
                problem: "an entry before it is missing; run `tally ledger verify`",
            });
        }
        nodes.clear();
        frontier.append_collecting(leaf, |node| nodes.extend_from_slice(node));
        last_leaf = *leaf;
        result = dst.entry(&EntryRow {
            seq,
            bytes,
            leaf,
            nodes: &nodes,
            kind: i64::from(record.entry.kind.code()),
            refname: &record.entry.refname,
            aborts: record.entry.aborts,
        });
        Ok(result.is_ok())
    })?;
    result?;
    let copied = Head {
        size: frontier.size(),
        root: frontier.root(),
        last_leaf,
    };
    if &copied != want || frontier.to_bytes() != snapshot.head.frontier.to_bytes() {
        return Err(StoreError::HeadInconsistent);
    }
    let mut result = Ok(());
    src.checkpoints(false, &mut |c| {
        if c.id <= snapshot.newest_checkpoint {
            result = dst.checkpoint(&c);
        }
        Ok(result.is_ok())
    })?;
    result?;
    dst.head(want, &frontier)
}

/// Why the repository could not be switched to the copy.
fn switch_failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Postgres(PgError::new(format!(
        "the copy was made but the repository could not be pointed at it ({e}); the copy was removed and the ledger is unchanged and still in use"
    )))
}

impl Store {
    /// Copies this ledger to `to` without changing a byte of any entry or checkpoint, while
    /// holding its write lock; then calls `switch` with the copy (to point the repository at
    /// it) before releasing the lock, and returns the copy. If anything fails, the copy is
    /// removed and this ledger is unchanged.
    pub fn migrate<E: std::fmt::Display>(
        &mut self,
        to: Destination<'_>,
        options: &Options,
        switch: impl FnOnce(&Store) -> Result<(), E>,
    ) -> Result<Store, StoreError> {
        let timeout = self.busy_timeout;
        let meta = (
            self.origin.clone(),
            self.repository.clone(),
            self.public_key,
        );
        match &mut self.backend {
            Backend::Sqlite { conn, .. } => {
                let mut src = SqliteTx::begin(conn, timeout)?;
                let copy = copy_to(&mut src, to, options, &meta, switch)?;
                drop(src);
                Ok(copy)
            }
            Backend::Postgres { conn, ledger, .. } => conn.get_mut().locked(*ledger, |src| {
                src.no_statement_timeout()?;
                let copy = copy_to(src, to, options, &meta, switch)?;
                // Nodes that still name this database refuse from now on, rather than
                // write a ledger no one reads.
                src.mark_moved(&copy.location())?;
                Ok(copy)
            }),
        }
    }
}

fn copy_to<E: std::fmt::Display>(
    src: &mut impl ReadTx,
    to: Destination<'_>,
    options: &Options,
    (origin, repository, public_key): &(String, String, [u8; 32]),
    switch: impl FnOnce(&Store) -> Result<(), E>,
) -> Result<Store, StoreError> {
    let snapshot = snapshot(src)?;
    match to {
        Destination::Sqlite(path) => {
            if path.exists() {
                return Err(StoreError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
            let made =
                Store::initialise_with(path, origin, repository, public_key, options, |tx| {
                    copy(src, &mut SqliteImport(tx), &snapshot)
                });
            let remove = || {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut name = path.as_os_str().to_owned();
                    name.push(suffix);
                    let _ = std::fs::remove_file(std::path::PathBuf::from(name));
                }
            };
            let conn = match made {
                Ok(conn) => conn,
                Err(e) => {
                    if !matches!(e, StoreError::AlreadyExists { .. }) {
                        remove();
                    }
                    return Err(e);
                }
            };
            drop(conn);
            let copy = Store::open_with(path, options)?;
            if let Err(e) = switch(&copy) {
                drop(copy);
                remove();
                return Err(switch_failed(e));
            }
            Ok(copy)
        }
        Destination::Postgres(db) => {
            let mut db = *db;
            db.upgrade()?;
            let lock_timeout = db.conn.lock_timeout();
            let e = |e| pg::error(e, lock_timeout);
            let ledger = {
                let mut tx = db.conn.client.transaction().map_err(e)?;
                tx.batch_execute("SET LOCAL statement_timeout = 0")
                    .map_err(e)?;
                // A ledger migrated away from this database earlier comes back in its place.
                pg::delete_moved(&mut tx, repository, lock_timeout)?;
                let empty = Head {
                    size: 0,
                    root: crate::merkle::EMPTY_ROOT,
                    last_leaf: crate::GENESIS,
                };
                let ledger = pg::insert_ledger(
                    &mut tx,
                    repository,
                    origin,
                    public_key,
                    &empty,
                    &Frontier::new(),
                    lock_timeout,
                )
                .map_err(|err| match err {
                    StoreError::Postgres(p) if p.source.is_none() => StoreError::InDatabase {
                        location: db.location.clone(),
                        repository: repository.clone(),
                    },
                    other => other,
                })?;
                copy(
                    src,
                    &mut pg::Pg::new(&mut tx, ledger, lock_timeout),
                    &snapshot,
                )?;
                tx.commit().map_err(e)?;
                ledger
            };
            let location = db.location.clone();
            let copy = Store::open_in(db, repository)?;
            if let Err(err) = switch(&copy) {
                let removed = copy.delete_shared_ledger(ledger);
                return Err(match removed {
                    Ok(()) => switch_failed(err),
                    Err(also) => StoreError::Postgres(PgError::new(format!(
                        "the repository could not be pointed at the copy ({err}), and the copy in {location} could not be removed ({also}); the ledger is unchanged and still in use; delete the copy's rows (ledger id {ledger}) before migrating again"
                    ))),
                });
            }
            Ok(copy)
        }
    }
}

impl Store {
    /// Removes a ledger this process just copied into PostgreSQL (a failed migrate).
    fn delete_shared_ledger(self, ledger: i64) -> Result<(), StoreError> {
        let Backend::Postgres { conn, .. } = self.backend else {
            return Ok(());
        };
        let mut conn = conn.into_inner();
        let lock_timeout = conn.lock_timeout();
        let e = |e| pg::error(e, lock_timeout);
        let mut tx = conn.client.transaction().map_err(e)?;
        pg::delete_ledger(&mut tx, ledger, lock_timeout)?;
        tx.commit().map_err(e)
    }
}
