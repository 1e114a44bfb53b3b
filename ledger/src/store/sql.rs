//! The SQLite rows of a ledger: reading columns as untrusted (a wrong type, a NULL or a blob
//! of the wrong length is a [`Corruption`], never a panic), the head, meta, checkpoint and
//! entry rows, where the ledger last put a ref, and [`SqliteTx`], the SQLite side of an append
//! (`super::append::AppendTx`).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::Duration;

use std::ops::Range;

use super::backend::{AppendTx, EntryFn, EntryRow, MOVING_KINDS, ReadTx, StoredHead};
use super::{Corruption, Filter, Head, Options, StoreError, StoredCheckpoint, is_busy};
use crate::checkpoint::SignedCheckpoint;
use crate::merkle::{Frontier, Hash};

pub(super) fn to_sql(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        what: "value",
        value,
        size: i64::MAX as u64,
    })
}

/// Where a value was read, for [`Corruption`]: table, row key, column.
type At = (&'static str, i64, &'static str);

pub(super) fn corrupt(at: At, problem: &'static str) -> Corruption {
    let (table, row, column) = at;
    Corruption {
        table,
        row,
        column,
        problem,
    }
}

/// Reads column `index` of a row: present (not NULL) and readable, of any type.
pub(super) fn column_value<'r>(
    row: &'r rusqlite::Row<'_>,
    index: usize,
    at: At,
) -> Result<ValueRef<'r>, Corruption> {
    match row.get_ref(index) {
        Ok(ValueRef::Null) => Err(corrupt(at, "NULL")),
        Ok(value) => Ok(value),
        Err(_) => Err(corrupt(at, "unreadable")),
    }
}

/// Reads column `index` of a row as a blob of exactly `N` bytes.
pub(crate) fn column_array<const N: usize>(
    row: &rusqlite::Row<'_>,
    index: usize,
    at: At,
) -> Result<[u8; N], Corruption> {
    column_blob(row, index, at)?
        .try_into()
        .map_err(|_| corrupt(at, "blob of the wrong length"))
}

/// Reads column `index` of a row as a blob.
pub(crate) fn column_blob<'r>(
    row: &'r rusqlite::Row<'_>,
    index: usize,
    at: At,
) -> Result<&'r [u8], Corruption> {
    match column_value(row, index, at)? {
        ValueRef::Blob(b) => Ok(b),
        _ => Err(corrupt(at, "not a blob")),
    }
}

/// Reads column `index` of a row as UTF-8 text.
pub(crate) fn column_text<'r>(
    row: &'r rusqlite::Row<'_>,
    index: usize,
    at: At,
) -> Result<&'r str, Corruption> {
    match column_value(row, index, at)? {
        ValueRef::Text(t) => std::str::from_utf8(t).map_err(|_| corrupt(at, "not UTF-8")),
        _ => Err(corrupt(at, "not text")),
    }
}

/// Reads column `index` of a row as a non-negative integer.
pub(crate) fn column_u64(row: &rusqlite::Row<'_>, index: usize, at: At) -> Result<u64, Corruption> {
    u64::try_from(column_i64(row, index, at)?).map_err(|_| corrupt(at, "negative"))
}

/// Reads column `index` of a row as an optional non-negative integer.
pub(crate) fn column_opt_u64(
    row: &rusqlite::Row<'_>,
    index: usize,
    at: At,
) -> Result<Option<u64>, Corruption> {
    match row.get_ref(index) {
        Ok(ValueRef::Null) => Ok(None),
        _ => column_u64(row, index, at).map(Some),
    }
}

/// Reads column `index` of a row as any integer (row keys).
pub(crate) fn column_i64(row: &rusqlite::Row<'_>, index: usize, at: At) -> Result<i64, Corruption> {
    match column_value(row, index, at)? {
        ValueRef::Integer(i) => Ok(i),
        _ => Err(corrupt(at, "not an integer")),
    }
}

pub(crate) fn read_head(conn: &Connection) -> Result<StoredHead, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT size, root, last_leaf, frontier FROM head WHERE id = 1")?;
    let mut rows = stmt.query([])?;
    let Some(row) = rows.next()? else {
        return Err(Corruption {
            table: "head",
            row: 1,
            column: "*",
            problem: "missing",
        }
        .into());
    };
    let size = column_u64(row, 0, ("head", 1, "size"))?;
    let root = column_array(row, 1, ("head", 1, "root"))?;
    let last_leaf = column_array(row, 2, ("head", 1, "last_leaf"))?;
    let frontier =
        Frontier::from_bytes(column_blob(row, 3, ("head", 1, "frontier"))?).map_err(|_| {
            Corruption {
                table: "head",
                row: 1,
                column: "frontier",
                problem: "malformed",
            }
        })?;
    Ok(StoredHead {
        head: Head {
            size,
            root,
            last_leaf,
        },
        frontier,
    })
}

pub(super) struct Meta {
    pub(super) origin: String,
    pub(super) repository: String,
    pub(super) public_key: [u8; 32],
}

pub(super) fn read_meta(conn: &Connection) -> Result<Meta, StoreError> {
    let mut stmt = conn.prepare("SELECT origin, repository, public_key FROM meta WHERE id = 1")?;
    let mut rows = stmt.query([])?;
    let Some(row) = rows.next()? else {
        return Err(Corruption {
            table: "meta",
            row: 1,
            column: "*",
            problem: "missing",
        }
        .into());
    };
    Ok(Meta {
        origin: column_text(row, 0, ("meta", 1, "origin"))?.to_owned(),
        repository: column_text(row, 1, ("meta", 1, "repository"))?.to_owned(),
        public_key: column_array(row, 2, ("meta", 1, "public_key"))?,
    })
}

/// The SQLite side of an append: one `BEGIN IMMEDIATE` transaction, which serialises with
/// every other writer of the file.
pub(super) struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl<'c> SqliteTx<'c> {
    pub(super) fn begin(
        conn: &'c mut Connection,
        timeout: Duration,
    ) -> Result<SqliteTx<'c>, StoreError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self_busy(e, timeout))?;
        Ok(SqliteTx { tx })
    }

    pub(super) fn commit(self, timeout: Duration) -> Result<(), StoreError> {
        self.tx.commit().map_err(|e| self_busy(e, timeout))
    }
}

/// Reads inside an append see the rows the append wrote so far.
impl ReadTx for SqliteTx<'_> {
    fn head(&mut self) -> Result<StoredHead, StoreError> {
        Sql(&self.tx).head()
    }

    fn refnames(&mut self) -> Result<Vec<String>, StoreError> {
        Sql(&self.tx).refnames()
    }

    fn moves(&mut self, refname: &str, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        Sql(&self.tx).moves(refname, f)
    }

    fn entries(&mut self, range: Range<u64>, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        Sql(&self.tx).entries(range, f)
    }

    fn select(&mut self, filter: &Filter, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        Sql(&self.tx).select(filter, f)
    }

    fn leaf(&mut self, seq: u64) -> Result<Hash, StoreError> {
        Sql(&self.tx).leaf(seq)
    }

    fn nodes(&mut self, seq: u64) -> Result<Vec<u8>, StoreError> {
        Sql(&self.tx).nodes(seq)
    }

    fn checkpoints(
        &mut self,
        newest_first: bool,
        f: &mut dyn FnMut(StoredCheckpoint) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        Sql(&self.tx).checkpoints(newest_first, f)
    }
}

impl AppendTx for SqliteTx<'_> {
    fn kind_of(&mut self, seq: u64) -> Result<Option<i64>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT kind FROM entries WHERE seq = ?1")?;
        Ok(stmt
            .query_row([to_sql(seq)?], |row| row.get(0))
            .optional()?)
    }

    fn is_aborted(&mut self, seq: u64) -> Result<bool, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT 1 FROM entries WHERE aborts = ?1")?;
        Ok(stmt.exists([to_sql(seq)?])?)
    }

    fn insert_entry(&mut self, row: &EntryRow<'_>) -> Result<(), StoreError> {
        insert_entry(&self.tx, row)
    }

    fn insert_checkpoint(
        &mut self,
        checkpoint: &SignedCheckpoint,
        size: u64,
        root: &Hash,
        time: u64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO checkpoints (size, root, time, note) VALUES (?1, ?2, ?3, ?4)",
            params![
                to_sql(size)?,
                root.as_slice(),
                to_sql(time)?,
                checkpoint.text()
            ],
        )?;
        Ok(())
    }

    fn move_head(
        &mut self,
        from: &Head,
        to: &Head,
        frontier: &Frontier,
    ) -> Result<bool, StoreError> {
        let moved = self.tx.execute(
            "UPDATE head SET size = ?1, root = ?2, last_leaf = ?3, frontier = ?4
             WHERE id = 1 AND size = ?5 AND root = ?6",
            params![
                to_sql(to.size)?,
                to.root.as_slice(),
                to.last_leaf.as_slice(),
                frontier.to_bytes(),
                to_sql(from.size)?,
                from.root.as_slice()
            ],
        )?;
        Ok(moved == 1)
    }
}

/// Stores one entry row: what an append writes, and what a migrate copies.
pub(super) fn insert_entry(conn: &Connection, row: &EntryRow<'_>) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO entries (seq, bytes, leaf_hash, nodes, kind, refname, aborts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    insert.execute(params![
        to_sql(row.seq)?,
        row.bytes,
        row.leaf.as_slice(),
        row.nodes,
        row.kind,
        row.refname,
        row.aborts.map(to_sql).transpose()?,
    ])?;
    Ok(())
}

pub(super) fn self_busy(e: rusqlite::Error, timeout: Duration) -> StoreError {
    if is_busy(&e) {
        StoreError::Busy { timeout }
    } else {
        StoreError::Database(e)
    }
}

pub(super) fn busy(e: rusqlite::Error, options: &Options) -> StoreError {
    self_busy(e, options.busy_timeout)
}

pub(super) fn unix_seconds(now: jiff::Timestamp) -> Result<u64, StoreError> {
    u64::try_from(now.as_second()).map_err(|_| StoreError::TimeBeforeEpoch { time: now })
}

pub(super) fn read_checkpoint(row: &rusqlite::Row<'_>) -> Result<StoredCheckpoint, StoreError> {
    let id = column_i64(row, 0, ("checkpoints", 0, "id"))?;
    let at = |column| ("checkpoints", id, column);
    Ok(StoredCheckpoint {
        id,
        size: column_u64(row, 1, at("size"))?,
        root: column_array(row, 2, at("root"))?,
        time: column_u64(row, 3, at("time"))?,
        note: SignedCheckpoint::parse(column_text(row, 4, at("note"))?)?,
    })
}

/// Reads from an SQLite connection (or transaction), for [`ReadTx`].
pub(super) struct Sql<'c>(pub(super) &'c Connection);

/// Reads `(seq, bytes, leaf_hash)` rows and hands them to `f` until it returns `false`.
fn each_entry(rows: &mut rusqlite::Rows<'_>, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
    while let Some(row) = rows.next()? {
        let key = column_i64(row, 0, ("entries", 0, "seq"))?;
        let seq = u64::try_from(key).map_err(|_| corrupt(("entries", key, "seq"), "negative"))?;
        let bytes = column_blob(row, 1, ("entries", key, "bytes"))?;
        let leaf: Hash = column_array(row, 2, ("entries", key, "leaf_hash"))?;
        if !f(seq, bytes, &leaf)? {
            break;
        }
    }
    Ok(())
}

/// One column of the entry row `seq`, which must exist.
fn entry_column<T>(
    conn: &Connection,
    sql: &str,
    seq: u64,
    read: impl FnOnce(&rusqlite::Row<'_>, i64) -> Result<T, Corruption>,
) -> Result<T, StoreError> {
    let key = to_sql(seq)?;
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([key])?;
    let Some(row) = rows.next()? else {
        return Err(corrupt(("entries", key, "*"), "missing").into());
    };
    Ok(read(row, key)?)
}

impl ReadTx for Sql<'_> {
    fn head(&mut self) -> Result<StoredHead, StoreError> {
        read_head(self.0)
    }

    fn refnames(&mut self) -> Result<Vec<String>, StoreError> {
        // A skip-scan of the ref index: the cost is in the number of refs, not of entries.
        let mut stmt = self.0.prepare_cached(
            "WITH RECURSIVE r(name) AS (
                 SELECT min(refname) FROM entries WHERE refname > ''
                 UNION ALL
                 SELECT (SELECT min(refname) FROM entries WHERE refname > r.name)
                 FROM r WHERE r.name IS NOT NULL
             )
             SELECT name FROM r WHERE name IS NOT NULL",
        )?;
        let names = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    fn moves(&mut self, refname: &str, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT seq, bytes, leaf_hash FROM entries WHERE refname = ?1
             AND kind IN (?2, ?3, ?4, ?5) ORDER BY seq DESC",
        )?;
        let [a, b, c, d] = MOVING_KINDS.map(|k| i64::from(k.code()));
        let mut rows = stmt.query(params![refname, a, b, c, d])?;
        each_entry(&mut rows, f)
    }

    fn entries(&mut self, range: Range<u64>, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        let end = range.end.min(i64::MAX as u64);
        let start = range.start.min(end);
        let mut stmt = self.0.prepare_cached(
            "SELECT seq, bytes, leaf_hash FROM entries WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![to_sql(start)?, to_sql(end)?])?;
        each_entry(&mut rows, f)
    }

    fn select(&mut self, filter: &Filter, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        let mut sql = String::from("SELECT seq, bytes, leaf_hash FROM entries WHERE 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(refname) = &filter.refname {
            args.push(refname.clone().into());
            sql.push_str(&format!(" AND refname = ?{}", args.len()));
        }
        if let Some(kind) = filter.kind {
            args.push(i64::from(kind.code()).into());
            sql.push_str(&format!(" AND kind = ?{}", args.len()));
        }
        if let Some(before) = filter.before {
            args.push(to_sql(before.min(i64::MAX as u64))?.into());
            sql.push_str(&format!(" AND seq < ?{}", args.len()));
        }
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        args.push(limit.into());
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
        let mut stmt = self.0.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        each_entry(&mut rows, f)
    }

    fn leaf(&mut self, seq: u64) -> Result<Hash, StoreError> {
        entry_column(
            self.0,
            "SELECT leaf_hash FROM entries WHERE seq = ?1",
            seq,
            |row, key| column_array(row, 0, ("entries", key, "leaf_hash")),
        )
    }

    fn nodes(&mut self, seq: u64) -> Result<Vec<u8>, StoreError> {
        entry_column(
            self.0,
            "SELECT nodes FROM entries WHERE seq = ?1",
            seq,
            |row, key| column_blob(row, 0, ("entries", key, "nodes")).map(<[u8]>::to_vec),
        )
    }

    fn checkpoints(
        &mut self,
        newest_first: bool,
        f: &mut dyn FnMut(StoredCheckpoint) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(if newest_first {
            "SELECT id, size, root, time, note FROM checkpoints ORDER BY id DESC"
        } else {
            "SELECT id, size, root, time, note FROM checkpoints ORDER BY id"
        })?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if !f(read_checkpoint(row)?)? {
                break;
            }
        }
        Ok(())
    }
}
