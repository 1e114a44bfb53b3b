//! Good pushes: the approved commit is the tip.

use super::*;
use crate::common::*;

#[test]
fn the_approved_commit_is_the_branch_tip_after_good_pushes() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());

    // First run: trust on first use of the ledger, the whole history checked.
    assert_eq!(agent.pull(&[]).approved(), base);
    assert_eq!(agent.head(), base);
    let state = agent.state();
    assert_eq!(state["version"], 1);
    assert_eq!(state["branch"], "refs/heads/main");
    assert_eq!(state["deployed"]["commit"], base.as_str());

    // Alice and Bob push; the agent follows, incrementally.
    let a2 = work.commit("a2").file("a2.yaml", "a: 2\n").create();
    let b1 = work
        .commit("b1")
        .file("b1.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.push_main_ok();
    let a3 = work.commit("a3").file("a3.yaml", "a: 3\n").create();
    work.push_main_ok();
    assert_eq!(server.branch("main").unwrap(), a3);

    let json: Value = serde_json::from_str(&agent.pull(&["--json"]).approved()).unwrap();
    assert_eq!(json["commit"], a3.as_str());
    assert_eq!(json["previous"], base.as_str());
    assert_eq!(
        json["tree"],
        agent
            .git_ok(&["rev-parse", &format!("{a3}^{{tree}}")])
            .as_str()
    );
    let signed: Vec<(&str, &str)> = json["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["commit"].as_str().unwrap(),
                s["principal"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        signed,
        [
            (a2.as_str(), "alice@example.com"),
            (b1.as_str(), "bob@example.com"),
            (a3.as_str(), "alice@example.com")
        ]
    );
    let log = server.log(&[]);
    assert_eq!(
        json["seq"],
        log.iter().find(|e| e["kind"] == "accepted").unwrap()["seq"]
    );
    assert_eq!(json["checkpoint"]["size"], log.len());
    assert!(
        json["checkpoint"]["note"]
            .as_str()
            .unwrap()
            .contains("\n\n\u{2014} ")
    );
    assert_eq!(agent.head(), a3);
    assert_eq!(agent.state()["deployed"]["commit"], a3.as_str());

    // Nothing new: verify approves the same commit again and changes nothing.
    let before = std::fs::read(agent.state_path()).unwrap();
    assert_eq!(agent.verify(&[]).approved(), a3);
    assert_eq!(std::fs::read(agent.state_path()).unwrap(), before);

    // A heartbeat (`tally ledger checkpoint`) publishes a checkpoint without entries.
    let out = server.tally(&["ledger", "checkpoint"]);
    assert!(out.status.success());
    assert_eq!(agent.pull(&["--max-age", "1h"]).approved(), a3);
    // The next heartbeat replaces the one the agent pinned (issue 11: history grows with
    // entries, not heartbeats); the agent, fetching the ref forced, takes the fresher note.
    // (A checkpoint's time is in whole seconds: wait for the next one so the note differs.)
    let pinned = agent.state()["checkpoint"]["note"].clone();
    wait_for_the_next_second();
    let out = server.tally(&["ledger", "checkpoint"]);
    assert!(out.status.success());
    assert_eq!(agent.pull(&["--max-age", "1h"]).approved(), a3);
    assert_ne!(agent.state()["checkpoint"]["note"], pinned);

    // A refused push is recorded in the ledger but changes nothing for the agent.
    work.commit("unsigned").unsigned().create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    assert_eq!(agent.pull(&[]).approved(), a3);
}

#[test]
fn a_second_clone_keeps_its_own_state_and_state_can_live_elsewhere() {
    let env = TestEnv::new();
    let (server, _work, base) = server_with_base(&env);
    let one = Agent::new(&env, &server, "one", &alice_and_bob());
    let two = Agent::new(&env, &server, "two", &alice_and_bob());
    let elsewhere = env.root().join("states/two.json");
    assert_eq!(one.pull(&[]).approved(), base);
    assert_eq!(
        two.pull(&["--state", elsewhere.to_str().unwrap()])
            .approved(),
        base
    );
    assert!(one.state_path().exists());
    assert!(!two.state_path().exists());
    assert!(elsewhere.exists());
}
