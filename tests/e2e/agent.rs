//! End-to-end tests of the deployment agent, `tally verify` and `tally pull`: a bare repository
//! guarded by `tally init`, real signed pushes with the real `git`, and an agent clone that
//! fetches from it (or from a copy of it that an attacker controls), one test per attack of
//! issue 4: out-of-band moves, rollback, fork, freeze, mix-and-match, a signer the agent does
//! not trust, a corrupt state file, and `pull` never moving the work tree on failure.
//!
//! The two `#[ignore]`d tests in `bench` are the agent's benchmarks (`scripts/bench-agent.sh`):
//! they print timings and assert only correctness.

mod approved;
mod attacks;
mod bench;
mod local;
mod report;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::*;

// =============================================================================================
// Helpers

/// What one `tally verify` or `tally pull` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// `stderr` with wrapped lines joined again ([`unwrapped`]), for finding a message.
    joined: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        let stderr = String::from_utf8(out.stderr).unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            joined: unwrapped(&stderr),
            stderr,
        }
    }
}

impl Run {
    /// Asserts success; returns stdout trimmed (the approved commit).
    fn approved(&self) -> String {
        assert_eq!(
            self.code, 0,
            "the agent should approve; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout.trim().to_owned()
    }

    /// Asserts exit 1 (verification refused) and a `tally: <cmd>: ` stderr line holding every
    /// one of `parts`.
    fn assert_refused(&self, parts: &[&str]) -> &str {
        self.assert_failed(1, parts)
    }

    /// Asserts exit 4 (a problem on the agent's machine) and a stderr line with `parts`.
    fn assert_local(&self, parts: &[&str]) -> &str {
        self.assert_failed(4, parts)
    }

    fn assert_failed(&self, code: i32, parts: &[&str]) -> &str {
        assert_eq!(
            self.code, code,
            "the agent should fail with exit {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(self.stdout.is_empty(), "nothing approved: {}", self.stdout);
        let line = self
            .joined
            .lines()
            .find(|l| l.starts_with("tally: ") && parts.iter().all(|p| l.contains(p)));
        line.unwrap_or_else(|| {
            panic!(
                "no stderr line contains all of {parts:?}; stderr:\n{}",
                self.stderr
            )
        })
    }
}

/// A deployment agent: a clone of the server, the ledger key it pinned, its own signers.
struct Agent<'e> {
    env: &'e TestEnv,
    /// The clone's work tree.
    path: PathBuf,
    /// The pinned ledger public key (`tally ledger key` of the server, as an operator copies it).
    key: PathBuf,
    /// The agent's own allowed_signers.
    signers: PathBuf,
}

impl<'e> Agent<'e> {
    /// Clones `server` (branches only: the first `tally pull` fetches the ledger).
    fn new(env: &'e TestEnv, server: &Server<'_>, name: &str, signers: &AllowedSigners) -> Self {
        let path = env.root().join(name);
        run_ok(
            env.git(env.root())
                .args(["clone", "-q"])
                .arg(&server.path)
                .arg(&path),
        );
        let out = server.tally(&["ledger", "key"]);
        assert!(out.status.success(), "tally ledger key failed");
        let key = env.write(
            &format!("{name}-ledger.pub"),
            &String::from_utf8(out.stdout).unwrap(),
        );
        let signers = env.write(&format!("{name}-allowed_signers"), &signers.text());
        Agent {
            env,
            path,
            key,
            signers,
        }
    }

    fn tally(&self, command: &str, extra: &[&str]) -> Run {
        self.env
            .tally()
            .arg(command)
            .arg("--repo")
            .arg(&self.path)
            .arg("--ledger-key")
            .arg(&self.key)
            .arg("--allowed-signers")
            .arg(&self.signers)
            .args(extra)
            .output()
            .unwrap()
            .into()
    }

    fn verify(&self, extra: &[&str]) -> Run {
        self.tally("verify", extra)
    }

    fn pull(&self, extra: &[&str]) -> Run {
        self.tally("pull", extra)
    }

    fn git_ok(&self, args: &[&str]) -> String {
        stdout_of(self.env.git(&self.path).args(args))
    }

    fn head(&self) -> String {
        self.git_ok(&["rev-parse", "HEAD"])
    }

    /// Fetches the branch and the ledger like `tally pull` does, without verifying.
    fn fetch(&self) {
        run_ok(self.env.git(&self.path).args([
            "fetch",
            "-q",
            "origin",
            "+refs/heads/main:refs/tally/remotes/origin/main",
            "+refs/tally/ledger:refs/tally/ledger",
        ]));
    }

    /// Points `origin` somewhere else (a mirror, a restored backup, another server).
    fn set_remote(&self, server: &Server<'_>) {
        run_ok(
            self.env
                .git(&self.path)
                .args(["remote", "set-url", "origin"])
                .arg(&server.path),
        );
    }

    fn state_path(&self) -> PathBuf {
        self.path.join(".git/tally/agent/main.json")
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_path()).unwrap()).unwrap()
    }

    /// What `pull` must leave alone on failure: HEAD, the local branch, the index and files.
    fn snapshot(&self) -> (String, String, String) {
        (
            self.head(),
            self.git_ok(&["rev-parse", "refs/heads/main"]),
            self.git_ok(&["status", "--porcelain"]),
        )
    }
}

/// A server with main protected, Alice's base commit pushed, and Alice's work clone.
fn server_with_base(env: &TestEnv) -> (Server<'_>, Work<'_>, String) {
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    (server, work, base)
}

/// Every entry published in `refs/tally/ledger`, oldest first, as stored bytes.
fn published_entries(env: &TestEnv, git_dir: &Path) -> Vec<Vec<u8>> {
    let list = stdout_of(
        env.git(git_dir)
            .args(["rev-list", "--reverse", "refs/tally/ledger"]),
    );
    let mut out = Vec::new();
    for commit in list.lines() {
        let blob =
            run_ok(
                env.git(git_dir)
                    .args(["cat-file", "blob", &format!("{commit}:entries")]),
            )
            .stdout;
        let mut rest = blob.as_slice();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_be_bytes(*len) as usize;
            out.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
    }
    out
}

/// Writes a blob into `git_dir`; returns its id.
fn write_blob(env: &TestEnv, git_dir: &Path, bytes: &[u8]) -> String {
    let out = run_with_stdin(
        env.git(git_dir).args(["hash-object", "-w", "--stdin"]),
        bytes,
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Writes one publication commit (entries `first..size` and the note) on top of `parent`, and
/// points `refs/tally/ledger` at it with the hooks bypassed; returns the commit.
fn write_publication(
    env: &TestEnv,
    git_dir: &Path,
    parent: Option<&str>,
    first: u64,
    entries: &[Vec<u8>],
    note: &str,
) -> String {
    let mut blob = Vec::new();
    for e in entries {
        blob.extend_from_slice(&(e.len() as u32).to_be_bytes());
        blob.extend_from_slice(e);
    }
    let size = first + entries.len() as u64;
    let tree_text = format!(
        "100644 blob {}\tcheckpoint\n100644 blob {}\tentries\n100644 blob {}\trange\n",
        write_blob(env, git_dir, note.as_bytes()),
        write_blob(env, git_dir, &blob),
        write_blob(env, git_dir, format!("{first} {size}\n").as_bytes()),
    );
    let out = run_with_stdin(env.git(git_dir).arg("mktree"), tree_text.as_bytes());
    assert!(out.status.success());
    let tree = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut cmd = env.git(git_dir);
    cmd.args(["commit-tree", "--no-gpg-sign", "-m", "tally ledger"]);
    if let Some(p) = parent {
        cmd.args(["-p", p]);
    }
    let commit = stdout_of(cmd.arg(&tree));
    run_ok(
        env.git(git_dir)
            .args(["-c", NO_HOOKS, "update-ref", "refs/tally/ledger", &commit]),
    );
    commit
}

fn raw_id(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
