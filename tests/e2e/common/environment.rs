//! The hermetic environment every test runs in, and the work clones it makes.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::*;

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
    /// Where `tally init` puts the ledgers, when in PostgreSQL.
    postgres: Option<LedgerPg>,
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl TestEnv {
    /// A fresh environment with its own `HOME` and global git configuration.
    pub fn new() -> TestEnv {
        TestEnv::with_ledgers(LedgerPg::from_environment())
    }

    /// An environment whose `tally init`s put each ledger in a fresh database of `pg`.
    pub fn with_ledgers_in(pg: &tally_pgtest::Server) -> TestEnv {
        TestEnv::with_ledgers(Some(LedgerPg::of(pg)))
    }

    fn with_ledgers(postgres: Option<LedgerPg>) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("tally-e2e")
            .tempdir()
            .unwrap();
        let env = TestEnv {
            dir,
            tick: Cell::new(0),
            postgres,
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
        let mut hermetic = Hermetic {
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
        };
        // The hooks git runs connect to the ledger too, so git gets the password as well.
        if let Some(pg) = &self.postgres {
            hermetic.vars.push(("PGPASSWORD", pg.password().into()));
        }
        hermetic
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
        let mut cmd = self.tally();
        cmd.arg("init").args(args);
        self.ledger_in_postgres(&mut cmd);
        cmd.output().unwrap()
    }

    /// Adds `--ledger <a fresh database>` to a `tally init` command when the ledger suite runs
    /// against PostgreSQL ([`LEDGER_PG`], [`TestEnv::with_ledgers_in`]); does nothing
    /// otherwise.
    fn ledger_in_postgres(&self, init: &mut Command) {
        if let Some(pg) = &self.postgres {
            init.arg("--ledger").arg(pg.create_database());
        }
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
        self.ledger_in_postgres(&mut cmd);
        run_ok(&mut cmd);
        Server { env: self, path }
    }

    /// Wraps a bare repository set up by hand (e.g. with [`TestEnv::tally_init`]).
    pub fn server_at(&self, path: PathBuf) -> Server<'_> {
        Server { env: self, path }
    }

    /// A server whose history predates tally: three unsigned commits on main, then `tally init`
    /// with Alice and Bob as signers, which records their tip as main's baseline. Returns the
    /// server and the baseline commit.
    pub fn server_with_history_before_init(&self) -> (Server<'_>, String) {
        let path = self.bare_repo("server");
        let old = self.root().join("old");
        run_ok(
            self.git(self.root())
                .args(["clone", "-q"])
                .arg(&path)
                .arg(&old),
        );
        for i in 0..3 {
            std::fs::write(old.join(format!("{i}.yaml")), format!("i: {i}\n")).unwrap();
            run_ok(self.git(&old).args(["add", "."]));
            run_ok(self.git(&old).args([
                "commit",
                "-q",
                "--no-gpg-sign",
                "-m",
                &format!("old {i}"),
            ]));
        }
        run_ok(
            self.git(&old)
                .args(["push", "-q", "origin", "HEAD:refs/heads/main"]),
        );
        let baseline = stdout_of(self.git(&old).args(["rev-parse", "HEAD"]));
        let signers = self.write("allowed_signers", &alice_and_bob().text());
        let init = self.tally_init([
            path.as_os_str(),
            std::ffi::OsStr::new("--allowed-signers"),
            signers.as_os_str(),
        ]);
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        (self.server_at(path), baseline)
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
