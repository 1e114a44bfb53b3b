//! `tally ledger key` and `tally ledger checkpoint`.

use super::*;
use crate::common::*;

#[test]
fn ledger_key_json_gives_the_openssh_line_and_the_note_verifier_key() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let text = server.tally(&["ledger", "key"]);
    let json = server.tally(&["ledger", "key", "--json"]);
    assert!(json.status.success(), "{json:?}");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let line = String::from_utf8(text.stdout).unwrap();
    assert_eq!(v["openssh"].as_str(), Some(line.trim_end()));
    let origin = v["origin"].as_str().unwrap();
    assert!(line.trim_end().ends_with(origin), "{line}");
    // C2SP note verifier key: <name>+<8 hex digits key id>+<base64(0x01 || key)>.
    let vkey = v["note_verifier_key"].as_str().unwrap();
    // Key names never contain '+', base64 may: split from the left.
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "{vkey}");
    assert_eq!(parts[0], origin);
    assert_eq!(parts[1].len(), 8);
    assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()), "{vkey}");
}

#[test]
fn ledger_key_prints_the_public_key_and_the_private_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let out = server.tally(&["ledger", "key"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("ssh-ed25519 "), "{stdout}");
    let public = std::fs::read_to_string(server.tally_dir().join("ledger_key.pub")).unwrap();
    let key_of = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(key_of(&stdout), key_of(&public));
    let mode = std::fs::metadata(server.tally_dir().join("ledger_key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "ledger_key has mode {:o}",
        mode & 0o777
    );

    let out = env
        .tally()
        .args(["ledger", "key", "--repo"])
        .arg(env.root().join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn ledger_checkpoint_signs_the_head_again_and_advances_the_published_ref() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let size = server.log(&[]).len();
    let (_, before_json) = verify_json(&server);
    let before = server.rev("refs/tally/ledger").unwrap();

    // A checkpoint carries its signing time in whole seconds and Ed25519 is deterministic, so
    // one signed in the same second as the push's would be the very note already published.
    wait_for_the_next_second();
    let out = server.tally(&["ledger", "checkpoint", "--print"]);
    assert!(out.status.success(), "{out:?}");
    let note = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 6, "{note}");
    assert!(lines[0].starts_with("tally/server.git/"), "{note}");
    assert_eq!(lines[1], size.to_string());
    assert_eq!(lines[2].len(), 44, "base64 of 32 bytes: {note}");
    assert_eq!(lines[3], "");
    for sig in &lines[4..] {
        assert!(
            sig.starts_with(&format!("\u{2014} {} ", lines[0])),
            "{note}"
        );
    }

    let after = server.rev("refs/tally/ledger").unwrap();
    assert_ne!(after, before);
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", &format!("{after}^")])),
        before
    );
    let published = run_ok(
        server
            .git()
            .args(["cat-file", "blob", &format!("{after}:checkpoint")]),
    )
    .stdout;
    assert_eq!(String::from_utf8(published).unwrap(), note);
    let range = stdout_of(
        server
            .git()
            .args(["cat-file", "blob", &format!("{after}:range")]),
    );
    assert_eq!(range, format!("{size} {size}"));

    let (code, after_json) = verify_json(&server);
    assert_eq!(code, Some(0));
    assert_eq!(after_json["size"], before_json["size"]);
    assert_eq!(after_json["root"], before_json["root"]);
    assert_eq!(
        after_json["checkpoints"].as_u64(),
        before_json["checkpoints"].as_u64().map(|c| c + 1)
    );

    // Issue 11, item 5: the next heartbeat replaces this one instead of adding a commit, so
    // the ref's history grows with entries, not with heartbeats; the fresh note is published.
    let count = |rev: &str| stdout_of(server.git().args(["rev-list", "--count", rev]));
    let commits = count("refs/tally/ledger");
    wait_for_the_next_second();
    let out = server.tally(&["ledger", "checkpoint", "--print"]);
    assert!(out.status.success(), "{out:?}");
    let again = server.rev("refs/tally/ledger").unwrap();
    assert_ne!(again, after);
    assert_eq!(count("refs/tally/ledger"), commits);
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", &format!("{again}^")])),
        before
    );
    let published = run_ok(
        server
            .git()
            .args(["cat-file", "blob", &format!("{again}:checkpoint")]),
    )
    .stdout;
    assert_eq!(
        String::from_utf8(published).unwrap(),
        String::from_utf8(out.stdout).unwrap()
    );
    let (code, _) = verify_json(&server);
    assert_eq!(code, Some(0));

    // Without --print it prints nothing, so cron mails nothing.
    let quiet = server.tally(&["ledger", "checkpoint"]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
    // (It may have replaced the heartbeat above, if the second turned in between.)
    let again = server.rev("refs/tally/ledger").unwrap();
    assert_eq!(count("refs/tally/ledger"), commits);

    // A push after heartbeats publishes its entries on top, as usual.
    work.commit("next").file("next.yaml", "n: 1\n").create();
    work.push_main_ok();
    let tip = server.rev("refs/tally/ledger").unwrap();
    assert_eq!(
        stdout_of(server.git().args(["rev-parse", &format!("{tip}^")])),
        again
    );
    server.assert_ledger_intact();
}
