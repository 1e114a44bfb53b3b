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

#[test]
fn log_text_lists_the_same_entries_as_json() {
    let env = TestEnv::new();
    let h = mixed_history(&env);
    let server = &h.server;
    let check = |args: &[&str]| {
        let json = server.log(args);
        let mut all = vec!["log"];
        all.extend_from_slice(args);
        let out = server.tally(&all);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headers.len(), json.len(), "{args:?}:\n{text}");
        for (header, e) in headers.iter().zip(&json) {
            let start = format!("#{:<6} {:<13} ", seq(e), kind(e));
            assert!(header.starts_with(&start), "{header:?} for {e}");
            if kind(e) != "policy-change" {
                let old = opt(e, "old").map_or("0000000000", short);
                let new = opt(e, "new").map_or("0000000000", short);
                assert!(
                    header.contains(&format!("{} {old}..{new} by ", field(e, "ref"))),
                    "{header:?} for {e}"
                );
            }
            assert!(header.ends_with(&format!(" by {}", field(e, "pusher"))));
        }
        for e in &json {
            for (commit, principal, fingerprint) in commits(e) {
                let line = format!(
                    "commit {} signed by {principal} ({fingerprint})",
                    short(&commit)
                );
                assert!(text.contains(&line), "no {line:?} in:\n{text}");
            }
            for reason in reasons(e) {
                assert!(
                    text.lines().any(|l| l.trim() == reason),
                    "no {reason:?} in:\n{text}"
                );
            }
        }
        text
    };
    let text = check(&[]);
    assert!(text.contains(&format!(
        "commit {} signed by bob@example.com",
        short(&h.b1)
    )));
    check(&["--branch", "prod"]);
    check(&["--kind", "rejected"]);
    check(&["--limit", "3"]);
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
    let own = server.tally_dir().join("ledger_key.pub");
    let out = server.tally(&["ledger", "verify", "--ledger-key", own.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let other = keys().mallory.public.to_str().unwrap().to_owned();
    let out = server.tally(&["ledger", "verify", "--ledger-key", &other]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checkpoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
