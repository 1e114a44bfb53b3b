//! How tally connects to a PostgreSQL ledger, with libpq's conventions and rustls.
//!
//! policy.toml records only a URL without a password (`[ledger] url = "postgres://..."`) and
//! optionally a `password_file`. Everything else comes from where libpq users already keep it:
//! the `PG*` environment variables, `~/.pgpass` and the connection service file. The rules
//! follow libpq (PostgreSQL 15 "Connection Strings", "Environment Variables", "The Password
//! File", "The Connection Service File", "SSL Support"); where tally is stricter, the item says so:
//!
//! - Precedence of each parameter: the URL, then the service's section of `pg_service.conf`
//!   (libpq: "a service file setting overrides the corresponding environment variable, and in
//!   turn can be overridden by a value given directly in the connection string"), then the
//!   environment, then libpq's defaults.
//! - Password: the `password_file`, then a `password` in the service's section, then
//!   `PGPASSWORD`, then the pgpass file. None at all is fine (trust, peer or cert auth).
//! - A pgpass file with group or world access is refused (libpq warns and ignores it): tally
//!   fails closed, and an administrator is better served by "chmod 600 F" than by a password
//!   authentication failure later.
//! - TLS per `sslmode` (see [`tls`]); never over a unix socket. A failed TLS handshake under
//!   `prefer` is an error, not a retry in plain text (libpq retries): a handshake that fails
//!   means a certificate that does not verify, which should be seen.
//! - `connect_timeout` defaults to [`DEFAULT_CONNECT_TIMEOUT`] (libpq waits forever) and bounds
//!   the whole connection, startup and authentication included; `0` is refused.
//! - An `sslrootcert` named but missing is an error in every mode (libpq skips verification
//!   under `require`).
//! - One host per URL; client certificates (`sslcert`, `sslkey`) are not supported yet.
//!
//! The resolution is a pure function of an [`Environment`] (variables, home directory, OS user)
//! so it can be tested without touching the process environment.

mod env;
mod error;
mod pgpass;
mod service;
pub mod tls;
mod url;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

pub use env::{Environment, Resolved, RootCerts, SslMode};
pub use error::ConnectError;

/// How long a connection may take when neither the URL, the service nor `PGCONNECT_TIMEOUT`
/// says: a hook must fail closed quickly rather than hold a push open.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket directory libpq uses when no host is given (Debian's `DEFAULT_PGSOCKET_DIR`).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The port libpq uses when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// Where a PostgreSQL ledger lives: the URL as policy.toml records it (no password), and an
/// optional password file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `postgres://` or `postgresql://` URL, without a password.
    pub url: String,
    /// A file whose first line is the password (mode 0600 or stricter).
    pub password_file: Option<PathBuf>,
}

impl Target {
    /// Checks the URL without connecting.
    ///
    /// The scheme must be `postgres://` or `postgresql://`, the URL parseable, with no password
    /// in it (policy.toml is committed and readable by every pusher) and only query parameters
    /// tally knows, so a typo like `sslmod=verify-full` cannot silently weaken TLS.
    pub fn parse(url: &str, password_file: Option<PathBuf>) -> Result<Target, ConnectError> {
        url::parse(url)?;
        Ok(Target {
            url: url.to_owned(),
            password_file,
        })
    }

    /// Returns the URL safe to print.
    ///
    /// [`Target::parse`] refuses passwords, but a `Target` can be built by hand, so anything
    /// after `:` in the userinfo is redacted all the same.
    pub fn display(&self) -> String {
        url::redact(&self.url)
    }

    /// Connects: resolves libpq's environment and files, then connects with TLS per sslmode.
    ///
    /// `application_name` is the fallback (libpq's `fallback_application_name`): the URL, the
    /// service or `PGAPPNAME` win over it.
    pub fn connect(&self, application_name: &str) -> Result<postgres::Client, ConnectError> {
        self.connect_in(application_name, &Environment::process())
    }

    /// Connects as [`Target::connect`] does, with the environment given instead of the
    /// process's.
    pub fn connect_in(
        &self,
        application_name: &str,
        environment: &Environment<'_>,
    ) -> Result<postgres::Client, ConnectError> {
        let resolved = self.resolve(application_name, environment)?;
        connect_resolved(resolved)
    }

    /// Resolves every connection parameter (URL, service file, environment, password sources,
    /// defaults) without connecting.
    pub fn resolve(
        &self,
        application_name: &str,
        environment: &Environment<'_>,
    ) -> Result<Resolved, ConnectError> {
        let params = url::parse(&self.url)?;
        env::resolve(
            params,
            self.password_file.as_deref(),
            application_name,
            environment,
        )
    }
}

/// Connects with resolved parameters, within their connect timeout.
///
/// tokio-postgres bounds only the socket's connect with `connect_timeout`; a server that
/// accepts the connection and then stalls (in TLS or authentication) would hold the hook
/// forever. So the connection runs on its own thread and is abandoned at the deadline: the
/// thread ends with the process, which for a hook is soon.
fn connect_resolved(resolved: Resolved) -> Result<postgres::Client, ConnectError> {
    let tls = tls::connector(&resolved)?;
    let config = resolved.postgres_config();
    let timeout = resolved.connect_timeout;
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only when the deadline passed; nothing is left to tell.
        let _ = send.send(config.connect(tls));
    });
    match receive.recv_timeout(timeout) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(error::from_postgres(&resolved, error)),
        Err(_) => Err(ConnectError::Timeout {
            address: resolved.address(),
            seconds: timeout.as_secs(),
        }),
    }
}
