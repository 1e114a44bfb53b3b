//! The SQLite store of a ledger.
//!
//! One SQLite file per repository, opened in WAL mode with `synchronous=FULL`, so a committed
//! append survives power loss and readers never block the writer. An append runs in one
//! `BEGIN IMMEDIATE` transaction: it inserts the entries (with their leaf hashes and the Merkle
//! nodes they complete), signs and inserts a checkpoint of the new head, and moves the head
//! with a compare-and-swap (`UPDATE head ... WHERE size = ? AND root = ?`, exactly one row). A
//! crash at any instant therefore leaves either the old ledger or the new one, both verifying.
//!
//! The schema (version 1, in `PRAGMA user_version`; `PRAGMA application_id` marks the file as
//! a tally ledger) is documented in `docs/ledger-format.md`. Rows are read as untrusted: a
//! value of the wrong type, a NULL or a blob of the wrong length is reported as
//! [`Corruption`], never a panic; every entry read back is checked against its leaf hash.

mod append;
mod backend;
mod migrate;
mod pg;
mod sql;
mod verify;

use std::cell::RefCell;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use serde::Serialize;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::entry::{CommitSigner, Entry, EntryError, Kind};
use crate::hex::{self, Hex};
use crate::merkle::{self, EMPTY_ROOT, Frontier, Hash, ProofError};
use crate::{GENESIS, SigningKey};

pub use migrate::Destination;
pub use pg::{PG_SCHEMA_VERSION, PgError, STATEMENT_TIMEOUT};
pub use verify::{VerifyError, VerifyReport};

use backend::{EntryFn, ReadTx, StoredHead};
use sql::*;

/// The schema version this crate writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id` of a tally ledger: "taly" in ASCII.
pub const APPLICATION_ID: i64 = 0x7461_6c79;

/// The default time to wait for another process's write lock.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    origin     TEXT NOT NULL,
    repository TEXT NOT NULL,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32)
) STRICT;
CREATE TABLE entries (
    seq       INTEGER PRIMARY KEY CHECK (seq >= 0),
    bytes     BLOB NOT NULL,
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    nodes     BLOB NOT NULL,
    kind      INTEGER NOT NULL,
    refname   TEXT NOT NULL,
    aborts    INTEGER
) STRICT;
CREATE INDEX entries_by_ref ON entries (refname, seq);
CREATE INDEX entries_by_kind ON entries (kind, seq);
CREATE UNIQUE INDEX entries_by_aborts ON entries (aborts) WHERE aborts IS NOT NULL;
CREATE TABLE checkpoints (
    id   INTEGER PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    time INTEGER NOT NULL CHECK (time >= 0),
    note TEXT NOT NULL
) STRICT;
CREATE INDEX checkpoints_by_size ON checkpoints (size, id);
CREATE TABLE head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      INTEGER NOT NULL CHECK (size >= 0),
    root      BLOB NOT NULL CHECK (length(root) = 32),
    last_leaf BLOB NOT NULL CHECK (length(last_leaf) = 32),
    frontier  BLOB NOT NULL
) STRICT;
";

/// How to open a store.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long to wait for another process's lock before failing with [`StoreError::Busy`].
    pub busy_timeout: Duration,
    /// Open read-only (for `tally log` and `tally ledger verify`).
    pub read_only: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            read_only: false,
        }
    }
}

/// A value in the database that is not what the schema says it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt ledger database: {table} row {row}, column {column}: {problem}")]
pub struct Corruption {
    /// The table.
    pub table: &'static str,
    /// The row's key (seq, checkpoint id, or 1 for single-row tables).
    pub row: i64,
    /// The column.
    pub column: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("ledger database error: {0}")]
    Database(#[source] rusqlite::Error),
    /// PostgreSQL reported an error, or its database is not what tally needs.
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// The PostgreSQL database holds no ledger for this repository.
    #[error(
        "{location}: no ledger for repository {repository} in this database (run `tally init` with --ledger first)"
    )]
    NotInDatabase {
        /// The database, as shown to users.
        location: String,
        /// The repository id.
        repository: String,
    },
    /// The PostgreSQL database already holds a ledger for this repository.
    #[error("{location}: the database already holds a ledger for repository {repository}")]
    InDatabase {
        /// The database, as shown to users.
        location: String,
        /// The repository id.
        repository: String,
    },
    /// Another process held the ledger's lock for longer than the busy timeout.
    #[error(
        "the ledger database is locked by another process (waited {timeout:?}); retry, or look for a stuck tally process"
    )]
    Busy {
        /// The busy timeout that elapsed.
        timeout: Duration,
    },
    /// The ledger file does not exist.
    #[error("{}: no ledger here (run `tally init` first)", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A ledger already exists where one was to be created.
    #[error("{}: a ledger already exists; refusing to overwrite it", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// The file is an SQLite database but not a tally ledger.
    #[error("{}: not a tally ledger (application_id {found:#x})", path.display())]
    NotALedger {
        /// The path.
        path: PathBuf,
        /// The application id found.
        found: i64,
    },
    /// The ledger's schema version is not the one this build reads.
    #[error(
        "ledger schema version {found} is not supported (this build reads version {SCHEMA_VERSION})"
    )]
    UnsupportedSchema {
        /// The version found.
        found: i64,
    },
    /// A row holds a value the schema does not allow.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// A stored entry does not match its leaf hash or its row.
    #[error("entry {seq} is damaged: {problem}; run `tally ledger verify`")]
    DamagedEntry {
        /// The row's seq.
        seq: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// A stored entry does not decode.
    #[error("entry {seq} does not decode: {source}")]
    BadEntry {
        /// The row's seq.
        seq: u64,
        /// Why.
        source: EntryError,
    },
    /// A new entry could not be encoded.
    #[error("cannot record entry {seq}: {source}")]
    Encode {
        /// The seq it would have had.
        seq: u64,
        /// Why.
        source: EntryError,
    },
    /// A checkpoint could not be signed or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The signing key is not the ledger's key.
    #[error("the signing key {given} is not this ledger's key {ledger}")]
    WrongKey {
        /// The ledger's public key, hex.
        ledger: String,
        /// The given key's public key, hex.
        given: String,
    },
    /// The head moved between reading and updating it (the compare-and-swap failed).
    #[error(
        "the ledger head changed during the append (expected size {expected_size}); nothing was written"
    )]
    HeadMoved {
        /// The size the append started from.
        expected_size: u64,
    },
    /// The stored frontier does not agree with the head.
    #[error("the ledger head is inconsistent with its Merkle frontier; run `tally ledger verify`")]
    HeadInconsistent,
    /// An append of no entries.
    #[error("nothing to append")]
    NothingToAppend,
    /// A time before 1970 was given for a checkpoint.
    #[error("time {time} is before 1970")]
    TimeBeforeEpoch {
        /// The time.
        time: jiff::Timestamp,
    },
    /// An entry would break a chain rule that the store enforces on append: an accepted move
    /// that does not start where the ledger last recorded its ref.
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    /// An aborted entry names an entry that cannot be aborted.
    #[error("entry {target} cannot be aborted: {problem}")]
    BadAbort {
        /// The named entry.
        target: u64,
        /// Why.
        problem: &'static str,
    },
    /// A size or seq beyond the ledger's head was asked for.
    #[error("{what} {value} is beyond the ledger's size {size}")]
    OutOfRange {
        /// What was asked for.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The ledger's size.
        size: u64,
    },
    /// A proof could not be produced.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The directory of the ledger file could not be prepared.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(e)
    }
}

/// Whether an SQLite error is a lock timeout.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The ledger's head: what the latest checkpoint signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The number of entries.
    pub size: u64,
    /// Their Merkle root.
    pub root: Hash,
    /// The last entry's leaf hash ([`GENESIS`] when empty): the next entry's `prev_hash`.
    pub last_leaf: Hash,
}

/// An entry to append: everything but what the store assigns (seq, time, repository,
/// `prev_hash`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// See [`Entry::kind`].
    pub kind: Kind,
    /// See [`Entry::refname`].
    pub refname: String,
    /// See [`Entry::old`].
    pub old: Option<Vec<u8>>,
    /// See [`Entry::new`].
    pub new: Option<Vec<u8>>,
    /// See [`Entry::new_tree`].
    pub new_tree: Option<Vec<u8>>,
    /// See [`Entry::commits`].
    pub commits: Vec<CommitSigner>,
    /// See [`Entry::pusher`].
    pub pusher: String,
    /// See [`Entry::policy_digest`].
    pub policy_digest: Hash,
    /// See [`Entry::reasons`].
    pub reasons: Vec<String>,
    /// See [`Entry::aborts`].
    pub aborts: Option<u64>,
}

/// What an append did.
#[derive(Clone, Debug)]
pub struct AppendOutcome {
    /// The seq of the first entry appended.
    pub first_seq: u64,
    /// The ledger's new size.
    pub size: u64,
    /// The ledger's new root.
    pub root: Hash,
    /// The checkpoint signed for the new head.
    pub checkpoint: SignedCheckpoint,
}

/// An entry as stored, checked against its leaf hash when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
    /// The leaf hash of its stored bytes.
    #[serde(serialize_with = "serialize_hex")]
    pub leaf_hash: Hash,
}

fn serialize_hex<S: serde::Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(hash))
}

/// A checkpoint as stored (its note not yet verified).
#[derive(Clone, Debug)]
pub struct StoredCheckpoint {
    /// Its row id; ids increase with signing order.
    pub id: i64,
    /// The size column.
    pub size: u64,
    /// The root column.
    pub root: Hash,
    /// The time column (unix seconds).
    pub time: u64,
    /// The signed note.
    pub note: SignedCheckpoint,
}

/// Which entries [`Store::log`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries of this full ref name.
    pub refname: Option<String>,
    /// Only entries of this kind.
    pub kind: Option<Kind>,
    /// Only entries with a seq below this (for paging backwards).
    pub before: Option<u64>,
    /// At most this many entries.
    pub limit: Option<usize>,
}

/// An open ledger, in SQLite or in PostgreSQL.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    origin: String,
    repository: String,
    public_key: [u8; 32],
    busy_timeout: Duration,
}

/// Where a ledger's rows live.
#[derive(Debug)]
enum Backend {
    /// One SQLite file in the repository.
    Sqlite { conn: Connection, path: PathBuf },
    /// One ledger of a PostgreSQL database (the connection is used by `&self` readers too,
    /// hence the cell: a `Store` is used from one thread).
    Postgres {
        conn: Box<RefCell<pg::Conn>>,
        ledger: i64,
        location: String,
        /// The in-flight markers read with the ledger's row when it was opened, for the
        /// first [`Store::markers`] (a hook's next question); later calls read them again.
        markers: RefCell<Option<Vec<Marker>>>,
    },
}

/// A connection to a PostgreSQL database that holds (or is to hold) ledgers, set up for
/// tally: statement and lock timeouts. Made from a connected client (see
/// `crate::pgconnect`).
#[derive(Debug)]
pub struct Postgres {
    conn: pg::Conn,
    location: String,
}

impl Postgres {
    /// Sets up a session on `client`; `location` is how messages name the database (never
    /// with a password), and `options.busy_timeout` bounds the wait for another node's append.
    pub fn new(
        client: postgres::Client,
        location: &str,
        options: &Options,
    ) -> Result<Postgres, StoreError> {
        Ok(Postgres {
            conn: pg::Conn::new(client, options.busy_timeout),
            location: location.to_owned(),
        })
    }

    /// Creates or upgrades tally's schema (versioned migrations, applied once under an
    /// advisory lock); refuses a schema newer than this build. Returns the versions applied.
    pub fn upgrade(&mut self) -> Result<Vec<i32>, StoreError> {
        pg::migrate(&mut self.conn)
    }

    /// Whether the database holds a ledger for `repository`.
    pub fn has_ledger(&mut self, repository: &str) -> Result<bool, StoreError> {
        pg::check_schema(&mut self.conn)?;
        Ok(pg::find(&mut self.conn, repository)?.is_some())
    }

    /// How messages name the database.
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// An in-flight marker kept in a shared (PostgreSQL) ledger's database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Its key (one per ref move).
    pub key: String,
    /// What the hooks wrote.
    pub text: String,
    /// The node that wrote it.
    pub node: String,
}

/// How many appends pass between two explicit WAL checkpoints.
const WAL_TRUNCATE_EVERY: u64 = 8;

fn configure(conn: &Connection, options: &Options) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)?;
    // Durable commits: with WAL, FULL syncs the log on every commit.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A tampered file could carry triggers or views; never run their functions.
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    // Detect some kinds of page corruption as errors instead of reading garbage.
    conn.pragma_update(None, "cell_size_check", "ON")?;
    // Every hook run is a short-lived process; checkpointing the WAL into the database each
    // time the last connection closes would cost several fsyncs per push. Instead the WAL is
    // kept across processes and checkpointed every few appends (and by SQLite's automatic
    // checkpoint): the first connection of every process rebuilds the WAL index by reading
    // the whole WAL, so a short WAL keeps opening cheap.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    conn.pragma_update(None, "wal_autocheckpoint", 64)?;
    Ok(())
}

impl Store {
    /// Creates a new ledger at `path` for the repository `repository`, under the checkpoint
    /// origin `origin` (conventionally `tally/<repository id>`), and signs its first
    /// checkpoint (size 0) with the ledger key, which the ledger then requires for every
    /// append.
    pub fn create(
        path: &Path,
        origin: &str,
        repository: &str,
        now: jiff::Timestamp,
        key: &SigningKey,
        options: &Options,
    ) -> Result<Store, StoreError> {
        if path.exists() {
            return Err(StoreError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        let time = unix_seconds(now)?;
        let checkpoint = Checkpoint {
            origin: origin.to_owned(),
            size: 0,
            root: EMPTY_ROOT,
        }
        .sign(time, key)?;
        let conn =
            match Store::initialise(path, origin, repository, time, &checkpoint, key, options) {
                Ok(conn) => conn,
                Err(e) => {
                    // Leave nothing behind that a retry would mistake for an existing ledger.
                    if !matches!(e, StoreError::AlreadyExists { .. }) {
                        for suffix in ["", "-wal", "-shm", "-journal"] {
                            let mut name = path.as_os_str().to_owned();
                            name.push(suffix);
                            let _ = std::fs::remove_file(PathBuf::from(name));
                        }
                    }
                    return Err(e);
                }
            };
        Ok(Store {
            backend: Backend::Sqlite {
                conn,
                path: path.to_owned(),
            },
            origin: origin.to_owned(),
            repository: repository.to_owned(),
            public_key: key.verifying_key().to_bytes(),
            busy_timeout: options.busy_timeout,
        })
    }

    /// Creates a new ledger for `repository` in a PostgreSQL database, as [`Store::create`]
    /// does in SQLite: creates or upgrades the schema first, then, in one transaction, the
    /// ledger's row and its first checkpoint (size 0).
    pub fn create_in(
        mut db: Postgres,
        origin: &str,
        repository: &str,
        now: jiff::Timestamp,
        key: &SigningKey,
    ) -> Result<Store, StoreError> {
        db.upgrade()?;
        unix_seconds(now)?;
        let public_key = key.verifying_key().to_bytes();
        let empty = Head {
            size: 0,
            root: EMPTY_ROOT,
            last_leaf: GENESIS,
        };
        let lock_timeout = db.conn.lock_timeout();
        let mut tx = db
            .conn
            .client
            .transaction()
            .map_err(|e| pg::error(e, lock_timeout))?;
        let ledger = pg::insert_ledger(
            &mut tx,
            repository,
            origin,
            &public_key,
            &empty,
            &Frontier::new(),
            lock_timeout,
        )
        .map_err(|e| match e {
            StoreError::Postgres(p) if p.source.is_none() => StoreError::InDatabase {
                location: db.location.clone(),
                repository: repository.to_owned(),
            },
            other => other,
        })?;
        tx.commit().map_err(|e| pg::error(e, lock_timeout))?;
        let mut store = Store {
            backend: Backend::Postgres {
                conn: Box::new(RefCell::new(db.conn)),
                ledger,
                location: db.location,
                markers: RefCell::new(None),
            },
            origin: origin.to_owned(),
            repository: repository.to_owned(),
            public_key,
            busy_timeout: lock_timeout,
        };
        // The first checkpoint, as SQLite's `initialise` signs it.
        store.checkpoint(now, key)?;
        Ok(store)
    }

    /// Opens the ledger of `repository` in a PostgreSQL database.
    pub fn open_in(mut db: Postgres, repository: &str) -> Result<Store, StoreError> {
        // One round trip where it can (a hook opens the ledger in every run); otherwise the
        // checks one by one, whose errors say what is wrong.
        let found = match pg::open(&mut db.conn, repository)? {
            Some(found) => found.map(|(ledger, meta, markers)| (ledger, meta, Some(markers))),
            None => {
                pg::check_schema(&mut db.conn)?;
                match pg::find(&mut db.conn, repository)? {
                    Some(ledger) => Some((ledger, db.conn.read(ledger).meta()?, None)),
                    None => None,
                }
            }
        };
        let Some((ledger, meta, markers)) = found else {
            return Err(StoreError::NotInDatabase {
                location: db.location,
                repository: repository.to_owned(),
            });
        };
        if let Some(to) = &meta.moved {
            return Err(pg::moved(to));
        }
        if meta.repository != repository {
            return Err(Corruption {
                table: "ledgers",
                row: ledger,
                column: "repository",
                problem: "not the repository it was found by",
            }
            .into());
        }
        let busy_timeout = db.conn.lock_timeout();
        Ok(Store {
            backend: Backend::Postgres {
                conn: Box::new(RefCell::new(db.conn)),
                ledger,
                location: db.location,
                markers: RefCell::new(markers),
            },
            origin: meta.origin,
            repository: meta.repository,
            public_key: meta.public_key,
            busy_timeout,
        })
    }

    /// Creates the schema and the first checkpoint in a new database file.
    fn initialise(
        path: &Path,
        origin: &str,
        repository: &str,
        time: u64,
        checkpoint: &SignedCheckpoint,
        key: &SigningKey,
        options: &Options,
    ) -> Result<Connection, StoreError> {
        let public_key = key.verifying_key().to_bytes();
        Store::initialise_with(path, origin, repository, &public_key, options, |tx| {
            tx.execute(
                "INSERT INTO checkpoints (size, root, time, note) VALUES (0, ?1, ?2, ?3)",
                params![EMPTY_ROOT.as_slice(), to_sql(time)?, checkpoint.text()],
            )?;
            Ok(())
        })
    }

    /// Creates the schema, the meta row and an empty head in a new database file, then runs
    /// `fill` in the same transaction.
    fn initialise_with(
        path: &Path,
        origin: &str,
        repository: &str,
        public_key: &[u8; 32],
        options: &Options,
        fill: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        configure(&conn, options)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(rusqlite::Error::InvalidQuery));
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(|e| busy(e, options))?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let tables: i64 =
            tx.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        if version != 0 || tables != 0 {
            return Err(StoreError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        tx.execute_batch(SCHEMA)?;
        tx.execute(
            "INSERT INTO meta (id, origin, repository, public_key) VALUES (1, ?1, ?2, ?3)",
            params![origin, repository, public_key.as_slice()],
        )?;
        tx.execute(
            "INSERT INTO head (id, size, root, last_leaf, frontier) VALUES (1, 0, ?1, ?2, ?3)",
            params![
                EMPTY_ROOT.as_slice(),
                GENESIS.as_slice(),
                Frontier::new().to_bytes()
            ],
        )?;
        fill(&tx)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(conn)
    }

    /// Opens an existing ledger with default options (read-write, 10 s busy timeout).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &Options::default())
    }

    /// Opens an existing ledger.
    pub fn open_with(path: &Path, options: &Options) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound {
                path: path.to_owned(),
            });
        }
        let flags = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags)?;
        configure(&conn, options)?;
        let app: i64 = conn
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .map_err(|e| busy(e, options))?;
        if app != APPLICATION_ID {
            return Err(StoreError::NotALedger {
                path: path.to_owned(),
                found: app,
            });
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::UnsupportedSchema { found: version });
        }
        let meta = read_meta(&conn)?;
        Ok(Store {
            backend: Backend::Sqlite {
                conn,
                path: path.to_owned(),
            },
            origin: meta.origin,
            repository: meta.repository,
            public_key: meta.public_key,
            busy_timeout: options.busy_timeout,
        })
    }

    /// The ledger file, for a ledger in SQLite.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres { .. } => None,
        }
    }

    /// Where the ledger lives, as messages show it: the SQLite file, or the PostgreSQL
    /// database (without a password) and the ledger's repository id.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres { location, .. } => {
                format!("{location} (ledger {})", self.repository)
            }
        }
    }

    /// Whether the ledger is shared by several nodes (in PostgreSQL): in-flight markers
    /// live in the database, and a replica catching up is not an out-of-band move.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// The checkpoint origin (and ledger key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The repository id every entry carries.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The ledger key's public key as recorded at creation (not a trust anchor: verifiers
    /// pin their own copy).
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    fn busy(&self, e: rusqlite::Error) -> StoreError {
        if is_busy(&e) {
            StoreError::Busy {
                timeout: self.busy_timeout,
            }
        } else {
            StoreError::Database(e)
        }
    }

    fn check_key(&self, key: &SigningKey) -> Result<(), StoreError> {
        let given = key.verifying_key().to_bytes();
        if given != self.public_key {
            return Err(StoreError::WrongKey {
                ledger: hex::encode(&self.public_key),
                given: hex::encode(&given),
            });
        }
        Ok(())
    }

    /// Appends entries and signs a checkpoint of the new head, all in one transaction.
    ///
    /// The store assigns each entry its seq, the time `now`, the ledger's repository id and the
    /// previous entry's leaf hash. On any error nothing is written. The rules are
    /// `append::append`'s, shared by every backend.
    pub fn append(
        &mut self,
        entries: Vec<NewEntry>,
        now: jiff::Timestamp,
        key: &SigningKey,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_marked(entries, &[], now, key)
    }

    /// [`Store::append`], keeping `markers` (in-flight markers, see the hooks' `record.rs`)
    /// in the same transaction, for a ledger in PostgreSQL: a marker then exists exactly when
    /// its entry does. A marker of another node with the same key is never taken over: the
    /// append is refused instead. A ledger in SQLite takes no markers (they are files there).
    pub fn append_marked(
        &mut self,
        entries: Vec<NewEntry>,
        markers: &[Marker],
        now: jiff::Timestamp,
        key: &SigningKey,
    ) -> Result<AppendOutcome, StoreError> {
        if entries.is_empty() {
            return Err(StoreError::NothingToAppend);
        }
        self.check_key(key)?;
        let time = unix_seconds(now)?;
        let timeout = self.busy_timeout;
        let ledger = append::Ledger {
            origin: &self.origin,
            repository: &self.repository,
        };
        match &mut self.backend {
            Backend::Sqlite { .. } if !markers.is_empty() => {
                Err(StoreError::Postgres(PgError::new(
                    "in-flight markers of a ledger in SQLite live in files, not in the database",
                )))
            }
            Backend::Sqlite { conn, .. } => {
                let mut tx = SqliteTx::begin(conn, timeout)?;
                let outcome = append::append(&mut tx, &ledger, entries, now, time, key)?;
                tx.commit(timeout)?;
                // Keep the WAL short (see `configure`): every few appends, fold it into the
                // database and truncate it. The entries are committed either way; a
                // checkpoint that cannot run now (another process reading) only leaves the
                // WAL longer until the next one.
                if outcome.size % WAL_TRUNCATE_EVERY == 0 {
                    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                }
                Ok(outcome)
            }
            Backend::Postgres {
                conn, ledger: id, ..
            } => conn.get_mut().locked(*id, |tx| {
                let outcome = append::append(tx, &ledger, entries, now, time, key)?;
                for m in markers {
                    tx.put_marker(&m.key, &m.text, &m.node)?;
                }
                Ok(outcome)
            }),
        }
    }

    /// Signs a fresh checkpoint of the current head (the freshness heartbeat) and keeps it.
    pub fn checkpoint(
        &mut self,
        now: jiff::Timestamp,
        key: &SigningKey,
    ) -> Result<SignedCheckpoint, StoreError> {
        self.check_key(key)?;
        let time = unix_seconds(now)?;
        let timeout = self.busy_timeout;
        let ledger = append::Ledger {
            origin: &self.origin,
            repository: &self.repository,
        };
        match &mut self.backend {
            Backend::Sqlite { conn, .. } => {
                let mut tx = SqliteTx::begin(conn, timeout)?;
                let checkpoint = append::heartbeat(&mut tx, &ledger, time, key)?;
                tx.commit(timeout)?;
                Ok(checkpoint)
            }
            Backend::Postgres {
                conn, ledger: id, ..
            } => conn
                .get_mut()
                .locked(*id, |tx| append::heartbeat(tx, &ledger, time, key)),
        }
    }

    /// The read side of the backend. Outside a transaction, as here, each statement reads the
    /// latest committed state (SQLite's WAL gives every statement a snapshot; PostgreSQL's
    /// READ COMMITTED too).
    fn read(&self) -> Reader<'_> {
        match &self.backend {
            Backend::Sqlite { conn, .. } => Reader::Sqlite(Sql(conn)),
            Backend::Postgres { conn, ledger, .. } => Reader::Postgres(conn.borrow_mut(), *ledger),
        }
    }

    /// The current head.
    pub fn head(&self) -> Result<Head, StoreError> {
        self.read()
            .head()
            .map(|h| h.head)
            .map_err(|e| self.rebusy(e))
    }

    fn rebusy(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Database(e) => self.busy(e),
            other => other,
        }
    }

    /// The most recently signed checkpoint.
    pub fn latest_checkpoint(&self) -> Result<StoredCheckpoint, StoreError> {
        let mut latest = None;
        self.read()
            .checkpoints(true, &mut |c| {
                latest = Some(c);
                Ok(false)
            })
            .map_err(|e| self.rebusy(e))?;
        latest.ok_or_else(|| {
            Corruption {
                table: "checkpoints",
                row: 0,
                column: "*",
                problem: "no checkpoint",
            }
            .into()
        })
    }

    /// Calls `f` with every stored checkpoint, oldest first; stops at the first error `f`
    /// returns.
    pub fn for_each_checkpoint(
        &self,
        mut f: impl FnMut(StoredCheckpoint) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read()
            .checkpoints(false, &mut |c| f(c).map(|()| true))
            .map_err(|e| self.rebusy(e))
    }

    /// The entry with this seq, if any.
    pub fn entry(&self, seq: u64) -> Result<Option<Record>, StoreError> {
        Ok(self.entries(seq..seq.saturating_add(1))?.pop())
    }

    /// The entries with seqs in `range`, oldest first, each checked against its leaf hash.
    pub fn entries(&self, range: Range<u64>) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        self.read()
            .entries(range, &mut |seq, bytes, leaf| {
                out.push(backend::record(seq, bytes, leaf)?);
                Ok(true)
            })
            .map_err(|e| self.rebusy(e))?;
        Ok(out)
    }

    /// Calls `f(seq, stored bytes)` for each entry in `range`, oldest first: the exact bytes
    /// that were hashed, for publication. Each row's bytes are checked against its stored
    /// leaf hash first, so corrupt rows are an error rather than published.
    pub fn raw_entries(
        &self,
        range: Range<u64>,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), StoreError> {
        self.read()
            .entries(range, &mut |seq, bytes, leaf| {
                backend::record(seq, bytes, leaf)?;
                f(seq, bytes);
                Ok(true)
            })
            .map_err(|e| self.rebusy(e))
    }

    /// Entries newest first, filtered, as `tally log` lists them.
    pub fn log(&self, filter: &Filter) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        self.log_each(filter, |record| {
            out.push(record);
            true
        })?;
        Ok(out)
    }

    /// Where the ledger puts every ref that an entry set ([`Store::position`] of each ref
    /// named in the ledger), in ref name order.
    pub fn positions(&self) -> Result<Vec<(String, crate::chain::Position)>, StoreError> {
        let mut read = self.read();
        let mut out = Vec::new();
        for name in read.refnames().map_err(|e| self.rebusy(e))? {
            if let Some(at) = backend::position(&mut read, &name)? {
                out.push((name, at));
            }
        }
        Ok(out)
    }

    /// Where the ledger says `refname` is: the latest entry that set it and was not aborted
    /// (see [`crate::chain::effect`]), or `None` if no entry set it. The hooks compare a
    /// protected ref's old value with this before they let it move.
    pub fn position(&self, refname: &str) -> Result<Option<crate::chain::Position>, StoreError> {
        backend::position(&mut self.read(), refname).map_err(|e| self.rebusy(e))
    }

    /// Calls `f` with each entry [`Store::log`] would return, newest first, until `f` returns
    /// `false`; for listing a large ledger without holding it in memory.
    pub fn log_each(
        &self,
        filter: &Filter,
        mut f: impl FnMut(Record) -> bool,
    ) -> Result<(), StoreError> {
        self.read()
            .select(filter, &mut |seq, bytes, leaf| {
                let record = backend::record(seq, bytes, leaf)?;
                // The filter columns are copies; the entry itself is what counts.
                let matches = filter
                    .refname
                    .as_deref()
                    .is_none_or(|r| r == record.entry.refname)
                    && filter.kind.is_none_or(|k| k == record.entry.kind);
                if !matches {
                    return Err(StoreError::DamagedEntry {
                        seq: record.entry.seq,
                        problem: "its index columns do not match its bytes",
                    });
                }
                Ok(f(record))
            })
            .map_err(|e| self.rebusy(e))
    }

    fn check_size(&self, what: &'static str, value: u64) -> Result<u64, StoreError> {
        let size = self.head()?.size;
        if value > size {
            return Err(StoreError::OutOfRange { what, value, size });
        }
        Ok(size)
    }

    /// The Merkle root of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.check_size("size", size)?;
        let mut read = self.read();
        merkle::root_with(size, |level, index| backend::node(&mut read, level, index))
    }

    /// The inclusion proof of entry `seq` in the tree of the first `size` entries.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size("size", size)?;
        let mut read = self.read();
        merkle::inclusion_proof_with(seq, size, |level, index| {
            backend::node(&mut read, level, index)
        })
    }

    /// The consistency proof from the first `first` entries to the first `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size("size", second)?;
        let mut read = self.read();
        merkle::consistency_proof_with(first, second, |level, index| {
            backend::node(&mut read, level, index)
        })
    }

    /// The SQLite connection (tests tamper with rows through it).
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &Connection {
        match &self.backend {
            Backend::Sqlite { conn, .. } => conn,
            Backend::Postgres { .. } => panic!("not a ledger in SQLite"),
        }
    }

    /// The SQLite connection, to hold its write lock in tests.
    #[cfg(test)]
    pub(crate) fn sqlite_mut(&mut self) -> &mut Connection {
        match &mut self.backend {
            Backend::Sqlite { conn, .. } => conn,
            Backend::Postgres { .. } => panic!("not a ledger in SQLite"),
        }
    }

    /// Runs `f` over the backend's audit reader (see `verify.rs`), in one read transaction.
    fn audit<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn verify::Audit) -> Result<T, VerifyError>,
    ) -> Result<T, VerifyError> {
        match &self.backend {
            Backend::Sqlite { conn, .. } => {
                f(&mut verify::SqliteAudit::begin(conn, self.busy_timeout)?)
            }
            Backend::Postgres { conn, ledger, .. } => {
                let mut conn = conn.borrow_mut();
                f(&mut pg::PgAudit::begin(&mut conn, *ledger)?)
            }
        }
    }

    /// Runs `f` on the shared ledger's database; an error for a ledger in SQLite.
    fn shared_db<T>(
        &self,
        f: impl FnOnce(&mut pg::Pg<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Postgres { conn, ledger, .. } => f(&mut conn.borrow_mut().read(*ledger)),
            Backend::Sqlite { .. } => Err(StoreError::Postgres(PgError::new(
                "in-flight markers of a ledger in SQLite live in files, not in the database",
            ))),
        }
    }

    /// Keeps an in-flight marker in the shared ledger's database (committed at once).
    pub fn put_marker(&self, marker: &Marker) -> Result<(), StoreError> {
        self.shared_db(|db| db.put_marker(&marker.key, &marker.text, &marker.node))
    }

    /// The in-flight marker of `key`, if the shared ledger's database holds one.
    pub fn marker(&self, key: &str) -> Result<Option<Marker>, StoreError> {
        self.shared_db(|db| db.marker(key))
    }

    /// Every in-flight marker of the shared ledger, in key order.
    pub fn markers(&self) -> Result<Vec<Marker>, StoreError> {
        if let Backend::Postgres { markers, .. } = &self.backend
            && let Some(read) = markers.borrow_mut().take()
        {
            return Ok(read);
        }
        self.shared_db(|db| db.markers())
    }

    /// Removes the in-flight marker of `key`, if there is one.
    pub fn remove_marker(&self, key: &str) -> Result<(), StoreError> {
        self.shared_db(|db| db.remove_marker(key))
    }
}

/// The read side of either backend.
enum Reader<'a> {
    Sqlite(Sql<'a>),
    Postgres(std::cell::RefMut<'a, pg::Conn>, i64),
}

macro_rules! dispatch {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            Reader::Sqlite($r) => $call,
            Reader::Postgres(conn, ledger) => {
                let $r = &mut conn.read(*ledger);
                $call
            }
        }
    };
}

impl ReadTx for Reader<'_> {
    fn head(&mut self) -> Result<StoredHead, StoreError> {
        dispatch!(self, r => r.head())
    }
    fn refnames(&mut self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, r => r.refnames())
    }
    fn moves(&mut self, refname: &str, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        dispatch!(self, r => r.moves(refname, f))
    }
    fn entries(&mut self, range: Range<u64>, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        dispatch!(self, r => r.entries(range, f))
    }
    fn select(&mut self, filter: &Filter, f: &mut EntryFn<'_>) -> Result<(), StoreError> {
        dispatch!(self, r => r.select(filter, f))
    }
    fn leaf(&mut self, seq: u64) -> Result<Hash, StoreError> {
        dispatch!(self, r => r.leaf(seq))
    }
    fn nodes(&mut self, seq: u64) -> Result<Vec<u8>, StoreError> {
        dispatch!(self, r => r.nodes(seq))
    }
    fn checkpoints(
        &mut self,
        newest_first: bool,
        f: &mut dyn FnMut(StoredCheckpoint) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        dispatch!(self, r => r.checkpoints(newest_first, f))
    }
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "size {} root {}", self.size, Hex(&self.root))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
