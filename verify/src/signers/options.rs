//! The options field: `cert-authority`, `namespaces=`, `valid-after=` and `valid-before=`
//! (`sshsig.c`, `sshsigopt_parse`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::SignersError;
use super::time::parse_time;

pub(super) const CERT_AUTHORITY: &str = "cert-authority";
pub(super) const NAMESPACES: &str = "namespaces";
const VALID_AFTER: &str = "valid-after";
const VALID_BEFORE: &str = "valid-before";

/// The options of one line.
#[derive(Default)]
pub(super) struct Options {
    pub(super) cert_authority: bool,
    pub(super) namespaces: Option<String>,
    pub(super) valid_after: Option<Timestamp>,
    pub(super) valid_before: Option<Timestamp>,
}

/// Parses the options field as `sshsigopt_parse` (`sshsig.c`) does.
///
/// Option names are matched case-insensitively (`opt_flag`, `opt_match`); empty items between
/// commas are skipped, as OpenSSH skips them, but a trailing comma is an error.
pub(super) fn parse_options(
    line: usize,
    opts: &str,
    tz: &TimeZone,
) -> Result<Options, SignersError> {
    let mut out = Options::default();
    let bytes = opts.as_bytes();
    let mut p = 0;
    while p < bytes.len() && bytes[p] != b' ' && bytes[p] != b'\t' {
        let here = &opts[p..];
        let matched = if starts_with_ignore_case(here, CERT_AUTHORITY) {
            // `opt_flag` matches a prefix; whatever follows must be a comma or the end.
            out.cert_authority = true;
            p += CERT_AUTHORITY.len();
            Some(CERT_AUTHORITY)
        } else if let Some(option) =
            [NAMESPACES, VALID_AFTER, VALID_BEFORE]
                .into_iter()
                .find(|name| {
                    starts_with_ignore_case(here, name)
                        && here.as_bytes().get(name.len()) == Some(&b'=')
                })
        {
            // As in `sshsigopt_parse`, a repeated option is refused before its value is read.
            let seen = match option {
                NAMESPACES => out.namespaces.is_some(),
                VALID_AFTER => out.valid_after.is_some(),
                _ => out.valid_before.is_some(),
            };
            if seen {
                return Err(SignersError::DuplicateOption { line, option });
            }
            p += option.len() + 1;
            let (value, used) = dequote(line, option, &opts[p..])?;
            p += used;
            match option {
                NAMESPACES => out.namespaces = Some(value),
                VALID_AFTER => out.valid_after = Some(parse_time(line, option, &value, tz)?),
                _ => out.valid_before = Some(parse_time(line, option, &value, tz)?),
            }
            Some(option)
        } else {
            None
        };
        if p == bytes.len() || bytes[p] == b' ' || bytes[p] == b'\t' {
            break;
        }
        if bytes[p] != b',' {
            let item = &opts[p..];
            let item = &item[..item.find(',').unwrap_or(item.len())];
            return Err(match matched {
                Some(option) => SignersError::GarbageAfterOption {
                    line,
                    option,
                    garbage: item.to_owned(),
                },
                None => unknown_option(line, item),
            });
        }
        p += 1;
        if p == bytes.len() {
            return Err(SignersError::TrailingComma { line });
        }
    }
    if let (Some(valid_after), Some(valid_before)) = (out.valid_after, out.valid_before)
        && valid_before <= valid_after
    {
        return Err(SignersError::EmptyValidity {
            line,
            valid_after,
            valid_before,
        });
    }
    Ok(out)
}

/// Builds the error for an option item that matches no option name.
fn unknown_option(line: usize, item: &str) -> SignersError {
    // `namespaces` without `=value` reads to OpenSSH as an unknown option; say what is missing.
    match [NAMESPACES, VALID_AFTER, VALID_BEFORE]
        .into_iter()
        .find(|name| item.eq_ignore_ascii_case(name))
    {
        Some(option) => SignersError::MissingValue { line, option },
        None => SignersError::UnknownOption {
            line,
            option: item.to_owned(),
        },
    }
}

/// Reads a double-quoted option value at the start of `s`, where `\"` stands for `"`
/// (`misc.c`, `opt_dequote`); returns the value and the number of bytes read.
fn dequote(line: usize, option: &'static str, s: &str) -> Result<(String, usize), SignersError> {
    let Some(body) = s.strip_prefix('"') else {
        return Err(SignersError::UnquotedValue { line, option });
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, 1 + i + 1)),
            '\\' if body[i + 1..].starts_with('"') => {
                value.push('"');
                chars.next();
            }
            c => value.push(c),
        }
    }
    Err(SignersError::UnterminatedQuote { line })
}

/// Returns whether `s` starts with `prefix`, ignoring ASCII case (`strncasecmp`).
pub(super) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}
