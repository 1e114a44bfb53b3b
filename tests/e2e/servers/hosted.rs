//! A guarded repository seen from the server, read the way its administrator reads it: as the
//! hosting account (`sudo -u git ...`). Root could not even ask git: git refuses a repository
//! another user owns ("detected dubious ownership").

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::account::Account;
use crate::common::{TestEnv, stdout_of};

/// A bare repository `account` hosts, guarded by `tally` (the binary its hooks name).
pub struct Hosted<'a> {
    /// The hosting account.
    pub account: &'a Account,
    /// The repository's git directory.
    pub path: PathBuf,
    /// The tally binary.
    pub tally: PathBuf,
}

impl Hosted<'_> {
    /// `git` in the repository, as the hosting account.
    pub fn git(&self) -> Command {
        self.account.git(&self.path)
    }

    /// Where a full ref points, if it exists; panics if git cannot tell (so that a repository
    /// git refuses to read never passes for an unmoved branch).
    pub fn rev(&self, refname: &str) -> Option<String> {
        let out = self
            .git()
            .args(["rev-parse", "--verify", "-q"])
            .arg(format!("{refname}^{{commit}}"))
            .output()
            .unwrap();
        match out.status.code() {
            Some(0) => Some(String::from_utf8(out.stdout).unwrap().trim().to_owned()),
            Some(1) => None,
            _ => panic!(
                "git rev-parse {refname} in {}: {out:?}",
                self.path.display()
            ),
        }
    }

    /// Where `refs/heads/<branch>` points, if it exists.
    pub fn branch(&self, branch: &str) -> Option<String> {
        self.rev(&format!("refs/heads/{branch}"))
    }

    /// How many commits `refs/tally/ledger` has.
    pub fn ledger_commits(&self) -> usize {
        stdout_of(
            self.git()
                .args(["rev-list", "--count", "refs/tally/ledger"]),
        )
        .parse()
        .unwrap()
    }

    /// `tally <args> --repo <repository>` as the hosting account; the output whatever the
    /// status.
    pub fn tally(&self, args: &[&str]) -> Output {
        self.account
            .command(&self.tally)
            .args(args)
            .arg("--repo")
            .arg(&self.path)
            .output()
            .unwrap()
    }

    /// `tally log --json`: every entry, oldest first.
    pub fn entries(&self) -> Vec<serde_json::Value> {
        let out = self.tally(&["log", "--json"]);
        assert!(out.status.success(), "tally log: {out:?}");
        let serde_json::Value::Array(mut entries) = serde_json::from_slice(&out.stdout).unwrap()
        else {
            panic!("tally log --json printed no array: {out:?}");
        };
        entries.reverse();
        entries
    }

    /// The entries of one kind, oldest first.
    pub fn entries_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.entries()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    }

    /// Asserts `tally ledger verify` finds the ledger intact.
    pub fn assert_ledger_intact(&self) {
        let out = self.tally(&["ledger", "verify"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("ledger intact: "),
            "tally ledger verify: {out:?}"
        );
    }

    /// Asserts every file under the repository still belongs to the hosting account.
    pub fn assert_owned_by_account(&self) {
        assert_eq!(
            self.account.foreign_files(&self.path),
            Vec::<String>::new(),
            "files under {} that {} does not own",
            self.path.display(),
            self.account.name
        );
    }
}

/// `tally init <repo> --allowed-signers <signers>` run by root with `tally` in `env`'s hermetic
/// environment, as a provisioning script would; tally becomes the repository's owner itself.
/// Returns the output whatever the status.
pub fn init_as_root(env: &TestEnv, tally: &Path, repo: &Path, signers: &Path) -> Output {
    let mut cmd = Command::new(tally);
    env.hermetic(&mut cmd);
    cmd.arg("init")
        .arg(repo)
        .arg("--allowed-signers")
        .arg(signers)
        .output()
        .unwrap()
}
