//! `kill -9` in the middle of an append: the ledger still verifies and takes the next push.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::common::*;

/// Runs `tally hook <args>` in the repository as git would, with `input` on stdin, and
/// SIGKILLs it once `delay` has passed if it is still running. Returns how it ended and how
/// long it ran.
pub(super) fn run_hook_killed_after(
    env: &TestEnv,
    server: &Server<'_>,
    args: &[&str],
    input: &str,
    delay: Duration,
) -> (ExitStatus, Duration) {
    let mut cmd = env.tally();
    cmd.arg("hook")
        .args(args)
        .env("GIT_DIR", &server.path)
        .current_dir(&server.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        if start.elapsed() >= delay {
            // SIGKILL: no destructor, no SQLite rollback, no cleanup of any kind.
            let _ = child.kill();
            return (child.wait().unwrap(), start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The problems `tally ledger verify --json` reports, split into "the branch and the ledger
/// disagree" (a crash between `prepared` and git's reaction to it, see the ignored tests below)
/// and everything else (the store, its checkpoints or the publication damaged).
pub(super) fn verify_problems(server: &Server<'_>) -> (Vec<String>, Vec<String>) {
    let (code, json) = verify_json(server);
    let problems: Vec<String> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(code == Some(0), problems.is_empty(), "{json}");
    problems
        .into_iter()
        .partition(|p| p.contains("but the ledger records it at"))
}

/// Kills `reference-transaction prepared` at evenly spread instants of its run (one run per
/// instant, each for a new verdict), then does what git does next, and checks the ledger after
/// each. With `strict`, `tally ledger verify` must exit 0 after every crash; otherwise only
/// the store, its checkpoints and the publication must be intact, and a disagreement between
/// main and its latest accepted entry is printed as a finding. Either way the store must take
/// the next real push and then verify.
fn kill_prepared_at_many_points(strict: bool) {
    const RUNS: u32 = 16;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();

    let mut full = Duration::from_millis(20);
    let mut mismatches = Vec::new();
    let mut outcomes = BTreeMap::<&str, u32>::new();
    for run in 0..=RUNS {
        // A commit main can fast-forward to, already on the server (an unprotected branch),
        // judged by pre-receive as a push to main would be: its verdict waits in pending/.
        let next = work
            .commit(&format!("run {run}"))
            .file(&format!("apps/run{run}.yaml"), format!("run: {run}\n"))
            .create();
        work.push(&["origin", "HEAD:refs/heads/incoming"])
            .assert_accepted();
        let old = server.branch("main").unwrap();
        let input = format!("{old} {next} refs/heads/main\n");
        let pre = server.run_pre_receive(input.as_bytes());
        assert!(pre.status.success(), "{pre:?}");

        // Run 0 is uninterrupted and sets the time scale; the others are killed at evenly
        // spread instants across it.
        let delay = match run {
            0 => Duration::from_secs(30),
            _ => full * (run - 1) / (RUNS - 1),
        };
        let (status, ran) = run_hook_killed_after(
            &env,
            &server,
            &["reference-transaction", "prepared"],
            &input,
            delay,
        );
        if run == 0 {
            assert!(status.success(), "prepared, uninterrupted: {status}");
            full = ran;
        }
        // What git does next: a hook that exited 0 lets the update happen (then `committed`);
        // a hook that died makes git abort the transaction (then `aborted`).
        if status.success() {
            *outcomes.entry("completed").or_default() += 1;
            run_ok(server.git().args([
                "-c",
                NO_HOOKS,
                "update-ref",
                "refs/heads/main",
                &next,
                &old,
            ]));
            let out = server.run_reference_transaction("committed", input.as_bytes());
            assert!(out.status.success(), "{out:?}");
        } else {
            *outcomes.entry("killed").or_default() += 1;
            let out = server.run_reference_transaction("aborted", input.as_bytes());
            assert!(out.status.success(), "{out:?}");
        }
        let (mismatch, damage) = verify_problems(&server);
        assert!(
            damage.is_empty(),
            "run {run}: killed after {delay:?}: the ledger is damaged: {damage:?}"
        );
        assert!(
            !strict || mismatch.is_empty(),
            "run {run}: killed after {delay:?} (prepared takes {full:?}): {mismatch:?}"
        );
        if !mismatch.is_empty() {
            mismatches.push((run, delay, mismatch));
        }
    }
    eprintln!("prepared takes {full:?} uninterrupted; outcomes {outcomes:?}");
    // Reported, not hidden: see the ignored tests kill_9_during_the_accepted_append_* and
    // kill_9_after_the_append_commits_before_the_inflight_marker_leaves_a_verifying_ledger.
    if !mismatches.is_empty() {
        eprintln!("FINDING: branch and ledger disagree after a kill: {mismatches:?}");
    }

    // The store takes the next real push, and then agrees with the branch again.
    work.push_main_ok();
    let tip = server.branch("main").unwrap();
    assert_eq!(tip, work.head());
    assert_eq!(
        opt(&latest_landed(&server, "main"), "new"),
        Some(tip.as_str())
    );
    server.assert_ledger_intact();
}

#[test]
fn kill_9_during_the_accepted_append_leaves_a_store_that_verifies_and_takes_the_next_push() {
    kill_prepared_at_many_points(false);
}

#[test]
fn kill_9_during_the_accepted_append_leaves_a_ledger_that_verifies_after_every_crash() {
    kill_prepared_at_many_points(true);
}

#[test]
fn kill_9_during_the_rejected_append_leaves_a_ledger_that_verifies() {
    const RUNS: u32 = 12;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let bad = work
        .commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/incoming"])
        .assert_accepted();
    let input = format!("{base} {bad} refs/heads/main\n");
    let (status, full) = run_hook_killed_after(
        &env,
        &server,
        &["pre-receive"],
        &input,
        Duration::from_secs(30),
    );
    assert_eq!(
        status.code(),
        Some(1),
        "pre-receive refuses the unsigned commit"
    );
    let mut killed = 0;
    for run in 0..RUNS {
        let delay = full * run / (RUNS - 1);
        let (status, _) = run_hook_killed_after(&env, &server, &["pre-receive"], &input, delay);
        killed += u32::from(status.code().is_none());
        let (code, json) = verify_json(&server);
        assert_eq!(code, Some(0), "killed after {delay:?}: {json}");
    }
    eprintln!("pre-receive takes {full:?} uninterrupted; {killed} of {RUNS} runs killed");
    // The next refusal and the next accepted push are recorded.
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    assert_eq!(kind(&server.log(&["--limit", "1"])[0]), "rejected");
    work.reset_hard(&base);
    let next = work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push_main_ok();
    assert_eq!(
        opt(&latest_landed(&server, "main"), "new"),
        Some(next.as_str())
    );
    server.assert_ledger_intact();
}

/// Sets up main at a base commit and a verdict for `main: base -> next` left by pre-receive;
/// returns the server, `next` and the hook input for that update.
pub(super) fn pending_move<'e>(env: &'e TestEnv) -> (Server<'e>, String, String) {
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let next = work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push(&["origin", "HEAD:refs/heads/incoming"])
        .assert_accepted();
    let input = format!("{base} {next} refs/heads/main\n");
    let pre = server.run_pre_receive(input.as_bytes());
    assert!(pre.status.success(), "{pre:?}");
    (server, next, input)
}

/// Regression: a kill -9 of `prepared` after `Store::append` committed used to leave an
/// accepted entry that `aborted` could not find (the in-flight marker was written after the
/// append). The marker now goes down first, so the state at that instant is: marker present,
/// entry appended, verdict still pending. git, seeing the hook die, runs `aborted`.
#[test]
fn kill_9_after_the_append_commits_leaves_a_verifying_ledger() {
    let env = TestEnv::new();
    let (server, next, input) = pending_move(&env);
    let pending = server.tally_dir().join("pending");
    let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&pending)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert_eq!(saved.len(), 1);
    let markers = || -> Vec<String> {
        std::fs::read_dir(server.tally_dir().join("inflight"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    let out = server.run_reference_transaction("prepared", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    let left = markers();
    assert!(
        left.iter().any(|m| m.contains(next.as_str())),
        "prepared leaves an in-flight marker for the move: {left:?}"
    );
    for (p, bytes) in &saved {
        std::fs::write(p, bytes).unwrap();
    }
    let out = server.run_reference_transaction("aborted", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    server.assert_ledger_intact();
    let aborted = server.log(&["--kind", "aborted"]);
    assert_eq!(aborted.len(), 1);
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(accepted[0]["new"].as_str(), Some(next.as_str()));
    assert_eq!(aborted[0]["aborts"], accepted[0]["seq"]);
}

/// Regression (issue 3, one-commit push cost): `committed` starts no tally process, so the
/// in-flight marker of every landed push used to stay until a `prepared` found it older than
/// 60 s, and every push read all of them. A marker whose ref has left its old value is now
/// dropped by the next `prepared`, however young.
#[test]
fn in_flight_markers_do_not_pile_up() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let dir = server.tally_dir().join("inflight");
    let markers = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tips = Vec::new();
    for i in 0..5 {
        let tip = work
            .commit(&format!("change {i}"))
            .file("base.yaml", format!("{BASE_YAML}i: {i}\n"))
            .create();
        work.push_main_ok();
        tips.push(tip);
        let left = markers();
        assert_eq!(left.len(), 1, "after push {i}: {left:?}");
        assert!(left[0].contains(tips[i].as_str()), "{left:?}");
    }
    server.assert_ledger_intact();
    assert_eq!(server.log(&["--kind", "aborted"]).len(), 0);
}

/// When git dies after `prepared` appended the accepted entry but before it moved the ref
/// (kill -9 of receive-pack, power loss), neither `committed` nor `aborted` runs. Until the
/// next ref transaction, `tally ledger verify` reports the mismatch; the next `prepared`
/// settles the stale in-flight marker with an `aborted` entry, and the ledger agrees with the
/// branch again.
#[test]
fn crash_between_prepared_and_committed_is_settled_by_the_next_push() {
    let env = TestEnv::new();
    let (server, next, input) = pending_move(&env);
    let out = server.run_reference_transaction("prepared", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    // git is gone: the ref did not move, no further hook runs.
    let verify = server.tally(&["ledger", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    assert!(
        unwrapped(&String::from_utf8_lossy(&verify.stderr))
            .contains("but the ledger records it at"),
        "{verify:?}"
    );
    // Age the marker past the point where a live transaction could still own it.
    let dir = server.tally_dir().join("inflight");
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[3] = "1000000000".into();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    let work = env.clone_as(&server, "again", &alice());
    work.commit("after the crash")
        .file("after.yaml", "after: 1\n")
        .create();
    work.push(&["origin", "HEAD:main"]).assert_accepted();
    server.assert_ledger_intact();
    let aborted = server.log(&["--kind", "aborted"]);
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    let cancelled = server
        .log(&["--kind", "accepted"])
        .into_iter()
        .find(|e| e["new"].as_str() == Some(next.as_str()))
        .unwrap();
    assert_eq!(aborted[0]["aborts"], cancelled["seq"]);
    // The crashed transaction's marker is gone (the last push may leave its own).
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!text.contains(next.as_str()), "{text}");
    }
}
