//! Issue 11, item 2: whoever runs a tally command on the server, root included, tally never
//! leaves a file in the repository owned by another user than the repository's owner. These
//! tests need root (to create a unix account and to be root when running tally); elsewhere
//! they say loudly that they did not run.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A unix account for the test, removed when dropped (also when the test fails).
struct Account {
    name: String,
    uid: u32,
}

impl Account {
    fn create() -> Option<Account> {
        if !nix_is_root() {
            eprintln!(
                "SKIPPED: tests/e2e/owner.rs needs root to create a unix account and run tally as root; run the suite as root (CI does) to cover issue 11, item 2"
            );
            return None;
        }
        Some(Account::named(&format!("tly{}", std::process::id()), None))
    }

    /// A system account `name`, in `group` besides its own.
    fn named(name: &str, group: Option<&Group>) -> Account {
        let name = name.to_owned();
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ]);
        if let Some(group) = group {
            cmd.args(["--groups", &group.name]);
        }
        let ok = {
            let _turn = passwd_turn();
            cmd.arg(&name).status().unwrap().success()
        };
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
        Account { name, uid }
    }

    /// `git` run as this account (with `USER` set as a login would), in `cwd`.
    fn git(&self, env: &TestEnv, cwd: &Path) -> Command {
        let mut cmd = Command::new("runuser");
        env.hermetic(&mut cmd);
        cmd.args(["-u", &self.name, "--", "git"])
            .env("USER", &self.name)
            .current_dir(cwd);
        cmd
    }
}

/// A unix group for the test, removed when dropped.
struct Group {
    name: String,
    gid: u32,
}

impl Group {
    fn create(name: &str) -> Group {
        let ok = {
            let _turn = passwd_turn();
            Command::new("groupadd")
                .args(["--system", name])
                .status()
                .unwrap()
                .success()
        };
        assert!(ok, "groupadd {name} failed");
        let line = stdout_of(Command::new("getent").args(["group", name]));
        let gid = line.split(':').nth(2).unwrap().parse().unwrap();
        Group {
            name: name.to_owned(),
            gid,
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _turn = passwd_turn();
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _turn = passwd_turn();
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

/// Issue 11, item 3: a repository that several unix accounts push to
/// (`core.sharedRepository=group`). Every member's accepted and refused pushes are recorded,
/// tally's files stay writable by the group whoever wrote them last, the ledger key is
/// readable by the group and no one else, and git itself (gc, reading `refs/tally/ledger`)
/// keeps working for every member.
#[test]
fn every_member_of_a_group_shared_repository_pushes_and_is_recorded() {
    if !nix_is_root() {
        eprintln!(
            "SKIPPED: tests/e2e/owner.rs every_member_of_a_group_shared_repository_pushes_and_is_recorded needs root to create unix accounts; run the suite as root (CI does) to cover issue 11, item 3"
        );
        return;
    }
    let pid = std::process::id();
    let group = Group::create(&format!("tlg{pid}"));
    // Accounts are dropped (removed) before the group.
    let owner = Account::named(&format!("tlo{pid}"), Some(&group));
    let member = Account::named(&format!("tlm{pid}"), Some(&group));
    let env = TestEnv::new();
    std::fs::set_permissions(
        env.root(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Pushers work in clones they do not own; git refuses those unless told they are safe.
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(env.root().join("gitconfig"))
        .unwrap();
    std::io::Write::write_all(&mut config, b"[safe]\n\tdirectory = *\n").unwrap();

    let repo = env.root().join("shared.git");
    run_ok(
        env.git(env.root())
            .args(["init", "-q", "--bare", "--shared=group"])
            .arg(&repo),
    );
    run_ok(
        Command::new("chown")
            .args(["-R", &format!("{}:{}", owner.name, group.name)])
            .arg(&repo),
    );
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let init = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&init.stdout);
    assert_eq!(init.status.code(), Some(0), "{init:?}");
    assert!(
        text.contains(&format!(
            "shared          core.sharedRepository: tally's files are group {}'s, mode 0660",
            group.name
        )),
        "{text}"
    );

    let server = env.server_at(repo.clone());
    let work = env.clone_as(&server, "work", &alice());
    let push = |account: &Account| {
        // The clone is root's; the push also updates its remote-tracking ref.
        run_ok(Command::new("chmod").args(["-R", "a+rwX"]).arg(&work.path));
        let out = account
            .git(&env, &work.path)
            .args(["push", "origin", "HEAD:main"])
            .output()
            .unwrap();
        (
            out.status.code(),
            unwrapped(&String::from_utf8_lossy(&out.stderr)),
        )
    };
    let first = work.commit("first").file("a.yaml", "a: 1\n").create();
    let (code, stderr) = push(&owner);
    assert_eq!(code, Some(0), "{stderr}");
    let second = work.commit("second").file("b.yaml", "b: 1\n").create();
    let (code, stderr) = push(&member);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("passed tally's checks"), "{stderr}");
    let unsigned = work
        .commit("unsigned")
        .file("c.yaml", "c: 1\n")
        .unsigned()
        .create();
    let (code, stderr) = push(&member);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("commit is not signed"), "{stderr}");
    run_ok(work.git().args(["reset", "-q", "--hard", &second]));
    let third = work.commit("third").file("d.yaml", "d: 1\n").create();
    let (code, stderr) = push(&owner);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(server.branch("main").as_deref(), Some(third.as_str()));

    let entries = server.log(&[]);
    let by = |kind: &str, commit: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == kind && e["new"] == commit)
            .map(|e| e["pusher"].as_str().unwrap().to_owned())
    };
    assert_eq!(by("accepted", &first), Some(format!("unix:{}", owner.name)));
    assert_eq!(
        by("accepted", &second),
        Some(format!("unix:{}", member.name))
    );
    assert_eq!(
        by("rejected", &unsigned),
        Some(format!("unix:{}", member.name))
    );
    assert_eq!(by("accepted", &third), Some(format!("unix:{}", owner.name)));
    server.assert_ledger_intact();

    // Whoever wrote them, tally's files are the group's and writable by it; the key is
    // readable by the group only.
    let mut files = Vec::new();
    let mut stack = vec![repo.join("tally")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            files.push((path, meta));
        }
    }
    for (path, meta) in &files {
        let mode = meta.mode() & 0o7777;
        assert_eq!(meta.gid(), group.gid, "{}", path.display());
        let name = path.file_name().unwrap().to_str().unwrap();
        match name {
            "ledger_key" => assert_eq!(mode, 0o640, "{}", path.display()),
            "policy.toml" | "allowed_signers" | "ledger_key.pub" => {
                assert_eq!(mode & 0o040, 0o040, "{}: {mode:o}", path.display())
            }
            _ if meta.is_dir() => assert_eq!(mode, 0o2770, "{}", path.display()),
            _ => assert_eq!(mode & 0o060, 0o060, "{}: {mode:o}", path.display()),
        }
        assert_eq!(mode & 0o002, 0, "{}: {mode:o}", path.display());
    }
    // What tally published (loose objects, refs/tally/ledger) is in directories every member
    // can write to, as git's own are in a shared repository.
    let mut stack = vec![repo.join("objects"), repo.join("refs")];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().mode();
        assert_eq!(mode & 0o070, 0o070, "{}: {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(meta.mode() & 0o040, 0o040, "{}", path.display());
            }
        }
    }
    // Every member's git reads what tally published, and maintenance works for them.
    for account in [&member, &owner] {
        let out = account
            .git(&env, &repo)
            .args(["rev-parse", "--verify", "refs/tally/ledger"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {out:?}", account.name);
        let out = account
            .git(&env, &repo)
            .args(["gc", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {out:?}", account.name);
        let out = account
            .git(&env, &repo)
            .args(["fsck", "--no-progress"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {out:?}", account.name);
    }
    assert_eq!(
        server.log(&[]).len(),
        entries.len(),
        "maintenance recorded something"
    );

    // A ledger this member cannot write (a mistaken chmod): the push is refused with a message
    // the pusher sees (from the update hook), not by git dying in the ref transaction.
    let ledger = repo.join("tally/ledger.sqlite");
    std::fs::set_permissions(&ledger, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let fourth = work.commit("fourth").file("e.yaml", "e: 1\n").create();
    let (code, stderr) = push(&member);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.lines().any(|l| l
            .starts_with("remote: tally: push refused: cannot check it against the ledger")
            && l.contains("ledger.sqlite")
            && l.contains("Permission denied")),
        "{stderr}"
    );
    assert!(
        stderr.contains("[remote rejected] HEAD -> main (hook declined)"),
        "{stderr}"
    );
    assert!(!stderr.contains("fatal"), "{stderr}");
    assert_eq!(server.branch("main").as_deref(), Some(third.as_str()));
    std::fs::set_permissions(&ledger, std::os::unix::fs::PermissionsExt::from_mode(0o660)).unwrap();
    let (code, stderr) = push(&member);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(server.branch("main").as_deref(), Some(fourth.as_str()));

    // Sharing ends: init makes tally's files the owner's alone again. A file another member
    // created cannot be changed by the owner: init names it and the fix, and changes nothing
    // it cannot finish.
    run_ok(Command::new("git").args(["--git-dir"]).arg(&repo).args([
        "config",
        "core.sharedRepository",
        "umask",
    ]));
    let planted = repo.join("tally/pending/left-by-member");
    std::fs::write(&planted, "x").unwrap();
    std::os::unix::fs::chown(&planted, Some(member.uid), Some(group.gid)).unwrap();
    let init_again = || {
        env.tally_init([
            repo.as_os_str(),
            "--allowed-signers".as_ref(),
            signers.as_os_str(),
        ])
    };
    let refused = init_again();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/tally/") && stderr.contains("chown -R"),
        "{stderr}"
    );
    // Nothing changed: the repository is still shared as it was.
    let mode = std::fs::metadata(repo.join("tally")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o2770);
    run_ok(
        Command::new("chown")
            .args(["-R", &owner.name])
            .arg(repo.join("tally")),
    );
    let init = init_again();
    let text = String::from_utf8_lossy(&init.stdout);
    assert_eq!(init.status.code(), Some(0), "{init:?}");
    assert!(
        text.contains("tally's files are the owner's alone again"),
        "{text}"
    );
    let mut stack = vec![repo.join("tally")];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(
                    meta.mode() & 0o022,
                    0,
                    "{}: {:o}",
                    path.display(),
                    meta.mode()
                );
            }
        }
    }
    let key_mode = std::fs::metadata(repo.join("tally/ledger_key"))
        .unwrap()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    drop(member);
    drop(owner);
}
