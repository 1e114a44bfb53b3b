//! The PostgreSQL store of a ledger (issue 15): one database holds the ledgers of many
//! repositories, and every git server holding a replica of one repository appends to the same
//! ledger.
//!
//! The rows are the SQLite store's, byte for byte (the encoded entry, its leaf hash, the
//! Merkle nodes it completes, the checkpoint notes), under the schema `tally`, keyed by the
//! ledger's id in `tally.ledgers`; that row also holds the head and its frontier. An append is
//! one transaction that first locks its ledger's row (`SELECT ... FOR UPDATE`), so appends
//! from every node serialise on it, and in READ COMMITTED each statement after the lock sees
//! everything the previous holder committed. The head then moves by compare-and-swap as in
//! SQLite. The schema is versioned in `tally.schema_migrations`: [`migrate`] applies what is
//! missing under an advisory lock, and a database whose schema is newer than this build is
//! refused.
//!
//! Rows are read as untrusted, as in SQLite: a NULL, a value of the wrong type or a blob of
//! the wrong length is a [`Corruption`], and every entry read back is checked against its leaf
//! hash by the rules in `backend.rs`.

use std::ops::Range;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::{FromSql, ToSql, Type};
use postgres::{Client, GenericClient, Row};

use super::backend::{AppendTx, EntryFn, EntryRow, MOVING_KINDS, ReadTx, StoredHead};
use super::{Corruption, Filter, Head, StoreError, StoredCheckpoint, VerifyError};
use crate::checkpoint::SignedCheckpoint;
use crate::merkle::{Frontier, Hash};

/// The schema version this build writes and reads (`tally.schema_migrations`).
pub const PG_SCHEMA_VERSION: i32 = 1;

/// How long one statement may run before the server cancels it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows of a ref's moves read at a time when looking for its position (see `moves`).
const MOVES_PAGE: i64 = 16;

/// The advisory lock that serialises schema migrations ("taly" in ASCII).
const MIGRATION_LOCK: i64 = 0x7461_6c79;

/// Each migration: the version it brings the schema to, and its SQL.
const MIGRATIONS: &[(i32, &str)] = &[(1, SCHEMA_V1)];

const SCHEMA_V1: &str = "
CREATE TABLE tally.ledgers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository text   NOT NULL UNIQUE,
    origin     text   NOT NULL,
    public_key bytea  NOT NULL CHECK (octet_length(public_key) = 32),
    size       bigint NOT NULL CHECK (size >= 0),
    root       bytea  NOT NULL CHECK (octet_length(root) = 32),
    last_leaf  bytea  NOT NULL CHECK (octet_length(last_leaf) = 32),
    frontier   bytea  NOT NULL,
    created    timestamptz NOT NULL DEFAULT now(),
    moved      text
);
CREATE TABLE tally.entries (
    ledger    bigint  NOT NULL REFERENCES tally.ledgers (id),
    seq       bigint  NOT NULL CHECK (seq >= 0),
    bytes     bytea   NOT NULL,
    leaf_hash bytea   NOT NULL CHECK (octet_length(leaf_hash) = 32),
    nodes     bytea   NOT NULL,
    kind      integer NOT NULL,
    refname   text    NOT NULL,
    aborts    bigint,
    PRIMARY KEY (ledger, seq)
);
CREATE INDEX entries_by_ref ON tally.entries (ledger, refname, seq);
CREATE INDEX entries_by_kind ON tally.entries (ledger, kind, seq);
CREATE UNIQUE INDEX entries_by_aborts ON tally.entries (ledger, aborts) WHERE aborts IS NOT NULL;
CREATE TABLE tally.checkpoints (
    ledger bigint NOT NULL REFERENCES tally.ledgers (id),
    id     bigint NOT NULL CHECK (id > 0),
    size   bigint NOT NULL CHECK (size >= 0),
    root   bytea  NOT NULL CHECK (octet_length(root) = 32),
    time   bigint NOT NULL CHECK (time >= 0),
    note   text   NOT NULL,
    PRIMARY KEY (ledger, id)
);
CREATE INDEX checkpoints_by_size ON tally.checkpoints (ledger, size, id);
CREATE TABLE tally.inflight (
    ledger  bigint NOT NULL REFERENCES tally.ledgers (id),
    key     text   NOT NULL,
    marker  text   NOT NULL,
    node    text   NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ledger, key)
);
";

/// Why a PostgreSQL operation failed, in words an administrator can act on.
#[derive(Debug, thiserror::Error)]
#[error("PostgreSQL ledger: {problem}")]
pub struct PgError {
    /// What went wrong and what to do.
    pub problem: String,
    /// The driver's error, if any.
    #[source]
    pub source: Option<postgres::Error>,
}

impl PgError {
    pub(crate) fn new(problem: impl Into<String>) -> PgError {
        PgError {
            problem: problem.into(),
            source: None,
        }
    }
}

/// Classifies a driver error: the lock wait is [`StoreError::Busy`]; everything else says
/// what happened and what an administrator does about it.
pub(crate) fn error(e: postgres::Error, lock_timeout: Duration) -> StoreError {
    let code = e.code().cloned();
    let detail = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_owned());
    let problem = match code {
        Some(c) if c == SqlState::LOCK_NOT_AVAILABLE => {
            return StoreError::Busy {
                timeout: lock_timeout,
            };
        }
        Some(c) if c == SqlState::QUERY_CANCELED => format!(
            "a statement ran into the statement timeout ({}s) or was cancelled ({detail}); nothing was written; look for a slow or overloaded database server, then retry",
            STATEMENT_TIMEOUT.as_secs()
        ),
        Some(c) if c == SqlState::READ_ONLY_SQL_TRANSACTION => format!(
            "the database server is read-only ({detail}): it is a standby, or default_transaction_read_only is on; point [ledger] url at the primary, by a name that follows failover (a virtual IP, a DNS name or a connection pooler); nothing was written"
        ),
        Some(c)
            if c == SqlState::ADMIN_SHUTDOWN
                || c == SqlState::CRASH_SHUTDOWN
                || c == SqlState::CANNOT_CONNECT_NOW
                || c == SqlState::CONNECTION_FAILURE =>
        {
            format!(
                "the database server is shutting down or restarting ({detail}); the push was refused and nothing it wrote is half-done; retry once the server is back"
            )
        }
        Some(c) if c == SqlState::UNDEFINED_TABLE || c == SqlState::INVALID_SCHEMA_NAME => {
            format!(
                "tally's tables are missing ({detail}); run `tally init` on this repository to create them"
            )
        }
        Some(c) if c == SqlState::INSUFFICIENT_PRIVILEGE => format!(
            "permission denied ({detail}); the ledger's database role needs SELECT, INSERT, UPDATE and DELETE on the tables of schema tally (and CREATE for `tally init`)"
        ),
        Some(c)
            if c == SqlState::T_R_SERIALIZATION_FAILURE || c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            format!("the append conflicted with another ({detail}); nothing was written; retry")
        }
        _ if e.is_closed() => format!(
            "lost the connection to the database server ({detail}); the push was refused; if the append had reached the server, the in-flight marker lets the next push cancel it; retry once the server is reachable"
        ),
        _ => detail,
    };
    StoreError::Postgres(PgError {
        problem,
        source: Some(e),
    })
}

/// A connection to the database of a PostgreSQL ledger.
pub(crate) struct Conn {
    pub(crate) client: Client,
    lock_timeout: Duration,
    /// Whether the session's settings (timeouts) are in force yet.
    session: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// A connection whose session settings (statement, lock and idle-transaction timeouts)
    /// are sent with its first statement (see [`Conn::session`], [`open`]).
    pub(crate) fn new(client: Client, lock_timeout: Duration) -> Conn {
        Conn {
            client,
            lock_timeout,
            session: false,
        }
    }

    /// The session's settings, as SQL.
    fn session_sql(&self) -> String {
        format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {};",
            STATEMENT_TIMEOUT.as_millis(),
            self.lock_timeout.as_millis().max(1),
            STATEMENT_TIMEOUT.as_millis() * 2,
        )
    }

    /// Puts the session's settings in force, once.
    pub(crate) fn session(&mut self) -> Result<(), StoreError> {
        if !self.session {
            let sql = self.session_sql();
            self.client
                .batch_execute(&sql)
                .map_err(|e| error(e, self.lock_timeout))?;
            self.session = true;
        }
        Ok(())
    }

    /// How long an append waits for another node's.
    pub(crate) fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// Reads outside a transaction: each statement sees the latest committed state.
    pub(crate) fn read(&mut self, ledger: i64) -> Pg<'_, Client> {
        Pg {
            locked_head: None,
            c: &mut self.client,
            ledger,
            lock_timeout: self.lock_timeout,
        }
    }

    /// Runs `f` in one transaction that holds the ledger's row lock: it serialises with
    /// every other append to this ledger, from any node. Commits if `f` succeeds.
    pub(crate) fn locked<T>(
        &mut self,
        ledger: i64,
        f: impl FnOnce(&mut Pg<'_, postgres::Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lock_timeout = self.lock_timeout;
        let tx = self
            .client
            .transaction()
            .map_err(|e| error(e, lock_timeout))?;
        let mut tx = tx;
        let mut pg = Pg {
            locked_head: None,
            c: &mut tx,
            ledger,
            lock_timeout,
        };
        // The lock and the head in one statement: the append reads the head first.
        let locked = pg.query_opt(
            "SELECT moved, size, root, last_leaf, frontier FROM tally.ledgers WHERE id = $1 FOR UPDATE",
            &[p(&ledger)],
        )?;
        let Some(row) = locked else {
            return Err(StoreError::Postgres(PgError::new(format!(
                "ledger {ledger} disappeared from tally.ledgers; restore the database from a backup"
            ))));
        };
        if let Some(to) = row
            .try_get::<_, Option<String>>(0)
            .map_err(|_| corrupt(("ledgers", ledger, "moved"), "of the wrong type"))?
        {
            return Err(moved(&to));
        }
        pg.locked_head = Some(read_head(&row, 1, ledger)?);
        let value = f(&mut pg)?;
        tx.commit().map_err(|e| error(e, lock_timeout))?;
        Ok(value)
    }
}

/// The error for a ledger `tally ledger migrate` moved away from this database.
pub(crate) fn moved(to: &str) -> StoreError {
    StoreError::Postgres(PgError::new(format!(
        "this ledger was moved to {to} by `tally ledger migrate`; nothing more is written here: copy policy.toml from the node that moved it (its [ledger] table names the new place)"
    )))
}

/// Reads and writes of one ledger through a client or a transaction.
pub(crate) struct Pg<'c, C: GenericClient> {
    c: &'c mut C,
    /// The head read with the ledger's lock, for the first [`ReadTx::head`] of the
    /// transaction.
    locked_head: Option<StoredHead>,
    ledger: i64,
    lock_timeout: Duration,
}

/// A statement's parameters with their types, so that each statement is one round trip
/// (parse, bind and execute together, `query_typed`): a hook is a short-lived process that
/// runs most statements once, where a prepared statement would cost a second trip.
type Params<'p> = &'p [(&'p (dyn ToSql + Sync), Type)];

/// A Rust value of a known PostgreSQL type.
pub(crate) trait Param: ToSql + Sync {
    /// Its PostgreSQL type.
    const TYPE: Type;
}

impl Param for i64 {
    const TYPE: Type = Type::INT8;
}
impl Param for i32 {
    const TYPE: Type = Type::INT4;
}
impl Param for &str {
    const TYPE: Type = Type::TEXT;
}
impl Param for String {
    const TYPE: Type = Type::TEXT;
}
impl Param for &[u8] {
    const TYPE: Type = Type::BYTEA;
}
impl Param for Vec<u8> {
    const TYPE: Type = Type::BYTEA;
}
impl<T: Param> Param for Option<T> {
    const TYPE: Type = T::TYPE;
}

/// A parameter with its type.
pub(crate) fn p<T: Param>(value: &T) -> (&(dyn ToSql + Sync), Type) {
    (value, T::TYPE)
}

impl<'c, C: GenericClient> Pg<'c, C> {
    /// Reads and writes of ledger `ledger` through `c`.
    pub(crate) fn new(c: &'c mut C, ledger: i64, lock_timeout: Duration) -> Pg<'c, C> {
        Pg {
            locked_head: None,
            c,
            ledger,
            lock_timeout,
        }
    }

    /// Marks the ledger as moved to `to` (a migrate away from this database); appends and
    /// opens refuse from then on.
    pub(crate) fn mark_moved(&mut self, to: &str) -> Result<(), StoreError> {
        let ledger = self.ledger;
        self.execute(
            "UPDATE tally.ledgers SET moved = $2 WHERE id = $1",
            &[p(&ledger), p(&to)],
        )?;
        Ok(())
    }

    /// Lifts the statement timeout for the rest of the transaction (a migrate copies the
    /// whole ledger in one statement).
    pub(crate) fn no_statement_timeout(&mut self) -> Result<(), StoreError> {
        self.c
            .batch_execute("SET LOCAL statement_timeout = 0")
            .map_err(|e| error(e, self.lock_timeout))
    }

    /// Keeps a checkpoint under its own id (a migrated ledger's).
    pub(crate) fn import_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        let ledger = self.ledger;
        self.execute(
            "INSERT INTO tally.checkpoints (ledger, id, size, root, time, note) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                p(&ledger),
                p(&c.id),
                p(&to_pg(c.size)?),
                p(&c.root.as_slice()),
                p(&to_pg(c.time)?),
                p(&c.note.text()),
            ],
        )?;
        Ok(())
    }

    fn err(&self, e: postgres::Error) -> StoreError {
        error(e, self.lock_timeout)
    }

    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.c.query_typed(sql, params).map_err(|e| self.err(e))
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        self.c.query_typed_opt(sql, params).map_err(|e| self.err(e))
    }

    /// Runs a statement; the number of rows it touched.
    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let lock_timeout = self.lock_timeout;
        let mut rows = self
            .c
            .query_typed_raw(sql, params.iter().map(|(v, t)| (*v, t.clone())))
            .map_err(|e| error(e, lock_timeout))?;
        while rows.next().map_err(|e| error(e, lock_timeout))?.is_some() {}
        Ok(rows.rows_affected().unwrap_or(0))
    }

    /// Streams the rows of `sql` (`seq, bytes, leaf_hash`) to `f` until it returns `false`.
    fn each_entry(
        &mut self,
        sql: &str,
        params: Params<'_>,
        f: &mut EntryFn<'_>,
    ) -> Result<(), StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let lock_timeout = self.lock_timeout;
        let mut rows = self
            .c
            .query_typed_raw(sql, params.iter().map(|(v, t)| (*v, t.clone())))
            .map_err(|e| error(e, lock_timeout))?;
        while let Some(row) = rows.next().map_err(|e| error(e, lock_timeout))? {
            let key: i64 = column(&row, 0, ("entries", 0, "seq"))?;
            let seq =
                u64::try_from(key).map_err(|_| corrupt(("entries", key, "seq"), "negative"))?;
            let bytes: &[u8] = column(&row, 1, ("entries", key, "bytes"))?;
            let leaf = array(&row, 2, ("entries", key, "leaf_hash"))?;
            if !f(seq, bytes, &leaf)? {
                break;
            }
        }
        Ok(())
    }

    /// The ledger's meta row.
    pub(crate) fn meta(&mut self) -> Result<Meta, StoreError> {
        let ledger = self.ledger;
        let row = self
            .query_opt(
                "SELECT repository, origin, public_key, moved FROM tally.ledgers WHERE id = $1",
                &[p(&ledger)],
            )?
            .ok_or_else(|| corrupt(("ledgers", ledger, "*"), "missing"))?;
        Ok(Meta {
            moved: row
                .try_get::<_, Option<String>>(3)
                .map_err(|_| corrupt(("ledgers", ledger, "moved"), "of the wrong type"))?,
            repository: column::<&str>(&row, 0, ("ledgers", ledger, "repository"))?.to_owned(),
            origin: column::<&str>(&row, 1, ("ledgers", ledger, "origin"))?.to_owned(),
            public_key: array(&row, 2, ("ledgers", ledger, "public_key"))?,
        })
    }

    /// Keeps an in-flight marker (see the hooks' `record.rs`); replaces one of the same key
    /// that the same node left. Another node's marker of the same key (the same move of the
    /// same ref, pushed to two replicas at once) is never taken over: the node that wrote it
    /// is the only one that may cancel the entry it stands for, so this refuses instead.
    pub(crate) fn put_marker(
        &mut self,
        key: &str,
        marker: &str,
        node: &str,
    ) -> Result<(), StoreError> {
        let ledger = self.ledger;
        let written = self.execute(
            "INSERT INTO tally.inflight (ledger, key, marker, node) VALUES ($1, $2, $3, $4)
             ON CONFLICT (ledger, key) DO UPDATE SET marker = EXCLUDED.marker, node = EXCLUDED.node, created = now()
             WHERE tally.inflight.node = EXCLUDED.node",
            &[p(&ledger), p(&key), p(&marker), p(&node)],
        )?;
        if written != 1 {
            return Err(StoreError::Postgres(PgError::new(
                "another node is recording the same move of this ref right now (its in-flight marker is in the database); nothing was written; fetch and push again",
            )));
        }
        Ok(())
    }
}

impl Pg<'_, Client> {
    /// The in-flight marker of `key`.
    pub(crate) fn marker(&mut self, key: &str) -> Result<Option<super::Marker>, StoreError> {
        let ledger = self.ledger;
        let row = self.query_opt(
            "SELECT key, marker, node FROM tally.inflight WHERE ledger = $1 AND key = $2",
            &[p(&ledger), p(&key)],
        )?;
        row.map(|row| read_marker(&row, ledger)).transpose()
    }

    /// Every in-flight marker of the ledger.
    pub(crate) fn markers(&mut self) -> Result<Vec<super::Marker>, StoreError> {
        let ledger = self.ledger;
        let rows = self.query(
            "SELECT key, marker, node FROM tally.inflight WHERE ledger = $1 ORDER BY key",
            &[p(&ledger)],
        )?;
        rows.iter().map(|row| read_marker(row, ledger)).collect()
    }

    /// Removes the in-flight marker of `key`.
    pub(crate) fn remove_marker(&mut self, key: &str) -> Result<(), StoreError> {
        let ledger = self.ledger;
        self.execute(
            "DELETE FROM tally.inflight WHERE ledger = $1 AND key = $2",
            &[p(&ledger), p(&key)],
        )?;
        Ok(())
    }
}

fn read_marker(row: &Row, ledger: i64) -> Result<super::Marker, StoreError> {
    let at = |column| ("inflight", ledger, column);
    Ok(super::Marker {
        key: column::<String>(row, 0, at("key"))?,
        text: column::<String>(row, 1, at("marker"))?,
        node: column::<String>(row, 2, at("node"))?,
    })
}

/// The columns of `tally.ledgers` that say whose ledger it is.
pub(crate) struct Meta {
    pub(crate) moved: Option<String>,
    pub(crate) repository: String,
    pub(crate) origin: String,
    pub(crate) public_key: [u8; 32],
}

fn corrupt(
    (table, row, column): (&'static str, i64, &'static str),
    problem: &'static str,
) -> Corruption {
    Corruption {
        table,
        row,
        column,
        problem,
    }
}

/// Reads column `index` of a row: present (not NULL) and of type `T`.
pub(crate) fn column<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    at: (&'static str, i64, &'static str),
) -> Result<T, Corruption> {
    match row.try_get::<_, Option<T>>(index) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(corrupt(at, "NULL")),
        Err(_) => Err(corrupt(at, "of the wrong type")),
    }
}

/// Reads column `index` of a row as a blob of exactly `N` bytes.
pub(crate) fn array<const N: usize>(
    row: &Row,
    index: usize,
    at: (&'static str, i64, &'static str),
) -> Result<[u8; N], Corruption> {
    column::<&[u8]>(row, index, at)?
        .try_into()
        .map_err(|_| corrupt(at, "blob of the wrong length"))
}

/// Reads column `index` of a row as a non-negative integer.
pub(crate) fn unsigned(
    row: &Row,
    index: usize,
    at: (&'static str, i64, &'static str),
) -> Result<u64, Corruption> {
    u64::try_from(column::<i64>(row, index, at)?).map_err(|_| corrupt(at, "negative"))
}

pub(crate) fn to_pg(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        what: "value",
        value,
        size: i64::MAX as u64,
    })
}

/// The head's columns (size, root, last_leaf, frontier) from column `first` of a row.
fn read_head(row: &Row, first: usize, ledger: i64) -> Result<StoredHead, StoreError> {
    let at = |column| ("ledgers", ledger, column);
    let frontier = Frontier::from_bytes(column::<&[u8]>(row, first + 3, at("frontier"))?)
        .map_err(|_| corrupt(at("frontier"), "malformed"))?;
    Ok(StoredHead {
        head: Head {
            size: unsigned(row, first, at("size"))?,
            root: array(row, first + 1, at("root"))?,
            last_leaf: array(row, first + 2, at("last_leaf"))?,
        },
        frontier,
    })
}

pub(crate) fn read_checkpoint(row: &Row) -> Result<StoredCheckpoint, StoreError> {
    let id: i64 = column(row, 0, ("checkpoints", 0, "id"))?;
    let at = |column| ("checkpoints", id, column);
    Ok(StoredCheckpoint {
        id,
        size: unsigned(row, 1, at("size"))?,
        root: array(row, 2, at("root"))?,
        time: unsigned(row, 3, at("time"))?,
        note: SignedCheckpoint::parse(column::<&str>(row, 4, at("note"))?)?,
    })
}

impl<C: GenericClient> ReadTx for Pg<'_, C> {
    fn head(&mut self) -> Result<StoredHead, StoreError> {
        if let Some(head) = self.locked_head.take() {
            return Ok(head);
        }
        let ledger = self.ledger;
        let row = self
            .query_opt(
                "SELECT size, root, last_leaf, frontier FROM tally.ledgers WHERE id = $1",
                &[p(&ledger)],
            )?
            .ok_or_else(|| corrupt(("ledgers", ledger, "*"), "missing"))?;
        read_head(&row, 0, ledger)
    }

    fn refnames(&mut self) -> Result<Vec<String>, StoreError> {
        // A skip-scan of the ref index: the cost is in the number of refs, not of entries.
        let ledger = self.ledger;
        let rows = self.query(
            "WITH RECURSIVE r(name) AS (
                 SELECT min(refname) FROM tally.entries WHERE ledger = $1
                 UNION ALL
                 SELECT (SELECT min(refname) FROM tally.entries WHERE ledger = $1 AND refname > r.name)
                 FROM r WHERE r.name IS NOT NULL
             )
             SELECT name FROM r WHERE name IS NOT NULL AND name <> ''",
            &[p(&ledger)],
        )?;
        rows.iter()
            .map(|row| Ok(column::<String>(row, 0, ("entries", 0, "refname"))?))
            .collect()
    }

    fn moves(&mut self, refname: &str, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        // A page at a time, newest first: every append asks where its ref is, and the first
        // page nearly always answers (the latest move, unless an abort cancelled it). Without
        // a limit the server would send every move of the ref, however many, on every append
        // (the rows `f` does not want are discarded by the client, not left unsent).
        let ledger = self.ledger;
        let [a, b, c, d] = MOVING_KINDS.map(|k| i32::from(k.code()));
        let mut before = i64::MAX;
        loop {
            let (mut rows, mut last, mut more) = (0, before, true);
            self.each_entry(
                "SELECT seq, bytes, leaf_hash FROM tally.entries WHERE ledger = $1 AND refname = $2
                 AND kind IN ($3, $4, $5, $6) AND seq < $7 ORDER BY seq DESC LIMIT $8",
                &[
                    p(&ledger),
                    p(&refname),
                    p(&a),
                    p(&b),
                    p(&c),
                    p(&d),
                    p(&before),
                    p(&MOVES_PAGE),
                ],
                &mut |seq, bytes, leaf| {
                    rows += 1;
                    last = i64::try_from(seq).unwrap_or(i64::MAX);
                    more = f(seq, bytes, leaf)?;
                    Ok(more)
                },
            )?;
            if !more || rows < MOVES_PAGE {
                return Ok(());
            }
            before = last;
        }
    }

    fn entries(&mut self, range: Range<u64>, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        let ledger = self.ledger;
        let end = to_pg(range.end.min(i64::MAX as u64))?;
        let start = to_pg(range.start.min(i64::MAX as u64))?.min(end);
        self.each_entry(
            "SELECT seq, bytes, leaf_hash FROM tally.entries WHERE ledger = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
            &[p(&ledger), p(&start), p(&end)],
            f,
        )
    }

    fn select(&mut self, filter: &Filter, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        let ledger = self.ledger;
        let kind = filter.kind.map(|k| i32::from(k.code()));
        let before = filter
            .before
            .map(|b| to_pg(b.min(i64::MAX as u64)))
            .transpose()?;
        let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        // One statement for every filter: a NULL parameter switches its condition off.
        self.each_entry(
            "SELECT seq, bytes, leaf_hash FROM tally.entries WHERE ledger = $1
             AND ($2::text IS NULL OR refname = $2) AND ($3::integer IS NULL OR kind = $3)
             AND ($4::bigint IS NULL OR seq < $4) ORDER BY seq DESC LIMIT $5",
            &[
                p(&ledger),
                p(&filter.refname),
                p(&kind),
                p(&before),
                p(&limit),
            ],
            f,
        )
    }

    fn leaf(&mut self, seq: u64) -> Result<Hash, StoreError> {
        let (ledger, key) = (self.ledger, to_pg(seq)?);
        let row = self
            .query_opt(
                "SELECT leaf_hash FROM tally.entries WHERE ledger = $1 AND seq = $2",
                &[p(&ledger), p(&key)],
            )?
            .ok_or_else(|| corrupt(("entries", key, "*"), "missing"))?;
        Ok(array(&row, 0, ("entries", key, "leaf_hash"))?)
    }

    fn nodes(&mut self, seq: u64) -> Result<Vec<u8>, StoreError> {
        let (ledger, key) = (self.ledger, to_pg(seq)?);
        let row = self
            .query_opt(
                "SELECT nodes FROM tally.entries WHERE ledger = $1 AND seq = $2",
                &[p(&ledger), p(&key)],
            )?
            .ok_or_else(|| corrupt(("entries", key, "*"), "missing"))?;
        Ok(column::<Vec<u8>>(&row, 0, ("entries", key, "nodes"))?)
    }

    fn checkpoints(
        &mut self,
        newest_first: bool,
        f: &mut dyn FnMut(StoredCheckpoint) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let ledger = self.ledger;
        let sql = if newest_first {
            "SELECT id, size, root, time, note FROM tally.checkpoints WHERE ledger = $1 ORDER BY id DESC"
        } else {
            "SELECT id, size, root, time, note FROM tally.checkpoints WHERE ledger = $1 ORDER BY id"
        };
        let lock_timeout = self.lock_timeout;
        let mut rows = self
            .c
            .query_typed_raw(sql, [(&ledger as &(dyn ToSql + Sync), Type::INT8)])
            .map_err(|e| error(e, lock_timeout))?;
        while let Some(row) = rows.next().map_err(|e| error(e, lock_timeout))? {
            if !f(read_checkpoint(&row)?)? {
                break;
            }
        }
        Ok(())
    }
}

impl<C: GenericClient> AppendTx for Pg<'_, C> {
    fn kind_of(&mut self, seq: u64) -> Result<Option<i64>, StoreError> {
        let (ledger, key) = (self.ledger, to_pg(seq)?);
        let row = self.query_opt(
            "SELECT kind FROM tally.entries WHERE ledger = $1 AND seq = $2",
            &[p(&ledger), p(&key)],
        )?;
        row.map(|row| Ok(i64::from(column::<i32>(&row, 0, ("entries", key, "kind"))?)))
            .transpose()
    }

    fn is_aborted(&mut self, seq: u64) -> Result<bool, StoreError> {
        let (ledger, key) = (self.ledger, to_pg(seq)?);
        Ok(self
            .query_opt(
                "SELECT 1 FROM tally.entries WHERE ledger = $1 AND aborts = $2",
                &[p(&ledger), p(&key)],
            )?
            .is_some())
    }

    fn insert_entry(&mut self, row: &EntryRow<'_>) -> Result<(), StoreError> {
        let ledger = self.ledger;
        let kind = i32::try_from(row.kind).map_err(|_| StoreError::OutOfRange {
            what: "kind",
            value: row.kind.unsigned_abs(),
            size: i32::MAX as u64,
        })?;
        let aborts = row.aborts.map(to_pg).transpose()?;
        self.execute(
            "INSERT INTO tally.entries (ledger, seq, bytes, leaf_hash, nodes, kind, refname, aborts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                p(&ledger),
                p(&to_pg(row.seq)?),
                p(&row.bytes),
                p(&row.leaf.as_slice()),
                p(&row.nodes),
                p(&kind),
                p(&row.refname),
                p(&aborts),
            ],
        )?;
        Ok(())
    }

    fn insert_checkpoint(
        &mut self,
        checkpoint: &SignedCheckpoint,
        size: u64,
        root: &Hash,
        time: u64,
    ) -> Result<(), StoreError> {
        let ledger = self.ledger;
        self.execute(
            "INSERT INTO tally.checkpoints (ledger, id, size, root, time, note)
             SELECT $1, coalesce(max(id), 0) + 1, $2, $3, $4, $5 FROM tally.checkpoints WHERE ledger = $1",
            &[
                p(&ledger),
                p(&to_pg(size)?),
                p(&root.as_slice()),
                p(&to_pg(time)?),
                p(&checkpoint.text()),
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
        let ledger = self.ledger;
        let moved = self.execute(
            "UPDATE tally.ledgers SET size = $2, root = $3, last_leaf = $4, frontier = $5
             WHERE id = $1 AND size = $6 AND root = $7",
            &[
                p(&ledger),
                p(&to_pg(to.size)?),
                p(&to.root.as_slice()),
                p(&to.last_leaf.as_slice()),
                p(&frontier.to_bytes()),
                p(&to_pg(from.size)?),
                p(&from.root.as_slice()),
            ],
        )?;
        Ok(moved == 1)
    }
}

/// The schema version the database holds (0 before tally's first migration).
fn schema_version(
    client: &mut impl GenericClient,
    lock_timeout: Duration,
) -> Result<i32, StoreError> {
    let exists = client
        .query_one(
            "SELECT to_regclass('tally.schema_migrations') IS NOT NULL",
            &[],
        )
        .map_err(|e| error(e, lock_timeout))?;
    if !column::<bool>(&exists, 0, ("schema_migrations", 0, "*"))? {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM tally.schema_migrations",
            &[],
        )
        .map_err(|e| error(e, lock_timeout))?;
    Ok(column::<i32>(&row, 0, ("schema_migrations", 0, "version"))?)
}

fn newer(found: i32) -> StoreError {
    StoreError::Postgres(PgError::new(format!(
        "the database's tally schema is version {found}, newer than this build's {PG_SCHEMA_VERSION}: a newer tally upgraded it; install that version of tally on this node"
    )))
}

/// Checks that the database holds the schema this build reads.
pub(crate) fn check_schema(conn: &mut Conn) -> Result<(), StoreError> {
    conn.session()?;
    let lock_timeout = conn.lock_timeout;
    match schema_version(&mut conn.client, lock_timeout)? {
        PG_SCHEMA_VERSION => Ok(()),
        0 => Err(StoreError::Postgres(PgError::new(
            "the database has no tally schema; run `tally init` on this repository with --ledger",
        ))),
        found if found > PG_SCHEMA_VERSION => Err(newer(found)),
        found => Err(StoreError::Postgres(PgError::new(format!(
            "the database's tally schema is version {found}, older than this build's {PG_SCHEMA_VERSION}; run `tally init` on this repository to upgrade it"
        )))),
    }
}

/// Creates or upgrades tally's schema: applies the migrations the database lacks, in one
/// transaction under an advisory lock, so that nodes running `tally init` at once apply each
/// migration once. Refuses a database whose schema is newer than this build. Returns the
/// versions applied.
pub(crate) fn migrate(conn: &mut Conn) -> Result<Vec<i32>, StoreError> {
    conn.session()?;
    let lock_timeout = conn.lock_timeout;
    let e = |e| error(e, lock_timeout);
    let mut tx = conn.client.transaction().map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(e)?;
    let encoding = tx.query_one("SHOW server_encoding", &[]).map_err(e)?;
    let encoding: String = column(&encoding, 0, ("server_encoding", 0, "*"))?;
    if !encoding.eq_ignore_ascii_case("UTF8") {
        return Err(StoreError::Postgres(PgError::new(format!(
            "the database's encoding is {encoding}; tally's ledger needs a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)"
        ))));
    }
    let found = schema_version(&mut tx, lock_timeout)?;
    if found > PG_SCHEMA_VERSION {
        return Err(newer(found));
    }
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS tally;
         CREATE TABLE IF NOT EXISTS tally.schema_migrations (
             version integer PRIMARY KEY,
             applied timestamptz NOT NULL DEFAULT now(),
             tally   text NOT NULL
         );",
    )
    .map_err(e)?;
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).map_err(e)?;
        tx.execute(
            "INSERT INTO tally.schema_migrations (version, tally) VALUES ($1, $2)",
            &[version, &env!("CARGO_PKG_VERSION")],
        )
        .map_err(e)?;
        applied.push(*version);
    }
    tx.commit().map_err(e)?;
    Ok(applied)
}

/// Deletes a ledger that was moved away from this database (before a migrate brings it
/// back); refuses one that was not moved.
pub(crate) fn delete_moved(
    tx: &mut postgres::Transaction<'_>,
    repository: &str,
    lock_timeout: Duration,
) -> Result<(), StoreError> {
    let e = |e| error(e, lock_timeout);
    let Some(row) = tx
        .query_opt(
            "SELECT id, moved FROM tally.ledgers WHERE repository = $1 FOR UPDATE",
            &[&repository],
        )
        .map_err(e)?
    else {
        return Ok(());
    };
    let id: i64 = column(&row, 0, ("ledgers", 0, "id"))?;
    if row.try_get::<_, Option<String>>(1).ok().flatten().is_none() {
        return Ok(());
    }
    delete_ledger(tx, id, lock_timeout)
}

/// Deletes ledger `id` and every row of it, inside `tx`.
pub(crate) fn delete_ledger(
    tx: &mut postgres::Transaction<'_>,
    id: i64,
    lock_timeout: Duration,
) -> Result<(), StoreError> {
    let e = |e| error(e, lock_timeout);
    for table in ["inflight", "checkpoints", "entries"] {
        tx.execute(
            &format!("DELETE FROM tally.{table} WHERE ledger = $1"),
            &[&id],
        )
        .map_err(e)?;
    }
    tx.execute("DELETE FROM tally.ledgers WHERE id = $1", &[&id])
        .map_err(e)?;
    Ok(())
}

/// A ledger found by [`open`]: its id, its row, its in-flight markers.
pub(crate) type Opened = (i64, Meta, Vec<super::Marker>);

/// What opening a ledger needs, in one round trip: the session's settings, the schema
/// version, the ledger's row, and its in-flight markers (which a hook reads next). `None` when the quick way does not apply (no schema, another
/// version, a repository id that is not plain): the caller then takes the slow way, whose
/// errors say what is wrong.
pub(crate) fn open(
    conn: &mut Conn,
    repository: &str,
) -> Result<Option<Option<Opened>>, StoreError> {
    use postgres::SimpleQueryMessage;
    if repository.is_empty()
        || !repository
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Ok(None);
    }
    let sql = format!(
        "{} SELECT (SELECT max(version) FROM tally.schema_migrations), l.id, l.repository, l.origin, encode(l.public_key, 'hex'), l.moved FROM (SELECT 1) AS one LEFT JOIN tally.ledgers AS l ON l.repository = '{repository}'; SELECT i.key, i.marker, i.node FROM tally.inflight AS i JOIN tally.ledgers AS l ON l.id = i.ledger WHERE l.repository = '{repository}' ORDER BY i.key",
        conn.session_sql()
    );
    let messages = match conn.client.simple_query(&sql) {
        Ok(messages) => messages,
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => return Ok(None),
        Err(e) => return Err(error(e, conn.lock_timeout)),
    };
    conn.session = true;
    // The ledger's row (exactly one, whether the ledger exists or not), then the markers.
    let mut rows = messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let Some(row) = rows.next() else {
        return Ok(None);
    };
    if row.get(0) != Some(PG_SCHEMA_VERSION.to_string().as_str()) {
        return Ok(None);
    }
    let Some(id) = row.get(1) else {
        return Ok(Some(None));
    };
    let id: i64 = id
        .parse()
        .map_err(|_| corrupt(("ledgers", 0, "id"), "not an integer"))?;
    let at = |column| ("ledgers", id, column);
    let text = |i: usize, column| row.get(i).ok_or_else(|| corrupt(at(column), "NULL"));
    let public_key = crate::hex::decode_array::<32>(text(4, "public_key")?)
        .ok_or_else(|| corrupt(at("public_key"), "blob of the wrong length"))?;
    let markers = rows
        .map(|m| {
            let field = |i: usize, column| {
                m.get(i)
                    .map(str::to_owned)
                    .ok_or_else(|| corrupt(("inflight", id, column), "NULL"))
            };
            Ok(super::Marker {
                key: field(0, "key")?,
                text: field(1, "marker")?,
                node: field(2, "node")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Some((
        id,
        Meta {
            moved: row.get(5).map(str::to_owned),
            repository: text(2, "repository")?.to_owned(),
            origin: text(3, "origin")?.to_owned(),
            public_key,
        },
        markers,
    ))))
}

/// The id of the ledger of `repository`, if the database holds one.
pub(crate) fn find(conn: &mut Conn, repository: &str) -> Result<Option<i64>, StoreError> {
    let lock_timeout = conn.lock_timeout;
    let row = conn
        .client
        .query_opt(
            "SELECT id FROM tally.ledgers WHERE repository = $1",
            &[&repository],
        )
        .map_err(|e| error(e, lock_timeout))?;
    row.map(|row| Ok(column::<i64>(&row, 0, ("ledgers", 0, "id"))?))
        .transpose()
}

/// Creates the ledger row of a new ledger (no entries yet; `head` is its head).
pub(crate) fn insert_ledger(
    tx: &mut postgres::Transaction<'_>,
    repository: &str,
    origin: &str,
    public_key: &[u8; 32],
    head: &Head,
    frontier: &Frontier,
    lock_timeout: Duration,
) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "INSERT INTO tally.ledgers (repository, origin, public_key, size, root, last_leaf, frontier)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &repository,
                &origin,
                &public_key.as_slice(),
                &to_pg(head.size)?,
                &head.root.as_slice(),
                &head.last_leaf.as_slice(),
                &frontier.to_bytes(),
            ],
        )
        .map_err(|e| match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Postgres(PgError::new(
                format!("the database already holds a ledger for repository {repository}"),
            )),
            _ => error(e, lock_timeout),
        })?;
    Ok(column::<i64>(&row, 0, ("ledgers", 0, "id"))?)
}

/// The rows of a ledger for the whole-ledger audit (`verify.rs`), in one REPEATABLE READ,
/// READ ONLY transaction: one snapshot, as in SQLite. Rows are fetched through portals in
/// chunks, so memory stays bounded whatever the ledger's size.
pub(crate) struct PgAudit<'a> {
    tx: std::cell::RefCell<postgres::Transaction<'a>>,
    ledger: i64,
    lock_timeout: Duration,
}

/// Rows fetched from a portal at a time.
const AUDIT_CHUNK: i32 = 8192;

impl<'a> PgAudit<'a> {
    pub(crate) fn begin(conn: &'a mut Conn, ledger: i64) -> Result<PgAudit<'a>, StoreError> {
        let lock_timeout = conn.lock_timeout;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| error(e, lock_timeout))?;
        // The audit reads every row of the ledger in order, which its primary key's index
        // (and `checkpoints_by_size`) gives as it is. Left to itself the planner reads a whole
        // ledger with a bitmap scan and sorts it, which spills the ledger to temporary files
        // (work_mem is megabytes, a ledger of a million entries half a gigabyte): verify was
        // 1.5x slower for it (BENCHMARKS.md, issue 15). For this transaction only.
        tx.batch_execute("SET LOCAL enable_sort = off")
            .map_err(|e| error(e, lock_timeout))?;
        Ok(PgAudit {
            tx: std::cell::RefCell::new(tx),
            ledger,
            lock_timeout,
        })
    }
}

fn audit_entry(row: &Row, arena: &mut Vec<u8>) -> Result<super::verify::EntryRow, VerifyError> {
    let key: i64 = column(row, 0, ("entries", 0, "seq"))?;
    let seq = u64::try_from(key).map_err(|_| corrupt(("entries", key, "seq"), "negative"))?;
    let at = |column| ("entries", key, column);
    let mut push = |bytes: &[u8]| {
        let start = arena.len();
        arena.extend_from_slice(bytes);
        start..arena.len()
    };
    let bytes = push(column::<&[u8]>(row, 1, at("bytes"))?);
    let leaf_hash = array(row, 2, at("leaf_hash"))?;
    let nodes = push(column::<&[u8]>(row, 3, at("nodes"))?);
    let kind = u64::try_from(column::<i32>(row, 4, at("kind"))?)
        .map_err(|_| corrupt(at("kind"), "negative"))?;
    let refname = push(column::<&str>(row, 5, at("refname"))?.as_bytes());
    let aborts = match row.try_get::<_, Option<i64>>(6) {
        Ok(None) => None,
        Ok(Some(v)) => Some(u64::try_from(v).map_err(|_| corrupt(at("aborts"), "negative"))?),
        Err(_) => return Err(corrupt(at("aborts"), "of the wrong type").into()),
    };
    Ok(super::verify::EntryRow {
        seq,
        bytes,
        leaf_hash,
        nodes,
        kind,
        refname,
        aborts,
    })
}

fn audit_job(row: &Row) -> Result<super::verify::Job, VerifyError> {
    let id: i64 = column(row, 0, ("checkpoints", 0, "id"))?;
    let at = |column| ("checkpoints", id, column);
    Ok(super::verify::Job {
        id,
        size: unsigned(row, 1, at("size"))?,
        root: array(row, 2, at("root"))?,
        time: unsigned(row, 3, at("time"))?,
        note: column::<&str>(row, 4, at("note"))?.to_owned(),
    })
}

impl super::verify::Audit for PgAudit<'_> {
    fn head(&mut self) -> Result<StoredHead, VerifyError> {
        let mut tx = self.tx.borrow_mut();
        let mut pg = Pg {
            locked_head: None,
            c: &mut *tx,
            ledger: self.ledger,
            lock_timeout: self.lock_timeout,
        };
        Ok(pg.head()?)
    }

    fn read(&mut self, sink: &mut super::verify::Sink<'_>) -> Result<(), VerifyError> {
        let (ledger, lock_timeout) = (self.ledger, self.lock_timeout);
        let e = |e| VerifyError::Store(error(e, lock_timeout));
        let (checkpoints, entries) = {
            let mut tx = self.tx.borrow_mut();
            let checkpoints = tx
                .bind(
                    "SELECT id, size, root, time, note FROM tally.checkpoints WHERE ledger = $1 ORDER BY size, id",
                    &[&ledger],
                )
                .map_err(e)?;
            let entries = tx
                .bind(
                    "SELECT seq, bytes, leaf_hash, nodes, kind, refname, aborts FROM tally.entries WHERE ledger = $1 ORDER BY seq",
                    &[&ledger],
                )
                .map_err(e)?;
            (checkpoints, entries)
        };
        let tx = &self.tx;
        let mut pending: std::collections::VecDeque<Row> = Default::default();
        let mut checkpoints_done = false;
        let mut next_checkpoint = || -> Result<Option<super::verify::Job>, VerifyError> {
            if pending.is_empty() && !checkpoints_done {
                let rows = tx
                    .borrow_mut()
                    .query_portal(&checkpoints, AUDIT_CHUNK)
                    .map_err(e)?;
                checkpoints_done = rows.len() < AUDIT_CHUNK as usize;
                pending.extend(rows);
            }
            pending.pop_front().map(|row| audit_job(&row)).transpose()
        };
        loop {
            let rows = tx
                .borrow_mut()
                .query_portal(&entries, AUDIT_CHUNK)
                .map_err(e)?;
            let last_chunk = rows.len() < AUDIT_CHUNK as usize;
            for row in &rows {
                let entry = audit_entry(row, sink.arena())?;
                if !sink.entry(Some(entry), &mut next_checkpoint)? {
                    return Ok(());
                }
            }
            if last_chunk {
                sink.entry(None, &mut next_checkpoint)?;
                return Ok(());
            }
        }
    }

    fn newest_checkpoint(&mut self) -> Result<i64, VerifyError> {
        let ledger = self.ledger;
        let row = self
            .tx
            .borrow_mut()
            .query_one(
                "SELECT coalesce(max(id), 0) FROM tally.checkpoints WHERE ledger = $1",
                &[&ledger],
            )
            .map_err(|e| VerifyError::Store(error(e, self.lock_timeout)))?;
        Ok(column::<i64>(&row, 0, ("checkpoints", 0, "id"))?)
    }
}
