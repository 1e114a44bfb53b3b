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
