//! One line of the file: blank and comment lines, the principals field, and where the options end
//! and the key begins (`sshsig.c`, `parse_principals_key_and_options`).

use jiff::tz::TimeZone;

use super::key::{key_type_kind, parse_key};
use super::options::{CERT_AUTHORITY, Options, parse_options, starts_with_ignore_case};
use super::{SignerEntry, SignersError};

/// The characters `strdelimw` (`misc.c`) splits the principals field at.
const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];
/// The characters that end the options and key fields (`sshkey_advance_past_options`,
/// `sshkey_read`, `skip_space`).
pub(super) const BLANK: &[char] = &[' ', '\t'];

/// Parses one line; `Ok(None)` for blank and comment lines.
///
/// A line that fails and starts with a key type is a public key pasted without its
/// principal (a `.pub` file given as allowed_signers): that is the error reported. A line
/// that parses is never changed by this: `ssh-ed25519 ssh-ed25519 AAAA...` names the
/// principal `ssh-ed25519`, as in OpenSSH.
pub(super) fn parse_line(
    line: usize,
    raw: &str,
    tz: &TimeZone,
) -> Result<Option<SignerEntry>, SignersError> {
    parse_fields(line, raw, tz).map_err(|e| {
        let first = raw.trim_start_matches(WHITESPACE).split(WHITESPACE).next();
        match e {
            SignersError::NulByte { .. } => e,
            _ if first.is_some_and(|w| key_type_kind(w).is_some()) => {
                SignersError::NoPrincipal { line }
            }
            _ => e,
        }
    })
}

/// Follows `parse_principals_key_and_options` (`sshsig.c`) step by step.
fn parse_fields(
    line: usize,
    raw: &str,
    tz: &TimeZone,
) -> Result<Option<SignerEntry>, SignersError> {
    if raw.contains('\0') {
        return Err(SignersError::NulByte { line });
    }
    // A CRLF line ending: OpenSSH treats the '\r' as whitespace at every place a line can
    // end (after the principals, and inside the base64, which b64_pton reads past).
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let text = raw.trim_start_matches(WHITESPACE);
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = split_principals(line, text)?;
    if principals.is_empty() {
        return Err(SignersError::EmptyPrincipals { line });
    }
    let rest = rest.ok_or(SignersError::MissingKey { line })?;
    if rest.is_empty() {
        return Err(SignersError::MissingKey { line });
    }

    // OpenSSH first tries to read a key right after the principals (`sshkey_read`); only if
    // that fails does it take the next word as options. A key type is never a valid option,
    // so deciding by the first word is the same.
    let first = rest.split(BLANK).next().unwrap_or(rest);
    let (options, key_text) = if key_type_kind(first).is_some() {
        (None, rest)
    } else {
        let end = options_end(line, rest)?;
        let options = &rest[..end];
        let key_text = rest[end..].trim_start_matches(BLANK);
        if key_text.is_empty() {
            return Err(if looks_like_base64_key(options) {
                SignersError::MissingKeyType { line }
            } else {
                SignersError::MissingKey { line }
            });
        }
        let keytype = key_text.split(BLANK).next().unwrap_or(key_text);
        if key_type_kind(keytype).is_none() {
            return Err(misplaced_key_type(line, options, keytype, tz));
        }
        (Some(options), key_text)
    };
    let opts = match options {
        Some(options) => parse_options(line, options, tz)?,
        None => Options::default(),
    };
    let (key, comment) = parse_key(line, key_text)?;
    Ok(Some(SignerEntry {
        line,
        principals,
        cert_authority: opts.cert_authority,
        namespaces: opts.namespaces,
        valid_after: opts.valid_after,
        valid_before: opts.valid_before,
        key,
        comment,
    }))
}

/// Splits off the principals field as `strdelimw` (`misc.c`) does.
///
/// The field ends at whitespace, or is the text between a pair of double quotes, which may
/// start mid-word (`a"b c"` is `ab c`) and ends the field at the closing quote. Returns the
/// rest of the line after any whitespace, or `None` when nothing delimits the field.
fn split_principals(line: usize, text: &str) -> Result<(String, Option<&str>), SignersError> {
    let Some(at) = text.find(|c| WHITESPACE.contains(&c) || c == '"') else {
        return Ok((text.to_owned(), None));
    };
    if text[at..].starts_with('"') {
        let quoted = &text[at + 1..];
        let close = quoted
            .find('"')
            .ok_or(SignersError::UnterminatedQuote { line })?;
        let principals = format!("{}{}", &text[..at], &quoted[..close]);
        let rest = quoted[close + 1..].trim_start_matches(WHITESPACE);
        return Ok((principals, Some(rest)));
    }
    let rest = text[at + 1..].trim_start_matches(WHITESPACE);
    Ok((text[..at].to_owned(), Some(rest)))
}

/// Returns the byte length of the options field: up to the first blank outside double quotes
/// (`authfile.c`, `sshkey_advance_past_options`), or the whole of `rest`.
fn options_end(line: usize, rest: &str) -> Result<usize, SignersError> {
    let bytes = rest.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() && (quoted || (bytes[i] != b' ' && bytes[i] != b'\t')) {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
            i += 1; // skip both
        } else if bytes[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    if quoted {
        return Err(SignersError::UnterminatedQuote { line });
    }
    Ok(i)
}

/// Builds the most helpful error for `principals word1 word2...` when neither word is a key
/// type, so OpenSSH finds no key on the line.
///
/// If `word1` reads as options, a mistake in them is the likelier cause (`cert-authority,
/// namespaces="git" ssh-ed25519 ...` has a stray space) and is reported first; otherwise the
/// key type is what is wrong, and `word1` is taken for it unless it reads as options.
fn misplaced_key_type(line: usize, word1: &str, word2: &str, tz: &TimeZone) -> SignersError {
    if looks_like_base64_key(word1) {
        return SignersError::MissingKeyType { line };
    }
    let looks_like_options =
        word1.contains(['=', ',', '"']) || starts_with_ignore_case(word1, CERT_AUTHORITY);
    if !looks_like_options {
        return SignersError::UnknownKeyType {
            line,
            keytype: word1.to_owned(),
        };
    }
    if let Err(error) = parse_options(line, word1, tz) {
        return error;
    }
    if looks_like_base64_key(word2) {
        SignersError::MissingKeyType { line }
    } else {
        SignersError::UnknownKeyType {
            line,
            keytype: word2.to_owned(),
        }
    }
}

/// Returns whether `word` looks like an SSH wire-format key in base64: its 4-byte length prefix
/// is small, so it starts with `AAAA`.
fn looks_like_base64_key(word: &str) -> bool {
    word.starts_with("AAAA")
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}
