//! Concurrent pushers: every landed commit is recorded exactly once.

use std::collections::BTreeMap;
use std::process::Output;

use super::*;
use crate::common::*;

/// Commits `rounds` files in the clone at `dir` and pushes each to main, retrying with
/// `git pull --rebase` (which re-signs the rebased commits: `commit.gpgsign` is on) whenever
/// the push does not land. Returns how many pushes did not land.
fn race(h: &Hermetic, dir: &Path, client: usize, rounds: usize) -> usize {
    const MAX_ATTEMPTS: usize = 40;
    let git = |args: &[&str]| -> Output { h.git(dir).args(args).output().unwrap() };
    let ok = |args: &[&str]| {
        let out = git(args);
        assert!(
            out.status.success(),
            "client {client}: git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut retries = 0;
    for round in 0..rounds {
        let name = format!("apps/client{client}-round{round}.yaml");
        std::fs::create_dir_all(dir.join("apps")).unwrap();
        std::fs::write(
            dir.join(&name),
            format!("client: {client}\nround: {round}\n"),
        )
        .unwrap();
        ok(&["add", &name]);
        ok(&[
            "commit",
            "-q",
            "-S",
            "-m",
            &format!("client {client} round {round}"),
        ]);
        let mut last = String::new();
        let landed = (0..MAX_ATTEMPTS).any(|_| {
            let push = git(&["push", "-q", "origin", "HEAD:refs/heads/main"]);
            if push.status.success() {
                return true;
            }
            last = String::from_utf8_lossy(&push.stderr).into_owned();
            retries += 1;
            ok(&["pull", "-q", "--rebase", "origin", "main"]);
            false
        });
        assert!(
            landed,
            "client {client} round {round} never landed; last push said:\n{last}"
        );
    }
    retries
}

#[test]
fn concurrent_pushers_leave_a_ledger_that_records_every_landed_commit_once() {
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 3;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let seed = env.clone_as(&server, "seed", &alice());
    let base = seed.commit("base").file("base.yaml", BASE_YAML).create();
    seed.push_main_ok();
    let users = [alice(), bob()];
    let dirs: Vec<PathBuf> = (0..CLIENTS)
        .map(|i| {
            env.clone_as(&server, &format!("client{i}"), &users[i % 2])
                .path
        })
        .collect();

    let hermetic = env.hermetic_env();
    let threads: Vec<_> = dirs
        .into_iter()
        .enumerate()
        .map(|(i, dir)| {
            let h = hermetic.clone();
            std::thread::spawn(move || race(&h, &dir, i, ROUNDS))
        })
        .collect();
    let retries: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{CLIENTS} clients, {ROUNDS} rounds each: {retries} pushes had to be retried");

    server.assert_ledger_intact();
    let tip = server.branch("main").unwrap();
    let entries = server.log(&["--branch", "main"]);
    let aborted = aborted_seqs(&entries);
    let mut landed: Vec<&Value> = entries
        .iter()
        .filter(|e| kind(e) == "accepted" && !aborted.contains(&seq(e)))
        .collect();
    landed.reverse();
    assert_eq!(opt(landed.last().unwrap(), "new"), Some(tip.as_str()));

    // The landed entries are the branch's moves, in order: each starts where the last ended.
    assert_eq!(opt(landed[0], "old"), None);
    assert_eq!(opt(landed[0], "new"), Some(base.as_str()));
    for pair in landed.windows(2) {
        assert_eq!(
            opt(pair[1], "old"),
            opt(pair[0], "new"),
            "entry {} does not continue entry {}",
            seq(pair[1]),
            seq(pair[0])
        );
    }

    // Every commit on the branch is in exactly one landed entry, signed by its committer, and
    // no landed entry lists a commit that is not on the branch.
    let history = stdout_of(
        server
            .git()
            .args(["log", "--reverse", "--format=%H %ce", "main"]),
    );
    let on_branch: BTreeMap<String, String> = history
        .lines()
        .map(|l| {
            let (id, email) = l.split_once(' ').unwrap();
            (id.to_owned(), email.to_owned())
        })
        .collect();
    assert_eq!(on_branch.len(), 1 + CLIENTS * ROUNDS);
    let mut recorded: BTreeMap<String, u32> = BTreeMap::new();
    for e in &landed {
        for (commit, principal, fingerprint) in commits(e) {
            assert_eq!(
                on_branch.get(&commit),
                Some(&principal),
                "entry {} lists {commit}, which is not on main with that committer",
                seq(e)
            );
            assert!(fingerprint.starts_with("SHA256:"));
            *recorded.entry(commit).or_default() += 1;
        }
    }
    let twice: Vec<_> = recorded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let missing: Vec<_> = on_branch
        .keys()
        .filter(|c| !recorded.contains_key(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "on main but in no accepted entry: {missing:?}"
    );
}
