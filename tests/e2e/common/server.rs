//! The bare repository `tally init` guards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::*;

/// A hooks directory that does not exist: `git -c` with it runs no hook at all, as someone
/// with a shell on the server could arrange.
pub const NO_HOOKS: &str = "core.hooksPath=/nonexistent-tally-test-hooks";

/// Copies a directory tree (regular files and directories; a bare repository has nothing else).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The bare repository `tally init` set up.
pub struct Server<'e> {
    pub(super) env: &'e TestEnv,
    /// Its git directory.
    pub path: PathBuf,
}

impl Server<'_> {
    /// Where a full ref points, if it exists.
    pub fn rev(&self, refname: &str) -> Option<String> {
        let out = self
            .env
            .git(&self.path)
            .args(["rev-parse", "--verify", "-q"])
            .arg(format!("{refname}^{{commit}}"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
    }

    /// Where `refs/heads/<branch>` points, if it exists.
    pub fn branch(&self, branch: &str) -> Option<String> {
        self.rev(&format!("refs/heads/{branch}"))
    }

    /// `<repo>/tally`.
    pub fn tally_dir(&self) -> PathBuf {
        self.path.join("tally")
    }

    /// `<repo>/tally/policy.toml`.
    pub fn policy_path(&self) -> PathBuf {
        self.tally_dir().join("policy.toml")
    }

    /// Replaces `from` by `to` in policy.toml; panics if `from` is not there.
    pub fn edit_policy(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.policy_path()).unwrap();
        assert!(text.contains(from), "policy.toml has no {from:?}:\n{text}");
        std::fs::write(self.policy_path(), text.replacen(from, to, 1)).unwrap();
    }

    /// Sets `[files] max_size`.
    pub fn set_max_size(&self, bytes: u64) {
        self.edit_policy(
            &format!("max_size = {}", 1024 * 1024),
            &format!("max_size = {bytes}"),
        );
    }

    /// Configures `revocation_file = "<name>"` (the file itself is up to the test).
    pub fn set_revocation_file(&self, name: &str) {
        self.edit_policy(
            "# revocation_file = \"revoked_keys\"",
            &format!("revocation_file = \"{name}\""),
        );
    }

    /// Runs `tally hook pre-receive` by hand, as git would, with `input` on stdin.
    pub fn run_pre_receive(&self, input: &[u8]) -> Output {
        let mut cmd = self.env.tally();
        cmd.args(["hook", "pre-receive"])
            .env("GIT_DIR", &self.path)
            .current_dir(&self.path);
        run_with_stdin(&mut cmd, input)
    }

    /// Runs `tally hook reference-transaction <state>` by hand, as git would.
    pub fn run_reference_transaction(&self, state: &str, input: &[u8]) -> Output {
        let mut cmd = self.env.tally();
        cmd.args(["hook", "reference-transaction", state])
            .env("GIT_DIR", &self.path)
            .current_dir(&self.path);
        run_with_stdin(&mut cmd, input)
    }

    /// `git` run inside the bare repository, hooks active (as an administrator with a shell
    /// on the server would run it).
    pub fn git(&self) -> Command {
        self.env.git(&self.path)
    }

    /// `tally <args> --repo <this repository>`; returns the output whatever the status.
    pub fn tally(&self, args: &[&str]) -> Output {
        self.env
            .tally()
            .args(args)
            .arg("--repo")
            .arg(&self.path)
            .output()
            .unwrap()
    }

    /// `tally log --json <args>`: the entries, newest first.
    pub fn log(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["log", "--json"];
        all.extend_from_slice(args);
        let out = self.tally(&all);
        assert!(
            out.status.success(),
            "tally {all:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_slice(&out.stdout) {
            Ok(serde_json::Value::Array(entries)) => entries,
            other => panic!(
                "tally log --json printed no JSON array ({other:?}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            ),
        }
    }

    /// `tally ledger verify`, asserting that it finds the ledger intact; returns stdout.
    pub fn assert_ledger_intact(&self) -> String {
        let out = self.tally(&["ledger", "verify"]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && stdout.starts_with("ledger intact: "),
            "tally ledger verify exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}
