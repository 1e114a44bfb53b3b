//! The mirror under stress: kills and restarts, clients fetching while the branch moves, a
//! second client implementation.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::serving::upstream;
use super::*;

/// A small deterministic generator for "random" moments, seeded per run and printed, so a
/// failure can be replayed.
struct Moments(u64);

impl Moments {
    fn new() -> Moments {
        let seed = std::env::var("TALLY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("moments: TALLY_TEST_SEED={seed}");
        Moments(seed | 1)
    }

    /// A duration in `0..max`.
    fn below(&mut self, max: Duration) -> Duration {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

/// Every commit the served repository holds.
fn served_commits(mirror: &Mirror<'_>, env: &TestEnv) -> Vec<String> {
    let out = stdout_of(
        env.git(env.root())
            .arg("--git-dir")
            .arg(mirror.dir.join("served.git"))
            .args([
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objectname) %(objecttype)",
            ]),
    );
    out.lines()
        .filter_map(|l| l.strip_suffix(" commit"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn kill_9_at_random_moments_never_serves_an_unverified_commit_and_restarts_resume() {
    let env = TestEnv::new();
    let (server, work, base) = upstream(&env);
    // The mirror trusts Alice only; Bob's commits are accepted upstream and must never be
    // served (nor anything on top of them).
    let pins = Pins::new(
        &env,
        &server,
        "mirror",
        &AllowedSigners::new().signer("alice@example.com", &keys().alice),
    );
    let mut mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &base);
    let mut moments = Moments::new();
    let mut verified: HashSet<String> = HashSet::from([base.clone()]);
    let mut refused: Vec<String> = Vec::new();

    for round in 0..10 {
        // Rounds 0-6: Alice's commits, all good. Round 7: Bob's. After: Alice's again, on top.
        let by_bob = round == 7;
        let mut commit = work
            .commit(&format!("round {round}"))
            .file(&format!("r{round}.yaml"), format!("r: {round}\n"));
        if by_bob {
            commit = commit.by(&bob());
        }
        let id = commit.create();
        work.push_main_ok();
        if by_bob || !refused.is_empty() {
            refused.push(id.clone());
        } else {
            verified.insert(id.clone());
        }
        // A webhook, then a kill at a random moment of the cycle it starts.
        let _ = mirror.request("POST", "/hook", &[("X-Gitlab-Token", SECRET)], b"");
        std::thread::sleep(moments.below(Duration::from_millis(400)));
        mirror.kill_and_restart();

        // Whatever the moment, the served repository holds verified commits only (and the
        // ledger's publication commits, which the server wrote), its branch is one of them,
        // and the restarted mirror serves on.
        let publications: HashSet<String> =
            stdout_of(server.git().args(["rev-list", "refs/tally/ledger"]))
                .lines()
                .map(str::to_owned)
                .collect();
        for c in served_commits(&mirror, &env) {
            assert!(
                verified.contains(&c) || publications.contains(&c),
                "round {round}: the served repository holds {c}, which was never verified"
            );
        }
        if let Some(main) = mirror.served_ref("refs/heads/main") {
            assert!(verified.contains(&main), "round {round}: main at {main}");
        }
    }
    // Left alone, the mirror keeps serving a verified commit, ready: the last good one if a
    // cycle completed between its push and Bob's (the agent approves only the ledger's
    // latest entry for the branch, so a good commit no cycle saw before Bob's is never
    // served on its own).
    mirror.cycle();
    assert_eq!(mirror.request("GET", "/readyz", &[], b"").0, 200);
    let main = mirror.branch("main");
    let served = main["served"]["commit"].as_str().unwrap().to_owned();
    assert!(verified.contains(&served), "{main:#}");
    assert_eq!(mirror.served_ref("refs/heads/main").unwrap(), served);
    assert!(
        main["last_error"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "signature"),
        "{main:#}"
    );
    for bad in &refused {
        assert!(!served_commits(&mirror, &env).contains(bad));
    }
    // The served repository is a sound git repository.
    run_ok(
        env.git(env.root())
            .arg("--git-dir")
            .arg(mirror.dir.join("served.git"))
            .args(["fsck", "--strict", "--no-dangling"]),
    );
}

#[test]
fn a_restarted_mirror_is_ready_at_once_with_what_it_served() {
    let env = TestEnv::new();
    let (server, _work, base, _pins, mut mirror) = mirrored(&env, &alice_and_bob());
    // Stop the upstream from answering: the restarted mirror cannot fetch, yet serves.
    std::fs::rename(&server.path, env.root().join("gone.git")).unwrap();
    mirror.kill_and_restart();
    let (code, _) = mirror.request("GET", "/readyz", &[], b"");
    assert_eq!(code, 200, "{}", mirror.log());
    assert_eq!(mirror.branch("main")["served"]["commit"], base);
    let status = mirror.wait_for("the failed fetch", |s| {
        s["branches"][0]["consecutive_failures"].as_u64() >= Some(1)
    });
    let main = &status["branches"][0];
    assert_eq!(main["last_error"]["class"], "retry", "{main:#}");
    assert_eq!(main["last_error"]["reasons"][0], "fetch");
    assert!(
        mirror
            .metrics()
            .contains("tally_mirror_verify_failures_total{branch=\"main\",reason=\"fetch\"} "),
    );
    let clone = clone_mirror(&env, &mirror, "clone", 2);
    assert_eq!(stdout_of(env.git(&clone).args(["rev-parse", "HEAD"])), base);

    // What was served is recorded by the mirror itself (served.json), not only in the pinned
    // state, which can be ahead of it (a kill between the pin and the push) or gone.
    std::fs::remove_file(mirror.dir.join("tally/agent/main.json")).unwrap();
    mirror.kill_and_restart();
    assert_eq!(mirror.request("GET", "/readyz", &[], b"").0, 200);
    let main = mirror.branch("main");
    assert_eq!(main["served"]["commit"], base);
    assert_eq!(
        main["served"]["seq"],
        status["branches"][0]["served"]["seq"]
    );
}

#[test]
fn a_second_mirror_in_the_same_directory_is_refused() {
    let env = TestEnv::new();
    let (_server, _work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let mut args = mirror.args.clone();
    let out = env.tally().args(&mut args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another tally mirror is running in"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn clients_fetching_while_the_served_branch_moves_get_the_old_or_the_new_commit() {
    let env = TestEnv::new();
    let (_server, work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let clones: Vec<PathBuf> = [0, 2]
        .iter()
        .map(|v| clone_mirror(&env, &mirror, &format!("clone-v{v}"), *v))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let mut fetchers = Vec::new();
    for (i, clone) in clones.iter().enumerate() {
        let stop = stop.clone();
        let clone = clone.clone();
        let version = [0, 2][i];
        let mut git = env.git(&clone);
        git.args([
            "-c",
            &format!("protocol.version={version}"),
            "fetch",
            "-q",
            "origin",
        ]);
        let envs: Vec<(String, String)> = git
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect();
        fetchers.push(std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut fetches = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = Command::new("git")
                    .env_clear()
                    .envs(envs.iter().map(|(k, v)| (k, v)))
                    .current_dir(&clone)
                    .args([
                        "-c",
                        &format!("protocol.version={version}"),
                        "fetch",
                        "-q",
                        "origin",
                    ])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "fetch (protocol v{version}) failed while the branch moved: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                fetches += 1;
                let tip = Command::new("git")
                    .env_clear()
                    .envs(envs.iter().map(|(k, v)| (k, v)))
                    .current_dir(&clone)
                    .args(["rev-parse", "origin/main"])
                    .output()
                    .unwrap();
                seen.push(String::from_utf8(tip.stdout).unwrap().trim().to_owned());
            }
            (fetches, seen)
        }));
    }

    let mut pushed = vec![base.clone()];
    for i in 0..6 {
        let id = work
            .commit(&format!("c{i}"))
            .file(&format!("c{i}.yaml"), format!("c: {i}\n"))
            .create();
        work.push_main_ok();
        mirror.hook();
        mirror.wait_served("main", &id);
        pushed.push(id);
    }
    stop.store(true, Ordering::Relaxed);
    for f in fetchers {
        let (fetches, seen) = f.join().unwrap();
        assert!(fetches > 0);
        for tip in seen {
            assert!(pushed.contains(&tip), "a fetch saw {tip}, never served");
        }
    }
    let tip = pushed.last().unwrap();
    for clone in &clones {
        run_ok(env.git(clone).args(["fetch", "-q", "origin"]));
        assert_eq!(
            &stdout_of(env.git(clone).args(["rev-parse", "origin/main"])),
            tip
        );
    }
}

#[test]
fn dulwich_a_second_client_implementation_clones_and_fetches_from_the_mirror() {
    let env = TestEnv::new();
    let (_server, work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let target = env.root().join("dulwich-clone");
    let python = |script: &str| {
        let out = Command::new("python3")
            .args(["-c", script])
            .output()
            .expect("python3 is needed (.ci/run installs it, with dulwich from PyPI)");
        assert!(
            out.status.success(),
            "dulwich failed (is it installed? .ci/run installs it from PyPI):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let url = &mirror.url;
    let path = target.display();
    let head = python(&format!(
        "import io\nfrom dulwich import porcelain\n\
         r = porcelain.clone({url:?}, {:?}, checkout=True, errstream=io.BytesIO())\n\
         print(r.head().decode())",
        path.to_string()
    ));
    assert_eq!(head, base);
    assert_eq!(
        std::fs::read_to_string(target.join("base.yaml")).unwrap(),
        "base: 1\n"
    );

    let next = work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    mirror.hook();
    mirror.wait_served("main", &next);
    let fetched = python(&format!(
        "import io\nfrom dulwich import porcelain\n\
         from dulwich.repo import Repo\n\
         r = Repo({:?})\n\
         result = porcelain.fetch(r, {url:?}, errstream=io.BytesIO())\n\
         print(result.refs[b'refs/heads/main'].decode())",
        path.to_string()
    ));
    assert_eq!(fetched, next);
}

/// The git processes (git and its helpers, such as git-remote-http) whose command line names
/// `needle` (the mirror's fetches run with `-C <dir>/cache.git` and the upstream's URL).
fn gits_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let program = cmdline.split(' ').next().unwrap_or("");
        let name = program.rsplit('/').next().unwrap_or("");
        if name.starts_with("git") && cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn an_upstream_that_never_answers_times_out_and_sigterm_leaves_no_git_behind() {
    let env = TestEnv::new();
    let (server, _work, _base) = upstream(&env);
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/deploy.git", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in silent.incoming().take(8) {
            open.push(s);
        }
        open
    });

    let timed = Mirror::start_url(&env, &url, &pins, "timed", &["--fetch-timeout", "2s"], &[]);
    let status = timed.wait_for("the fetch to time out", |s| {
        s["branches"][0]["consecutive_failures"].as_u64() >= Some(1)
    });
    let error = &status["branches"][0]["last_error"];
    assert_eq!(error["reasons"][0], "fetch", "{error:#}");
    assert!(
        error["message"].to_string().contains("timed out after 2s"),
        "{error:#}"
    );
    drop(timed);

    // SIGTERM while a fetch hangs (a long --fetch-timeout): the mirror stops within seconds
    // and kills the fetch with its helper.
    let mut hanging = Mirror::start_url(
        &env,
        &url,
        &pins,
        "hanging",
        &["--fetch-timeout", "10m"],
        &[],
    );
    let start = Instant::now();
    while gits_with(&url).len() < 2 {
        assert!(start.elapsed() < PATIENCE, "no fetch started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = hanging.child.take().unwrap();
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the mirror did not stop on SIGTERM during a hanging fetch"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", hanging.log());
    let start = Instant::now();
    while !gits_with(&url).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(gits_with(&url), Vec::<String>::new(), "git left running");
    drop(held);
}

#[test]
fn branches_are_judged_apart_and_a_branch_no_longer_mirrored_is_no_longer_served() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "stage"]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "base: 1\n").create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    work.push(&["origin", "HEAD:refs/heads/stage"])
        .assert_accepted();
    // The mirror trusts Alice only.
    let pins = Pins::new(
        &env,
        &server,
        "mirror",
        &AllowedSigners::new().signer("alice@example.com", &keys().alice),
    );
    let mut mirror = Mirror::start(
        &env,
        &server.path,
        &pins,
        "mirror",
        &["--branch", "main", "--branch", "stage"],
    );
    mirror.wait_served("main", &base);
    mirror.wait_served("stage", &base);

    // Bob's commit on stage is never served; Alice's on main is, in the same cycle.
    let bobs = work
        .commit("bob")
        .file("bob.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.push(&["origin", "HEAD:refs/heads/stage"])
        .assert_accepted();
    work.reset_hard(&base);
    let alices = work.commit("alice").file("alice.yaml", "a: 1\n").create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    mirror.hook();
    mirror.wait_served("main", &alices);
    let status = mirror.wait_for("stage's refusal", |s| {
        s["branches"][1]["consecutive_failures"].as_u64() >= Some(1)
    });
    assert_eq!(status["branches"][1]["served"]["commit"], base);
    assert_eq!(
        status["branches"][1]["last_error"]["reasons"][0],
        "signature"
    );
    assert_eq!(status["branches"][0]["consecutive_failures"], 0);
    assert_eq!(mirror.served_ref("refs/heads/stage").unwrap(), base);
    assert!(!mirror.served_objects().contains(&bobs));

    // Restarted without stage: stage is no longer served at all.
    let mut args = mirror.args.clone();
    let at = args.iter().position(|a| a == "stage").unwrap();
    assert_eq!(args[at - 1], "--branch");
    args.drain(at - 1..=at);
    mirror.args = args;
    mirror.kill_and_restart();
    assert_eq!(mirror.request("GET", "/readyz", &[], b"").0, 200);
    let refs = mirror.ls_remote(2);
    assert!(!refs.contains("refs/heads/stage"), "{refs}");
    assert!(
        refs.contains(&format!("{alices}\trefs/heads/main")),
        "{refs}"
    );
    assert!(
        mirror.log().contains("no longer mirrored"),
        "{}",
        mirror.log()
    );
}

#[test]
fn a_fetch_cache_deleted_while_the_mirror_runs_is_rebuilt() {
    let env = TestEnv::new();
    let (_server, work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    std::fs::remove_dir_all(mirror.dir.join("cache.git")).unwrap();
    let next = work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    mirror.hook();
    mirror.wait_served("main", &next);
    assert_eq!(mirror.branch("main")["consecutive_failures"], 0);
    assert!(
        mirror.log().contains("the fetch cache is gone"),
        "{}",
        mirror.log()
    );
}

#[test]
fn one_client_cannot_take_every_connection() {
    let env = TestEnv::new();
    let (_server, _work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    // 200 silent connections from 127.0.0.1: the mirror keeps 128 and closes the rest.
    let held: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&mirror.addr).unwrap())
        .collect();
    // Long enough for the mirror to accept them all, far shorter than its header timeout.
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = |held: &[TcpStream]| {
        held.iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                matches!((&**s).read(&mut [0u8; 1]), Ok(0))
            })
            .count()
    };
    while closed(&held) < 200 - 128 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = closed(&held);
    assert_eq!(closed, 200 - 128);
    // Another client (127.0.0.2, loopback too) still gets its probe answered.
    let (host, port) = mirror.addr.rsplit_once(':').unwrap();
    assert_eq!(host, "127.0.0.1");
    let probe = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import socket\n\
                 s = socket.socket(); s.settimeout(20); s.bind(('127.0.0.2', 0))\n\
                 s.connect(('127.0.0.1', {port}))\n\
                 s.sendall(b'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n\
                 print(s.recv(64).decode().split()[1])"
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "200",
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(held);
}
