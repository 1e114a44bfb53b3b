//! Work clones, the commits made in them and their pushes.

use std::path::PathBuf;
use std::process::Command;

use super::*;

/// The one-document YAML most tests start the branch with.
pub const BASE_YAML: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n";

/// A non-bare clone where commits are made and pushed from.
pub struct Work<'e> {
    pub(super) env: &'e TestEnv,
    /// The work tree.
    pub path: PathBuf,
}

/// The outcome of `git push`.
#[derive(Debug)]
pub struct Push {
    /// git push's exit status.
    pub code: i32,
    /// Everything git push wrote to stderr (the `remote:` lines among it).
    pub stderr: String,
}

impl Push {
    /// The hook's lines, each starting `tally: `, with what the hook wrapped joined again: an
    /// indented line continues the one before, and a problem's `  fix: ` line(s) join it as
    /// `<problem>; fix: <fix>`.
    pub fn tally_lines(&self) -> Vec<String> {
        unwrapped(&self.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("remote: "))
            .filter(|l| l.starts_with("tally: "))
            .map(str::to_owned)
            .collect()
    }

    /// The problems of a refusal, one per kind (`<problem>; fix: <fix>`).
    pub fn violations(&self) -> Vec<String> {
        self.tally_lines()
            .into_iter()
            .filter(|l| l.contains("; fix: "))
            .collect()
    }

    /// The one hook line (wrapped lines joined) containing every one of `parts`; panics with
    /// the whole stderr if there is none.
    pub fn line_with(&self, parts: &[&str]) -> String {
        let lines = self.tally_lines();
        let found: Vec<&String> = lines
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .collect();
        assert!(
            !found.is_empty(),
            "no `remote: tally:` line contains all of {parts:?}; git push stderr:\n{}",
            self.stderr
        );
        found[0].clone()
    }

    /// Asserts the push was refused by the pre-receive hook.
    pub fn assert_refused(&self) {
        assert_eq!(self.code, 1, "push should fail; stderr:\n{}", self.stderr);
        assert!(
            self.stderr.contains("pre-receive hook declined"),
            "push should be declined by the hook; stderr:\n{}",
            self.stderr
        );
    }

    /// Asserts the push went through.
    pub fn assert_accepted(&self) {
        assert_eq!(
            self.code, 0,
            "push should succeed; stderr:\n{}",
            self.stderr
        );
    }
}

/// One change a commit makes.
#[derive(Debug, Clone)]
enum Change {
    File {
        path: String,
        bytes: Vec<u8>,
        executable: bool,
    },
    Symlink {
        path: String,
        target: String,
    },
    Gitlink {
        path: String,
        id: String,
    },
    Remove {
        path: String,
    },
}

/// How a commit is signed.
#[derive(Debug, Clone)]
enum Signing {
    /// By the clone's configured user (`commit.gpgsign=true`).
    Configured,
    /// As someone else (`-c user.* ... commit -S`).
    As(User),
    /// `--no-gpg-sign`.
    Unsigned,
}

/// Builds one commit in a work clone.
#[must_use = "call .create() to make the commit"]
pub struct CommitBuilder<'w, 'e> {
    work: &'w Work<'e>,
    message: String,
    changes: Vec<Change>,
    signing: Signing,
    date: Option<String>,
}

impl CommitBuilder<'_, '_> {
    /// Writes a regular file.
    pub fn file(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.changes.push(Change::File {
            path: path.to_owned(),
            bytes: contents.as_ref().to_vec(),
            executable: false,
        });
        self
    }

    /// Writes a file with mode 100755.
    pub fn executable(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.changes.push(Change::File {
            path: path.to_owned(),
            bytes: contents.as_ref().to_vec(),
            executable: true,
        });
        self
    }

    /// Adds a symbolic link (mode 120000).
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.changes.push(Change::Symlink {
            path: path.to_owned(),
            target: target.to_owned(),
        });
        self
    }

    /// Adds a submodule gitlink (mode 160000) pointing at commit `id`.
    pub fn gitlink(mut self, path: &str, id: &str) -> Self {
        self.changes.push(Change::Gitlink {
            path: path.to_owned(),
            id: id.to_owned(),
        });
        self
    }

    /// Removes a file.
    pub fn remove(mut self, path: &str) -> Self {
        self.changes.push(Change::Remove {
            path: path.to_owned(),
        });
        self
    }

    /// Signs as `user` (committer name and email, and signing key) instead of the clone's user.
    pub fn by(mut self, user: &User) -> Self {
        self.signing = Signing::As(user.clone());
        self
    }

    /// Makes an unsigned commit.
    pub fn unsigned(mut self) -> Self {
        self.signing = Signing::Unsigned;
        self
    }

    /// Sets author and committer date (raw git format, see [`date`]).
    pub fn date(mut self, date: String) -> Self {
        self.date = Some(date);
        self
    }

    /// Makes the commit on the current branch; returns its id.
    pub fn create(self) -> String {
        let w = self.work;
        for change in &self.changes {
            match change {
                Change::File {
                    path,
                    bytes,
                    executable,
                } => {
                    let full = w.path.join(path);
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, bytes).unwrap();
                    run_ok(w.git().args(["add", "--"]).arg(path));
                    let chmod = if *executable {
                        "--chmod=+x"
                    } else {
                        "--chmod=-x"
                    };
                    run_ok(w.git().args(["update-index", chmod, "--"]).arg(path));
                }
                Change::Symlink { path, target } => {
                    let full = w.path.join(path);
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::os::unix::fs::symlink(target, &full).unwrap();
                    run_ok(w.git().args(["add", "--"]).arg(path));
                }
                Change::Gitlink { path, id } => {
                    run_ok(w.git().args([
                        "update-index",
                        "--add",
                        "--cacheinfo",
                        &format!("160000,{id},{path}"),
                    ]));
                }
                Change::Remove { path } => {
                    run_ok(w.git().args(["rm", "-q", "--"]).arg(path));
                }
            }
        }
        let date = self.date.unwrap_or_else(|| w.env.next_date());
        let mut cmd = w.git();
        cmd.env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
        match &self.signing {
            Signing::Configured => {
                cmd.args(["commit", "-q", "-S"]);
            }
            Signing::As(user) => {
                cmd.arg("-c")
                    .arg(format!("user.name={}", user.name))
                    .arg("-c")
                    .arg(format!("user.email={}", user.email))
                    .arg("-c")
                    .arg(format!("user.signingkey={}", user.signing_key.display()))
                    .args(["commit", "-q", "-S"]);
            }
            Signing::Unsigned => {
                cmd.args(["commit", "-q", "--no-gpg-sign"]);
            }
        }
        run_ok(cmd.args(["--allow-empty", "-m", &self.message]));
        w.head()
    }
}

impl<'e> Work<'e> {
    /// `git` in the work tree.
    pub fn git(&self) -> Command {
        self.env.git(&self.path)
    }

    /// Runs git with `args`, asserting success; returns trimmed stdout.
    pub fn git_ok(&self, args: &[&str]) -> String {
        stdout_of(self.git().args(args))
    }

    /// `git config <key> <value>` in this clone.
    pub fn config(&self, key: &str, value: &str) {
        run_ok(self.git().args(["config", key, value]));
    }

    /// Starts a commit with `message`.
    pub fn commit<'w>(&'w self, message: &str) -> CommitBuilder<'w, 'e> {
        CommitBuilder {
            work: self,
            message: message.to_owned(),
            changes: Vec::new(),
            signing: Signing::Configured,
            date: None,
        }
    }

    /// `count` SSH-signed commits on top of HEAD, each with HEAD's tree (`git commit-tree -S`,
    /// one second apart from 2023-11-14), none checked out: a long history for benchmarks.
    /// Returns the last.
    pub fn signed_history(&self, count: usize) -> String {
        let tree = self.git_ok(&["rev-parse", "HEAD^{tree}"]);
        let mut parent = self.head();
        for i in 0..count {
            let date = date(1_700_000_000 + i as i64);
            parent = stdout_of(
                self.git()
                    .env("GIT_COMMITTER_DATE", &date)
                    .env("GIT_AUTHOR_DATE", &date)
                    .args([
                        "commit-tree",
                        "-S",
                        "-p",
                        &parent,
                        "-m",
                        &format!("c{i}"),
                        &tree,
                    ]),
            );
        }
        parent
    }

    /// `git rev-parse HEAD`.
    pub fn head(&self) -> String {
        self.git_ok(&["rev-parse", "HEAD"])
    }

    /// `git push <args>`; captures status and stderr.
    pub fn push(&self, args: &[&str]) -> Push {
        self.push_with_env(args, &[])
    }

    /// `git push <args>` with extra environment variables, which reach the hook (a local
    /// push runs receive-pack, and so the hook, as a child of `git push`).
    pub fn push_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Push {
        let mut cmd = self.git();
        cmd.arg("push").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        Push {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `git push origin HEAD:refs/heads/main`, asserting it was accepted.
    pub fn push_main_ok(&self) -> Push {
        let push = self.push(&["origin", "HEAD:refs/heads/main"]);
        push.assert_accepted();
        push
    }

    /// The raw bytes of a commit object (`git cat-file commit`).
    pub fn cat_commit(&self, id: &str) -> Vec<u8> {
        run_ok(self.git().args(["cat-file", "commit", id])).stdout
    }

    /// Writes a raw commit object (`git hash-object -t commit -w --stdin`); returns its id.
    pub fn hash_commit(&self, raw: &[u8]) -> String {
        self.hash_object(&["-t", "commit"], raw)
    }

    /// Writes a raw object of type `kind` without git's format checks
    /// (`git hash-object -t <kind> --literally -w --stdin`); returns its id.
    pub fn hash_literally(&self, kind: &str, raw: &[u8]) -> String {
        self.hash_object(&["-t", kind, "--literally"], raw)
    }

    /// `git hash-object <args> -w --stdin` of `raw`; returns the id.
    fn hash_object(&self, args: &[&str], raw: &[u8]) -> String {
        let out = run_with_stdin(
            self.git()
                .arg("hash-object")
                .args(args)
                .args(["-w", "--stdin"]),
            raw,
        );
        assert!(
            out.status.success(),
            "hash-object: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Writes a tree object from `(mode, name, id)` entries exactly as given: any mode, any
    /// name, any order (git's own tree writers would refuse or fix most hostile ones).
    pub fn raw_tree(&self, entries: &[(&str, &[u8], &str)]) -> String {
        let mut raw = Vec::new();
        for (mode, name, id) in entries {
            raw.extend_from_slice(mode.as_bytes());
            raw.push(b' ');
            raw.extend_from_slice(name);
            raw.push(0);
            raw.extend_from_slice(&hex_to_bytes(id));
        }
        self.hash_literally("tree", &raw)
    }

    /// Commits `tree` on top of HEAD, signed by the clone's user (`git commit-tree -S`), and
    /// moves the current branch to it; returns its id.
    pub fn commit_tree(&self, tree: &str, message: &str) -> String {
        let date = self.env.next_date();
        let id = stdout_of(
            self.git()
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .args(["commit-tree", "-S", "-p", "HEAD", "-m", message, tree]),
        );
        run_ok(self.git().args(["update-ref", "HEAD", &id]));
        id
    }

    /// `git reset --hard <id>`: moves the current branch and the work tree.
    pub fn reset_hard(&self, id: &str) {
        run_ok(self.git().args(["reset", "-q", "--hard", id]));
    }

    /// `git update-ref <refname> <id>`.
    pub fn update_ref(&self, refname: &str, id: &str) {
        run_ok(self.git().args(["update-ref", refname, id]));
    }
}

/// The bytes of a hex object id.
pub fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The first 10 hex digits of a commit id, as tally prints it.
pub fn short(id: &str) -> &str {
    &id[..10]
}

/// Hook output with what tally wrapped to fit a terminal joined again: a `tally:` line whose
/// text starts with spaces (after git's `remote: ` and GitLab's `GL-HOOK-ERR: `, if any)
/// continues the line before, and a `fix: ` continuation joins it as `; fix: `. git's padding
/// at the end of `remote:` lines is dropped.
pub fn unwrapped(stderr: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in stderr.lines().map(str::trim_end) {
        let text = line.strip_prefix("remote: ").unwrap_or(line);
        let text = text.strip_prefix("GL-HOOK-ERR: ").unwrap_or(text);
        // A hook's continuation is `tally:   ...`; the agent's, `tally: <command>:   ...`.
        let continued = text.strip_prefix("tally:  ").or_else(|| {
            let (_command, after) = text.strip_prefix("tally: ")?.split_once(": ")?;
            after.strip_prefix("  ")
        });
        match (continued, out.last_mut()) {
            (Some(rest), Some(last)) => {
                let rest = rest.trim_start();
                match rest.strip_prefix("fix: ") {
                    Some(fix) => last.push_str(&format!("; fix: {fix}")),
                    None => last.push_str(&format!(" {rest}")),
                }
            }
            _ => out.push(line.to_owned()),
        }
    }
    out.join("\n")
}
