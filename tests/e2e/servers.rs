//! Issue 11: tally behind real server software on 127.0.0.1, pushed to with the real git
//! client. sshd with a git-shell account, nginx with fcgiwrap and `git http-backend`, and
//! gitolite each run the hooks their own way (as which account, with which environment, in
//! which order with their own hooks); each test asserts what a user relies on there: the
//! push's exit status, the `remote:` lines the pusher reads, where the branch is on the server
//! afterwards, and what the ledger recorded, with whose name. Two more run on a served
//! repository what its administrator runs there: git's maintenance (auto-gc after pushes,
//! `git gc`, `git maintenance`) and the heartbeat from root's crontab.
//!
//! These tests need root, to create the hosting accounts (`useradd`, removed with `userdel -r`
//! when the test ends) and to run sshd; and the servers (Debian packages openssh-server, nginx,
//! fcgiwrap, gitolite3, which `.ci/run` installs). Without them a test says loudly that it did
//! not run. Every server listens on a free port of 127.0.0.1, keeps its state in the test's
//! temporary directory, and is stopped when the test ends, also when it fails.

mod account;
mod daemon;
mod hosted;
mod http;
mod sshd;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use account::{Account, is_root, login_key, tally_for_accounts};
use hosted::{Hosted, init_as_root};
use http::{FCGIWRAP, GitHttp, NGINX};
use sshd::{SSHD, Sshd};

/// gitolite's command (Debian package gitolite3).
const GITOLITE: &str = "/usr/bin/gitolite";

/// Whether `test` can run here: as root, with every server binary it `needs` (path, Debian
/// package). Otherwise it says so in one loud line.
fn can_run(test: &str, needs: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = needs
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} (Debian package {package})"))
        .collect();
    if is_root() && missing.is_empty() {
        return true;
    }
    let mut what = String::from("needs root (to create unix accounts and run servers)");
    if !missing.is_empty() {
        what.push_str(&format!(" and {}", missing.join(", ")));
    }
    eprintln!(
        "SKIPPED: tests/e2e/servers.rs {test}: {what}; run the suite as root on a machine where .ci/run installed them (CI does) to cover issue 11"
    );
    false
}

/// A test environment whose directory the hosting accounts can traverse (their homes and the
/// allowed_signers file are in it).
fn server_env() -> TestEnv {
    let env = TestEnv::new();
    std::fs::set_permissions(env.root(), PermissionsExt::from_mode(0o755)).unwrap();
    env
}

/// git-shell of the git the tests run (the login shell of a plain git-over-ssh account).
fn git_shell() -> PathBuf {
    Path::new(&stdout_of(Command::new("git").arg("--exec-path"))).join("git-shell")
}

/// `<account's home>/deploy.git`, guarded by `tally init` run as root (tally becomes the
/// repository's owner itself), trusting Alice and Bob.
fn guarded_by_root<'a>(env: &TestEnv, account: &'a Account, tally: &Path) -> Hosted<'a> {
    let path = account.bare_repo("deploy");
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let out = init_as_root(env, tally, &path, &signers);
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "tally init as root: {out:?}");
    assert!(
        stderr.contains(&format!(
            "running as {} (uid {})",
            account.name, account.uid
        )),
        "{stderr}"
    );
    let hosted = Hosted {
        account,
        path,
        tally: tally.to_owned(),
    };
    hosted.assert_owned_by_account();
    hosted
}

/// A clone of `path` over `sshd`, logging in as `account` with `login`, signing as `user`.
fn clone_over_ssh<'e>(
    env: &'e TestEnv,
    sshd: &Sshd,
    account: &Account,
    path: &str,
    name: &str,
    user: &User,
    login: &Key,
) -> Work<'e> {
    env.clone_url_as(
        &sshd.url(account, path),
        name,
        user,
        &[("core.sshCommand", &sshd.ssh_command(&login.private))],
    )
}

/// The ledger entry recording `new` as `kind`; panics with the ledger if there is none.
fn entry_for(repo: &Hosted<'_>, kind: &str, new: &str) -> serde_json::Value {
    let entries = repo.entries();
    entries
        .iter()
        .find(|e| e["kind"] == kind && e["new"] == new)
        .unwrap_or_else(|| panic!("no {kind} entry for {new}; the ledger: {entries:#?}"))
        .clone()
}

/// Asserts a refused push of the unsigned commit `id`: exit status 1, declined by the
/// pre-receive hook, tally's refusal in `remote:` lines naming the commit.
fn assert_refused_unsigned(push: &Push, id: &str) {
    push.assert_refused();
    assert!(
        push.stderr
            .contains("remote: tally: push refused: 1 problem on refs/heads/main"),
        "{}",
        push.stderr
    );
    push.line_with(&[short(id), "commit is not signed", "fix: "]);
}

/// Plain git over ssh: one account (`git-shell` its login shell) that everyone logs in as with
/// their own key, sshd with `ExposeAuthInfo yes`. The ledger names the account and the key
/// that logged in, for the accepted push and the refused one; the pusher reads the refusal in
/// `remote:` lines; every file stays the hosting account's though root ran `tally init`.
#[test]
fn ssh_git_shell_account_records_the_login_key() {
    let test = "ssh_git_shell_account_records_the_login_key";
    if !can_run(test, &[(SSHD, "openssh-server")]) {
        return;
    }
    let env = server_env();
    let tally = tally_for_accounts(env.root());
    let account = Account::create(env.root(), &git_shell());
    let repo = guarded_by_root(&env, &account, &tally);
    let alice_login = login_key(env.root(), "alice-login");
    account.authorize(&[&alice_login]);
    let sshd = Sshd::start(env.root(), &[&account]);
    let work = clone_over_ssh(
        &env,
        &sshd,
        &account,
        &repo.path.display().to_string(),
        "alice",
        &alice(),
        &alice_login,
    );
    let pusher = format!("ssh:{} key {}", account.name, alice_login.fingerprint);
    assert_ne!(alice_login.fingerprint, keys().alice.fingerprint);

    let base = work
        .commit("base")
        .file("app.yaml", "replicas: 1\n")
        .create();
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_accepted();
    push.line_with(&["passed tally's checks", short(&base), "on refs/heads/main"]);
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    let accepted = entry_for(&repo, "accepted", &base);
    assert_eq!(accepted["ref"], "refs/heads/main");
    assert_eq!(accepted["pusher"].as_str(), Some(pusher.as_str()));

    let unsigned = work
        .commit("unsigned")
        .file("app.yaml", "replicas: 2\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_refused_unsigned(&push, &unsigned);
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    let rejected = entry_for(&repo, "rejected", &unsigned);
    assert_eq!(rejected["pusher"].as_str(), Some(pusher.as_str()));
    assert!(
        rejected["reasons"].to_string().contains("not signed"),
        "{rejected}"
    );
    assert_eq!(repo.entries_of("accepted").len(), 1);

    repo.assert_ledger_intact();
    repo.assert_owned_by_account();
}

/// Smart HTTP: nginx authenticates (basic auth) and fcgiwrap runs `git http-backend` as the
/// hosting account. The ledger names the authenticated user (`REMOTE_USER`), the refusal
/// reaches the pusher as `remote:` lines over HTTP, and a clone over HTTP gets the branch and
/// `refs/tally/ledger`, as an agent would fetch them.
#[test]
fn smart_http_with_basic_auth_records_the_http_user() {
    let test = "smart_http_with_basic_auth_records_the_http_user";
    if !can_run(test, &[(NGINX, "nginx"), (FCGIWRAP, "fcgiwrap")]) {
        return;
    }
    let env = server_env();
    let tally = tally_for_accounts(env.root());
    let account = Account::create(env.root(), Path::new("/usr/sbin/nologin"));
    let repo = guarded_by_root(&env, &account, &tally);
    let http = GitHttp::start(
        env.root(),
        &account,
        &account.home,
        &[("alice", "alice-secret"), ("bob", "bob-secret")],
    );
    let work = env.clone_url_as(
        &http.url("alice", "alice-secret", "deploy.git"),
        "alice",
        &alice(),
        &[],
    );

    let base = work
        .commit("base")
        .file("app.yaml", "replicas: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    assert_eq!(
        entry_for(&repo, "accepted", &base)["pusher"].as_str(),
        Some("http:alice")
    );

    let unsigned = work
        .commit("unsigned")
        .file("app.yaml", "replicas: 2\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_refused_unsigned(&push, &unsigned);
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    let rejected = entry_for(&repo, "rejected", &unsigned);
    assert_eq!(rejected["pusher"].as_str(), Some("http:alice"));

    // Another basic-auth user, same hosting account: the ledger tells them apart.
    let bob_work = env.clone_url_as(
        &http.url("bob", "bob-secret", "deploy.git"),
        "bob",
        &bob(),
        &[],
    );
    let by_bob = bob_work
        .commit("bob's")
        .file("bob.yaml", "owner: bob\n")
        .create();
    bob_work
        .push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    assert_eq!(repo.branch("main").as_deref(), Some(by_bob.as_str()));
    assert_eq!(
        entry_for(&repo, "accepted", &by_bob)["pusher"].as_str(),
        Some("http:bob")
    );

    // Issue 11, item 8, over HTTP, where receive-pack's stderr goes to the web server's log:
    // a hook between pre-receive and the ref update removes tally's verdicts. The refusal
    // still reaches the pusher as `remote:` lines (tally's update hook), and git does not die
    // mid-push.
    let hooks = repo.path.join("hooks");
    std::fs::create_dir(hooks.join("update.d")).unwrap();
    std::fs::rename(hooks.join("update"), hooks.join("update.d/tally")).unwrap();
    std::fs::write(
        hooks.join("update"),
        "#!/bin/sh\nrm -f tally/pending/*\nexec hooks/update.d/tally \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        hooks.join("update"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let owner = format!("{}:", account.name);
    let status = Command::new("chown")
        .args(["-R", &owner])
        .arg(&hooks)
        .status()
        .unwrap();
    assert!(status.success());
    let lost = bob_work
        .commit("verdict lost")
        .file("app.yaml", "replicas: 3\n")
        .create();
    let push = bob_work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    push.line_with(&["push refused", "no pre-receive verdict", &lost[..10]]);
    assert!(
        push.stderr
            .contains("! [remote rejected] HEAD -> main (hook declined)"),
        "{}",
        push.stderr
    );
    for dying in ["fatal", "unexpected disconnect", "RPC failed", "hung up"] {
        assert!(!push.stderr.contains(dying), "{dying}: {}", push.stderr);
    }
    assert_eq!(repo.branch("main").as_deref(), Some(by_bob.as_str()));
    assert_eq!(
        entry_for(&repo, "rejected", &lost)["pusher"].as_str(),
        Some("http:bob")
    );
    std::fs::remove_file(hooks.join("update")).unwrap();
    std::fs::rename(hooks.join("update.d/tally"), hooks.join("update")).unwrap();
    run_ok(bob_work.git().args(["reset", "-q", "--hard", &by_bob]));

    // A fresh clone over HTTP, and the ledger ref fetched the way an agent fetches it.
    let reader = env.clone_url_as(
        &http.url("alice", "alice-secret", "deploy.git"),
        "reader",
        &alice(),
        &[],
    );
    assert_eq!(reader.git_ok(&["rev-parse", "origin/main"]), by_bob);
    reader.git_ok(&[
        "fetch",
        "-q",
        "origin",
        "+refs/tally/ledger:refs/tally/ledger",
    ]);
    assert_eq!(
        Some(reader.git_ok(&["rev-parse", "refs/tally/ledger"])),
        repo.rev("refs/tally/ledger")
    );

    repo.assert_ledger_intact();
    repo.assert_owned_by_account();
}

/// gitolite: the hosting account's `gitolite setup`, repositories and users managed by
/// pushes to gitolite-admin over sshd, tally set up in a gitolite repository with `tally init`
/// as that account. The ledger names the gitolite user; a push tally's pre-receive passed but
/// gitolite's update hook denied lands nowhere and records no acceptance, and its verdict
/// cannot be used by a later `git update-ref` on the server; gitolite recompiling (an admin
/// push) and re-linking hooks (`gitolite setup`) leave the repository guarded and the admin
/// able to push.
#[test]
fn gitolite_repository_stays_guarded_and_records_the_gitolite_user() {
    let test = "gitolite_repository_stays_guarded_and_records_the_gitolite_user";
    if !can_run(test, &[(SSHD, "openssh-server"), (GITOLITE, "gitolite3")]) {
        return;
    }
    let env = server_env();
    let tally = tally_for_accounts(env.root());
    let account = Account::create(env.root(), Path::new("/bin/sh"));
    let logins = env.root().join("logins");
    std::fs::create_dir(&logins).unwrap();
    let admin_login = login_key(&logins, "admin");
    let alice_login = login_key(&logins, "alice");
    let bob_login = login_key(&logins, "bob");
    run_ok(
        account
            .command(GITOLITE)
            .args(["setup", "-pk"])
            .arg(&admin_login.public),
    );
    let sshd = Sshd::start(env.root(), &[&account]);

    // The admin creates `deploy`: Alice may push anywhere, Bob only under bob/.
    let admin_user = User::new("Admin", "admin@example.com", &admin_login);
    let admin = clone_over_ssh(
        &env,
        &sshd,
        &account,
        "gitolite-admin",
        "admin",
        &admin_user,
        &admin_login,
    );
    let mut conf = "repo gitolite-admin\n    RW+ = admin\n\n\
                    repo deploy\n    RW+ = alice\n    RW bob/ = bob\n"
        .to_owned();
    let key_text = |k: &Key| std::fs::read_to_string(&k.public).unwrap();
    admin
        .commit("add deploy, alice and bob")
        .file("conf/gitolite.conf", &conf)
        .file("keydir/alice.pub", key_text(&alice_login))
        .file("keydir/bob.pub", key_text(&bob_login))
        .unsigned()
        .create();
    admin.push(&["origin", "HEAD"]).assert_accepted();
    let deploy = account.home.join("repositories").join("deploy.git");
    assert!(
        deploy.is_dir(),
        "gitolite did not create {}",
        deploy.display()
    );

    // gitolite's `git init` leaves HEAD at master; clones are to check out main.
    run_ok(
        account
            .git(&deploy)
            .args(["symbolic-ref", "HEAD", "refs/heads/main"]),
    );

    // The hosting account guards it, as the README's table says.
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let gitolite_update = std::fs::read_link(deploy.join("hooks/update")).unwrap();
    let init = run_ok(
        account
            .command(&tally)
            .arg("init")
            .arg(&deploy)
            .arg("--allowed-signers")
            .arg(&signers),
    );
    // gitolite's access control stays: init keeps its update hook and says so.
    let said = String::from_utf8_lossy(&init.stdout);
    assert!(
        said.contains("hooks/update: kept, it is not tally's"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_link(deploy.join("hooks/update")).unwrap(),
        gitolite_update
    );
    let repo = Hosted {
        account: &account,
        path: deploy,
        tally: tally.clone(),
    };

    let alice_work = clone_over_ssh(
        &env,
        &sshd,
        &account,
        "deploy",
        "alice",
        &alice(),
        &alice_login,
    );
    let base = alice_work
        .commit("base")
        .file("app.yaml", "replicas: 1\n")
        .create();
    alice_work
        .push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    assert_eq!(
        entry_for(&repo, "accepted", &base)["pusher"].as_str(),
        Some("gitolite:alice")
    );

    // Bob signs a good commit, but gitolite does not let him write main: its update hook,
    // which runs after tally's pre-receive passed the push, denies it.
    let bob_work = clone_over_ssh(&env, &sshd, &account, "deploy", "bob", &bob(), &bob_login);
    let by_bob = bob_work
        .commit("bob's")
        .file("bob.yaml", "owner: bob\n")
        .create();
    let push = bob_work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    push.line_with(&[
        "passed tally's checks",
        short(&by_bob),
        "on refs/heads/main",
    ]);
    assert!(
        push.stderr
            .contains("remote: FATAL: W refs/heads/main deploy bob DENIED by fallthru")
            && push
                .stderr
                .contains("remote: error: hook declined to update refs/heads/main")
            && !push.stderr.contains("pre-receive hook declined"),
        "{}",
        push.stderr
    );
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    let accepted = repo.entries_of("accepted");
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert!(accepted.iter().all(|e| e["new"] != by_bob.as_str()));

    // The admin adds a repository: gitolite recompiles (rewriting every repository's gl-conf)
    // and creates it. The admin is not locked out, and deploy is still guarded.
    conf.push_str("\nrepo other\n    RW+ = alice\n");
    admin
        .commit("add other")
        .file("conf/gitolite.conf", &conf)
        .unsigned()
        .create();
    admin.push(&["origin", "HEAD"]).assert_accepted();
    assert!(account.home.join("repositories/other.git").is_dir());
    let unsigned = alice_work
        .commit("unsigned")
        .file("app.yaml", "replicas: 2\n")
        .unsigned()
        .create();
    let push = alice_work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_refused_unsigned(&push, &unsigned);
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));

    // `gitolite setup` again (after an upgrade, say) re-links its hooks into every repository.
    run_ok(account.command(GITOLITE).arg("setup"));
    let push = alice_work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_refused_unsigned(&push, &unsigned);
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    assert_eq!(
        entry_for(&repo, "rejected", &unsigned)["pusher"].as_str(),
        Some("gitolite:alice")
    );

    // Bob's commit is in the repository (receive-pack keeps the objects of a push whose
    // pre-receive passed), and tally's pre-receive left a verdict for his push. That verdict
    // moves nothing: an administrator's `git update-ref` to his commit is refused, and
    // recorded.
    let out = repo
        .git()
        .args(["update-ref", "refs/heads/main", &by_bob, &base])
        .output()
        .unwrap();
    assert!(!out.status.success(), "update-ref landed: {out:?}");
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert!(
        stderr.contains(&format!(
            "tally: ref update refused: refs/heads/main moved outside an accepted push (no pre-receive verdict for {} -> {})",
            short(&base),
            short(&by_bob)
        )),
        "{stderr}"
    );
    assert_eq!(repo.branch("main").as_deref(), Some(base.as_str()));
    let rejected = entry_for(&repo, "rejected", &by_bob);
    assert_eq!(
        rejected["pusher"].as_str(),
        Some(format!("unix:{}", account.name).as_str())
    );
    assert!(
        repo.entries_of("accepted")
            .iter()
            .all(|e| e["new"] != by_bob.as_str())
    );

    // And a signed push still lands.
    alice_work.reset_hard(&base);
    let next = alice_work
        .commit("next")
        .file("app.yaml", "replicas: 3\n")
        .create();
    alice_work
        .push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    assert_eq!(repo.branch("main").as_deref(), Some(next.as_str()));
    assert_eq!(
        entry_for(&repo, "accepted", &next)["pusher"].as_str(),
        Some("gitolite:alice")
    );
    repo.assert_ledger_intact();
    repo.assert_owned_by_account();
}

/// Maintenance on a served repository: auto-gc after every push (in the foreground, so that a
/// failure would reach the pusher), then `git gc`, `git pack-refs`, `git repack` and
/// `git maintenance` by hand as the hosting account. All succeed, and the ledger holds exactly
/// the pushes: maintenance moves no branch, so it records nothing.
#[test]
fn maintenance_and_auto_gc_on_a_served_repository_record_nothing() {
    let test = "maintenance_and_auto_gc_on_a_served_repository_record_nothing";
    if !can_run(test, &[(SSHD, "openssh-server")]) {
        return;
    }
    let env = server_env();
    let tally = tally_for_accounts(env.root());
    let account = Account::create(env.root(), &git_shell());
    let repo = guarded_by_root(&env, &account, &tally);
    // Every push keeps its pack (unpackLimit 1), and more than one pack triggers gc --auto.
    for (key, value) in [
        ("gc.auto", "1"),
        ("gc.autoPackLimit", "1"),
        ("gc.autoDetach", "false"),
        ("receive.autogc", "true"),
        ("receive.unpackLimit", "1"),
    ] {
        run_ok(repo.git().args(["config", key, value]));
    }
    let alice_login = login_key(env.root(), "alice-login");
    account.authorize(&[&alice_login]);
    let sshd = Sshd::start(env.root(), &[&account]);
    let work = clone_over_ssh(
        &env,
        &sshd,
        &account,
        &repo.path.display().to_string(),
        "alice",
        &alice(),
        &alice_login,
    );
    let before = repo.entries().len();

    let mut pushed = Vec::new();
    for i in 0..4 {
        let id = work
            .commit(&format!("change {i}"))
            .file("app.yaml", format!("replicas: {i}\n"))
            .create();
        let push = work.push(&["origin", "HEAD:refs/heads/main"]);
        push.assert_accepted();
        assert!(
            !push.stderr.contains("fatal") && !push.stderr.contains("error"),
            "{}",
            push.stderr
        );
        assert_eq!(repo.branch("main").as_deref(), Some(id.as_str()));
        pushed.push(id);
    }
    // Auto-gc ran: four pushes kept four packs, gc left one.
    let packs = std::fs::read_dir(repo.path.join("objects/pack"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("pack".as_ref()))
        .count();
    assert_eq!(packs, 1, "auto-gc did not repack");

    for args in [
        &["gc", "--quiet"][..],
        &["pack-refs", "--all"],
        &["repack", "-a", "-d", "-q"],
        &["maintenance", "run", "--task=gc", "--quiet"],
    ] {
        run_ok(repo.git().args(args));
    }
    let tip = pushed.last().unwrap();
    assert_eq!(repo.branch("main").as_deref(), Some(tip.as_str()));

    let entries = repo.entries();
    let new: Vec<(&str, &str)> = entries[before..]
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["new"].as_str().unwrap()))
        .collect();
    let expected: Vec<(&str, &str)> = pushed.iter().map(|id| ("accepted", id.as_str())).collect();
    assert_eq!(new, expected);
    assert!(repo.entries_of("rejected").is_empty());

    // Still guarded after all of it.
    let unsigned = work
        .commit("after maintenance")
        .file("app.yaml", "replicas: 9\n")
        .unsigned()
        .create();
    assert_refused_unsigned(&work.push(&["origin", "HEAD:refs/heads/main"]), &unsigned);
    assert_eq!(repo.branch("main").as_deref(), Some(tip.as_str()));
    repo.assert_ledger_intact();
    repo.assert_owned_by_account();
}

/// The heartbeat from root's crontab: `tally ledger checkpoint` run as root becomes the
/// repository's owner (saying so on stderr, as every root-run command does), prints nothing
/// else, leaves every file the hosting account's, and each heartbeat replaces the previous
/// heartbeat's publication, so `refs/tally/ledger` grows with entries, not with heartbeats
/// (README, "Heartbeat").
#[test]
fn heartbeat_as_root_keeps_ownership_and_does_not_grow_the_ledger_ref() {
    let test = "heartbeat_as_root_keeps_ownership_and_does_not_grow_the_ledger_ref";
    if !can_run(test, &[(SSHD, "openssh-server")]) {
        return;
    }
    let env = server_env();
    let tally = tally_for_accounts(env.root());
    let account = Account::create(env.root(), &git_shell());
    let repo = guarded_by_root(&env, &account, &tally);
    let alice_login = login_key(env.root(), "alice-login");
    account.authorize(&[&alice_login]);
    let sshd = Sshd::start(env.root(), &[&account]);
    let work = clone_over_ssh(
        &env,
        &sshd,
        &account,
        &repo.path.display().to_string(),
        "alice",
        &alice(),
        &alice_login,
    );
    work.commit("base")
        .file("app.yaml", "replicas: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    let entries = repo.entries().len();

    let heartbeat = || {
        let mut cmd = Command::new(&tally);
        env.hermetic(&mut cmd);
        let out = cmd
            .args(["ledger", "checkpoint", "--repo"])
            .arg(&repo.path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        // Silent, root's crontab included: cron mails whatever a job prints. (The line that
        // says root became the repository's owner is for a person at a terminal.)
        assert!(out.stderr.is_empty(), "{out:?}");
        repo.assert_owned_by_account();
        repo.rev("refs/tally/ledger").unwrap()
    };

    // A checkpoint carries its signing time in whole seconds: one signed in the second of the
    // push's would be the note already published. Each heartbeat here waits for a new second.
    let pushed = repo.rev("refs/tally/ledger").unwrap();
    let published = repo.ledger_commits();
    wait_for_the_next_second();
    let first = heartbeat();
    // The first heartbeat after a push publishes its note on top of the push's publication.
    assert_ne!(first, pushed, "the heartbeat published no fresh note");
    assert_eq!(repo.ledger_commits(), published + 1);
    wait_for_the_next_second();
    let second = heartbeat();
    assert_ne!(
        second, first,
        "the second heartbeat published no fresh note"
    );
    assert_eq!(repo.ledger_commits(), published + 1);

    assert_eq!(repo.entries().len(), entries, "a heartbeat added an entry");
    repo.assert_ledger_intact();
}

/// `tally mirror` with its upstream behind real servers: over ssh (sshd, a git-shell account,
/// the mirror's own deploy key in `GIT_SSH_COMMAND`) and over smart HTTP with basic auth (nginx,
/// `git http-backend`, the password in the URL). Both mirrors serve what the ledger accepted
/// and follow a push after a webhook; the HTTP password appears nowhere the mirror reports
/// (log, `/status`, `/metrics`), not even when the server refuses it.
#[test]
fn mirror_of_an_upstream_over_ssh_and_over_http_with_basic_auth() {
    use crate::mirror::{Mirror, Pins};
    let test = "mirror_of_an_upstream_over_ssh_and_over_http_with_basic_auth";
    if !can_run(
        test,
        &[
            (SSHD, "openssh-server"),
            (NGINX, "nginx"),
            (FCGIWRAP, "fcgiwrap"),
        ],
    ) {
        return;
    }
    let env = server_env();
    let tally = tally_for_accounts(env.root());
    let account = Account::create(env.root(), &git_shell());
    let repo = guarded_by_root(&env, &account, &tally);
    let alice_login = login_key(env.root(), "alice-login");
    let mirror_login = login_key(env.root(), "mirror-login");
    account.authorize(&[&alice_login, &mirror_login]);
    let sshd = Sshd::start(env.root(), &[&account]);
    let http = GitHttp::start(
        env.root(),
        &account,
        &account.home,
        &[("mirror", "mirror-s3cret")],
    );
    let work = clone_over_ssh(
        &env,
        &sshd,
        &account,
        &repo.path.display().to_string(),
        "alice",
        &alice(),
        &alice_login,
    );
    let base = work
        .commit("base")
        .file("app.yaml", "replicas: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();

    let key = repo.tally(&["ledger", "key"]);
    assert!(key.status.success());
    let pins = Pins {
        key: env.write("ledger.pub", &String::from_utf8(key.stdout).unwrap()),
        signers: env.write("mirror-allowed_signers", &alice_and_bob().text()),
    };
    let ssh_command = sshd.ssh_command(&mirror_login.private);
    let over_ssh = Mirror::start_url(
        &env,
        &sshd.url(&account, &repo.path.display().to_string()),
        &pins,
        "over-ssh",
        &[],
        &[("GIT_SSH_COMMAND", &ssh_command)],
    );
    let password_url = http.url("mirror", "mirror-s3cret", "deploy.git");
    let over_http = Mirror::start_url(&env, &password_url, &pins, "over-http", &[], &[]);
    for mirror in [&over_ssh, &over_http] {
        mirror.wait_served("main", &base);
        assert!(mirror.url.ends_with("/deploy.git"), "{}", mirror.url);
    }

    let next = work
        .commit("next")
        .file("app.yaml", "replicas: 2\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    for mirror in [&over_ssh, &over_http] {
        mirror.hook();
        mirror.wait_served("main", &next);
        let clone = env.root().join(format!(
            "clone-{}",
            mirror.dir.file_name().unwrap().to_string_lossy()
        ));
        run_ok(
            env.git(env.root())
                .args(["clone", "-q", &mirror.url])
                .arg(&clone),
        );
        assert_eq!(stdout_of(env.git(&clone).args(["rev-parse", "HEAD"])), next);
    }

    // A wrong password: the fetch fails, the last verified commit stays served, and neither
    // password is printed anywhere.
    let wrong_url = http.url("mirror", "wr0ng-pass", "deploy.git");
    let wrong = Mirror::start_url(&env, &wrong_url, &pins, "wrong-http", &[], &[]);
    let status = wrong.wait_for("the failed fetch", |s| {
        s["branches"][0]["consecutive_failures"].as_u64() >= Some(1)
    });
    assert_eq!(status["branches"][0]["last_error"]["reasons"][0], "fetch");
    for mirror in [&over_http, &wrong] {
        let reported = format!(
            "{}\n{}\n{}",
            mirror.log(),
            mirror.status(),
            mirror.metrics()
        );
        for secret in ["mirror-s3cret", "wr0ng-pass"] {
            assert!(!reported.contains(secret), "{secret} reported:\n{reported}");
        }
    }
    repo.assert_ledger_intact();
    repo.assert_owned_by_account();
}
