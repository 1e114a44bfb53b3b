//! The connection service file (libpq "The Connection Service File"): INI sections named by
//! service, whose keys are connection parameters.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::env::{self, Environment, Origin, Params};
use super::error::ConnectError;
use super::url;

/// The system-wide directory of `pg_service.conf` when `PGSYSCONFDIR` is unset: Debian's
/// libpq is built with `--sysconfdir=/etc/postgresql-common`.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// A service's section.
pub(super) struct Service {
    /// The file it was found in.
    pub path: PathBuf,
    /// Its parameters (the first value of a repeated key, as libpq).
    pub params: Params,
    /// Its `password`, kept apart so it can take its place among the password sources.
    pub password: Option<String>,
}

/// Finds a service: in the user's file (`PGSERVICEFILE` or `~/.pg_service.conf`) first, then in
/// `PGSYSCONFDIR/pg_service.conf`, as libpq does (the user's definition wins whole).
pub(super) fn find(name: &str, environment: &Environment<'_>) -> Result<Service, ConnectError> {
    let user_file = (environment.var)("PGSERVICEFILE")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            environment
                .home
                .as_ref()
                .map(|home| home.join(".pg_service.conf"))
        });
    let sysconfdir = (environment.var)("PGSYSCONFDIR")
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_owned());
    let system_file = PathBuf::from(sysconfdir).join("pg_service.conf");
    let mut searched = Vec::new();
    for path in user_file.into_iter().chain([system_file]) {
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                searched.push(path);
                continue;
            }
            Err(source) => return Err(ConnectError::ServiceFileRead { path, source }),
        };
        if let Some(service) = parse(&text, name, &path)? {
            return Ok(service);
        }
        searched.push(path);
    }
    Err(ConnectError::ServiceNotFound {
        service: name.to_owned(),
        searched,
    })
}

/// Parses one file and returns the section `name`, if there is one. Every line is checked,
/// not only the section's, so a broken file is reported whatever service is asked for.
fn parse(text: &str, name: &str, path: &Path) -> Result<Option<Service>, ConnectError> {
    let syntax = |line: usize, reason: &'static str| ConnectError::ServiceFileSyntax {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let origin = Origin::Service(path.to_path_buf());
    let mut in_section = false;
    let mut found: Option<Service> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let section = section
                .strip_suffix(']')
                .ok_or_else(|| syntax(number, "a section name lacks its closing ']'"))?;
            in_section = section == name;
            if in_section && found.is_none() {
                found = Some(Service {
                    path: path.to_path_buf(),
                    params: Params::new(),
                    password: None,
                });
            }
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| syntax(number, "a line is neither [service] nor key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        if key == "service" {
            return Err(syntax(number, "a service cannot name another service"));
        }
        if key == "password" {
            if in_section {
                let service = found.as_mut().expect("set when the section began");
                service.password.get_or_insert_with(|| value.to_owned());
            }
            continue;
        }
        if let Some(refusal) = url::refused(key) {
            return Err(refusal);
        }
        let Some(known) = url::KNOWN.iter().find(|known| **known == key) else {
            return Err(ConnectError::UnknownParameter {
                name: key.to_owned(),
                origin: format!("{origin}, line {number}"),
            });
        };
        env::check_value(known, value, &origin)?;
        if in_section {
            let service = found.as_mut().expect("set when the section began");
            service
                .params
                .entry(known)
                .or_insert_with(|| value.to_owned());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgconnect::env::SslMode;
    use crate::pgconnect::{ConnectError, Environment, Target};
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    const FILE: &str = "# services\n[ledger]\nhost=svc.example.com\nport = 6543\ndbname=svcdb\nsslmode=verify-full\npassword=svcpw\n\n[other]\nhost=other\n";

    fn resolve(
        url: &str,
        vars: &[(&str, String)],
        home: &Path,
    ) -> Result<crate::pgconnect::Resolved, ConnectError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let lookup = |name: &str| vars.get(name).cloned();
        let environment = Environment {
            var: &lookup,
            home: Some(home.to_path_buf()),
            os_user: Some("osuser".to_owned()),
        };
        Target::parse(url, None)?.resolve("t", &environment)
    }

    #[test]
    fn parses_the_named_section_only() {
        let path = PathBuf::from("/x/pg_service.conf");
        let service = parse(FILE, "ledger", &path)
            .expect("parses")
            .expect("found");
        assert_eq!(service.params["host"], "svc.example.com");
        assert_eq!(service.params["port"], "6543");
        assert_eq!(service.password.as_deref(), Some("svcpw"));
        assert!(parse(FILE, "absent", &path).expect("parses").is_none());
    }

    #[test]
    fn unknown_key_is_refused_with_file_and_line() {
        let path = PathBuf::from("/x/pg_service.conf");
        let error = parse("[a]\nhots=x\n", "a", &path).err().expect("refused");
        let message = error.to_string();
        assert!(
            message.contains("`hots`") && message.contains("/x/pg_service.conf, line 2"),
            "{message}"
        );
    }

    #[test]
    fn syntax_errors_are_refused() {
        let path = PathBuf::from("/x/pg_service.conf");
        for text in ["[a\n", "[a]\njunk\n", "[a]\nservice=b\n"] {
            assert!(
                matches!(
                    parse(text, "a", &path),
                    Err(ConnectError::ServiceFileSyntax { .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn url_beats_service_beats_environment() {
        let home = tempfile::tempdir().expect("tempdir");
        fs::write(home.path().join(".pg_service.conf"), FILE).expect("write");
        let resolved = resolve(
            "postgres:///urldb?service=ledger",
            &[
                ("PGHOST", "envhost".to_owned()),
                ("PGUSER", "envuser".to_owned()),
                ("PGPASSWORD", "envpw".to_owned()),
                (
                    "PGSYSCONFDIR",
                    home.path().join("none").display().to_string(),
                ),
            ],
            home.path(),
        )
        .expect("resolves");
        assert_eq!(resolved.dbname, "urldb");
        assert_eq!(resolved.host, "svc.example.com");
        assert_eq!(resolved.port, 6543);
        assert_eq!(resolved.user, "envuser");
        assert_eq!(resolved.sslmode, SslMode::VerifyFull);
        assert_eq!(resolved.password.as_deref(), Some("svcpw"));
    }

    #[test]
    fn pgservice_variable_and_system_file() {
        let home = tempfile::tempdir().expect("tempdir");
        let sysconf = home.path().join("etc");
        fs::create_dir(&sysconf).expect("mkdir");
        fs::write(
            home.path().join(".pg_service.conf"),
            "[other]\nhost=user-file\n",
        )
        .expect("write");
        fs::write(sysconf.join("pg_service.conf"), FILE).expect("write");
        let resolved = resolve(
            "postgres://",
            &[
                ("PGSERVICE", "ledger".to_owned()),
                ("PGSYSCONFDIR", sysconf.display().to_string()),
            ],
            home.path(),
        )
        .expect("resolves");
        assert_eq!(resolved.host, "svc.example.com");
    }

    #[test]
    fn user_file_definition_wins_over_system_file() {
        let home = tempfile::tempdir().expect("tempdir");
        let sysconf = home.path().join("etc");
        fs::create_dir(&sysconf).expect("mkdir");
        let user_file = home.path().join("mine.conf");
        fs::write(&user_file, "[ledger]\nhost=user-file\n").expect("write");
        fs::write(sysconf.join("pg_service.conf"), FILE).expect("write");
        let resolved = resolve(
            "postgres://?service=ledger",
            &[
                ("PGSERVICEFILE", user_file.display().to_string()),
                ("PGSYSCONFDIR", sysconf.display().to_string()),
            ],
            home.path(),
        )
        .expect("resolves");
        assert_eq!(resolved.host, "user-file");
        // The user's section is taken whole: nothing is merged from the system file.
        assert_eq!(resolved.port, 5432);
    }

    #[test]
    fn unknown_service_names_the_files_searched() {
        let home = tempfile::tempdir().expect("tempdir");
        let sysconf = home.path().join("etc");
        let error = resolve(
            "postgres://?service=nope",
            &[("PGSYSCONFDIR", sysconf.display().to_string())],
            home.path(),
        )
        .err()
        .expect("refused");
        let message = error.to_string();
        assert!(message.contains("`nope`"), "{message}");
        assert!(
            message.contains(&home.path().join(".pg_service.conf").display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(&sysconf.join("pg_service.conf").display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn password_file_beats_service_password_beats_pgpassword_beats_pgpass() {
        let home = tempfile::tempdir().expect("tempdir");
        let pgpass = home.path().join(".pgpass");
        fs::write(&pgpass, "*:*:*:*:pgpass-pw\n").expect("write");
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).expect("chmod");
        let password_file = home.path().join("pw");
        fs::write(&password_file, "file-pw\n").expect("write");
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(home.path().join(".pg_service.conf"), FILE).expect("write");
        let vars: HashMap<&str, &str> = [("PGPASSWORD", "env-pw")].into_iter().collect();
        let lookup = |name: &str| vars.get(name).map(|v| (*v).to_owned());
        let environment = Environment {
            var: &lookup,
            home: Some(home.path().to_path_buf()),
            os_user: Some("u".to_owned()),
        };
        let password = |url: &str, file: Option<&Path>| {
            Target::parse(url, file.map(Path::to_path_buf))
                .expect("parses")
                .resolve("t", &environment)
                .expect("resolves")
                .password
        };
        assert_eq!(
            password("postgres://h/d?service=ledger", Some(&password_file)).as_deref(),
            Some("file-pw")
        );
        assert_eq!(
            password("postgres://h/d?service=ledger", None).as_deref(),
            Some("svcpw")
        );
        assert_eq!(password("postgres://h/d", None).as_deref(), Some("env-pw"));
        let no_env = |_: &str| None;
        let environment = Environment {
            var: &no_env,
            ..environment
        };
        let resolved = Target::parse("postgres://h/d", None)
            .expect("parses")
            .resolve("t", &environment)
            .expect("resolves");
        assert_eq!(resolved.password.as_deref(), Some("pgpass-pw"));
    }

    #[test]
    fn default_socket_matches_localhost_in_pgpass() {
        let home = tempfile::tempdir().expect("tempdir");
        let pgpass = home.path().join(".pgpass");
        fs::write(
            &pgpass,
            "localhost:5432:*:*:local-pw\n/tmp/pg:5432:*:*:tmp-pw\n",
        )
        .expect("write");
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).expect("chmod");
        let resolved = resolve("postgres:///d", &[], home.path()).expect("resolves");
        assert_eq!(resolved.password.as_deref(), Some("local-pw"));
        let resolved = resolve("postgres:///d?host=/tmp/pg", &[], home.path()).expect("resolves");
        assert_eq!(resolved.password.as_deref(), Some("tmp-pw"));
        let resolved = resolve("postgres://localhost/d", &[], home.path()).expect("resolves");
        assert_eq!(resolved.password.as_deref(), Some("local-pw"));
    }
}
