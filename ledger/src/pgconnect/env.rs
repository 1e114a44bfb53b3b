//! Resolution of every connection parameter from the URL, the service file, the environment,
//! the password sources and libpq's defaults: a pure function of an [`Environment`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ConnectError;
use super::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT, DEFAULT_SOCKET_DIR, pgpass, service};

/// Connection parameters by libpq keyword.
pub(super) type Params = BTreeMap<&'static str, String>;

/// Where a parameter came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    Url,
    Service(PathBuf),
    Variable(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Url => f.write_str("the ledger URL"),
            Origin::Service(path) => write!(f, "service file {}", path.display()),
            Origin::Variable(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// The environment variables libpq reads for each parameter (libpq "Environment Variables").
const VARIABLES: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("options", "PGOPTIONS"),
];

/// What the connection is resolved against: environment variables, the home directory and the
/// OS user name. [`Environment::process`] is the real one; tests build their own.
pub struct Environment<'a> {
    /// Looks up an environment variable; `None` when unset.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The home directory (`~` in `~/.pgpass`, `~/.pg_service.conf`, `~/.postgresql/root.crt`).
    pub home: Option<PathBuf>,
    /// The OS user name: libpq's default user when neither the URL nor `PGUSER` names one.
    pub os_user: Option<String>,
}

impl Environment<'static> {
    /// The process's environment; home is `HOME`, else the password database's entry, as libpq.
    pub fn process() -> Environment<'static> {
        let entry = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten();
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .or_else(|| entry.as_ref().map(|entry| entry.dir.clone()));
        Environment {
            var: &|name| std::env::var(name).ok(),
            home,
            os_user: entry.map(|entry| entry.name),
        }
    }
}

impl Environment<'_> {
    /// Looks up a variable, treating an empty value as unset (as libpq does).
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|value| !value.is_empty())
    }
}

/// How TLS is used, libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// libpq tries plain text first; tally treats it as `Prefer` (tokio-postgres has no
    /// "plain first"), which is never weaker.
    Allow,
    /// TLS if the server offers it, else plain text (libpq's default).
    Prefer,
    /// TLS; the certificate is verified only if a root certificate file exists (libpq).
    Require,
    /// TLS with the chain verified against the root certificates, not the host name.
    VerifyCa,
    /// TLS with the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// A PEM file (`sslrootcert`, or `~/.postgresql/root.crt` when that exists).
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`).
    System,
    /// None: `sslrootcert` unset and no default file. `looked` is where the default was sought.
    None {
        /// The default file that does not exist (`None` without a home directory).
        looked: Option<PathBuf>,
    },
}

/// Every connection parameter, resolved. It holds the password, so it is not `Debug`.
pub struct Resolved {
    /// A host name, an IP address, or a unix-socket directory (starts with `/`).
    pub host: String,
    /// The IP address to connect to instead of resolving `host` (libpq `hostaddr`).
    pub hostaddr: Option<IpAddr>,
    /// The TCP port, or the unix socket's number.
    pub port: u16,
    /// The database name.
    pub dbname: String,
    /// The role name.
    pub user: String,
    pub(super) password: Option<String>,
    /// Where the password came from, for messages (never the password itself).
    pub password_source: Option<String>,
    /// The TLS mode.
    pub sslmode: SslMode,
    /// The root certificates for verification.
    pub root_certs: RootCerts,
    /// The bound on the whole connection.
    pub connect_timeout: Duration,
    /// `application_name` sent to the server.
    pub application_name: String,
    /// Whether only a read-write session is acceptable.
    pub read_write: bool,
    /// Server options (libpq `options`, e.g. `-c statement_timeout=5s`).
    pub options: Option<String>,
}

impl Resolved {
    /// Whether the host is a unix-socket directory.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// Where the server is, for messages: `host:port`, or the socket path.
    pub fn address(&self) -> String {
        if self.is_unix_socket() {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if let Some(addr) = self.hostaddr {
            format!("{}:{} (address {addr})", self.host, self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The driver's configuration (TLS mode as the wire protocol sees it).
    ///
    /// Beyond the connection itself, a dead peer is noticed: TCP keepalives after 30 s idle
    /// (then 3 probes 5 s apart), and `TCP_USER_TIMEOUT` drops the connection when sent data
    /// stays unacknowledged for the connect timeout, so a hook never waits on a vanished server.
    pub(super) fn postgres_config(&self) -> postgres::Config {
        use postgres::config::{SslMode as Wire, TargetSessionAttrs};
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .user(&self.user)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .tcp_user_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .ssl_mode(match self.sslmode {
                _ if self.is_unix_socket() => Wire::Disable,
                SslMode::Disable => Wire::Disable,
                SslMode::Allow | SslMode::Prefer => Wire::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Wire::Require,
            });
        if let Some(addr) = self.hostaddr {
            config.hostaddr(addr);
        }
        if let Some(password) = &self.password {
            config.password(password);
        }
        if let Some(options) = &self.options {
            config.options(options);
        }
        if self.read_write {
            config.target_session_attrs(TargetSessionAttrs::ReadWrite);
        }
        config
    }
}

/// Checks one parameter's value, wherever it came from.
pub(super) fn check_value(
    key: &'static str,
    value: &str,
    origin: &Origin,
) -> Result<(), ConnectError> {
    let bad = |expected: &'static str| ConnectError::BadValue {
        name: key,
        value: value.to_owned(),
        expected,
        origin: origin.to_string(),
    };
    match key {
        "port" if value.parse::<u16>().map_or(true, |port| port == 0) => {
            Err(bad("a port number from 1 to 65535"))
        }
        "hostaddr" if value.parse::<IpAddr>().is_err() => Err(bad("a numeric IP address")),
        "sslmode" if SslMode::parse(value).is_none() => Err(bad(
            "one of disable, allow, prefer, require, verify-ca, verify-full",
        )),
        "connect_timeout"
            if value
                .trim()
                .parse::<u64>()
                .map_or(true, |seconds| seconds == 0) =>
        {
            Err(bad(
                "a whole number of seconds, at least 1 (tally never waits forever)",
            ))
        }
        "target_session_attrs" if !matches!(value, "any" | "read-write") => {
            Err(bad("any or read-write"))
        }
        _ => Ok(()),
    }
}

/// Resolves the parameters of a URL against the service file, the environment, the password
/// sources and the defaults.
pub(super) fn resolve(
    url: Params,
    password_file: Option<&Path>,
    fallback_application_name: &str,
    environment: &Environment<'_>,
) -> Result<Resolved, ConnectError> {
    for variable in ["PGSSLCERT", "PGSSLKEY"] {
        if environment.get(variable).is_some() {
            return Err(ConnectError::ClientCertificate {
                parameter: variable.to_owned(),
            });
        }
    }
    let mut params = url;
    // The service: URL, then PGSERVICE (libpq parseServiceInfo). Its keys fill what the URL left.
    let service_name = params
        .remove("service")
        .or_else(|| environment.get("PGSERVICE"));
    let mut service_password = None;
    if let Some(name) = service_name {
        let found = service::find(&name, environment)?;
        for (key, value) in found.params {
            params.entry(key).or_insert(value);
        }
        service_password = found.password.map(|password| (password, found.path));
    }
    for (key, variable) in VARIABLES {
        if params.contains_key(key) {
            continue;
        }
        if let Some(value) = environment.get(variable) {
            check_value(key, &value, &Origin::Variable(variable))?;
            params.insert(key, value);
        }
    }
    defaults(
        params,
        password_file,
        service_password,
        fallback_application_name,
        environment,
    )
}

/// Applies libpq's defaults, then finds the password.
fn defaults(
    mut params: Params,
    password_file: Option<&Path>,
    service_password: Option<(String, PathBuf)>,
    fallback_application_name: &str,
    environment: &Environment<'_>,
) -> Result<Resolved, ConnectError> {
    let hostaddr = params
        .remove("hostaddr")
        .map(|addr| addr.parse::<IpAddr>().expect("checked by check_value"));
    // libpq: with hostaddr alone, the address is also the name (for TLS and pgpass).
    let host = params
        .remove("host")
        .or_else(|| hostaddr.map(|addr| addr.to_string()))
        .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_owned());
    let port = match params.remove("port") {
        Some(port) => port.parse().expect("checked by check_value"),
        None => DEFAULT_PORT,
    };
    let user = params
        .remove("user")
        .or_else(|| environment.os_user.clone())
        .ok_or(ConnectError::NoUser)?;
    let dbname = params.remove("dbname").unwrap_or_else(|| user.clone());
    let root_certs = root_certs(params.remove("sslrootcert"), environment);
    let sslmode = match params.remove("sslmode") {
        Some(mode) => SslMode::parse(&mode).expect("checked by check_value"),
        // libpq 16: sslrootcert=system makes verify-full the default.
        None if root_certs == RootCerts::System => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if root_certs == RootCerts::System && sslmode != SslMode::VerifyFull {
        return Err(ConnectError::SystemRootsNeedVerifyFull {
            sslmode: sslmode.as_str(),
        });
    }
    let connect_timeout = match params.remove("connect_timeout") {
        // libpq treats 1 as 2 seconds: one second is too short to be meant.
        Some(seconds) => {
            Duration::from_secs(seconds.trim().parse::<u64>().expect("checked").max(2))
        }
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let application_name = params
        .remove("application_name")
        .unwrap_or_else(|| fallback_application_name.to_owned());
    let read_write = params.remove("target_session_attrs").as_deref() == Some("read-write");
    let options = params.remove("options");
    let mut resolved = Resolved {
        host,
        hostaddr,
        port,
        dbname,
        user,
        password: None,
        password_source: None,
        sslmode,
        root_certs,
        connect_timeout,
        application_name,
        read_write,
        options,
    };
    let found = password(&resolved, password_file, service_password, environment)?;
    if let Some((password, source)) = found {
        resolved.password = Some(password);
        resolved.password_source = Some(source);
    }
    Ok(resolved)
}

/// `sslrootcert`: `system`, a file, or the default `~/.postgresql/root.crt` if it exists.
fn root_certs(sslrootcert: Option<String>, environment: &Environment<'_>) -> RootCerts {
    match sslrootcert {
        Some(value) if value == "system" => RootCerts::System,
        Some(path) => RootCerts::File(PathBuf::from(path)),
        None => {
            let default = environment
                .home
                .as_ref()
                .map(|home| home.join(".postgresql").join("root.crt"));
            match default {
                Some(path) if path.exists() => RootCerts::File(path),
                looked => RootCerts::None { looked },
            }
        }
    }
}

/// The password and where it came from: the password file, the service's `password`,
/// `PGPASSWORD`, then the pgpass file.
fn password(
    resolved: &Resolved,
    password_file: Option<&Path>,
    service_password: Option<(String, PathBuf)>,
    environment: &Environment<'_>,
) -> Result<Option<(String, String)>, ConnectError> {
    if let Some(path) = password_file {
        let password = pgpass::read_password_file(path)?;
        return Ok(Some((
            password,
            format!("password_file {}", path.display()),
        )));
    }
    if let Some((password, path)) = service_password {
        return Ok(Some((password, format!("service file {}", path.display()))));
    }
    if let Some(password) = environment.get("PGPASSWORD") {
        return Ok(Some((password, "PGPASSWORD".to_owned())));
    }
    let pgpass = match environment.get("PGPASSFILE") {
        Some(path) => Some(PathBuf::from(path)),
        None => environment.home.as_ref().map(|home| home.join(".pgpass")),
    };
    let Some(path) = pgpass else {
        return Ok(None);
    };
    // libpq: a unix socket in the default directory matches `localhost`.
    let host = if resolved.host == DEFAULT_SOCKET_DIR {
        "localhost"
    } else {
        resolved.host.as_str()
    };
    let port = resolved.port.to_string();
    let found = pgpass::lookup(&path, host, &port, &resolved.dbname, &resolved.user)?;
    Ok(found.map(|password| (password, format!("pgpass file {}", path.display()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgconnect::url;
    use std::collections::HashMap;

    fn resolve_with(
        url_text: &str,
        vars: &[(&'static str, &str)],
    ) -> Result<Resolved, ConnectError> {
        let vars: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let lookup = |name: &str| vars.get(name).cloned();
        let environment = Environment {
            var: &lookup,
            home: None,
            os_user: Some("osuser".to_owned()),
        };
        resolve(url::parse(url_text)?, None, "tally-test", &environment)
    }

    #[test]
    fn defaults_are_libpqs_on_debian() {
        let resolved = resolve_with("postgres://", &[]).expect("resolves");
        assert_eq!(resolved.host, "/var/run/postgresql");
        assert!(resolved.is_unix_socket());
        assert_eq!(resolved.port, 5432);
        assert_eq!(resolved.user, "osuser");
        assert_eq!(resolved.dbname, "osuser");
        assert_eq!(resolved.sslmode, SslMode::Prefer);
        assert_eq!(resolved.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(resolved.application_name, "tally-test");
        assert!(resolved.password.is_none());
        assert_eq!(resolved.root_certs, RootCerts::None { looked: None });
    }

    #[test]
    fn environment_fills_what_the_url_lacks() {
        let resolved = resolve_with(
            "postgres:///ledger",
            &[
                ("PGHOST", "db.example.com"),
                ("PGPORT", "6432"),
                ("PGDATABASE", "ignored"),
                ("PGUSER", "envuser"),
                ("PGSSLMODE", "verify-full"),
                ("PGCONNECT_TIMEOUT", "3"),
                ("PGAPPNAME", "from-env"),
                ("PGPASSWORD", "pw"),
                ("PGTARGETSESSIONATTRS", "read-write"),
            ],
        )
        .expect("resolves");
        assert_eq!(resolved.host, "db.example.com");
        assert_eq!(resolved.port, 6432);
        assert_eq!(resolved.dbname, "ledger");
        assert_eq!(resolved.user, "envuser");
        assert_eq!(resolved.sslmode, SslMode::VerifyFull);
        assert_eq!(resolved.connect_timeout, Duration::from_secs(3));
        assert_eq!(resolved.application_name, "from-env");
        assert_eq!(resolved.password.as_deref(), Some("pw"));
        assert_eq!(resolved.password_source.as_deref(), Some("PGPASSWORD"));
        assert!(resolved.read_write);
    }

    #[test]
    fn url_wins_over_environment() {
        let resolved = resolve_with(
            "postgres://urluser@urlhost:1234/urldb?sslmode=require&application_name=urlapp",
            &[
                ("PGHOST", "envhost"),
                ("PGPORT", "6432"),
                ("PGUSER", "envuser"),
                ("PGDATABASE", "envdb"),
                ("PGSSLMODE", "disable"),
                ("PGAPPNAME", "envapp"),
            ],
        )
        .expect("resolves");
        assert_eq!(
            (
                resolved.host.as_str(),
                resolved.port,
                resolved.user.as_str(),
                resolved.dbname.as_str()
            ),
            ("urlhost", 1234, "urluser", "urldb")
        );
        assert_eq!(resolved.sslmode, SslMode::Require);
        assert_eq!(resolved.application_name, "urlapp");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let resolved =
            resolve_with("postgres://", &[("PGHOST", ""), ("PGPASSWORD", "")]).expect("resolves");
        assert_eq!(resolved.host, DEFAULT_SOCKET_DIR);
        assert!(resolved.password.is_none());
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let error = resolve_with("postgres://h/d", &[("PGSSLMODE", "verify")])
            .err()
            .expect("refused");
        assert!(error.to_string().contains("PGSSLMODE"), "{error}");
    }

    #[test]
    fn one_second_timeout_is_two_as_in_libpq() {
        let resolved = resolve_with("postgres://h/d?connect_timeout=1", &[]).expect("resolves");
        assert_eq!(resolved.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn hostaddr_alone_is_also_the_host_name() {
        let resolved = resolve_with("postgres:///d?hostaddr=10.1.2.3", &[]).expect("resolves");
        assert_eq!(resolved.host, "10.1.2.3");
        assert_eq!(resolved.hostaddr, Some("10.1.2.3".parse().expect("ip")));
    }

    #[test]
    fn system_roots_default_to_verify_full_and_refuse_weaker_modes() {
        let resolved = resolve_with("postgres://h/d?sslrootcert=system", &[]).expect("resolves");
        assert_eq!(resolved.sslmode, SslMode::VerifyFull);
        assert_eq!(resolved.root_certs, RootCerts::System);
        let error = resolve_with("postgres://h/d?sslrootcert=system&sslmode=require", &[])
            .err()
            .expect("refused");
        assert!(matches!(
            error,
            ConnectError::SystemRootsNeedVerifyFull { sslmode: "require" }
        ));
    }

    #[test]
    fn client_certificate_variables_are_refused() {
        assert!(matches!(
            resolve_with("postgres://h/d", &[("PGSSLCERT", "/x.crt")]),
            Err(ConnectError::ClientCertificate { .. })
        ));
    }

    #[test]
    fn no_user_anywhere_is_an_error() {
        let lookup = |_: &str| None;
        let environment = Environment {
            var: &lookup,
            home: None,
            os_user: None,
        };
        let error = resolve(
            url::parse("postgres://h/d").expect("parses"),
            None,
            "t",
            &environment,
        )
        .err()
        .expect("refused");
        assert!(matches!(error, ConnectError::NoUser));
    }

    #[test]
    fn default_root_cert_is_used_when_it_exists() {
        let home = tempfile::tempdir().expect("tempdir");
        let lookup = |_: &str| None;
        let environment = Environment {
            var: &lookup,
            home: Some(home.path().to_path_buf()),
            os_user: Some("u".to_owned()),
        };
        let resolved = resolve(
            url::parse("postgres://h/d").expect("parses"),
            None,
            "t",
            &environment,
        )
        .expect("resolves");
        assert_eq!(
            resolved.root_certs,
            RootCerts::None {
                looked: Some(home.path().join(".postgresql/root.crt"))
            }
        );
        std::fs::create_dir(home.path().join(".postgresql")).expect("mkdir");
        std::fs::write(home.path().join(".postgresql/root.crt"), "x").expect("write");
        let resolved = resolve(
            url::parse("postgres://h/d").expect("parses"),
            None,
            "t",
            &environment,
        )
        .expect("resolves");
        assert_eq!(
            resolved.root_certs,
            RootCerts::File(home.path().join(".postgresql/root.crt"))
        );
    }
}
