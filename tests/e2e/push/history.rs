//! Pushes refused for their history.

use super::*;
use crate::common::*;

#[test]
fn refuses_merge_commit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.git_ok(&["checkout", "-q", "-b", "side"]);
    work.commit("side").file("side.yaml", "s: 1\n").create();
    work.git_ok(&["checkout", "-q", "main"]);
    work.commit("main").file("main.yaml", "m: 1\n").create();
    let date = env.next_date();
    run_ok(
        work.git()
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(["merge", "-q", "--no-ff", "-S", "-m", "merge side", "side"]),
    );
    let merge = work.head();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let violations = push.violations();
    assert_eq!(violations.len(), 1, "{}", push.stderr);
    push.line_with(&[
        short(&merge),
        "merge commit (2 parents); history must be linear",
        "rebase instead of merging",
    ]);
}

#[test]
fn refuses_force_push() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let landed = work.commit("landed").file("a.yaml", "a: 1\n").create();
    work.push_main_ok();
    work.reset_hard(&base);
    work.commit("rewrite").file("a.yaml", "a: 2\n").create();
    let push = work.push(&["--force", "origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&landed));
    push.line_with(&[
        "update of refs/heads/main is not a fast-forward",
        "git pull --rebase",
        "without --force",
    ]);
}

#[test]
fn refuses_branch_deletion() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.push(&["origin", "main:refs/heads/release/1.0"])
        .assert_accepted();
    for branch in ["release/1.0", "main"] {
        let push = work.push(&["origin", &format!(":refs/heads/{branch}")]);
        assert_refused_and_unmoved(&push, &server, branch, Some(&base));
        push.line_with(&[
            &format!("refs/heads/{branch} cannot be deleted"),
            "protected branches cannot be deleted",
        ]);
    }
}

#[test]
fn refuses_protected_branch_created_from_unprotected_unsigned_history() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.git_ok(&["checkout", "-q", "-b", "feature"]);
    let unsigned = work
        .commit("wip")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    work.push(&["origin", "feature"]).assert_accepted();
    let tip = work.commit("signed").file("b.yaml", "b: 1\n").create();
    let push = work.push(&["origin", "feature:refs/heads/release/2.0"]);
    assert_refused_and_unmoved(&push, &server, "release/2.0", None);
    push.line_with(&[short(&unsigned), "commit is not signed"]);
    assert!(!push.stderr.contains(short(&tip)), "{}", push.stderr);
    // base is named only as the commit the fix rebases onto, never as a problem.
    for v in push.violations() {
        let (problem, fix) = v.split_once("; fix: ").unwrap();
        assert!(!problem.contains(short(&base)), "{}", push.stderr);
        assert!(fix.ends_with(short(&base)), "{}", push.stderr);
    }
}

#[test]
fn refuses_new_root_commit_on_an_existing_branch() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.git_ok(&["checkout", "-q", "--orphan", "other"]);
    let root = work.commit("unrelated").file("x.yaml", "x: 1\n").create();
    let push = work.push(&["--force", "origin", "other:refs/heads/main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["not a fast-forward"]);
    push.line_with(&[short(&root), "new root commit on an existing branch"]);
}

#[test]
fn refuses_push_to_the_ledger_ref() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    // Forced, so that the client does not stop it first: the ref already exists.
    let push = work.push(&["origin", "+HEAD:refs/tally/ledger"]);
    push.assert_refused();
    // tally itself publishes the ledger there (the refusal is recorded), never the pushed commit.
    assert_ne!(
        server.rev("refs/tally/ledger").as_deref(),
        Some(base.as_str())
    );
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    push.line_with(&[
        "refs/tally/ledger is reserved for tally's ledger",
        "refs/tally/ is written only by tally on the server",
    ]);
}
