//! What the upstream (or whoever controls it) can do to the mirror: each is never served,
//! shows its reason in `/status` and `/metrics`, and leaves the last good commit served.

use super::serving::upstream;
use super::*;

/// A copy of the whole bare repository: objects, refs, hooks, the ledger and its key.
fn copy_server<'e>(env: &'e TestEnv, server: &Server<'_>, name: &str) -> Server<'e> {
    let path = env.root().join(format!("{name}.git"));
    copy_dir(&server.path, &path);
    env.server_at(path)
}

/// Puts `replacement`'s repository where the mirror's upstream is (the old one kept aside).
fn swap_upstream(env: &TestEnv, upstream: &Path, replacement: &Path) {
    let aside = env.root().join(format!(
        "aside-{}",
        replacement.file_name().unwrap().to_string_lossy()
    ));
    std::fs::rename(upstream, &aside).unwrap();
    std::fs::rename(replacement, upstream).unwrap();
}

/// Runs one cycle and checks that `branch` stayed served at `good`, that `bad` is nowhere in
/// the served repository, and that `/status` and `/metrics` name `reason`.
fn assert_kept(mirror: &Mirror<'_>, good: &str, bad: Option<&str>, reason: &str) -> Value {
    mirror.cycle();
    let main = mirror.branch("main");
    assert_eq!(main["served"]["commit"], good, "{main:#}\n{}", mirror.log());
    let reasons = main["last_error"]["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r == reason),
        "reason {reason} expected in {main:#}"
    );
    assert!(main["consecutive_failures"].as_u64().unwrap() >= 1);
    assert_eq!(main["last_error"]["class"], "refused", "{main:#}");
    assert!(
        !main["last_error"]["message"].as_array().unwrap().is_empty(),
        "{main:#}"
    );
    assert_eq!(mirror.served_ref("refs/heads/main").unwrap(), good);
    if let Some(bad) = bad {
        assert!(
            !mirror.served_objects().iter().any(|o| o == bad),
            "the refused commit {bad} is in the served repository"
        );
        let refs = mirror.ls_remote(2);
        assert!(!refs.contains(bad), "{refs}");
    }
    let metrics = mirror.metrics();
    assert!(
        metrics.contains(&format!(
            "tally_mirror_verify_failures_total{{branch=\"main\",reason=\"{reason}\"}} "
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "tally_mirror_served_info{{branch=\"main\",commit=\"{good}\"}} 1\n"
        )),
        "{metrics}"
    );
    // Still ready: the last verified commit is served.
    assert_eq!(mirror.request("GET", "/readyz", &[], b"").0, 200);
    main
}

#[test]
fn a_branch_moved_upstream_outside_tally_is_never_served() {
    let env = TestEnv::new();
    let (server, work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());

    // A signed commit the server has (pushed to another branch), then main's ref file written
    // by hand on the server: no hook ran, no ledger entry.
    let other = work
        .commit("unreviewed")
        .file("unreviewed.yaml", "u: 1\n")
        .create();
    work.push(&["origin", &format!("{other}:refs/heads/side")])
        .assert_accepted();
    std::fs::create_dir_all(server.path.join("refs/heads")).unwrap();
    std::fs::write(server.path.join("refs/heads/main"), format!("{other}\n")).unwrap();
    assert_eq!(server.branch("main").unwrap(), other);

    let main = assert_kept(&mirror, &base, Some(&other), "moved_outside_ledger");
    let message = main["last_error"]["message"][0].as_str().unwrap();
    assert!(message.contains(&format!("is at {other}")), "{message}");
}

#[test]
fn an_upstream_restored_from_an_older_copy_is_a_rollback_and_never_served() {
    let env = TestEnv::new();
    let (server, work, _base) = upstream(&env);
    let backup = copy_server(&env, &server, "backup");
    let two = work.commit("two").file("two.yaml", "t: 2\n").create();
    work.push_main_ok();
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &two);
    let ledger = mirror.served_ref("refs/tally/ledger").unwrap();

    // The server is restored from the backup made before `two`.
    swap_upstream(&env, &server.path, &backup.path);
    assert_kept(&mirror, &two, None, "rollback");
    // The served ledger did not move back either.
    assert_eq!(mirror.served_ref("refs/tally/ledger").unwrap(), ledger);
}

#[test]
fn a_forked_ledger_is_never_served() {
    let env = TestEnv::new();
    let (server, work, base) = upstream(&env);
    let other = copy_server(&env, &server, "other");
    let ours = work.commit("ours").file("ours.yaml", "o: 1\n").create();
    work.push_main_ok();
    // The copy accepts a different push: a ledger of the same size with another root.
    work.reset_hard(&base);
    let theirs = work.commit("theirs").file("theirs.yaml", "t: 1\n").create();
    work.push(&[other.path.to_str().unwrap(), "HEAD:refs/heads/main"])
        .assert_accepted();

    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &ours);

    swap_upstream(&env, &server.path, &other.path);
    let main = assert_kept(&mirror, &ours, Some(&theirs), "fork");
    // The fork's evidence is kept beside the mirror's pinned state.
    let evidence: Vec<_> = std::fs::read_dir(mirror.dir.join("tally/agent"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".fork-"))
        .collect();
    assert_eq!(evidence.len(), 2, "{evidence:?} {main:#}");
}

#[test]
fn a_checkpoint_older_than_max_age_is_never_served_until_the_upstream_signs_a_fresh_one() {
    let env = TestEnv::new();
    let (server, work, _base) = upstream(&env);
    // A fresh checkpoint just before the mirror's first cycle.
    assert!(server.tally(&["ledger", "checkpoint"]).status.success());
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &["--max-age", "3s"]);
    let served = server.branch("main").unwrap();
    mirror.wait_served("main", &served);

    // The upstream stops signing (freeze): its checkpoint ages past --max-age. The mirror's
    // clock is the real one, so the test lets real time pass.
    std::thread::sleep(Duration::from_millis(3500));
    let main = assert_kept(&mirror, &served, None, "stale");
    assert!(
        main["last_error"]["message"][0]
            .as_str()
            .unwrap()
            .contains("--max-age"),
        "{main:#}"
    );

    // The upstream's heartbeat signs the unchanged ledger again; a push lands too.
    let next = work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    mirror.cycle();
    mirror.wait_served("main", &next);
    assert_eq!(mirror.branch("main")["consecutive_failures"], 0);
}

#[test]
fn a_commit_signed_by_a_key_the_mirror_does_not_trust_is_never_served() {
    let env = TestEnv::new();
    let (server, work, base) = upstream(&env);
    // The upstream trusts Alice and Bob; the mirror only Alice.
    let pins = Pins::new(
        &env,
        &server,
        "mirror",
        &AllowedSigners::new().signer("alice@example.com", &keys().alice),
    );
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &base);

    let bobs = work
        .commit("bob")
        .file("bob.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.push_main_ok();
    let main = assert_kept(&mirror, &base, Some(&bobs), "signature");
    let message = main["last_error"]["message"][0].as_str().unwrap();
    assert!(
        message.contains(&pins.signers.display().to_string()),
        "{message}"
    );

    // Alice's later commits sit on top of Bob's: still never served.
    let alices = work.commit("alice").file("alice.yaml", "a: 1\n").create();
    work.push_main_ok();
    assert_kept(&mirror, &base, Some(&alices), "signature");
}

#[test]
fn a_forbidden_file_is_never_served() {
    let env = TestEnv::new();
    let (server, work, base) = upstream(&env);
    // The upstream's policy lets shell scripts through; the mirror's (the default) does not.
    server.edit_policy("allow = [", "allow = [\"*.sh\", ");
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &base);

    let script = work
        .commit("script")
        .file("deploy.sh", "echo hi\n")
        .create();
    work.push_main_ok();
    let main = assert_kept(&mirror, &base, Some(&script), "file");
    let message = main["last_error"]["message"].to_string();
    assert!(message.contains("deploy.sh"), "{message}");
}

#[test]
fn a_mirror_that_never_verified_anything_is_not_ready_and_serves_nothing() {
    let env = TestEnv::new();
    let (server, _work, _base) = upstream(&env);
    // The mirror trusts nobody who signed the history.
    let pins = Pins::new(
        &env,
        &server,
        "mirror",
        &AllowedSigners::new().signer("mallory@example.com", &keys().mallory),
    );
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    let status = mirror.wait_for("the first cycle to fail", |s| {
        s["branches"][0]["consecutive_failures"].as_u64() >= Some(1)
    });
    assert_eq!(status["ready"], false);
    assert_eq!(status["branches"][0]["served"], Value::Null);
    let (code, body) = mirror.request("GET", "/readyz", &[], b"");
    assert_eq!(code, 503);
    assert!(body.contains("main"), "{body}");
    assert_eq!(mirror.ls_remote(2), "");
    assert_eq!(mirror.ls_remote(0), "");
    assert!(mirror.served_objects().is_empty());
}

#[test]
fn a_ledger_ref_with_commits_that_are_not_publications_is_never_copied() {
    let env = TestEnv::new();
    let (server, _work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let served_ledger = mirror.served_ref("refs/tally/ledger").unwrap();
    let git = |args: &[&str]| stdout_of(server.git().args(args));
    let published = git(&["rev-parse", "refs/tally/ledger"]);
    let published_tree = git(&["rev-parse", "refs/tally/ledger^{tree}"]);

    // An unsigned commit carrying a manifest, slipped in below a copy of the tip publication:
    // the agent stops reading at the tip (it starts at the size already pinned).
    let manifest = env.write("evil.yaml", "kind: Pod\nmetadata: {name: evil}\n");
    let blob = git(&["hash-object", "-w", manifest.to_str().unwrap()]);
    let evil_tree = stdout_of(
        server.git().args(["mktree"]).stdin(
            std::fs::File::open(
                env.write("evil-tree", &format!("100644 blob {blob}\tevil.yaml\n")),
            )
            .unwrap(),
        ),
    );
    let evil = git(&[
        "commit-tree",
        &evil_tree,
        "-p",
        &published,
        "-m",
        "unsigned",
    ]);

    // (a) an exact copy of the tip publication on top of it; (b) the tip publication's tree
    // with the manifest's tree added beside its three blobs.
    let listing = git(&["ls-tree", &published_tree]);
    let with_payload = stdout_of(
        server.git().args(["mktree"]).stdin(
            std::fs::File::open(env.write(
                "payload-tree",
                &format!("{listing}\n040000 tree {evil_tree}\tpayload\n"),
            ))
            .unwrap(),
        ),
    );
    for (name, tree, parent, why) in [
        (
            "copy",
            published_tree.as_str(),
            evil.as_str(),
            "would bring entries that were not checked",
        ),
        (
            "payload",
            with_payload.as_str(),
            published.as_str(),
            "holds more than",
        ),
    ] {
        let forged = git(&[
            "commit-tree",
            tree,
            "-p",
            parent,
            "-m",
            "tally ledger: entries",
        ]);
        std::fs::write(server.path.join("refs/tally/ledger"), format!("{forged}\n")).unwrap();
        let main = mirror_kept_ledger(&mirror, &base, &served_ledger, &evil, &evil_tree);
        let message = main["last_error"]["message"].to_string();
        assert!(
            message.contains("do not copy this ledger") && message.contains(why),
            "{name}: {message}"
        );
    }
}

/// One cycle; main stays served, the served ledger did not move, and neither the unsigned
/// commit nor its tree is in the served repository.
fn mirror_kept_ledger(
    mirror: &Mirror<'_>,
    base: &str,
    served_ledger: &str,
    evil: &str,
    evil_tree: &str,
) -> Value {
    mirror.cycle();
    let main = mirror.branch("main");
    assert_eq!(main["served"]["commit"], base);
    assert!(
        main["last_error"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "ledger"),
        "{main:#}"
    );
    assert_eq!(
        mirror.served_ref("refs/tally/ledger").unwrap(),
        served_ledger
    );
    let objects = mirror.served_objects();
    assert!(!objects.iter().any(|o| o == evil || o == evil_tree));
    main
}

/// A publication whose range starts below the served size (an overlap) would carry bytes for
/// entries below the pin that no check reads: never copied (second review).
#[test]
fn a_publication_overlapping_the_served_ledger_is_never_copied() {
    let env = TestEnv::new();
    let (server, work, _base, pins, mirror) = mirrored(&env, &alice_and_bob());
    let served_ledger = mirror.served_ref("refs/tally/ledger").unwrap();
    let git = |args: &[&str]| stdout_of(server.git().args(args));
    let next = work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    let p1 = git(&["rev-parse", "refs/tally/ledger"]);
    let p1_parent = git(&["rev-parse", "refs/tally/ledger^"]);
    let range = git(&["cat-file", "blob", "refs/tally/ledger:range"]);
    assert_eq!(p1_parent, served_ledger);
    let (a, b) = range.trim().split_once(' ').unwrap();
    let (first, size): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    assert!(first >= 1);
    let entries = server
        .git()
        .args(["cat-file", "blob", "refs/tally/ledger:entries"])
        .output()
        .unwrap()
        .stdout;
    let evil = b"apiVersion: v1\nkind: Pod\nmetadata: {name: evil}\n";
    let mut blob = (evil.len() as u32).to_be_bytes().to_vec();
    blob.extend_from_slice(evil);
    blob.extend_from_slice(&entries);
    let entries_path = env.root().join("evil-entries");
    std::fs::write(&entries_path, &blob).unwrap();
    let entries_id = git(&["hash-object", "-w", entries_path.to_str().unwrap()]);
    let range_path = env.write("evil-range", &format!("{} {size}\n", first - 1));
    let range_id = git(&["hash-object", "-w", range_path.to_str().unwrap()]);
    let chk = git(&["rev-parse", "refs/tally/ledger:checkpoint"]);
    let tree = stdout_of(
        server.git().args(["mktree"]).stdin(
            std::fs::File::open(env.write(
                "evil-tree2",
                &format!("100644 blob {chk}\tcheckpoint\n100644 blob {entries_id}\tentries\n100644 blob {range_id}\trange\n"),
            ))
            .unwrap(),
        ),
    );
    let forged = git(&[
        "commit-tree",
        &tree,
        "-p",
        &served_ledger,
        "-m",
        "tally ledger: entries",
    ]);
    std::fs::write(server.path.join("refs/tally/ledger"), format!("{forged}\n")).unwrap();
    mirror.cycle();
    let main = mirror.branch("main");
    assert_ne!(main["served"]["commit"], next, "{main:#}");
    assert!(
        main["last_error"]["message"]
            .to_string()
            .contains("would bring entries that were not checked"),
        "{main:#}"
    );
    assert_eq!(
        mirror.served_ref("refs/tally/ledger").unwrap(),
        served_ledger
    );
    assert!(!mirror.served_objects().contains(&entries_id));
    // The genuine publication is copied, with the commit, once the server's ref is back.
    std::fs::write(server.path.join("refs/tally/ledger"), format!("{p1}\n")).unwrap();
    mirror.cycle();
    mirror.wait_served("main", &next);
    assert_eq!(mirror.served_ref("refs/tally/ledger").unwrap(), p1);
    drop(pins);
}

/// A refused ledger must not move the pin ahead of what is served, or the next ledger's
/// publications between them would be copied unread (second review).
#[test]
fn a_refused_ledger_leaves_no_unread_gap_for_the_next_one() {
    let env = TestEnv::new();
    let (server, work, _base, pins, mirror) = mirrored(&env, &alice_and_bob());
    let served_ledger = mirror.served_ref("refs/tally/ledger").unwrap();
    let git = |args: &[&str]| stdout_of(server.git().args(args));
    let mktree = |name: &str, listing: &str| {
        stdout_of(
            server
                .git()
                .args(["mktree"])
                .stdin(std::fs::File::open(env.write(name, listing)).unwrap()),
        )
    };
    let c1 = work.commit("c1").file("c1.yaml", "c: 1\n").create();
    work.push_main_ok();
    let p1 = git(&["rev-parse", "refs/tally/ledger"]);
    let listing = git(&["ls-tree", "refs/tally/ledger^{tree}"]);
    let extra = git(&["hash-object", "-w", env.write("x", "x\n").to_str().unwrap()]);
    let p1x_tree = mktree("p1x", &format!("{listing}\n100644 blob {extra}\tx\n"));
    let p1x = git(&["commit-tree", &p1x_tree, "-p", &served_ledger, "-m", "x"]);
    std::fs::write(server.path.join("refs/tally/ledger"), format!("{p1x}\n")).unwrap();
    mirror.cycle();
    assert_ne!(mirror.branch("main")["served"]["commit"], c1);
    // the server's ledger ref back as it was; the server publishes the next push on it
    std::fs::write(server.path.join("refs/tally/ledger"), format!("{p1}\n")).unwrap();
    let c2 = work.commit("c2").file("c2.yaml", "c: 2\n").create();
    work.push_main_ok();
    let p2_tree = git(&["rev-parse", "refs/tally/ledger^{tree}"]);
    let evil = git(&[
        "hash-object",
        "-w",
        env.write(
            "evil2.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: evil2}\n",
        )
        .to_str()
        .unwrap(),
    ]);
    let range1 = git(&["rev-parse", &format!("{p1}:range")]);
    let chk1 = git(&["rev-parse", &format!("{p1}:checkpoint")]);
    let g_tree = mktree(
        "g",
        &format!(
            "100644 blob {chk1}\tcheckpoint\n100644 blob {evil}\tentries\n100644 blob {range1}\trange\n"
        ),
    );
    let g = git(&[
        "commit-tree",
        &g_tree,
        "-p",
        &served_ledger,
        "-m",
        "tally ledger: entries",
    ]);
    let p2f = git(&[
        "commit-tree",
        &p2_tree,
        "-p",
        &g,
        "-m",
        "tally ledger: entries",
    ]);
    std::fs::write(server.path.join("refs/tally/ledger"), format!("{p2f}\n")).unwrap();
    mirror.cycle();
    let main = mirror.branch("main");
    assert_ne!(main["served"]["commit"], c2, "{main:#}");
    assert!(
        main["last_error"]["reasons"].to_string().contains("ledger"),
        "{main:#}"
    );
    assert_eq!(
        mirror.served_ref("refs/tally/ledger").unwrap(),
        served_ledger
    );
    assert!(!mirror.served_objects().contains(&evil));
    drop(pins);
}

/// A heartbeat the mirror never copied, then a push: the push's publication has the unseen
/// heartbeat as its parent, which replaced the served one; it is served (second review).
#[test]
fn a_push_on_a_heartbeat_the_mirror_never_saw_is_served() {
    let env = TestEnv::new();
    let (server, work, _base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    // A heartbeat signed in the second of the last publication is the same note and publishes
    // nothing: let the second turn.
    wait_for_the_next_second();
    assert!(server.tally(&["ledger", "checkpoint"]).status.success());
    mirror.cycle();
    let h1 = mirror.served_ref("refs/tally/ledger").unwrap();
    assert_eq!(
        Some(h1.clone()),
        server.rev("refs/tally/ledger"),
        "h1 served"
    );
    wait_for_the_next_second();
    assert!(server.tally(&["ledger", "checkpoint"]).status.success());
    let h2 = server.rev("refs/tally/ledger").unwrap();
    assert_ne!(h1, h2);
    let c1 = work.commit("c1").file("c1.yaml", "c: 1\n").create();
    work.push_main_ok();
    for _ in 0..3 {
        mirror.cycle();
    }
    let main = mirror.branch("main");
    assert_eq!(main["served"]["commit"], c1, "{main:#}");
    assert_eq!(
        mirror.served_ref("refs/tally/ledger"),
        server.rev("refs/tally/ledger")
    );

    // The mirror serves a publication with entries (c1's); the server publishes a heartbeat
    // on it, then the next push on the heartbeat, while the mirror is not looking.
    wait_for_the_next_second();
    assert!(server.tally(&["ledger", "checkpoint"]).status.success());
    let heartbeat = server.rev("refs/tally/ledger").unwrap();
    let c2 = work.commit("c2").file("c2.yaml", "c: 2\n").create();
    work.push_main_ok();
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", "refs/tally/ledger^"])),
        heartbeat,
        "the push's publication sits on the heartbeat"
    );
    mirror.cycle();
    let main = mirror.branch("main");
    assert_eq!(main["served"]["commit"], c2, "{main:#}");
    assert_eq!(
        mirror.served_ref("refs/tally/ledger"),
        server.rev("refs/tally/ledger")
    );
}

/// served.git recreated (deleted by the operator or the disk) while the pins stay: the whole
/// ledger below the pins would be copied unread, so nothing is served until the operator moves
/// the pins aside (second review).
#[test]
fn a_recreated_served_repository_copies_no_ledger_its_pins_did_not_cover() {
    let env = TestEnv::new();
    let (server, _work, base, _pins, mirror) = mirrored(&env, &alice_and_bob());
    let git = |args: &[&str]| stdout_of(server.git().args(args));
    let tip = git(&["rev-parse", "refs/tally/ledger"]);

    let evil = git(&[
        "hash-object",
        "-w",
        env.write("evil3.yaml", "kind: Pod\nmetadata: {name: evil3}\n")
            .to_str()
            .unwrap(),
    ]);
    // Rebuild the chain: every publication's tree with its entries replaced by the manifest,
    // except the tip keeps its checkpoint and range (its entries are all below the pin).
    let chain: Vec<String> = git(&["rev-list", "--reverse", "refs/tally/ledger"])
        .lines()
        .map(str::to_owned)
        .collect();
    let mut parent: Option<String> = None;
    for (i, c) in chain.iter().enumerate() {
        let range = git(&["rev-parse", &format!("{c}:range")]);
        let chk = git(&["rev-parse", &format!("{c}:checkpoint")]);
        let ent = if i + 1 == chain.len() {
            git(&["rev-parse", &format!("{c}:entries")])
        } else {
            evil.clone()
        };
        let listing = format!(
            "100644 blob {chk}\tcheckpoint\n100644 blob {ent}\tentries\n100644 blob {range}\trange\n"
        );
        let tree = stdout_of(
            server
                .git()
                .args(["mktree"])
                .stdin(std::fs::File::open(env.write(&format!("t{i}"), &listing)).unwrap()),
        );
        let mut args = vec![
            "commit-tree".to_owned(),
            tree,
            "-m".to_owned(),
            "tally ledger: entries".to_owned(),
        ];
        if let Some(p) = &parent {
            args.push("-p".to_owned());
            args.push(p.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        parent = Some(git(&args));
    }
    let forged = parent.unwrap();
    assert_ne!(tip, forged);
    std::fs::write(server.path.join("refs/tally/ledger"), format!("{forged}\n")).unwrap();
    let served = mirror.dir.join("served.git");
    assert!(served.join("HEAD").exists(), "{}", served.display());
    std::fs::remove_dir_all(&served).unwrap();
    mirror.cycle();
    mirror.cycle();
    let main = mirror.branch("main");
    assert_eq!(main["served"], Value::Null, "{main:#}");
    assert_eq!(main["last_error"]["class"], "config", "{main:#}");
    assert!(
        main["last_error"]["message"].to_string().contains("move "),
        "{main:#}"
    );
    assert!(!mirror.served_objects().contains(&evil));
    assert_eq!(mirror.request("GET", "/readyz", &[], b"").0, 503);
    drop(base);
}
