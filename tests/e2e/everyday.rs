//! Issue 13, everyday use: `tally init` on a repository it already guards (a new branch, new
//! signers) records the change at once; errors name the files the user gave; quiet and JSON
//! output of the ledger commands.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::*;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tally init <repo> --allowed-signers <signers> <extra>`.
fn init(env: &TestEnv, repo: &Path, signers: &Path, extra: &[&str]) -> Output {
    env.tally()
        .arg("init")
        .arg(repo)
        .arg("--allowed-signers")
        .arg(signers)
        .args(extra)
        .output()
        .unwrap()
}

/// Exports the ledger and verifies the bundle against the repository's public key; panics
/// with the output if either fails.
fn export_and_verify(env: &TestEnv, server: &Server<'_>, name: &str) -> PathBuf {
    let dir = env.root().join(name);
    let out = server.tally(&["export", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "export: {}", stderr(&out));
    let pinned = server.tally_dir().join("ledger_key.pub");
    let out = env
        .tally()
        .args(["export", "verify"])
        .arg(&dir)
        .arg("--ledger-key")
        .arg(&pinned)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "export verify: {}{}",
        stdout(&out),
        stderr(&out)
    );
    dir
}

/// Issue 13: `tally init --branch new` on a guarded repository adds the branch to the policy
/// (it used to be ignored while the existing policy was kept), records the change as a
/// `policy-change` entry at once, publishes it, and the next push to `new` is guarded.
#[test]
fn init_with_a_new_branch_on_a_guarded_repository_adds_and_records_it() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let before = server.log(&[]);
    let published_before = server.rev("refs/tally/ledger");

    let signers = env.root().join("allowed_signers");
    let out = init(&env, &server.path, &signers, &["--branch", "new"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("policy.toml: updated (added protected branches: new)"),
        "{text}"
    );
    assert!(
        text.contains("protected branches (the existing policy's, and added: new): main, new"),
        "{text}"
    );
    assert!(
        text.contains("recorded the policy change as entry #"),
        "{text}"
    );
    let policy = std::fs::read_to_string(server.policy_path()).unwrap();
    assert!(
        policy.contains("protected = [\"main\", \"new\"]"),
        "{policy}"
    );
    // The commented defaults are kept.
    assert!(
        policy.contains("# tally policy for this repository"),
        "{policy}"
    );

    // Recorded at once, not at the next push, and published.
    let log = server.log(&[]);
    assert_eq!(log.len(), before.len() + 1);
    assert_eq!(log[0]["kind"], "policy-change");
    assert_eq!(log[0]["ref"], "");
    assert_eq!(
        log[0]["reasons"][0],
        "tally init: protected branch added: new"
    );
    assert_ne!(log[0]["policy_digest"], before[0]["policy_digest"]);
    assert_ne!(server.rev("refs/tally/ledger"), published_before);
    server.assert_ledger_intact();
    export_and_verify(&env, &server, "bundle");

    // A second run changes nothing and records nothing.
    let out = init(&env, &server.path, &signers, &["--branch", "new"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ledger.sqlite: unchanged"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.log(&[]).len(), log.len());

    // The new branch is guarded: an unsigned push is refused, a signed one lands.
    work.commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:new"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    assert_eq!(server.branch("new"), None);
    work.git_ok(&["reset", "-q", "--hard", "HEAD~1"]);
    work.commit("signed").file("b.yaml", "b: 2\n").create();
    let push = work.push(&["origin", "HEAD:new"]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    let log = server.log(&["--branch", "new"]);
    assert_eq!(log[0]["kind"], "accepted");
    server.assert_ledger_intact();
}

/// Issue 13: new signers given to `tally init` are recorded at once, so an export made before
/// the next push ships a policy an entry carries.
#[test]
fn init_with_new_signers_records_the_change_before_any_push() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let alice_only = env.write(
        "alice_only",
        &AllowedSigners::new()
            .signer("alice@example.com", &keys().alice)
            .text(),
    );
    let out = init(&env, &repo, &alice_only, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let server = env.server_at(repo);
    assert_eq!(server.log(&[]).len(), 1);
    let both = env.write("both", &alice_and_bob().text());
    let out = init(&env, &server.path, &both, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = server.log(&[]);
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["kind"], "policy-change");
    let reason = log[0]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("tally init: allowed_signers replaced by ") && reason.ends_with("both"),
        "{reason}"
    );
    let dir = export_and_verify(&env, &server, "bundle");
    let description: Value =
        serde_json::from_slice(&std::fs::read(dir.join("export.json")).unwrap()).unwrap();
    assert_eq!(description["policy_digest"], log[0]["policy_digest"]);
}

/// A policy changed by hand is carried by no entry until something records it: export refuses
/// to ship it (exit 2, saying how to record it), `tally ledger checkpoint` records it.
#[test]
fn export_refuses_a_policy_no_entry_carries_until_checkpoint_records_it() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    server.set_max_size(4096);
    let dir = env.root().join("bundle");
    let out = server.tally(&["export", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("is carried by no ledger entry"), "{err}");
    assert!(err.contains("tally ledger checkpoint"), "{err}");

    let out = server.tally(&["ledger", "checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "checkpoint prints nothing on success");
    let log = server.log(&[]);
    assert_eq!(log[0]["kind"], "policy-change");
    assert_eq!(
        log[0]["reasons"][0],
        "policy.toml, allowed_signers or the revocation file changed (recorded by tally ledger checkpoint)"
    );
    export_and_verify(&env, &server, "bundle2");
}

/// Issue 13: `tally ledger checkpoint` is silent on success; `--print` prints the note,
/// `--json` an object, and a failure with `--json` the error object with its exit status.
#[test]
fn ledger_checkpoint_is_quiet_unless_asked() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let out = server.tally(&["ledger", "checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");

    let out = server.tally(&["ledger", "checkpoint", "--print"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let note = stdout(&out);
    assert!(note.starts_with("tally/server.git/"), "{note}");
    assert!(note.contains("\n— "), "a signed note: {note}");

    let out = server.tally(&["ledger", "checkpoint", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["size"], 1);
    assert_eq!(v["root"].as_str().unwrap().len(), 64);
    assert!(v["note"].as_str().unwrap().starts_with("tally/server.git/"));

    let missing = env.root().join("missing.git");
    let out = env
        .tally()
        .args(["ledger", "checkpoint", "--json", "--repo"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["exit"], 2);
    assert_eq!(v["error"]["class"], "config");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.git"),
        "{v}"
    );
}

/// Issue 13: allowed_signers errors name the file as the user gave it, `<path>:<line>:`, and a
/// `.pub` file given by mistake is told to start its line with the signer's email.
#[test]
fn init_names_the_signers_file_given_and_explains_a_pub_file() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    std::fs::copy(&keys().alice.public, env.root().join("alice.pub")).unwrap();
    let out = env
        .tally()
        .arg("init")
        .arg(&repo)
        .args(["--allowed-signers", "./alice.pub"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        "tally: error: ./alice.pub:1: line 1 has no principal: start the line with the signer's email, e.g. \"alice@example.com ssh-ed25519 AAAA...\"\n"
    );
    assert!(!repo.join("tally").exists(), "nothing written");

    let bad = format!(
        "{}bob@example.com ssh-ed25519 not-base64!!\n",
        AllowedSigners::new()
            .signer("alice@example.com", &keys().alice)
            .text()
    );
    std::fs::write(env.root().join("signers"), bad).unwrap();
    let out = env
        .tally()
        .arg("init")
        .arg(&repo)
        .args(["--allowed-signers", "./signers"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("tally: error: ./signers:2: invalid ssh-ed25519 key"),
        "{err}"
    );
    assert!(!err.contains("tally/allowed_signers"), "{err}");
}

/// Issue 13: `--json` on `init` and `export` prints one object of the shape every command
/// with `--json` that does something shares: `ok`, then the result or the error with its
/// exit status, which is also the process's.
#[test]
fn init_and_export_json_have_one_shape_on_success_and_failure() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = init(&env, &repo, &signers, &["--branch", "main", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["policy"]["action"], "created");
    assert_eq!(v["protected"], serde_json::json!(["main"]));
    assert_eq!(v["signers"], 2);
    assert_eq!(v["hooks"].as_array().unwrap().len(), 3);

    let out = init(&env, &repo, &signers, &["--branch", "next", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"]["action"], "updated");
    assert_eq!(v["added_branches"], serde_json::json!(["next"]));
    assert_eq!(v["protected"], serde_json::json!(["main", "next"]));

    let missing = env.root().join("nowhere.git");
    let out = init(&env, &missing, &signers, &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["exit"], 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere.git"),
        "{v}"
    );

    let server = env.server_at(repo);
    let dir = env.root().join("bundle");
    let out = server.tally(&["export", "--out", dir.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["export"]["rows"], 2);
    assert_eq!(
        v["export"]["policy_digest"],
        server.log(&[])[0]["policy_digest"]
    );
    // The same directory again: refused, as JSON.
    std::fs::write(dir.join("extra"), "x").ok();
    let out = server.tally(&["export", "--out", dir.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["class"], "config");
}

/// Issue 13: a branch that already exists when `tally init --branch` adds it gets a baseline
/// entry, as the branches that existed at the first `tally init` do; so the next signed push
/// to it lands (instead of being refused as a move outside tally) and an unsigned one does
/// not.
#[test]
fn an_existing_branch_added_with_init_gets_a_baseline() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    // Not protected yet: an unsigned push lands.
    work.commit("unsigned")
        .file("u.yaml", "u: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:staging"]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    let tip = server.branch("staging").unwrap();

    let signers = env.root().join("allowed_signers");
    let out = init(&env, &server.path, &signers, &["--branch", "staging"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("and 1 baseline of protected branches that exist already"),
        "{}",
        stdout(&out)
    );
    let log = server.log(&[]);
    assert_eq!(log[0]["kind"], "policy-change");
    assert_eq!(log[0]["ref"], "refs/heads/staging");
    assert_eq!(log[0]["new"], tip);
    assert_eq!(log[1]["ref"], "");
    server.assert_ledger_intact();

    work.commit("signed").file("s.yaml", "s: 1\n").create();
    let push = work.push(&["origin", "HEAD:staging"]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    work.commit("unsigned again")
        .file("v.yaml", "v: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:staging"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    server.assert_ledger_intact();
}

/// An allowed_signers file that is not UTF-8 is refused naming the file and the line, like
/// any other mistake in it.
#[test]
fn init_names_the_line_of_a_signers_file_that_is_not_utf8() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let mut bytes = alice_and_bob().text().into_bytes();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(env.root().join("signers"), bytes).unwrap();
    let out = env
        .tally()
        .arg("init")
        .arg(&repo)
        .args(["--allowed-signers", "./signers"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("tally: error: ./signers:3: not valid UTF-8"),
        "{}",
        stderr(&out)
    );
}
