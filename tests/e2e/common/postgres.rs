//! The ledger in PostgreSQL for every repository a test's [`TestEnv`] sets up (issue 15: the
//! ledger's end-to-end suite runs against both backends).
//!
//! `tests/e2e/ledger/postgres.rs` starts a [`tally_pgtest::Server`] and runs this test binary
//! again with [`LEDGER_PG`] set to [`LedgerPg::encode`] of it. In that child, `tally init`
//! through [`TestEnv`] creates a fresh database per repository and passes
//! `--ledger postgres://tally@127.0.0.1:<port>/<db>?sslmode=disable`, and every command the
//! environment runs (git, and through it the hooks; tally) gets `PGPASSWORD`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// The variable that puts the ledger of every repository in PostgreSQL:
/// `<bin dir>|<socket dir>|<port>|<password>`.
pub const LEDGER_PG: &str = "TALLY_TEST_LEDGER_PG";

/// A PostgreSQL server that another process started, as [`LEDGER_PG`] describes it.
#[derive(Debug, Clone)]
pub struct LedgerPg {
    /// Where `psql` is.
    bin: PathBuf,
    /// The server's unix socket directory; the superuser `postgres` is trusted there.
    socket: PathBuf,
    /// Its TCP port on 127.0.0.1.
    port: u16,
    /// The password of the login role `tally`.
    password: String,
}

impl LedgerPg {
    /// The server a test started.
    pub fn of(server: &tally_pgtest::Server) -> LedgerPg {
        LedgerPg {
            bin: server.bin_dir().to_owned(),
            socket: server.socket_dir().to_owned(),
            port: server.port(),
            password: server.password().to_owned(),
        }
    }

    /// The value of [`LEDGER_PG`] that describes `server`.
    pub fn encode(server: &tally_pgtest::Server) -> String {
        for part in [server.bin_dir(), server.socket_dir()] {
            assert!(!part.to_string_lossy().contains('|'), "{}", part.display());
        }
        format!(
            "{}|{}|{}|{}",
            server.bin_dir().display(),
            server.socket_dir().display(),
            server.port(),
            server.password()
        )
    }

    /// The server [`LEDGER_PG`] names, if it is set; panics if it is set but malformed (a test
    /// run that asked for PostgreSQL must not quietly fall back to SQLite).
    pub fn from_environment() -> Option<LedgerPg> {
        static PG: OnceLock<Option<LedgerPg>> = OnceLock::new();
        PG.get_or_init(|| {
            let value = std::env::var(LEDGER_PG).ok()?;
            let parts: Vec<&str> = value.splitn(4, '|').collect();
            let [bin, socket, port, password] = parts[..] else {
                panic!("{LEDGER_PG}={value:?} is not <bin dir>|<socket dir>|<port>|<password>");
            };
            Some(LedgerPg {
                bin: bin.into(),
                socket: socket.into(),
                port: port
                    .parse()
                    .unwrap_or_else(|e| panic!("{LEDGER_PG}: port {port:?}: {e}")),
                password: password.to_owned(),
            })
        })
        .clone()
    }

    /// The login role's password, for `PGPASSWORD`.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates a database of its own for one repository, owned by the login role, and
    /// returns the `--ledger` URL of it (no password: `PGPASSWORD` supplies it).
    pub fn create_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ledger_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", &format!("CREATE DATABASE {name} OWNER tally")]);
        run_ok(&mut cmd);
        format!(
            "postgres://tally@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }
}
