//! What a server outside tally's control can do to an agent (issue 4): a branch moved
//! outside tally, rollback, fork, freeze, mix-and-match.

use std::time::Duration;

use tally_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use tally_ledger::merkle::{Frontier, leaf_hash};
use tally_ledger::{Entry, EntryView, Kind};

use super::*;
use crate::common::*;

/// A copy of the whole bare repository: objects, refs, hooks, the ledger and its key.
fn copy_server<'e>(env: &'e TestEnv, server: &Server<'_>, name: &str) -> Server<'e> {
    let path = env.root().join(format!("{name}.git"));
    copy_dir(&server.path, &path);
    env.server_at(path)
}

/// A signed commit on top of the work clone's HEAD that is pushed to the unprotected branch
/// `side` (so the server has it) while the clone's main stays where it was.
fn side_commit(work: &Work<'_>, name: &str) -> String {
    let before = work.head();
    let id = work
        .commit(name)
        .file(&format!("{name}.yaml"), "a: 1\n")
        .create();
    work.push(&["origin", &format!("{id}:refs/heads/side")])
        .assert_accepted();
    work.reset_hard(&before);
    id
}

/// Moves a branch on the server with every hook bypassed, as a shell on the server could.
fn move_outside_tally(server: &Server<'_>, refname: &str, id: &str) {
    run_ok(
        server
            .git()
            .args(["-c", NO_HOOKS, "update-ref", refname, id]),
    );
}

/// Appends an `accepted` entry for main with the given commit and tree to the published ledger
/// of `server`, signed with the server's own ledger key: what the holder of the ledger key (or
/// a buggy server) could publish.
fn forge_accepted_entry(env: &TestEnv, server: &Server<'_>, commit: &str, tree: &str) {
    forge_accepted_entry_with(env, server, commit, tree, str::to_owned);
}

/// [`forge_accepted_entry`], with the signed note passed through `edit` before publication.
fn forge_accepted_entry_with(
    env: &TestEnv,
    server: &Server<'_>,
    commit: &str,
    tree: &str,
    edit: impl Fn(&str) -> String,
) {
    let entries = published_entries(env, &server.path);
    let last = entries.last().unwrap();
    let previous = EntryView::parse(last).unwrap();
    // A careful forger moves main on from where the ledger has it (continuity).
    let mut chain = tally_ledger::ChainVerifier::new(previous.repository);
    for e in &entries {
        chain
            .check(&EntryView::parse(e).unwrap(), &leaf_hash(e))
            .unwrap();
    }
    let old = chain
        .position("refs/heads/main")
        .unwrap()
        .and_then(|p| p.commit.clone());
    let entry = Entry {
        seq: entries.len() as u64,
        kind: Kind::Accepted,
        time: jiff::Timestamp::now(),
        repository: previous.repository.to_owned(),
        refname: "refs/heads/main".into(),
        old,
        new: Some(raw_id(commit)),
        new_tree: Some(raw_id(tree)),
        commits: Vec::new(),
        pusher: "forger".into(),
        policy_digest: previous.policy_digest,
        reasons: Vec::new(),
        aborts: None,
        prev_hash: leaf_hash(last),
    };
    let bytes = entry.encode().unwrap();
    let mut frontier = Frontier::new();
    for e in entries.iter().chain([&bytes]) {
        frontier.append(&leaf_hash(e));
    }
    let tip_note =
        stdout_of(
            server
                .git()
                .args(["cat-file", "blob", "refs/tally/ledger:checkpoint"]),
        );
    let origin = SignedCheckpoint::parse(&format!("{tip_note}\n"))
        .unwrap()
        .unverified()
        .origin
        .clone();
    let key = tally_ledger::key::load_signing(&server.tally_dir().join("ledger_key")).unwrap();
    let checkpoint = Checkpoint {
        origin,
        size: frontier.size(),
        root: frontier.root(),
    };
    let now = jiff::Timestamp::now().as_second() as u64;
    let note = checkpoint.sign(now, &key).unwrap();
    let tip = server.rev("refs/tally/ledger").unwrap();
    write_publication(
        env,
        &server.path,
        Some(&tip),
        entries.len() as u64,
        &[bytes],
        &edit(note.text()),
    );
}

// =============================================================================================
// Arbitrary revision: a branch moved on the server outside tally

#[test]
fn a_branch_moved_on_the_server_outside_tally_is_not_approved() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    let before = std::fs::read(agent.state_path()).unwrap();

    // Signed by a trusted signer, but it never went through an accepted push.
    let other = side_commit(&work, "unreviewed");
    move_outside_tally(&server, "refs/heads/main", &other);

    let run = agent.pull(&[]);
    run.assert_refused(&[
        &format!("refs/tally/remotes/origin/main is at {other}"),
        &format!("records {base}"),
        "moved on the server without going through tally",
        &format!("staying on {base}"),
    ]);
    assert_eq!(agent.head(), base);
    assert_eq!(std::fs::read(agent.state_path()).unwrap(), before);

    // `verify` on the fetched clone says the same.
    agent
        .verify(&[])
        .assert_refused(&["moved on the server without going through tally"]);
}

#[test]
fn a_ledger_entry_whose_commit_was_never_fetched_is_reported() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    let next = work.commit("next").file("n.yaml", "n: 1\n").create();
    work.push_main_ok();
    // Only the ledger is fetched.
    run_ok(env.git(&agent.path).args([
        "fetch",
        "-q",
        "origin",
        "+refs/tally/ledger:refs/tally/ledger",
    ]));
    agent
        .verify(&[])
        .assert_refused(&[&format!("records commit {next}"), "not in this clone"]);
}

// =============================================================================================
// Rollback

#[test]
fn an_older_copy_of_the_server_is_refused_as_a_rollback() {
    let env = TestEnv::new();
    let (server, work, _base) = server_with_base(&env);
    let backup = copy_server(&env, &server, "backup");
    work.commit("two").file("two.yaml", "t: 2\n").create();
    work.push_main_ok();
    let three = work.commit("three").file("three.yaml", "t: 3\n").create();
    work.push_main_ok();

    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), three);
    let size = agent.state()["checkpoint"]["size"].as_u64().unwrap();
    let before = std::fs::read(agent.state_path()).unwrap();

    // The agent is now served the old but validly signed state.
    agent.set_remote(&backup);
    let run = agent.pull(&[]);
    run.assert_refused(&["rollback", &format!("already saw {size}")]);
    assert_eq!(agent.head(), three);
    assert_eq!(std::fs::read(agent.state_path()).unwrap(), before);

    // And it keeps refusing: the pinned state did not move back.
    agent.verify(&[]).assert_refused(&["rollback"]);
}

// =============================================================================================
// Fork (split view)

#[test]
fn two_diverging_ledgers_of_the_same_size_are_a_fork_with_evidence() {
    let env = TestEnv::new();
    let (server, work, _base) = server_with_base(&env);
    // Two servers with the same history and key, then each accepts a different push.
    let other = copy_server(&env, &server, "other");
    let ours = work.commit("ours").file("ours.yaml", "o: 1\n").create();
    work.push_main_ok();
    let before = work.head();
    work.reset_hard(&format!("{before}~1"));
    let theirs = work.commit("theirs").file("theirs.yaml", "t: 1\n").create();
    work.push(&[other.path.to_str().unwrap(), "HEAD:refs/heads/main"])
        .assert_accepted();
    assert_eq!(other.branch("main").unwrap(), theirs);
    let size = |s: &Server<'_>| s.log(&[]).len();
    assert_eq!(size(&server), size(&other));

    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), ours);
    let pinned_note = agent.state()["checkpoint"]["note"]
        .as_str()
        .unwrap()
        .to_owned();

    agent.set_remote(&other);
    let run = agent.pull(&[]);
    let line = run.assert_refused(&["fork", &format!("at size {}", size(&server))]);
    assert_eq!(agent.head(), ours);

    // Both signed checkpoints are kept next to the state file, and the message names them.
    let dir = agent.state_path().parent().unwrap().to_owned();
    let mut evidence: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".fork-"))
        .collect();
    evidence.sort();
    assert_eq!(evidence.len(), 2, "{evidence:?}");
    for p in &evidence {
        assert!(line.contains(&p.display().to_string()), "{line}");
    }
    let pinned = evidence
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".pinned.checkpoint"));
    let served = evidence
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".served.checkpoint"));
    assert_eq!(
        std::fs::read_to_string(pinned.unwrap()).unwrap(),
        pinned_note
    );
    let served_note =
        stdout_of(
            other
                .git()
                .args(["cat-file", "blob", "refs/tally/ledger:checkpoint"]),
        );
    assert_eq!(
        std::fs::read_to_string(served.unwrap()).unwrap().trim_end(),
        served_note
    );
}

#[test]
fn a_fork_behind_a_longer_ledger_is_caught_by_the_pinned_frontier() {
    let env = TestEnv::new();
    let (server, work, _base) = server_with_base(&env);
    let other = copy_server(&env, &server, "other");
    let ours = work.commit("ours").file("ours.yaml", "o: 1\n").create();
    work.push_main_ok();
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), ours);

    // The other server accepted two different pushes: larger, but not an extension.
    work.reset_hard(&format!("{ours}~1"));
    work.commit("t1").file("t1.yaml", "t: 1\n").create();
    work.push(&[other.path.to_str().unwrap(), "HEAD:refs/heads/main"])
        .assert_accepted();
    work.commit("t2").file("t2.yaml", "t: 2\n").create();
    work.push(&[other.path.to_str().unwrap(), "HEAD:refs/heads/main"])
        .assert_accepted();

    agent.set_remote(&other);
    agent.pull(&[]).assert_refused(&["fork", "pinned root"]);
    assert_eq!(agent.head(), ours);
}

// =============================================================================================
// Freeze

#[test]
fn a_checkpoint_older_than_max_age_is_refused() {
    let env = TestEnv::new();
    let (server, _work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&["--max-age", "1h"]).approved(), base);

    // The server (or a mirror) keeps serving this checkpoint; time passes.
    std::thread::sleep(Duration::from_millis(2100));
    agent
        .pull(&["--max-age", "1s"])
        .assert_refused(&["more than --max-age 1 s", "freezing"]);
    agent
        .verify(&["--max-age", "1s"])
        .assert_refused(&["more than --max-age 1 s"]);
    // Without the limit, or with a looser one, the same state is fine.
    assert_eq!(agent.verify(&["--max-age", "10m"]).approved(), base);

    // The server's heartbeat signs a fresh checkpoint of the unchanged ledger.
    assert!(server.tally(&["ledger", "checkpoint"]).status.success());
    assert_eq!(agent.pull(&["--max-age", "1m"]).approved(), base);
}

#[test]
fn a_max_age_that_is_not_a_duration_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env
        .tally()
        .args([
            "verify",
            "--ledger-key",
            "k",
            "--allowed-signers",
            "s",
            "--max-age",
            "soon",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// =============================================================================================
// Mix-and-match

#[test]
fn a_new_ledger_served_with_an_old_branch_is_refused() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    let next = work.commit("next").file("n.yaml", "n: 1\n").create();
    work.push_main_ok();

    // A mirror serves today's ledger with yesterday's branch.
    let mirror = copy_server(&env, &server, "mirror");
    move_outside_tally(&mirror, "refs/heads/main", &base);
    agent.fetch();
    agent.set_remote(&mirror);
    agent.pull(&[]).assert_refused(&[
        &format!("refs/tally/remotes/origin/main is at {base}"),
        &format!("records {next}"),
    ]);
    assert_eq!(agent.head(), base);
}

#[test]
fn a_ledger_entry_whose_tree_is_not_the_commits_is_refused() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);

    // A signed commit lands on main outside tally, and a ledger entry is forged for it (with
    // the ledger key) that names another tree: the entry and the commit do not match.
    let next = side_commit(&work, "next");
    let mirror = copy_server(&env, &server, "mirror");
    move_outside_tally(&mirror, "refs/heads/main", &next);
    let base_tree = stdout_of(
        mirror
            .git()
            .args(["rev-parse", &format!("{base}^{{tree}}")]),
    );
    forge_accepted_entry(&env, &mirror, &next, &base_tree);
    agent.set_remote(&mirror);
    let next_tree = stdout_of(
        mirror
            .git()
            .args(["rev-parse", &format!("{next}^{{tree}}")]),
    );
    agent.pull(&[]).assert_refused(&[
        &format!("commit {next} has tree {next_tree}"),
        &format!("records tree {base_tree}"),
    ]);
    assert_eq!(agent.head(), base);

    // With the right tree the same forged entry would pass the ledger checks: only the agent's
    // own commit checks stand between the key holder and the deployment; here they pass, since
    // Alice signed it. This shows the tree check above is what refused.
    let fixed = copy_server(&env, &server, "fixed");
    move_outside_tally(&fixed, "refs/heads/main", &next);
    forge_accepted_entry(&env, &fixed, &next, &next_tree);
    agent.set_remote(&fixed);
    assert_eq!(agent.pull(&[]).approved(), next);
}

#[test]
fn signature_lines_of_other_keys_are_ignored_but_a_bad_one_of_the_pinned_key_fails() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    let next = side_commit(&work, "next");
    let next_tree = stdout_of(
        server
            .git()
            .args(["rev-parse", &format!("{next}^{{tree}}")]),
    );
    let lines = |note: &str| -> Vec<String> { note.lines().map(str::to_owned).collect() };

    // A line from a key the agent does not know (a witness, say): ignored, as signed-note says.
    let witnessed = copy_server(&env, &server, "witnessed");
    move_outside_tally(&witnessed, "refs/heads/main", &next);
    forge_accepted_entry_with(&env, &witnessed, &next, &next_tree, |note| {
        let own = lines(note)
            .into_iter()
            .rfind(|l| l.starts_with('\u{2014}'))
            .unwrap();
        let (_, sig) = own.rsplit_once(' ').unwrap();
        format!("{note}\u{2014} witness.example/w1 {sig}\n")
    });

    // The pinned key's own signature line, altered: refused.
    let altered = copy_server(&env, &server, "altered");
    move_outside_tally(&altered, "refs/heads/main", &next);
    forge_accepted_entry_with(&env, &altered, &next, &next_tree, |note| {
        let mut all = lines(note);
        let i = all.iter().position(|l| l.starts_with('\u{2014}')).unwrap();
        let mut bytes = all[i].clone().into_bytes();
        let at = bytes.len() - 10;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        all[i] = String::from_utf8(bytes).unwrap();
        format!("{}\n", all.join("\n"))
    });
    agent.set_remote(&altered);
    agent
        .pull(&[])
        .assert_refused(&["does not verify with the pinned ledger key"]);
    assert_eq!(agent.head(), base);

    agent.set_remote(&witnessed);
    assert_eq!(agent.pull(&[]).approved(), next);
}
