//! Throwaway PostgreSQL servers for tally's tests (the PostgreSQL ledger backend, issue 15).
//!
//! [`Server::start`] runs `initdb` in a temporary directory and starts `postgres` as a child of
//! the test, listening on a unix socket in that directory and on `127.0.0.1` at a free port.
//! Dropping the [`Server`] stops it and removes the directory. Tests reach it three ways:
//!
//! - over the socket as the superuser `postgres`, trusted without a password ([`Server::psql`],
//!   [`Server::socket_url`]);
//! - over TCP as the login role [`Server::user`] with [`Server::password`] (SCRAM-SHA-256),
//!   which owns the databases [`Server::create_database`] makes ([`Server::url`]);
//! - over TCP with TLS, when started with [`Options::tls`] ([`Server::ca_cert_path`]).
//!
//! The failures a store must survive are methods: [`Server::stop`], [`Server::kill9`] and
//! [`Server::start_again`] on the same data and port, [`Server::terminate_backends`], and
//! [`Server::set_read_only`].
//!
//! Who runs the server: `initdb` and `postgres` refuse to run as root, so when the tests run as
//! root both run as the existing `nobody` user (dropped in the child with
//! [`std::os::unix::process::CommandExt::uid`]); otherwise as the current user. Clients (`psql`,
//! the code under test) run as the test process.
//!
//! Where the programs come from: `PG_BIN` if set, else `pg_config --bindir`, else the highest
//! `/usr/lib/postgresql/*/bin`, else `initdb` on `PATH`. Without PostgreSQL, [`Server::start`]
//! panics saying to install the `postgresql` package: tests do not skip silently.
//!
//! Leftovers: the server is stopped by `Drop`, which also runs when a test panics (unwinding).
//! If the test process itself is killed (SIGKILL, or `panic = "abort"`) nothing runs, and the
//! postmaster and its directory under the temporary directory remain; the only remedy without
//! `unsafe` (`prctl(PR_SET_PDEATHSIG)` needs `pre_exec`) would be a watchdog process, which
//! this harness does not have.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bindir;
mod process;
mod quote;
mod tls;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::Owner;

/// The login role TCP connections use, owner of the databases [`Server::create_database`] makes.
const LOGIN_ROLE: &str = "tally";
/// The superuser `initdb` creates (`-U postgres`), trusted over the socket only.
const SUPERUSER: &str = "postgres";
/// How long a server may take to accept connections after it is started.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before the server is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// How many free ports a first start tries, each lost to another process in between.
const PORT_ATTEMPTS: usize = 5;
/// How often readiness and termination are polled.
const POLL: Duration = Duration::from_millis(20);
/// How many lines of the server log a panic message shows.
const LOG_TAIL_LINES: usize = 30;

/// How a server is started; `Options::default()` is a plain server without TLS.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Serves TLS on TCP (`ssl=on`) with a certificate for `localhost` and `127.0.0.1` from a
    /// throwaway CA, whose certificate is [`Server::ca_cert_path`].
    pub tls: bool,
    /// Accepts TCP connections only over TLS (`hostssl` lines in `pg_hba.conf`, no `host`
    /// lines), so a test can prove its connection is encrypted. Implies `tls`.
    pub require_tls: bool,
}

/// A PostgreSQL server of the test's own, stopped and deleted on drop.
#[derive(Debug)]
pub struct Server {
    /// Holds `data/`, `socket/`, `server.log` and `tls/`; removed on drop.
    dir: tempfile::TempDir,
    /// `<dir>/socket`, owned by the server's user.
    socket: PathBuf,
    bin: PathBuf,
    owner: Owner,
    port: u16,
    password: String,
    tls: Option<tls::Files>,
    /// The running postmaster, `None` while stopped.
    postmaster: Option<Child>,
}

/// Why a postmaster did not come up.
enum LaunchFailure {
    /// Another process took the port between choosing it and binding it.
    PortTaken,
    /// Anything else; the log says what.
    Other(String),
}

impl Server {
    /// Starts a plain server (no TLS); see [`Server::start_with`].
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    /// Starts a server: `initdb`, the login role with its password, then `postgres` on a free
    /// port, returning once it accepts connections.
    ///
    /// Panics, with the output or log that says why, if PostgreSQL is not installed or the
    /// server does not accept connections within 30 seconds.
    pub fn start_with(options: Options) -> Server {
        let bin = bindir::Sources::from_environment()
            .search()
            .unwrap_or_else(|missing| panic!("{}", missing.message()));
        let owner = Owner::for_this_process();
        let dir = tempfile::Builder::new()
            .prefix("tally-pgtest-")
            .tempdir()
            .expect("create the server's temporary directory");
        owner.give(dir.path());
        let socket = dir.path().join("socket");
        std::fs::create_dir(&socket).expect("create the socket directory");
        owner.give(&socket);
        let mut server = Server {
            dir,
            socket,
            bin,
            owner,
            port: 0,
            password: random_hex(16),
            tls: None,
            postmaster: None,
        };
        server.initdb(options.require_tls);
        if options.tls || options.require_tls {
            server.tls = Some(tls::generate(&server.dir.path().join("tls"), owner));
        }
        server.launch_on_a_free_port();
        server.psql(
            SUPERUSER,
            &format!(
                "CREATE ROLE {} LOGIN CREATEDB PASSWORD {}",
                quote::ident(LOGIN_ROLE),
                quote::literal(&server.password)
            ),
        );
        server
    }

    /// Returns the directory of the server's unix socket (`.s.PGSQL.<port>` inside it).
    pub fn socket_dir(&self) -> &Path {
        &self.socket
    }

    /// Returns the TCP port on `127.0.0.1`; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the login role's name, for TCP connections (`tally`).
    pub fn user(&self) -> &str {
        LOGIN_ROLE
    }

    /// Returns the login role's password (random for each server).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Returns the certificate of the CA that signed the server's certificate, if started with
    /// [`Options::tls`].
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|files| files.ca_cert.as_path())
    }

    /// Returns the directory of the PostgreSQL programs the server runs (`psql` is there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Returns the server's log file (its stderr, across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Returns the postmaster's pid, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.as_ref().map(Child::id)
    }

    /// Returns the pids of the postmaster and of every process it started (backends,
    /// checkpointer, ...), for tests that check none outlives the server; empty while stopped.
    pub fn server_pids(&self) -> Vec<u32> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        let mut pids = vec![pid];
        pids.extend(process::children(pid));
        pids
    }

    /// Returns the TCP URL of `db` for the login role, without the password:
    /// `postgres://tally@127.0.0.1:PORT/DB`. Pass [`Server::password`] separately (libpq's
    /// `PGPASSWORD`, `Config::password`), or use [`Server::url_with_password`].
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{LOGIN_ROLE}@127.0.0.1:{}/{}",
            self.port,
            quote::percent(db, b"")
        )
    }

    /// Returns the TCP URL of `db` with the login role's password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!(
            "postgres://{LOGIN_ROLE}:{}@127.0.0.1:{}/{}",
            quote::percent(&self.password, b""),
            self.port,
            quote::percent(db, b"")
        )
    }

    /// Returns the unix-socket URL of `db` for the superuser:
    /// `postgres://postgres@/DB?host=<socket dir>&port=PORT`.
    ///
    /// An empty URL host with a `host` parameter that starts with `/` means a socket directory
    /// to both libpq and the `postgres`/`tokio-postgres` crates (`UrlParser::host_param`), and
    /// `port` names the socket file (`.s.PGSQL.PORT`).
    pub fn socket_url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@/{}?host={}&port={}",
            quote::percent(db, b""),
            quote::percent(&self.socket_dir().to_string_lossy(), b"/"),
            self.port
        )
    }

    /// Creates database `db` owned by the login role and returns its TCP URL ([`Server::url`]).
    pub fn create_database(&self, db: &str) -> String {
        self.psql(
            SUPERUSER,
            &format!(
                "CREATE DATABASE {} OWNER {}",
                quote::ident(db),
                quote::ident(LOGIN_ROLE)
            ),
        );
        self.url(db)
    }

    /// Runs the SQL script `sql` in `db` as the superuser over the socket, with `psql -X -At -v
    /// ON_ERROR_STOP=1`, and returns its output without the final newline: one line per row,
    /// columns separated by `|`.
    ///
    /// Panics with psql's stderr if any statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER, "-d", db]);
        let output = run_with_input(hermetic(&mut command), sql);
        assert!(
            output.status.success(),
            "psql in {db} failed ({}):\n{}\nSQL: {sql}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let mut stdout = String::from_utf8(output.stdout).expect("psql prints UTF-8 (-E UTF8)");
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        stdout
    }

    /// Stops the server with a fast shutdown (SIGINT: clients are disconnected, open
    /// transactions rolled back, everything flushed) and waits for it. Does nothing if stopped.
    ///
    /// Panics, after killing it, if it does not stop within 10 seconds.
    pub fn stop(&mut self) {
        let Some(mut postmaster) = self.postmaster.take() else {
            return;
        };
        process::signal(process::pid_of(&postmaster), Signal::SIGINT);
        if !process::wait_for_exit(&mut postmaster, STOP_LIMIT) {
            process::kill_server(&mut postmaster, STOP_LIMIT);
            panic!(
                "postgres did not stop within {STOP_LIMIT:?} of a fast shutdown; killed\n{}",
                self.log_tail()
            );
        }
    }

    /// Starts the stopped (or killed) server again on the same data directory and port,
    /// returning once it accepts connections. After [`Server::kill9`] this runs crash recovery.
    ///
    /// Panics if it is running, or does not come up (for instance because another process took
    /// the port meanwhile).
    pub fn start_again(&mut self) {
        assert!(
            self.postmaster.is_none(),
            "start_again: the server is running (pid {:?})",
            self.pid()
        );
        match self.launch() {
            Ok(()) => {}
            Err(LaunchFailure::PortTaken) => panic!(
                "start_again: port {} was taken by another process meanwhile\n{}",
                self.port,
                self.log_tail()
            ),
            Err(LaunchFailure::Other(why)) => panic!("start_again: {why}\n{}", self.log_tail()),
        }
    }

    /// Stops the server ([`Server::stop`]) and starts it again ([`Server::start_again`]).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Crashes the server: SIGKILL to the postmaster and to every process it started, as a
    /// machine crash would (only what was fsynced, or is in the page cache, survives).
    /// [`Server::start_again`] then recovers from the WAL. Does nothing if stopped.
    ///
    /// Panics if a server process is still running 10 seconds later.
    pub fn kill9(&mut self) {
        let Some(mut postmaster) = self.postmaster.take() else {
            return;
        };
        let left = process::kill_server(&mut postmaster, STOP_LIMIT);
        assert!(
            left.is_empty(),
            "kill9: server processes {left:?} still run {STOP_LIMIT:?} after SIGKILL"
        );
    }

    /// Ends every other session connected to `db` (`pg_terminate_backend`) and waits until they
    /// are gone; returns how many there were. Their clients see the connection closed.
    pub fn terminate_backends(&self, db: &str) -> usize {
        // CASE fixes the order: the server never terminates the session asking.
        let terminated = self.psql(
            SUPERUSER,
            &format!(
                "SELECT pid FROM pg_stat_activity WHERE CASE WHEN datname = {} AND pid <> \
                 pg_backend_pid() THEN pg_terminate_backend(pid) ELSE false END",
                quote::literal(db)
            ),
        );
        let pids: Vec<&str> = terminated.lines().collect();
        if pids.is_empty() {
            return 0;
        }
        // pg_terminate_backend only signals; each backend exits on its own shortly after.
        let still = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({})",
            pids.join(",")
        );
        let deadline = Instant::now() + STOP_LIMIT;
        while self.psql(SUPERUSER, &still) != "0" {
            assert!(
                Instant::now() < deadline,
                "terminate_backends: sessions {pids:?} of {db} still there after {STOP_LIMIT:?}"
            );
            std::thread::sleep(POLL);
        }
        pids.len()
    }

    /// Makes `db` read-only for new transactions, or writable again, and ends its sessions so
    /// the next connections see it: `ALTER DATABASE db SET default_transaction_read_only`.
    ///
    /// This simulates the refusal a read-only replica gives (SQLSTATE 25006,
    /// `read_only_sql_transaction`), for a store's error handling; it is not a hot standby: a
    /// session that sets `default_transaction_read_only = off` itself can still write.
    pub fn set_read_only(&self, db: &str, read_only: bool) {
        self.psql(
            SUPERUSER,
            &format!(
                "ALTER DATABASE {} SET default_transaction_read_only = {}",
                quote::ident(db),
                if read_only { "on" } else { "off" }
            ),
        );
        self.terminate_backends(db);
    }

    /// Runs `initdb` as the server's user, then writes `pg_hba.conf`.
    fn initdb(&self, require_tls: bool) {
        let data = self.data_dir();
        let mut command = Command::new(self.bin.join("initdb"));
        command
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            // Nothing initdb writes needs to survive a power loss: the tests outlive no machine.
            .args(["--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions"]);
        let output = self
            .as_server_user(&mut command)
            .output()
            .unwrap_or_else(|err| panic!("run {}: {err}", self.bin.join("initdb").display()));
        let hint = match self.owner {
            Owner::CurrentUser => "",
            Owner::Dropped { .. } => {
                "\n(under root initdb runs as `nobody`, which must be able to reach the \
                 temporary directory: point TMPDIR at a directory such as /tmp)"
            }
        };
        assert!(
            output.status.success(),
            "initdb in {} failed ({}):\n{}{}{hint}",
            data.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Overwritten, not edited: the file keeps initdb's owner and mode.
        std::fs::write(data.join("pg_hba.conf"), hba(require_tls)).expect("write pg_hba.conf");
    }

    /// Launches the first postmaster, trying another free port when the chosen one was taken
    /// between choosing and binding.
    fn launch_on_a_free_port(&mut self) {
        for _ in 0..PORT_ATTEMPTS {
            self.port = free_port();
            match self.launch() {
                Ok(()) => return,
                Err(LaunchFailure::PortTaken) => continue,
                Err(LaunchFailure::Other(why)) => panic!("{why}\n{}", self.log_tail()),
            }
        }
        panic!(
            "postgres found each of {PORT_ATTEMPTS} free ports taken when it bound them\n{}",
            self.log_tail()
        );
    }

    /// Starts `postgres` on `self.port` and waits until it accepts connections.
    ///
    /// `postgres` runs directly as a child (not daemonized by `pg_ctl`), so its pid is ours
    /// to signal and wait for.
    fn launch(&mut self) -> Result<(), LaunchFailure> {
        let log_path = self.log_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the server log");
        let log_start = log.metadata().expect("stat the server log").len();
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(&self.socket)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            // The default, said out loud: the kill -9 tests rely on commits being durable.
            .args(["-c", "fsync=on"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log);
        if let Some(files) = &self.tls {
            command
                .args(["-c", "ssl=on", "-c"])
                .arg(setting("ssl_cert_file", &files.server_cert))
                .arg("-c")
                .arg(setting("ssl_key_file", &files.server_key));
        }
        let postmaster = self
            .as_server_user(&mut command)
            .spawn()
            .map_err(|err| LaunchFailure::Other(format!("run postgres: {err}")))?;
        self.postmaster = Some(postmaster);
        let failure = match self.wait_until_ready() {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if let Some(mut postmaster) = self.postmaster.take() {
            process::kill_server(&mut postmaster, STOP_LIMIT);
        }
        let log = std::fs::read(&log_path).unwrap_or_default();
        let this_launch = String::from_utf8_lossy(log.get(log_start as usize..).unwrap_or(&[]));
        if this_launch.contains("could not bind") && this_launch.contains("in use") {
            return Err(LaunchFailure::PortTaken);
        }
        Err(LaunchFailure::Other(failure))
    }

    /// Polls `pg_isready` on the socket until the server accepts connections, it exits, or 30
    /// seconds pass.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let postmaster = self.postmaster.as_mut().expect("launched");
            if let Ok(Some(status)) = postmaster.try_wait() {
                return Err(format!("postgres exited at start ({status})"));
            }
            let mut command = Command::new(self.bin.join("pg_isready"));
            command.arg("-q").arg("-h").arg(&self.socket).args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ]);
            let ready = hermetic(&mut command)
                .status()
                .map_err(|err| format!("run pg_isready: {err}"))?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "postgres did not accept connections within {READY_LIMIT:?}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Makes `command` run as the server's user, in the server's directory, without the
    /// caller's `PG*` variables.
    fn as_server_user<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        self.owner
            .apply(hermetic(command))
            .current_dir(self.dir.path())
    }

    /// Returns the data directory.
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Returns the last lines of the server log, for panic messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- last lines of {} ---\n{}",
            self.log_path().display(),
            tail.join("\n")
        )
    }
}

impl Drop for Server {
    /// Stops the server (fast shutdown, then SIGKILL to all its processes after 10 seconds) and
    /// removes its directory. Runs on unwinding too, so a failing test leaves no server behind.
    ///
    /// SIGINT rather than SIGTERM: SIGTERM is PostgreSQL's smart shutdown, which waits for
    /// every client to disconnect, so a test still holding a pool would always wait the full 10
    /// seconds.
    fn drop(&mut self) {
        if let Some(mut postmaster) = self.postmaster.take() {
            process::signal(process::pid_of(&postmaster), Signal::SIGINT);
            if !process::wait_for_exit(&mut postmaster, STOP_LIMIT) {
                process::kill_server(&mut postmaster, STOP_LIMIT);
            }
        }
    }
}

/// Returns `pg_hba.conf`: the superuser over the socket without a password, the login role
/// over TCP on 127.0.0.1 with SCRAM-SHA-256, and only over TLS if `require_tls`.
fn hba(require_tls: bool) -> String {
    let host = if require_tls { "hostssl" } else { "host" };
    format!(
        "# Written by tally-pgtest.\n\
         local all all trust\n\
         local replication all trust\n\
         {host} all all 127.0.0.1/32 scram-sha-256\n\
         {host} replication all 127.0.0.1/32 scram-sha-256\n"
    )
}

/// Returns a `name=value` server setting for `-c`, quoting nothing: `-c` takes one argument.
fn setting(name: &str, path: &Path) -> std::ffi::OsString {
    let mut setting = std::ffi::OsString::from(format!("{name}="));
    setting.push(path);
    setting
}

/// Removes the caller's `PG*` variables (`PGHOST`, `PGPORT`, `PGSSLMODE`, `PGDATA`, ...) from
/// `command`'s environment, so they cannot point it at another server or change how it connects.
fn hermetic(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` with `input` on its stdin, collecting its output. The input is written from
/// another thread, so a large output cannot block it.
fn run_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("run {:?}: {err}", command.get_program()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        // psql stops reading at the first error (ON_ERROR_STOP): a broken pipe is its exit,
        // reported by its status.
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().expect("wait for psql");
    writer.join().expect("the stdin writer does not panic");
    output
}

/// Returns a port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// Returns `bytes` random bytes from the kernel as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut random = vec![0; bytes];
    File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random))
        .expect("read /dev/urandom");
    random.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_requiring_tls_has_no_plain_host_line() {
        let tls_only = hba(true);
        assert!(tls_only.contains("hostssl all all 127.0.0.1/32 scram-sha-256"));
        assert!(!tls_only.lines().any(|line| line.starts_with("host ")));
        assert!(hba(false).contains("\nhost all all 127.0.0.1/32 scram-sha-256"));
    }

    #[test]
    fn random_hex_has_the_length_asked() {
        let hex = random_hex(16);
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(hex, random_hex(16));
    }
}
