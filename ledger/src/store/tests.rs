use super::*;
use crate::checkpoint::VerifierKey;
use crate::merkle::{verify_consistency, verify_inclusion};

pub(crate) fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

pub(crate) fn vkey() -> VerifierKey {
    VerifierKey::new("tally/repo-1", key().verifying_key()).unwrap()
}

pub(crate) fn t(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_767_225_600 + seconds).unwrap()
}

/// An accepted move that creates a branch of its own (`refs/heads/b<n>`), so that any
/// sequence of them is continuous (see `chain`); [`abort`] names the same branch.
pub(crate) fn accepted(n: u8) -> NewEntry {
    NewEntry {
        kind: Kind::Accepted,
        refname: format!("refs/heads/b{n}"),
        old: None,
        new: Some(vec![n.wrapping_add(1); 20]),
        new_tree: Some(vec![0xee; 20]),
        commits: vec![CommitSigner {
            commit: vec![n.wrapping_add(1); 20],
            principal: "alice@example.com".to_owned(),
            fingerprint: "SHA256:abc".to_owned(),
        }],
        pusher: "alice".to_owned(),
        policy_digest: [3; 32],
        reasons: vec![],
        aborts: None,
    }
}

fn rejected(refname: &str) -> NewEntry {
    NewEntry {
        kind: Kind::Rejected,
        refname: refname.to_owned(),
        reasons: vec!["not signed".to_owned()],
        pusher: "mallory".to_owned(),
        ..accepted(0)
    }
}

/// Cancels entry `target`, which moved `refs/heads/b<n>` (see [`accepted`]).
fn abort(target: u64, n: u8) -> NewEntry {
    NewEntry {
        refname: format!("refs/heads/b{n}"),
        kind: Kind::Aborted,
        old: None,
        new: None,
        new_tree: None,
        commits: vec![],
        aborts: Some(target),
        ..accepted(0)
    }
}

pub(crate) fn new_store(dir: &Path) -> Store {
    Store::create(
        &dir.join("ledger.db"),
        "tally/repo-1",
        "repo-1",
        t(0),
        &key(),
        &Options::default(),
    )
    .unwrap()
}

#[test]
fn a_new_ledger_is_empty_signed_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    assert_eq!(
        store.head().unwrap(),
        Head {
            size: 0,
            root: EMPTY_ROOT,
            last_leaf: GENESIS
        }
    );
    let report = store.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(report.size, 0);
    assert_eq!(report.checkpoints, 1);
    assert_eq!(report.latest.time(), 1_767_225_600);
    let mode: String = store
        .sqlite()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn append_assigns_seq_time_repository_and_prev_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let out = store
        .append(
            vec![accepted(1), rejected("refs/heads/main")],
            t(10),
            &key(),
        )
        .unwrap();
    assert_eq!((out.first_seq, out.size), (0, 2));
    let out2 = store.append(vec![accepted(2)], t(20), &key()).unwrap();
    assert_eq!((out2.first_seq, out2.size), (2, 3));
    let records = store.entries(0..10).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].entry.prev_hash, GENESIS);
    assert_eq!(records[1].entry.prev_hash, records[0].leaf_hash);
    assert_eq!(records[2].entry.prev_hash, records[1].leaf_hash);
    assert_eq!(records[1].entry.time, t(10));
    assert_eq!(records[2].entry.time, t(20));
    assert!(records.iter().all(|r| r.entry.repository == "repo-1"));
    assert_eq!(
        records.iter().map(|r| r.entry.seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let head = store.head().unwrap();
    assert_eq!(head.size, 3);
    assert_eq!(
        head.root,
        merkle::root(&records.iter().map(|r| r.leaf_hash).collect::<Vec<_>>())
    );
    assert_eq!(head.last_leaf, records[2].leaf_hash);
    let verified = out2.checkpoint.verify(&vkey()).unwrap();
    assert_eq!((verified.size(), *verified.root()), (3, head.root));
    let report = store.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(
        (report.size, report.root, report.checkpoints),
        (3, head.root, 3)
    );
    assert_eq!(store.entry(1).unwrap().unwrap(), records[1]);
    assert_eq!(store.entry(3).unwrap(), None);
}

#[test]
fn reopening_sees_the_same_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store.append(vec![accepted(1)], t(1), &key()).unwrap();
    let head = store.head().unwrap();
    drop(store);
    let store = Store::open(&dir.path().join("ledger.db")).unwrap();
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.origin(), "tally/repo-1");
    assert_eq!(store.repository(), "repo-1");
    let ro = Store::open_with(
        &dir.path().join("ledger.db"),
        &Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    ro.verify(&vkey(), |_, _| {}).unwrap();
}

#[test]
fn heartbeat_checkpoints_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store.append(vec![accepted(1)], t(1), &key()).unwrap();
    let beat = store.checkpoint(t(100), &key()).unwrap();
    assert_eq!(beat.verify(&vkey()).unwrap().time(), 1_767_225_700);
    let latest = store.latest_checkpoint().unwrap();
    assert_eq!(latest.note, beat);
    assert_eq!((latest.size, latest.time), (1, 1_767_225_700));
    let mut all = Vec::new();
    store
        .for_each_checkpoint(|c| {
            all.push(c.size);
            Ok(())
        })
        .unwrap();
    assert_eq!(all, [0, 1, 1]);
    assert_eq!(store.verify(&vkey(), |_, _| {}).unwrap().checkpoints, 3);
}

#[test]
fn log_is_newest_first_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store
        .append(
            vec![
                accepted(1),
                rejected("refs/heads/main"),
                rejected("refs/heads/prod"),
                accepted(2),
            ],
            t(1),
            &key(),
        )
        .unwrap();
    let seqs = |f: Filter| {
        store
            .log(&f)
            .unwrap()
            .iter()
            .map(|r| r.entry.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(Filter::default()), [3, 2, 1, 0]);
    assert_eq!(
        seqs(Filter {
            kind: Some(Kind::Rejected),
            ..Filter::default()
        }),
        [2, 1]
    );
    assert_eq!(
        seqs(Filter {
            refname: Some("refs/heads/prod".to_owned()),
            ..Filter::default()
        }),
        [2]
    );
    assert_eq!(
        seqs(Filter {
            refname: Some("refs/heads/b2".to_owned()),
            kind: Some(Kind::Accepted),
            ..Filter::default()
        }),
        [3]
    );
    assert_eq!(
        seqs(Filter {
            limit: Some(2),
            ..Filter::default()
        }),
        [3, 2]
    );
    assert_eq!(
        seqs(Filter {
            before: Some(2),
            ..Filter::default()
        }),
        [1, 0]
    );
    assert_eq!(
        seqs(Filter {
            limit: Some(0),
            ..Filter::default()
        }),
        Vec::<u64>::new()
    );
    let json = serde_json::to_value(
        &store
            .log(&Filter {
                limit: Some(1),
                ..Filter::default()
            })
            .unwrap()[0],
    )
    .unwrap();
    assert_eq!(json["seq"], 3);
    assert_eq!(json["kind"], "accepted");
    assert_eq!(json["leaf_hash"].as_str().unwrap().len(), 64);
}

#[test]
fn proofs_from_the_store_verify_against_its_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let mut roots = vec![EMPTY_ROOT];
    for batch in 0..20u8 {
        let entries = (0..=batch % 4)
            .map(|i| accepted(batch.wrapping_mul(7).wrapping_add(i)))
            .collect();
        let out = store.append(entries, t(i64::from(batch)), &key()).unwrap();
        roots.resize(out.size as usize, [0; 32]);
        roots.push(out.root);
    }
    let size = store.head().unwrap().size;
    let leaves: Vec<Hash> = store
        .entries(0..size)
        .unwrap()
        .iter()
        .map(|r| r.leaf_hash)
        .collect();
    for n in 1..=size {
        assert_eq!(
            store.root_at(n).unwrap(),
            merkle::root(&leaves[..n as usize])
        );
        for m in 0..n {
            let proof = store.inclusion_proof(m, n).unwrap();
            assert_eq!(
                proof,
                merkle::inclusion_proof(&leaves[..n as usize], m).unwrap()
            );
            verify_inclusion(
                &leaves[m as usize],
                m,
                n,
                &proof,
                &store.root_at(n).unwrap(),
            )
            .unwrap();
        }
        for m in 0..=n {
            let proof = store.consistency_proof(m, n).unwrap();
            assert_eq!(
                proof,
                merkle::consistency_proof(&leaves[..n as usize], m).unwrap()
            );
            verify_consistency(
                m,
                n,
                &store.root_at(m).unwrap(),
                &store.root_at(n).unwrap(),
                &proof,
            )
            .unwrap();
        }
    }
    // Between signed heads too.
    for (m, rm) in roots.iter().enumerate().filter(|(_, r)| **r != [0; 32]) {
        let proof = store.consistency_proof(m as u64, size).unwrap();
        verify_consistency(m as u64, size, rm, &store.head().unwrap().root, &proof).unwrap();
    }
    assert!(matches!(
        store.inclusion_proof(0, size + 1),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        store.inclusion_proof(size, size),
        Err(StoreError::Proof(ProofError::IndexOutOfRange { .. }))
    ));
    assert!(matches!(
        store.consistency_proof(3, 2),
        Err(StoreError::Proof(ProofError::SizesOutOfOrder { .. }))
    ));
}

#[test]
fn appends_with_another_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    let other = SigningKey::from_bytes(&[8; 32]);
    assert!(matches!(
        store.append(vec![accepted(1)], t(1), &other),
        Err(StoreError::WrongKey { .. })
    ));
    assert!(matches!(
        store.checkpoint(t(1), &other),
        Err(StoreError::WrongKey { .. })
    ));
    assert_eq!(store.head().unwrap().size, 0);
}

#[test]
fn verify_refuses_a_key_for_another_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let wrong_name = VerifierKey::new("tally/repo-2", key().verifying_key()).unwrap();
    assert!(matches!(
        store.verify(&wrong_name, |_, _| {}),
        Err(VerifyError::WrongVerifierKey { .. })
    ));
    let wrong_key = VerifierKey::new(
        "tally/repo-1",
        SigningKey::from_bytes(&[8; 32]).verifying_key(),
    )
    .unwrap();
    assert!(matches!(
        store.verify(&wrong_key, |_, _| {}),
        Err(VerifyError::CheckpointSignature {
            id: 1,
            source: CheckpointError::MissingSignature { .. }
        })
    ));
}

#[test]
fn aborts_must_name_an_unaborted_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store
        .append(vec![accepted(1), rejected("refs/heads/main")], t(1), &key())
        .unwrap();
    assert!(matches!(
        store.append(vec![abort(1, 1)], t(2), &key()),
        Err(StoreError::BadAbort { target: 1, .. })
    ));
    assert!(matches!(
        store.append(vec![abort(2, 1)], t(2), &key()),
        Err(StoreError::Encode { .. })
    ));
    assert!(matches!(
        store.append(vec![abort(7, 1)], t(2), &key()),
        Err(StoreError::Encode { .. })
    ));
    // An abort names the ref of the entry it cancels.
    assert!(matches!(
        store.append(vec![abort(0, 2)], t(2), &key()),
        Err(StoreError::BadAbort { target: 0, .. })
    ));
    store.append(vec![abort(0, 1)], t(2), &key()).unwrap();
    assert!(matches!(
        store.append(vec![abort(0, 1)], t(3), &key()),
        Err(StoreError::BadAbort { target: 0, .. })
    ));
    // An abort of an entry of the same batch.
    store
        .append(vec![accepted(5), abort(3, 5)], t(4), &key())
        .unwrap();
    store.verify(&vkey(), |_, _| {}).unwrap();
}

#[test]
fn a_failed_append_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store.append(vec![accepted(1)], t(1), &key()).unwrap();
    let head = store.head().unwrap();
    let bad = NewEntry {
        new: Some(vec![1; 3]),
        ..accepted(2)
    };
    assert!(matches!(
        store.append(vec![accepted(2), bad], t(2), &key()),
        Err(StoreError::Encode { seq: 2, .. })
    ));
    assert!(matches!(
        store.append(vec![], t(2), &key()),
        Err(StoreError::NothingToAppend)
    ));
    assert!(matches!(
        store.append(
            vec![accepted(2)],
            jiff::Timestamp::from_second(-1).unwrap(),
            &key()
        ),
        Err(StoreError::TimeBeforeEpoch { .. })
    ));
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.entries(0..10).unwrap().len(), 1);
    store.verify(&vkey(), |_, _| {}).unwrap();
}

#[test]
fn a_locked_ledger_fails_with_busy_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut store = new_store(dir.path());
    let mut other = Store::open_with(
        &path,
        &Options {
            busy_timeout: Duration::from_millis(50),
            ..Options::default()
        },
    )
    .unwrap();
    let tx = store
        .sqlite_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let started = std::time::Instant::now();
    let err = other.append(vec![accepted(1)], t(1), &key()).unwrap_err();
    assert!(matches!(err, StoreError::Busy { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    drop(tx);
    other.append(vec![accepted(1)], t(1), &key()).unwrap();
}

#[test]
fn open_refuses_what_is_not_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert!(matches!(
        Store::open(&missing),
        Err(StoreError::NotFound { .. })
    ));
    assert!(!missing.exists());
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    assert!(matches!(
        Store::open(&other),
        Err(StoreError::NotALedger { .. })
    ));
    let text = dir.path().join("text.db");
    std::fs::write(
        &text,
        "hello, this is not sqlite at all, not even close to it, no",
    )
    .unwrap();
    assert!(Store::open(&text).is_err());
    new_store(dir.path());
    let path = dir.path().join("ledger.db");
    assert!(matches!(
        Store::create(
            &path,
            "tally/repo-1",
            "repo-1",
            t(0),
            &key(),
            &Options::default()
        ),
        Err(StoreError::AlreadyExists { .. })
    ));
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::UnsupportedSchema { found: 2 })
    ));
}

#[test]
fn create_refuses_a_bad_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    assert!(matches!(
        Store::create(
            &path,
            "tally/has space",
            "r",
            t(0),
            &key(),
            &Options::default()
        ),
        Err(StoreError::Checkpoint(CheckpointError::BadOrigin { .. }))
    ));
    assert!(!path.exists());
}

#[test]
fn reading_a_damaged_entry_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store
        .append(vec![accepted(1), accepted(2)], t(1), &key())
        .unwrap();
    let mut bytes: Vec<u8> = store
        .sqlite()
        .query_row("SELECT bytes FROM entries WHERE seq = 1", [], |r| r.get(0))
        .unwrap();
    bytes.push(0);
    store
        .sqlite()
        .execute("UPDATE entries SET bytes = ?1 WHERE seq = 1", [bytes])
        .unwrap();
    assert!(matches!(
        store.entries(0..2),
        Err(StoreError::DamagedEntry { seq: 1, .. })
    ));
    assert!(matches!(
        store.log(&Filter::default()),
        Err(StoreError::DamagedEntry { seq: 1, .. })
    ));
    store
        .sqlite()
        .execute(
            "UPDATE entries SET refname = 'refs/heads/x' WHERE seq = 0",
            [],
        )
        .unwrap();
    assert!(matches!(
        store.log(&Filter {
            refname: Some("refs/heads/x".to_owned()),
            ..Filter::default()
        }),
        Err(StoreError::DamagedEntry { seq: 0, .. })
    ));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_new_entry() -> impl Strategy<Value = NewEntry> {
        (
            prop_oneof![
                Just(Kind::Accepted),
                Just(Kind::Rejected),
                Just(Kind::PolicyChange)
            ],
            "refs/heads/[a-z]{1,8}",
            proptest::option::of(crate::entry::tests::arb_object_id()),
            proptest::collection::vec(".{0,30}", 0..3),
            ".{0,10}",
        )
            .prop_map(|(kind, refname, new, reasons, pusher)| NewEntry {
                kind,
                refname,
                new,
                reasons,
                pusher,
                ..accepted(1)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn append_then_verify_always_passes(
            batches in proptest::collection::vec(proptest::collection::vec(arb_new_entry(), 1..6), 1..6),
            beats in proptest::collection::vec(any::<bool>(), 6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut store = new_store(dir.path());
            let mut expected = 0;
            // Accepted moves start where their ref is (continuity); baselines set it.
            let mut at: std::collections::HashMap<String, Option<Vec<u8>>> = Default::default();
            for (i, mut batch) in batches.into_iter().enumerate() {
                for e in &mut batch {
                    if e.kind == Kind::Accepted {
                        e.old = at.get(&e.refname).cloned().flatten();
                    }
                    if e.kind != Kind::Rejected {
                        at.insert(e.refname.clone(), e.new.clone());
                    }
                }
                expected += batch.len() as u64;
                let out = store.append(batch, t(i as i64), &key()).unwrap();
                prop_assert_eq!(out.size, expected);
                if beats[i] {
                    store.checkpoint(t(i as i64 + 1), &key()).unwrap();
                }
            }
            let report = store.verify(&vkey(), |_, _| {}).unwrap();
            prop_assert_eq!(report.size, expected);
        }

        #[test]
        fn any_single_byte_change_of_an_entry_fails_verify(
            n in 1usize..8, pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), xor in 1u8..=255,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut store = new_store(dir.path());
            store.append((0..n as u8).map(accepted).collect(), t(1), &key()).unwrap();
            let seq = pick.index(n) as i64;
            let mut bytes: Vec<u8> = store.sqlite().query_row("SELECT bytes FROM entries WHERE seq = ?1", [seq], |r| r.get(0)).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
            store.sqlite().execute("UPDATE entries SET bytes = ?1 WHERE seq = ?2", params![bytes, seq]).unwrap();
            let err = store.verify(&vkey(), |_, _| {}).unwrap_err();
            let is_leaf_mismatch = matches!(err, VerifyError::LeafHashMismatch { seq: s, .. } if s == seq as u64);
            prop_assert!(is_leaf_mismatch, "{err}");
        }
    }
}

#[test]
fn the_head_moves_only_by_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store.append(vec![accepted(1)], t(1), &key()).unwrap();
    let head = store.head().unwrap();
    // Something moves the head behind the append's back, between its read and its update.
    store
        .sqlite()
        .execute_batch(
            "CREATE TRIGGER interloper AFTER INSERT ON checkpoints
             BEGIN UPDATE head SET size = size + 1000; END;",
        )
        .unwrap();
    let err = store.append(vec![accepted(2)], t(2), &key()).unwrap_err();
    assert!(
        matches!(err, StoreError::HeadMoved { expected_size: 1 }),
        "{err}"
    );
    store
        .sqlite()
        .execute_batch("DROP TRIGGER interloper")
        .unwrap();
    // Nothing of the failed append was written.
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.entries(0..10).unwrap().len(), 1);
    store.verify(&vkey(), |_, _| {}).unwrap();
}

#[test]
fn verify_reports_progress_up_to_the_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store
        .append((0..50).map(accepted).collect(), t(1), &key())
        .unwrap();
    let mut calls = Vec::new();
    store
        .verify(&vkey(), |done, total| calls.push((done, total)))
        .unwrap();
    assert_eq!(calls.first(), Some(&(0, 50)));
    assert_eq!(calls.last(), Some(&(50, 50)));
}

/// `tally log --json` is a documented format: the array `LogWriter` writes is byte for byte
/// what the first release wrote (`[`, each `Record` serialised after `\n` with `,` between,
/// then `\n]\n`), now that the store and a clone's published ledger print through it.
#[test]
fn log_json_is_the_records_serialisation_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(dir.path());
    store
        .append(vec![rejected("refs/heads/main"), accepted(1)], t(1), &key())
        .unwrap();
    let records = store.log(&Filter::default()).unwrap();
    let mut expected = String::from("[");
    for (i, r) in records.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        expected.push_str(&format!("{sep}\n{}", serde_json::to_string(r).unwrap()));
    }
    expected.push_str("\n]\n");
    let mut out = Vec::new();
    let style = crate::log::Style {
        json: true,
        commits: false,
    };
    let mut writer = crate::log::LogWriter::new(&mut out, style);
    for r in &records {
        writer.entry(&r.entry.view(), &r.leaf_hash).unwrap();
    }
    writer.finish("").unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}
