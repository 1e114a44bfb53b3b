//! Whole-ledger verification.
//!
//! One pass over the entries, in seq order, inside one read transaction (one snapshot):
//! each entry's leaf hash is recomputed from its stored bytes and compared with the stored
//! one; the bytes are decoded strictly; the row's seq, the chain rules
//! ([`crate::chain::ChainVerifier`]), the index columns and the Merkle nodes stored with the
//! entry are checked; the frontier grows leaf by leaf, so the root at every size is at hand
//! when the checkpoints of that size come by (they are read in size order alongside). At the
//! end the head (size, root, last leaf, frontier) must equal what was recomputed, and the
//! latest checkpoint must sign the head.
//!
//! The work runs as a pipeline, because reading SQLite and hashing cost about the same: the
//! caller's thread reads rows (it owns the connection) and hands them over in batches, in
//! ledger order; a second thread does every check above; the checkpoint signatures, two per
//! checkpoint and one checkpoint per push on a real ledger, are verified in batch equations
//! of [`SIGNATURE_BATCH`] checkpoints on one thread per core (about 16 us per checkpoint on
//! two cores, against 75 us one by one). Checkpoints are independent of each other, so every
//! bad one is reported (in id order), not just the first; the entries form one chain, so the
//! first entry at fault ends their check (what comes after it cannot be judged) and is
//! reported after the checkpoints. What was read before a failing row is still checked.
//!
//! What a local verify cannot see: a ledger rolled back *consistently* to an earlier signed
//! state (an old backup). Agents pin the size and root they saw, which is what detects that.

use std::ops::Range;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::backend::StoredHead;
use super::{
    Corruption, Head, StoreError, column_array, column_blob, column_i64, column_opt_u64,
    column_text, column_u64, is_busy, read_head,
};
use crate::chain::{ChainError, ChainVerifier};
use crate::checkpoint::{CheckpointError, SignedCheckpoint, VerifiedCheckpoint, VerifierKey};
use crate::entry::{EntryError, EntryView};
use crate::hex::Hex;
use crate::log::count;
use crate::merkle::{Frontier, Hash, leaf_hash};

/// How often, in entries, `verify` reports progress.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What was wrong with a ledger, naming the entry or checkpoint at fault ([`VerifyError::Several`]
/// when there is more than one fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The ledger could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row holds a value the schema does not allow.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// The verifier key is for another ledger.
    #[error("the verifier key is named {key_name:?}, but this ledger's origin is {origin:?}")]
    WrongVerifierKey {
        /// The ledger's origin.
        origin: String,
        /// The key's name.
        key_name: String,
    },
    /// An entry's stored bytes do not hash to its stored leaf hash: the bytes were changed.
    #[error("entry {seq}: its bytes hash to {}, but its stored leaf hash is {}", Hex(.computed), Hex(.stored))]
    LeafHashMismatch {
        /// The row's seq.
        seq: u64,
        /// The leaf hash column.
        stored: Hash,
        /// The hash of the bytes.
        computed: Hash,
    },
    /// An entry's bytes do not decode.
    #[error("entry {seq} does not decode: {source}")]
    Undecodable {
        /// The row's seq.
        seq: u64,
        /// Why.
        source: EntryError,
    },
    /// A row holds the entry of another seq (rows swapped or moved).
    #[error("row {row} holds entry {encoded}")]
    RowSeqMismatch {
        /// The row's seq.
        row: u64,
        /// The seq encoded in its bytes.
        encoded: u64,
    },
    /// The chain is broken (see [`ChainError`]).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// An index column (kind, refname, aborts) disagrees with the entry's bytes, which would
    /// hide or misfile the entry in `tally log`.
    #[error("entry {seq}: the {column} column does not match the entry")]
    IndexMismatch {
        /// The entry.
        seq: u64,
        /// The column.
        column: &'static str,
    },
    /// The Merkle nodes stored with an entry are not the ones its leaf completes.
    #[error("entry {seq}: its stored Merkle nodes are wrong")]
    NodeMismatch {
        /// The entry.
        seq: u64,
    },
    /// The head claims more entries than there are.
    #[error(
        "{} missing (the head says the ledger has {})",
        missing(*.found, *.head_size),
        count(*.head_size, "entry", "entries")
    )]
    MissingEntries {
        /// The head's size.
        head_size: u64,
        /// How many entries there are.
        found: u64,
    },
    /// There are entries beyond the head.
    #[error("entry {seq} is beyond the head (size {head_size})")]
    EntryBeyondHead {
        /// The first entry beyond the head.
        seq: u64,
        /// The head's size.
        head_size: u64,
    },
    /// The head's root is not the root of the entries.
    #[error("the head's root {} is not the root of the {}, {}", Hex(.head), count(*.size, "entry", "entries"), Hex(.computed))]
    HeadRootMismatch {
        /// The head's size.
        size: u64,
        /// The head's root.
        head: Hash,
        /// The recomputed root.
        computed: Hash,
    },
    /// The head's last leaf hash is not the last entry's.
    #[error("the head's last leaf hash is not entry {}'s", .size.wrapping_sub(1))]
    HeadLastLeafMismatch {
        /// The head's size.
        size: u64,
    },
    /// The head's stored frontier is not the recomputed one.
    #[error("the head's Merkle frontier does not match the entries")]
    FrontierMismatch,
    /// A checkpoint is for more entries than the ledger has.
    #[error(
        "checkpoint {id} is for size {size}, beyond the ledger's {} (entries were removed)",
        count(*.head_size, "entry", "entries")
    )]
    CheckpointBeyondHead {
        /// The checkpoint's row id.
        id: i64,
        /// Its size.
        size: u64,
        /// The ledger's size.
        head_size: u64,
    },
    /// A checkpoint's root column is not the root of the entries at its size.
    #[error("checkpoint {id} says the root at size {size} is {}, but the entries give {}", Hex(.stored), Hex(.computed))]
    CheckpointRootMismatch {
        /// The checkpoint's row id.
        id: i64,
        /// Its size.
        size: u64,
        /// Its root column.
        stored: Hash,
        /// The recomputed root.
        computed: Hash,
    },
    /// A checkpoint's note does not parse or does not verify with the ledger key.
    #[error("checkpoint {id}: {source}")]
    CheckpointSignature {
        /// The checkpoint's row id.
        id: i64,
        /// Why.
        source: CheckpointError,
    },
    /// A checkpoint's size, root or time column is not what its signed note says.
    #[error("checkpoint {id}: the {column} column does not match the signed note")]
    CheckpointColumnMismatch {
        /// The checkpoint's row id.
        id: i64,
        /// The column.
        column: &'static str,
    },
    /// A later checkpoint is for fewer entries than an earlier one (ids out of size order).
    #[error(
        "checkpoint {id} (size {size}) was signed after checkpoint {earlier_id} (size {earlier_size}), for fewer entries"
    )]
    CheckpointOutOfOrder {
        /// The checkpoint.
        id: i64,
        /// Its size.
        size: u64,
        /// The earlier-signed checkpoint for more entries.
        earlier_id: i64,
        /// Its size.
        earlier_size: u64,
    },
    /// The latest checkpoint does not sign the head.
    #[error("the latest checkpoint (id {id}, size {size}) does not sign the head ({head})")]
    HeadNotCheckpointed {
        /// The latest checkpoint's id.
        id: i64,
        /// Its size.
        size: u64,
        /// The head.
        head: Head,
    },
    /// There is no checkpoint at all.
    #[error("the ledger has no checkpoint")]
    NoCheckpoint,
    /// Several faults, each its own error: every bad checkpoint in id order (checkpoints are
    /// independent of each other), then the first entry fault, if any. A single fault is
    /// reported as itself, never inside this.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<VerifyError>),
    /// A verification thread stopped without a result (a bug: please report it).
    #[error("internal error: a verification thread stopped unexpectedly")]
    ThreadFailed,
}

/// `entry 5 is` or `entries 5 to 7 are`: the seqs `found..head_size`.
fn missing(found: u64, head_size: u64) -> String {
    if head_size.saturating_sub(found) == 1 {
        format!("entry {found} is")
    } else {
        format!("entries {found} to {} are", head_size.saturating_sub(1))
    }
}

impl VerifyError {
    /// Every fault this error stands for, in the order found.
    pub fn into_problems(self) -> Vec<VerifyError> {
        match self {
            VerifyError::Several(all) => all,
            one => vec![one],
        }
    }

    /// One error for `problems` (at least one): the fault itself when there is one.
    fn from_problems(mut problems: Vec<VerifyError>) -> VerifyError {
        if problems.len() == 1 {
            problems.remove(0)
        } else {
            VerifyError::Several(problems)
        }
    }
}

impl From<rusqlite::Error> for VerifyError {
    fn from(e: rusqlite::Error) -> VerifyError {
        VerifyError::Store(StoreError::Database(e))
    }
}

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The number of entries verified.
    pub size: u64,
    /// Their root.
    pub root: Hash,
    /// The number of checkpoints verified.
    pub checkpoints: u64,
    /// The latest checkpoint, verified; it signs exactly `size` and `root`.
    pub latest: VerifiedCheckpoint,
    /// Where the verified entries put each ref that one of them set
    /// ([`crate::chain::Position`]), by ref name.
    pub positions: std::collections::BTreeMap<String, crate::chain::Position>,
}

/// A checkpoint handed to the signature thread.
pub(super) struct Job {
    pub(super) id: i64,
    pub(super) size: u64,
    pub(super) root: Hash,
    pub(super) time: u64,
    pub(super) note: String,
}

/// What the signature stage found: every bad checkpoint by id, the count of good ones and
/// the latest good one.
struct SignatureOutcome {
    count: u64,
    latest: Option<(i64, VerifiedCheckpoint)>,
    problems: Vec<(i64, VerifyError)>,
}

/// Checkpoints verified in one batch equation (two signatures each).
const SIGNATURE_BATCH: usize = 256;

/// Verifies the checkpoints' signatures as they come, in batches of [`SIGNATURE_BATCH`]
/// spread over every core: a ledger signs a checkpoint per push, so on a real ledger these
/// signatures, not the entries, are most of the work. Checkpoints are independent of each
/// other, so every one is checked and every bad one reported.
fn check_signatures(jobs: mpsc::Receiver<Job>, key: &VerifierKey) -> SignatureOutcome {
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (chunks, queue) = mpsc::sync_channel::<Vec<Job>>(2 * workers);
    let queue = Mutex::new(queue);
    let outcomes: Vec<SignatureOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| signature_worker(&queue, key)))
            .collect();
        let mut chunk = Vec::with_capacity(SIGNATURE_BATCH);
        for job in jobs.iter() {
            chunk.push(job);
            if chunk.len() == SIGNATURE_BATCH && chunks.send(std::mem::take(&mut chunk)).is_err() {
                break;
            }
        }
        if !chunk.is_empty() {
            let _ = chunks.send(chunk);
        }
        drop(chunks);
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| SignatureOutcome {
                    count: 0,
                    latest: None,
                    // A worker that panicked (a bug): an internal error, never success.
                    problems: vec![(i64::MIN, VerifyError::ThreadFailed)],
                })
            })
            .collect()
    });
    let mut all = SignatureOutcome {
        count: 0,
        latest: None,
        problems: Vec::new(),
    };
    for outcome in outcomes {
        all.count += outcome.count;
        all.problems.extend(outcome.problems);
        if let Some((id, v)) = outcome.latest
            && all.latest.as_ref().is_none_or(|(newest, _)| id > *newest)
        {
            all.latest = Some((id, v));
        }
    }
    all.problems.sort_by_key(|(id, _)| *id);
    all
}

fn signature_worker(
    queue: &Mutex<mpsc::Receiver<Vec<Job>>>,
    key: &VerifierKey,
) -> SignatureOutcome {
    let mut out = SignatureOutcome {
        count: 0,
        latest: None,
        problems: Vec::new(),
    };
    loop {
        let next = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => break,
        };
        let Ok(chunk) = next else {
            break;
        };
        check_chunk(&chunk, key, &mut out);
    }
    out
}

/// Checks one chunk of checkpoints: one batch equation when all are good; otherwise each
/// one by one, so that every bad one is named with what is wrong with it.
fn check_chunk(chunk: &[Job], key: &VerifierKey, out: &mut SignatureOutcome) {
    let mut parsed = Vec::with_capacity(chunk.len());
    for job in chunk {
        match SignedCheckpoint::parse(&job.note) {
            Ok(note) => parsed.push((job, note)),
            Err(source) => out.problems.push((
                job.id,
                VerifyError::CheckpointSignature { id: job.id, source },
            )),
        }
    }
    let notes: Vec<SignedCheckpoint> = parsed.iter().map(|(_, n)| n.clone()).collect();
    let verified: Vec<Result<VerifiedCheckpoint, CheckpointError>> =
        match SignedCheckpoint::verify_all(&notes, key) {
            Ok(all) => all.into_iter().map(Ok).collect(),
            Err(_) => notes.iter().map(|n| n.verify(key)).collect(),
        };
    for ((job, _), verified) in parsed.iter().zip(verified) {
        let verified = match verified {
            Ok(v) => v,
            Err(source) => {
                out.problems.push((
                    job.id,
                    VerifyError::CheckpointSignature { id: job.id, source },
                ));
                continue;
            }
        };
        let wrong = [
            ("size", verified.size() == job.size),
            ("root", *verified.root() == job.root),
            ("time", verified.time() == job.time),
        ]
        .into_iter()
        .find(|(_, ok)| !ok);
        if let Some((column, _)) = wrong {
            out.problems.push((
                job.id,
                VerifyError::CheckpointColumnMismatch { id: job.id, column },
            ));
            continue;
        }
        out.count += 1;
        if out.latest.as_ref().is_none_or(|(id, _)| job.id > *id) {
            out.latest = Some((job.id, verified));
        }
    }
}

/// What the audit reads from a backend, all from one snapshot (one read transaction): the
/// head with its frontier, then entries and checkpoints as rows, then the newest checkpoint's
/// id. Each backend streams its own rows (index columns and stored nodes included, because
/// they are what is audited) into a [`Sink`], which puts them in ledger order; the checks are
/// the same for all.
pub(super) trait Audit {
    /// The head and its frontier.
    fn head(&mut self) -> Result<StoredHead, VerifyError>;
    /// Streams every entry (in seq order, through [`Sink::entry`]) with the checkpoints (in
    /// size, then id order, through the `next_checkpoint` it hands the sink), until the sink
    /// says stop.
    fn read(&mut self, sink: &mut Sink<'_>) -> Result<(), VerifyError>;
    /// The id of the newest checkpoint.
    fn newest_checkpoint(&mut self) -> Result<i64, VerifyError>;
}

/// The SQLite rows of the audit, in one read transaction.
pub(super) struct SqliteAudit<'c> {
    tx: rusqlite::Transaction<'c>,
    busy_timeout: Duration,
}

impl<'c> SqliteAudit<'c> {
    pub(super) fn begin(
        conn: &'c Connection,
        busy_timeout: Duration,
    ) -> Result<SqliteAudit<'c>, VerifyError> {
        // One read transaction: every row read comes from the same snapshot.
        let tx = conn
            .unchecked_transaction()
            .map_err(|e| busy(e, busy_timeout))?;
        Ok(SqliteAudit { tx, busy_timeout })
    }
}

impl Audit for SqliteAudit<'_> {
    fn head(&mut self) -> Result<StoredHead, VerifyError> {
        let timeout = self.busy_timeout;
        read_head(&self.tx).map_err(|e| match e {
            StoreError::Database(e) => VerifyError::Store(busy(e, timeout)),
            other => VerifyError::Store(other),
        })
    }

    fn read(&mut self, sink: &mut Sink<'_>) -> Result<(), VerifyError> {
        let mut checkpoint_stmt = self
            .tx
            .prepare("SELECT id, size, root, time, note FROM checkpoints ORDER BY size, id")?;
        let mut checkpoints = checkpoint_stmt.query([])?;
        let mut next_checkpoint = || match checkpoints.next()? {
            Some(row) => Ok(Some(read_job(row)?)),
            None => Ok(None),
        };
        let mut stmt = self.tx.prepare(
            "SELECT seq, bytes, leaf_hash, nodes, kind, refname, aborts FROM entries ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        loop {
            let entry = match rows.next()? {
                Some(row) => Some(read_entry(row, sink.arena())?),
                None => None,
            };
            if !sink.entry(entry, &mut next_checkpoint)? {
                return Ok(());
            }
        }
    }

    fn newest_checkpoint(&mut self) -> Result<i64, VerifyError> {
        Ok(self
            .tx
            .query_row("SELECT max(id) FROM checkpoints", [], |row| row.get(0))?)
    }
}

pub(super) fn verify(
    source: &mut dyn Audit,
    origin: &str,
    repository: &str,
    key: &VerifierKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    if key.name() != origin {
        return Err(VerifyError::WrongVerifierKey {
            origin: origin.to_owned(),
            key_name: key.name().to_owned(),
        });
    }
    let stored = source.head()?;
    let head = stored.head;
    let (jobs, queue) = mpsc::sync_channel::<Job>(256);
    let (batches, inbox) = mpsc::sync_channel::<Message>(4);
    let (spare_out, spare) = mpsc::channel::<Batch>();
    let checkpoint_problems: Mutex<Vec<(i64, VerifyError)>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        // Three stages: this thread reads SQLite (the connection cannot leave it), one
        // recomputes hashes, chain and tree, one checks checkpoint signatures.
        let signatures = scope.spawn(move || check_signatures(queue, key));
        let (head_ref, frontier) = (&head, &stored.frontier);
        let found = &checkpoint_problems;
        let checker = scope.spawn(move || {
            check(
                repository, head_ref, frontier, inbox, spare_out, jobs, found,
            )
        });
        if let Err(e) = read(source, head.size, &batches, &spare, progress) {
            let _ = batches.send(Message::Failed(e));
        }
        drop(batches);
        let checked = checker
            .join()
            .unwrap_or_else(|_| Err(VerifyError::ThreadFailed));
        let signed = signatures.join().unwrap_or_else(|_| SignatureOutcome {
            count: 0,
            latest: None,
            problems: vec![(i64::MIN, VerifyError::ThreadFailed)],
        });
        // Every bad checkpoint, in id order (a checkpoint the signature stage faults is not
        // named again by the checker), then the first entry fault, if any.
        let checked = checked.map_err(VerifyError::into_problems);
        let mut problems = signed.problems;
        let mut others = std::mem::take(
            &mut *checkpoint_problems
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        others.retain(|(id, _)| problems.iter().all(|(faulted, _)| faulted != id));
        problems.extend(others);
        problems.sort_by_key(|(id, _)| *id);
        let mut problems: Vec<VerifyError> = problems.into_iter().map(|(_, e)| e).collect();
        let (size, root, positions) = match checked {
            Ok(checked) if problems.is_empty() => checked,
            Ok(_) => return Err(VerifyError::from_problems(problems)),
            Err(entry_problems) => {
                problems.extend(entry_problems);
                return Err(VerifyError::from_problems(problems));
            }
        };
        let (count, latest) = (signed.count, signed.latest);
        progress(size, head.size);
        let (latest_id, latest) = latest.ok_or(VerifyError::NoCheckpoint)?;
        let newest = source.newest_checkpoint()?;
        if newest != latest_id || latest.size() != head.size || *latest.root() != head.root {
            return Err(VerifyError::HeadNotCheckpointed {
                id: newest,
                size: latest.size(),
                head: head.clone(),
            });
        }
        Ok(VerifyReport {
            size,
            root,
            checkpoints: count,
            latest,
            positions,
        })
    })
}

fn busy(e: rusqlite::Error, timeout: Duration) -> StoreError {
    if is_busy(&e) {
        StoreError::Busy { timeout }
    } else {
        StoreError::Database(e)
    }
}

/// Rows per batch handed from the reading thread to the checking thread.
const BATCH_ROWS: usize = 2048;

/// One entry row, its variable-length columns as ranges into the batch's arena.
pub(super) struct EntryRow {
    pub(super) seq: u64,
    pub(super) bytes: Range<usize>,
    pub(super) leaf_hash: Hash,
    pub(super) nodes: Range<usize>,
    pub(super) kind: u64,
    pub(super) refname: Range<usize>,
    pub(super) aborts: Option<u64>,
}

/// What the reading thread hands the checking thread, in ledger order: the checkpoints of
/// size `s` come right before entry `s`, the checkpoints beyond the last entry at the end.
pub(super) enum Item {
    Entry(EntryRow),
    Checkpoint(Job),
}

#[derive(Default)]
pub(super) struct Batch {
    arena: Vec<u8>,
    items: Vec<Item>,
}

enum Message {
    Batch(Batch),
    /// The reader stopped at a row it could not read; nothing follows.
    Failed(VerifyError),
}

/// Reads one entry row, its variable-length columns into `arena`.
fn read_entry(row: &rusqlite::Row<'_>, arena: &mut Vec<u8>) -> Result<EntryRow, VerifyError> {
    let key = column_i64(row, 0, ("entries", 0, "seq"))?;
    let seq = u64::try_from(key).map_err(|_| Corruption {
        table: "entries",
        row: key,
        column: "seq",
        problem: "negative",
    })?;
    let mut push = |bytes: &[u8]| {
        let start = arena.len();
        arena.extend_from_slice(bytes);
        start..arena.len()
    };
    let bytes = push(column_blob(row, 1, ("entries", key, "bytes"))?);
    let leaf_hash = column_array(row, 2, ("entries", key, "leaf_hash"))?;
    let nodes = push(column_blob(row, 3, ("entries", key, "nodes"))?);
    let kind = column_u64(row, 4, ("entries", key, "kind"))?;
    // Compared byte for byte with the entry's refname, which the entry decoder validates.
    let refname = match row.get_ref(5) {
        Ok(ValueRef::Text(t)) => push(t),
        Ok(ValueRef::Null) => {
            return Err(Corruption {
                table: "entries",
                row: key,
                column: "refname",
                problem: "NULL",
            }
            .into());
        }
        _ => {
            return Err(Corruption {
                table: "entries",
                row: key,
                column: "refname",
                problem: "not text",
            }
            .into());
        }
    };
    let aborts = column_opt_u64(row, 6, ("entries", key, "aborts"))?;
    Ok(EntryRow {
        seq,
        bytes,
        leaf_hash,
        nodes,
        kind,
        refname,
        aborts,
    })
}

fn read_job(row: &rusqlite::Row<'_>) -> Result<Job, VerifyError> {
    let id = column_i64(row, 0, ("checkpoints", 0, "id"))?;
    let at = |column| ("checkpoints", id, column);
    Ok(Job {
        id,
        size: column_u64(row, 1, at("size"))?,
        root: column_array(row, 2, at("root"))?,
        time: column_u64(row, 3, at("time"))?,
        note: column_text(row, 4, at("note"))?.to_owned(),
    })
}

/// The reading side: streams entries and checkpoints out of the backend, in ledger order, in
/// batches. Runs on the caller's thread, which owns the connection. On an error, what was
/// read before it is still handed over, so that an earlier fault is reported first.
fn read(
    source: &mut dyn Audit,
    head_size: u64,
    out: &mpsc::SyncSender<Message>,
    spare: &mpsc::Receiver<Batch>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), VerifyError> {
    // Hands a full batch over and takes a recycled one back; false once the checker has
    // stopped (it found an error, which the caller reports).
    let send = |batch: &mut Batch| {
        let mut next = spare.try_recv().unwrap_or_default();
        next.arena.clear();
        next.items.clear();
        out.send(Message::Batch(std::mem::replace(batch, next)))
            .is_ok()
    };
    progress(0, head_size);
    let mut sink = Sink {
        batch: Batch::default(),
        send: &send,
        progress,
        head_size,
        position: 0,
        next_checkpoint: None,
        started: false,
    };
    let result = source.read(&mut sink);
    send(&mut sink.batch);
    result
}

/// Where a backend's rows go: puts the checkpoints of size `s` right before entry `s` (the
/// ones beyond the last entry at the end) and hands full batches to the checker.
pub(super) struct Sink<'a> {
    batch: Batch,
    send: &'a dyn Fn(&mut Batch) -> bool,
    progress: &'a mut dyn FnMut(u64, u64),
    head_size: u64,
    position: u64,
    next_checkpoint: Option<Job>,
    started: bool,
}

impl Sink<'_> {
    /// Where the next entry's variable-length columns go.
    pub(super) fn arena(&mut self) -> &mut Vec<u8> {
        &mut self.batch.arena
    }

    /// Takes the next entry row (`None` after the last) and the checkpoints that come
    /// before it; `false` when reading is over (no more rows, or the checker stopped).
    pub(super) fn entry(
        &mut self,
        entry: Option<EntryRow>,
        next_checkpoint: &mut dyn FnMut() -> Result<Option<Job>, VerifyError>,
    ) -> Result<bool, VerifyError> {
        if !self.started {
            self.started = true;
            self.next_checkpoint = next_checkpoint()?;
        }
        let last = entry.is_none();
        let position = self.position;
        while let Some(job) = self
            .next_checkpoint
            .take_if(|job| last || job.size <= position)
        {
            self.batch.items.push(Item::Checkpoint(job));
            self.next_checkpoint = next_checkpoint()?;
        }
        let Some(entry) = entry else {
            return Ok(false);
        };
        self.batch.items.push(Item::Entry(entry));
        self.position += 1;
        if self.batch.items.len() >= BATCH_ROWS {
            if !(self.send)(&mut self.batch) {
                return Ok(false);
            }
            if self.position % PROGRESS_EVERY < BATCH_ROWS as u64 {
                (self.progress)(self.position.min(self.head_size), self.head_size);
            }
        }
        Ok(true)
    }
}

/// The checking side: recomputes leaves, chain and tree from what the reader hands over.
struct Checker<'a> {
    head: &'a Head,
    chain: ChainVerifier,
    frontier: Frontier,
    nodes: Vec<u8>,
    last_checkpoint: Option<(i64, u64)>,
    /// Set once the entries are over (a checkpoint beyond them arrived).
    ended: bool,
    jobs: mpsc::SyncSender<Job>,
    /// Every bad checkpoint seen, by id: checkpoints are independent, so one does not stop
    /// the check of the others.
    problems: Vec<(i64, VerifyError)>,
}

impl Checker<'_> {
    fn entry(&mut self, row: &EntryRow, arena: &[u8]) -> Result<(), VerifyError> {
        let seq = row.seq;
        if self.ended || self.frontier.size() >= self.head.size {
            return Err(VerifyError::EntryBeyondHead {
                seq,
                head_size: self.head.size,
            });
        }
        let bytes = &arena[row.bytes.clone()];
        let computed = leaf_hash(bytes);
        if computed != row.leaf_hash {
            return Err(VerifyError::LeafHashMismatch {
                seq,
                stored: row.leaf_hash,
                computed,
            });
        }
        let view =
            EntryView::parse(bytes).map_err(|source| VerifyError::Undecodable { seq, source })?;
        if view.seq != seq {
            return Err(VerifyError::RowSeqMismatch {
                row: seq,
                encoded: view.seq,
            });
        }
        self.chain.check(&view, &computed)?;
        if row.kind != u64::from(view.kind.code()) {
            return Err(VerifyError::IndexMismatch {
                seq,
                column: "kind",
            });
        }
        if &arena[row.refname.clone()] != view.refname.as_bytes() {
            return Err(VerifyError::IndexMismatch {
                seq,
                column: "refname",
            });
        }
        if row.aborts != view.aborts {
            return Err(VerifyError::IndexMismatch {
                seq,
                column: "aborts",
            });
        }
        let nodes = &mut self.nodes;
        nodes.clear();
        self.frontier
            .append_collecting(&computed, |node| nodes.extend_from_slice(node));
        if arena[row.nodes.clone()] != self.nodes[..] {
            return Err(VerifyError::NodeMismatch { seq });
        }
        Ok(())
    }

    fn checkpoint(&mut self, job: Job) -> Result<(), VerifyError> {
        if job.size != self.frontier.size() {
            // Only checkpoints beyond the last entry arrive out of step with the entries.
            self.end()?;
            self.problems.push((
                job.id,
                VerifyError::CheckpointBeyondHead {
                    id: job.id,
                    size: job.size,
                    head_size: self.frontier.size(),
                },
            ));
            return Ok(());
        }
        let computed = self.frontier.root();
        if job.root != computed {
            self.problems.push((
                job.id,
                VerifyError::CheckpointRootMismatch {
                    id: job.id,
                    size: job.size,
                    stored: job.root,
                    computed,
                },
            ));
            return Ok(());
        }
        if let Some((earlier_id, earlier_size)) = self.last_checkpoint
            && job.id < earlier_id
        {
            self.problems.push((
                job.id,
                VerifyError::CheckpointOutOfOrder {
                    id: job.id,
                    size: job.size,
                    earlier_id,
                    earlier_size,
                },
            ));
            return Ok(());
        }
        self.last_checkpoint = Some((job.id, job.size));
        // If the signature thread has stopped (a bug), that is reported after the join.
        let _ = self.jobs.send(job);
        Ok(())
    }

    /// The check that holds once every entry has been seen.
    fn end(&mut self) -> Result<(), VerifyError> {
        self.ended = true;
        let size = self.frontier.size();
        if size < self.head.size {
            return Err(VerifyError::MissingEntries {
                head_size: self.head.size,
                found: size,
            });
        }
        Ok(())
    }

    fn finish(mut self, stored_frontier: &Frontier) -> Result<Checked, VerifyError> {
        self.end()?;
        let size = self.frontier.size();
        let root = self.frontier.root();
        if root != self.head.root {
            return Err(VerifyError::HeadRootMismatch {
                size,
                head: self.head.root,
                computed: root,
            });
        }
        if self.chain.last_hash() != self.head.last_leaf {
            return Err(VerifyError::HeadLastLeafMismatch { size });
        }
        if self.frontier != *stored_frontier {
            return Err(VerifyError::FrontierMismatch);
        }
        let positions = self
            .chain
            .positions()
            .map(|(name, at)| (name.to_owned(), at.clone()))
            .collect();
        Ok((size, root, positions))
    }
}

/// Size, root and ref positions of a verified ledger.
type Checked = (
    u64,
    Hash,
    std::collections::BTreeMap<String, crate::chain::Position>,
);

/// Runs the checker over what the reader hands over; the bad checkpoints it saw go to
/// `found` whatever the outcome.
fn check(
    repository: &str,
    head: &Head,
    stored_frontier: &Frontier,
    batches: mpsc::Receiver<Message>,
    spare: mpsc::Sender<Batch>,
    jobs: mpsc::SyncSender<Job>,
    found: &Mutex<Vec<(i64, VerifyError)>>,
) -> Result<Checked, VerifyError> {
    let mut checker = Checker {
        head,
        chain: ChainVerifier::new(repository),
        frontier: Frontier::new(),
        nodes: Vec::with_capacity(64 * 32),
        last_checkpoint: None,
        ended: false,
        jobs,
        problems: Vec::new(),
    };
    let result = check_all(&mut checker, batches, &spare);
    let problems = std::mem::take(&mut checker.problems);
    let result = result.and_then(|()| checker.finish(stored_frontier));
    if let Ok(mut slot) = found.lock() {
        *slot = problems;
    }
    result
}

fn check_all(
    checker: &mut Checker<'_>,
    batches: mpsc::Receiver<Message>,
    spare: &mpsc::Sender<Batch>,
) -> Result<(), VerifyError> {
    for message in batches {
        let mut batch = match message {
            Message::Batch(batch) => batch,
            Message::Failed(e) => return Err(e),
        };
        for item in batch.items.drain(..) {
            match item {
                Item::Entry(row) => checker.entry(&row, &batch.arena)?,
                Item::Checkpoint(job) => checker.checkpoint(job)?,
            }
        }
        let _ = spare.send(batch);
    }
    Ok(())
}

impl super::Store {
    /// Verifies the whole ledger against the ledger's verifier key: every leaf recomputed from
    /// its stored bytes, the chain, seq continuity, the Merkle root against the head and
    /// against every stored checkpoint at its size, and every checkpoint's signature and
    /// timestamp. `progress(done, total)` is called now and then with the entries checked.
    ///
    /// The error names the first entry or checkpoint that is wrong and what is wrong with it.
    pub fn verify(
        &self,
        key: &VerifierKey,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, VerifyError> {
        self.audit(&mut |source| {
            verify(source, self.origin(), self.repository(), key, &mut progress)
        })
    }
}
