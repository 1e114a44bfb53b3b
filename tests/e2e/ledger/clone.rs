//! `tally log` and `tally ledger verify` in a clone (an agent's, an auditor's): no store,
//! only `refs/tally/ledger` fetched from the server with the real git client (issue 13).

use super::log::ledger_key_fingerprint;
use super::tamper::{NANOS_LAST_BYTE, copy_repo, craft_publication};
use super::*;
use crate::common::*;

/// `git clone` of the server (bare or not), then `git fetch` of the published ledger.
fn clone_with_ledger(env: &TestEnv, server: &Server<'_>, name: &str, bare: bool) -> PathBuf {
    let path = env.root().join(name);
    let mut clone = env.git(env.root());
    clone.args(["clone", "-q"]);
    if bare {
        clone.arg("--bare");
    }
    run_ok(clone.arg(&server.path).arg(&path));
    run_ok(env.git(&path).args([
        "fetch",
        "-q",
        "origin",
        "+refs/tally/ledger:refs/tally/ledger",
    ]));
    path
}

/// `tally <args>` run inside `dir`.
fn tally_in(env: &TestEnv, dir: &Path, args: &[&str]) -> std::process::Output {
    env.tally().current_dir(dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The ledger's public key, as `tally ledger key` prints it on the server, in a file.
fn pinned_key(env: &TestEnv, server: &Server<'_>) -> PathBuf {
    let out = server.tally(&["ledger", "key"]);
    assert!(out.status.success(), "{out:?}");
    env.write("ledger.pub", &text(&out.stdout))
}

#[test]
fn log_in_a_clone_reads_the_published_ledger_like_the_server() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let work = clone_with_ledger(&env, &h.server, "clone", false);
    let bare = clone_with_ledger(&env, &h.server, "mirror.git", true);
    assert!(!work.join(".git/tally/ledger.sqlite").exists());
    for args in [
        &[][..],
        &["--json"],
        &["--commits"],
        &["--branch", "prod"],
        &["--kind", "rejected", "--json"],
        &["--limit", "2"],
        &[
            "--branch", "main", "--kind", "accepted", "--limit", "1", "--json",
        ],
        &["--branch", "nosuch"],
    ] {
        let mut all = vec!["log"];
        all.extend_from_slice(args);
        let on_server = h.server.tally(&all);
        assert_eq!(on_server.status.code(), Some(0), "{on_server:?}");
        // A work tree found from the current directory, a bare clone by --repo.
        let in_clone = tally_in(&env, &work.join("apps"), &all);
        let mut with_repo = all.clone();
        let bare_path = bare.to_str().unwrap();
        with_repo.extend(["--repo", bare_path]);
        let in_bare = env.tally().args(&with_repo).output().unwrap();
        for (what, out) in [("clone", &in_clone), ("bare clone", &in_bare)] {
            assert_eq!(out.status.code(), Some(0), "{what} {args:?}: {out:?}");
            assert_eq!(
                text(&out.stdout),
                text(&on_server.stdout),
                "{what} {args:?}: the same entries as on the server"
            );
            // Read, not verified: said on stderr, which the server's listing does not need.
            assert!(
                text(&out.stderr).contains("not verified: tally ledger verify checks it"),
                "{what} {args:?}: {out:?}"
            );
        }
        assert!(on_server.stderr.is_empty(), "{on_server:?}");
    }
}

#[test]
fn ledger_verify_in_a_clone_checks_the_published_ledger_read_only() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let (_, on_server) = verify_json(&h.server);
    let clone = clone_with_ledger(&env, &h.server, "clone", false);
    let key = pinned_key(&env, &h.server);
    let key_arg = key.to_str().unwrap();
    let fingerprint = ledger_key_fingerprint(&key);

    let out = tally_in(&env, &clone, &["ledger", "verify", "--ledger-key", key_arg]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let n = on_server["size"].as_u64().unwrap();
    let root = field(&on_server, "root");
    // One checkpoint per publication: each push publishes one.
    let publications =
        stdout_of(
            env.git(&clone)
                .args(["rev-list", "--count", "refs/tally/ledger"]),
        );
    assert_eq!(
        text(&out.stdout),
        format!(
            "ledger intact: {n} entries, {publications} checkpoints (as published at refs/tally/ledger)\n  root {root}\n  key  {fingerprint}\n"
        )
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let out = tally_in(
        &env,
        &clone,
        &["ledger", "verify", "--json", "--ledger-key", key_arg],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], Value::Bool(true));
    assert_eq!(field(&json, "source"), "refs/tally/ledger");
    assert_eq!(field(&json, "key"), fingerprint);
    assert_eq!(field(&json, "root"), root);
    assert_eq!(json["problems"], Value::Array(vec![]));
    // Read-only: nothing written in the clone's git directory.
    assert!(!clone.join(".git/tally").exists());

    // Another key: one problem naming it, not one per publication.
    let mallory = keys().mallory.public.to_str().unwrap().to_owned();
    let out = tally_in(
        &env,
        &clone,
        &["ledger", "verify", "--ledger-key", &mallory],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = unwrapped(&text(&out.stderr));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "tally: ledger verify: refs/tally/ledger: none of the {publications} published checkpoints is signed by the ledger key {}",
            keys().mallory.fingerprint
        )),
        "{stderr}"
    );

    // No key given and no agent state pinning one: a usage error saying what to pass.
    let out = tally_in(&env, &clone, &["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("pass --ledger-key FILE"),
        "{}",
        text(&out.stderr)
    );
}

/// `tally verify` in the clone, as its agent runs it: pins `key` in the clone's agent state.
fn agent_verifies(env: &TestEnv, clone: &Path, key: &Path) {
    let signers = env.write("agent_signers", &alice_and_bob().text());
    let out = env
        .tally()
        .args(["verify", "--repo"])
        .arg(clone)
        .arg("--ledger-key")
        .arg(key)
        .arg("--allowed-signers")
        .arg(&signers)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "tally verify: {out:?}");
}

#[test]
fn ledger_verify_in_a_clone_uses_the_key_the_agent_pinned() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let clone = clone_with_ledger(&env, &h.server, "clone", false);
    let key = pinned_key(&env, &h.server);
    agent_verifies(&env, &clone, &key);

    let out = tally_in(&env, &clone, &["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ledger intact: "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "note: verified with the ledger key pinned by the agent state {}",
            clone.join(".git/tally/agent/main.json").display()
        )),
        "{stdout}"
    );

    // A state that other accounts could have written pins nothing.
    use std::os::unix::fs::PermissionsExt;
    let state = clone.join(".git/tally/agent/main.json");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = tally_in(&env, &clone, &["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("writable by other accounts"),
        "{out:?}"
    );
}

/// A clone whose `refs/tally/ledger` is older than what its agent already accepted (a stale
/// mirror, a forced fetch from a restored server) is a rollback, not an intact ledger:
/// `ledger verify` there checks the published ledger against every agent state that pins
/// the key, whether the key came from the state or from `--ledger-key`.
#[test]
fn ledger_verify_in_a_clone_refuses_a_ledger_older_than_the_agent_accepted() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let clone = clone_with_ledger(&env, &h.server, "clone", false);
    let key = pinned_key(&env, &h.server);
    agent_verifies(&env, &clone, &key);
    let rev = |spec: &str| stdout_of(env.git(&clone).args(["rev-parse", spec]));
    let older = rev("refs/tally/ledger~2");
    run_ok(
        env.git(&clone)
            .args(["update-ref", "refs/tally/ledger"])
            .arg(&older),
    );
    let key_arg = key.to_str().unwrap();
    for args in [
        &["ledger", "verify"][..],
        &["ledger", "verify", "--ledger-key", key_arg],
    ] {
        let out = tally_in(&env, &clone, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            !text(&out.stdout).contains("ledger intact"),
            "{args:?}: {out:?}"
        );
        assert!(
            stderr.contains("rollback") && stderr.contains("main.json"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_repository_without_a_ledger_says_how_to_get_one() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let path = env.root().join("plain");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q"])
            .arg(&h.server.path)
            .arg(&path),
    );
    for args in [&["log"][..], &["log", "--json"], &["ledger", "verify"]] {
        let out = tally_in(&env, &path, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("no ledger here: ")
                && stderr.contains("has no refs/tally/ledger")
                && stderr.contains("run `git fetch origin refs/tally/ledger:refs/tally/ledger`"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    // With --json, the setup problem comes in the one failure shape, on stdout.
    let out = tally_in(&env, &path, &["ledger", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["error"]["exit"], 2);
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no refs/tally/ledger"),
        "{value}"
    );
}

#[test]
fn a_forged_publication_fails_verify_in_a_clone() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let key = pinned_key(&env, &h.server);
    let entries = run_ok(
        h.server
            .git()
            .args(["cat-file", "blob", "refs/tally/ledger:entries"]),
    )
    .stdout;
    let copy = copy_repo(&env, &h.server, "forged");
    let mut crafted = entries;
    crafted[4 + NANOS_LAST_BYTE] ^= 0x01;
    let commit = craft_publication(&copy, "entries", &crafted);
    let clone = clone_with_ledger(&env, &copy, "clone", false);

    let out = tally_in(
        &env,
        &clone,
        &[
            "ledger",
            "verify",
            "--json",
            "--ledger-key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], Value::Bool(false));
    let problems = json["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().starts_with(&format!(
                "refs/tally/ledger: publication {commit}: its checkpoint signs the root "
            ))),
        "{problems:?}"
    );
}

#[test]
fn log_in_a_clone_refuses_a_damaged_publication() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let entries = run_ok(
        h.server
            .git()
            .args(["cat-file", "blob", "refs/tally/ledger:entries"]),
    )
    .stdout;
    let copy = copy_repo(&env, &h.server, "truncated");
    let commit = craft_publication(&copy, "entries", &entries[..entries.len() - 1]);
    let clone = clone_with_ledger(&env, &copy, "clone", false);
    let out = tally_in(&env, &clone, &["log"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).starts_with(&format!(
            "tally: log: refs/tally/ledger: publication {commit} has a truncated entries file"
        )),
        "{}",
        text(&out.stderr)
    );
}
