//! Tampering with a real ledger file, the way someone with a shell on the git server could:
//! each change is detected by `Store::verify`, with the variant that names what happened.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use tally_ledger::checkpoint::{Checkpoint, CheckpointError};
use tally_ledger::merkle::{Frontier, leaf_hash};
use tally_ledger::store::{Corruption, Options};
use tally_ledger::{
    ChainError, CommitSigner, Entry, Kind, NewEntry, SigningKey, Store, VerifierKey, VerifyError,
};

const ORIGIN: &str = "tally/repo-1";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn vkey() -> VerifierKey {
    VerifierKey::new(ORIGIN, key().verifying_key()).unwrap()
}

fn t(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_767_225_600 + s).unwrap()
}

fn push(n: u8) -> NewEntry {
    NewEntry {
        kind: if n % 5 == 4 {
            Kind::Rejected
        } else {
            Kind::Accepted
        },
        refname: "refs/heads/main".to_owned(),
        // Each accepted move starts where the previous accepted one ended (continuity);
        // every fifth push is a refusal, which moves nothing.
        old: match n {
            0 => None,
            n if (n - 1) % 5 == 4 => Some(vec![n - 1; 20]),
            n => Some(vec![n; 20]),
        },
        new: Some(vec![n + 1; 20]),
        new_tree: Some(vec![0xee; 20]),
        commits: vec![CommitSigner {
            commit: vec![n + 1; 20],
            principal: "alice@example.com".to_owned(),
            fingerprint: "SHA256:abc".to_owned(),
        }],
        pusher: "alice".to_owned(),
        policy_digest: [3; 32],
        reasons: if n % 5 == 4 {
            vec!["unsigned".to_owned()]
        } else {
            vec![]
        },
        aborts: None,
    }
}

/// A ledger of 12 entries in 6 appends, plus a heartbeat: 8 checkpoints.
fn ledger(dir: &Path) -> PathBuf {
    let path = dir.join("ledger.db");
    let mut store =
        Store::create(&path, ORIGIN, "repo-1", t(0), &key(), &Options::default()).unwrap();
    for i in 0..6u8 {
        store
            .append(
                vec![push(2 * i), push(2 * i + 1)],
                t(i64::from(i) + 1),
                &key(),
            )
            .unwrap();
    }
    store.checkpoint(t(100), &key()).unwrap();
    store.verify(&vkey(), |_, _| {}).unwrap();
    drop(store);
    // The store keeps its WAL across connections; fold it into the main file so the tests
    // can save and restore the database as that one file.
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    path
}

fn verify(path: &Path) -> VerifyError {
    let store = Store::open(path).unwrap();
    store.verify(&vkey(), |_, _| {}).unwrap_err()
}

/// A connection that writes whatever it is told, CHECK constraints or not.
fn db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "ignore_check_constraints", "ON")
        .unwrap();
    conn
}

fn bytes_of(conn: &Connection, seq: i64) -> Vec<u8> {
    conn.query_row("SELECT bytes FROM entries WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Lets a test write values of the wrong type, as someone editing the file directly could.
fn drop_strict(path: &Path) {
    let conn = db(path);
    conn.execute_batch(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = replace(replace(sql, ') STRICT', ')'), 'NOT NULL', '')
             WHERE type = 'table';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
}

#[test]
fn flipping_any_byte_of_any_entry_is_a_leaf_hash_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    for seq in [0i64, 1, 5, 6, 11] {
        let len = bytes_of(&db(&path), seq).len();
        for at in [0, 18, 19, 20, 28, 29, 40, 45, len / 2, len - 33, len - 1] {
            {
                let conn = db(&path);
                let mut bytes = bytes_of(&conn, seq);
                bytes[at] ^= 0x01;
                conn.execute(
                    "UPDATE entries SET bytes = ?1 WHERE seq = ?2",
                    params![bytes, seq],
                )
                .unwrap();
            }
            let err = verify(&path);
            assert!(
                matches!(err, VerifyError::LeafHashMismatch { seq: s, .. } if s == seq as u64),
                "seq {seq} byte {at}: {err}"
            );
            std::fs::write(&path, &pristine).unwrap();
            let _ = std::fs::remove_file(path.with_extension("db-wal"));
            let _ = std::fs::remove_file(path.with_extension("db-shm"));
        }
    }
}

#[test]
fn an_entry_rewritten_with_its_leaf_hash_breaks_the_chain_at_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    {
        let conn = db(&path);
        let mut entry = Entry::decode(&bytes_of(&conn, 4)).unwrap();
        entry.kind = Kind::Accepted; // turn a refusal into an acceptance
        entry.reasons.clear();
        let bytes = entry.encode().unwrap();
        conn.execute(
            "UPDATE entries SET bytes = ?1, leaf_hash = ?2, kind = ?3 WHERE seq = 4",
            params![bytes, leaf_hash(&bytes).as_slice(), 1],
        )
        .unwrap();
    }
    assert!(
        matches!(
            verify(&path),
            VerifyError::Chain(ChainError::BrokenChain { seq: 5, .. })
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn the_last_entry_rewritten_with_its_leaf_hash_fails_the_merkle_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    {
        let conn = db(&path);
        let mut entry = Entry::decode(&bytes_of(&conn, 11)).unwrap();
        entry.pusher = "mallory".to_owned();
        let bytes = entry.encode().unwrap();
        conn.execute(
            "UPDATE entries SET bytes = ?1, leaf_hash = ?2 WHERE seq = 11",
            params![bytes, leaf_hash(&bytes).as_slice()],
        )
        .unwrap();
    }
    // Entry 11 completes Merkle nodes (11 is odd), which no longer match.
    assert!(
        matches!(verify(&path), VerifyError::NodeMismatch { seq: 11 }),
        "{}",
        verify(&path)
    );
}

#[test]
fn deleting_the_last_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    db(&path)
        .execute("DELETE FROM entries WHERE seq = 11", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::MissingEntries {
                head_size: 12,
                found: 11
            }
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn deleting_the_last_entry_and_rewinding_the_head_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    {
        let conn = db(&path);
        conn.execute("DELETE FROM entries WHERE seq = 11", [])
            .unwrap();
        let leaves: Vec<[u8; 32]> = {
            let mut stmt = conn
                .prepare("SELECT leaf_hash FROM entries ORDER BY seq")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let mut frontier = Frontier::new();
        leaves.iter().for_each(|l| frontier.append(l));
        conn.execute(
            "UPDATE head SET size = 11, root = ?1, last_leaf = ?2, frontier = ?3",
            params![
                frontier.root().as_slice(),
                leaves[10].as_slice(),
                frontier.to_bytes()
            ],
        )
        .unwrap();
    }
    // Both checkpoints of size 12 (the append's and the heartbeat's) are named.
    let problems = verify(&path).into_problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    for problem in &problems {
        assert!(
            matches!(
                problem,
                VerifyError::CheckpointBeyondHead {
                    size: 12,
                    head_size: 11,
                    ..
                }
            ),
            "{problem}"
        );
    }
}

#[test]
fn deleting_an_entry_in_the_middle_is_a_seq_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    db(&path)
        .execute("DELETE FROM entries WHERE seq = 6", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::Chain(ChainError::SeqGap {
                expected: 6,
                found: 7
            })
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn swapping_two_entries_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    // Whole rows' contents swapped, leaf hashes and all.
    {
        let conn = db(&path);
        conn.execute_batch(
            "UPDATE entries SET seq = 1000 WHERE seq = 3;
             UPDATE entries SET seq = 3 WHERE seq = 8;
             UPDATE entries SET seq = 8 WHERE seq = 1000;",
        )
        .unwrap();
    }
    assert!(
        matches!(
            verify(&path),
            VerifyError::RowSeqMismatch { row: 3, encoded: 8 }
        ),
        "{}",
        verify(&path)
    );
    // Only the bytes swapped.
    std::fs::write(&path, &pristine).unwrap();
    {
        let conn = db(&path);
        let (a, b) = (bytes_of(&conn, 2), bytes_of(&conn, 9));
        conn.execute("UPDATE entries SET bytes = ?1 WHERE seq = 2", [b])
            .unwrap();
        conn.execute("UPDATE entries SET bytes = ?1 WHERE seq = 9", [a])
            .unwrap();
    }
    assert!(
        matches!(verify(&path), VerifyError::LeafHashMismatch { seq: 2, .. }),
        "{}",
        verify(&path)
    );
}

#[test]
fn replacing_a_checkpoint_with_another_validly_signed_one_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    let (id, size, time): (i64, i64, i64) = db(&path)
        .query_row(
            "SELECT id, size, time FROM checkpoints WHERE size = 6 ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    // Signed with the real key (say, leaked for a moment), for a different root.
    let forged = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: size as u64,
        root: [0xab; 32],
    }
    .sign(time as u64, &key())
    .unwrap();
    db(&path)
        .execute(
            "UPDATE checkpoints SET note = ?1 WHERE id = ?2",
            params![forged.text(), id],
        )
        .unwrap();
    assert!(
        matches!(verify(&path), VerifyError::CheckpointColumnMismatch { id: i, column: "root" } if i == id),
        "{}",
        verify(&path)
    );
    // The same, with the root column rewritten to agree with the note.
    db(&path)
        .execute(
            "UPDATE checkpoints SET root = ?1 WHERE id = ?2",
            params![[0xabu8; 32].as_slice(), id],
        )
        .unwrap();
    assert!(
        matches!(verify(&path), VerifyError::CheckpointRootMismatch { id: i, size: 6, .. } if i == id),
        "{}",
        verify(&path)
    );
    // A note signed by another key, in place of the real one.
    std::fs::write(&path, &pristine).unwrap();
    let other = SigningKey::from_bytes(&[7; 32]);
    let root: Vec<u8> = db(&path)
        .query_row("SELECT root FROM checkpoints WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    let foreign = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: size as u64,
        root: root.try_into().unwrap(),
    }
    .sign(time as u64, &other)
    .unwrap();
    db(&path)
        .execute(
            "UPDATE checkpoints SET note = ?1 WHERE id = ?2",
            params![foreign.text(), id],
        )
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::CheckpointSignature { id: i, source: CheckpointError::MissingSignature { .. } } if i == id
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn a_checkpoint_time_changed_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    db(&path)
        .execute("UPDATE checkpoints SET time = time + 3600 WHERE id = 3", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::CheckpointColumnMismatch {
                id: 3,
                column: "time"
            }
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn deleting_the_latest_checkpoint_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    // Both checkpoints of the head (the last append's and the heartbeat).
    db(&path)
        .execute("DELETE FROM checkpoints WHERE size = 12", [])
        .unwrap();
    assert!(
        matches!(verify(&path), VerifyError::HeadNotCheckpointed { .. }),
        "{}",
        verify(&path)
    );
}

#[test]
fn an_entry_appended_without_the_key_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    {
        let conn = db(&path);
        let mut entry = Entry::decode(&bytes_of(&conn, 11)).unwrap();
        let last: Vec<u8> = conn
            .query_row("SELECT leaf_hash FROM entries WHERE seq = 11", [], |r| {
                r.get(0)
            })
            .unwrap();
        entry.seq = 12;
        entry.prev_hash = last.try_into().unwrap();
        // A well-formed move on from entry 11, so that only the missing signature gives it
        // away.
        entry.old = entry.new.take();
        entry.new = Some(vec![0xab; 20]);
        let bytes = entry.encode().unwrap();
        let leaf = leaf_hash(&bytes);
        let leaves: Vec<[u8; 32]> = {
            let mut stmt = conn
                .prepare("SELECT leaf_hash FROM entries ORDER BY seq")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let mut frontier = Frontier::new();
        leaves.iter().for_each(|l| frontier.append(l));
        frontier.append(&leaf);
        conn.execute(
            "INSERT INTO entries (seq, bytes, leaf_hash, nodes, kind, refname) VALUES (12, ?1, ?2, x'', 1, 'refs/heads/main')",
            params![bytes, leaf.as_slice()],
        )
        .unwrap();
        conn.execute(
            "UPDATE head SET size = 13, root = ?1, last_leaf = ?2, frontier = ?3",
            params![
                frontier.root().as_slice(),
                leaf.as_slice(),
                frontier.to_bytes()
            ],
        )
        .unwrap();
    }
    assert!(
        matches!(
            verify(&path),
            VerifyError::HeadNotCheckpointed { size: 12, .. }
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn truncating_the_head_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    db(&path).execute("UPDATE head SET size = 10", []).unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::EntryBeyondHead {
                seq: 10,
                head_size: 10
            }
        ),
        "{}",
        verify(&path)
    );

    std::fs::write(&path, &pristine).unwrap();
    db(&path).execute("DELETE FROM head", []).unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::Store(tally_ledger::StoreError::Corrupt(Corruption {
                table: "head",
                ..
            }))
        ),
        "{}",
        verify(&path)
    );

    std::fs::write(&path, &pristine).unwrap();
    db(&path)
        .execute("UPDATE head SET frontier = substr(frontier, 1, 40)", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::Store(tally_ledger::StoreError::Corrupt(Corruption {
                column: "frontier",
                ..
            }))
        ),
        "{}",
        verify(&path)
    );

    std::fs::write(&path, &pristine).unwrap();
    db(&path)
        .execute("UPDATE head SET last_leaf = zeroblob(32)", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::HeadLastLeafMismatch { size: 12 }
        ),
        "{}",
        verify(&path)
    );
}

#[test]
fn index_columns_and_nodes_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    // Hiding a refusal from `tally log --kind rejected`.
    db(&path)
        .execute("UPDATE entries SET kind = 1 WHERE seq = 4", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::IndexMismatch {
                seq: 4,
                column: "kind"
            }
        ),
        "{}",
        verify(&path)
    );
    std::fs::write(&path, &pristine).unwrap();
    db(&path)
        .execute(
            "UPDATE entries SET refname = 'refs/heads/other' WHERE seq = 2",
            [],
        )
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::IndexMismatch {
                seq: 2,
                column: "refname"
            }
        ),
        "{}",
        verify(&path)
    );
    std::fs::write(&path, &pristine).unwrap();
    db(&path)
        .execute("UPDATE entries SET nodes = zeroblob(64) WHERE seq = 3", [])
        .unwrap();
    assert!(
        matches!(verify(&path), VerifyError::NodeMismatch { seq: 3 }),
        "{}",
        verify(&path)
    );
}

#[test]
fn rows_of_the_wrong_type_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    drop_strict(&path);
    let pristine = std::fs::read(&path).unwrap();
    let cases: [(&str, &str, &str); 7] = [
        (
            "UPDATE entries SET bytes = NULL WHERE seq = 2",
            "entries",
            "bytes",
        ),
        (
            "UPDATE entries SET bytes = 'text' WHERE seq = 2",
            "entries",
            "bytes",
        ),
        (
            "UPDATE entries SET leaf_hash = 12345 WHERE seq = 2",
            "entries",
            "leaf_hash",
        ),
        (
            "UPDATE entries SET leaf_hash = substr(leaf_hash, 1, 31) WHERE seq = 2",
            "entries",
            "leaf_hash",
        ),
        (
            "UPDATE entries SET kind = 'accepted' WHERE seq = 2",
            "entries",
            "kind",
        ),
        ("UPDATE head SET root = NULL", "head", "root"),
        (
            "UPDATE checkpoints SET size = -1 WHERE id = 2",
            "checkpoints",
            "size",
        ),
    ];
    for (sql, table, column) in cases {
        std::fs::write(&path, &pristine).unwrap();
        db(&path).execute(sql, []).unwrap();
        let err = verify(&path);
        let found = match &err {
            VerifyError::Corrupt(c) | VerifyError::Store(tally_ledger::StoreError::Corrupt(c)) => {
                Some((c.table, c.column))
            }
            _ => None,
        };
        assert_eq!(found, Some((table, column)), "{sql}: {err}");
    }
    std::fs::write(&path, &pristine).unwrap();
    db(&path)
        .execute("UPDATE checkpoints SET note = 'garbage' WHERE id = 2", [])
        .unwrap();
    assert!(
        matches!(
            verify(&path),
            VerifyError::CheckpointSignature {
                id: 2,
                source: CheckpointError::NotANote
            }
        ),
        "{}",
        verify(&path)
    );
    std::fs::write(&path, &pristine).unwrap();
    db(&path)
        .execute(
            "UPDATE entries SET bytes = x'00', leaf_hash = ?1 WHERE seq = 2",
            [leaf_hash(&[0]).as_slice()],
        )
        .unwrap();
    assert!(
        matches!(verify(&path), VerifyError::Undecodable { seq: 2, .. }),
        "{}",
        verify(&path)
    );
}

#[test]
fn a_truncated_database_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger(dir.path());
    // Fold the WAL into the main file, then cut the file short.
    db(&path)
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() / 2, 4096, 100] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let failed = Store::open(&path)
            .map(|s| s.verify(&vkey(), |_, _| {}).is_err())
            .unwrap_or(true);
        assert!(failed, "kept {keep} bytes");
    }
}

/// Checkpoint signatures are verified in batches spread over every core; every bad
/// checkpoint is reported, in id order, whichever batch or thread saw it (issue 13: not only
/// the first).
#[test]
fn every_bad_checkpoint_is_reported_across_signature_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut store =
        Store::create(&path, ORIGIN, "repo-1", t(0), &key(), &Options::default()).unwrap();
    // One checkpoint per push, as on a real server: 300 checkpoints, several batches.
    for i in 0..299u16 {
        store
            .append(
                vec![NewEntry {
                    refname: format!("refs/heads/t{i}"),
                    old: None,
                    ..push((i % 250) as u8)
                }],
                t(i64::from(i) + 1),
                &key(),
            )
            .unwrap();
    }
    let report = store.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(report.checkpoints, 300);
    assert_eq!(report.latest.size(), 299);
    drop(store);
    let ids: Vec<i64> = {
        let conn = db(&path);
        let mut stmt = conn
            .prepare("SELECT id FROM checkpoints ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Break the signature of a late checkpoint, then of an earlier one in another batch.
    let break_signature = |id: i64| {
        let conn = db(&path);
        let note: String = conn
            .query_row("SELECT note FROM checkpoints WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        // The first signature line's last base64 characters before the newline.
        let cut = note.find("\n\n").unwrap() + 2;
        let line_end = cut + note[cut..].find('\n').unwrap();
        let mut bad = note.clone().into_bytes();
        bad[line_end - 3] = if bad[line_end - 3] == b'A' {
            b'B'
        } else {
            b'A'
        };
        conn.execute(
            "UPDATE checkpoints SET note = ?1 WHERE id = ?2",
            params![String::from_utf8(bad).unwrap(), id],
        )
        .unwrap();
    };
    let mut broken = Vec::new();
    for id in [ids[250], ids[70], ids[3]] {
        break_signature(id);
        broken.push(id);
        broken.sort();
        let named: Vec<i64> = verify(&path)
            .into_problems()
            .into_iter()
            .map(|problem| match problem {
                VerifyError::CheckpointSignature { id, .. } => id,
                other => panic!("expected only checkpoint signatures named, got {other}"),
            })
            .collect();
        assert_eq!(named, broken);
    }
}
