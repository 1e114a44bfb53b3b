//! `tally policy check` (issue 13): the policy and the files it names, checked exactly as the
//! hooks load them, before or after `tally init`; errors point at file, line and column.

use std::process::Output;

use serde_json::Value;

use crate::common::*;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tally policy check <args>`, run in the test directory.
fn check(env: &TestEnv, args: &[&str]) -> Output {
    env.tally()
        .args(["policy", "check"])
        .args(args)
        .output()
        .unwrap()
}

const POLICY: &str =
    "[branches]\nprotected = [\"main\"]\n\n[signatures]\nallowed_signers = \"allowed_signers\"\n";

#[test]
fn a_toml_error_points_at_line_and_column_with_the_snippet() {
    let env = TestEnv::new();
    env.write("allowed_signers", &alice_and_bob().text());
    env.write(
        "policy.toml",
        &format!("{POLICY}\n[files]\nmax_size = \"1 MiB\"\n"),
    );
    let out = check(&env, &["--policy", "./policy.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    insta::assert_snapshot!(stderr(&out), @r#"
    tally: error: policy ./policy.toml is invalid:
    TOML parse error at line 8, column 12
      |
    8 | max_size = "1 MiB"
      |            ^^^^^^^
    invalid type: string "1 MiB", expected u64
    "#);

    // Unknown keys too, and the same error as JSON.
    env.write(
        "policy.toml",
        &POLICY.replace("allowed_signers =", "revocation = \"x\"\nallowed_signers ="),
    );
    let out = check(&env, &["--policy", "./policy.toml", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["exit"], 2);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 5, column 1"), "{message}");
    assert!(message.contains("unknown field `revocation`"), "{message}");
}

#[test]
fn a_pub_file_given_as_allowed_signers_is_told_to_add_the_principal() {
    let env = TestEnv::new();
    std::fs::copy(&keys().alice.public, env.root().join("alice.pub")).unwrap();
    let out = check(&env, &["--allowed-signers", "./alice.pub"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    insta::assert_snapshot!(stderr(&out), @r#"tally: error: ./alice.pub:1: line 1 has no principal: start the line with the signer's email, e.g. "alice@example.com ssh-ed25519 AAAA...""#);

    // With a policy: the signers file given replaces the one the policy names.
    env.write("policy.toml", POLICY);
    let out = check(
        &env,
        &[
            "--policy",
            "./policy.toml",
            "--allowed-signers",
            "./alice.pub",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("./alice.pub:1: line 1 has no principal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn files_before_install_pass_with_a_summary() {
    let env = TestEnv::new();
    env.write("allowed_signers", &alice_and_bob().text());
    env.write("policy.toml", POLICY);
    let out = check(&env, &["--policy", "./policy.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let digest = text
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(digest.len(), 64);
    insta::assert_snapshot!(text.replace(&digest, "[DIGEST]"), @r"
    policy valid: ./policy.toml
      protected branches  main
      allowed signers     ./allowed_signers (2 signers)
      revocation file     none
      policy digest       [DIGEST]
    ");

    let out = check(&env, &["--allowed-signers", "./allowed_signers"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(2 signers)"), "{}", stdout(&out));
}

#[test]
fn the_installed_policy_is_checked_as_the_hooks_load_it() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let out = server.tally(&["policy", "check", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["protected"], serde_json::json!(["main", "release/*"]));
    assert_eq!(v["signers"], 2);
    assert_eq!(v["revocation_file"], Value::Null);
    // The digest is the one the ledger records.
    assert_eq!(v["digest"], server.log(&[])[0]["policy_digest"]);

    // A configured revocation file that is missing fails, naming it; the hooks refuse every
    // protected push meanwhile.
    server.set_revocation_file("revoked_keys");
    let out = server.tally(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("revoked_keys cannot be read"), "{err}");
    std::fs::write(server.tally_dir().join("revoked_keys"), "# none yet\n").unwrap();
    let out = server.tally(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked_keys"), "{}", stdout(&out));
}
