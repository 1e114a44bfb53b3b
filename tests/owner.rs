//! Issue 11, item 2: whoever runs a tally command on the server, root included, tally never
//! leaves a file in the repository owned by another user than the repository's owner. These
//! tests need root (to create a unix account and to be root when running tally); elsewhere
//! they say loudly that they did not run.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// A unix account for the test, removed when dropped (also when the test fails).
struct Account {
    name: String,
    uid: u32,
}

impl Account {
    fn create() -> Option<Account> {
        if !nix_is_root() {
            eprintln!(
                "SKIPPED: tests/owner.rs needs root to create a unix account and run tally as root; run the suite as root (CI does) to cover issue 11, item 2"
            );
            return None;
        }
        let name = format!("tly{}", std::process::id());
        let ok = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .status()
            .unwrap()
            .success();
        assert!(ok, "useradd {name} failed");
        let uid = String::from_utf8(
            Command::new("id")
                .args(["-u", &name])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
        Some(Account { name, uid })
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn nix_is_root() -> bool {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        == "0"
}

/// Every file and directory under `dir` with another owner than `uid`.
fn foreign(dir: &Path, uid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.uid() != uid {
            out.push(format!("{} (uid {})", path.display(), meta.uid()));
        }
        if meta.is_dir() {
            out.extend(foreign(&path, uid));
        }
    }
    out
}

#[test]
fn root_run_commands_write_as_the_repository_owner() {
    let Some(account) = Account::create() else {
        return;
    };
    let env = TestEnv::new();
    // The account must reach the repository through the test's temporary directory.
    std::fs::set_permissions(
        env.root(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let repo = env.bare_repo("hosted");
    run_ok(Command::new("chown").args(["-R", &account.name]).arg(&repo));
    // A signers file only root can read, as a provisioning script would have it.
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    std::fs::set_permissions(
        &signers,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let init = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&init.stderr);
    assert_eq!(init.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "running as {} (uid {})",
            account.name, account.uid
        )),
        "{stderr}"
    );
    for args in [
        &["ledger", "checkpoint"][..],
        &["ledger", "verify"],
        &["log"],
    ] {
        let out = env
            .tally()
            .args(args)
            .arg("--repo")
            .arg(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    assert_eq!(foreign(&repo, account.uid), Vec::<String>::new());

    // The hosting account can still do everything the hooks do.
    let out = Command::new("runuser")
        .args(["-u", &account.name, "--"])
        .arg(TALLY)
        .args(["ledger", "checkpoint", "--repo"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
