//! Moves that do not come through a checked push: protected branches moved on the server,
//! and pushes to `refs/tally/ledger`, which is tally's alone.

use std::process::Output;

use super::*;
use crate::common::*;

// =============================================================================================
// Server-side moves

/// A signed commit on the server that main could be moved to, pushed to an unprotected branch.
fn side_commit(work: &Work<'_>, name: &str) -> String {
    let id = work
        .commit(name)
        .file(&format!("{name}.yaml"), "side: true\n")
        .create();
    work.push(&["origin", &format!("HEAD:refs/heads/side-{name}")])
        .assert_accepted();
    id
}

/// Runs git in the bare repository with the hooks active; returns the output.
fn server_git(server: &Server<'_>, args: &[&str]) -> Output {
    server.git().args(args).output().unwrap()
}

/// Asserts a server-side git command was refused by the reference-transaction hook, main did
/// not move, and the newest entry is a `rejected` one recording the attempt.
fn assert_move_refused(
    server: &Server<'_>,
    args: &[&str],
    main: &str,
    old: Option<&str>,
    new: Option<&str>,
) {
    let before = server.log(&[]).len();
    let out = server_git(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "git {args:?} should fail:\n{stderr}");
    assert!(
        stderr.contains("refs/heads/main moved outside an accepted push"),
        "git {args:?}:\n{stderr}"
    );
    assert_eq!(
        server.branch("main").as_deref(),
        Some(main),
        "git {args:?} moved main"
    );
    let entries = server.log(&[]);
    assert_eq!(entries.len(), before + 1, "git {args:?}: one new entry");
    let e = &entries[0];
    assert_eq!(kind(e), "rejected", "{e}");
    assert_eq!(field(e, "ref"), "refs/heads/main");
    assert_eq!((opt(e, "old"), opt(e, "new")), (old, new), "git {args:?}");
    let r = reasons(e);
    assert!(
        r.len() == 1 && r[0].starts_with("refs/heads/main moved outside an accepted push"),
        "{r:?}"
    );
    server.assert_ledger_intact();
}

#[test]
fn server_side_update_ref_of_a_protected_branch_is_refused_and_recorded() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let other = side_commit(&work, "other");

    // Without an expected old value git passes the zero id as the old value; the entry
    // records where the branch actually was.
    assert_move_refused(
        &server,
        &["update-ref", "refs/heads/main", &other],
        &base,
        Some(&base),
        Some(&other),
    );
    assert_move_refused(
        &server,
        &["update-ref", "refs/heads/main", &other, &base],
        &base,
        Some(&base),
        Some(&other),
    );
    assert_move_refused(
        &server,
        &[
            "update-ref",
            "-m",
            "hotfix",
            "refs/heads/main",
            &other,
            &base,
        ],
        &base,
        Some(&base),
        Some(&other),
    );
    let out = run_with_stdin(
        server.git().args(["update-ref", "--stdin"]),
        format!("update refs/heads/main {other} {base}\n").as_bytes(),
    );
    assert!(!out.status.success());
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
}

#[test]
fn server_side_branch_force_of_a_protected_branch_is_refused_and_recorded() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let other = side_commit(&work, "other");
    assert_move_refused(
        &server,
        &["branch", "-f", "main", &other],
        &base,
        Some(&base),
        Some(&other),
    );
}

#[test]
fn server_side_deletion_of_a_protected_branch_with_its_old_value_is_refused_and_recorded() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    assert_move_refused(
        &server,
        &["update-ref", "-d", "refs/heads/main", &base],
        &base,
        Some(&base),
        None,
    );
}

#[test]
fn server_side_deletion_of_a_protected_branch_without_old_value_is_refused() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let mut failures = Vec::new();
    for args in [
        &["update-ref", "-d", "refs/heads/main"][..],
        &["branch", "-D", "main"][..],
    ] {
        // Each command starts from main at base (put back with the hooks off if the previous
        // one deleted it).
        run_ok(
            server
                .git()
                .args(["-c", NO_HOOKS, "update-ref", "refs/heads/main", &base]),
        );
        let before = server.log(&[]).len();
        let out = server_git(&server, args);
        let entries = server.log(&[]);
        if out.status.success() {
            failures.push(format!("git {args:?} exited 0"));
        }
        if server.branch("main").as_deref() != Some(base.as_str()) {
            failures.push(format!("git {args:?} deleted main"));
        }
        if entries.len() != before + 1
            || kind(&entries[0]) != "rejected"
            || opt(&entries[0], "new").is_some()
        {
            failures.push(format!("git {args:?} was not recorded as rejected"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn verify_reports_a_protected_branch_moved_with_the_hooks_bypassed() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let other = side_commit(&work, "other");
    run_ok(
        server
            .git()
            .args(["-c", NO_HOOKS, "update-ref", "refs/heads/main", &other]),
    );
    assert_verify_fails(
        &server,
        "main moved with the hooks off",
        &[&format!(
            "refs/heads/main points to {other} but the ledger records it at {base}"
        )],
    );
}

#[test]
fn verify_reports_a_protected_branch_deleted_with_the_hooks_bypassed() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    run_ok(
        server
            .git()
            .args(["-c", NO_HOOKS, "update-ref", "-d", "refs/heads/main"]),
    );
    assert_eq!(server.branch("main"), None);
    assert_verify_fails(
        &server,
        "main deleted with the hooks off",
        &["refs/heads/main"],
    );
}

// =============================================================================================
// refs/tally/ledger is tally's alone

#[test]
fn a_push_to_the_ledger_ref_is_refused_and_never_lands() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let published = server.rev("refs/tally/ledger").unwrap();

    // Forced, so that git push does not refuse the non-fast-forward itself.
    let push = work.push(&["origin", "+HEAD:refs/tally/ledger"]);
    push.assert_refused();
    push.line_with(&["refs/tally/ledger is reserved for tally's ledger"]);
    let rejected = &server.log(&["--limit", "1"])[0];
    assert_eq!(kind(rejected), "rejected");
    assert_eq!(field(rejected, "ref"), "refs/tally/ledger");
    assert_eq!(opt(rejected, "new"), Some(base.as_str()));

    // Deleting it and creating a sibling are refused too.
    work.push(&["origin", ":refs/tally/ledger"])
        .assert_refused();
    work.push(&["origin", "HEAD:refs/tally/other"])
        .assert_refused();
    assert_eq!(server.rev("refs/tally/other"), None);

    // The ref only ever moved forward through tally's own publications.
    let tip = server.rev("refs/tally/ledger").unwrap();
    let chain = stdout_of(server.git().args(["rev-list", "refs/tally/ledger"]));
    assert!(!chain.lines().any(|c| c == base), "{chain}");
    assert!(chain.lines().any(|c| c == published));
    let range = stdout_of(
        server
            .git()
            .args(["cat-file", "blob", &format!("{tip}:range")]),
    );
    let size = server.log(&[]).len();
    assert!(range.ends_with(&format!(" {size}")), "{range}");
    server.assert_ledger_intact();

    // On the server, with the hooks active, it cannot be moved by hand either.
    let out = server_git(&server, &["update-ref", "refs/tally/ledger", &base]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refs/tally/ledger is reserved for tally's ledger"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = stdout_of(server.git().args(["rev-list", "refs/tally/ledger"]));
    assert!(!chain.lines().any(|c| c == base), "{chain}");
    server.assert_ledger_intact();
}
