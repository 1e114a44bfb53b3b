//! Starting and stopping: what the operator gives on the command line, and SIGTERM.

use super::serving::upstream;
use super::*;

/// `tally mirror` with `args`, expected to stop at once with exit 2; its stderr.
fn refused_at_start(env: &TestEnv, args: &[&str]) -> String {
    let out = env.tally().arg("mirror").args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing served");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn wrong_flags_and_files_stop_the_mirror_at_start_with_what_to_fix() {
    let env = TestEnv::new();
    let (server, _work, _base) = upstream(&env);
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let upstream = server.path.display().to_string();
    let key = pins.key.display().to_string();
    let signers = pins.signers.display().to_string();
    let dir = env.root().join("m").display().to_string();
    let base = [
        "--upstream",
        upstream.as_str(),
        "--dir",
        dir.as_str(),
        "--listen",
        "127.0.0.1:0",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused_at_start(&env, &args)
    };

    let missing = run(with(&[
        "--ledger-key",
        "/nonexistent/ledger.pub",
        "--allowed-signers",
        &signers,
    ]));
    assert!(
        missing.contains("cannot read the pinned ledger key"),
        "{missing}"
    );
    let signers_missing = run(with(&[
        "--ledger-key",
        &key,
        "--allowed-signers",
        "/nonexistent/allowed_signers",
    ]));
    assert!(
        signers_missing.contains("cannot load the agent's allowed signers"),
        "{signers_missing}"
    );
    let pinned = [
        "--ledger-key",
        key.as_str(),
        "--allowed-signers",
        signers.as_str(),
    ];
    let bad_name = run(with(&[&pinned[..], &["--name", "../x"]].concat()));
    assert!(
        bad_name.contains("cannot name the served repository"),
        "{bad_name}"
    );
    let reserved = run(with(&[&pinned[..], &["--name", "metrics"]].concat()));
    assert!(reserved.contains("none of healthz"), "{reserved}");
    let branch = run(with(&[&pinned[..], &["--branch", "refs/tags/v1"]].concat()));
    assert!(branch.contains("is not a branch name"), "{branch}");
    let twice = run(with(
        &[&pinned[..], &["--branch", "main", "--branch", "main"]].concat(),
    ));
    assert!(twice.contains("given twice"), "{twice}");
    let empty_secret = env.write("empty-secret", "\n");
    let secret = run(with(
        &[
            &pinned[..],
            &["--webhook-secret", empty_secret.to_str().unwrap()],
        ]
        .concat(),
    ));
    assert!(secret.contains("is empty"), "{secret}");
    let listen = refused_at_start(
        &env,
        &[
            "--upstream",
            &upstream,
            "--dir",
            &dir,
            "--ledger-key",
            &key,
            "--allowed-signers",
            &signers,
            "--listen",
            "localhost",
        ],
    );
    assert!(listen.contains("pass HOST:PORT"), "{listen}");

    // The port is taken by another process.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let busy = refused_at_start(
        &env,
        &[
            "--upstream",
            &upstream,
            "--dir",
            &dir,
            "--ledger-key",
            &key,
            "--allowed-signers",
            &signers,
            "--listen",
            &addr,
        ],
    );
    assert!(busy.contains(&format!("cannot listen on {addr}")), "{busy}");
}

#[test]
fn sigterm_stops_the_mirror_cleanly_and_json_logs_are_one_object_per_line() {
    let env = TestEnv::new();
    let (server, _work, base) = upstream(&env);
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    // A relative --upstream is the path from where tally was started.
    let relative = server
        .path
        .strip_prefix(env.root())
        .unwrap()
        .display()
        .to_string();
    let mut mirror = Mirror::start(
        &env,
        Path::new(&relative),
        &pins,
        "mirror",
        &["--log-format", "json"],
    );
    mirror.wait_served("main", &base);
    let mut child = mirror.child.take().unwrap();
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the mirror did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", mirror.log());
    // The stderr thread has the whole log once the pipe closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !mirror.log().contains("stopped") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = mirror.log();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(messages.contains(&"serving"), "{log}");
    assert!(
        messages.contains(&"serving a newly verified commit"),
        "{log}"
    );
    assert!(messages.contains(&"stopped"), "{log}");
    let served = events
        .iter()
        .find(|e| e["message"] == "serving a newly verified commit")
        .unwrap();
    assert_eq!(served["commit"], base.as_str());
    assert_eq!(served["branch"], "main");
}
