//! What the mirror serves when all is well: verified commits, to every protocol version, to a
//! downstream agent that re-verifies, read-only.

use super::*;

/// A guarded upstream with one accepted commit on main.
pub(super) fn upstream(env: &TestEnv) -> (Server<'_>, Work<'_>, String) {
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "base: 1\n").create();
    work.push_main_ok();
    (server, work, base)
}

#[test]
fn good_pushes_reach_clones_of_the_mirror_after_a_webhook_and_downstream_agents_verify_them() {
    let env = TestEnv::new();
    let (server, work, base) = upstream(&env);
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    assert!(mirror.url.ends_with("/deploy.git"), "{}", mirror.url);

    // The first cycle runs at start.
    let status = mirror.wait_served("main", &base);
    assert_eq!(status["ready"], true);
    assert_eq!(mirror.request("GET", "/readyz", &[], b"").0, 200);
    assert_eq!(mirror.request("GET", "/healthz", &[], b"").0, 200);
    let main = mirror.branch("main");
    assert_eq!(main["revision"], Value::Null, "revision sits under served");
    assert_eq!(main["served"]["revision"], format!("main@sha1:{base}"));
    assert_eq!(main["consecutive_failures"], 0);
    assert_eq!(main["served"]["checkpoint"]["size"], server.log(&[]).len());

    // Every protocol version clones it, HEAD checked out on main.
    for version in [0, 1, 2] {
        let clone = clone_mirror(&env, &mirror, &format!("clone-v{version}"), version);
        assert_eq!(stdout_of(env.git(&clone).args(["rev-parse", "HEAD"])), base);
        assert_eq!(
            stdout_of(env.git(&clone).args(["symbolic-ref", "HEAD"])),
            "refs/heads/main"
        );
    }
    let refs = mirror.ls_remote(2);
    assert!(refs.contains(&format!("{base}\trefs/heads/main")), "{refs}");
    assert!(refs.contains("\trefs/tally/ledger"), "{refs}");

    // Alice pushes twice upstream; one webhook later the mirror serves the tip.
    let clone = env.root().join("clone-v2");
    work.commit("a2").file("a2.yaml", "a: 2\n").create();
    work.push_main_ok();
    let a3 = work.commit("a3").file("a3.yaml", "a: 3\n").create();
    work.push_main_ok();
    mirror.hook();
    mirror.wait_served("main", &a3);
    run_ok(env.git(&clone).args(["pull", "-q", "--ff-only"]));
    assert_eq!(stdout_of(env.git(&clone).args(["rev-parse", "HEAD"])), a3);
    assert_eq!(
        mirror.served_ref("refs/tally/ledger"),
        server.rev("refs/tally/ledger")
    );

    // A downstream agent re-verifies from the mirror alone: the ledger came along.
    run_ok(env.git(&clone).args([
        "fetch",
        "-q",
        "origin",
        "+refs/tally/ledger:refs/tally/ledger",
    ]));
    let verify = env
        .tally()
        .args(["verify", "--repo"])
        .arg(&clone)
        .arg("--ledger-key")
        .arg(&pins.key)
        .arg("--allowed-signers")
        .arg(&pins.signers)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&verify.stdout).trim(),
        a3,
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The metrics say the same.
    let metrics = mirror.metrics();
    assert!(
        metrics.contains(&format!(
            "tally_mirror_served_info{{branch=\"main\",commit=\"{a3}\"}} 1\n"
        )),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&format!("commit=\"{base}\"")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "tally_mirror_ledger_entries {}\n",
            server.log(&[]).len()
        )),
        "{metrics}"
    );
    assert!(metrics.contains("tally_mirror_fetch_duration_seconds_count "));
    // Every failure reason starts at zero, so that an alert on increase() sees the first one.
    assert!(
        metrics.contains(
            "tally_mirror_verify_failures_total{branch=\"main\",reason=\"signature\"} 0\n"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tally_mirror_last_success_timestamp_seconds{branch=\"main\"} "));
    assert!(metrics.contains("tally_mirror_checkpoint_age_seconds{branch=\"main\"} "));

    // Nothing but verified objects in the served repository: every object is reachable from
    // the served refs.
    let reachable = stdout_of(
        env.git(env.root())
            .arg("--git-dir")
            .arg(mirror.dir.join("served.git"))
            .args(["rev-list", "--objects", "--all"]),
    );
    let reachable: std::collections::HashSet<&str> = reachable
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for object in mirror.served_objects() {
        assert!(
            reachable.contains(object.as_str()),
            "unreachable object {object}"
        );
    }
}

#[test]
fn the_mirror_is_read_only_and_answers_only_what_it_serves() {
    let env = TestEnv::new();
    let (_server, work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());

    // A push to the mirror, by git over HTTP: refused, nothing moves.
    let local = env.clone_url_as(&mirror.url, "clone", &alice(), &[]);
    let mine = local.commit("mine").file("mine.yaml", "m: 1\n").create();
    let push = local
        .git()
        .args(["push", "origin", &format!("{mine}:refs/heads/main")])
        .output()
        .unwrap();
    assert!(!push.status.success());
    assert!(
        String::from_utf8_lossy(&push.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    assert_eq!(mirror.served_ref("refs/heads/main").unwrap(), base);
    let (code, body) = mirror.request(
        "GET",
        "/deploy.git/info/refs?service=git-receive-pack",
        &[],
        b"",
    );
    assert_eq!(code, 403);
    assert!(body.contains("read-only tally mirror"), "{body}");
    let (code, _) = mirror.request(
        "POST",
        "/deploy.git/git-receive-pack",
        &[("Content-Type", "application/x-git-receive-pack-request")],
        b"0000",
    );
    assert_eq!(code, 403);

    // The dumb protocol, other paths, a wrong content type.
    assert_eq!(
        mirror.request("GET", "/deploy.git/info/refs", &[], b"").0,
        403
    );
    assert_eq!(mirror.request("GET", "/deploy.git/HEAD", &[], b"").0, 404);
    assert_eq!(
        mirror
            .request(
                "GET",
                "/other.git/info/refs?service=git-upload-pack",
                &[],
                b""
            )
            .0,
        404
    );
    assert_eq!(
        mirror
            .request(
                "POST",
                "/deploy.git/git-upload-pack",
                &[("Content-Type", "text/plain")],
                b"0000"
            )
            .0,
        415
    );
    drop(work);
}

#[test]
fn webhooks_need_a_valid_signature_or_token() {
    let env = TestEnv::new();
    let (_server, _work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let body = br#"{"ref":"refs/heads/main"}"#;
    let good = hmac_sha256_hex(SECRET.as_bytes(), body);
    let wrong = hmac_sha256_hex(b"not the secret", body);

    type Case<'a> = (Vec<(&'a str, String)>, &'a [u8], u16);
    let cases: Vec<Case<'_>> = vec![
        (vec![], body, 401),
        (
            vec![("X-Hub-Signature-256", format!("sha256={wrong}"))],
            body,
            401,
        ),
        (vec![("X-Hub-Signature-256", good.clone())], body, 401),
        (
            vec![("X-Hub-Signature-256", format!("sha256={good}"))],
            b"{}",
            401,
        ),
        (vec![("X-Gitea-Signature", wrong.clone())], body, 401),
        (vec![("X-Gitlab-Token", "guess".to_owned())], body, 401),
        (
            vec![("X-Hub-Signature-256", format!("sha256={good}"))],
            body,
            202,
        ),
        (vec![("X-Gitea-Signature", good.clone())], body, 202),
        (vec![("X-Gitlab-Token", SECRET.to_owned())], body, 202),
    ];
    for (headers, sent, expected) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, text) = mirror.request("POST", "/hook", &headers, sent);
        assert_eq!(code, expected, "{headers:?}: {text}");
        if expected == 401 {
            assert!(text.contains("X-Hub-Signature-256"), "{text}");
        }
    }
    assert_eq!(mirror.request("GET", "/hook", &[], b"").0, 405);
    let metrics = mirror.metrics();
    assert!(
        metrics.contains("tally_mirror_webhooks_total{code=\"401\"} 6\n"),
        "{metrics}"
    );
}

#[test]
fn a_flood_of_webhooks_fetches_at_most_once_a_second() {
    let env = TestEnv::new();
    let (_server, _work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let before = mirror.cycles();
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(3) {
        mirror.hook();
        sent += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    mirror.wait_for("the coalesced cycle", |s| {
        s["cycles"].as_u64().unwrap() > before
    });
    let ran = mirror.cycles() - before;
    assert!(sent > 20, "only {sent} webhooks sent");
    // One cycle per second at most, plus the one a trigger starts at once.
    assert!(
        (ran as f64) <= elapsed.ceil() + 2.0,
        "{ran} cycles for {sent} webhooks in {elapsed:.1}s"
    );
}

#[test]
fn heartbeats_that_replace_each_other_are_followed_and_later_pushes_still_served() {
    let env = TestEnv::new();
    let (server, work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());

    // Two heartbeats in a row: the second publication replaces the first, so
    // refs/tally/ledger moves sideways, not forward.
    for _ in 0..2 {
        wait_for_the_next_second();
        assert!(server.tally(&["ledger", "checkpoint"]).status.success());
        mirror.cycle();
        let main = mirror.branch("main");
        assert_eq!(
            main["consecutive_failures"],
            0,
            "{main:#}\n{}",
            mirror.log()
        );
        assert_eq!(
            mirror.served_ref("refs/tally/ledger"),
            server.rev("refs/tally/ledger")
        );
    }
    let next = work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    mirror.hook();
    mirror.wait_served("main", &next);
    assert_eq!(
        mirror.served_ref("refs/tally/ledger"),
        server.rev("refs/tally/ledger")
    );
}

#[test]
fn history_from_before_tally_init_is_served_from_trust_from() {
    let env = TestEnv::new();
    // Unsigned history, then tally init records its tip as the branch's baseline.
    let (server, baseline) = env.server_with_history_before_init();
    let work = env.clone_as(&server, "work", &alice());
    let signed = work.commit("signed").file("s.yaml", "s: 1\n").create();
    work.push_main_ok();
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());

    // Without --trust-from: the unsigned history is refused, and the refusal says what to pass.
    let refused = Mirror::start(&env, &server.path, &pins, "refused", &[]);
    let status = refused.wait_for("the first cycle to fail", |s| {
        s["branches"][0]["consecutive_failures"].as_u64() >= Some(1)
    });
    let message = status["branches"][0]["last_error"]["message"].to_string();
    assert!(
        message.contains(&format!("--trust-from {baseline}")),
        "{message}"
    );
    assert_eq!(status["ready"], false);
    drop(refused);

    let mirror = Mirror::start(
        &env,
        &server.path,
        &pins,
        "mirror",
        &["--trust-from", &format!("main={baseline}")],
    );
    mirror.wait_served("main", &signed);
    let clone = clone_mirror(&env, &mirror, "clone", 2);
    assert_eq!(
        stdout_of(env.git(&clone).args(["rev-parse", "HEAD"])),
        signed
    );
}

#[test]
fn gzip_requests_are_served_and_oversized_or_bomb_bodies_cost_no_memory() {
    let env = TestEnv::new();
    let (_server, _work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let gzip = |data: &[u8]| -> Vec<u8> {
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out.stdout
    };
    let v2 = [("Git-Protocol", "version=2")];
    let upload = |body: &[u8], extra: &[(&str, &str)]| {
        let mut headers = vec![("Content-Type", "application/x-git-upload-pack-request")];
        headers.extend(v2);
        headers.extend(extra);
        mirror.request("POST", "/deploy.git/git-upload-pack", &headers, body)
    };

    // A protocol v2 ls-refs, compressed as git compresses large requests.
    let ls_refs = b"0014command=ls-refs\n00010000";
    let (code, refs) = upload(&gzip(ls_refs), &[("Content-Encoding", "gzip")]);
    assert_eq!(code, 200);
    assert!(
        refs.contains(&format!("{base} refs/heads/main")),
        "{refs:?}"
    );
    let (code, plain) = upload(ls_refs, &[]);
    assert_eq!((code, plain), (200, refs));

    // Declared too large: refused before anything is read.
    let (code, text) = http_raw(
        &mirror.addr,
        b"POST /deploy.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 99999999999\r\n\r\n",
    );
    assert_eq!(code, 413, "{text}");
    let (code, _) = upload(b"0000", &[("Content-Encoding", "br")]);
    assert_eq!(code, 415);

    // 64 MiB of zeros in 64 KiB of gzip, four at once: cut off at the limit, streamed through
    // fixed buffers, so the mirror's memory does not grow with them.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    let pid = mirror.child.as_ref().unwrap().id();
    let high_water = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix(" kB"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = high_water();
    let addr = mirror.addr.clone();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let (code, body) = http(
                    &addr,
                    "POST",
                    "/deploy.git/git-upload-pack",
                    &[
                        ("Content-Type", "application/x-git-upload-pack-request"),
                        ("Git-Protocol", "version=2"),
                        ("Content-Encoding", "gzip"),
                    ],
                    &bomb,
                );
                // The response may have started before the body was cut off; it never
                // carries a pack.
                assert!(code == 200 || code >= 400, "{code}");
                assert!(!body.contains("PACK"), "a pack for a bomb");
            });
        }
    });
    let grown = high_water().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "the mirror's peak memory grew by {grown} kB"
    );
    assert_eq!(mirror.request("GET", "/healthz", &[], b"").0, 200);
    let (code, again) = upload(ls_refs, &[]);
    assert_eq!(code, 200);
    assert!(again.contains("refs/heads/main"));
}
