//! End-to-end tests of the ledger: real pushes with the real `git` binary to a bare repository
//! set up by `tally init`, then what a user relies on, read back through `tally log --json`,
//! `tally ledger verify|key|checkpoint` and `refs/tally/ledger`.
//!
//! Tests marked `#[ignore = "bug: ..."]` or `#[ignore = "finding: ..."]` state what must hold
//! and fail today; the reason says how.

mod clone;
mod concurrent;
mod crash;
mod key;
mod log;
mod postgres;
mod records;
mod refs;
mod replicas;
mod tamper;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
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

/// The SQLite store of a repository.
fn db(server: &Server<'_>) -> PathBuf {
    server.tally_dir().join("ledger.sqlite")
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
