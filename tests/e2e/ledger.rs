//! End-to-end tests of the ledger: real pushes with the real `git` binary to a bare repository
//! set up by `tally init`, then what a user relies on, read back through `tally log --json`,
//! `tally ledger verify|key|checkpoint` and `refs/tally/ledger`.
//!
//! Tamper tests work on a copy of the whole bare repository and edit its SQLite store with the
//! `sqlite3` command-line shell (rusqlite is not a dependency of the root package), then expect
//! `tally ledger verify` to exit 1 naming the entry or checkpoint at fault.
//!
//! Tests marked `#[ignore = "bug: ..."]` or `#[ignore = "finding: ..."]` state what must hold
//! and fail today; the reason says how.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

// =============================================================================================
// Helpers

/// A string field of a JSON entry; panics naming the field if it is not a string.
fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not a string in {entry}"))
}

/// An optional id field (`null` when absent).
fn opt<'a>(entry: &'a Value, name: &str) -> Option<&'a str> {
    match &entry[name] {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => panic!("{name} is neither null nor a string: {other} in {entry}"),
    }
}

fn seq(entry: &Value) -> u64 {
    entry["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {entry}"))
}

fn kind(entry: &Value) -> &str {
    field(entry, "kind")
}

/// `(commit, principal, fingerprint)` of every commit an entry lists, oldest first.
fn commits(entry: &Value) -> Vec<(String, String, String)> {
    entry["commits"]
        .as_array()
        .unwrap_or_else(|| panic!("no commits array in {entry}"))
        .iter()
        .map(|c| {
            (
                field(c, "commit").to_owned(),
                field(c, "principal").to_owned(),
                field(c, "fingerprint").to_owned(),
            )
        })
        .collect()
}

fn reasons(entry: &Value) -> Vec<String> {
    entry["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons array in {entry}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

fn seqs(entries: &[Value]) -> Vec<u64> {
    entries.iter().map(seq).collect()
}

/// `(commit, principal, fingerprint)` for a commit signed with `key` under `principal`.
fn signed_by(commit: &str, principal: &str, key: &Key) -> (String, String, String) {
    (
        commit.to_owned(),
        principal.to_owned(),
        key.fingerprint.clone(),
    )
}

/// The tree of a commit, read in the bare repository.
fn tree_of(server: &Server<'_>, commit: &str) -> String {
    stdout_of(
        server
            .git()
            .args(["rev-parse", "--verify"])
            .arg(format!("{commit}^{{tree}}")),
    )
}

/// The `reason` parts of the violations a refused push printed (`tally: <reason>; fix: ...`),
/// which are what the `rejected` entry records.
fn violation_reasons(push: &Push) -> Vec<String> {
    push.violations()
        .iter()
        .map(|l| {
            let l = l.strip_prefix("tally: ").unwrap();
            l[..l.find("; fix: ").unwrap()].to_owned()
        })
        .collect()
}

/// Entries that an `aborted` entry cancels.
fn aborted_seqs(entries: &[Value]) -> HashSet<u64> {
    entries
        .iter()
        .filter(|e| kind(e) == "aborted")
        .map(|e| e["aborts"].as_u64().unwrap())
        .collect()
}

/// The newest entry that still sets `refname` (accepted and not aborted), from `tally log`.
fn latest_landed(server: &Server<'_>, refname: &str) -> Value {
    let entries = server.log(&["--branch", refname]);
    let aborted = aborted_seqs(&entries);
    entries
        .into_iter()
        .find(|e| kind(e) == "accepted" && !aborted.contains(&seq(e)))
        .unwrap_or_else(|| panic!("no accepted entry for {refname}"))
}

/// `tally ledger verify --json` of a repository, parsed, with the exit status.
fn verify_json(server: &Server<'_>) -> (Option<i32>, Value) {
    let out = server.tally(&["ledger", "verify", "--json"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tally ledger verify --json printed no JSON ({e}), exit {}:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

/// Asserts that `tally ledger verify` exits 1 and that its stderr contains every one of
/// `parts`; returns stderr.
fn assert_verify_fails(server: &Server<'_>, what: &str, parts: &[&str]) -> String {
    let out = server.tally(&["ledger", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: tally ledger verify should exit 1\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.starts_with("tally: ledger verify: "),
        "{what}: verify should name the problem on stderr:\n{stderr}"
    );
    for part in parts {
        assert!(
            stderr.contains(part),
            "{what}: verify's stderr should contain {part:?}:\n{stderr}"
        );
    }
    stderr
}

/// A copy of the whole bare repository (objects, refs, hooks, `tally/` with the SQLite store,
/// its WAL and the keys), to tamper with.
fn copy_repo<'e>(env: &'e TestEnv, server: &Server<'_>, name: &str) -> Server<'e> {
    let path = env.root().join(format!("{name}.git"));
    assert!(!path.exists(), "{} already exists", path.display());
    copy_dir(&server.path, &path);
    env.server_at(path)
}

/// The SQLite store of a repository.
fn db(server: &Server<'_>) -> PathBuf {
    server.tally_dir().join("ledger.sqlite")
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

/// Runs SQL on a store with the `sqlite3` shell; returns its trimmed output.
fn sql(env: &TestEnv, db: &Path, statements: &str) -> String {
    let mut cmd = Command::new("sqlite3");
    env.hermetic(&mut cmd);
    cmd.args(["-batch", "-bail"]).arg(db).arg(statements);
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run sqlite3 ({e}); the tamper tests need it: apt-get install sqlite3")
    });
    assert!(
        out.status.success(),
        "sqlite3 {statements:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A blob column of one row, as bytes.
fn blob(env: &TestEnv, db: &Path, table: &str, column: &str, key: &str, id: i64) -> Vec<u8> {
    from_hex(&sql(
        env,
        db,
        &format!("SELECT hex({column}) FROM {table} WHERE {key} = {id};"),
    ))
}

/// `SHA-256(0x00 || bytes)`, the leaf hash, computed with `sha256sum`.
fn leaf_hash(bytes: &[u8]) -> Vec<u8> {
    let mut input = vec![0u8];
    input.extend_from_slice(bytes);
    let out = run_with_stdin(&mut Command::new("sha256sum"), &input);
    assert!(out.status.success());
    from_hex(&String::from_utf8(out.stdout).unwrap()[..64])
}

/// Byte offset of the last byte of `time.nanos` in an encoded entry (label 19, version 1, seq
/// 8, kind 1, seconds 8, nanos 4): flipping its low bit keeps the entry decodable.
const NANOS_LAST_BYTE: usize = 19 + 1 + 8 + 1 + 8 + 3;

// =============================================================================================
// A history every ledger test can read back

/// What [`mixed_history`] pushed.
struct History<'e> {
    server: Server<'e>,
    /// Alice's first commit on main.
    a1: String,
    /// Bob's commit on main (pushed with `REMOTE_USER=bob`).
    b1: String,
    /// Alice's two-commit push to main.
    a2: String,
    a3: String,
    /// The unsigned commit with an executable script, refused on main.
    refused: String,
    /// The reasons the refusal printed.
    reasons: Vec<String>,
    /// prod's tip (prod was created at `a3`, then moved to `p1`).
    p1: String,
}

/// main and prod protected; accepted pushes by Alice and Bob (one with two commits), one
/// refused push, and a second protected branch created and moved.
fn mixed_history(env: &TestEnv) -> History<'_> {
    let server = env.server(&alice_and_bob(), &["main", "prod"]);
    let alice_w = env.clone_as(&server, "alice", &alice());
    let a1 = alice_w.commit("base").file("base.yaml", BASE_YAML).create();
    alice_w.push_main_ok();

    let bob_w = env.clone_as(&server, "bob", &bob());
    let b1 = bob_w
        .commit("web: two replicas")
        .file("apps/web.yaml", "replicas: 2\n")
        .create();
    bob_w
        .push_with_env(
            &["origin", "HEAD:refs/heads/main"],
            &[("REMOTE_USER", "bob")],
        )
        .assert_accepted();

    alice_w.git_ok(&["pull", "-q", "--ff-only", "origin", "main"]);
    let a2 = alice_w
        .commit("web: three replicas")
        .file("apps/web.yaml", "replicas: 3\n")
        .create();
    let a3 = alice_w
        .commit("db: namespace")
        .file("apps/db.yaml", "kind: Namespace\n")
        .create();
    alice_w.push_main_ok();

    let refused = alice_w
        .commit("deploy script")
        .unsigned()
        .executable("deploy.sh", "#!/bin/sh\nkubectl apply -f apps/\n")
        .create();
    let push = alice_w.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    let reasons = violation_reasons(&push);
    assert!(!reasons.is_empty(), "{}", push.stderr);
    alice_w.reset_hard(&a3);

    alice_w
        .push(&["origin", "HEAD:refs/heads/prod"])
        .assert_accepted();
    let p1 = alice_w
        .commit("prod: pin")
        .file("prod.yaml", "pinned: true\n")
        .create();
    alice_w
        .push(&["origin", "HEAD:refs/heads/prod"])
        .assert_accepted();
    History {
        server,
        a1,
        b1,
        a2,
        a3,
        refused,
        reasons,
        p1,
    }
}

// =============================================================================================
// 1. tally log

#[test]
fn log_lists_accepted_pushes_in_order_with_commits_and_signers_and_refusals_with_reasons() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let keys = keys();

    let all = server.log(&[]);
    // Newest first, every entry, seqs contiguous down to the init entry.
    let n = all.len() as u64;
    assert_eq!(seqs(&all), (0..n).rev().collect::<Vec<_>>());
    let oldest_first: Vec<&Value> = all.iter().rev().collect();
    let kinds: Vec<(&str, &str)> = oldest_first
        .iter()
        .map(|e| (kind(e), field(e, "ref")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("policy-change", ""),
            ("accepted", "refs/heads/main"),
            ("accepted", "refs/heads/main"),
            ("accepted", "refs/heads/main"),
            ("rejected", "refs/heads/main"),
            ("accepted", "refs/heads/prod"),
            ("accepted", "refs/heads/prod"),
        ]
    );

    // Each accepted push: the move, the tree, and every new commit with its signer.
    let [_, e1, e2, e3, rejected, prod_created, prod_moved] = oldest_first[..] else {
        unreachable!()
    };
    assert_eq!(
        (opt(e1, "old"), opt(e1, "new")),
        (None, Some(h.a1.as_str()))
    );
    assert_eq!(opt(e1, "new_tree"), Some(tree_of(server, &h.a1).as_str()));
    assert_eq!(
        commits(e1),
        [signed_by(&h.a1, "alice@example.com", &keys.alice)]
    );

    assert_eq!(
        (opt(e2, "old"), opt(e2, "new")),
        (Some(h.a1.as_str()), Some(h.b1.as_str()))
    );
    assert_eq!(opt(e2, "new_tree"), Some(tree_of(server, &h.b1).as_str()));
    assert_eq!(
        commits(e2),
        [signed_by(&h.b1, "bob@example.com", &keys.bob)]
    );
    assert_eq!(field(e2, "pusher"), "http:bob");

    assert_eq!(
        (opt(e3, "old"), opt(e3, "new")),
        (Some(h.b1.as_str()), Some(h.a3.as_str()))
    );
    assert_eq!(
        commits(e3),
        [
            signed_by(&h.a2, "alice@example.com", &keys.alice),
            signed_by(&h.a3, "alice@example.com", &keys.alice),
        ],
        "every new commit of the push, oldest first"
    );
    for (_, _, fingerprint) in commits(e3) {
        assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    }

    // The refusal: the ref, the refused commit, and the reasons the pusher was shown.
    assert_eq!(
        (opt(rejected, "old"), opt(rejected, "new")),
        (Some(h.a3.as_str()), Some(h.refused.as_str()))
    );
    assert_eq!(reasons(rejected), h.reasons);
    assert!(
        h.reasons.iter().any(|r| r.contains(short(&h.refused))),
        "{:?}",
        h.reasons
    );
    assert!(commits(rejected).is_empty());
    for e in [e1, e2, e3, prod_created, prod_moved] {
        assert!(reasons(e).is_empty(), "{e}");
    }

    assert_eq!(
        (opt(prod_created, "old"), opt(prod_created, "new")),
        (None, Some(h.a3.as_str()))
    );
    assert_eq!(
        (opt(prod_moved, "old"), opt(prod_moved, "new")),
        (Some(h.a3.as_str()), Some(h.p1.as_str()))
    );
    assert_eq!(
        commits(prod_moved),
        [signed_by(&h.p1, "alice@example.com", &keys.alice)]
    );

    // The newest accepted entry of each branch is its tip.
    for branch in ["main", "prod"] {
        let tip = server.branch(branch).unwrap();
        assert_eq!(
            opt(&latest_landed(server, branch), "new"),
            Some(tip.as_str()),
            "{branch}"
        );
    }
    assert_eq!(server.branch("main").as_deref(), Some(h.a3.as_str()));

    // Every entry carries the same repository id and policy digest, and chains to the previous.
    for pair in all.windows(2) {
        assert_eq!(field(&pair[0], "prev_hash"), field(&pair[1], "leaf_hash"));
        assert_eq!(field(&pair[0], "repository"), field(&pair[1], "repository"));
        assert_eq!(
            field(&pair[0], "policy_digest"),
            field(&pair[1], "policy_digest")
        );
    }
    assert_eq!(field(oldest_first[0], "prev_hash"), "0".repeat(64));
}

#[test]
fn log_filters_by_branch_kind_and_limit() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let all = server.log(&[]);
    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        all.iter().filter(|e| pred(e)).map(seq).collect()
    };

    let prod = server.log(&["--branch", "prod"]);
    assert_eq!(
        seqs(&prod),
        expect(&|e| field(e, "ref") == "refs/heads/prod")
    );
    assert_eq!(prod.len(), 2);
    assert_eq!(
        seqs(&server.log(&["--branch", "refs/heads/prod"])),
        seqs(&prod)
    );
    let main = server.log(&["--branch", "main"]);
    assert_eq!(
        seqs(&main),
        expect(&|e| field(e, "ref") == "refs/heads/main")
    );
    assert_eq!(main.len(), 4, "three accepted pushes and one refusal");
    assert!(server.log(&["--branch", "nosuch"]).is_empty());

    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(seqs(&rejected), expect(&|e| kind(e) == "rejected"));
    assert_eq!(opt(&rejected[0], "new"), Some(h.refused.as_str()));
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(seqs(&accepted), expect(&|e| kind(e) == "accepted"));
    assert_eq!(accepted.len(), 5);
    assert_eq!(seqs(&server.log(&["--kind", "policy-change"])), [0]);
    assert!(server.log(&["--kind", "aborted"]).is_empty());

    let n = all.len() as u64;
    assert_eq!(seqs(&server.log(&["--limit", "2"])), [n - 1, n - 2]);
    assert_eq!(seqs(&server.log(&["--limit", "1000"])).len() as u64, n);
    let newest_main = server.log(&["--branch", "main", "--kind", "accepted", "--limit", "1"]);
    assert_eq!(newest_main.len(), 1);
    assert_eq!(opt(&newest_main[0], "new"), Some(h.a3.as_str()));

    let bad = server.tally(&["log", "--kind", "merged"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown kind is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("accepted, rejected, aborted, policy-change"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn log_text_lists_the_same_entries_as_json() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let check = |args: &[&str]| {
        let json = server.log(args);
        let mut all = vec!["log"];
        all.extend_from_slice(args);
        let out = server.tally(&all);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headers.len(), json.len(), "{args:?}:\n{text}");
        for (header, e) in headers.iter().zip(&json) {
            let start = format!("#{:<6} {:<13} ", seq(e), kind(e));
            assert!(header.starts_with(&start), "{header:?} for {e}");
            if kind(e) != "policy-change" {
                let old = opt(e, "old").map_or("0000000000", short);
                let new = opt(e, "new").map_or("0000000000", short);
                assert!(
                    header.contains(&format!("{} {old}..{new} by ", field(e, "ref"))),
                    "{header:?} for {e}"
                );
            }
            assert!(header.ends_with(&format!(" by {}", field(e, "pusher"))));
        }
        for e in &json {
            for (commit, principal, fingerprint) in commits(e) {
                let line = format!(
                    "commit {} signed by {principal} ({fingerprint})",
                    short(&commit)
                );
                assert!(text.contains(&line), "no {line:?} in:\n{text}");
            }
            for reason in reasons(e) {
                assert!(
                    text.lines().any(|l| l.trim() == reason),
                    "no {reason:?} in:\n{text}"
                );
            }
        }
        text
    };
    let text = check(&[]);
    assert!(text.contains(&format!(
        "commit {} signed by bob@example.com",
        short(&h.b1)
    )));
    check(&["--branch", "prod"]);
    check(&["--kind", "rejected"]);
    check(&["--limit", "3"]);
}

// =============================================================================================
// 2. tally ledger verify

#[test]
fn ledger_verify_passes_after_a_mix_of_pushes() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let n = server.log(&[]).len() as u64;

    let out = server.tally(&["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("ledger intact: {n} entries, ")),
        "{stdout}"
    );

    let (code, json) = verify_json(server);
    assert_eq!(code, Some(0));
    assert_eq!(json["ok"], Value::Bool(true));
    assert_eq!(json["size"].as_u64(), Some(n));
    assert_eq!(json["problems"], Value::Array(vec![]));
    let root = field(&json, "root");
    assert!(
        root.len() == 64 && root.bytes().all(|b| b.is_ascii_hexdigit()),
        "{root}"
    );
    assert!(stdout.contains(&format!("root {root}")), "{stdout}");
    // One checkpoint at creation, one per append (init's, five accepted, one refused).
    assert_eq!(json["checkpoints"].as_u64(), Some(n + 1));

    // Pinned to the ledger's own public key: intact; pinned to another key: not.
    let own = server.tally_dir().join("ledger_key.pub");
    let out = server.tally(&["ledger", "verify", "--ledger-key", own.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let other = keys().mallory.public.to_str().unwrap().to_owned();
    let out = server.tally(&["ledger", "verify", "--ledger-key", &other]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checkpoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No ledger there: a configuration error, not a verdict.
    let plain = env.bare_repo("plain");
    let out = env
        .tally()
        .args(["ledger", "verify", "--repo"])
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

// =============================================================================================
// 3. Concurrent pushers

/// Commits `rounds` files in the clone at `dir` and pushes each to main, retrying with
/// `git pull --rebase` (which re-signs the rebased commits: `commit.gpgsign` is on) whenever
/// the push does not land. Returns how many pushes did not land.
fn race(h: &Hermetic, dir: &Path, client: usize, rounds: usize) -> usize {
    const MAX_ATTEMPTS: usize = 40;
    let git = |args: &[&str]| -> Output { h.git(dir).args(args).output().unwrap() };
    let ok = |args: &[&str]| {
        let out = git(args);
        assert!(
            out.status.success(),
            "client {client}: git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut retries = 0;
    for round in 0..rounds {
        let name = format!("apps/client{client}-round{round}.yaml");
        std::fs::create_dir_all(dir.join("apps")).unwrap();
        std::fs::write(
            dir.join(&name),
            format!("client: {client}\nround: {round}\n"),
        )
        .unwrap();
        ok(&["add", &name]);
        ok(&[
            "commit",
            "-q",
            "-S",
            "-m",
            &format!("client {client} round {round}"),
        ]);
        let mut last = String::new();
        let landed = (0..MAX_ATTEMPTS).any(|_| {
            let push = git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
            if push.status.success() {
                return true;
            }
            last = String::from_utf8_lossy(&push.stderr).into_owned();
            retries += 1;
            ok(&["pull", "-q", "--rebase", "origin", "main"]);
            false
        });
        assert!(
            landed,
            "client {client} round {round} never landed; last push said:\n{last}"
        );
    }
    retries
}

#[test]
fn concurrent_pushers_leave_a_ledger_that_records_every_landed_commit_once() {
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 3;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let seed = env.clone_as(&server, "seed", &alice());
    let base = seed.commit("base").file("base.yaml", BASE_YAML).create();
    seed.push_main_ok();
    let users = [alice(), bob()];
    let dirs: Vec<PathBuf> = (0..CLIENTS)
        .map(|i| {
            env.clone_as(&server, &format!("client{i}"), &users[i % 2])
                .path
        })
        .collect();

    let hermetic = env.hermetic_env();
    let threads: Vec<_> = dirs
        .into_iter()
        .enumerate()
        .map(|(i, dir)| {
            let h = hermetic.clone();
            std::thread::spawn(move || race(&h, &dir, i, ROUNDS))
        })
        .collect();
    let retries: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{CLIENTS} clients, {ROUNDS} rounds each: {retries} pushes had to be retried");

    server.assert_ledger_intact();
    let tip = server.branch("main").unwrap();
    let entries = server.log(&["--branch", "main"]);
    let aborted = aborted_seqs(&entries);
    let mut landed: Vec<&Value> = entries
        .iter()
        .filter(|e| kind(e) == "accepted" && !aborted.contains(&seq(e)))
        .collect();
    landed.reverse();
    assert_eq!(opt(landed.last().unwrap(), "new"), Some(tip.as_str()));

    // The landed entries are the branch's moves, in order: each starts where the last ended.
    assert_eq!(opt(landed[0], "old"), None);
    assert_eq!(opt(landed[0], "new"), Some(base.as_str()));
    for pair in landed.windows(2) {
        assert_eq!(
            opt(pair[1], "old"),
            opt(pair[0], "new"),
            "entry {} does not continue entry {}",
            seq(pair[1]),
            seq(pair[0])
        );
    }

    // Every commit on the branch is in exactly one landed entry, signed by its committer, and
    // no landed entry lists a commit that is not on the branch.
    let history = stdout_of(
        server
            .git()
            .args(["log", "--reverse", "--format=%H %ce", "main"]),
    );
    let on_branch: BTreeMap<String, String> = history
        .lines()
        .map(|l| {
            let (id, email) = l.split_once(' ').unwrap();
            (id.to_owned(), email.to_owned())
        })
        .collect();
    assert_eq!(on_branch.len(), 1 + CLIENTS * ROUNDS);
    let mut recorded: BTreeMap<String, u32> = BTreeMap::new();
    for e in &landed {
        for (commit, principal, fingerprint) in commits(e) {
            assert_eq!(
                on_branch.get(&commit),
                Some(&principal),
                "entry {} lists {commit}, which is not on main with that committer",
                seq(e)
            );
            assert!(fingerprint.starts_with("SHA256:"));
            *recorded.entry(commit).or_default() += 1;
        }
    }
    let twice: Vec<_> = recorded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let missing: Vec<_> = on_branch
        .keys()
        .filter(|c| !recorded.contains_key(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "on main but in no accepted entry: {missing:?}"
    );
}

// =============================================================================================
// 4. Server-side moves

/// A signed commit on the server that main could be moved to, pushed to an unprotected branch.
fn side_commit(work: &Work<'_>, name: &str) -> String {
    let id = work
        .commit(name)
        .file(&format!("{name}.yaml"), "side: true\n")
        .create();
    work.push(&["origin", &format!("HEAD:refs/heads/side-{name}")])
        .assert_accepted();
    id
}

/// Runs git in the bare repository with the hooks active; returns the output.
fn server_git(server: &Server<'_>, args: &[&str]) -> Output {
    server.git().args(args).output().unwrap()
}

/// Asserts a server-side git command was refused by the reference-transaction hook, main did
/// not move, and the newest entry is a `rejected` one recording the attempt.
fn assert_move_refused(
    server: &Server<'_>,
    args: &[&str],
    main: &str,
    old: Option<&str>,
    new: Option<&str>,
) {
    let before = server.log(&[]).len();
    let out = server_git(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "git {args:?} should fail:\n{stderr}");
    assert!(
        stderr.contains("refs/heads/main moved outside an accepted push"),
        "git {args:?}:\n{stderr}"
    );
    assert_eq!(
        server.branch("main").as_deref(),
        Some(main),
        "git {args:?} moved main"
    );
    let entries = server.log(&[]);
    assert_eq!(entries.len(), before + 1, "git {args:?}: one new entry");
    let e = &entries[0];
    assert_eq!(kind(e), "rejected", "{e}");
    assert_eq!(field(e, "ref"), "refs/heads/main");
    assert_eq!((opt(e, "old"), opt(e, "new")), (old, new), "git {args:?}");
    let r = reasons(e);
    assert!(
        r.len() == 1 && r[0].starts_with("refs/heads/main moved outside an accepted push"),
        "{r:?}"
    );
    server.assert_ledger_intact();
}

#[test]
fn server_side_update_ref_of_a_protected_branch_is_refused_and_recorded() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let other = side_commit(&work, "other");

    // Without an expected old value git passes the zero id as the old value; the entry
    // records where the branch actually was.
    assert_move_refused(
        &server,
        &["update-ref", "refs/heads/main", &other],
        &base,
        Some(&base),
        Some(&other),
    );
    assert_move_refused(
        &server,
        &["update-ref", "refs/heads/main", &other, &base],
        &base,
        Some(&base),
        Some(&other),
    );
    assert_move_refused(
        &server,
        &[
            "update-ref",
            "-m",
            "hotfix",
            "refs/heads/main",
            &other,
            &base,
        ],
        &base,
        Some(&base),
        Some(&other),
    );
    let out = run_with_stdin(
        server.git().args(["update-ref", "--stdin"]),
        format!("update refs/heads/main {other} {base}\n").as_bytes(),
    );
    assert!(!out.status.success());
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
}

#[test]
fn server_side_branch_force_of_a_protected_branch_is_refused_and_recorded() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let other = side_commit(&work, "other");
    assert_move_refused(
        &server,
        &["branch", "-f", "main", &other],
        &base,
        Some(&base),
        Some(&other),
    );
}

#[test]
fn server_side_deletion_of_a_protected_branch_with_its_old_value_is_refused_and_recorded() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    assert_move_refused(
        &server,
        &["update-ref", "-d", "refs/heads/main", &base],
        &base,
        Some(&base),
        None,
    );
}

#[test]
fn server_side_deletion_of_a_protected_branch_without_old_value_is_refused() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let mut failures = Vec::new();
    for args in [
        &["update-ref", "-d", "refs/heads/main"][..],
        &["branch", "-D", "main"][..],
    ] {
        // Each command starts from main at base (put back with the hooks off if the previous
        // one deleted it).
        run_ok(
            server
                .git()
                .args(["-c", NO_HOOKS, "update-ref", "refs/heads/main", &base]),
        );
        let before = server.log(&[]).len();
        let out = server_git(&server, args);
        let entries = server.log(&[]);
        if out.status.success() {
            failures.push(format!("git {args:?} exited 0"));
        }
        if server.branch("main").as_deref() != Some(base.as_str()) {
            failures.push(format!("git {args:?} deleted main"));
        }
        if entries.len() != before + 1
            || kind(&entries[0]) != "rejected"
            || opt(&entries[0], "new").is_some()
        {
            failures.push(format!("git {args:?} was not recorded as rejected"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn verify_reports_a_protected_branch_moved_with_the_hooks_bypassed() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let other = side_commit(&work, "other");
    run_ok(
        server
            .git()
            .args(["-c", NO_HOOKS, "update-ref", "refs/heads/main", &other]),
    );
    assert_verify_fails(
        &server,
        "main moved with the hooks off",
        &[&format!(
            "refs/heads/main points to {other} but the ledger records it at {base}"
        )],
    );
}

#[test]
fn verify_reports_a_protected_branch_deleted_with_the_hooks_bypassed() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    run_ok(
        server
            .git()
            .args(["-c", NO_HOOKS, "update-ref", "-d", "refs/heads/main"]),
    );
    assert_eq!(server.branch("main"), None);
    assert_verify_fails(
        &server,
        "main deleted with the hooks off",
        &["refs/heads/main"],
    );
}

// =============================================================================================
// 5. refs/tally/ledger is tally's alone

#[test]
fn a_push_to_the_ledger_ref_is_refused_and_never_lands() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let published = server.rev("refs/tally/ledger").unwrap();

    // Forced, so that git push does not refuse the non-fast-forward itself.
    let push = work.push(&["origin", "+HEAD:refs/tally/ledger"]);
    push.assert_refused();
    push.line_with(&["refs/tally/ledger is reserved for tally's ledger"]);
    let rejected = &server.log(&["--limit", "1"])[0];
    assert_eq!(kind(rejected), "rejected");
    assert_eq!(field(rejected, "ref"), "refs/tally/ledger");
    assert_eq!(opt(rejected, "new"), Some(base.as_str()));

    // Deleting it and creating a sibling are refused too.
    work.push(&["origin", ":refs/tally/ledger"])
        .assert_refused();
    work.push(&["origin", "HEAD:refs/tally/other"])
        .assert_refused();
    assert_eq!(server.rev("refs/tally/other"), None);

    // The ref only ever moved forward through tally's own publications.
    let tip = server.rev("refs/tally/ledger").unwrap();
    let chain = stdout_of(server.git().args(["rev-list", "refs/tally/ledger"]));
    assert!(!chain.lines().any(|c| c == base), "{chain}");
    assert!(chain.lines().any(|c| c == published));
    let range = stdout_of(
        server
            .git()
            .args(["cat-file", "blob", &format!("{tip}:range")]),
    );
    let size = server.log(&[]).len();
    assert!(range.ends_with(&format!(" {size}")), "{range}");
    server.assert_ledger_intact();

    // On the server, with the hooks active, it cannot be moved by hand either.
    let out = server_git(&server, &["update-ref", "refs/tally/ledger", &base]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refs/tally/ledger is reserved for tally's ledger"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = stdout_of(server.git().args(["rev-list", "refs/tally/ledger"]));
    assert!(!chain.lines().any(|c| c == base), "{chain}");
    server.assert_ledger_intact();
}

// =============================================================================================
// 6. kill -9 in the middle of an append

/// Runs `tally hook <args>` in the repository as git would, with `input` on stdin, and
/// SIGKILLs it once `delay` has passed if it is still running. Returns how it ended and how
/// long it ran.
fn run_hook_killed_after(
    env: &TestEnv,
    server: &Server<'_>,
    args: &[&str],
    input: &str,
    delay: Duration,
) -> (ExitStatus, Duration) {
    let mut cmd = env.tally();
    cmd.arg("hook")
        .args(args)
        .env("GIT_DIR", &server.path)
        .current_dir(&server.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        if start.elapsed() >= delay {
            // SIGKILL: no destructor, no SQLite rollback, no cleanup of any kind.
            let _ = child.kill();
            return (child.wait().unwrap(), start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The problems `tally ledger verify --json` reports, split into "the branch and the ledger
/// disagree" (a crash between `prepared` and git's reaction to it, see the ignored tests below)
/// and everything else (the store, its checkpoints or the publication damaged).
fn verify_problems(server: &Server<'_>) -> (Vec<String>, Vec<String>) {
    let (code, json) = verify_json(server);
    let problems: Vec<String> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(code == Some(0), problems.is_empty(), "{json}");
    problems
        .into_iter()
        .partition(|p| p.contains("but the ledger records it at"))
}

/// Kills `reference-transaction prepared` at evenly spread instants of its run (one run per
/// instant, each for a new verdict), then does what git does next, and checks the ledger after
/// each. With `strict`, `tally ledger verify` must exit 0 after every crash; otherwise only
/// the store, its checkpoints and the publication must be intact, and a disagreement between
/// main and its latest accepted entry is printed as a finding. Either way the store must take
/// the next real push and then verify.
fn kill_prepared_at_many_points(strict: bool) {
    const RUNS: u32 = 16;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();

    let mut full = Duration::from_millis(20);
    let mut mismatches = Vec::new();
    let mut outcomes = BTreeMap::<&str, u32>::new();
    for run in 0..=RUNS {
        // A commit main can fast-forward to, already on the server (an unprotected branch),
        // judged by pre-receive as a push to main would be: its verdict waits in pending/.
        let next = work
            .commit(&format!("run {run}"))
            .file(&format!("apps/run{run}.yaml"), format!("run: {run}\n"))
            .create();
        work.push(&["origin", "HEAD:refs/heads/incoming"])
            .assert_accepted();
        let old = server.branch("main").unwrap();
        let input = format!("{old} {next} refs/heads/main\n");
        let pre = server.run_pre_receive(input.as_bytes());
        assert!(pre.status.success(), "{pre:?}");

        // Run 0 is uninterrupted and sets the time scale; the others are killed at evenly
        // spread instants across it.
        let delay = match run {
            0 => Duration::from_secs(30),
            _ => full * (run - 1) / (RUNS - 1),
        };
        let (status, ran) = run_hook_killed_after(
            &env,
            &server,
            &["reference-transaction", "prepared"],
            &input,
            delay,
        );
        if run == 0 {
            assert!(status.success(), "prepared, uninterrupted: {status}");
            full = ran;
        }
        // What git does next: a hook that exited 0 lets the update happen (then `committed`);
        // a hook that died makes git abort the transaction (then `aborted`).
        if status.success() {
            *outcomes.entry("completed").or_default() += 1;
            run_ok(server.git().args([
                "-c",
                NO_HOOKS,
                "update-ref",
                "refs/heads/main",
                &next,
                &old,
            ]));
            let out = server.run_reference_transaction("committed", input.as_bytes());
            assert!(out.status.success(), "{out:?}");
        } else {
            *outcomes.entry("killed").or_default() += 1;
            let out = server.run_reference_transaction("aborted", input.as_bytes());
            assert!(out.status.success(), "{out:?}");
        }
        let (mismatch, damage) = verify_problems(&server);
        assert!(
            damage.is_empty(),
            "run {run}: killed after {delay:?}: the ledger is damaged: {damage:?}"
        );
        assert!(
            !strict || mismatch.is_empty(),
            "run {run}: killed after {delay:?} (prepared takes {full:?}): {mismatch:?}"
        );
        if !mismatch.is_empty() {
            mismatches.push((run, delay, mismatch));
        }
    }
    eprintln!("prepared takes {full:?} uninterrupted; outcomes {outcomes:?}");
    // Reported, not hidden: see the ignored tests kill_9_during_the_accepted_append_* and
    // kill_9_after_the_append_commits_before_the_inflight_marker_leaves_a_verifying_ledger.
    if !mismatches.is_empty() {
        eprintln!("FINDING: branch and ledger disagree after a kill: {mismatches:?}");
    }

    // The store takes the next real push, and then agrees with the branch again.
    work.push_main_ok();
    let tip = server.branch("main").unwrap();
    assert_eq!(tip, work.head());
    assert_eq!(
        opt(&latest_landed(&server, "main"), "new"),
        Some(tip.as_str())
    );
    server.assert_ledger_intact();
}

#[test]
fn kill_9_during_the_accepted_append_leaves_a_store_that_verifies_and_takes_the_next_push() {
    kill_prepared_at_many_points(false);
}

#[test]
fn kill_9_during_the_accepted_append_leaves_a_ledger_that_verifies_after_every_crash() {
    kill_prepared_at_many_points(true);
}

#[test]
fn kill_9_during_the_rejected_append_leaves_a_ledger_that_verifies() {
    const RUNS: u32 = 12;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let bad = work
        .commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/incoming"])
        .assert_accepted();
    let input = format!("{base} {bad} refs/heads/main\n");
    let (status, full) = run_hook_killed_after(
        &env,
        &server,
        &["pre-receive"],
        &input,
        Duration::from_secs(30),
    );
    assert_eq!(
        status.code(),
        Some(1),
        "pre-receive refuses the unsigned commit"
    );
    let mut killed = 0;
    for run in 0..RUNS {
        let delay = full * run / (RUNS - 1);
        let (status, _) = run_hook_killed_after(&env, &server, &["pre-receive"], &input, delay);
        killed += u32::from(status.code().is_none());
        let (code, json) = verify_json(&server);
        assert_eq!(code, Some(0), "killed after {delay:?}: {json}");
    }
    eprintln!("pre-receive takes {full:?} uninterrupted; {killed} of {RUNS} runs killed");
    // The next refusal and the next accepted push are recorded.
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    assert_eq!(kind(&server.log(&["--limit", "1"])[0]), "rejected");
    work.reset_hard(&base);
    let next = work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push_main_ok();
    assert_eq!(
        opt(&latest_landed(&server, "main"), "new"),
        Some(next.as_str())
    );
    server.assert_ledger_intact();
}

/// Sets up main at a base commit and a verdict for `main: base -> next` left by pre-receive;
/// returns the server, `next` and the hook input for that update.
fn pending_move<'e>(env: &'e TestEnv) -> (Server<'e>, String, String) {
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let next = work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push(&["origin", "HEAD:refs/heads/incoming"])
        .assert_accepted();
    let input = format!("{base} {next} refs/heads/main\n");
    let pre = server.run_pre_receive(input.as_bytes());
    assert!(pre.status.success(), "{pre:?}");
    (server, next, input)
}

/// Regression: a kill -9 of `prepared` after `Store::append` committed used to leave an
/// accepted entry that `aborted` could not find (the in-flight marker was written after the
/// append). The marker now goes down first, so the state at that instant is: marker present,
/// entry appended, verdict still pending. git, seeing the hook die, runs `aborted`.
#[test]
fn kill_9_after_the_append_commits_leaves_a_verifying_ledger() {
    let env = TestEnv::new();
    let (server, next, input) = pending_move(&env);
    let pending = server.tally_dir().join("pending");
    let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&pending)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert_eq!(saved.len(), 1);
    let markers = || -> Vec<String> {
        std::fs::read_dir(server.tally_dir().join("inflight"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    let out = server.run_reference_transaction("prepared", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    let left = markers();
    assert!(
        left.iter().any(|m| m.contains(next.as_str())),
        "prepared leaves an in-flight marker for the move: {left:?}"
    );
    for (p, bytes) in &saved {
        std::fs::write(p, bytes).unwrap();
    }
    let out = server.run_reference_transaction("aborted", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    server.assert_ledger_intact();
    let aborted = server.log(&["--kind", "aborted"]);
    assert_eq!(aborted.len(), 1);
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(accepted[0]["new"].as_str(), Some(next.as_str()));
    assert_eq!(aborted[0]["aborts"], accepted[0]["seq"]);
}

/// Regression (issue 3, one-commit push cost): `committed` starts no tally process, so the
/// in-flight marker of every landed push used to stay until a `prepared` found it older than
/// 60 s, and every push read all of them. A marker whose ref has left its old value is now
/// dropped by the next `prepared`, however young.
#[test]
fn in_flight_markers_do_not_pile_up() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let dir = server.tally_dir().join("inflight");
    let markers = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tips = Vec::new();
    for i in 0..5 {
        let tip = work
            .commit(&format!("change {i}"))
            .file("base.yaml", format!("{BASE_YAML}i: {i}\n"))
            .create();
        work.push_main_ok();
        tips.push(tip);
        let left = markers();
        assert_eq!(left.len(), 1, "after push {i}: {left:?}");
        assert!(left[0].contains(tips[i].as_str()), "{left:?}");
    }
    server.assert_ledger_intact();
    assert_eq!(server.log(&["--kind", "aborted"]).len(), 0);
}

/// When git dies after `prepared` appended the accepted entry but before it moved the ref
/// (kill -9 of receive-pack, power loss), neither `committed` nor `aborted` runs. Until the
/// next ref transaction, `tally ledger verify` reports the mismatch; the next `prepared`
/// settles the stale in-flight marker with an `aborted` entry, and the ledger agrees with the
/// branch again.
#[test]
fn crash_between_prepared_and_committed_is_settled_by_the_next_push() {
    let env = TestEnv::new();
    let (server, next, input) = pending_move(&env);
    let out = server.run_reference_transaction("prepared", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    // git is gone: the ref did not move, no further hook runs.
    let verify = server.tally(&["ledger", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("but the ledger records it at"),
        "{verify:?}"
    );
    // Age the marker past the point where a live transaction could still own it.
    let dir = server.tally_dir().join("inflight");
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[3] = "1000000000".into();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    let work = env.clone_as(&server, "again", &alice());
    work.commit("after the crash")
        .file("after.yaml", "after: 1\n")
        .create();
    work.push(&["origin", "HEAD:main"]).assert_accepted();
    server.assert_ledger_intact();
    let aborted = server.log(&["--kind", "aborted"]);
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    let cancelled = server
        .log(&["--kind", "accepted"])
        .into_iter()
        .find(|e| e["new"].as_str() == Some(next.as_str()))
        .unwrap();
    assert_eq!(aborted[0]["aborts"], cancelled["seq"]);
    // The crashed transaction's marker is gone (the last push may leave its own).
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!text.contains(next.as_str()), "{text}");
    }
}

// =============================================================================================
// 7. Tampering with a copy of the store, and with refs/tally/ledger

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
        &[&format!("entries {last} to {last} are missing")],
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
fn craft_publication(server: &Server<'_>, name: &str, bytes: &[u8]) -> String {
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

// =============================================================================================
// 8. tally ledger key, tally ledger checkpoint

#[test]
fn ledger_key_json_gives_the_openssh_line_and_the_note_verifier_key() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let text = server.tally(&["ledger", "key"]);
    let json = server.tally(&["ledger", "key", "--json"]);
    assert!(json.status.success(), "{json:?}");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let line = String::from_utf8(text.stdout).unwrap();
    assert_eq!(v["openssh"].as_str(), Some(line.trim_end()));
    let origin = v["origin"].as_str().unwrap();
    assert!(line.trim_end().ends_with(origin), "{line}");
    // C2SP note verifier key: <name>+<8 hex digits key id>+<base64(0x01 || key)>.
    let vkey = v["note_verifier_key"].as_str().unwrap();
    // Key names never contain '+', base64 may: split from the left.
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "{vkey}");
    assert_eq!(parts[0], origin);
    assert_eq!(parts[1].len(), 8);
    assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()), "{vkey}");
}

#[test]
fn ledger_key_prints_the_public_key_and_the_private_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let out = server.tally(&["ledger", "key"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("ssh-ed25519 "), "{stdout}");
    let public = std::fs::read_to_string(server.tally_dir().join("ledger_key.pub")).unwrap();
    let key_of = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(key_of(&stdout), key_of(&public));
    let mode = std::fs::metadata(server.tally_dir().join("ledger_key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "ledger_key has mode {:o}",
        mode & 0o777
    );

    let out = env
        .tally()
        .args(["ledger", "key", "--repo"])
        .arg(env.root().join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn ledger_checkpoint_signs_the_head_again_and_advances_the_published_ref() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let size = server.log(&[]).len();
    let (_, before_json) = verify_json(&server);
    let before = server.rev("refs/tally/ledger").unwrap();

    // A checkpoint carries its signing time in whole seconds and Ed25519 is deterministic, so
    // one signed in the same second as the push's would be the very note already published.
    wait_for_the_next_second();
    let out = server.tally(&["ledger", "checkpoint", "--print"]);
    assert!(out.status.success(), "{out:?}");
    let note = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 6, "{note}");
    assert!(lines[0].starts_with("tally/server.git/"), "{note}");
    assert_eq!(lines[1], size.to_string());
    assert_eq!(lines[2].len(), 44, "base64 of 32 bytes: {note}");
    assert_eq!(lines[3], "");
    for sig in &lines[4..] {
        assert!(
            sig.starts_with(&format!("\u{2014} {} ", lines[0])),
            "{note}"
        );
    }

    let after = server.rev("refs/tally/ledger").unwrap();
    assert_ne!(after, before);
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", &format!("{after}^")])),
        before
    );
    let published = run_ok(
        server
            .git()
            .args(["cat-file", "blob", &format!("{after}:checkpoint")]),
    )
    .stdout;
    assert_eq!(String::from_utf8(published).unwrap(), note);
    let range = stdout_of(
        server
            .git()
            .args(["cat-file", "blob", &format!("{after}:range")]),
    );
    assert_eq!(range, format!("{size} {size}"));

    let (code, after_json) = verify_json(&server);
    assert_eq!(code, Some(0));
    assert_eq!(after_json["size"], before_json["size"]);
    assert_eq!(after_json["root"], before_json["root"]);
    assert_eq!(
        after_json["checkpoints"].as_u64(),
        before_json["checkpoints"].as_u64().map(|c| c + 1)
    );

    // Issue 11, item 5: the next heartbeat replaces this one instead of adding a commit, so
    // the ref's history grows with entries, not with heartbeats; the fresh note is published.
    let count = |rev: &str| stdout_of(server.git().args(["rev-list", "--count", rev]));
    let commits = count("refs/tally/ledger");
    wait_for_the_next_second();
    let out = server.tally(&["ledger", "checkpoint", "--print"]);
    assert!(out.status.success(), "{out:?}");
    let again = server.rev("refs/tally/ledger").unwrap();
    assert_ne!(again, after);
    assert_eq!(count("refs/tally/ledger"), commits);
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", &format!("{again}^")])),
        before
    );
    let published = run_ok(
        server
            .git()
            .args(["cat-file", "blob", &format!("{again}:checkpoint")]),
    )
    .stdout;
    assert_eq!(
        String::from_utf8(published).unwrap(),
        String::from_utf8(out.stdout).unwrap()
    );
    let (code, _) = verify_json(&server);
    assert_eq!(code, Some(0));

    // Without --print it prints nothing, so cron mails nothing.
    let quiet = server.tally(&["ledger", "checkpoint"]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
    // (It may have replaced the heartbeat above, if the second turned in between.)
    let again = server.rev("refs/tally/ledger").unwrap();
    assert_eq!(count("refs/tally/ledger"), commits);

    // A push after heartbeats publishes its entries on top, as usual.
    work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    let tip = server.rev("refs/tally/ledger").unwrap();
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", &format!("{tip}^")])),
        again
    );
    server.assert_ledger_intact();
}

// =============================================================================================
// 9. Policy changes

#[test]
fn a_policy_change_is_recorded_before_the_next_entry() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let digest_before = field(&server.log(&["--limit", "1"])[0], "policy_digest").to_owned();

    server.edit_policy(
        r#"protected = ["main"]"#,
        r#"protected = ["main", "release/*"]"#,
    );
    let next = work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push_main_ok();
    let entries = server.log(&["--limit", "2"]);
    let [accepted, change] = &entries[..] else {
        unreachable!()
    };
    assert_eq!(kind(change), "policy-change");
    assert_eq!(field(change, "ref"), "");
    assert_ne!(field(change, "policy_digest"), digest_before);
    assert_eq!(
        reasons(change),
        ["policy.toml, allowed_signers or the revocation file changed"]
    );
    assert_eq!(kind(accepted), "accepted");
    assert_eq!(seq(accepted), seq(change) + 1);
    assert_eq!(
        (opt(accepted, "old"), opt(accepted, "new")),
        (Some(base.as_str()), Some(next.as_str()))
    );
    assert_eq!(
        field(accepted, "policy_digest"),
        field(change, "policy_digest")
    );

    // A change of allowed_signers, then a refused push: the change precedes the refusal.
    let signers = server.tally_dir().join("allowed_signers");
    let mut text = std::fs::read_to_string(&signers).unwrap();
    text.push_str(&format!("carol@example.com {}\n", keys().p256.public_line));
    std::fs::write(&signers, text).unwrap();
    work.commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    let entries = server.log(&["--limit", "2"]);
    assert_eq!(
        entries.iter().map(kind).collect::<Vec<_>>(),
        ["rejected", "policy-change"]
    );
    assert_ne!(
        field(&entries[1], "policy_digest"),
        field(accepted, "policy_digest")
    );
    assert_eq!(
        field(&entries[0], "policy_digest"),
        field(&entries[1], "policy_digest")
    );

    let out = server.tally(&["log", "--kind", "policy-change"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with('#')).count(),
        3,
        "{text}"
    );
    assert!(
        text.contains(&format!("policy {}", &field(change, "policy_digest")[..12])),
        "{text}"
    );
    server.assert_ledger_intact();
}

/// Regression: `--repo ../server.git` from inside another repository's work tree used to fail
/// ("../.git/objects wasn't a directory"): gix resolved the relative path against the clone
/// around the current directory.
#[test]
fn a_relative_repo_path_works_from_inside_another_clone() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let relative = Path::new("..").join(server.path.file_name().unwrap());
    for args in [&["log", "--json"][..], &["ledger", "verify"][..]] {
        let out = env
            .tally()
            .current_dir(&work.path)
            .args(args)
            .arg("--repo")
            .arg(&relative)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let out = env
        .tally()
        .current_dir(&work.path)
        .args(["log", "--repo", "../no-such.git"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("../no-such.git cannot be opened"),
        "{out:?}"
    );
}

/// tally writes the publication's loose objects itself (small ones as stored zlib blocks): git
/// must read them as its own, and `git fsck --strict` must find nothing wrong.
#[test]
fn published_objects_are_objects_git_reads() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push_main_ok();
    let git = |args: &[&str]| run_ok(server.git().args(args)).stdout;
    let size = server.log(&[]).len();
    let range = String::from_utf8(git(&["cat-file", "blob", "refs/tally/ledger:range"])).unwrap();
    let first: usize = range.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(range, format!("{first} {size}\n"));
    let note = git(&["cat-file", "blob", "refs/tally/ledger:checkpoint"]);
    assert!(
        String::from_utf8_lossy(&note).contains(&format!("\n{size}\n")),
        "{}",
        String::from_utf8_lossy(&note)
    );
    let out = server
        .git()
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{out:?}");
}

/// Plain git over ssh: everyone pushes as one account, and with `ExposeAuthInfo yes` sshd
/// names the key that logged in (`SSH_USER_AUTH`); the ledger records the account and that
/// key's fingerprint (for a certificate, its key, key id and CA), for accepted and refused
/// pushes alike.
#[test]
fn the_ssh_login_key_is_recorded_as_the_pusher() {
    let env = TestEnv::new();
    let keys = keys();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let auth = env.write(
        "ssh-user-auth",
        &format!("publickey {}\n", keys.bob.public_line),
    );
    let auth = auth.display().to_string();
    let env_vars = [("SSH_USER_AUTH", auth.as_str()), ("USER", "git")];
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_with_env(&["origin", "HEAD:refs/heads/main"], &env_vars)
        .assert_accepted();
    work.commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    work.push_with_env(&["origin", "HEAD:refs/heads/main"], &env_vars)
        .assert_refused();
    let expected = format!("ssh:git key {}", keys.bob.fingerprint);
    let log = server.log(&[]);
    for kind in ["accepted", "rejected"] {
        let e = log.iter().find(|e| e["kind"] == kind).unwrap();
        assert_eq!(e["pusher"].as_str(), Some(expected.as_str()), "{kind}: {e}");
    }

    let cert = env.certify(&keys.alice, &keys.ca, "alice@example.com", None);
    let cert_line = std::fs::read_to_string(&cert).unwrap();
    let mut fields = cert_line.split_whitespace();
    let cert_line = format!("{} {}", fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(&auth, format!("publickey {cert_line}\n")).unwrap();
    work.reset_hard("HEAD~1");
    work.commit("by certificate")
        .file("c.yaml", "c: 1\n")
        .create();
    work.push_with_env(&["origin", "HEAD:refs/heads/main"], &env_vars)
        .assert_accepted();
    let newest = &server.log(&["--kind", "accepted", "--limit", "1"])[0];
    assert_eq!(
        newest["pusher"].as_str(),
        Some(
            format!(
                "ssh:git key {} (certificate \"test-cert\" from CA {})",
                keys.alice.fingerprint, keys.ca.fingerprint
            )
            .as_str()
        ),
        "{newest}"
    );
}
