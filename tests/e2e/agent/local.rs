//! What the agent keeps itself: its own signers, its state file, and a work tree that `pull`
//! never moves on failure.

use super::*;
use crate::common::*;

// =============================================================================================
// The agent's own signers

#[test]
fn an_agent_that_does_not_trust_a_new_signer_refuses_what_the_server_accepted() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let only_alice = AllowedSigners::new().signer("alice@example.com", &keys().alice);
    let agent = Agent::new(&env, &server, "agent", &only_alice);
    assert_eq!(agent.pull(&[]).approved(), base);

    let b1 = work
        .commit("bob's")
        .file("b.yaml", "b: 1\n")
        .by(&bob())
        .create();
    let a2 = work.commit("alice's").file("a.yaml", "a: 2\n").create();
    work.push_main_ok();
    assert_eq!(
        server.branch("main").unwrap(),
        a2,
        "the server accepted both"
    );

    let run = agent.pull(&[]);
    run.assert_refused(&[
        &format!("commit {}", short(&b1)),
        &keys().bob.fingerprint,
        "not in allowed_signers",
        &agent.signers.display().to_string(),
    ]);
    assert_eq!(
        run.joined.lines().count(),
        1,
        "only Bob's commit: {}",
        run.stderr
    );
    assert_eq!(agent.head(), base);
    assert_eq!(agent.state()["deployed"]["commit"], base.as_str());

    // Once the operator trusts Bob, the same commits are approved.
    std::fs::write(&agent.signers, alice_and_bob().text()).unwrap();
    assert_eq!(agent.pull(&[]).approved(), a2);
}

#[test]
fn a_first_run_checks_the_whole_history_or_starts_from_trust_from() {
    let env = TestEnv::new();
    // History that predates tally: unsigned commits, then tally init records a baseline.
    let (server, baseline) = env.server_with_history_before_init();
    let work = env.clone_as(&server, "work", &alice());
    let signed = work.commit("signed").file("s.yaml", "s: 1\n").create();
    work.push_main_ok();

    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    let run = agent.pull(&[]);
    run.assert_refused(&["commit is not signed"]);
    run.assert_refused(&[&format!("--trust-from {baseline}")]);
    assert!(!agent.state_path().exists(), "nothing pinned on failure");

    let json: Value = serde_json::from_str(
        &agent
            .pull(&["--trust-from", &baseline, "--json"])
            .approved(),
    )
    .unwrap();
    assert_eq!(json["commit"], signed.as_str());
    assert_eq!(json["previous"], baseline.as_str());
    assert_eq!(json["signers"].as_array().unwrap().len(), 1);

    agent.verify(&["--trust-from", "not-a-commit"]).approved(); // ignored once a state exists
}

#[test]
fn a_checkpoint_not_signed_by_the_pinned_key_is_refused() {
    let env = TestEnv::new();
    let (server, _work, _base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    // The operator pinned some other ed25519 key.
    std::fs::copy(&keys().mallory.public, &agent.key).unwrap();
    agent
        .pull(&[])
        .assert_refused(&["does not verify with the pinned ledger key"]);
    assert!(!agent.state_path().exists());
}

// =============================================================================================
// The state file

#[test]
fn a_corrupt_state_file_fails_and_is_never_replaced_by_a_fresh_start() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    work.commit("next").file("n.yaml", "n: 1\n").create();
    work.push_main_ok();
    let good = std::fs::read_to_string(agent.state_path()).unwrap();
    let path = agent.state_path().display().to_string();

    let mut tampered: Value = serde_json::from_str(&good).unwrap();
    tampered["checkpoint"]["size"] = Value::from(1);
    let cases = [
        ("empty", String::new()),
        ("truncated", good[..good.len() / 2].to_owned()),
        ("not json", "garbage\n".to_owned()),
        (
            "future version",
            good.replacen("\"version\": 1", "\"version\": 2", 1),
        ),
        ("size edited", serde_json::to_string(&tampered).unwrap()),
    ];
    for (what, text) in cases {
        std::fs::write(agent.state_path(), &text).unwrap();
        let run = agent.pull(&[]);
        run.assert_refused(&[&path, "is unusable"]);
        assert_eq!(agent.head(), base, "{what}: moved");
        assert_eq!(
            std::fs::read_to_string(agent.state_path()).unwrap(),
            text,
            "{what}: the state file was rewritten"
        );
    }
    std::fs::write(agent.state_path(), &good).unwrap();
    assert_eq!(agent.pull(&[]).approved(), work.head());
}

// =============================================================================================
// pull never moves anything on failure

#[test]
fn pull_never_moves_the_work_tree_on_failure() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let only_alice = AllowedSigners::new().signer("alice@example.com", &keys().alice);
    let agent = Agent::new(&env, &server, "agent", &only_alice);
    assert_eq!(agent.pull(&[]).approved(), base);

    // A verification failure: Bob's commit, which this agent does not trust.
    work.commit("bob")
        .file("b.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.push_main_ok();
    let before = agent.snapshot();
    let refused = agent.pull(&[]);
    refused.assert_refused(&["not in allowed_signers"]);
    assert_eq!(agent.snapshot(), before);
    assert!(!agent.path.join("b.yaml").exists());

    // Local changes: refused before anything is fetched, and left as they were.
    std::fs::write(agent.path.join("base.yaml"), "edited: locally\n").unwrap();
    std::fs::write(&agent.signers, alice_and_bob().text()).unwrap();
    let before = agent.snapshot();
    agent
        .pull(&[])
        .assert_local(&["local changes", "never touches them"]);
    assert_eq!(agent.snapshot(), before);
    assert_eq!(
        std::fs::read_to_string(agent.path.join("base.yaml")).unwrap(),
        "edited: locally\n"
    );

    // Local commits the ledger never approved: no fast-forward, nothing moves.
    run_ok(
        env.git(&agent.path)
            .args(["checkout", "-q", "--", "base.yaml"]),
    );
    run_ok(env.git(&agent.path).args([
        "-c",
        "user.name=Op",
        "-c",
        "user.email=op@example.com",
        "commit",
        "-q",
        "--no-gpg-sign",
        "--allow-empty",
        "-m",
        "local hotfix",
    ]));
    let before = agent.snapshot();
    agent
        .pull(&[])
        .assert_local(&["not an ancestor of the approved commit"]);
    assert_eq!(agent.snapshot(), before);

    // Back on the approved line, the pull goes through.
    run_ok(env.git(&agent.path).args(["reset", "-q", "--hard", &base]));
    assert_eq!(agent.pull(&[]).approved(), server.branch("main").unwrap());
    assert_eq!(agent.head(), server.branch("main").unwrap());
}
