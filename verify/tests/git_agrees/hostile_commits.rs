//! The adversary's view: for hostile commit objects, what git itself does with the same bytes.
//!
//! Every object here is written with `git hash-object --literally` (so git stores what fsck
//! would refuse, as a server without `receive.fsckObjects` does) and then read back with
//! `git log --format` and `git verify-commit`. The rule tally keeps: a commit it accepts is
//! one git's fsck accepts and git shows with exactly the committer name, email and date tally
//! checked; and a signature tally verifies is one `git verify-commit` verifies. tally may
//! refuse more than git (a re-wrapped signature armor, which git accepts) but never less.
//!
//! `replay_corpus_against_git` (ignored; run by `scripts/fuzz-diff-git.sh`) applies the same
//! rule to every file of a fuzz corpus.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use gix::ObjectId;
use tally_verify::commit::{Commit, CommitError, IdentityDefect, SignatureHeader};
use tally_verify::sshsig::{ArmorDefect, SigError, SigningKey, SshSig};

/// A scratch repository with a hermetic git configuration.
struct Git {
    dir: tempfile::TempDir,
}

impl Git {
    fn new() -> Git {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(
            dir.path().join("home/gitconfig"),
            "[user]\n\tname = T\n\temail = t@example.com\n[gpg]\n\tformat = ssh\n",
        )
        .unwrap();
        let git = Git { dir };
        git.ok(&["init", "-q", "repo"], None, git.dir.path());
        git
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn cmd(&self, args: &[&str], cwd: &Path) -> Command {
        let home = self.dir.path().join("home");
        let mut cmd = Command::new("git");
        cmd.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("TZ", "UTC")
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>, cwd: &Path) -> Output {
        let mut child = self
            .cmd(args, cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.unwrap_or_default()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], input: Option<&[u8]>, cwd: &Path) -> Vec<u8> {
        let out = self.run(args, input, cwd);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Whether git's fsck accepts the object (`hash-object` without `--literally` checks it).
    fn fsck_accepts(&self, raw: &[u8]) -> bool {
        self.run(
            &["hash-object", "-t", "commit", "--stdin"],
            Some(raw),
            &self.repo(),
        )
        .status
        .success()
    }

    /// Stores the object as it is, as a server without `receive.fsckObjects` would.
    fn write(&self, raw: &[u8]) -> String {
        let out = self.ok(
            &[
                "hash-object",
                "-t",
                "commit",
                "-w",
                "--literally",
                "--stdin",
            ],
            Some(raw),
            &self.repo(),
        );
        String::from_utf8(out).unwrap().trim().to_owned()
    }

    /// The committer as `git log` shows it (`--no-walk`: the parents need not exist): name,
    /// email, date.
    fn shown_committer(&self, id: &str) -> (String, String, String) {
        let out = self.ok(
            &[
                "log",
                "--no-walk",
                "--no-mailmap",
                "--format=%cn%x00%ce%x00%ct",
                id,
            ],
            None,
            &self.repo(),
        );
        let text = String::from_utf8_lossy(&out);
        let mut parts = text.trim_end_matches('\n').split('\0');
        let mut next = || parts.next().unwrap_or_default().to_owned();
        (next(), next(), next())
    }

    /// Whether `git verify-commit` accepts the commit, trusting `signers` (an allowed_signers
    /// text), with its raw output.
    fn verify_commit(&self, id: &str, signers: &str) -> (bool, String) {
        let file = self.dir.path().join("allowed_signers");
        std::fs::write(&file, signers).unwrap();
        let config = format!("gpg.ssh.allowedSignersFile={}", file.display());
        let out = self.run(
            &["-c", &config, "verify-commit", "--raw", id],
            None,
            &self.repo(),
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn null_id() -> ObjectId {
    ObjectId::null(gix::hash::Kind::Sha1)
}

/// The agreement rule for one object: if tally parses it, git's fsck accepts it and git
/// shows the committer tally read. Returns tally's verdict.
fn assert_agrees(git: &Git, raw: &[u8]) -> Result<Commit, CommitError> {
    let parsed = Commit::parse(null_id(), raw, false);
    if let Ok(commit) = &parsed {
        assert!(
            git.fsck_accepts(raw),
            "tally accepts what git's fsck refuses:\n{}",
            String::from_utf8_lossy(raw)
        );
        let id = git.write(raw);
        let (name, email, date) = git.shown_committer(&id);
        assert_eq!(
            (name.as_str(), email.as_str(), date.as_str()),
            (
                commit.committer.name.as_str(),
                commit.committer.email.as_str(),
                commit.committer.seconds.to_string().as_str()
            ),
            "git shows another committer than tally read:\n{}",
            String::from_utf8_lossy(raw)
        );
    }
    parsed
}

const TREE: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
const AUTHOR: &str = "author A <a@example.com> 1700000000 +0000\n";

fn object(lines: &[&str]) -> Vec<u8> {
    let mut raw = lines.concat();
    raw.push_str("\nmessage\n");
    raw.into_bytes()
}

/// Issue 10: `A <a@x> <b@y>`: git shows `a@x` (split_ident_line takes the first `<...>`), the
/// old parser checked `b@y`. fsck refuses the line; so does tally now.
#[test]
fn second_email_on_the_committer_line_is_refused_as_git_fsck_does() {
    let git = Git::new();
    let raw = object(&[TREE, AUTHOR, "committer A <a@x> <b@y> 123 +0000\n"]);
    let id = git.write(&raw);
    assert_eq!(git.shown_committer(&id).1, "a@x");
    assert!(!git.fsck_accepts(&raw));
    assert!(matches!(
        assert_agrees(&git, &raw),
        Err(CommitError::Identity {
            defect: IdentityDefect::BadDate,
            ..
        })
    ));
}

/// Issue 10: a second `committer` line after other headers passes fsck (which stops reading
/// after the first) and is the one `git log` shows: the old parser checked the first.
#[test]
fn second_committer_line_is_refused_though_git_fsck_accepts_it() {
    let git = Git::new();
    let raw = object(&[
        TREE,
        AUTHOR,
        "committer Alice <alice@example.com> 1700000000 +0000\n",
        "x-extra header\n",
        "committer Mallory <mallory@example.com> 1700000001 +0000\n",
    ]);
    assert!(
        git.fsck_accepts(&raw),
        "fsck reads only the first committer"
    );
    let id = git.write(&raw);
    assert_eq!(
        git.shown_committer(&id),
        (
            "Mallory".into(),
            "mallory@example.com".into(),
            "1700000001".into()
        )
    );
    assert!(matches!(
        assert_agrees(&git, &raw),
        Err(CommitError::Duplicate {
            header: "committer",
            line: 5,
            ..
        })
    ));
}

/// Hostile header blocks, each refused by tally; and the odd-but-valid ones tally accepts are
/// shown by git exactly as tally read them.
#[test]
fn hostile_headers_are_refused_or_read_as_git_reads_them() {
    let git = Git::new();
    let refused: &[&[&str]] = &[
        &[TREE, "committer C <c@x> 1 +0000\n"],
        &[AUTHOR, TREE, "committer C <c@x> 1 +0000\n"],
        &[TREE, AUTHOR, AUTHOR, "committer C <c@x> 1 +0000\n"],
        &[TREE, TREE, AUTHOR, "committer C <c@x> 1 +0000\n"],
        &[TREE, "committer C <c@x> 1 +0000\n", AUTHOR],
        &[
            TREE,
            AUTHOR,
            "encoding ISO-8859-1\n",
            "committer C <c@x> 1 +0000\n",
        ],
        &[
            TREE,
            AUTHOR,
            "committer C <c@x> 1 +0000\n",
            "encoding UTF-7\n",
        ],
        &[TREE, AUTHOR, "committer C<c@x> 1 +0000\n"],
        &[TREE, AUTHOR, "committer <c@x> 1 +0000\n"],
        &[TREE, AUTHOR, "committer C > <c@x> 1 +0000\n"],
        &[TREE, AUTHOR, "committer C <c@x>1 +0000\n"],
        &[TREE, AUTHOR, "committer C <c@x> 01 +0000\n"],
        &[TREE, AUTHOR, "committer C <c@x> 1 +00000\n"],
        &[TREE, AUTHOR, "committer C <c@x> 1 0000\n"],
        &[
            TREE,
            AUTHOR,
            "committer C <c@x> 18446744073709551616 +0000\n",
        ],
        &[TREE, AUTHOR, "committer C <c@x> 1 +0000\n", " continued\n"],
    ];
    for lines in refused {
        let raw = object(lines);
        assert!(assert_agrees(&git, &raw).is_err(), "{lines:?}");
    }
    let accepted: &[(&[&str], &str, &str)] = &[
        (
            &[TREE, AUTHOR, "committer C \t\r <c@x> 1 +0000\n"],
            "C",
            "c@x",
        ),
        (&[TREE, AUTHOR, "committer  <c@x> 0 +0000\n"], "", "c@x"),
        (
            &[TREE, AUTHOR, "committer C <c@x> \t 7 -1200\n"],
            "C",
            "c@x",
        ),
        (&[TREE, AUTHOR, "committer C <> 7 +0000\n"], "C", ""),
        (
            &[
                TREE,
                AUTHOR,
                "committer C <c@x> 7 +0000\n",
                "encoding utf8\n",
            ],
            "C",
            "c@x",
        ),
    ];
    for (lines, name, email) in accepted {
        let c = assert_agrees(&git, &object(lines)).unwrap();
        assert_eq!(
            (c.committer.name.as_str(), c.committer.email.as_str()),
            (*name, *email)
        );
    }
}

#[test]
fn nul_in_header_or_message_is_refused() {
    let git = Git::new();
    let mut raw = object(&[TREE, AUTHOR, "committer C <c@x> 1 +0000\n"]);
    let mut in_header = raw.clone();
    in_header[TREE.len() + 10] = 0;
    assert!(!git.fsck_accepts(&in_header));
    assert!(matches!(
        assert_agrees(&git, &in_header),
        Err(CommitError::NulInHeader { .. })
    ));
    let at = raw.len() - 3;
    raw[at] = 0;
    // git's fsck only warns about a NUL in the message; tally refuses it (git commit never
    // writes one, and git log stops showing the message there).
    assert!(matches!(
        Commit::parse(null_id(), &raw, false),
        Err(CommitError::NulInMessage { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Signature armor

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", "t@example.com", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    path
}

/// A commit signed by git with `key`, and the allowed_signers line trusting the key.
fn signed_commit(git: &Git, key: &Path) -> (Vec<u8>, String) {
    let repo = git.repo();
    std::fs::write(repo.join("a.yaml"), "a: 1\n").unwrap();
    git.ok(&["add", "a.yaml"], None, &repo);
    let signing = format!("user.signingkey={}", key.display());
    git.ok(
        &[
            "-c",
            &signing,
            "commit",
            "-q",
            "--allow-empty",
            "-S",
            "-m",
            "one",
        ],
        None,
        &repo,
    );
    let raw = git.ok(&["cat-file", "commit", "HEAD"], None, &repo);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = format!("* namespaces=\"git\" {public}");
    (raw, signers)
}

/// Replaces the armor inside the `gpgsig` header of `raw` by `armor(lines)`, where `lines`
/// are the armor's own lines (BEGIN, base64 lines, END) without LFs.
fn with_armor(raw: &[u8], edit: impl Fn(Vec<String>) -> String) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let start = text.find("gpgsig ").unwrap();
    let end = text.find("-----END SSH SIGNATURE-----\n").unwrap() + 28;
    let armor: Vec<String> = text[start + 7..end]
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).to_owned())
        .collect();
    let new = edit(armor);
    // Back into a header: continuation lines start with one space.
    let header = format!("gpgsig {}", new.trim_end_matches('\n').replace('\n', "\n "));
    format!("{}{header}\n{}", &text[..start], &text[end..]).into_bytes()
}

fn rewrap(lines: Vec<String>, width: usize) -> String {
    let b64: String = lines[1..lines.len() - 1].concat();
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "{}\n{}\n{}\n",
        lines[0],
        body.join("\n"),
        lines[lines.len() - 1]
    )
}

/// What tally says about the signature of `raw`.
fn tally_signature(raw: &[u8]) -> Result<(), SigError> {
    let commit = Commit::parse(null_id(), raw, false).unwrap();
    let SignatureHeader::One { signature, payload } = &commit.signature else {
        panic!("one signature expected: {:?}", commit.signature);
    };
    SshSig::from_armored(signature)?.verify("git", payload)
}

/// Issue 10: a re-wrapped or re-encoded copy of a signed commit is a new commit id under an
/// old signature. `git verify-commit` accepts the re-wrapped ones and one with text after END
/// (ssh-keygen's dearmor skips whitespace in the base64 and ignores anything after END); tally
/// refuses each mutation and names the defect.
fn armor_malleability(key_args: &[&str]) {
    let git = Git::new();
    let key = keygen(git.dir.path(), "key", key_args);
    let (raw, signers) = signed_commit(&git, &key);
    let original = git.write(&raw);
    assert!(git.verify_commit(&original, &signers).0);
    tally_signature(&raw).unwrap();

    let armor_defect = |raw: &[u8]| match tally_signature(raw) {
        Err(SigError::Armor(d)) => d,
        other => panic!("expected an armor defect, got {other:?}"),
    };
    // (mutation, does git verify-commit accept it, tally's defect)
    let mut cases: Vec<(&str, Vec<u8>, bool, ArmorDefect)> = vec![
        (
            "rewrapped at 64",
            with_armor(&raw, |l| rewrap(l, 64)),
            true,
            ArmorDefect::LineLength {
                line: 2,
                length: 64,
            },
        ),
        (
            "rewrapped at 76",
            with_armor(&raw, |l| rewrap(l, 76)),
            true,
            ArmorDefect::LineLength {
                line: 2,
                length: 76,
            },
        ),
        (
            "CRLF",
            with_armor(&raw, |l| l.join("\r\n") + "\r\n"),
            // git 2.47 + OpenSSH 9.2: "Couldn't parse signature: missing header".
            false,
            ArmorDefect::CarriageReturn { line: 1 },
        ),
        (
            "text after END",
            with_armor(&raw, |l| l.join("\n") + "\ntrailing text\n"),
            true,
            ArmorDefect::TextAfterEnd,
        ),
        (
            "text before BEGIN",
            with_armor(&raw, |l| format!("leading text\n{}\n", l.join("\n"))),
            false,
            ArmorDefect::TextBeforeBegin,
        ),
    ];
    let last_b64 = with_armor(&raw, |l| l.join("\n") + "\n");
    assert_eq!(last_b64, raw, "with_armor round-trips");
    let padded = String::from_utf8(raw.clone())
        .unwrap()
        .contains("=\n -----END");
    if padded {
        cases.push((
            "padding bits flipped",
            with_armor(&raw, |mut l| {
                let n = l.len() - 2;
                let line = &mut l[n];
                let at = line.find('=').unwrap() - 1;
                let c = line.as_bytes()[at];
                // The next character in the alphabet differs in the lowest bit only.
                let flipped = match c {
                    b'A'..=b'Y' | b'a'..=b'y' | b'0'..=b'8' => c + 1,
                    _ => c - 1,
                };
                line.replace_range(at..=at, &(flipped as char).to_string());
                l.join("\n") + "\n"
            }),
            false,
            ArmorDefect::PaddingBits,
        ));
    }
    for (what, mutated, git_accepts, defect) in cases {
        assert_ne!(mutated, raw, "{what}");
        let id = git.write(&mutated);
        assert_ne!(id, original, "{what}: a new commit id");
        let (accepted, output) = git.verify_commit(&id, &signers);
        assert_eq!(
            accepted, git_accepts,
            "{what}: git verify-commit said {output}"
        );
        assert_eq!(armor_defect(&mutated), defect, "{what}");
    }
}

#[test]
fn armor_malleability_ed25519() {
    armor_malleability(&["-t", "ed25519"]);
}

#[test]
fn armor_malleability_ecdsa_p256() {
    armor_malleability(&["-t", "ecdsa", "-b", "256"]);
}

#[test]
fn armor_malleability_ecdsa_p384() {
    armor_malleability(&["-t", "ecdsa", "-b", "384"]);
}

#[test]
fn armor_malleability_ecdsa_p521() {
    armor_malleability(&["-t", "ecdsa", "-b", "521"]);
}

#[test]
fn armor_malleability_rsa() {
    armor_malleability(&["-t", "rsa", "-b", "3072"]);
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus replay

fn openssh(key: &ssh_key::public::KeyData) -> String {
    ssh_key::PublicKey::new(key.clone(), "")
        .to_openssh()
        .unwrap()
}

/// Replays every file under `$TALLY_GIT_REPLAY` (fuzz corpora, directories searched
/// recursively) through git: what tally parses, git's fsck accepts and shows with the same
/// committer; a signature tally verifies, `git verify-commit` verifies (trusting the key the
/// signature names, for any principal). Signature and payload equality follow: both verify
/// the same signature bytes over what each took as the payload.
#[test]
#[ignore = "run by scripts/fuzz-diff-git.sh over the fuzz corpora"]
fn replay_corpus_against_git() {
    let Some(root) = std::env::var_os("TALLY_GIT_REPLAY") else {
        panic!("set TALLY_GIT_REPLAY to a corpus directory");
    };
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::from(root)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let git = Git::new();
    let (mut parsed, mut verified, mut git_only) = (0, 0, 0);
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        let Ok(commit) = std::panic::catch_unwind(|| assert_agrees(&git, &raw))
            .unwrap_or_else(|_| panic!("disagreement on {}", file.display()))
        else {
            continue;
        };
        parsed += 1;
        let SignatureHeader::One { signature, payload } = &commit.signature else {
            continue;
        };
        let Ok(sig) = SshSig::from_armored(signature) else {
            continue;
        };
        let id = git.write(&raw);
        // Trust the signing key (or a certificate's CA) for any principal. git also checks a
        // certificate's validity at the committer date, which tally's signature check alone
        // does not: such certificates are left out of the comparison.
        let signers = match &sig.key {
            SigningKey::Plain(key) => format!("* namespaces=\"git\" {}\n", openssh(key)),
            SigningKey::Certificate(cert) => {
                if !u64::try_from(commit.committer.seconds).is_ok_and(|t| cert.valid_at(t)) {
                    continue;
                }
                format!(
                    "* cert-authority,namespaces=\"git\" {}\n",
                    openssh(&cert.ca)
                )
            }
        };
        let tally_ok = sig.verify("git", payload).is_ok();
        let (git_ok, output) = git.verify_commit(&id, &signers);
        if tally_ok {
            assert!(
                git_ok,
                "{}: tally verifies a signature git does not: {output}",
                file.display()
            );
            verified += 1;
        } else if git_ok {
            git_only += 1;
        }
    }
    eprintln!(
        "{} files: {parsed} parsed by tally and shown alike by git, {verified} signatures verified by both, {git_only} verified by git only",
        files.len()
    );
}
