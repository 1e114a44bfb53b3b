//! A hermetic environment for end-to-end tests of the `tally` binary with real `git` and
//! `ssh-keygen` (in the spirit of jj's `TestEnvironment`).
//!
//! Every test gets its own temporary directory holding `HOME`, a global git configuration
//! written here, the bare repository guarded by `tally init` and the work clones. Every
//! command runs with a cleared environment plus the few variables set here, so nothing from
//! the developer's git configuration, ssh agent or an enclosing hook (`GIT_DIR`,
//! `GIT_INDEX_FILE`, ...) leaks in. Commit dates are fixed and increase by one minute per
//! commit, so the same test makes the same commits every run.
//!
//! Keys are real OpenSSH keys made by `ssh-keygen`, generated once and shared by every test
//! (RSA generation alone would otherwise dominate the suite's run time).

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The `tally` binary under test.
pub const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// First commit date of every test (2023-11-14T22:13:20Z); each commit adds a minute.
const FIRST_DATE: i64 = 1_700_000_000;

/// A raw git date (`<unix seconds> +0000`), for back- and forward-dated commits.
pub fn date(unix_seconds: i64) -> String {
    format!("{unix_seconds} +0000")
}

/// 2019-06-01T00:00:00Z.
pub const JUNE_2019: i64 = 1_559_347_200;
/// 2099-06-01T00:00:00Z.
pub const JUNE_2099: i64 = 4_083_955_200;

// ---------------------------------------------------------------------------------------------
// Running commands

/// Runs a command to completion, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command with `input` on stdin; returns its output whatever the status.
///
/// A command may exit without reading its input (a hook that refuses its arguments); the
/// write then fails with a broken pipe, which is not the test's concern: its exit status
/// and output are.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

/// stdout of a successful command, trimmed.
pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(run_ok(cmd).stdout)
        .unwrap()
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The key types tally must accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ssh-ed25519
    Ed25519,
    /// ecdsa-sha2-nistp256
    EcdsaP256,
    /// ecdsa-sha2-nistp384
    EcdsaP384,
    /// ecdsa-sha2-nistp521
    EcdsaP521,
    /// ssh-rsa (signing as rsa-sha2-512, as ssh-keygen does)
    Rsa3072,
}

impl KeyType {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ed25519 => &["-t", "ed25519"],
            KeyType::EcdsaP256 => &["-t", "ecdsa", "-b", "256"],
            KeyType::EcdsaP384 => &["-t", "ecdsa", "-b", "384"],
            KeyType::EcdsaP521 => &["-t", "ecdsa", "-b", "521"],
            KeyType::Rsa3072 => &["-t", "rsa", "-b", "3072"],
        }
    }
}

/// A real OpenSSH key pair.
#[derive(Debug, Clone)]
pub struct Key {
    /// Unencrypted private key file (mode 0600, as ssh-keygen writes it).
    pub private: PathBuf,
    /// The `.pub` file.
    pub public: PathBuf,
    /// `keytype base64` (the public line without its comment).
    pub public_line: String,
    /// `SHA256:...`, as `ssh-keygen -l` and tally print it.
    pub fingerprint: String,
}

/// Every key the tests use. Who is trusted is decided per test by its allowed_signers.
#[derive(Debug)]
pub struct Keys {
    /// ed25519.
    pub alice: Key,
    /// ed25519.
    pub bob: Key,
    /// ed25519, never in any allowed_signers.
    pub mallory: Key,
    /// ECDSA P-256.
    pub p256: Key,
    /// ECDSA P-384.
    pub p384: Key,
    /// ECDSA P-521.
    pub p521: Key,
    /// RSA 3072.
    pub rsa: Key,
    /// ed25519 certificate authority.
    pub ca: Key,
    /// ed25519 certificate authority nobody trusts.
    pub rogue_ca: Key,
}

const KEY_SPECS: &[(&str, KeyType)] = &[
    ("alice", KeyType::Ed25519),
    ("bob", KeyType::Ed25519),
    ("mallory", KeyType::Ed25519),
    ("p256", KeyType::EcdsaP256),
    ("p384", KeyType::EcdsaP384),
    ("p521", KeyType::EcdsaP521),
    ("rsa", KeyType::Rsa3072),
    ("ca", KeyType::Ed25519),
    ("rogue_ca", KeyType::Ed25519),
];

/// The shared keys, generated on first use.
///
/// They live in a cache directory under cargo's per-target temporary directory: generated into
/// a fresh directory, then moved into place with one `rename`, which fails if another test
/// process got there first, so a reader never sees a half-written set. (A per-process temporary
/// directory in a `static` would never be dropped, leaving one directory behind per run.)
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("tally-e2e-keys-v1");
        if !KEY_SPECS
            .iter()
            .all(|(name, _)| dir.join(format!("{name}.pub")).exists())
        {
            let fresh = tempfile::Builder::new()
                .prefix("tally-e2e-keys-new")
                .tempdir_in(&root)
                .unwrap();
            let children: Vec<_> = KEY_SPECS
                .iter()
                .map(|(name, kind)| {
                    let mut cmd = Command::new("ssh-keygen");
                    cmd.args(["-q", "-N", "", "-C"])
                        .arg(format!("{name}@example.com"))
                        .args(kind.keygen_args())
                        .arg("-f")
                        .arg(fresh.path().join(name))
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    (cmd.spawn().expect("ssh-keygen is installed"), *name)
                })
                .collect();
            for (child, name) in children {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "ssh-keygen {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // Losing the race leaves the winner's complete set in place.
            let _ = std::fs::rename(fresh.path(), &dir);
        }
        let load = |name: &str| -> Key {
            let private = dir.join(name);
            let public = dir.join(format!("{name}.pub"));
            let text = std::fs::read_to_string(&public).unwrap();
            let mut parts = text.split_whitespace();
            let public_line = format!("{} {}", parts.next().unwrap(), parts.next().unwrap());
            let listing = stdout_of(
                Command::new("ssh-keygen")
                    .args(["-E", "sha256", "-l", "-f"])
                    .arg(&public),
            );
            let fingerprint = listing.split_whitespace().nth(1).unwrap().to_owned();
            assert!(fingerprint.starts_with("SHA256:"), "{listing}");
            Key {
                private,
                public,
                public_line,
                fingerprint,
            }
        };
        Keys {
            alice: load("alice"),
            bob: load("bob"),
            mallory: load("mallory"),
            p256: load("p256"),
            p384: load("p384"),
            p521: load("p521"),
            rsa: load("rsa"),
            ca: load("ca"),
            rogue_ca: load("rogue_ca"),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// allowed_signers

/// Builds an allowed_signers file: `principals [options] keytype base64` lines.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    lines: Vec<String>,
}

impl AllowedSigners {
    /// An empty file.
    pub fn new() -> AllowedSigners {
        AllowedSigners::default()
    }

    /// `principals keytype base64`.
    pub fn signer(self, principals: &str, key: &Key) -> AllowedSigners {
        self.line(&format!("{principals} {}", key.public_line))
    }

    /// `principals options keytype base64`, e.g. options `valid-before="20200101"`.
    pub fn signer_with(self, principals: &str, options: &str, key: &Key) -> AllowedSigners {
        self.line(&format!("{principals} {options} {}", key.public_line))
    }

    /// `principals cert-authority keytype base64`.
    pub fn authority(self, principals: &str, ca: &Key) -> AllowedSigners {
        self.signer_with(principals, "cert-authority", ca)
    }

    /// Any raw line (comments, malformed lines).
    pub fn line(mut self, line: &str) -> AllowedSigners {
        self.lines.push(line.to_owned());
        self
    }

    /// The file's text.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Users

/// Someone who commits: name, email and the key git signs with (`user.signingkey`).
#[derive(Debug, Clone)]
pub struct User {
    /// user.name
    pub name: String,
    /// user.email (the committer email tally matches against the principal)
    pub email: String,
    /// user.signingkey: a private key file, or a `-cert.pub` certificate next to one.
    pub signing_key: PathBuf,
}

impl User {
    /// A user signing with `key`.
    pub fn new(name: &str, email: &str, key: &Key) -> User {
        User {
            name: name.to_owned(),
            email: email.to_owned(),
            signing_key: key.private.clone(),
        }
    }

    /// The same person with another email (to impersonate someone else).
    pub fn with_email(&self, email: &str) -> User {
        User {
            email: email.to_owned(),
            ..self.clone()
        }
    }
}

/// Alice, signing with `keys().alice`.
pub fn alice() -> User {
    User::new("Alice", "alice@example.com", &keys().alice)
}

/// Bob, signing with `keys().bob`.
pub fn bob() -> User {
    User::new("Bob", "bob@example.com", &keys().bob)
}

/// Mallory, signing with a key nobody trusts.
pub fn mallory() -> User {
    User::new("Mallory", "mallory@example.com", &keys().mallory)
}

/// allowed_signers trusting Alice and Bob.
pub fn alice_and_bob() -> AllowedSigners {
    AllowedSigners::new()
        .signer("alice@example.com", &keys().alice)
        .signer("bob@example.com", &keys().bob)
}

// ---------------------------------------------------------------------------------------------
// The environment

/// The variables of a test's hermetic environment, `Send` so that threads can run commands.
#[derive(Debug, Clone)]
pub struct Hermetic {
    vars: Vec<(&'static str, std::ffi::OsString)>,
}

impl Hermetic {
    /// Applies the environment to a command: nothing inherited but these variables.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_clear();
        for (name, value) in &self.vars {
            cmd.env(name, value);
        }
        cmd.stdin(Stdio::null());
    }

    /// `git` in `cwd`.
    pub fn git(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new("git");
        self.apply(&mut cmd);
        cmd.current_dir(cwd);
        cmd
    }
}

/// One test's world: a temporary directory, a hermetic environment, a commit clock.
pub struct TestEnv {
    dir: tempfile::TempDir,
    tick: Cell<i64>,
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl TestEnv {
    /// A fresh environment with its own `HOME` and global git configuration.
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("tally-e2e")
            .tempdir()
            .unwrap();
        let env = TestEnv {
            dir,
            tick: Cell::new(0),
        };
        std::fs::create_dir(env.home()).unwrap();
        std::fs::write(
            env.gitconfig(),
            "[user]\n\tname = Nobody\n\temail = nobody@example.com\n\
             [init]\n\tdefaultBranch = main\n\
             [gpg]\n\tformat = ssh\n\
             [advice]\n\tdetachedHead = false\n\tskippedCherryPicks = false\n\
             [gc]\n\tauto = 0\n\
             [core]\n\tautocrlf = false\n\
             [pull]\n\trebase = false\n",
        )
        .unwrap();
        env
    }

    /// The test's temporary directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    fn gitconfig(&self) -> PathBuf {
        self.root().join("gitconfig")
    }

    /// Applies the hermetic environment to a command: nothing inherited but `PATH`.
    pub fn hermetic(&self, cmd: &mut Command) {
        self.hermetic_env().apply(cmd);
    }

    /// The hermetic environment as plain data that can cross threads (a [`TestEnv`] cannot:
    /// its commit clock is a `Cell`).
    pub fn hermetic_env(&self) -> Hermetic {
        Hermetic {
            vars: vec![
                ("PATH", std::env::var_os("PATH").unwrap_or_default()),
                ("HOME", self.home().into()),
                ("TMPDIR", std::env::temp_dir().into()),
                ("GIT_CONFIG_NOSYSTEM", "1".into()),
                ("GIT_CONFIG_GLOBAL", self.gitconfig().into()),
                ("GIT_TERMINAL_PROMPT", "0".into()),
                ("LC_ALL", "C".into()),
                ("TZ", "UTC".into()),
            ],
        }
    }

    /// `git` in `cwd`.
    pub fn git(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new("git");
        self.hermetic(&mut cmd);
        cmd.current_dir(cwd);
        cmd
    }

    /// The `tally` binary, run in the test's directory.
    pub fn tally(&self) -> Command {
        let mut cmd = Command::new(TALLY);
        self.hermetic(&mut cmd);
        cmd.current_dir(self.root());
        cmd
    }

    /// The next commit date: fixed, one minute after the previous one.
    pub fn next_date(&self) -> String {
        let tick = self.tick.get() + 1;
        self.tick.set(tick);
        date(FIRST_DATE + tick * 60)
    }

    /// Writes a file in the test directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.root().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// `git init --bare <name>.git`, without tally.
    pub fn bare_repo(&self, name: &str) -> PathBuf {
        let path = self.root().join(format!("{name}.git"));
        run_ok(
            self.git(self.root())
                .args(["init", "-q", "--bare"])
                .arg(&path),
        );
        path
    }

    /// `tally init` with these arguments; returns the output whatever the status.
    pub fn tally_init<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.tally().arg("init").args(args).output().unwrap()
    }

    /// A bare repository guarded by `tally init --allowed-signers <signers> [--branch b]...`.
    pub fn server(&self, signers: &AllowedSigners, branches: &[&str]) -> Server<'_> {
        let path = self.bare_repo("server");
        let signers_file = self.write("allowed_signers", &signers.text());
        let mut cmd = self.tally();
        cmd.arg("init")
            .arg(&path)
            .arg("--allowed-signers")
            .arg(&signers_file);
        for b in branches {
            cmd.args(["--branch", b]);
        }
        run_ok(&mut cmd);
        Server { env: self, path }
    }

    /// Wraps a bare repository set up by hand (e.g. with [`TestEnv::tally_init`]).
    pub fn server_at(&self, path: PathBuf) -> Server<'_> {
        Server { env: self, path }
    }

    /// A work clone of `server` whose git is configured to sign every commit as `user`.
    pub fn clone_as(&self, server: &Server<'_>, name: &str, user: &User) -> Work<'_> {
        let path = self.root().join(name);
        run_ok(
            self.git(self.root())
                .args(["clone", "-q"])
                .arg(&server.path)
                .arg(&path),
        );
        let work = Work { env: self, path };
        work.config("user.name", &user.name);
        work.config("user.email", &user.email);
        work.config("user.signingkey", &user.signing_key.display().to_string());
        work.config("commit.gpgsign", "true");
        work
    }

    /// An OpenSSH user certificate for `key`, issued by `ca` for `principals`
    /// (`ssh-keygen -s ca -I id -n principals [-V validity] key.pub`). Returns the certificate
    /// path, usable as `user.signingkey` (ssh-keygen finds the private key next to it).
    pub fn certify(
        &self,
        key: &Key,
        ca: &Key,
        principals: &str,
        validity: Option<&str>,
    ) -> PathBuf {
        let dir = tempfile::Builder::new()
            .prefix("cert")
            .tempdir_in(self.root())
            .unwrap()
            .keep();
        let private = dir.join("id");
        std::fs::copy(&key.private, &private).unwrap();
        std::fs::copy(&key.public, dir.join("id.pub")).unwrap();
        let mut cmd = Command::new("ssh-keygen");
        self.hermetic(&mut cmd);
        cmd.args(["-q", "-s"])
            .arg(&ca.private)
            .args(["-I", "test-cert", "-n", principals]);
        if let Some(v) = validity {
            cmd.args(["-V", v]);
        }
        run_ok(cmd.arg(dir.join("id.pub")));
        dir.join("id-cert.pub")
    }
}

// ---------------------------------------------------------------------------------------------
// The guarded bare repository

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
    env: &'e TestEnv,
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

// ---------------------------------------------------------------------------------------------
// Work clones and commits

/// The one-document YAML most tests start the branch with.
pub const BASE_YAML: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n";

/// A non-bare clone where commits are made and pushed from.
pub struct Work<'e> {
    env: &'e TestEnv,
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
    /// The lines the hook printed, without git's `remote: ` prefix, each starting `tally: `.
    pub fn tally_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("remote: "))
            .map(str::trim_end)
            .filter(|l| l.starts_with("tally: "))
            .collect()
    }

    /// The refusal lines that each describe one violation (`...; fix: ...`).
    pub fn violations(&self) -> Vec<&str> {
        self.tally_lines()
            .into_iter()
            .filter(|l| l.contains("; fix: "))
            .collect()
    }

    /// The one hook line containing every one of `parts`; panics with the whole stderr if
    /// there is none.
    pub fn line_with(&self, parts: &[&str]) -> &str {
        let lines = self.tally_lines();
        let found: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .collect();
        assert!(
            !found.is_empty(),
            "no `remote: tally:` line contains all of {parts:?}; git push stderr:\n{}",
            self.stderr
        );
        found[0]
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

// ---------------------------------------------------------------------------------------------
// Crafting raw commit objects

/// The byte range of the `gpgsig` header and its continuation lines in a raw commit.
pub fn signature_header_range(raw: &[u8]) -> std::ops::Range<usize> {
    let text = std::str::from_utf8(raw).unwrap();
    let start = text.find("\ngpgsig ").expect("commit has a gpgsig header") + 1;
    let mut end = start + text[start..].find('\n').unwrap() + 1;
    while text[end..].starts_with(' ') {
        end += text[end..].find('\n').unwrap() + 1;
    }
    start..end
}

/// Formats `name` and a multi-line value as a git header with continuation lines.
pub fn header(name: &str, value: &str) -> String {
    let mut out = String::new();
    for (i, line) in value.lines().enumerate() {
        out.push_str(if i == 0 { name } else { "" });
        out.push(' ');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The commit with a copy of its `gpgsig` header added as `gpgsig-sha256`: git, in a SHA-1
/// repository, ignores the second header when verifying, so the old signature still "verifies"
/// a commit with a new id.
pub fn with_second_signature_header(raw: &[u8]) -> Vec<u8> {
    let range = signature_header_range(raw);
    let block = std::str::from_utf8(&raw[range.clone()]).unwrap();
    let copy = block.replacen("gpgsig ", "gpgsig-sha256 ", 1);
    let mut out = raw[..range.end].to_vec();
    out.extend_from_slice(copy.as_bytes());
    out.extend_from_slice(&raw[range.end..]);
    out
}

/// A syntactically plausible OpenPGP signature armor block.
pub const PGP_ARMOR: &str = "-----BEGIN PGP SIGNATURE-----\n\n\
iHUEABYKAB0WIQTUJmy6JEoV6NmOGbStyvLuWzXcYQUCZVPWkAAKCRCtyvLuWzXc\n\
YXhCAQDc7mI2Vg6oXhMpG7Q5v5d9sWg2mVZkVh8m3pD0m1rE4QEA0n0x5r0Q2i7w\n\
b1sG8o0Z7m3yWm1c6h0l2m7G9gkX8wY=\n=Jd5B\n\
-----END PGP SIGNATURE-----\n";

/// The commit with its SSH signature replaced by an OpenPGP armor block.
pub fn with_pgp_signature(raw: &[u8]) -> Vec<u8> {
    let range = signature_header_range(raw);
    let mut out = raw[..range.start].to_vec();
    out.extend_from_slice(header("gpgsig", PGP_ARMOR).as_bytes());
    out.extend_from_slice(&raw[range.end..]);
    out
}

/// Waits until the next whole second of the wall clock. A checkpoint carries its signing time
/// in whole seconds and Ed25519 is deterministic, so two checkpoints of one ledger signed in the
/// same second are the same note; `tally ledger checkpoint` reads the real clock, so a test that
/// needs a different note has to let the second turn.
pub fn wait_for_the_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 10_000_000,
    ));
}

// ---------------------------------------------------------------------------------------------
// Clones of served repositories (tests/e2e/servers.rs)

impl TestEnv {
    /// A work clone of the repository served at `url` (ssh, http, any transport git speaks),
    /// configured to sign every commit as `user`. Each `config` pair (`core.sshCommand`, say)
    /// is set with `git clone --config`, so it takes effect for the clone itself and stays in
    /// the clone for every later fetch and push.
    pub fn clone_url_as(
        &self,
        url: &str,
        name: &str,
        user: &User,
        config: &[(&str, &str)],
    ) -> Work<'_> {
        let path = self.root().join(name);
        let mut cmd = self.git(self.root());
        cmd.args(["clone", "-q"]);
        for (key, value) in config {
            cmd.arg("--config").arg(format!("{key}={value}"));
        }
        run_ok(cmd.arg(url).arg(&path));
        let work = Work { env: self, path };
        work.config("user.name", &user.name);
        work.config("user.email", &user.email);
        work.config("user.signingkey", &user.signing_key.display().to_string());
        work.config("commit.gpgsign", "true");
        work
    }
}

// ---------------------------------------------------------------------------------------------
// Unix accounts (tests/e2e/owner.rs, tests/e2e/servers.rs)

/// Takes this process's turn at the account databases, until the guard is dropped.
///
/// useradd, userdel, groupadd and groupdel lock /etc/passwd and /etc/group and give up when
/// another process holds the lock, so the test threads of this binary that make or remove
/// accounts and groups take turns.
pub fn passwd_turn() -> std::sync::MutexGuard<'static, ()> {
    static PASSWD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PASSWD.lock().unwrap_or_else(|e| e.into_inner())
}
