//! Two replicas, one ledger (issue 15): two bare repositories standing for two git servers
//! that hold replicas of one repository (Gitea replicas, a Gitaly cluster), each set up by
//! `tally init --ledger postgres://...` with the same ledger key, so both append to one ledger
//! in one PostgreSQL database. Replicas catch up by fetching `refs/heads/*` from each other,
//! which the hooks let through without recording it again; every other move on a replica is
//! refused as before. Then what must survive: racing pushers on both replicas, `kill -9` of a
//! hook mid-append, a restart (and a crash) of the database server mid-append, and in-flight
//! markers that one node leaves and only that node may settle. The last tests are
//! regressions for what the first ones found.
//!
//! Each test starts its own PostgreSQL server ([`tally_pgtest::Server`]). The login role's
//! password reaches every command (and the hooks git runs) through `~/.pgpass` in the test's
//! hermetic `HOME`: [`TestEnv`] clears each command's environment, so a `PGPASSWORD` set on
//! some commands would miss the ones common/ builds (`Server::log`, `assert_ledger_intact`).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::crash::{run_hook_killed_after, verify_problems};
use super::*;
use crate::common::*;

// =============================================================================================
// Helpers

/// The database the replicas of a test share.
struct Database {
    pg: tally_pgtest::Server,
    /// `[ledger] url` (no password in it: policy.toml is shared).
    url: String,
}

/// The database's name in the test's server.
const DB: &str = "tally";

/// How long a test waits for something it polls for before it gives up.
const PATIENCE: Duration = Duration::from_secs(300);

impl Database {
    /// Starts a PostgreSQL server with one database, and writes the pgpass file every command
    /// of `env` finds its password in.
    fn start(env: &TestEnv) -> Database {
        let pg = tally_pgtest::Server::start();
        let url = format!("{}?sslmode=disable", pg.create_database(DB));
        // HOME of every command `env` runs (see TestEnv::hermetic_env).
        let pgpass = env.root().join("home").join(".pgpass");
        std::fs::write(
            &pgpass,
            format!(
                "127.0.0.1:{}:{DB}:{}:{}\n",
                pg.port(),
                pg.user(),
                pg.password()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        Database { pg, url }
    }

    /// Every in-flight marker row: `(node, marker text)`.
    fn markers(&self) -> Vec<(String, String)> {
        let out = self.pg.psql(
            DB,
            "SELECT node || '|' || replace(marker, E'\\n', ' ') FROM tally.inflight ORDER BY key",
        );
        out.lines()
            .map(|l| {
                let (node, marker) = l.split_once('|').unwrap();
                (node.to_owned(), marker.to_owned())
            })
            .collect()
    }

    /// The markers of moves to `new`.
    fn markers_of(&self, new: &str) -> Vec<(String, String)> {
        self.markers()
            .into_iter()
            .filter(|(_, m)| m.contains(new))
            .collect()
    }

    /// Makes every in-flight marker `seconds` old: the marker's last line is its creation time
    /// in unix seconds (`marker_text` in hooks/src/record.rs). Stands for the time a crashed
    /// transaction's marker waits before it is settled.
    fn age_markers(&self, seconds: i64) -> usize {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let out = self.pg.psql(
            DB,
            &format!(
                "WITH aged AS (UPDATE tally.inflight SET marker = \
                 regexp_replace(marker, '[0-9]+\\n$', '{}' || E'\\n') RETURNING 1) \
                 SELECT count(*) FROM aged",
                now - seconds
            ),
        );
        out.parse().unwrap()
    }
}

/// `tally init <repo> --allowed-signers <signers> --ledger <url> --branch ...`, asserting
/// success; returns its stdout.
fn init(env: &TestEnv, repo: &Path, signers: &Path, url: &str, branches: &[&str]) -> String {
    let mut args = vec![
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--ledger".as_ref(),
        url.as_ref(),
    ];
    for b in branches {
        args.push("--branch".as_ref());
        args.push(b.as_ref());
    }
    let out = env.tally_init(args);
    assert!(
        out.status.success(),
        "tally init {} failed with {}:\n{}\n{}",
        repo.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Replicas A and B of one repository, Alice and Bob signers, `branches` protected: A set up
/// by `tally init --ledger`, B given a copy of A's ledger key (as the operator copies it to
/// every node) and the same `tally init`, which attaches it to A's ledger.
fn replicas<'e>(env: &'e TestEnv, url: &str, branches: &[&str]) -> (Server<'e>, Server<'e>) {
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let a = env.bare_repo("a");
    init(env, &a, &signers, url, branches);
    let b = env.bare_repo("b");
    std::fs::create_dir(b.join("tally")).unwrap();
    for key in ["ledger_key", "ledger_key.pub"] {
        // fs::copy keeps the 0600 mode of the private key.
        std::fs::copy(a.join("tally").join(key), b.join("tally").join(key)).unwrap();
    }
    init(env, &b, &signers, url, branches);
    let (a, b) = (env.server_at(a), env.server_at(b));
    assert_eq!(a.log(&[]), b.log(&[]), "B attached to A's ledger");
    (a, b)
}

/// The landed entries of each ref (accepted, not cancelled by an `aborted` entry), oldest
/// first, from `tally log --json` (newest first).
fn landed(entries: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let aborted = aborted_seqs(entries);
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in entries.iter().rev() {
        if kind(e) == "accepted" && !aborted.contains(&seq(e)) {
            out.entry(field(e, "ref").to_owned())
                .or_default()
                .push(e.clone());
        }
    }
    out
}

/// Where the ledger puts each ref: the `new` of its latest landed entry.
fn positions(server: &Server<'_>) -> BTreeMap<String, String> {
    landed(&server.log(&[]))
        .into_iter()
        .filter_map(|(r, es)| Some((r, opt(es.last()?, "new")?.to_owned())))
        .collect()
}

/// Brings `to` up to date with `from` as a replication job does: one `git fetch` into `to`
/// (its hooks active) of every branch that `from` holds where the ledger puts it and `to`
/// does not. Returns the refs fetched.
fn catch_up(env: &TestEnv, from: &Server<'_>, to: &Server<'_>) -> Vec<String> {
    let behind: Vec<(String, String)> = positions(from)
        .into_iter()
        .filter(|(r, at)| {
            from.rev(r).as_deref() == Some(at.as_str()) && to.rev(r).as_deref() != Some(at)
        })
        .collect();
    if behind.is_empty() {
        return Vec::new();
    }
    let mut fetch = env.git(&to.path);
    fetch.args(["fetch", "-q"]).arg(&from.path);
    for (r, _) in &behind {
        fetch.arg(format!("{r}:{r}"));
    }
    run_ok(&mut fetch);
    for (r, at) in &behind {
        assert_eq!(to.rev(r).as_ref(), Some(at), "{r} caught up");
    }
    behind.into_iter().map(|(r, _)| r).collect()
}

/// Checks what the ledger says about the protected branches of `server` (the refs it has
/// entries for): each branch's landed entries are its moves in order (the first creates it,
/// each starts where the one before ended, the last ends at the tip), and every commit on
/// those branches is listed by exactly one landed entry, of a branch it is on. Returns the
/// landed entries by ref.
fn assert_chains(server: &Server<'_>) -> BTreeMap<String, Vec<Value>> {
    let by_ref = landed(&server.log(&[]));
    let tips: BTreeMap<&str, String> = by_ref
        .keys()
        .map(|r| {
            let tip = server
                .rev(r)
                .unwrap_or_else(|| panic!("{}: no {r}", server.path.display()));
            (r.as_str(), tip)
        })
        .collect();
    let mut recorded: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (refname, entries) in &by_ref {
        assert_eq!(
            opt(&entries[0], "old"),
            None,
            "{refname} starts from nothing"
        );
        for pair in entries.windows(2) {
            assert_eq!(
                opt(&pair[1], "old"),
                opt(&pair[0], "new"),
                "{refname}: entry {} does not continue entry {}",
                seq(&pair[1]),
                seq(&pair[0])
            );
        }
        assert_eq!(
            opt(entries.last().unwrap(), "new"),
            Some(tips[refname.as_str()].as_str()),
            "{refname}: the tip is where the ledger puts it"
        );
        let on_branch: BTreeSet<String> = stdout_of(server.git().args(["rev-list", refname]))
            .lines()
            .map(str::to_owned)
            .collect();
        for e in entries {
            for (commit, _, _) in commits(e) {
                assert!(
                    on_branch.contains(&commit),
                    "entry {} lists {commit}, which is not on {refname}",
                    seq(e)
                );
                recorded.entry(commit).or_default().push(seq(e));
            }
        }
    }
    let twice: Vec<_> = recorded.iter().filter(|(_, s)| s.len() > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let all = stdout_of(server.git().arg("rev-list").args(by_ref.keys()));
    let missing: Vec<&str> = all.lines().filter(|c| !recorded.contains_key(*c)).collect();
    assert!(
        missing.is_empty(),
        "on a branch but in no landed entry: {missing:?}"
    );
    by_ref
}

/// The size of the ledger `refs/tally/ledger` of `server` publishes (its `range` file is
/// `<first> <size>`).
fn published_size(server: &Server<'_>) -> u64 {
    let range = stdout_of(
        server
            .git()
            .args(["cat-file", "blob", "refs/tally/ledger:range"]),
    );
    let (_, size) = range.split_once(' ').unwrap();
    size.parse().unwrap()
}

/// Asserts that the publication of `server` covers the entry that put each of its branches
/// where it is.
fn assert_publishes_its_tips(server: &Server<'_>, by_ref: &BTreeMap<String, Vec<Value>>) {
    let size = published_size(server);
    for (refname, entries) in by_ref {
        let last = seq(entries.last().unwrap());
        assert!(
            last < size,
            "{}: refs/tally/ledger publishes {size} entries, not entry {last}, which put {refname} at its tip",
            server.path.display()
        );
    }
}

/// A deployment agent fetching from one replica: a clone, the ledger key pinned, the signers.
struct Agent {
    path: PathBuf,
    key: PathBuf,
    signers: PathBuf,
}

impl Agent {
    fn new(env: &TestEnv, server: &Server<'_>, name: &str) -> Agent {
        let path = env.root().join(name);
        run_ok(
            env.git(env.root())
                .args(["clone", "-q"])
                .arg(&server.path)
                .arg(&path),
        );
        let out = server.tally(&["ledger", "key"]);
        assert!(out.status.success(), "tally ledger key: {out:?}");
        let key = env.write(
            &format!("{name}-ledger.pub"),
            &String::from_utf8(out.stdout).unwrap(),
        );
        let signers = env.write(&format!("{name}-allowed_signers"), &alice_and_bob().text());
        Agent { path, key, signers }
    }

    /// Fetches every branch and the ledger, then runs `tally verify --branch <branch>` for each
    /// of `branches`; returns the approved commits.
    fn approve(&self, env: &TestEnv, branches: &[&str]) -> BTreeMap<String, String> {
        run_ok(env.git(&self.path).args([
            "fetch",
            "-q",
            "--prune",
            "origin",
            "+refs/heads/*:refs/tally/remotes/origin/*",
            "+refs/tally/ledger:refs/tally/ledger",
        ]));
        branches
            .iter()
            .map(|b| {
                let out = env
                    .tally()
                    .arg("verify")
                    .arg("--repo")
                    .arg(&self.path)
                    .arg("--ledger-key")
                    .arg(&self.key)
                    .arg("--allowed-signers")
                    .arg(&self.signers)
                    .args(["--branch", b])
                    .output()
                    .unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "the agent of {} should approve {b}:\n{}\n{}",
                    self.path.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (
                    format!("refs/heads/{b}"),
                    String::from_utf8(out.stdout).unwrap().trim().to_owned(),
                )
            })
            .collect()
    }
}

/// The `tally:` lines a refused command printed (wrapped lines joined), wherever git put
/// them: `remote: tally: ...` from a push's hooks, `tally: ...` from a local ref transaction.
fn tally_says(stderr: &str) -> Vec<String> {
    unwrapped(stderr)
        .lines()
        .map(|l| l.strip_prefix("remote: ").unwrap_or(l))
        .filter(|l| l.starts_with("tally: "))
        .map(str::to_owned)
        .collect()
}

/// Asserts that a command failed and that tally said why, with every one of `parts` in one
/// line; returns that line.
fn assert_refused_with(what: &str, out: &Output, parts: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what} should be refused; stderr:\n{stderr}"
    );
    tally_says(&stderr)
        .into_iter()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| {
            panic!("{what}: no tally line holds all of {parts:?}; stderr:\n{stderr}")
        })
}

/// `line` with every run of 10 or more hex digits (object ids, short or full) written `<id>`,
/// so that refusals of different pushes for the same reason read the same.
fn without_ids(line: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() >= 10 {
            out.push_str("<id>");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Polls `done` until it holds, giving up after [`PATIENCE`]; `what` names it in the panic.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes a file, commits it signed (`commit.gpgsign` is on in clones) and returns the commit.
fn commit_file(h: &Hermetic, dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    run_ok(h.git(dir).args(["add", "--", name]));
    run_ok(h.git(dir).args(["commit", "-q", "-S", "-m", name]));
    stdout_of(h.git(dir).args(["rev-parse", "HEAD"]))
}

/// One push: the commit pushed, its outcome and what git printed.
#[derive(Debug)]
struct Attempt {
    commit: String,
    landed: bool,
    stderr: String,
}

fn push(h: &Hermetic, dir: &Path, refname: &str) -> Attempt {
    let out = h
        .git(dir)
        .args(["push", "origin", &format!("HEAD:{refname}")])
        .output()
        .unwrap();
    Attempt {
        commit: stdout_of(h.git(dir).args(["rev-parse", "HEAD"])),
        landed: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// =============================================================================================
// 1. Two replicas, one ledger

/// One round of one pusher: a commit to its own branch, which nobody else pushes (so it
/// lands), then one attempt at main on top of what its replica serves, racing the pushers of
/// both replicas (some lose).
fn pusher_round(h: &Hermetic, dir: &Path, own: &str, round: usize) -> Attempt {
    run_ok(h.git(dir).args(["checkout", "-q", own]));
    commit_file(
        h,
        dir,
        &format!("{own}/round{round}.yaml"),
        &format!("round: {round}\n"),
    );
    let mine = push(h, dir, &format!("refs/heads/{own}"));
    assert!(
        mine.landed,
        "{own} round {round}: the push to its own branch should land:\n{}",
        mine.stderr
    );
    run_ok(h.git(dir).args(["fetch", "-q", "origin", "main"]));
    run_ok(
        h.git(dir)
            .args(["checkout", "-q", "--detach", "FETCH_HEAD"]),
    );
    commit_file(
        h,
        dir,
        &format!("main/{own}-round{round}.yaml"),
        &format!("by: {own}\nround: {round}\n"),
    );
    push(h, dir, "refs/heads/main")
}

#[test]
fn two_replicas_racing_pushers_and_catch_ups_make_one_chain_recording_each_commit_once() {
    const PER_REPLICA: usize = 4;
    const ROUNDS: usize = 3;
    let env = TestEnv::new();
    let db = Database::start(&env);
    let owns: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|r| (0..PER_REPLICA).map(move |i| format!("{r}{i}")))
        .collect();
    let mut branches = vec!["main"];
    branches.extend(owns.iter().map(String::as_str));
    let (a, b) = replicas(&env, &db.url, &branches);
    let seed = env.clone_as(&a, "seed", &alice());
    seed.commit("base").file("base.yaml", BASE_YAML).create();
    seed.push_main_ok();
    assert_eq!(catch_up(&env, &a, &b), ["refs/heads/main"]);

    let users = [alice(), bob()];
    let pushers: Vec<(PathBuf, String)> = owns
        .iter()
        .enumerate()
        .map(|(i, own)| {
            let replica = if own.starts_with('a') { &a } else { &b };
            let work = env.clone_as(replica, &format!("pusher-{own}"), &users[i % 2]);
            work.git_ok(&["checkout", "-q", "-b", own]);
            (work.path, own.clone())
        })
        .collect();
    let agents = [
        Agent::new(&env, &a, "agent-a"),
        Agent::new(&env, &b, "agent-b"),
    ];

    let hermetic = env.hermetic_env();
    let mut main_attempts = Vec::new();
    for round in 0..ROUNDS {
        let threads: Vec<_> = pushers
            .iter()
            .cloned()
            .map(|(dir, own)| {
                let h = hermetic.clone();
                std::thread::spawn(move || pusher_round(&h, &dir, &own, round))
            })
            .collect();
        main_attempts.extend(threads.into_iter().map(|t| t.join().unwrap()));

        // Replication both ways; then both replicas hold every branch where the ledger puts
        // it, and agents fetching from either approve exactly that.
        catch_up(&env, &a, &b);
        catch_up(&env, &b, &a);
        let at = positions(&a);
        assert_eq!(at.len(), branches.len(), "round {round}: {at:?}");
        for (r, commit) in &at {
            assert_eq!(a.rev(r).as_ref(), Some(commit), "round {round}: A's {r}");
            assert_eq!(b.rev(r).as_ref(), Some(commit), "round {round}: B's {r}");
        }
        assert_eq!(
            agents[0].approve(&env, &branches),
            at,
            "round {round}: agent of A"
        );
        assert_eq!(
            agents[1].approve(&env, &branches),
            at,
            "round {round}: agent of B"
        );
    }

    // One chain, intact from either replica.
    a.assert_ledger_intact();
    b.assert_ledger_intact();
    let log = a.log(&[]);
    assert_eq!(log, b.log(&[]), "A and B read one ledger");
    let by_ref = assert_chains(&a);
    assert_eq!(assert_chains(&b), by_ref);
    assert_publishes_its_tips(&a, &by_ref);
    assert_publishes_its_tips(&b, &by_ref);

    // Every landed push is one accepted entry: catching up recorded nothing, and no push
    // was recorded and then cancelled.
    let landed_main: Vec<&Attempt> = main_attempts.iter().filter(|t| t.landed).collect();
    let kinds = |k: &str| log.iter().filter(|e| kind(e) == k).count();
    assert_eq!(
        kinds("accepted"),
        1 + pushers.len() * ROUNDS + landed_main.len(),
        "one accepted entry per landed push"
    );
    assert_eq!(kinds("aborted"), 0);
    let main_moves: Vec<&str> = by_ref["refs/heads/main"]
        .iter()
        .map(|e| opt(e, "new").unwrap())
        .collect();
    for t in &landed_main {
        assert!(main_moves.contains(&t.commit.as_str()), "{t:?}");
    }
    let mut refusals = BTreeSet::new();
    for t in main_attempts.iter().filter(|t| !t.landed) {
        assert!(!main_moves.contains(&t.commit.as_str()), "{t:?}");
        let said = tally_says(&t.stderr);
        assert!(
            !said.is_empty() || t.stderr.contains("[rejected]"),
            "a refused push says why: {t:?}"
        );
        refusals.extend(said.iter().map(|l| without_ids(l)));
    }
    eprintln!(
        "{} of {} pushes to main landed; tally said: {refusals:#?}",
        landed_main.len(),
        main_attempts.len()
    );
    assert!(!landed_main.is_empty());
}

// =============================================================================================
// 2. Replication is not an out-of-band move, but everything else still is

/// `git update-ref <refname> <new>` run in `server` by someone with a shell there, hooks
/// active.
fn update_ref(server: &Server<'_>, refname: &str, new: &str) -> Output {
    server
        .git()
        .args(["update-ref", refname, new])
        .output()
        .unwrap()
}

/// The number of entries of `kind` in the ledger.
fn count(server: &Server<'_>, kind: &str) -> usize {
    server.log(&["--kind", kind]).len()
}

#[test]
fn on_a_replica_catching_up_is_let_through_and_every_other_move_is_refused() {
    let env = TestEnv::new();
    let db = Database::start(&env);
    let (a, b) = replicas(&env, &db.url, &["main", "prod"]);
    let work = env.clone_as(&a, "work", &alice());
    let c1 = work.commit("c1").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    work.commit("c2").file("c2.yaml", "c: 2\n").create();
    work.push_main_ok();
    let c3 = work.commit("c3").file("c3.yaml", "c: 3\n").create();
    work.push_main_ok();
    // A fetch catches B up from nothing to c3, past c1 and c2, recording nothing.
    let entries = a.log(&[]).len();
    assert_eq!(catch_up(&env, &a, &b), ["refs/heads/main"]);
    assert_eq!(b.log(&[]).len(), entries);

    let refused = |what: &str, refname: &str, new: &str, before: Option<&str>| {
        let rejected = count(&b, "rejected");
        let out = update_ref(&b, refname, new);
        assert_refused_with(what, &out, &[refname, "moved outside an accepted push"]);
        assert_eq!(
            b.rev(refname).as_deref(),
            before,
            "{what}: {refname} did not move"
        );
        assert_eq!(
            count(&b, "rejected"),
            rejected + 1,
            "{what}: the attempt is recorded"
        );
    };
    // A rollback to an older accepted commit.
    refused("rollback", "refs/heads/main", &c1, Some(&c3));
    // An unsigned commit on top of the tip, made on B by someone with a shell there.
    let unsigned = stdout_of(b.git().args([
        "commit-tree",
        "--no-gpg-sign",
        "-p",
        &c3,
        "-m",
        "unsigned",
        &format!("{c3}^{{tree}}"),
    ]));
    refused("unsigned", "refs/heads/main", &unsigned, Some(&c3));
    // An unrelated commit: a new root.
    let unrelated = stdout_of(b.git().args([
        "commit-tree",
        "--no-gpg-sign",
        "-m",
        "unrelated",
        &format!("{c1}^{{tree}}"),
    ]));
    refused("unrelated", "refs/heads/main", &unrelated, Some(&c3));
    // A protected branch created at commits the ledger never recorded for it: main's tip
    // (recorded, but for main), and the unsigned commit.
    refused("prod at main's tip", "refs/heads/prod", &c3, None);
    refused(
        "prod at an unsigned commit",
        "refs/heads/prod",
        &unsigned,
        None,
    );
    b.assert_ledger_intact();
    a.assert_ledger_intact();

    // A mirror-style push from A to B through receive-pack (pre-receive, update and
    // reference-transaction all run on B) catches B up, recording nothing.
    let c4 = work.commit("c4").file("c4.yaml", "c: 4\n").create();
    work.push_main_ok();
    let entries = a.log(&[]);
    let mirror = |from: &Server<'_>, to: &Server<'_>| -> Output {
        from.git()
            .arg("push")
            .arg(&to.path)
            .arg("+refs/heads/*:refs/heads/*")
            .output()
            .unwrap()
    };
    let out = mirror(&a, &b);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(b.branch("main").as_ref(), Some(&c4));
    assert_eq!(b.log(&[]), entries, "catching up recorded nothing");
    let by_ref = assert_chains(&b);
    assert_publishes_its_tips(&b, &by_ref);
    b.assert_ledger_intact();

    // The same mirror push when A is the one behind would roll B back: refused.
    let on_b = env.clone_as(&b, "on-b", &bob());
    let c5 = on_b.commit("c5").file("c5.yaml", "c: 5\n").create();
    on_b.push_main_ok();
    let out = mirror(&a, &b);
    assert_refused_with("a mirror push rolling B back", &out, &["refs/heads/main"]);
    assert_eq!(b.branch("main").as_ref(), Some(&c5));
    // And the other way round it is a catch-up again.
    let out = mirror(&b, &a);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(a.branch("main").as_ref(), Some(&c5));
    assert_eq!(count(&a, "accepted"), 5);
    assert_eq!(assert_chains(&a), assert_chains(&b));
    a.assert_ledger_intact();
    b.assert_ledger_intact();
}

// =============================================================================================
// 3. kill -9 of a hook mid-append

/// The newest `aborted` entry, and the accepted entry it cancels.
fn last_cancellation(server: &Server<'_>) -> (Value, Value) {
    let entries = server.log(&[]);
    let aborted = entries
        .iter()
        .find(|e| kind(e) == "aborted")
        .expect("an aborted entry")
        .clone();
    let target = aborted["aborts"].as_u64().unwrap();
    let cancelled = entries
        .into_iter()
        .find(|e| seq(e) == target)
        .expect("the cancelled entry");
    (aborted, cancelled)
}

#[test]
fn kill_9_of_prepared_mid_append_on_a_shared_ledger_leaves_it_intact_and_records_nothing_twice() {
    const RUNS: u32 = 20;
    let env = TestEnv::new();
    let db = Database::start(&env);
    let (a, b) = replicas(&env, &db.url, &["main"]);
    let work = env.clone_as(&a, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();

    let mut full = Duration::from_millis(50);
    let mut outcomes = BTreeMap::<&str, u32>::new();
    for run in 0..=RUNS {
        // A commit main can fast-forward to, already on A (an unprotected branch), judged by
        // pre-receive as a push to main would be: its verdict waits for `prepared`.
        let next = work
            .commit(&format!("run {run}"))
            .file(&format!("apps/run{run}.yaml"), format!("run: {run}\n"))
            .create();
        work.push(&["origin", "HEAD:refs/heads/incoming"])
            .assert_accepted();
        let old = a.branch("main").unwrap();
        let input = format!("{old} {next} refs/heads/main\n");
        let pre = a.run_pre_receive(input.as_bytes());
        assert!(pre.status.success(), "run {run}: {pre:?}");

        // Run 0 is uninterrupted and sets the time scale; the others are killed at evenly
        // spread instants across it.
        let delay = match run {
            0 => Duration::from_secs(30),
            _ => full * (run - 1) / (RUNS - 1),
        };
        let (status, ran) = run_hook_killed_after(
            &env,
            &a,
            &["reference-transaction", "prepared"],
            &input,
            delay,
        );
        if run == 0 {
            assert!(status.success(), "prepared, uninterrupted: {status}");
            full = ran;
        }
        if status.success() {
            // git moves the ref and runs `committed`.
            *outcomes.entry("completed").or_default() += 1;
            run_ok(
                a.git()
                    .args(["-c", NO_HOOKS, "update-ref", "refs/heads/main", &next, &old]),
            );
            let out = a.run_reference_transaction("committed", input.as_bytes());
            assert!(out.status.success(), "{out:?}");
        } else {
            // Whatever the kill left, an entry for the move never lacks its marker.
            let appended = positions(&a)["refs/heads/main"] == next;
            if appended {
                assert_eq!(
                    db.markers_of(&next).len(),
                    1,
                    "run {run}: the entry for {next} is there, its in-flight marker is not: {:?}",
                    db.markers()
                );
            }
            if run % 2 == 1 {
                // git saw the hook die: it aborts the transaction and runs `aborted`.
                *outcomes
                    .entry(if appended {
                        "killed after the append, git ran aborted"
                    } else {
                        "killed before the append, git ran aborted"
                    })
                    .or_default() += 1;
                let out = a.run_reference_transaction("aborted", input.as_bytes());
                assert!(out.status.success(), "{out:?}");
                assert!(db.markers_of(&next).is_empty(), "run {run}: marker left");
            } else if appended {
                // git died too: nothing more runs, and the ledger is ahead of the branch
                // until the marker is stale and the next push settles it.
                *outcomes
                    .entry("killed after the append, git died")
                    .or_default() += 1;
                let (mismatch, damage) = verify_problems(&a);
                assert!(damage.is_empty(), "run {run}: {damage:?}");
                assert!(
                    !mismatch.is_empty(),
                    "run {run}: verify should see main behind"
                );
                assert!(db.age_markers(120) >= 1);
                work.push_main_ok();
                let (aborted, cancelled) = last_cancellation(&a);
                assert_eq!(opt(&cancelled, "new"), Some(next.as_str()), "{aborted}");
                assert_eq!(opt(&latest_landed(&a, "main"), "new"), Some(next.as_str()));
            } else {
                *outcomes
                    .entry("killed before the append, git died")
                    .or_default() += 1;
            }
        }
        let (mismatch, damage) = verify_problems(&a);
        assert!(
            damage.is_empty() && mismatch.is_empty(),
            "run {run}: killed after {delay:?} (prepared takes {full:?}): {damage:?} {mismatch:?}"
        );
        assert_eq!(
            a.branch("main").as_ref(),
            Some(&positions(&a)["refs/heads/main"])
        );
    }
    eprintln!("prepared takes {full:?} uninterrupted; outcomes {outcomes:?}");

    // The next real push lands, and nothing is recorded twice.
    let last = work
        .commit("after")
        .file("after.yaml", "after: 1\n")
        .create();
    work.push_main_ok();
    assert_eq!(a.branch("main").as_ref(), Some(&last));
    a.assert_ledger_intact();
    assert_chains(&a);
    catch_up(&env, &a, &b);
    b.assert_ledger_intact();
}

// =============================================================================================
// 4. A restart, or a crash, of the database server mid-append

/// Pushes a new signed commit to `own`, one push after the other, until `stop`; counts each
/// attempt in `attempts` and returns them all.
fn push_until(
    h: Hermetic,
    dir: PathBuf,
    own: String,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicUsize>,
) -> Vec<Attempt> {
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let i = out.len();
        commit_file(&h, &dir, &format!("{own}/{i}.yaml"), &format!("i: {i}\n"));
        out.push(push(&h, &dir, &format!("refs/heads/{own}")));
        attempts.fetch_add(1, Ordering::SeqCst);
    }
    out
}

/// Takes the ledger's row lock, which every append takes first, in a `psql` session of its
/// own that then sleeps, so that appends started meanwhile wait inside their transaction;
/// returns once `waiting` of them do. The session ends when the server goes away.
fn hold_the_append_lock(db: &Database, waiting: usize) -> std::process::Child {
    let holder = Command::new(db.pg.bin_dir().join("psql"))
        .args(["-X", "-q", "-h"])
        .arg(db.pg.socket_dir())
        .args([
            "-p",
            &db.pg.port().to_string(),
            "-U",
            "postgres",
            "-d",
            DB,
            "-c",
        ])
        .arg("BEGIN; SELECT 1 FROM tally.ledgers FOR UPDATE; SELECT pg_sleep(3600);")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        &format!("{waiting} appends wait for the ledger's lock"),
        || {
            let n: usize = db
                .pg
                .psql(
                    DB,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                )
                .parse()
                .unwrap();
            n >= waiting
        },
    );
    holder
}

#[test]
fn a_restart_or_crash_of_the_database_mid_append_refuses_or_records_each_push() {
    const PER_REPLICA: usize = 2;
    let env = TestEnv::new();
    let mut db = Database::start(&env);
    let owns: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|r| (0..PER_REPLICA).map(move |i| format!("{r}{i}")))
        .collect();
    let mut branches = vec!["main"];
    branches.extend(owns.iter().map(String::as_str));
    let (a, b) = replicas(&env, &db.url, &branches);
    let seed = env.clone_as(&a, "seed", &alice());
    seed.commit("base").file("base.yaml", BASE_YAML).create();
    seed.push_main_ok();
    catch_up(&env, &a, &b);
    let pushers: Vec<(PathBuf, String)> = owns
        .iter()
        .map(|own| {
            let replica = if own.starts_with('a') { &a } else { &b };
            let work = env.clone_as(replica, &format!("pusher-{own}"), &alice());
            work.git_ok(&["checkout", "-q", "-b", own]);
            (work.path, own.clone())
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = pushers
        .iter()
        .cloned()
        .map(|(dir, own)| {
            let (h, stop, attempts) = (env.hermetic_env(), stop.clone(), attempts.clone());
            std::thread::spawn(move || push_until(h, dir, own, stop, attempts))
        })
        .collect();
    // Waits for `more` attempts; a pusher that panicked ends the wait (join says why).
    let progress = |more: usize| {
        let target = attempts.load(Ordering::SeqCst) + more;
        wait_until(&format!("{target} pushes were attempted"), || {
            attempts.load(Ordering::SeqCst) >= target || threads.iter().any(|t| t.is_finished())
        });
    };
    // Pushes land on a healthy server; then every pusher's push waits inside its append
    // while the server restarts (a fast shutdown ends their sessions); then pushes land
    // again; then the same with a crash of the server instead.
    progress(pushers.len());
    let mut holder = hold_the_append_lock(&db, pushers.len());
    db.pg.restart();
    holder.wait().unwrap();
    progress(2 * pushers.len());
    let mut holder = hold_the_append_lock(&db, pushers.len());
    db.pg.kill9();
    db.pg.start_again();
    holder.wait().unwrap();
    progress(2 * pushers.len());
    stop.store(true, Ordering::SeqCst);
    let all: Vec<Attempt> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    // Each push landed, or was refused with words the pusher saw; those that waited inside
    // their append say it could not be recorded.
    let mut refusals = BTreeSet::new();
    let mut mid_append = 0;
    for t in all.iter().filter(|t| !t.landed) {
        let said = tally_says(&t.stderr);
        assert!(!said.is_empty(), "a refused push says why: {t:?}");
        mid_append += usize::from(
            said.iter()
                .any(|l| l.contains("cannot record it in the ledger")),
        );
        refusals.extend(said.iter().map(|l| without_ids(l)));
    }
    let landed = all.iter().filter(|t| t.landed).count();
    eprintln!(
        "{landed} of {} pushes landed; tally said: {refusals:#?}",
        all.len()
    );
    assert!(
        mid_append >= 2 * pushers.len(),
        "{mid_append} pushes refused mid-append: {refusals:#?}"
    );

    // Nothing is damaged. (A push whose append committed while its hook lost the connection
    // would leave the ledger ahead of its branch, with the in-flight marker that settles it.)
    catch_up(&env, &a, &b);
    catch_up(&env, &b, &a);
    for replica in [&a, &b] {
        let (mismatch, damage) = verify_problems(replica);
        assert!(damage.is_empty(), "{}: {damage:?}", replica.path.display());
        if !mismatch.is_empty() {
            eprintln!("{}: settled below: {mismatch:?}", replica.path.display());
            assert!(!db.markers().is_empty(), "{mismatch:?} without a marker");
        }
    }
    // Once such markers are stale, the next push of each branch continues its chain.
    db.age_markers(120);
    let h = env.hermetic_env();
    for (dir, own) in &pushers {
        commit_file(&h, dir, &format!("{own}/after.yaml"), "after: 1\n");
        let t = push(&h, dir, &format!("refs/heads/{own}"));
        assert!(
            t.landed,
            "{own}: the push after the storm should land: {t:?}"
        );
    }
    catch_up(&env, &a, &b);
    catch_up(&env, &b, &a);
    a.assert_ledger_intact();
    b.assert_ledger_intact();
    assert_eq!(a.log(&[]), b.log(&[]));
    let by_ref = assert_chains(&a);
    assert_eq!(assert_chains(&b), by_ref);
    for t in all.iter().filter(|t| t.landed) {
        assert!(
            !stdout_of(a.git().args(["branch", "--contains", &t.commit])).is_empty(),
            "landed, but on no branch: {t:?}"
        );
    }
}

// =============================================================================================
// 5. In-flight markers across nodes

/// Leaves what a git process killed right after `prepared` leaves on `server`: the accepted
/// entry for `old -> next` on main and its in-flight marker, main still at `old`.
fn prepared_then_git_died(server: &Server<'_>, old: &str, next: &str) {
    let input = format!("{old} {next} refs/heads/main\n");
    let pre = server.run_pre_receive(input.as_bytes());
    assert!(pre.status.success(), "{pre:?}");
    let out = server.run_reference_transaction("prepared", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(server.branch("main").as_deref(), Some(old));
}

#[test]
fn a_marker_is_settled_by_its_own_node_after_60_s_and_never_by_another() {
    let env = TestEnv::new();
    let db = Database::start(&env);
    let (a, b) = replicas(&env, &db.url, &["main"]);
    let on_a = env.clone_as(&a, "on-a", &alice());
    let base = on_a.commit("base").file("base.yaml", BASE_YAML).create();
    on_a.push_main_ok();
    catch_up(&env, &a, &b);
    let on_b = env.clone_as(&b, "on-b", &bob());

    // A's git dies right after `prepared` appended base -> next.
    let next = on_a.commit("next").file("next.yaml", "next: 1\n").create();
    on_a.push(&["origin", "HEAD:refs/heads/incoming"])
        .assert_accepted();
    prepared_then_git_died(&a, &base, &next);
    let marker = db.markers_of(&next);
    assert_eq!(marker.len(), 1, "{:?}", db.markers());

    // B, whose main still holds base, leaves A's marker alone however old it is: only A can
    // see whether its ref moved. While it is younger than ten minutes, the refusal says a
    // push is moving main.
    on_b.commit("x").file("x.yaml", "x: 1\n").create();
    for age in [0, 120, 540, 700] {
        if age > 0 {
            db.age_markers(age);
        }
        let push = on_b.push(&["origin", "HEAD:refs/heads/main"]);
        push.assert_refused();
        if age < 600 {
            push.line_with(&["another push is updating refs/heads/main right now"]);
        } else {
            push.line_with(&["refs/heads/main"]);
        }
        assert_eq!(db.markers_of(&next).len(), 1, "marker {age} s old");
        assert_eq!(count(&a, "aborted"), 0, "marker {age} s old");
        assert_eq!(b.branch("main").as_deref(), Some(base.as_str()));
    }

    // A's own next push, a minute later, cancels the entry and lands.
    db.age_markers(60);
    on_a.reset_hard(&base);
    let y = on_a.commit("y").file("y.yaml", "y: 1\n").create();
    on_a.push_main_ok();
    let (aborted, cancelled) = last_cancellation(&a);
    assert_eq!(opt(&cancelled, "new"), Some(next.as_str()), "{aborted}");
    assert!(db.markers_of(&next).is_empty());
    assert_eq!(opt(&latest_landed(&a, "main"), "new"), Some(y.as_str()));
    a.assert_ledger_intact();

    // B catches up, and its pusher's rebased commit lands.
    assert_eq!(catch_up(&env, &a, &b), ["refs/heads/main"]);
    on_b.git_ok(&["pull", "-q", "--rebase", "origin", "main"]);
    let z = on_b.head();
    on_b.push_main_ok();
    assert_eq!(opt(&latest_landed(&b, "main"), "new"), Some(z.as_str()));
    catch_up(&env, &b, &a);
    a.assert_ledger_intact();
    b.assert_ledger_intact();
    assert_eq!(assert_chains(&a), assert_chains(&b));
}

// =============================================================================================
// Findings

/// Regression (found by the racing-pushers test above): a push to a replica that has not
/// caught up yet was refused as a move outside tally, telling an administrator to re-baseline
/// the branch with `tally ledger adopt`, which would have recorded a rollback of the other
/// replica's push. It is refused as a replica behind the shared ledger, and lands once the
/// replica caught up.
#[test]
fn a_push_to_a_replica_that_has_not_caught_up_is_refused_as_behind_not_as_off_ledger() {
    let env = TestEnv::new();
    let db = Database::start(&env);
    let (a, b) = replicas(&env, &db.url, &["main"]);
    let on_a = env.clone_as(&a, "on-a", &alice());
    on_a.commit("base").file("base.yaml", BASE_YAML).create();
    on_a.push_main_ok();
    catch_up(&env, &a, &b);
    let on_b = env.clone_as(&b, "on-b", &bob());
    // Two pushes through A: A's own next push drops the in-flight marker of the first, so
    // nothing says a push is still moving main.
    on_a.commit("y1").file("y.yaml", "y: 1\n").create();
    on_a.push_main_ok();
    let y2 = on_a.commit("y2").file("y.yaml", "y: 2\n").create();
    on_a.push_main_ok();
    let seq_y2 = seq(&latest_landed(&a, "main"));

    on_b.commit("z").file("z.yaml", "z: 1\n").create();
    let push = on_b.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    let line = push.line_with(&[
        "refs/heads/main on this server is behind the shared ledger",
        &format!("{y2} (entry {seq_y2})"),
    ]);
    assert!(!line.contains("tally ledger adopt"), "{line}");

    catch_up(&env, &a, &b);
    on_b.git_ok(&["pull", "-q", "--rebase", "origin", "main"]);
    on_b.push_main_ok();
    catch_up(&env, &b, &a);
    a.assert_ledger_intact();
    b.assert_ledger_intact();
}

/// Regression (found by the racing-pushers test above, and so on one server with either
/// store): a push that lost the race for a branch to another push, which landed after the
/// pusher fetched, was refused by pre-receive saying the branch "is at" the pusher's stale
/// old value and "moved outside tally", with a fix for an administrator. The branch is where
/// the ledger records it: the refusal says another push moved it, and to fetch and push again.
///
/// Pushes two commits to main of `server`, then runs pre-receive for a commit on the first
/// with the first as the old value, as for a push that fetched before the second landed.
fn assert_a_lost_race_is_told_to_fetch(env: &TestEnv, server: &Server<'_>) {
    let work = env.clone_as(server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    work.commit("won").file("won.yaml", "won: 1\n").create();
    work.push_main_ok();
    work.reset_hard(&base);
    let lost = work.commit("lost").file("lost.yaml", "lost: 1\n").create();
    work.push(&["origin", "+HEAD:refs/heads/incoming"])
        .assert_accepted();
    let out = server.run_pre_receive(format!("{base} {lost} refs/heads/main\n").as_bytes());
    let said = tally_says(&String::from_utf8_lossy(&out.stderr)).join("\n");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("another push is updating refs/heads/main right now; fix: fetch"),
        "{said}"
    );
    assert!(!said.contains("moved outside tally"), "{said}");
    assert!(!said.contains("behind the shared ledger"), "{said}");
    server.assert_ledger_intact();
}

#[test]
fn a_push_that_lost_the_race_for_a_branch_is_told_to_fetch_not_to_call_an_administrator() {
    let env = TestEnv::new();
    let db = Database::start(&env);
    let (a, _b) = replicas(&env, &db.url, &["main"]);
    assert_a_lost_race_is_told_to_fetch(&env, &a);
}

#[test]
fn with_sqlite_too_a_push_that_lost_the_race_for_a_branch_is_told_to_fetch() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    assert_a_lost_race_is_told_to_fetch(&env, &server);
}

// =============================================================================================
// The review's attack: database rows alone never move a branch past the commit checks

/// Someone who can write to the database, but not push a commit the policy accepts, copies
/// into A's ledger a genuine accepted entry of another ledger in the same database (one that
/// allows her key), naming her commit on top of A's main. A push of that commit to A must not
/// pass as a replica catching up: the copied row is not in the ledger A's own key signed, so
/// the push is judged like any push, and refused for its signature.
#[test]
fn a_row_copied_into_the_database_does_not_make_a_push_a_catch_up() {
    let env = TestEnv::new();
    let db = Database::start(&env);
    let (a, _b) = replicas(&env, &db.url, &["main"]);
    let work = env.clone_as(&a, "work", &alice());
    let c1 = work.commit("c1").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();

    // Mallory's own repository, in the same database, where her key is allowed (and Alice's,
    // whose commit hers builds on).
    let mallory_signers = env.write(
        "mallory_signers",
        &AllowedSigners::new()
            .signer("alice@example.com", &keys().alice)
            .signer("mallory@example.com", &keys().mallory)
            .text(),
    );
    let e = env.bare_repo("e");
    init(&env, &e, &mallory_signers, &db.url, &["main"]);
    let theirs = env.clone_as(&a, "theirs", &mallory());
    let forged = theirs.commit("m").file("m.yaml", "m: 1\n").create();
    theirs
        .push(&[e.to_str().unwrap(), "HEAD:refs/heads/main"])
        .assert_accepted();
    // The genuine accepted entry of e.git for her commit, copied into A's ledger as its
    // newest entry for main.
    let copied = db.pg.psql(
        DB,
        &format!(
            "WITH e AS (SELECT id FROM tally.ledgers WHERE origin LIKE 'tally/e.git/%'),
                  a AS (SELECT id FROM tally.ledgers WHERE origin LIKE 'tally/a.git/%'),
                  ins AS (INSERT INTO tally.entries (ledger, seq, bytes, leaf_hash, nodes, kind, refname)
                      SELECT a.id, 1000, x.bytes, x.leaf_hash, '', x.kind, x.refname
                      FROM tally.entries x, e, a
                      WHERE x.ledger = e.id AND x.refname = 'refs/heads/main'
                        AND encode(x.bytes, 'hex') LIKE '%{forged}%'
                      ORDER BY x.seq DESC LIMIT 1
                      RETURNING 1)
             SELECT count(*) FROM ins"
        ),
    );
    assert_eq!(copied, "1", "the row was copied into A's ledger");

    let push = theirs.push(&["origin", "HEAD:refs/heads/main"]);
    assert_ne!(push.code, 0, "the push must be refused: {}", push.stderr);
    assert!(
        push.stderr.contains("tally:"),
        "tally refused it, saying why: {}",
        push.stderr
    );
    assert_eq!(a.branch("main").as_deref(), Some(c1.as_str()));
    // The same through a fetch into A (replication): refused too.
    let out = a
        .git()
        .arg("fetch")
        .arg(&e)
        .arg("refs/heads/main:refs/heads/main")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a fetch must not land it: {out:?}");
    assert_eq!(a.branch("main").as_deref(), Some(c1.as_str()));
    // And the copied row is reported for what it is.
    let verify = a.tally(&["ledger", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    assert_ne!(forged, c1);
}
