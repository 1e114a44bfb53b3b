//! `tally log` and `tally ledger verify` over a history of accepted and refused pushes.

use super::*;
use crate::common::*;

fn seqs(entries: &[Value]) -> Vec<u64> {
    entries.iter().map(seq).collect()
}

/// `(commit, principal, fingerprint)` for a commit signed with `key` under `principal`.
fn signed_by(commit: &str, principal: &str, key: &Key) -> (String, String, String) {
    (
        commit.to_owned(),
        principal.to_owned(),
        key.fingerprint.clone(),
    )
}

/// The tree of a commit, read in the bare repository.
fn tree_of(server: &Server<'_>, commit: &str) -> String {
    stdout_of(
        server
            .git()
            .args(["rev-parse", "--verify"])
            .arg(format!("{commit}^{{tree}}")),
    )
}

// =============================================================================================
// tally log

#[test]
fn log_lists_accepted_pushes_in_order_with_commits_and_signers_and_refusals_with_reasons() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let keys = keys();

    let all = server.log(&[]);
    // Newest first, every entry, seqs contiguous down to the init entry.
    let n = all.len() as u64;
    assert_eq!(seqs(&all), (0..n).rev().collect::<Vec<_>>());
    let oldest_first: Vec<&Value> = all.iter().rev().collect();
    let kinds: Vec<(&str, &str)> = oldest_first
        .iter()
        .map(|e| (kind(e), field(e, "ref")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("policy-change", ""),
            ("accepted", "refs/heads/main"),
            ("accepted", "refs/heads/main"),
            ("accepted", "refs/heads/main"),
            ("rejected", "refs/heads/main"),
            ("accepted", "refs/heads/prod"),
            ("accepted", "refs/heads/prod"),
        ]
    );

    // Each accepted push: the move, the tree, and every new commit with its signer.
    let [_, e1, e2, e3, rejected, prod_created, prod_moved] = oldest_first[..] else {
        unreachable!()
    };
    assert_eq!(
        (opt(e1, "old"), opt(e1, "new")),
        (None, Some(h.a1.as_str()))
    );
    assert_eq!(opt(e1, "new_tree"), Some(tree_of(server, &h.a1).as_str()));
    assert_eq!(
        commits(e1),
        [signed_by(&h.a1, "alice@example.com", &keys.alice)]
    );

    assert_eq!(
        (opt(e2, "old"), opt(e2, "new")),
        (Some(h.a1.as_str()), Some(h.b1.as_str()))
    );
    assert_eq!(opt(e2, "new_tree"), Some(tree_of(server, &h.b1).as_str()));
    assert_eq!(
        commits(e2),
        [signed_by(&h.b1, "bob@example.com", &keys.bob)]
    );
    assert_eq!(field(e2, "pusher"), "http:bob");

    assert_eq!(
        (opt(e3, "old"), opt(e3, "new")),
        (Some(h.b1.as_str()), Some(h.a3.as_str()))
    );
    assert_eq!(
        commits(e3),
        [
            signed_by(&h.a2, "alice@example.com", &keys.alice),
            signed_by(&h.a3, "alice@example.com", &keys.alice),
        ],
        "every new commit of the push, oldest first"
    );
    for (_, _, fingerprint) in commits(e3) {
        assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    }

    // The refusal: the ref, the refused commit, and the reasons the pusher was shown.
    assert_eq!(
        (opt(rejected, "old"), opt(rejected, "new")),
        (Some(h.a3.as_str()), Some(h.refused.as_str()))
    );
    assert_eq!(reasons(rejected), h.reasons);
    assert!(
        h.reasons.iter().any(|r| r.contains(short(&h.refused))),
        "{:?}",
        h.reasons
    );
    assert!(commits(rejected).is_empty());
    for e in [e1, e2, e3, prod_created, prod_moved] {
        assert!(reasons(e).is_empty(), "{e}");
    }

    assert_eq!(
        (opt(prod_created, "old"), opt(prod_created, "new")),
        (None, Some(h.a3.as_str()))
    );
    assert_eq!(
        (opt(prod_moved, "old"), opt(prod_moved, "new")),
        (Some(h.a3.as_str()), Some(h.p1.as_str()))
    );
    assert_eq!(
        commits(prod_moved),
        [signed_by(&h.p1, "alice@example.com", &keys.alice)]
    );

    // The newest accepted entry of each branch is its tip.
    for branch in ["main", "prod"] {
        let tip = server.branch(branch).unwrap();
        assert_eq!(
            opt(&latest_landed(server, branch), "new"),
            Some(tip.as_str()),
            "{branch}"
        );
    }
    assert_eq!(server.branch("main").as_deref(), Some(h.a3.as_str()));

    // Every entry carries the same repository id and policy digest, and chains to the previous.
    for pair in all.windows(2) {
        assert_eq!(field(&pair[0], "prev_hash"), field(&pair[1], "leaf_hash"));
        assert_eq!(field(&pair[0], "repository"), field(&pair[1], "repository"));
        assert_eq!(
            field(&pair[0], "policy_digest"),
            field(&pair[1], "policy_digest")
        );
    }
    assert_eq!(field(oldest_first[0], "prev_hash"), "0".repeat(64));
}

#[test]
fn log_filters_by_branch_kind_and_limit() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let all = server.log(&[]);
    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        all.iter().filter(|e| pred(e)).map(seq).collect()
    };

    let prod = server.log(&["--branch", "prod"]);
    assert_eq!(
        seqs(&prod),
        expect(&|e| field(e, "ref") == "refs/heads/prod")
    );
    assert_eq!(prod.len(), 2);
    assert_eq!(
        seqs(&server.log(&["--branch", "refs/heads/prod"])),
        seqs(&prod)
    );
    let main = server.log(&["--branch", "main"]);
    assert_eq!(
        seqs(&main),
        expect(&|e| field(e, "ref") == "refs/heads/main")
    );
    assert_eq!(main.len(), 4, "three accepted pushes and one refusal");
    assert!(server.log(&["--branch", "nosuch"]).is_empty());

    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(seqs(&rejected), expect(&|e| kind(e) == "rejected"));
    assert_eq!(opt(&rejected[0], "new"), Some(h.refused.as_str()));
    let accepted = server.log(&["--kind", "accepted"]);
    assert_eq!(seqs(&accepted), expect(&|e| kind(e) == "accepted"));
    assert_eq!(accepted.len(), 5);
    assert_eq!(seqs(&server.log(&["--kind", "policy-change"])), [0]);
    assert!(server.log(&["--kind", "aborted"]).is_empty());

    let n = all.len() as u64;
    assert_eq!(seqs(&server.log(&["--limit", "2"])), [n - 1, n - 2]);
    assert_eq!(seqs(&server.log(&["--limit", "1000"])).len() as u64, n);
    let newest_main = server.log(&["--branch", "main", "--kind", "accepted", "--limit", "1"]);
    assert_eq!(newest_main.len(), 1);
    assert_eq!(opt(&newest_main[0], "new"), Some(h.a3.as_str()));

    let bad = server.tally(&["log", "--kind", "merged"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown kind is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("accepted, rejected, aborted, policy-change"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// The `SHA256:...` fingerprint of a public key file, as `ssh-keygen -l` prints it.
pub(super) fn ledger_key_fingerprint(path: &Path) -> String {
    let listing = stdout_of(Command::new("ssh-keygen").arg("-lf").arg(path));
    listing.split_whitespace().nth(1).unwrap().to_owned()
}

/// Replaces what changes from run to run in `tally log`'s text (times, commit ids, key
/// fingerprints, policy digests, the login name) with stable names, for snapshots.
pub(super) fn normalise(text: &str, h: &History<'_>) -> String {
    let keys = keys();
    let mut out = text.to_owned();
    for (id, name) in [
        (&h.a1, "<a1>"),
        (&h.b1, "<b1>"),
        (&h.a2, "<a2>"),
        (&h.a3, "<a3>"),
        (&h.refused, "<refused>"),
        (&h.p1, "<p1>"),
    ] {
        out = out.replace(short(id), name);
    }
    for (fingerprint, name) in [
        (&keys.alice.fingerprint, "<alice's key>"),
        (&keys.bob.fingerprint, "<bob's key>"),
    ] {
        out = out.replace(fingerprint.as_str(), name);
    }
    let words: Vec<String> = out
        .split_inclusive([' ', '\n'])
        .map(|word| {
            let bare = word.trim_end();
            let end = &word[bare.len()..];
            let is_time = bare.len() == 9
                && bare.ends_with('Z')
                && bare[..8].bytes().enumerate().all(|(i, b)| {
                    if i == 2 || i == 5 {
                        b == b':'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            let is_date = bare.len() == 10
                && bare.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            let is_digest = bare.len() == 12 && bare.bytes().all(|b| b.is_ascii_hexdigit());
            if is_date {
                format!("<date>{end}")
            } else if is_time {
                format!("<time>{end}")
            } else if is_digest {
                format!("<digest>{end}")
            } else if bare.starts_with("unix:") {
                format!("unix:<user>{end}")
            } else {
                word.to_owned()
            }
        })
        .collect();
    words.concat()
}

#[test]
fn log_text_is_one_line_per_entry_like_the_json() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let check = |args: &[&str]| {
        let json = server.log(args);
        let mut all = vec!["log"];
        all.extend_from_slice(args);
        let out = server.tally(&all);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), json.len(), "{args:?}:\n{text}");
        for (line, e) in lines.iter().zip(&json) {
            assert!(
                line.starts_with(&format!("seq {} ", seq(e))),
                "{line:?} for {e}"
            );
            assert!(line.contains(&format!("  {}", kind(e))), "{line:?} for {e}");
            if let Some(reason) = reasons(e).first() {
                assert!(line.contains(reason.as_str()), "{line:?} for {e}");
            }
        }
        text
    };
    let text = check(&[]);
    // Bob's push of one commit, Alice's of two.
    assert!(
        text.contains(&format!(
            "main  {}..{}  1 commit, signed by bob@example.com ({})",
            short(&h.a1),
            short(&h.b1),
            keys().bob.fingerprint
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "main  {}..{}  2 commits, all signed by alice@example.com ({})",
            short(&h.b1),
            short(&h.a3),
            keys().alice.fingerprint
        )),
        "{text}"
    );
    check(&["--branch", "prod"]);
    check(&["--kind", "rejected"]);
    check(&["--limit", "3"]);
}

#[test]
fn log_text_snapshot() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let out = h.server.tally(&["log"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    insta::assert_snapshot!(normalise(&String::from_utf8(out.stdout).unwrap(), &h));
}

#[test]
fn log_commits_lists_every_commit_and_reason_under_its_entry() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let long = h.server.tally(&["log", "--commits"]);
    assert_eq!(long.status.code(), Some(0), "{long:?}");
    let text = String::from_utf8(long.stdout).unwrap();
    for id in [&h.a2, &h.a3] {
        let line = format!(
            "    commit {}  alice@example.com  {}",
            short(id),
            keys().alice.fingerprint
        );
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    for reason in &h.reasons {
        assert!(text.contains(&format!("    reason: {reason}\n")), "{text}");
    }
    let short_form = h.server.tally(&["log", "-v"]);
    assert_eq!(String::from_utf8(short_form.stdout).unwrap(), text);
    insta::assert_snapshot!(normalise(&text, &h));
}

#[test]
fn a_push_signed_by_several_signers_counts_each() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    work.commit("one").file("one.yaml", "one: 1\n").create();
    work.commit("two")
        .by(&bob())
        .file("two.yaml", "two: 2\n")
        .create();
    work.commit("three")
        .file("three.yaml", "three: 3\n")
        .create();
    work.push_main_ok();
    let out = server.tally(&["log", "--limit", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let k = keys();
    assert!(
        text.contains(&format!(
            "  3 commits: 2 by alice@example.com ({}), 1 by bob@example.com ({})  ",
            k.alice.fingerprint, k.bob.fingerprint
        )),
        "{text}"
    );
}

#[test]
fn a_filter_that_matches_nothing_says_so_and_succeeds() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let out = h
        .server
        .tally(&["log", "--branch", "nosuch", "--kind", "aborted"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "no entries match --branch nosuch --kind aborted\n"
    );
    // The JSON stays an empty array.
    let out = h.server.tally(&["log", "--json", "--branch", "nosuch"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[\n]\n");
}

// =============================================================================================
// tally ledger verify

#[test]
fn ledger_verify_passes_after_a_mix_of_pushes() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let n = server.log(&[]).len() as u64;

    let out = server.tally(&["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("ledger intact: {n} entries, ")),
        "{stdout}"
    );
    let own = server.tally_dir().join("ledger_key.pub");
    assert!(
        stdout.contains(&format!("\n  key  {}\n", ledger_key_fingerprint(&own))),
        "{stdout}"
    );

    let (code, json) = verify_json(server);
    assert_eq!(code, Some(0));
    assert_eq!(json["ok"], Value::Bool(true));
    assert_eq!(json["size"].as_u64(), Some(n));
    assert_eq!(json["problems"], Value::Array(vec![]));
    let root = field(&json, "root");
    assert!(
        root.len() == 64 && root.bytes().all(|b| b.is_ascii_hexdigit()),
        "{root}"
    );
    assert!(stdout.contains(&format!("root {root}")), "{stdout}");
    // One checkpoint at creation, one per append (init's, five accepted, one refused).
    assert_eq!(json["checkpoints"].as_u64(), Some(n + 1));

    // Pinned to the ledger's own public key: intact; pinned to another key: not.
    let out = server.tally(&["ledger", "verify", "--ledger-key", own.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The wrong key is named by its fingerprint, with the ledger's own (issue 13).
    let other = keys().mallory.public.to_str().unwrap().to_owned();
    let out = server.tally(&["ledger", "verify", "--ledger-key", &other]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert!(
        stderr.contains(&format!(
            "is the key {}, but this ledger was created with the key {}",
            keys().mallory.fingerprint,
            ledger_key_fingerprint(&own)
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "one problem, not one per checkpoint: {stderr}"
    );

    // The public key beside the ledger key replaced: both commands name both keys.
    let original = ledger_key_fingerprint(&own);
    std::fs::copy(&keys().mallory.public, &own).unwrap();
    let out = server.tally(&["ledger", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert!(
        stderr.contains(&format!(
            "ledger_key.pub is the key {}, but this ledger was created with the key {original}",
            keys().mallory.fingerprint
        )),
        "{stderr}"
    );
    let out = server.tally(&["ledger", "key"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "ledger_key.pub is the key {}, not the key {original} the ledger was created with",
            keys().mallory.fingerprint
        )),
        "{stderr}"
    );

    // No ledger there: a configuration error, not a verdict.
    let plain = env.bare_repo("plain");
    let out = env
        .tally()
        .args(["ledger", "verify", "--repo"])
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// On a terminal (here: with `COLUMNS` set, as a terminal's shell sets it) entry lines are cut
/// to the width with "…", so one entry stays one screen line; `--full`, `-v` and `--json`
/// print everything, and without a terminal nothing is cut, so scripts get whole lines.
#[test]
fn log_lines_are_cut_to_the_terminal_width_unless_asked_for_everything() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let run = |columns: Option<&str>, args: &[&str]| {
        let mut cmd = env.tally();
        cmd.arg("log").arg("--repo").arg(&h.server.path).args(args);
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let whole = run(None, &[]);
    let longest = whole.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(longest > 60, "the history has long lines: {whole}");

    let cut = run(Some("60"), &[]);
    assert_eq!(cut.lines().count(), whole.lines().count());
    for (c, w) in cut.lines().zip(whole.lines()) {
        assert!(c.chars().count() <= 60, "{c}");
        if w.chars().count() > 60 {
            let kept: String = w.chars().take(59).collect();
            assert_eq!(c, format!("{kept}…"));
        } else {
            assert_eq!(c, w);
        }
    }
    assert_eq!(run(Some("60"), &["--full"]), whole);
    assert!(
        run(Some("60"), &["-v"])
            .lines()
            .any(|l| l.chars().count() > 60)
    );
    assert!(!run(Some("60"), &["--json"]).contains('…'));
}
