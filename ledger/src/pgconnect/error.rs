//! Why a PostgreSQL ledger connection failed, each message saying what to fix.

use std::error::Error as _;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use super::env::Resolved;
use super::tls::root_name;

/// Where a password may come from, for the messages that ask for one.
const PASSWORD_SOURCES: &str = "PGPASSWORD, ~/.pgpass, PGSERVICE or the [ledger] password_file";

/// Why a PostgreSQL ledger URL was refused or its connection failed. No message contains a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL's scheme is not `postgres://` or `postgresql://`.
    #[error(
        "ledger URL {url} is not a PostgreSQL URL; write postgres://[user@]host[:port]/dbname[?sslmode=...]"
    )]
    UrlScheme {
        /// The URL, redacted.
        url: String,
    },
    /// The URL cannot be parsed.
    #[error("ledger URL {url} is malformed: {reason}")]
    MalformedUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL carries a password.
    #[error(
        "the ledger URL must not contain a password (policy.toml is shared); remove it and use {PASSWORD_SOURCES} instead"
    )]
    PasswordInUrl,
    /// A parameter tally does not know.
    #[error(
        "unknown connection parameter `{name}` in {origin}; known: host, hostaddr, port, dbname, user, sslmode, sslrootcert, connect_timeout, application_name, service, target_session_attrs, options"
    )]
    UnknownParameter {
        /// The parameter's name.
        name: String,
        /// Where it was written.
        origin: String,
    },
    /// A parameter given twice in the URL.
    #[error("connection parameter `{name}` is given twice in the ledger URL; keep one")]
    DuplicateParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// Client certificates were asked for.
    #[error(
        "`{parameter}`: client certificate authentication is not supported yet; authenticate with a password ({PASSWORD_SOURCES}) or trust/peer"
    )]
    ClientCertificate {
        /// The parameter or variable that asked.
        parameter: String,
    },
    /// More than one host in the URL.
    #[error(
        "the ledger URL names more than one host; tally connects to one (point it at the primary, or at a proxy in front of the cluster)"
    )]
    MultipleHosts,
    /// A parameter's value is not valid.
    #[error("{name}={value:?} in {origin} is not valid: expected {expected}")]
    BadValue {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
        /// Where it was set.
        origin: String,
    },
    /// No user in the URL, the service, `PGUSER`, nor an OS user name.
    #[error(
        "no PostgreSQL user: put one in the ledger URL (postgres://USER@host/db) or set PGUSER"
    )]
    NoUser,
    /// The password file cannot be read.
    #[error("cannot read the [ledger] password_file {}: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The password file is accessible by group or others (or is not a regular file).
    #[error("the [ledger] password_file {} has mode {mode:04o}: it must be a regular file not accessible by group or others; run chmod 600 {}", path.display(), path.display())]
    PasswordFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The password file's first line is empty.
    #[error("the [ledger] password_file {} is empty; write the password on its first line", path.display())]
    PasswordFileEmpty {
        /// The file.
        path: PathBuf,
    },
    /// The pgpass file cannot be read.
    #[error("cannot read password file {}: {source}", path.display())]
    Pgpass {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The pgpass file is accessible by group or others (libpq would ignore it with a warning).
    #[error("password file {} has mode {mode:04o}: it must be a regular file not accessible by group or others; run chmod 600 {}", path.display(), path.display())]
    PgpassPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A service file cannot be read.
    #[error("cannot read service file {}: {source}", path.display())]
    ServiceFileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A service file has a syntax error.
    #[error("service file {}, line {line}: {reason}", path.display())]
    ServiceFileSyntax {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The service is in no service file.
    #[error(
        "PostgreSQL service `{service}` is not defined in {}; define [{service}] there, set PGSERVICEFILE, or fix the service name",
        searched_list(searched)
    )]
    ServiceNotFound {
        /// The service name.
        service: String,
        /// The files searched, in order.
        searched: Vec<PathBuf>,
    },
    /// `verify-ca` or `verify-full` without any root certificate.
    #[error("sslmode={sslmode} needs root certificates but {}; set sslrootcert=/path/to/ca.pem (or PGSSLROOTCERT), sslrootcert=system for the OS trust store, or a weaker sslmode", match looked { Some(path) => format!("{} does not exist", path.display()), None => "there is no home directory for ~/.postgresql/root.crt".to_owned() })]
    RootCertMissing {
        /// The mode.
        sslmode: &'static str,
        /// The default file sought.
        looked: Option<PathBuf>,
    },
    /// The root certificate file is unusable.
    #[error(
        "root certificate file {path} is unusable: {reason}; sslrootcert must be a PEM file of CA certificates"
    )]
    RootCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The OS trust store gave no certificate.
    #[error(
        "sslrootcert=system: no usable certificate in the system's trust store ({reason}); install ca-certificates or give a CA file"
    )]
    SystemRoots {
        /// Why.
        reason: String,
    },
    /// `sslrootcert=system` with a mode weaker than `verify-full` (libpq 16 refuses it too).
    #[error(
        "sslmode={sslmode} with sslrootcert=system is refused: anyone can get a publicly trusted certificate for a name they control; use sslmode=verify-full"
    )]
    SystemRootsNeedVerifyFull {
        /// The mode.
        sslmode: &'static str,
    },
    /// The server cannot be reached.
    #[error(
        "cannot reach PostgreSQL at {address}: {reason}; is the server running and reachable from this host?"
    )]
    Unreachable {
        /// Where.
        address: String,
        /// The system's reason.
        reason: String,
    },
    /// The connection did not complete in time.
    #[error(
        "cannot reach PostgreSQL at {address}: no answer within {seconds} s (connect_timeout); is the server running and reachable from this host?"
    )]
    Timeout {
        /// Where.
        address: String,
        /// The timeout.
        seconds: u64,
    },
    /// The server refused the password (SQLSTATE 28P01).
    #[error("password authentication failed for user {user} at {address} ({}); set the right password in {PASSWORD_SOURCES}", match password_source { Some(source) => format!("password from {source}"), None => "no password given".to_owned() })]
    AuthenticationFailed {
        /// The role.
        user: String,
        /// Where.
        address: String,
        /// Where the password came from, if any.
        password_source: Option<String>,
    },
    /// The server does not let the role in, whatever the password (SQLSTATE 28000: no
    /// pg_hba.conf line, a missing role, ...).
    #[error(
        "PostgreSQL at {address} does not let user {user} in: {detail}; check that the role exists and that the server's pg_hba.conf allows this host, user, database and sslmode"
    )]
    NotAuthorized {
        /// The role.
        user: String,
        /// Where.
        address: String,
        /// The server's message.
        detail: String,
    },
    /// The server asked for a password and none was found.
    #[error(
        "PostgreSQL at {address} asks for a password for user {user} and none was found; set {PASSWORD_SOURCES}"
    )]
    PasswordMissing {
        /// The role.
        user: String,
        /// Where.
        address: String,
    },
    /// The database does not exist (SQLSTATE 3D000).
    #[error(
        "database {dbname} does not exist at {address}; create it (createdb -O {user} {dbname}) or fix dbname in the ledger URL"
    )]
    DatabaseMissing {
        /// The database.
        dbname: String,
        /// The role, owner to be.
        user: String,
        /// Where.
        address: String,
    },
    /// The TLS handshake failed.
    #[error(
        "TLS with PostgreSQL at {address} failed (sslmode={sslmode}, root certificates: {roots}): {reason}; check the server's certificate, sslrootcert and sslmode"
    )]
    Tls {
        /// Where.
        address: String,
        /// The mode.
        sslmode: &'static str,
        /// The root certificates used.
        roots: String,
        /// The TLS library's reason.
        reason: String,
    },
    /// `target_session_attrs=read-write` and the server is a standby.
    #[error(
        "PostgreSQL at {address} is read-only (a standby?) and target_session_attrs=read-write; point the ledger URL at the primary"
    )]
    ReadOnly {
        /// Where.
        address: String,
    },
    /// The server refused the connection for another reason.
    #[error("PostgreSQL at {address} refused the connection: {detail} (SQLSTATE {code})")]
    Server {
        /// Where.
        address: String,
        /// The SQLSTATE.
        code: String,
        /// The server's message.
        detail: String,
    },
    /// Any other failure while connecting.
    #[error("connecting to PostgreSQL at {address} failed: {detail}")]
    Other {
        /// Where.
        address: String,
        /// The driver's message.
        detail: String,
    },
}

fn searched_list(searched: &[PathBuf]) -> String {
    let names: Vec<String> = searched
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    names.join(" nor ")
}

/// The error and its sources, joined with `: `.
fn chain(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// Maps a driver error to what an administrator can act on.
pub(super) fn from_postgres(resolved: &Resolved, error: postgres::Error) -> ConnectError {
    let address = resolved.address();
    if let Some(db) = error.as_db_error() {
        let detail = db.message().to_owned();
        return match db.code().code() {
            "28P01" => ConnectError::AuthenticationFailed {
                user: resolved.user.clone(),
                address,
                password_source: resolved.password_source.clone(),
            },
            "28000" => ConnectError::NotAuthorized {
                user: resolved.user.clone(),
                address,
                detail,
            },
            "3D000" => ConnectError::DatabaseMissing {
                dbname: resolved.dbname.clone(),
                user: resolved.user.clone(),
                address,
            },
            code => ConnectError::Server {
                address,
                code: code.to_owned(),
                detail,
            },
        };
    }
    let text = chain(&error);
    // tokio-postgres's error kinds are private; its messages name them.
    if let Some(reason) = text.strip_prefix("error performing TLS handshake: ") {
        ConnectError::Tls {
            address,
            sslmode: resolved.sslmode.as_str(),
            roots: root_name(&resolved.root_certs),
            reason: reason.to_owned(),
        }
    } else if text.contains("database does not allow writes") {
        ConnectError::ReadOnly { address }
    } else if let Some(reason) = text.strip_prefix("error connecting to server: ") {
        ConnectError::Unreachable {
            address,
            reason: reason.to_owned(),
        }
    } else if text.starts_with("timeout waiting for server") {
        ConnectError::Timeout {
            address,
            seconds: resolved.connect_timeout.as_secs(),
        }
    } else if text == "invalid configuration: password missing" {
        ConnectError::PasswordMissing {
            user: resolved.user.clone(),
            address,
        }
    } else {
        ConnectError::Other {
            address,
            detail: text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an administrator reads, pinned: a change to a message is a reviewed change.
    #[test]
    fn messages() {
        let cases: Vec<(ConnectError, &str)> = vec![
            (
                ConnectError::PasswordInUrl,
                "the ledger URL must not contain a password (policy.toml is shared); remove it and use PGPASSWORD, ~/.pgpass, PGSERVICE or the [ledger] password_file instead",
            ),
            (
                ConnectError::UnknownParameter {
                    name: "sslmod".to_owned(),
                    origin: "the ledger URL".to_owned(),
                },
                "unknown connection parameter `sslmod` in the ledger URL; known: host, hostaddr, port, dbname, user, sslmode, sslrootcert, connect_timeout, application_name, service, target_session_attrs, options",
            ),
            (
                ConnectError::PasswordFilePermissions {
                    path: PathBuf::from("/etc/tally/pg.pw"),
                    mode: 0o644,
                },
                "the [ledger] password_file /etc/tally/pg.pw has mode 0644: it must be a regular file not accessible by group or others; run chmod 600 /etc/tally/pg.pw",
            ),
            (
                ConnectError::PgpassPermissions {
                    path: PathBuf::from("/home/git/.pgpass"),
                    mode: 0o640,
                },
                "password file /home/git/.pgpass has mode 0640: it must be a regular file not accessible by group or others; run chmod 600 /home/git/.pgpass",
            ),
            (
                ConnectError::ServiceNotFound {
                    service: "ledger".to_owned(),
                    searched: vec![
                        PathBuf::from("/home/git/.pg_service.conf"),
                        PathBuf::from("/etc/postgresql-common/pg_service.conf"),
                    ],
                },
                "PostgreSQL service `ledger` is not defined in /home/git/.pg_service.conf nor /etc/postgresql-common/pg_service.conf; define [ledger] there, set PGSERVICEFILE, or fix the service name",
            ),
            (
                ConnectError::RootCertMissing {
                    sslmode: "verify-full",
                    looked: Some(PathBuf::from("/home/git/.postgresql/root.crt")),
                },
                "sslmode=verify-full needs root certificates but /home/git/.postgresql/root.crt does not exist; set sslrootcert=/path/to/ca.pem (or PGSSLROOTCERT), sslrootcert=system for the OS trust store, or a weaker sslmode",
            ),
            (
                ConnectError::SystemRootsNeedVerifyFull {
                    sslmode: "verify-ca",
                },
                "sslmode=verify-ca with sslrootcert=system is refused: anyone can get a publicly trusted certificate for a name they control; use sslmode=verify-full",
            ),
            (
                ConnectError::Timeout {
                    address: "db.example.com:5432".to_owned(),
                    seconds: 10,
                },
                "cannot reach PostgreSQL at db.example.com:5432: no answer within 10 s (connect_timeout); is the server running and reachable from this host?",
            ),
            (
                ConnectError::AuthenticationFailed {
                    user: "tally".to_owned(),
                    address: "db.example.com:5432".to_owned(),
                    password_source: Some("PGPASSWORD".to_owned()),
                },
                "password authentication failed for user tally at db.example.com:5432 (password from PGPASSWORD); set the right password in PGPASSWORD, ~/.pgpass, PGSERVICE or the [ledger] password_file",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }
}
