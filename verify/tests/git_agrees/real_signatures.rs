//! Signatures made by the real `git` and `ssh-keygen`, checked by tally's own parser.
//!
//! The payload tally extracts must be byte-for-byte what git signed: `ssh-keygen -Y
//! check-novalidate` over tally's payload is the independent witness.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gix::ObjectId;
use tally_verify::commit::{Commit, SignatureHeader};
use tally_verify::sshsig::{SigError, SigningKey, SshSig};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", "t@example.com", "-f"])
        .arg(&path));
    path
}

fn git(dir: &Path, home: &Path, args: &[&str]) -> Vec<u8> {
    run(Command::new("git")
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .args(args))
}

/// Makes a commit signed by `key` with git itself and returns (id, raw object).
fn signed_commit(dir: &Path, key: &Path) -> (ObjectId, Vec<u8>) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("gitconfig"),
        "[user]\n\tname = T\n\temail = t@example.com\n[gpg]\n\tformat = ssh\n",
    )
    .unwrap();
    let repo = dir.join("repo");
    git(dir, &home, &["init", "-q", "repo"]);
    std::fs::write(repo.join("a.yaml"), "a: 1\n").unwrap();
    git(&repo, &home, &["add", "a.yaml"]);
    let signing = format!("user.signingkey={}", key.display());
    git(
        &repo,
        &home,
        &[
            "-c",
            &signing,
            "commit",
            "-q",
            "-S",
            "-m",
            "one\n\nbody gpgsig x",
        ],
    );
    let id = String::from_utf8(git(&repo, &home, &["rev-parse", "HEAD"])).unwrap();
    let raw = git(&repo, &home, &["cat-file", "commit", "HEAD"]);
    (ObjectId::from_hex(id.trim().as_bytes()).unwrap(), raw)
}

fn check_novalidate(dir: &Path, payload: &[u8], signature: &[u8]) -> bool {
    let sig = dir.join("sig");
    std::fs::write(&sig, signature).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "check-novalidate", "-n", "git", "-s"])
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(payload).unwrap();
    child.wait().unwrap().success()
}

fn roundtrip(key_args: &[&str], expect_type: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "key", key_args);
    let (id, raw) = signed_commit(dir.path(), &key);
    let commit = Commit::parse(id, &raw, false).unwrap();
    let SignatureHeader::One { signature, payload } = &commit.signature else {
        panic!("expected one signature: {:?}", commit.signature);
    };
    assert!(
        check_novalidate(dir.path(), payload, signature),
        "ssh-keygen disagrees with tally's payload"
    );
    let sig = SshSig::from_armored(signature).unwrap();
    let SigningKey::Plain(k) = &sig.key else {
        panic!("plain key expected")
    };
    assert_eq!(k.algorithm().as_str(), expect_type);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let expected = ssh_key::PublicKey::from_openssh(public.trim()).unwrap();
    assert_eq!(k, expected.key_data());
    sig.verify("git", payload).unwrap();
    assert_eq!(
        sig.verify("file", payload).unwrap_err(),
        SigError::Namespace {
            expected: "file".into(),
            found: "git".into()
        }
    );
    let mut tampered = payload.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert_eq!(
        sig.verify("git", &tampered).unwrap_err(),
        SigError::BadSignature
    );
}

#[test]
fn ed25519_commit_signed_by_git_verifies() {
    roundtrip(&["-t", "ed25519"], "ssh-ed25519");
}

#[test]
fn ecdsa_p256_commit_signed_by_git_verifies() {
    roundtrip(&["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256");
}

#[test]
fn ecdsa_p384_commit_signed_by_git_verifies() {
    roundtrip(&["-t", "ecdsa", "-b", "384"], "ecdsa-sha2-nistp384");
}

#[test]
fn ecdsa_p521_commit_signed_by_git_verifies() {
    roundtrip(&["-t", "ecdsa", "-b", "521"], "ecdsa-sha2-nistp521");
}

#[test]
fn rsa_commit_signed_by_git_verifies() {
    roundtrip(&["-t", "rsa", "-b", "3072"], "ssh-rsa");
}

/// git (SHA-1 repositories) strips a `gpgsig-sha256` header from the payload too, so adding
/// one gives a new commit id whose old signature still verifies with `git verify-commit`.
/// tally refuses the commit instead of choosing which header to believe.
#[test]
fn extra_signature_header_is_refused_not_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "key", &["-t", "ed25519"]);
    let (id, raw) = signed_commit(dir.path(), &key);
    let text = String::from_utf8(raw).unwrap();
    let at = text.find("\n\n").unwrap() + 1;
    let forged = format!("{}gpgsig-sha256 x\n y\n{}", &text[..at], &text[at..]);
    let commit = Commit::parse(id, forged.as_bytes(), false).unwrap();
    assert_eq!(commit.signature, SignatureHeader::Multiple { count: 2 });
}
