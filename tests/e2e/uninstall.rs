//! `tally uninstall` (issue 13): removes only the hooks tally wrote, keeps the evidence, says
//! what it did, and leaves a repository git works with.

use std::process::Output;

use serde_json::Value;

use crate::common::*;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn uninstall_removes_tallys_hooks_keeps_the_rest_and_records_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    // A platform's own update hook, which init keeps and uninstall must keep too.
    let update = repo.join("hooks/update");
    std::fs::write(&update, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&update, std::fs::Permissions::from_mode(0o755)).unwrap();
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let server = env.server_at(repo.clone());
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let published = server.rev("refs/tally/ledger");

    let out = env.tally().arg("uninstall").arg(&repo).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let root = env.root().canonicalize().unwrap();
    let text = stdout(&out)
        .replace(&root.display().to_string(), "[ROOT]")
        .replace(&env.root().display().to_string(), "[ROOT]");
    insta::assert_snapshot!(text);

    // Only tally's hooks went; the ledger, key and policy stayed.
    assert!(!repo.join("hooks/pre-receive").exists());
    assert!(!repo.join("hooks/reference-transaction").exists());
    assert_eq!(
        std::fs::read_to_string(&update).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    for kept in [
        "policy.toml",
        "allowed_signers",
        "ledger.sqlite",
        "ledger_key",
        "ledger_key.pub",
    ] {
        assert!(server.tally_dir().join(kept).exists(), "{kept}");
    }
    // Recorded and published.
    let log = server.log(&[]);
    assert_eq!(log[0]["kind"], "policy-change");
    let reason = log[0]["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("tally uninstalled by "), "{reason}");
    assert_ne!(server.rev("refs/tally/ledger"), published);

    // Pushes land unchecked, and git works with the repository.
    work.commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:main"]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    assert_eq!(server.branch("main"), Some(work.head()));
    run_ok(server.git().args(["gc", "-q"]));
    run_ok(server.git().args(["fsck", "--strict"]));
    assert_eq!(
        server.log(&[]).len(),
        log.len(),
        "nothing recorded after uninstall"
    );

    // Idempotent: nothing removed, nothing recorded.
    let out = env.tally().arg("uninstall").arg(&repo).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing to remove"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.log(&[]).len(), log.len());

    // JSON: the same shape as every command's.
    let out = env
        .tally()
        .arg("uninstall")
        .arg(&repo)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["recorded"], Value::Null);
    assert_eq!(v["hooks"][0]["action"], "absent");
    assert_eq!(v["hooks"][1]["action"], "kept");

    // tally init guards it again (the branch moved outside tally meanwhile: adopt it).
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    work.commit("unsigned again")
        .file("c.yaml", "c: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
}

#[test]
fn uninstall_refuses_what_is_not_a_bare_repository() {
    let env = TestEnv::new();
    let missing = env.root().join("nowhere.git");
    let out = env.tally().arg("uninstall").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere.git"), "{}", stderr(&out));
    let out = env
        .tally()
        .arg("uninstall")
        .arg(&missing)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["exit"], 2);
}

/// `tally init --remove` is `tally uninstall`.
#[test]
fn init_remove_is_uninstall() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let out = env
        .tally()
        .args(["init", "--remove", "--json"])
        .arg(&server.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["recorded"], 1);
    assert!(!server.path.join("hooks/pre-receive").exists());
    // It takes no setup options, and init without --remove still needs its signers.
    let out = env
        .tally()
        .args(["init", "--remove", "--branch", "main"])
        .arg(&server.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = env.tally().arg("init").arg(&server.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--allowed-signers"),
        "{}",
        stderr(&out)
    );
}
