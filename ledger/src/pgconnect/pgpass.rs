//! Password files: tally's `password_file` and libpq's pgpass (libpq "The Password File").

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::ConnectError;

/// The permission bits a secret file must not have: any access by group or others.
const GROUP_OR_WORLD: u32 = 0o077;

/// Reads tally's `password_file`: a regular file, not accessible by group or others, whose
/// first line (without its line ending) is the password.
pub(super) fn read_password_file(path: &Path) -> Result<String, ConnectError> {
    let read_error = |source: io::Error| ConnectError::PasswordFile {
        path: path.to_path_buf(),
        source,
    };
    let metadata = fs::metadata(path).map_err(read_error)?;
    let mode = metadata.permissions().mode();
    if !metadata.is_file() || mode & GROUP_OR_WORLD != 0 {
        return Err(ConnectError::PasswordFilePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let text = fs::read_to_string(path).map_err(read_error)?;
    let first = text.lines().next().unwrap_or("");
    let password = first.strip_suffix('\r').unwrap_or(first);
    if password.is_empty() {
        return Err(ConnectError::PasswordFileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(password.to_owned())
}

/// Looks up the password for a connection in a pgpass file; `None` when the file does not
/// exist or no line matches.
///
/// libpq ignores a pgpass file with group or world access (with a warning); tally refuses it.
pub(super) fn lookup(
    path: &Path,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Result<Option<String>, ConnectError> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConnectError::Pgpass {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mode = metadata.permissions().mode();
    if !metadata.is_file() || mode & GROUP_OR_WORLD != 0 {
        return Err(ConnectError::PgpassPermissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let text = fs::read_to_string(path).map_err(|source| ConnectError::Pgpass {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(find(&text, [host, port, dbname, user]))
}

/// The password of the first line whose four fields match, libpq's `passwordFromFile`.
fn find(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_line)
        .find(|(fields, _)| {
            fields
                .iter()
                .zip(wanted)
                .all(|(field, wanted)| field.matches(wanted))
        })
        .map(|(_, password)| password)
}

/// One of the four matching fields of a pgpass line.
#[derive(Debug, PartialEq, Eq)]
enum Field {
    /// `*` alone: matches anything (an escaped `\*` is a literal star).
    Any,
    /// A value, unescaped.
    Exactly(String),
}

impl Field {
    fn matches(&self, wanted: &str) -> bool {
        match self {
            Field::Any => true,
            Field::Exactly(value) => value == wanted,
        }
    }
}

/// Splits a line into four fields and the password; `None` for a line with fewer fields.
/// `\:` and `\\` (any `\x`) stand for the character itself, in every field.
fn parse_line(line: &str) -> Option<([Field; 4], String)> {
    let mut fields = Vec::with_capacity(4);
    let mut chars = line.chars();
    let mut current = String::new();
    let mut raw_star = true;
    let mut raw_len = 0;
    while fields.len() < 4 {
        let c = chars.next()?;
        match c {
            ':' => {
                fields.push(if raw_star && raw_len == 1 {
                    Field::Any
                } else {
                    Field::Exactly(std::mem::take(&mut current))
                });
                current.clear();
                raw_star = true;
                raw_len = 0;
            }
            '\\' => {
                current.push(chars.next()?);
                raw_star = false;
                raw_len += 2;
            }
            c => {
                raw_star &= c == '*';
                raw_len += 1;
                current.push(c);
            }
        }
    }
    let mut password = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => password.push(chars.next().unwrap_or('\\')),
            c => password.push(c),
        }
    }
    let fields: [Field; 4] = fields.try_into().ok()?;
    Some((fields, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn first_matching_line_wins() {
        let text =
            "# comment\nother:5432:ledger:tally:no\ndb:5432:ledger:tally:yes\n*:*:*:*:later\n";
        assert_eq!(
            find(text, ["db", "5432", "ledger", "tally"]).as_deref(),
            Some("yes")
        );
        assert_eq!(find(text, ["x", "1", "y", "z"]).as_deref(), Some("later"));
    }

    #[test]
    fn wildcards_match_any_value() {
        let text = "*:5432:*:tally:pw\n";
        assert_eq!(
            find(text, ["anything", "5432", "db", "tally"]).as_deref(),
            Some("pw")
        );
        assert_eq!(find(text, ["anything", "5433", "db", "tally"]), None);
    }

    #[test]
    fn escaped_star_is_literal() {
        let text = "\\*:*:*:*:pw\n";
        assert_eq!(find(text, ["db", "1", "d", "u"]), None);
        assert_eq!(find(text, ["*", "1", "d", "u"]).as_deref(), Some("pw"));
    }

    #[test]
    fn star_inside_a_value_is_literal() {
        assert_eq!(find("db*:*:*:*:pw\n", ["dbx", "1", "d", "u"]), None);
    }

    #[test]
    fn escaped_colons_and_backslashes() {
        let text = "fe80\\:\\:1:5432:led\\\\ger:tally:pa\\:ss\\\\word:tail\n";
        assert_eq!(
            find(text, ["fe80::1", "5432", "led\\ger", "tally"]).as_deref(),
            Some("pa:ss\\word:tail")
        );
    }

    #[test]
    fn unix_socket_path_host() {
        let text = "/tmp/pg:5432:*:*:sock\n";
        assert_eq!(
            find(text, ["/tmp/pg", "5432", "d", "u"]).as_deref(),
            Some("sock")
        );
    }

    #[test]
    fn short_lines_and_crlf() {
        let text = "db:5432:ledger\r\ndb:5432:ledger:tally:pw\r\n";
        assert_eq!(
            find(text, ["db", "5432", "ledger", "tally"]).as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn missing_pgpass_is_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let found = lookup(&dir.path().join("absent"), "h", "1", "d", "u").expect("no error");
        assert_eq!(found, None);
    }

    #[test]
    fn group_readable_pgpass_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pgpass");
        fs::write(&path, "*:*:*:*:pw\n").expect("write");
        set_mode(&path, 0o640);
        let error = lookup(&path, "h", "1", "d", "u").expect_err("refused");
        assert!(matches!(
            error,
            ConnectError::PgpassPermissions { mode: 0o640, .. }
        ));
        assert!(error.to_string().contains("chmod 600"), "{error}");
        set_mode(&path, 0o600);
        assert_eq!(
            lookup(&path, "h", "1", "d", "u").expect("reads").as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn password_file_first_line_without_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        fs::write(&path, "s3cret\nignored\n").expect("write");
        set_mode(&path, 0o600);
        assert_eq!(read_password_file(&path).expect("reads"), "s3cret");
        fs::write(&path, "crlf\r\n").expect("write");
        assert_eq!(read_password_file(&path).expect("reads"), "crlf");
    }

    #[test]
    fn world_readable_password_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        fs::write(&path, "s3cret\n").expect("write");
        for mode in [0o644, 0o604, 0o640, 0o660] {
            set_mode(&path, mode);
            let error = read_password_file(&path).expect_err("refused");
            assert!(
                matches!(error, ConnectError::PasswordFilePermissions { .. }),
                "{mode:o}"
            );
            let message = error.to_string();
            assert!(
                !message.contains("s3cret") && message.contains("chmod 600"),
                "{message}"
            );
        }
    }

    #[test]
    fn empty_and_missing_password_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        assert!(matches!(
            read_password_file(&path),
            Err(ConnectError::PasswordFile { .. })
        ));
        fs::write(&path, "\n").expect("write");
        set_mode(&path, 0o600);
        assert!(matches!(
            read_password_file(&path),
            Err(ConnectError::PasswordFileEmpty { .. })
        ));
    }
}
