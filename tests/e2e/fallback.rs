//! The post-receive fallback for hosting platforms that run no reference-transaction hook
//! (GitLab server hooks, Gitea's pre-receive.d): checks still refuse, and what landed is still
//! recorded.

use crate::common::*;

/// Turns a `tally init` repository into what such a platform runs: Gitea's layout, where
/// `hooks/<hook>` runs every file in `hooks/<hook>.d/` with the same input, and tally's files
/// there are tally's own hook file (its `#!` line starts tally, which takes the hook from the
/// directory's name). No reference-transaction.
fn platform_without_reference_transaction(server: &Server<'_>) {
    use std::os::unix::fs::PermissionsExt;
    let hooks = server.path.join("hooks");
    std::fs::remove_file(hooks.join("reference-transaction")).unwrap();
    let ours = std::fs::read_to_string(hooks.join("pre-receive")).unwrap();
    assert!(
        ours.starts_with("#!/") && ours.contains(" hook\n"),
        "{ours}"
    );
    let dispatcher = "#!/bin/sh\ninput=$(cat)\nfor h in \"$0.d\"/*; do\n  printf '%s\\n' \"$input\" | \"$h\" \"$@\" || exit $?\ndone\n";
    for hook in ["pre-receive", "post-receive"] {
        let dir = hooks.join(format!("{hook}.d"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tally"), &ours).unwrap();
        std::fs::write(hooks.join(hook), dispatcher).unwrap();
        for file in [dir.join("tally"), hooks.join(hook)] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

#[test]
fn post_receive_records_accepted_pushes_where_reference_transaction_does_not_run() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    platform_without_reference_transaction(&server);
    let work = env.clone_as(&server, "work", &alice());
    let first = work.commit("one").file("a.yaml", "a: 1\n").create();
    work.push(&["origin", "main"]).assert_accepted();
    let second = work.commit("two").file("b.yaml", "b: 2\n").create();
    work.push(&["origin", "main"]).assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(second.as_str()));

    let accepted = server.log(&["--kind", "accepted"]);
    let news: Vec<&str> = accepted
        .iter()
        .map(|e| e["new"].as_str().unwrap())
        .collect();
    assert_eq!(news, vec![second.as_str(), first.as_str()]);
    assert_eq!(
        accepted[0]["commits"][0]["principal"].as_str(),
        Some("alice@example.com")
    );
    server.assert_ledger_intact();
}

#[test]
fn post_receive_fallback_still_refuses_and_records_bad_pushes() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    platform_without_reference_transaction(&server);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("one").file("a.yaml", "a: 1\n").create();
    work.push(&["origin", "main"]).assert_accepted();
    work.commit("bad")
        .file("deploy.sh", "echo\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "main"]);
    push.assert_refused();
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(rejected.len(), 1);
    let reasons = rejected[0]["reasons"].to_string();
    assert!(reasons.contains("deploy.sh"), "{reasons}");
    assert!(reasons.contains("not signed"), "{reasons}");
    server.assert_ledger_intact();
}

/// Where both hooks run, post-receive finds the move already recorded and adds nothing.
#[test]
fn post_receive_next_to_reference_transaction_records_each_move_once() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let hooks = server.path.join("hooks");
    let pre = std::fs::read_to_string(hooks.join("pre-receive")).unwrap();
    std::fs::write(
        hooks.join("post-receive"),
        pre.replace("hook pre-receive", "hook post-receive"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        hooks.join("post-receive"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let work = env.clone_as(&server, "work", &alice());
    let tip = work.commit("one").file("a.yaml", "a: 1\n").create();
    work.push(&["origin", "main"]).assert_accepted();
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0]["new"].as_str(), Some(tip.as_str()));
    assert!(server.log(&["--kind", "rejected"]).is_empty());
    server.assert_ledger_intact();
}

/// Issue 11, item 6: on a platform that owns hooks/ (Gitea's dispatchers are already there),
/// `tally init --no-hooks` sets up tally/ and leaves every hook file alone; the platform's own
/// hook keeps running, and tally's scripts in its `.d` directories enforce and record.
#[test]
fn init_no_hooks_leaves_the_platforms_hooks_alone() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let path = env.bare_repo("gitea");
    let hooks = path.join("hooks");
    let dispatcher = "#!/bin/sh\ninput=$(cat)\necho \"platform hook $0 ran\" >&2\nfor h in \"$0.d\"/*; do\n  [ -x \"$h\" ] || continue\n  printf '%s\\n' \"$input\" | \"$h\" \"$@\" || exit $?\ndone\n";
    for hook in ["pre-receive", "post-receive"] {
        std::fs::create_dir_all(hooks.join(format!("{hook}.d"))).unwrap();
        std::fs::write(hooks.join(hook), dispatcher).unwrap();
        std::fs::set_permissions(hooks.join(hook), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let init = env.tally_init([
        path.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--no-hooks".as_ref(),
    ]);
    let stdout = String::from_utf8_lossy(&init.stdout);
    assert_eq!(init.status.code(), Some(0), "{init:?}");
    assert!(stdout.contains("not installed (--no-hooks)"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-receive")).unwrap(),
        dispatcher
    );
    assert!(!hooks.join("reference-transaction").exists());
    assert!(path.join("tally/policy.toml").exists());

    // The platform's install step, as the README gives it: tally's hook file in each .d.
    for hook in ["pre-receive", "post-receive"] {
        let file = hooks.join(format!("{hook}.d/tally"));
        std::fs::write(&file, format!("#!{TALLY} hook\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let server = env.server_at(path);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("unsigned")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:main"]);
    push.assert_refused();
    assert!(push.stderr.contains("platform hook"), "{}", push.stderr);
    // Start over with a signed root commit.
    run_ok(work.git().args(["update-ref", "-d", "HEAD"]));
    let good = work.commit("signed").file("a.yaml", "a: 1\n").create();
    work.push(&["origin", "HEAD:main"]).assert_accepted();
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(accepted[0]["new"], good.as_str(), "{accepted:?}");
    server.assert_ledger_intact();
}
