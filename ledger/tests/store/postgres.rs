//! The PostgreSQL store against a real server (`tally-pgtest` starts one per test): the same
//! bytes as SQLite, migration both ways without changing a byte, appends from many connections
//! serialised into one chain, and failure that closes.

use std::path::Path;

use tally_ledger::store::Options;
use tally_ledger::{
    CommitSigner, Destination, Filter, Kind, NewEntry, Postgres, SigningKey, Store, StoreError,
    VerifierKey,
};
use tally_pgtest::Server;

const ORIGIN: &str = "tally/pg";
const REPO: &str = "pg-repo";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn vkey() -> VerifierKey {
    VerifierKey::new(ORIGIN, key().verifying_key()).unwrap()
}

fn t(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_767_225_600 + seconds).unwrap()
}

fn accepted(branch: &str, old: Option<u8>, new: u8) -> NewEntry {
    NewEntry {
        kind: Kind::Accepted,
        refname: format!("refs/heads/{branch}"),
        old: old.map(|o| vec![o; 20]),
        new: Some(vec![new; 20]),
        new_tree: Some(vec![0xee; 20]),
        commits: vec![CommitSigner {
            commit: vec![new; 20],
            principal: "alice@example.com".to_owned(),
            fingerprint: "SHA256:abc".to_owned(),
        }],
        pusher: "alice".to_owned(),
        policy_digest: [3; 32],
        reasons: vec![],
        aborts: None,
    }
}

fn db(server: &Server, name: &str) -> Postgres {
    let url = server.url_with_password(name);
    let client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    Postgres::new(client, &server.url(name), &Options::default()).unwrap()
}

/// The same appends, at the same times, into any store.
fn fill(store: &mut Store) {
    store
        .append(vec![accepted("main", None, 1)], t(1), &key())
        .unwrap();
    let mut rejected = accepted("main", Some(1), 2);
    rejected.kind = Kind::Rejected;
    rejected.reasons = vec!["not signed".to_owned()];
    store
        .append(
            vec![
                accepted("main", Some(1), 3),
                rejected,
                accepted("dev", None, 4),
            ],
            t(2),
            &key(),
        )
        .unwrap();
    let target = store.head().unwrap().size - 1;
    store
        .append(
            vec![NewEntry {
                kind: Kind::Aborted,
                old: None,
                new: None,
                new_tree: None,
                commits: vec![],
                aborts: Some(target),
                ..accepted("dev", None, 0)
            }],
            t(3),
            &key(),
        )
        .unwrap();
    store.checkpoint(t(4), &key()).unwrap();
    for n in 0..40u8 {
        store
            .append(
                vec![accepted(
                    "main",
                    Some(if n == 0 { 3 } else { 100 + n - 1 }),
                    100 + n,
                )],
                t(5 + i64::from(n)),
                &key(),
            )
            .unwrap();
    }
}

/// Everything a reader or an auditor can get out of a store.
#[derive(Debug, PartialEq)]
struct Contents {
    entries: Vec<(u64, Vec<u8>)>,
    checkpoints: Vec<(i64, u64, String)>,
    head: tally_ledger::Head,
    positions: Vec<(String, tally_ledger::chain::Position)>,
    proofs: Vec<Vec<[u8; 32]>>,
    log: Vec<u64>,
}

fn contents(store: &Store) -> Contents {
    let head = store.head().unwrap();
    let mut entries = Vec::new();
    store
        .raw_entries(0..head.size, |seq, bytes| {
            entries.push((seq, bytes.to_vec()))
        })
        .unwrap();
    let mut checkpoints = Vec::new();
    store
        .for_each_checkpoint(|c| {
            checkpoints.push((c.id, c.size, c.note.text().to_owned()));
            Ok(())
        })
        .unwrap();
    let proofs = (0..head.size)
        .step_by(7)
        .map(|seq| store.inclusion_proof(seq, head.size).unwrap())
        .chain(
            (1..head.size)
                .step_by(5)
                .map(|s| store.consistency_proof(s, head.size).unwrap()),
        )
        .collect();
    let log = store
        .log(&Filter {
            refname: Some("refs/heads/dev".into()),
            ..Filter::default()
        })
        .unwrap()
        .iter()
        .map(|r| r.entry.seq)
        .collect();
    Contents {
        entries,
        checkpoints,
        positions: store.positions().unwrap(),
        head,
        proofs,
        log,
    }
}

#[test]
fn postgres_stores_byte_for_byte_what_sqlite_stores_and_migrates_both_ways() {
    let server = Server::start();
    server.create_database("one");
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::create(
        &dir.path().join("a.sqlite"),
        ORIGIN,
        REPO,
        t(0),
        &key(),
        &Options::default(),
    )
    .unwrap();
    let mut pg = Store::create_in(db(&server, "one"), ORIGIN, REPO, t(0), &key()).unwrap();
    fill(&mut sqlite);
    fill(&mut pg);
    let want = contents(&sqlite);
    assert_eq!(contents(&pg), want);
    assert_eq!(want.entries.len(), 45);
    let report = pg.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(report.size, 45);
    assert_eq!(report.root, want.head.root);

    // SQLite -> PostgreSQL (another database) -> SQLite: not a byte changes.
    server.create_database("two");
    let mut switched = 0;
    let mut moved = sqlite
        .migrate(
            Destination::Postgres(Box::new(db(&server, "two"))),
            &Options::default(),
            |_| {
                switched += 1;
                Ok::<(), String>(())
            },
        )
        .unwrap();
    assert_eq!(switched, 1);
    assert!(moved.is_shared());
    assert_eq!(contents(&moved), want);
    moved.verify(&vkey(), |_, _| {}).unwrap();
    let back_path = dir.path().join("back.sqlite");
    let mut back = moved
        .migrate(Destination::Sqlite(&back_path), &Options::default(), |_| {
            Ok::<(), String>(())
        })
        .unwrap();
    assert_eq!(contents(&back), want);
    back.verify(&vkey(), |_, _| {}).unwrap();
    // Row for row, the round trip's file is the original's.
    let rows = |path: &Path| {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut out = Vec::new();
        for sql in [
            "SELECT seq, bytes, leaf_hash, nodes, kind, refname, aborts FROM entries ORDER BY seq",
            "SELECT id, size, root, time, note, NULL, NULL FROM checkpoints ORDER BY id",
            "SELECT size, root, last_leaf, frontier, NULL, NULL, NULL FROM head",
            "SELECT origin, repository, public_key, NULL, NULL, NULL, NULL FROM meta",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let values: Vec<rusqlite::types::Value> =
                    (0..7).map(|i| row.get(i).unwrap()).collect();
                out.push(values);
            }
        }
        out
    };
    assert_eq!(rows(&back_path), rows(&dir.path().join("a.sqlite")));

    // The database the ledger moved away from refuses to write it, and says where it went.
    let err = Store::open_in(db(&server, "two"), REPO).unwrap_err();
    assert!(err.to_string().contains("was moved to"), "{err}");
    assert!(err.to_string().contains("back.sqlite"), "{err}");
    // A migrate into a database that holds the live ledger is refused; one back into the
    // database it moved away from replaces the old copy.
    let err = back
        .migrate(
            Destination::Postgres(Box::new(db(&server, "one"))),
            &Options::default(),
            |_| Ok::<(), String>(()),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InDatabase { .. }), "{err}");
    let mut again = back
        .migrate(
            Destination::Postgres(Box::new(db(&server, "two"))),
            &Options::default(),
            |_| Ok::<(), String>(()),
        )
        .unwrap();
    assert_eq!(contents(&again), want);
    let again_path = dir.path().join("again.sqlite");
    drop(
        again
            .migrate(
                Destination::Sqlite(&again_path),
                &Options::default(),
                |_| Ok::<(), String>(()),
            )
            .unwrap(),
    );
    assert_eq!(rows(&again_path), rows(&dir.path().join("a.sqlite")));
    let mut back = Store::open(&back_path).unwrap();
    // A failed switch removes the copy and leaves the source in use.
    server.create_database("three");
    let err = back
        .migrate(
            Destination::Postgres(Box::new(db(&server, "three"))),
            &Options::default(),
            |_| Err("policy.toml is read-only"),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("policy.toml is read-only"),
        "{err}"
    );
    assert!(!db(&server, "three").has_ledger(REPO).unwrap());
}

#[test]
fn appends_from_many_connections_form_one_chain() {
    let server = Server::start();
    server.create_database("race");
    drop(Store::create_in(db(&server, "race"), ORIGIN, REPO, t(0), &key()).unwrap());
    let writers = 8u8;
    let each = 15u8;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let server = &server;
            scope.spawn(move || {
                let mut store = Store::open_in(db(server, "race"), REPO).unwrap();
                let branch = format!("w{w}");
                let mut at = None;
                for n in 0..each {
                    // Each writer moves its own branch, from where the ledger has it.
                    let new = w * 20 + n + 1;
                    store
                        .append(
                            vec![accepted(&branch, at, new)],
                            jiff::Timestamp::now(),
                            &key(),
                        )
                        .unwrap();
                    at = Some(new);
                }
            });
        }
    });
    let store = Store::open_in(db(&server, "race"), REPO).unwrap();
    let report = store.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(report.size, u64::from(writers) * u64::from(each));
    // Every writer's moves are in the ledger in the order it made them.
    for w in 0..writers {
        let log = store
            .log(&Filter {
                refname: Some(format!("refs/heads/w{w}")),
                ..Filter::default()
            })
            .unwrap();
        let news: Vec<u8> = log
            .iter()
            .rev()
            .map(|r| r.entry.new.as_ref().unwrap()[0])
            .collect();
        assert_eq!(news, (1..=each).map(|n| w * 20 + n).collect::<Vec<_>>());
    }
}

/// Two replicas recording the same move at once (the same commit pushed to both): the second
/// node must not take over the first one's in-flight marker, or its `aborted` hook would
/// cancel the entry of a push that landed on the first node.
#[test]
fn a_node_never_takes_over_another_nodes_marker() {
    let server = Server::start();
    server.create_database("markers");
    drop(Store::create_in(db(&server, "markers"), ORIGIN, REPO, t(0), &key()).unwrap());
    let a = Store::open_in(db(&server, "markers"), REPO).unwrap();
    let b = Store::open_in(db(&server, "markers"), REPO).unwrap();
    let marker = |node: &str, text: &str| tally_ledger::Marker {
        key: "k".to_owned(),
        text: text.to_owned(),
        node: node.to_owned(),
    };
    a.put_marker(&marker("host-a:/repo", "first")).unwrap();
    // The same node may write its marker again (a retried push).
    a.put_marker(&marker("host-a:/repo", "again")).unwrap();
    let err = b.put_marker(&marker("host-b:/repo", "second")).unwrap_err();
    assert!(err.to_string().contains("another node"), "{err}");
    assert_eq!(
        b.marker("k").unwrap(),
        Some(marker("host-a:/repo", "again"))
    );
    a.remove_marker("k").unwrap();
    b.put_marker(&marker("host-b:/repo", "second")).unwrap();
    assert_eq!(a.marker("k").unwrap().unwrap().node, "host-b:/repo");
}

#[test]
fn the_database_failing_refuses_with_a_message_and_the_chain_continues() {
    let mut server = Server::start();
    server.create_database("f");
    let mut store = Store::create_in(db(&server, "f"), ORIGIN, REPO, t(0), &key()).unwrap();
    store
        .append(vec![accepted("main", None, 1)], t(1), &key())
        .unwrap();

    // Read-only (a standby, or default_transaction_read_only): refused, saying so.
    server.set_read_only("f", true);
    let mut ro = Store::open_in(db(&server, "f"), REPO).unwrap();
    let err = ro
        .append(vec![accepted("main", Some(1), 2)], t(2), &key())
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    server.set_read_only("f", false);

    // The server restarted under an open connection: refused, nothing written.
    server.restart();
    let err = store
        .append(vec![accepted("main", Some(1), 2)], t(2), &key())
        .unwrap_err();
    assert!(
        err.to_string().contains("connection") || err.to_string().contains("shutting down"),
        "{err}"
    );
    // A new connection continues the same chain.
    let mut store = Store::open_in(db(&server, "f"), REPO).unwrap();
    assert_eq!(store.head().unwrap().size, 1);
    store
        .append(vec![accepted("main", Some(1), 2)], t(3), &key())
        .unwrap();
    store.verify(&vkey(), |_, _| {}).unwrap();

    // Stopped: refused at connection time by the caller; a schema newer than this build is
    // refused by name.
    server.psql(
        "f",
        "INSERT INTO tally.schema_migrations (version, tally) VALUES (99, 'future')",
    );
    let err = Store::open_in(db(&server, "f"), REPO).unwrap_err();
    assert!(
        err.to_string()
            .contains("version 99, newer than this build"),
        "{err}"
    );
    let err = db(&server, "f").upgrade().unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[test]
fn verify_over_postgres_names_a_tampered_row() {
    let server = Server::start();
    server.create_database("t");
    let mut store = Store::create_in(db(&server, "t"), ORIGIN, REPO, t(0), &key()).unwrap();
    fill(&mut store);
    server.psql(
        "t",
        "UPDATE tally.entries SET bytes = set_byte(bytes, 40, get_byte(bytes, 40) # 1) WHERE seq = 7",
    );
    let err = store.verify(&vkey(), |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("entry 7"), "{err}");
    let err = store.entries(7..8).unwrap_err();
    assert!(err.to_string().contains("entry 7 is damaged"), "{err}");
}

/// Issue 15: an append asks where its ref is, reading the ref's moves newest first a page at
/// a time; aborts that cancel more moves than a page holds must still lead to the right one,
/// as in SQLite.
#[test]
fn a_refs_position_is_found_past_pages_of_aborted_moves() {
    let server = Server::start();
    server.create_database("pages");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::create(
        &dir.path().join("pages.sqlite"),
        ORIGIN,
        REPO,
        t(0),
        &key(),
        &Options::default(),
    )
    .unwrap();
    let pg = Store::create_in(db(&server, "pages"), ORIGIN, REPO, t(0), &key()).unwrap();
    for mut store in [sqlite, pg] {
        for n in 0..40u8 {
            let old = n.checked_sub(1).map(|o| o + 1);
            store
                .append(vec![accepted("main", old, n + 1)], t(1), &key())
                .unwrap();
        }
        // Cancel the latest move 37 times: seqs 39 down to 3, 74 rows newest first to read
        // past before seq 2 (commit 3), more than four pages.
        for target in (3..40u64).rev() {
            store
                .append(
                    vec![NewEntry {
                        kind: Kind::Aborted,
                        old: None,
                        new: None,
                        new_tree: None,
                        commits: vec![],
                        aborts: Some(target),
                        ..accepted("main", None, 0)
                    }],
                    t(2),
                    &key(),
                )
                .unwrap();
        }
        let at = store.position("refs/heads/main").unwrap().unwrap();
        assert_eq!((at.seq, at.commit), (2, Some(vec![3; 20])));
        // Continuity holds from there, and only from there.
        let err = store
            .append(vec![accepted("main", Some(40), 41)], t(3), &key())
            .unwrap_err();
        assert!(err.to_string().contains("refs/heads/main"), "{err}");
        store
            .append(vec![accepted("main", Some(3), 41)], t(3), &key())
            .unwrap();
        store.verify(&vkey(), |_, _| {}).unwrap();
    }
}
