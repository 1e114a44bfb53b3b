//! End-to-end tests of the deployment agent, `tally verify` and `tally pull`: a bare repository
//! guarded by `tally init`, real signed pushes with the real `git`, and an agent clone that
//! fetches from it (or from a copy of it that an attacker controls), one test per attack of
//! issue 4: out-of-band moves, rollback, fork, freeze, mix-and-match, a signer the agent does
//! not trust, a corrupt state file, and `pull` never moving the work tree on failure.
//!
//! The two `#[ignore]`d tests at the end are the agent's benchmarks (`scripts/bench-agent.sh`):
//! they print timings and assert only correctness.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use tally_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use tally_ledger::merkle::{Frontier, leaf_hash};
use tally_ledger::{Entry, EntryView, Kind};

use crate::common::*;

// =============================================================================================
// Helpers

/// What one `tally verify` or `tally pull` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl Run {
    /// Asserts success; returns stdout trimmed (the approved commit).
    fn approved(&self) -> String {
        assert_eq!(
            self.code, 0,
            "the agent should approve; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout.trim().to_owned()
    }

    /// Asserts exit 1 (verification refused) and a `tally: <cmd>: ` stderr line holding every
    /// one of `parts`.
    fn assert_refused(&self, parts: &[&str]) -> &str {
        self.assert_failed(1, parts)
    }

    /// Asserts exit 4 (a problem on the agent's machine) and a stderr line with `parts`.
    fn assert_local(&self, parts: &[&str]) -> &str {
        self.assert_failed(4, parts)
    }

    fn assert_failed(&self, code: i32, parts: &[&str]) -> &str {
        assert_eq!(
            self.code, code,
            "the agent should fail with exit {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(self.stdout.is_empty(), "nothing approved: {}", self.stdout);
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("tally: ") && parts.iter().all(|p| l.contains(p)));
        line.unwrap_or_else(|| {
            panic!(
                "no stderr line contains all of {parts:?}; stderr:\n{}",
                self.stderr
            )
        })
    }
}

/// A deployment agent: a clone of the server, the ledger key it pinned, its own signers.
struct Agent<'e> {
    env: &'e TestEnv,
    /// The clone's work tree.
    path: PathBuf,
    /// The pinned ledger public key (`tally ledger key` of the server, as an operator copies it).
    key: PathBuf,
    /// The agent's own allowed_signers.
    signers: PathBuf,
}

impl<'e> Agent<'e> {
    /// Clones `server` (branches only: the first `tally pull` fetches the ledger).
    fn new(env: &'e TestEnv, server: &Server<'_>, name: &str, signers: &AllowedSigners) -> Self {
        let path = env.root().join(name);
        run_ok(
            env.git(env.root())
                .args(["clone", "-q"])
                .arg(&server.path)
                .arg(&path),
        );
        let out = server.tally(&["ledger", "key"]);
        assert!(out.status.success(), "tally ledger key failed");
        let key = env.write(
            &format!("{name}-ledger.pub"),
            &String::from_utf8(out.stdout).unwrap(),
        );
        let signers = env.write(&format!("{name}-allowed_signers"), &signers.text());
        Agent {
            env,
            path,
            key,
            signers,
        }
    }

    fn tally(&self, command: &str, extra: &[&str]) -> Run {
        self.env
            .tally()
            .arg(command)
            .arg("--repo")
            .arg(&self.path)
            .arg("--ledger-key")
            .arg(&self.key)
            .arg("--allowed-signers")
            .arg(&self.signers)
            .args(extra)
            .output()
            .unwrap()
            .into()
    }

    fn verify(&self, extra: &[&str]) -> Run {
        self.tally("verify", extra)
    }

    fn pull(&self, extra: &[&str]) -> Run {
        self.tally("pull", extra)
    }

    fn git_ok(&self, args: &[&str]) -> String {
        stdout_of(self.env.git(&self.path).args(args))
    }

    fn head(&self) -> String {
        self.git_ok(&["rev-parse", "HEAD"])
    }

    /// Fetches the branch and the ledger like `tally pull` does, without verifying.
    fn fetch(&self) {
        run_ok(self.env.git(&self.path).args([
            "fetch",
            "-q",
            "origin",
            "+refs/heads/main:refs/tally/remotes/origin/main",
            "+refs/tally/ledger:refs/tally/ledger",
        ]));
    }

    /// Points `origin` somewhere else (a mirror, a restored backup, another server).
    fn set_remote(&self, server: &Server<'_>) {
        run_ok(
            self.env
                .git(&self.path)
                .args(["remote", "set-url", "origin"])
                .arg(&server.path),
        );
    }

    fn state_path(&self) -> PathBuf {
        self.path.join(".git/tally/agent/main.json")
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_path()).unwrap()).unwrap()
    }

    /// What `pull` must leave alone on failure: HEAD, the local branch, the index and files.
    fn snapshot(&self) -> (String, String, String) {
        (
            self.head(),
            self.git_ok(&["rev-parse", "refs/heads/main"]),
            self.git_ok(&["status", "--porcelain"]),
        )
    }
}

/// A server with main protected, Alice's base commit pushed, and Alice's work clone.
fn server_with_base(env: &TestEnv) -> (Server<'_>, Work<'_>, String) {
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    (server, work, base)
}

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

/// Every entry published in `refs/tally/ledger`, oldest first, as stored bytes.
fn published_entries(env: &TestEnv, git_dir: &Path) -> Vec<Vec<u8>> {
    let list = stdout_of(
        env.git(git_dir)
            .args(["rev-list", "--reverse", "refs/tally/ledger"]),
    );
    let mut out = Vec::new();
    for commit in list.lines() {
        let blob =
            run_ok(
                env.git(git_dir)
                    .args(["cat-file", "blob", &format!("{commit}:entries")]),
            )
            .stdout;
        let mut rest = blob.as_slice();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_be_bytes(*len) as usize;
            out.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
    }
    out
}

/// Writes a blob into `git_dir`; returns its id.
fn write_blob(env: &TestEnv, git_dir: &Path, bytes: &[u8]) -> String {
    let out = run_with_stdin(
        env.git(git_dir).args(["hash-object", "-w", "--stdin"]),
        bytes,
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Writes one publication commit (entries `first..size` and the note) on top of `parent`, and
/// points `refs/tally/ledger` at it with the hooks bypassed; returns the commit.
fn write_publication(
    env: &TestEnv,
    git_dir: &Path,
    parent: Option<&str>,
    first: u64,
    entries: &[Vec<u8>],
    note: &str,
) -> String {
    let mut blob = Vec::new();
    for e in entries {
        blob.extend_from_slice(&(e.len() as u32).to_be_bytes());
        blob.extend_from_slice(e);
    }
    let size = first + entries.len() as u64;
    let tree_text = format!(
        "100644 blob {}\tcheckpoint\n100644 blob {}\tentries\n100644 blob {}\trange\n",
        write_blob(env, git_dir, note.as_bytes()),
        write_blob(env, git_dir, &blob),
        write_blob(env, git_dir, format!("{first} {size}\n").as_bytes()),
    );
    let out = run_with_stdin(env.git(git_dir).arg("mktree"), tree_text.as_bytes());
    assert!(out.status.success());
    let tree = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut cmd = env.git(git_dir);
    cmd.args(["commit-tree", "--no-gpg-sign", "-m", "tally ledger"]);
    if let Some(p) = parent {
        cmd.args(["-p", p]);
    }
    let commit = stdout_of(cmd.arg(&tree));
    run_ok(
        env.git(git_dir)
            .args(["-c", NO_HOOKS, "update-ref", "refs/tally/ledger", &commit]),
    );
    commit
}

fn raw_id(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
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
// 1. Good pushes: the approved commit is the tip

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

// =============================================================================================
// 2. Arbitrary revision: a branch moved on the server outside tally

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
// 3. Rollback

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
// 4. Fork (split view)

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
// 5. Freeze

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
// 6. Mix-and-match

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

// =============================================================================================
// 7. The agent's own signers

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
        run.stderr.lines().count(),
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
    let path = env.bare_repo("server");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q"])
            .arg(&path)
            .arg("old"),
    );
    let old = env.root().join("old");
    for i in 0..3 {
        std::fs::write(old.join(format!("{i}.yaml")), format!("i: {i}\n")).unwrap();
        run_ok(env.git(&old).args(["add", "."]));
        run_ok(
            env.git(&old)
                .args(["commit", "-q", "--no-gpg-sign", "-m", &format!("old {i}")]),
        );
    }
    run_ok(
        env.git(&old)
            .args(["push", "-q", "origin", "HEAD:refs/heads/main"]),
    );
    let baseline = stdout_of(env.git(&old).args(["rev-parse", "HEAD"]));
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let init = env.tally_init([
        path.as_os_str(),
        std::ffi::OsStr::new("--allowed-signers"),
        signers.as_os_str(),
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let server = env.server_at(path);
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
// 8. The state file

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
// 9. pull never moves anything on failure

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

// =============================================================================================
// Benchmarks (run by scripts/bench-agent.sh; timings printed, never asserted)

/// Runs `tally verify` `runs` times, restoring `state` (the bytes, or no file) before each;
/// returns the sorted wall-clock times.
fn time_verify(agent: &Agent<'_>, state: Option<&[u8]>, runs: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        match state {
            Some(bytes) => std::fs::write(agent.state_path(), bytes).unwrap(),
            None => {
                let _ = std::fs::remove_file(agent.state_path());
            }
        }
        let t = Instant::now();
        let run = agent.verify(&[]);
        times.push(t.elapsed());
        run.approved();
    }
    times.sort();
    times
}

fn report(what: &str, times: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({} runs)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

/// An agent clone with a ledger of `TALLY_BENCH_ENTRIES` (default 1,000,000) entries in one
/// publication, built directly (a real ledger key, real signed commits, the server's
/// publication format), then one more publication with one new accepted entry: the cost of
/// the incremental verify must not depend on the million.
#[test]
#[ignore = "benchmark: scripts/bench-agent.sh"]
fn bench_one_new_entry_on_a_million_entry_ledger() {
    let size: u64 = std::env::var("TALLY_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let env = TestEnv::new();
    let path = env.root().join("agent");
    run_ok(env.git(env.root()).args(["init", "-q"]).arg(&path));
    let git = |args: &[&str]| stdout_of(env.git(&path).args(args));
    let user = alice();
    for (k, v) in [
        ("user.name", user.name.as_str()),
        ("user.email", user.email.as_str()),
        ("user.signingkey", &user.signing_key.display().to_string()),
        ("commit.gpgsign", "true"),
    ] {
        git(&["config", k, v]);
    }
    std::fs::write(path.join("app.yaml"), "replicas: 1\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "base"]);
    let c1 = git(&["rev-parse", "HEAD"]);
    let t1 = git(&["rev-parse", "HEAD^{tree}"]);

    let key_path = env.root().join("ledger_key");
    let key = tally_ledger::key::generate(&key_path, "bench").unwrap();
    let key_pub = tally_ledger::key::public_path(&key_path);
    let origin = "tally/bench/0f6c2f4e-bench";
    let repository = "0f6c2f4e-bench";
    let t0 = Instant::now();
    let mut frontier = Frontier::new();
    let mut prev = tally_ledger::GENESIS;
    let mut entries = Vec::with_capacity(size as usize);
    let push = |frontier: &mut Frontier, entries: &mut Vec<Vec<u8>>, entry: Entry| {
        let bytes = entry.encode().unwrap();
        let leaf = leaf_hash(&bytes);
        frontier.append(&leaf);
        entries.push(bytes);
        leaf
    };
    let template = Entry {
        seq: 0,
        kind: Kind::PolicyChange,
        time: jiff::Timestamp::now(),
        repository: repository.into(),
        refname: "refs/heads/main".into(),
        old: None,
        new: Some(raw_id(&c1)),
        new_tree: Some(raw_id(&t1)),
        commits: Vec::new(),
        pusher: "bench".into(),
        policy_digest: [0x55; 32],
        reasons: vec!["baseline".into()],
        aborts: None,
        prev_hash: prev,
    };
    prev = push(&mut frontier, &mut entries, template.clone());
    for seq in 1..size {
        prev = push(
            &mut frontier,
            &mut entries,
            Entry {
                seq,
                kind: Kind::Rejected,
                new: Some(raw_id(&c1)),
                new_tree: None,
                reasons: vec!["commit is not signed".into()],
                prev_hash: prev,
                ..template.clone()
            },
        );
    }
    let now = || jiff::Timestamp::now().as_second() as u64;
    let sign = |frontier: &Frontier| {
        Checkpoint {
            origin: origin.into(),
            size: frontier.size(),
            root: frontier.root(),
        }
        .sign(now(), &key)
        .unwrap()
    };
    let p1 = write_publication(&env, &path, None, 0, &entries, sign(&frontier).text());
    let blob_mib = entries.iter().map(|e| e.len() + 4).sum::<usize>() as f64 / 1048576.0;
    println!(
        "built a {size}-entry ledger ({blob_mib:.0} MiB of entries) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    drop(entries);

    let agent = Agent {
        env: &env,
        path: path.clone(),
        key: key_pub,
        signers: env.write("agent_signers", &alice_and_bob().text()),
    };
    report(
        &format!("first run, {size}-entry ledger, 1 commit"),
        &time_verify(&agent, None, 3),
    );
    let pinned = std::fs::read(agent.state_path()).unwrap();

    // One more push: a signed commit and its accepted entry, in a new publication.
    std::fs::write(path.join("app.yaml"), "replicas: 2\n").unwrap();
    git(&["commit", "-q", "-a", "-m", "scale"]);
    let c2 = git(&["rev-parse", "HEAD"]);
    let t2 = git(&["rev-parse", "HEAD^{tree}"]);
    let mut new = Vec::new();
    push(
        &mut frontier,
        &mut new,
        Entry {
            seq: size,
            kind: Kind::Accepted,
            old: Some(raw_id(&c1)),
            new: Some(raw_id(&c2)),
            new_tree: Some(raw_id(&t2)),
            reasons: Vec::new(),
            prev_hash: prev,
            ..template.clone()
        },
    );
    write_publication(&env, &path, Some(&p1), size, &new, sign(&frontier).text());
    let times = time_verify(&agent, Some(&pinned), 15);
    assert_eq!(agent.verify(&[]).approved(), c2);
    report(
        &format!(
            "incremental, 1 new entry on a {size}-entry ledger (tally verify, process included)"
        ),
        &times,
    );
}

/// A server with a 10,000-commit history pushed through the hook, and a first run of the agent
/// over it (every commit's signature checked, no state).
#[test]
#[ignore = "benchmark: scripts/bench-agent.sh"]
fn bench_first_run_over_a_ten_thousand_commit_history() {
    let count: usize = std::env::var("TALLY_BENCH_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = TestEnv::new();
    let (server, work, _base) = server_with_base(&env);
    let t0 = Instant::now();
    let tree = work.git_ok(&["rev-parse", "HEAD^{tree}"]);
    let mut parent = work.head();
    for i in 0..count {
        parent = stdout_of(
            work.git()
                .env("GIT_COMMITTER_DATE", date(1_700_000_000 + i as i64))
                .env("GIT_AUTHOR_DATE", date(1_700_000_000 + i as i64))
                .args([
                    "commit-tree",
                    "-S",
                    "-p",
                    &parent,
                    "-m",
                    &format!("c{i}"),
                    &tree,
                ]),
        );
    }
    println!(
        "generated {count} signed commits in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    work.push(&["origin", &format!("{parent}:refs/heads/main")])
        .assert_accepted();
    println!(
        "pushed them through the hook in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    agent.fetch();
    let times = time_verify(&agent, None, 3);
    assert_eq!(agent.verify(&[]).approved(), parent);
    report(
        &format!(
            "first run over {} commits (tally verify, process included)",
            count + 1
        ),
        &times,
    );
}

/// Issue 10, class 2: the agent must not depend on the server's judgement for anything it
/// deploys. A server whose administrator (or attacker) relaxed the file policy lets a signed
/// shell script land and records it as accepted; the agent, with tally's default file rules,
/// refuses it; with the server's policy given as --policy, it agrees with the server.
#[test]
fn the_agent_applies_the_file_rules_itself() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    server.edit_policy("allow = [", "allow = [\"*.sh\", ");
    let script = work
        .commit("signed script")
        .file("deploy.sh", "kubectl delete ns prod\n")
        .create();
    work.push_main_ok();
    agent
        .pull(&[])
        .assert_refused(&["deploy.sh", "file type not allowed"]);
    assert_eq!(agent.head(), base);
    let policy = server.policy_path();
    let run = agent.pull(&["--policy", policy.to_str().unwrap()]);
    assert_eq!(run.approved(), script);
    assert_eq!(agent.head(), script);
}

/// Issue 10, class 4: what `tally pull` leaves on disk is byte for byte the verified tree,
/// whatever the agent machine's git configuration. `core.autocrlf=true` is overridden; an
/// attribute file outside the tree (`.git/info/attributes`), which no option turns off, is
/// caught by reading the files back, and the pull is refused with the files named.
#[test]
fn the_agent_deploys_the_signed_bytes_or_refuses() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    agent.git_ok(&["config", "core.autocrlf", "true"]);
    assert_eq!(agent.pull(&[]).approved(), base);
    let next = work
        .commit("next")
        .file("apps/web.yaml", "replicas: 3\nimage: web\n")
        .create();
    work.push_main_ok();
    assert_eq!(agent.pull(&[]).approved(), next);
    let written = std::fs::read(agent.path.join("apps/web.yaml")).unwrap();
    assert_eq!(
        written, b"replicas: 3\nimage: web\n",
        "autocrlf must not apply"
    );

    std::fs::write(
        agent.path.join(".git/info/attributes"),
        "*.yaml text eol=crlf\n",
    )
    .unwrap();
    let after = work
        .commit("after")
        .file("apps/db.yaml", "replicas: 1\n")
        .create();
    work.push_main_ok();
    let run = agent.pull(&[]);
    let line = run.assert_local(&[
        "differs from the verified tree",
        "apps/db.yaml (content differs from the signed blob)",
        "do not deploy",
    ]);
    assert!(line.contains(".git/info/attributes"), "{line}");
    // git did check the commit out; what matters is that nothing approved it.
    assert_eq!(agent.head(), after);
    let written = std::fs::read(agent.path.join("apps/db.yaml")).unwrap();
    assert_eq!(
        written, b"replicas: 1\r\n",
        "the machine's attributes converted it"
    );
}

/// Issue 11, item 9: an unattended agent tells failures apart by exit status, and `--json`
/// describes a failure too: 3 when the server cannot be reached or the fetch times out (retry;
/// nothing was judged), 4 for a problem on this machine, 1 when verification refused what was
/// served (never deploy it), each with what is still deployed.
#[test]
fn failures_are_classified_by_exit_status_and_in_json() {
    let env = TestEnv::new();
    let (server, work, base) = server_with_base(&env);
    let agent = Agent::new(&env, &server, "agent", &alice_and_bob());
    assert_eq!(agent.pull(&[]).approved(), base);
    let origin = agent.git_ok(&["remote", "get-url", "origin"]);

    // Unreachable: exit 3, and the JSON says retry and what is deployed.
    agent.git_ok(&["remote", "set-url", "origin", "/nonexistent/server.git"]);
    let run = agent.pull(&["--json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["approved"], false);
    assert_eq!(json["class"], "retry");
    assert_eq!(json["exit"], 3);
    assert_eq!(json["deployed"]["commit"], base.as_str());
    assert!(
        json["reasons"][0]
            .as_str()
            .unwrap()
            .contains("git fetch origin failed")
    );

    // A server that never answers: the fetch is given up after --fetch-timeout.
    agent.git_ok(&["config", "protocol.ext.allow", "always"]);
    agent.git_ok(&["remote", "set-url", "origin", "ext::sleep 600"]);
    let started = std::time::Instant::now();
    let run = agent.pull(&["--fetch-timeout", "1s"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // Refused by verification: exit 1, class refused, still on base.
    agent.git_ok(&["remote", "set-url", "origin", &origin]);
    work.commit("unsigned")
        .file("u.yaml", "u: 1\n")
        .unsigned()
        .create();
    run_ok(server.git().args([
        "-c",
        "core.hooksPath=/dev/null",
        "fetch",
        "-q",
        work.path.to_str().unwrap(),
        "+HEAD:refs/heads/main",
    ]));
    let run = agent.pull(&["--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["class"], "refused");
    assert_eq!(json["deployed"]["commit"], base.as_str());
    assert!(!json["reasons"].as_array().unwrap().is_empty());
    assert_eq!(agent.head(), base);
}
