//! Tampering with a copy of the store, and with refs/tally/ledger.
//!
//! These tests work on a copy of the whole bare repository and edit its SQLite store with the
//! `sqlite3` command-line shell (rusqlite is not a dependency of the root package), then expect
//! `tally ledger verify` to exit 1 naming the entry or checkpoint at fault.

use super::*;
use crate::common::*;

/// A copy of the whole bare repository (objects, refs, hooks, `tally/` with the SQLite store,
/// its WAL and the keys), to tamper with.
pub(super) fn copy_repo<'e>(env: &'e TestEnv, server: &Server<'_>, name: &str) -> Server<'e> {
    let path = env.root().join(format!("{name}.git"));
    assert!(!path.exists(), "{} already exists", path.display());
    copy_dir(&server.path, &path);
    env.server_at(path)
}

/// The files of the SQLite store (the WAL ones exist only while a connection is open or was
/// not closed cleanly).
const STORE_FILES: [&str; 3] = ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"];

/// Puts the store of `original` back into `copy` (copying a whole repository is slow on some
/// file systems; the store is all that the SQL tampering changes).
fn reset_store(copy: &Server<'_>, original: &Server<'_>) {
    for name in STORE_FILES {
        let _ = std::fs::remove_file(copy.tally_dir().join(name));
        let from = original.tally_dir().join(name);
        if from.exists() {
            std::fs::copy(&from, copy.tally_dir().join(name)).unwrap();
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Byte offset of the last byte of `time.nanos` in an encoded entry (label 19, version 1, seq
/// 8, kind 1, seconds 8, nanos 4): flipping its low bit keeps the entry decodable.
pub(super) const NANOS_LAST_BYTE: usize = 19 + 1 + 8 + 1 + 8 + 3;

/// The mixed history, its ledger verified intact, and its size.
fn tamper_fixture(env: &TestEnv) -> (History<'_>, u64) {
    let h = mixed_history(env);
    h.server.assert_ledger_intact();
    let size = h.server.log(&[]).len() as u64;
    (h, size)
}

#[test]
fn flipping_any_byte_of_an_entry_is_detected() {
    let env = TestEnv::new();
    let (h, size) = tamper_fixture(&env);
    let copy = copy_repo(&env, &h.server, "copy");
    let db = db(&copy);
    for target in [0, size / 2, size - 1] {
        let len = blob(&env, &db, "entries", "bytes", "seq", target as i64).len();
        // The label, the version, the seq, the kind, the time, the middle, the last byte
        // (prev_hash).
        for position in [0, 19, 27, 28, NANOS_LAST_BYTE, len / 2, len - 1] {
            for mask in [0x01u8, 0x80] {
                reset_store(&copy, &h.server);
                let mut bytes = blob(&env, &db, "entries", "bytes", "seq", target as i64);
                bytes[position] ^= mask;
                sql(
                    &env,
                    &db,
                    &format!(
                        "UPDATE entries SET bytes = x'{}' WHERE seq = {target};",
                        to_hex(&bytes)
                    ),
                );
                assert_verify_fails(
                    &copy,
                    &format!("entry {target} byte {position} ^ {mask:#x}"),
                    &[&format!("entry {target}: its bytes hash to ")],
                );
            }
        }
    }
    reset_store(&copy, &h.server);
    copy.assert_ledger_intact();
}

#[test]
fn flipping_a_byte_and_rehashing_the_entry_breaks_the_chain_or_the_checkpoint() {
    let env = TestEnv::new();
    let (h, size) = tamper_fixture(&env);
    // An entry in the middle: the checkpoint signed right after it no longer matches the
    // root (every append signs one), and the next entry's prev_hash no longer matches either.
    let target = 2u64;
    let copy = copy_repo(&env, &h.server, "middle");
    rewrite_entry_time(&env, &copy, target);
    assert_verify_fails(
        &copy,
        "entry 2 changed and rehashed",
        &[&format!("the root at size {} is ", target + 1)],
    );
    // Without the checkpoints of that size, the chain names the next entry.
    sql(
        &env,
        &db(&copy),
        &format!("DELETE FROM checkpoints WHERE size = {};", target + 1),
    );
    assert_verify_fails(
        &copy,
        "entry 2 changed and rehashed, its checkpoints deleted",
        &[&format!("entry {}: prev_hash is ", target + 1)],
    );

    // The last entry: no entry follows, so the checkpoints of its size catch it (or its stored
    // Merkle nodes, if its seq completes a subtree).
    let last = size - 1;
    let copy = copy_repo(&env, &h.server, "last");
    rewrite_entry_time(&env, &copy, last);
    let expected = if last % 2 == 1 {
        format!("entry {last}: its stored Merkle nodes are wrong")
    } else {
        format!("the root at size {size} is ")
    };
    let stderr = assert_verify_fails(&copy, "last entry changed and rehashed", &[&expected]);
    assert!(last % 2 == 1 || stderr.contains("checkpoint "), "{stderr}");
}

/// Changes an entry's time by one nanosecond and stores the matching leaf hash, as someone
/// who knows the format but not the ledger key would.
fn rewrite_entry_time(env: &TestEnv, server: &Server<'_>, target: u64) {
    let db = db(server);
    let mut bytes = blob(env, &db, "entries", "bytes", "seq", target as i64);
    bytes[NANOS_LAST_BYTE] ^= 0x01;
    sql(
        env,
        &db,
        &format!(
            "UPDATE entries SET bytes = x'{}', leaf_hash = x'{}' WHERE seq = {target};",
            to_hex(&bytes),
            to_hex(&leaf_hash(&bytes))
        ),
    );
}

#[test]
fn deleting_the_last_entry_is_detected() {
    let env = TestEnv::new();
    let (h, size) = tamper_fixture(&env);
    let last = size - 1;

    let copy = copy_repo(&env, &h.server, "deleted");
    sql(
        &env,
        &db(&copy),
        &format!("DELETE FROM entries WHERE seq = {last};"),
    );
    assert_verify_fails(
        &copy,
        "last entry deleted",
        // One entry, in the singular (issue 13: was "entries 6 to 6 are missing").
        &[&format!(
            "entry {last} is missing (the head says the ledger has "
        )],
    );

    // The head shrunk to match: the entry is now beyond it.
    let copy = copy_repo(&env, &h.server, "head-shrunk");
    sql(&env, &db(&copy), "UPDATE head SET size = size - 1;");
    assert_verify_fails(
        &copy,
        "head size decremented",
        &[&format!("entry {last} is beyond the head (size {last})")],
    );

    // Entry, head size and the checkpoints of the last size all gone: the head's root is not
    // the root of what is left.
    let copy = copy_repo(&env, &h.server, "all-shrunk");
    sql(
        &env,
        &db(&copy),
        &format!(
            "DELETE FROM entries WHERE seq = {last}; DELETE FROM checkpoints WHERE size = {size}; \
             UPDATE head SET size = {last};"
        ),
    );
    assert_verify_fails(
        &copy,
        "last entry, its checkpoints and the head size",
        &["the head's root"],
    );
}

#[test]
fn restoring_an_old_copy_of_the_store_is_caught_by_the_publication() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    // A consistent, validly signed backup of the store...
    let backup = env.root().join("backup");
    copy_dir(&server.tally_dir(), &backup);
    // ...then a refused push (main does not move, so only the ledger knows about it).
    work.commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    let size = server.log(&[]).len();
    for name in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let _ = std::fs::remove_file(server.tally_dir().join(name));
        if backup.join(name).exists() {
            std::fs::copy(backup.join(name), server.tally_dir().join(name)).unwrap();
        }
    }
    assert_eq!(
        server.log(&[]).len(),
        size - 1,
        "the backup is one entry behind"
    );
    assert_verify_fails(&server, "old store restored", &["refs/tally/ledger"]);
}

#[test]
fn deleting_an_entry_in_the_middle_is_detected() {
    let env = TestEnv::new();
    let (h, _) = tamper_fixture(&env);
    let copy = copy_repo(&env, &h.server, "gap");
    sql(&env, &db(&copy), "DELETE FROM entries WHERE seq = 3;");
    assert_verify_fails(
        &copy,
        "entry 3 deleted",
        &["expected entry 3, found entry 4"],
    );
}

#[test]
fn swapping_two_entries_is_detected() {
    let env = TestEnv::new();
    let (h, _) = tamper_fixture(&env);
    let (a, b) = (2i64, 4i64);
    let swap = |name: &str, columns: &[&str]| {
        let copy = copy_repo(&env, &h.server, name);
        let db = db(&copy);
        let mut statements = String::from("BEGIN;");
        for column in columns {
            let va = blob(&env, &db, "entries", column, "seq", a);
            let vb = blob(&env, &db, "entries", column, "seq", b);
            statements.push_str(&format!(
                "UPDATE entries SET {column} = x'{}' WHERE seq = {a}; \
                 UPDATE entries SET {column} = x'{}' WHERE seq = {b};",
                to_hex(&vb),
                to_hex(&va)
            ));
        }
        statements.push_str("COMMIT;");
        sql(&env, &db, &statements);
        copy
    };
    // Their bytes only: the leaf hash of the first no longer matches.
    let copy = swap("bytes", &["bytes"]);
    assert_verify_fails(
        &copy,
        "bytes swapped",
        &[&format!("entry {a}: its bytes hash to ")],
    );
    // Bytes and leaf hashes: the row holds another seq's entry.
    let copy = swap("rows", &["bytes", "leaf_hash"]);
    assert_verify_fails(
        &copy,
        "rows swapped",
        &[&format!("row {a} holds entry {b}")],
    );
}

#[test]
fn replacing_a_checkpoint_is_detected() {
    let env = TestEnv::new();
    let (h, size) = tamper_fixture(&env);
    let checkpoints = |server: &Server<'_>| -> Vec<(i64, u64)> {
        sql(
            &env,
            &db(server),
            "SELECT id, size FROM checkpoints ORDER BY id;",
        )
        .lines()
        .map(|l| {
            let (id, size) = l.split_once('|').unwrap();
            (id.parse().unwrap(), size.parse().unwrap())
        })
        .collect()
    };
    let all = checkpoints(&h.server);
    let (latest, latest_size) = *all.last().unwrap();
    assert_eq!(latest_size, size);
    let (middle, middle_size) = all[all.len() / 2];
    assert_ne!(middle_size, latest_size);

    // A validly signed checkpoint of another ledger (another repository, another key).
    let other_path = env.bare_repo("other");
    let out = env.tally_init([
        other_path.as_os_str(),
        "--allowed-signers".as_ref(),
        env.root().join("allowed_signers").as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let other = env.server_at(other_path);
    let foreign = sql(
        &env,
        &db(&other),
        "SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1;",
    );
    for id in [middle, latest] {
        let copy = copy_repo(&env, &h.server, &format!("foreign{id}"));
        sql(
            &env,
            &db(&copy),
            &format!(
                "UPDATE checkpoints SET note = '{}' WHERE id = {id};",
                foreign.replace('\'', "''")
            ),
        );
        assert_verify_fails(
            &copy,
            &format!("checkpoint {id} replaced by another ledger's"),
            &[&format!("checkpoint {id}: ")],
        );
    }

    // A validly signed checkpoint of this ledger, for another size.
    let copy = copy_repo(&env, &h.server, "other-size");
    sql(
        &env,
        &db(&copy),
        &format!(
            "UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE id = {middle}) \
             WHERE id = {latest};"
        ),
    );
    assert_verify_fails(
        &copy,
        "latest checkpoint's note replaced by an older one",
        &[&format!(
            "checkpoint {latest}: the size column does not match the signed note"
        )],
    );

    // The whole row replaced by an older one's (size, root, time and note all consistent).
    let copy = copy_repo(&env, &h.server, "old-row");
    sql(
        &env,
        &db(&copy),
        &format!(
            "UPDATE checkpoints SET (size, root, time, note) = \
             (SELECT size, root, time, note FROM checkpoints WHERE id = {middle}) \
             WHERE id = {latest};"
        ),
    );
    assert_verify_fails(
        &copy,
        "latest checkpoint row replaced by an older one",
        &[&format!(
            "was signed after checkpoint {latest} (size {middle_size}), for fewer entries"
        )],
    );

    // The latest checkpoint deleted: the head is no longer signed.
    let copy = copy_repo(&env, &h.server, "no-latest");
    sql(
        &env,
        &db(&copy),
        &format!("DELETE FROM checkpoints WHERE id = {latest};"),
    );
    assert_verify_fails(
        &copy,
        "latest checkpoint deleted",
        &["does not sign the head"],
    );

    // Its root column changed.
    let copy = copy_repo(&env, &h.server, "root-column");
    sql(
        &env,
        &db(&copy),
        &format!("UPDATE checkpoints SET root = zeroblob(32) WHERE id = {middle};"),
    );
    assert_verify_fails(
        &copy,
        "checkpoint root column zeroed",
        &[&format!(
            "checkpoint {middle} says the root at size {middle_size} is "
        )],
    );
}

/// Publishes a crafted commit to `refs/tally/ledger` (hooks bypassed, as someone with a shell
/// on the server could): the tip's tree with `name` replaced by `bytes`, on the tip's parent.
pub(super) fn craft_publication(server: &Server<'_>, name: &str, bytes: &[u8]) -> String {
    let git = |args: &[&str]| stdout_of(server.git().args(args));
    let tip = git(&["rev-parse", "refs/tally/ledger"]);
    let parent = git(&["rev-parse", "refs/tally/ledger^"]);
    let blob = {
        let out = run_with_stdin(server.git().args(["hash-object", "-w", "--stdin"]), bytes);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let tree_text: String = git(&["ls-tree", &tip])
        .lines()
        .map(|l| {
            if l.ends_with(&format!("\t{name}")) {
                format!("100644 blob {blob}\t{name}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let out = run_with_stdin(server.git().arg("mktree"), tree_text.as_bytes());
    assert!(out.status.success());
    let tree = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let message = git(&["log", "-1", "--format=%s", &tip]);
    let commit = git(&["commit-tree", &tree, "-p", &parent, "-m", &message]);
    run_ok(server.git().args([
        "-c",
        NO_HOOKS,
        "update-ref",
        "refs/tally/ledger",
        &commit,
        &tip,
    ]));
    commit
}

#[test]
fn a_published_entry_that_differs_from_the_store_is_detected() {
    let env = TestEnv::new();
    let (h, _) = tamper_fixture(&env);
    let git = |server: &Server<'_>, args: &[&str]| run_ok(server.git().args(args)).stdout;
    let range = String::from_utf8(git(
        &h.server,
        &["cat-file", "blob", "refs/tally/ledger:range"],
    ))
    .unwrap();
    let first: u64 = range.split_whitespace().next().unwrap().parse().unwrap();
    let entries = git(
        &h.server,
        &["cat-file", "blob", "refs/tally/ledger:entries"],
    );

    // One byte of the first published entry (after its 4-byte length).
    let copy = copy_repo(&env, &h.server, "entry-byte");
    let mut crafted = entries.clone();
    crafted[4 + NANOS_LAST_BYTE] ^= 0x01;
    let commit = craft_publication(&copy, "entries", &crafted);
    assert_verify_fails(
        &copy,
        "published entry changed",
        &[&format!(
            "refs/tally/ledger: entry #{first} as published in {commit} differs from the store"
        )],
    );

    // A truncated entries file.
    let copy = copy_repo(&env, &h.server, "entry-truncated");
    let commit = craft_publication(&copy, "entries", &entries[..entries.len() - 1]);
    assert_verify_fails(
        &copy,
        "published entries truncated",
        &[&format!(
            "refs/tally/ledger: publication {commit} has a truncated entries file"
        )],
    );

    // A checkpoint the store never signed (this ledger's key, but a changed note).
    let copy = copy_repo(&env, &h.server, "checkpoint");
    let note = git(
        &h.server,
        &["cat-file", "blob", "refs/tally/ledger:checkpoint"],
    );
    let mut crafted = note.clone();
    let at = crafted.iter().position(|b| *b == b'\n').unwrap() + 1;
    crafted[at] = if crafted[at] == b'9' { b'8' } else { b'9' };
    let commit = craft_publication(&copy, "checkpoint", &crafted);
    assert_verify_fails(
        &copy,
        "published checkpoint changed",
        &[&format!(
            "refs/tally/ledger: publication {commit} carries a checkpoint the store never signed"
        )],
    );
}

/// Checkpoints are independent: `tally ledger verify` names every bad one, not only the
/// first, in its text and in its JSON `problems` list (issue 13).
#[test]
fn every_bad_checkpoint_is_reported() {
    let env = TestEnv::new();
    let (h, _) = tamper_fixture(&env);
    let copy = copy_repo(&env, &h.server, "two-bad");
    let ids: Vec<i64> = sql(&env, &db(&copy), "SELECT id FROM checkpoints ORDER BY id;")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let (first, second) = (ids[1], ids[ids.len() / 2]);
    sql(
        &env,
        &db(&copy),
        &format!("UPDATE checkpoints SET note = 'garbage' WHERE id IN ({first}, {second});"),
    );
    let (code, json) = verify_json(&copy);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ok"], Value::Bool(false));
    let problems: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("checkpoint {first}: ")),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with(&format!("checkpoint {second}: ")),
        "{problems:?}"
    );
    assert_verify_fails(
        &copy,
        "two checkpoints replaced by garbage",
        &[
            &format!("checkpoint {first}: "),
            &format!("checkpoint {second}: "),
        ],
    );
}
