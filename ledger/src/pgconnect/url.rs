//! The ledger URL: `postgres[ql]://[user@][host][:port][/dbname][?param=value&...]`, libpq's
//! URI form ("Connection URIs"), restricted to what tally supports.

use super::env::{self, Origin, Params};
use super::error::ConnectError;

/// The query parameters a ledger URL may carry.
pub(super) const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "service",
    "target_session_attrs",
    "options",
];

/// Parameters libpq knows that tally refuses by name, with why.
pub(super) fn refused(key: &str) -> Option<ConnectError> {
    match key {
        "password" => Some(ConnectError::PasswordInUrl),
        "sslcert" | "sslkey" | "sslpassword" => Some(ConnectError::ClientCertificate {
            parameter: key.to_owned(),
        }),
        _ => None,
    }
}

/// Parses and checks a ledger URL into its parameters.
pub(super) fn parse(url: &str) -> Result<Params, ConnectError> {
    let malformed = |reason: &'static str| ConnectError::MalformedUrl {
        url: redact(url),
        reason,
    };
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| ConnectError::UrlScheme { url: redact(url) })?;
    if rest.contains('#') {
        return Err(malformed("a fragment (#...) has no meaning here"));
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (before_query, None),
    };
    let mut params = Params::new();
    let mut set = |key: &'static str, value: String| -> Result<(), ConnectError> {
        env::check_value(key, &value, &Origin::Url)?;
        if params.insert(key, value).is_some() {
            return Err(ConnectError::DuplicateParameter { name: key });
        }
        Ok(())
    };
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            if userinfo.contains(':') {
                return Err(ConnectError::PasswordInUrl);
            }
            let user =
                decode(userinfo).ok_or_else(|| malformed("bad percent-encoding in the user"))?;
            if !user.is_empty() {
                set("user", user)?;
            }
            hostport
        }
        None => authority,
    };
    if hostport.contains(',') {
        return Err(ConnectError::MultipleHosts);
    }
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (v6, after) = bracketed
            .split_once(']')
            .ok_or_else(|| malformed("an IPv6 address lacks its closing ']'"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| malformed("unexpected text after the IPv6 address"))?,
            ),
        };
        (v6.to_owned(), port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        (
            decode(host).ok_or_else(|| malformed("bad percent-encoding in the host"))?,
            port,
        )
    };
    if !host.is_empty() {
        set("host", host)?;
    }
    if let Some(port) = port.filter(|port| !port.is_empty()) {
        set("port", port.to_owned())?;
    }
    if let Some(path) = path {
        let dbname =
            decode(path).ok_or_else(|| malformed("bad percent-encoding in the database name"))?;
        if !dbname.is_empty() {
            set("dbname", dbname)?;
        }
    }
    for pair in query.into_iter().flat_map(|query| query.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed("a query parameter lacks '=value'"))?;
        let key =
            decode(key).ok_or_else(|| malformed("bad percent-encoding in a parameter name"))?;
        if let Some(refusal) = refused(&key) {
            return Err(refusal);
        }
        let Some(known) = KNOWN.iter().find(|known| **known == key) else {
            return Err(ConnectError::UnknownParameter {
                name: key,
                origin: Origin::Url.to_string(),
            });
        };
        let value =
            decode(value).ok_or_else(|| malformed("bad percent-encoding in a parameter value"))?;
        set(known, value)?;
    }
    Ok(params)
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Returns the URL with any password (after `:` in the userinfo, or a `password=` parameter)
/// replaced by `***`.
pub(super) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hostport}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

/// The parameters of a URL as a sorted map, for tests.
#[cfg(test)]
pub(super) fn parsed(url: &str) -> Params {
    parse(url).expect("the test URL parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let params = parsed(
            "postgresql://tally@db.example.com:5433/ledger?sslmode=verify-full&sslrootcert=/etc/tally/ca.pem&connect_timeout=5&application_name=x&target_session_attrs=read-write",
        );
        assert_eq!(params["user"], "tally");
        assert_eq!(params["host"], "db.example.com");
        assert_eq!(params["port"], "5433");
        assert_eq!(params["dbname"], "ledger");
        assert_eq!(params["sslmode"], "verify-full");
        assert_eq!(params["sslrootcert"], "/etc/tally/ca.pem");
        assert_eq!(params["connect_timeout"], "5");
        assert_eq!(params["target_session_attrs"], "read-write");
    }

    #[test]
    fn empty_url_means_all_defaults() {
        assert!(parsed("postgres://").is_empty());
        assert!(parsed("postgres:///").is_empty());
    }

    #[test]
    fn unix_socket_host_percent_encoded_and_in_query() {
        assert_eq!(
            parsed("postgres://%2Fvar%2Frun%2Fpostgresql/ledger")["host"],
            "/var/run/postgresql"
        );
        assert_eq!(parsed("postgres:///ledger?host=/tmp/pg")["host"], "/tmp/pg");
    }

    #[test]
    fn ipv6_host_with_port() {
        let params = parsed("postgres://[::1]:6543/l");
        assert_eq!(params["host"], "::1");
        assert_eq!(params["port"], "6543");
    }

    #[test]
    fn password_in_userinfo_is_refused_without_echoing_it() {
        let error = parse("postgres://tally:hunter2@db/ledger").expect_err("refused");
        assert!(matches!(error, ConnectError::PasswordInUrl));
        let message = error.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("PGPASSWORD") && message.contains("password_file"),
            "{message}"
        );
    }

    #[test]
    fn empty_password_in_userinfo_is_refused() {
        assert!(matches!(
            parse("postgres://tally:@db/l"),
            Err(ConnectError::PasswordInUrl)
        ));
    }

    #[test]
    fn password_parameter_is_refused() {
        let error = parse("postgres://db/l?password=hunter2").expect_err("refused");
        assert!(matches!(error, ConnectError::PasswordInUrl));
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn unknown_parameter_is_refused_by_name() {
        let error = parse("postgres://db/l?sslmod=verify-full").expect_err("refused");
        assert!(error.to_string().contains("`sslmod`"), "{error}");
    }

    #[test]
    fn client_certificates_are_refused() {
        assert!(matches!(
            parse("postgres://db/l?sslcert=/x"),
            Err(ConnectError::ClientCertificate { .. })
        ));
    }

    #[test]
    fn bad_values_are_refused_at_parse_time() {
        for url in [
            "postgres://db/l?sslmode=verify_full",
            "postgres://db:54x2/l",
            "postgres://db/l?connect_timeout=0",
            "postgres://db/l?connect_timeout=soon",
            "postgres://db/l?target_session_attrs=standby",
            "postgres://db/l?hostaddr=db.example.com",
        ] {
            assert!(
                matches!(parse(url), Err(ConnectError::BadValue { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn other_schemes_are_refused() {
        for url in ["postgre://db/l", "mysql://db/l", "db/l", "sqlite:///x"] {
            assert!(
                matches!(parse(url), Err(ConnectError::UrlScheme { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn multiple_hosts_are_refused() {
        assert!(matches!(
            parse("postgres://a,b/l"),
            Err(ConnectError::MultipleHosts)
        ));
    }

    #[test]
    fn duplicate_parameter_is_refused() {
        assert!(matches!(
            parse("postgres://db/l?host=other"),
            Err(ConnectError::DuplicateParameter { name: "host" })
        ));
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for url in [
            "postgres://db/l%2",
            "postgres://db/l?sslmode",
            "postgres://[::1/l",
            "postgres://db/%ff",
        ] {
            assert!(
                matches!(parse(url), Err(ConnectError::MalformedUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:1/d?sslmode=require"),
            "postgres://u:***@h:1/d?sslmode=require"
        );
        assert_eq!(
            redact("postgres://h/d?password=secret&x=1"),
            "postgres://h/d?password=***&x=1"
        );
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
    }
}
