//! What the agent tells a person (issue 13): what it approved and why that is trusted, what is
//! new and who signed it, trust on first use said plainly, and a refusal grouped by kind. The
//! text is pinned by snapshots; the approved commit alone stays on stdout for scripts.

use super::*;
use crate::common::*;

/// The agent's stderr made stable: commits by the names given, keys by owner, the temporary
/// directory, then what varies by shape ([`normalise`]).
fn stable(env: &TestEnv, text: &str, commits: &[(&str, &str)]) -> String {
    let mut known: Vec<(String, String)> = vec![
        (keys().alice.fingerprint.clone(), "SHA256:<alice>".into()),
        (keys().bob.fingerprint.clone(), "SHA256:<bob>".into()),
    ];
    for root in [env.root().to_owned(), env.root().canonicalize().unwrap()] {
        known.push((root.display().to_string(), "<tmp>".into()));
    }
    for (id, name) in commits {
        known.push((id.to_string(), format!("<{name}>")));
        known.push((short(id).to_owned(), format!("<{name}>")));
    }
    let known: Vec<(&str, &str)> = known
        .iter()
        .map(|(v, l)| (v.as_str(), l.as_str()))
        .collect();
    normalise(text, &known)
}

#[test]
fn verify_says_what_it_approved_and_why_on_a_first_run_new_commits_and_nothing_new() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let a2 = work.commit("a2").file("a2.yaml", "a: 2\n").create();
    work.push_main_ok();
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    agent.fetch();

    // First run: trust on first use, said as a warning; stdout is the commit id alone.
    let first = agent.verify(&[]);
    assert_eq!(first.approved(), a2);
    assert_eq!(first.stdout, format!("{a2}\n"));
    let names = [(base.as_str(), "base"), (a2.as_str(), "a2")];
    insta::assert_snapshot!("verify_first_run", stable(&env, &first.stderr, &names));

    // New commits by two signers: counted, grouped by signer.
    let a3 = work.commit("a3").file("a3.yaml", "a: 3\n").create();
    let a4 = work.commit("a4").file("a4.yaml", "a: 4\n").create();
    let b1 = work
        .commit("b1")
        .file("b1.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.push_main_ok();
    agent.fetch();
    let next = agent.verify(&[]);
    assert_eq!(next.approved(), b1);
    let names = [
        (base.as_str(), "base"),
        (a2.as_str(), "a2"),
        (a3.as_str(), "a3"),
        (a4.as_str(), "a4"),
        (b1.as_str(), "b1"),
    ];
    insta::assert_snapshot!("verify_new_commits", stable(&env, &next.stderr, &names));

    // Nothing changed since: said so.
    let again = agent.verify(&[]);
    assert_eq!(again.approved(), b1);
    insta::assert_snapshot!("verify_nothing_new", stable(&env, &again.stderr, &names));

    // --json keeps its object on stdout, and only warnings (none now) on stderr.
    let json = agent.verify(&["--json"]);
    let value: Value = serde_json::from_str(&json.approved()).unwrap();
    assert_eq!(value["commit"], b1.as_str());
    assert_eq!(json.stderr, "");
}

#[test]
fn verify_from_trust_from_warns_that_the_earlier_history_was_not_checked() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let a2 = work.commit("a2").file("a2.yaml", "a: 2\n").create();
    let a3 = work.commit("a3").file("a3.yaml", "a: 3\n").create();
    work.push_main_ok();
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    agent.fetch();
    let run = agent.verify(&["--trust-from", &base, "--json"]);
    let value: Value = serde_json::from_str(&run.approved()).unwrap();
    assert_eq!(value["first_run"], true);
    // With --json, the warnings still reach a person on stderr.
    assert!(
        run.stderr.contains("warning: --trust-from"),
        "{}",
        run.stderr
    );
    let names = [
        (base.as_str(), "base"),
        (a2.as_str(), "a2"),
        (a3.as_str(), "a3"),
    ];
    insta::assert_snapshot!(
        "verify_trust_from_json_stderr",
        stable(&env, &run.stderr, &names)
    );
}

#[test]
fn pull_says_what_it_fast_forwarded_to() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    let a2 = work.commit("a2").file("a2.yaml", "a: 2\n").create();
    let a3 = work.commit("a3").file("a3.yaml", "a: 3\n").create();
    work.push_main_ok();
    let run = agent.pull(&[]);
    assert_eq!(run.stdout, format!("{a3}\n"));
    assert_eq!(run.code, 0);
    assert_eq!(agent.head(), a3);
    let names = [
        (base.as_str(), "base"),
        (a2.as_str(), "a2"),
        (a3.as_str(), "a3"),
    ];
    insta::assert_snapshot!("pull_new_commits", stable(&env, &run.stderr, &names));
}

#[test]
fn an_agent_refusal_names_the_untrusted_commits_as_one_range() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let alice_only = AllowedSigners::new().signer("alice@example.com", &keys().alice);
    let agent = Agent::new(&env, &server, "agent", &alice_only);
    assert_eq!(agent.pull(&[]).approved(), base);
    let mut names = vec![(base.clone(), "base".to_owned())];
    for i in 1..=5 {
        let id = work
            .commit(&format!("b{i}"))
            .file(&format!("b{i}.yaml"), format!("b: {i}\n"))
            .by(&bob())
            .create();
        names.push((id, format!("b{i}")));
    }
    work.push_main_ok();
    let run = agent.pull(&[]);
    run.assert_refused(&[
        "5 commits",
        "are refused by this agent's own signature check",
    ]);
    let lines: Vec<&str> = run
        .joined
        .lines()
        .filter(|l| l.starts_with("tally: pull: "))
        .collect();
    assert_eq!(lines.len(), 1, "one line for five commits: {}", run.stderr);
    assert_eq!(agent.head(), base);
    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|(id, n)| (id.as_str(), n.as_str()))
        .collect();
    insta::assert_snapshot!("pull_refused_grouped", stable(&env, &run.stderr, &names));
}

/// No `refs/tally/ledger` in the clone is a setup problem (exit 2) for an agent that never
/// verified one: nothing was fetched yet, or the server does not run tally. For an agent that
/// did, it is the server that stopped publishing the ledger it follows: a refusal (exit 1)
/// that says what was last verified.
#[test]
fn a_clone_without_a_ledger_is_a_setup_problem_until_one_was_verified() {
    let env = TestEnv::new();
    let (server, _work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    // A plain clone has the branch but not refs/tally/ledger.
    let first = agent.verify(&[]);
    let line = first.assert_failed(2, &["has no refs/tally/ledger", "git fetch"]);
    assert!(
        line.contains("+refs/tally/ledger:refs/tally/ledger"),
        "{line}"
    );

    agent.fetch();
    assert_eq!(agent.verify(&[]).approved(), base);
    agent.git_ok(&["update-ref", "-d", "refs/tally/ledger"]);
    let gone = agent.verify(&[]);
    gone.assert_failed(
        1,
        &[
            "has no refs/tally/ledger",
            "last verified its entry",
            "administrator",
        ],
    );
}

/// A first `pull` that verifies (and so pins the ledger) but cannot deploy still says the
/// trust-on-first-use warnings: the next run is not a first run and never repeats them.
#[test]
fn a_first_pull_that_fails_locally_still_warns_about_trust_on_first_use() {
    let env = TestEnv::new();
    let (server, work, _base) = server_with_base(&env);
    work.commit("b").file("b.yaml", "b: 1\n").create();
    work.push_main_ok();
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    // Roll the clone back one commit and leave an untracked file where b.yaml will go.
    run_ok(
        env.git(&agent.path)
            .args(["reset", "-q", "--hard", "HEAD~1"]),
    );
    std::fs::write(agent.path.join("b.yaml"), "mine\n").unwrap();
    let run = agent.pull(&[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.joined.contains("warning: first run"), "{}", run.stderr);
    assert!(agent.state_path().exists());
}

/// A remote that answers without `refs/tally/ledger` is not a network problem to retry: a
/// setup problem before this agent ever verified, a refusal after.
#[test]
fn pull_from_a_server_that_stopped_publishing_is_refused_not_retried() {
    let env = TestEnv::new();
    let (server, _work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    // Another repository, with the branch but no ledger, first.
    let plain = env.root().join("plain.git");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q", "--bare"])
            .arg(&server.path)
            .arg(&plain),
    );
    run_ok(
        env.git(&plain)
            .args(["update-ref", "-d", "refs/tally/ledger"]),
    );
    run_ok(
        env.git(&agent.path)
            .args(["remote", "set-url", "origin"])
            .arg(&plain),
    );
    agent
        .pull(&[])
        .assert_failed(2, &["has no refs/tally/ledger", "git remote -v"]);

    run_ok(
        env.git(&agent.path)
            .args(["remote", "set-url", "origin"])
            .arg(&server.path),
    );
    assert_eq!(agent.pull(&[]).approved(), base);
    run_ok(
        env.git(&agent.path)
            .args(["remote", "set-url", "origin"])
            .arg(&plain),
    );
    agent.pull(&[]).assert_failed(
        1,
        &["has no refs/tally/ledger", "verified its ledger before"],
    );
}
