//! Benchmarks (run by scripts/bench-agent.sh; timings printed, never asserted).

use std::time::{Duration, Instant};

use tally_ledger::checkpoint::Checkpoint;
use tally_ledger::merkle::{Frontier, leaf_hash};
use tally_ledger::{Entry, Kind};

use super::*;
use crate::common::*;

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
    let parent = work.signed_history(count);
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
