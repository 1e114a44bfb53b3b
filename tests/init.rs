//! End-to-end tests of `tally init`: what it writes, that it is idempotent, and that it refuses
//! what it must not touch.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Every file under `dir`, with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(
                    entry.path(),
                    (
                        std::fs::read(entry.path()).unwrap(),
                        meta.permissions().mode(),
                    ),
                );
            }
        }
    }
    out
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_writes_policy_signers_and_a_hook_running_tally_by_absolute_path() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--branch".as_ref(),
        "main".as_ref(),
        "--branch".as_ref(),
        "release/*".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("created"), "{text}");
    assert!(
        text.contains("protected branches: main, release/*"),
        "{text}"
    );
    assert!(text.contains("git config gpg.format ssh"), "{text}");

    let policy = std::fs::read_to_string(repo.join("tally/policy.toml")).unwrap();
    assert!(
        policy.contains("protected = [\"main\", \"release/*\"]"),
        "{policy}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("tally/allowed_signers")).unwrap(),
        alice_and_bob().text()
    );
    let hook = std::fs::read_to_string(repo.join("hooks/pre-receive")).unwrap();
    let tally = std::fs::canonicalize(TALLY).unwrap();
    assert!(
        hook.contains(&format!("exec '{}' hook pre-receive", tally.display())),
        "{hook}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo.join("hooks/pre-receive"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn init_is_idempotent() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let args = [
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ];
    let first = env.tally_init(args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let before = snapshot(&repo);
    let second = env.tally_init(args);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let text = stdout(&second);
    assert!(!text.contains("created"), "{text}");
    assert!(!text.contains("updated"), "{text}");
    for line in text
        .lines()
        .filter(|l| l.contains("hook ") || l.contains("allowed signers "))
    {
        assert!(
            line.ends_with("unchanged") || line.contains("unchanged ("),
            "{line}"
        );
    }
    assert!(text.contains("unchanged"), "{text}");
    assert_eq!(snapshot(&repo), before, "second tally init changed files");
}

#[test]
fn init_refuses_to_overwrite_a_foreign_hook_without_force() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let hook = repo.join("hooks/pre-receive");
    let foreign = "#!/bin/sh\n# site policy\nexit 0\n";
    std::fs::write(&hook, foreign).unwrap();
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("hooks/pre-receive"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), foreign);
    assert!(
        !repo.join("tally/policy.toml").exists(),
        "nothing may be written when init refuses"
    );

    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--force".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let replaced = std::fs::read_to_string(&hook).unwrap();
    assert!(replaced.contains("hook pre-receive"), "{replaced}");
    assert!(repo.join("tally/policy.toml").exists());
}

#[test]
fn init_refuses_a_non_bare_repository() {
    let env = TestEnv::new();
    let work = env.root().join("work");
    run_ok(env.git(env.root()).args(["init", "-q"]).arg(&work));
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        work.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("is not a bare git repository"), "{err}");
    assert!(err.contains("git init --bare"), "{err}");
    assert!(!work.join(".git/hooks/pre-receive").exists());
}

#[test]
fn init_refuses_a_missing_repository() {
    let env = TestEnv::new();
    let missing = env.root().join("nowhere.git");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        missing.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("git init --bare"), "{err}");
    assert!(!missing.exists());
}

#[test]
fn init_refuses_malformed_allowed_signers_naming_the_line() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let text = AllowedSigners::new()
        .signer("alice@example.com", &keys().alice)
        .line("bob@example.com ssh-ed25519 not-base64!!")
        .text();
    let signers = env.write("signers", &text);
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("line 2"), "{err}");
    assert!(!repo.join("hooks/pre-receive").exists());
}

#[test]
fn init_refuses_an_empty_allowed_signers_file() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", "# nobody yet\n");
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("lists no signers"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_refuses_a_missing_allowed_signers_file() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let missing = env.root().join("no_such_signers");
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no_such_signers"), "{}", stderr(&out));
}

#[test]
fn init_refuses_an_invalid_branch_name() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--branch".as_ref(),
        "refs/heads/main".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refs/heads/main"), "{}", stderr(&out));
}
