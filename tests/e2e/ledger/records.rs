//! Policy changes, and what else an entry or the publication holds: the login key that
//! pushed, objects git reads, and `--repo` paths relative to another clone.

use super::*;
use crate::common::*;

#[test]
fn a_policy_change_is_recorded_before_the_next_entry() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let digest_before = field(&server.log(&["--limit", "1"])[0], "policy_digest").to_owned();

    server.edit_policy(
        r#"protected = ["main"]"#,
        r#"protected = ["main", "release/*"]"#,
    );
    let next = work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push_main_ok();
    let entries = server.log(&["--limit", "2"]);
    let [accepted, change] = &entries[..] else {
        unreachable!()
    };
    assert_eq!(kind(change), "policy-change");
    assert_eq!(field(change, "ref"), "");
    assert_ne!(field(change, "policy_digest"), digest_before);
    assert_eq!(
        reasons(change),
        ["policy.toml, allowed_signers or the revocation file changed"]
    );
    assert_eq!(kind(accepted), "accepted");
    assert_eq!(seq(accepted), seq(change) + 1);
    assert_eq!(
        (opt(accepted, "old"), opt(accepted, "new")),
        (Some(base.as_str()), Some(next.as_str()))
    );
    assert_eq!(
        field(accepted, "policy_digest"),
        field(change, "policy_digest")
    );

    // A change of allowed_signers, then a refused push: the change precedes the refusal.
    let signers = server.tally_dir().join("allowed_signers");
    let mut text = std::fs::read_to_string(&signers).unwrap();
    text.push_str(&format!("carol@example.com {}\n", keys().p256.public_line));
    std::fs::write(&signers, text).unwrap();
    work.commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    let entries = server.log(&["--limit", "2"]);
    assert_eq!(
        entries.iter().map(kind).collect::<Vec<_>>(),
        ["rejected", "policy-change"]
    );
    assert_ne!(
        field(&entries[1], "policy_digest"),
        field(accepted, "policy_digest")
    );
    assert_eq!(
        field(&entries[0], "policy_digest"),
        field(&entries[1], "policy_digest")
    );

    let out = server.tally(&["log", "--kind", "policy-change"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("seq ")).count(),
        3,
        "{text}"
    );
    assert!(
        text.contains(&format!("policy {}", &field(change, "policy_digest")[..12])),
        "{text}"
    );
    server.assert_ledger_intact();
}

/// Regression: `--repo ../server.git` from inside another repository's work tree used to fail
/// ("../.git/objects wasn't a directory"): gix resolved the relative path against the clone
/// around the current directory.
#[test]
fn a_relative_repo_path_works_from_inside_another_clone() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    let relative = Path::new("..").join(server.path.file_name().unwrap());
    for args in [&["log", "--json"][..], &["ledger", "verify"][..]] {
        let out = env
            .tally()
            .current_dir(&work.path)
            .args(args)
            .arg("--repo")
            .arg(&relative)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let out = env
        .tally()
        .current_dir(&work.path)
        .args(["log", "--repo", "../no-such.git"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("../no-such.git cannot be opened"),
        "{out:?}"
    );
}

/// tally writes the publication's loose objects itself (small ones as stored zlib blocks): git
/// must read them as its own, and `git fsck --strict` must find nothing wrong.
#[test]
fn published_objects_are_objects_git_reads() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    work.commit("next").file("next.yaml", "next: 1\n").create();
    work.push_main_ok();
    let git = |args: &[&str]| run_ok(server.git().args(args)).stdout;
    let size = server.log(&[]).len();
    let range = String::from_utf8(git(&["cat-file", "blob", "refs/tally/ledger:range"])).unwrap();
    let first: usize = range.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(range, format!("{first} {size}\n"));
    let note = git(&["cat-file", "blob", "refs/tally/ledger:checkpoint"]);
    assert!(
        String::from_utf8_lossy(&note).contains(&format!("\n{size}\n")),
        "{}",
        String::from_utf8_lossy(&note)
    );
    let out = server
        .git()
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{out:?}");
}

/// Plain git over ssh: everyone pushes as one account, and with `ExposeAuthInfo yes` sshd
/// names the key that logged in (`SSH_USER_AUTH`); the ledger records the account and that
/// key's fingerprint (for a certificate, its key, key id and CA), for accepted and refused
/// pushes alike.
#[test]
fn the_ssh_login_key_is_recorded_as_the_pusher() {
    let env = TestEnv::new();
    let keys = keys();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let auth = env.write(
        "ssh-user-auth",
        &format!("publickey {}\n", keys.bob.public_line),
    );
    let auth = auth.display().to_string();
    let env_vars = [("SSH_USER_AUTH", auth.as_str()), ("USER", "git")];
    work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_with_env(&["origin", "HEAD:refs/heads/main"], &env_vars)
        .assert_accepted();
    work.commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    work.push_with_env(&["origin", "HEAD:refs/heads/main"], &env_vars)
        .assert_refused();
    let expected = format!("ssh:git key {}", keys.bob.fingerprint);
    let log = server.log(&[]);
    for kind in ["accepted", "rejected"] {
        let e = log.iter().find(|e| e["kind"] == kind).unwrap();
        assert_eq!(e["pusher"].as_str(), Some(expected.as_str()), "{kind}: {e}");
    }

    let cert = env.certify(&keys.alice, &keys.ca, "alice@example.com", None);
    let cert_line = std::fs::read_to_string(&cert).unwrap();
    let mut fields = cert_line.split_whitespace();
    let cert_line = format!("{} {}", fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(&auth, format!("publickey {cert_line}\n")).unwrap();
    work.reset_hard("HEAD~1");
    work.commit("by certificate")
        .file("c.yaml", "c: 1\n")
        .create();
    work.push_with_env(&["origin", "HEAD:refs/heads/main"], &env_vars)
        .assert_accepted();
    let newest = &server.log(&["--kind", "accepted", "--limit", "1"])[0];
    assert_eq!(
        newest["pusher"].as_str(),
        Some(
            format!(
                "ssh:git key {} (certificate \"test-cert\" from CA {})",
                keys.alice.fingerprint, keys.ca.fingerprint
            )
            .as_str()
        ),
        "{newest}"
    );
}
