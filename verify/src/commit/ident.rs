//! Author and committer lines, read the way git reads them.
//!
//! Git has two readers of an identity line and they disagree on broken input:
//! `ident.c: split_ident_line` (used by `git log`, `git show`, `%ce`) takes the email between
//! the *first* `<` and the first `>` after it, and the date after the *last* `>`; `fsck.c:
//! fsck_ident` refuses any line where that choice matters (`A <a@x> <b@y> 1 +0000`, `>` in the
//! name, no space before `<` ...). tally accepts only lines `fsck_ident` accepts, and then
//! takes name, email and date exactly where `split_ident_line` finds them: on such lines the
//! two readers agree, so what git displays is what tally checked, whether or not the server
//! sets `receive.fsckObjects`.
//!
//! `fsck_ident`'s grammar, for the bytes after `author `/`committer ` up to the LF:
//! `name SP '<' email '>' SP *(SP / TAB) date SP ('+' / '-') 4DIGIT`, where the name holds no
//! `<` or `>` and does not start with `<`, the email holds no `<`, the date is decimal without
//! leading zeros (a lone `0` is allowed) and fits a signed 64-bit `time_t`.

/// The committer (or author) line of a commit: name, email and the timestamp git records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name as git shows it: the bytes before `<` without trailing whitespace (space, TAB,
    /// CR: git's `isspace`), lossily decoded as UTF-8 for display.
    pub name: String,
    /// Email between `<` and `>`.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// The time zone offset as written (`+0100`).
    pub offset: String,
}

/// What is wrong with an identity line; each is one of `fsck_ident`'s refusals, except
/// [`IdentityDefect::EmailNotUtf8`], which is tally's own (principals are text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityDefect {
    /// The line starts with `<` (`fsck`: missingNameBeforeEmail).
    #[error("no name before the email")]
    NoName,
    /// No `<` on the line (`fsck`: missingEmail).
    #[error("no '<' opening the email")]
    NoEmail,
    /// A `>` before the email (`fsck`: badName).
    #[error("'>' in the name")]
    AngleInName,
    /// The `<` does not follow a space (`fsck`: missingSpaceBeforeEmail).
    #[error("no space between the name and '<'")]
    NoSpaceBeforeEmail,
    /// A `<` inside the email, or no `>` closing it (`fsck`: badEmail).
    #[error("the email is not closed by '>' or holds a second '<'")]
    BadEmail,
    /// The `>` is not followed by a space (`fsck`: missingSpaceBeforeDate).
    #[error("no space between '>' and the date")]
    NoSpaceBeforeDate,
    /// The date is not a decimal number followed by one space (`fsck`: badDate).
    #[error("the date is not a number followed by one space and the zone")]
    BadDate,
    /// The date has leading zeros (`fsck`: zeroPaddedDate).
    #[error("the date has leading zeros")]
    ZeroPaddedDate,
    /// The date does not fit a signed 64-bit time (`fsck`: badDateOverflow).
    #[error("the date is out of range")]
    DateOverflow,
    /// The zone is not `+hhmm`/`-hhmm` ending the line (`fsck`: badTimezone).
    #[error("the time zone is not +hhmm or -hhmm at the end of the line")]
    BadTimezone,
    /// The email is not UTF-8; principals in allowed_signers are text.
    #[error("the email is not UTF-8")]
    EmailNotUtf8,
}

/// Git's `isspace` (`ctype.c`): space, TAB, LF, CR; not VT or FF.
fn git_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Identity {
    /// Parses the value of an `author`/`committer` header (without the header name and the
    /// LF), refusing what `fsck_ident` refuses.
    pub fn parse(value: &[u8]) -> Result<Identity, IdentityDefect> {
        if value.first() == Some(&b'<') {
            return Err(IdentityDefect::NoName);
        }
        let open = match value.iter().position(|b| matches!(b, b'<' | b'>')) {
            None => return Err(IdentityDefect::NoEmail),
            Some(i) if value[i] == b'>' => return Err(IdentityDefect::AngleInName),
            Some(i) => i,
        };
        if open == 0 || value[open - 1] != b' ' {
            return Err(IdentityDefect::NoSpaceBeforeEmail);
        }
        let close = match value[open + 1..]
            .iter()
            .position(|b| matches!(b, b'<' | b'>'))
        {
            Some(i) if value[open + 1 + i] == b'>' => open + 1 + i,
            _ => return Err(IdentityDefect::BadEmail),
        };
        let rest = &value[close + 1..];
        let Some(rest) = rest.strip_prefix(b" ") else {
            return Err(IdentityDefect::NoSpaceBeforeDate);
        };
        let rest = &rest[rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t'))
            .unwrap_or(rest.len())..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(IdentityDefect::BadDate);
        }
        if rest[0] == b'0' && rest.get(1) != Some(&b' ') {
            return Err(IdentityDefect::ZeroPaddedDate);
        }
        let seconds = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse::<i64>().ok())
            .ok_or(IdentityDefect::DateOverflow)?;
        let Some(zone) = rest[digits..].strip_prefix(b" ") else {
            return Err(IdentityDefect::BadDate);
        };
        match zone {
            [b'+' | b'-', a, b, c, d] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) => {}
            _ => return Err(IdentityDefect::BadTimezone),
        }
        let name_end = value[..open]
            .iter()
            .rposition(|b| !git_isspace(*b))
            .map_or(0, |i| i + 1);
        let email = std::str::from_utf8(&value[open + 1..close])
            .map_err(|_| IdentityDefect::EmailNotUtf8)?;
        Ok(Identity {
            name: String::from_utf8_lossy(&value[..name_end]).into_owned(),
            email: email.to_owned(),
            seconds,
            offset: String::from_utf8_lossy(zone).into_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Identity, IdentityDefect> {
        Identity::parse(s.as_bytes())
    }

    #[test]
    fn well_formed_line_parses() {
        let i = parse("C O Mitter <c@example.com> 1700000100 -0230").unwrap();
        assert_eq!(i.name, "C O Mitter");
        assert_eq!(i.email, "c@example.com");
        assert_eq!(i.seconds, 1_700_000_100);
        assert_eq!(i.offset, "-0230");
    }

    /// Each of `fsck_ident`'s refusals, one line per defect.
    #[test]
    fn every_fsck_ident_refusal_is_refused() {
        use IdentityDefect::*;
        for (line, defect) in [
            ("<c@x> 1 +0000", NoName),
            ("C c@x 1 +0000", NoEmail),
            ("C > <c@x> 1 +0000", AngleInName),
            ("C<c@x> 1 +0000", NoSpaceBeforeEmail),
            ("C <c@x 1 +0000", BadEmail),
            ("C <c<@x> 1 +0000", BadEmail),
            ("C <c@x>1 +0000", NoSpaceBeforeDate),
            ("C <c@x> soon +0000", BadDate),
            ("C <c@x>", NoSpaceBeforeDate),
            ("C <c@x> ", BadDate),
            ("C <c@x> 1", BadDate),
            ("C <c@x> 1  +0000", BadTimezone),
            ("C <c@x> 0017 +0000", ZeroPaddedDate),
            ("C <c@x> 00 +0000", ZeroPaddedDate),
            ("C <c@x> 9223372036854775808 +0000", DateOverflow),
            ("C <c@x> 99999999999999999999999999 +0000", DateOverflow),
            ("C <c@x> 1 0000", BadTimezone),
            ("C <c@x> 1 +000", BadTimezone),
            ("C <c@x> 1 +00000", BadTimezone),
            ("C <c@x> 1 +00a0", BadTimezone),
            ("C <c@x> 1 +0000 ", BadTimezone),
        ] {
            assert_eq!(parse(line).unwrap_err(), defect, "{line:?}");
        }
    }

    /// `split_ident_line` takes the first `<...>`, the old reader took the last: the line
    /// git shows as `a@x` must never be checked as `b@y`.
    #[test]
    fn second_email_after_the_first_is_refused() {
        assert_eq!(
            parse("A <a@x> <b@y> 123 +0000").unwrap_err(),
            IdentityDefect::BadDate
        );
    }

    #[test]
    fn lone_zero_date_and_extra_blanks_before_the_date_are_allowed() {
        // fsck_ident allows spaces and TABs before the date; split_ident_line skips them.
        assert_eq!(parse("C <c@x> 0 +0000").unwrap().seconds, 0);
        assert_eq!(parse("C <c@x>  \t 17 +0000").unwrap().seconds, 17);
        assert_eq!(
            parse("C <c@x> 9223372036854775807 +0000").unwrap().seconds,
            i64::MAX
        );
    }

    #[test]
    fn name_is_trimmed_like_git_and_may_be_empty() {
        assert_eq!(parse("A \t\r <c@x> 1 +0000").unwrap().name, "A");
        assert_eq!(parse(" <c@x> 1 +0000").unwrap().name, "");
        assert_eq!(parse("  A <c@x> 1 +0000").unwrap().name, "  A");
        // VT is not a space to git.
        assert_eq!(parse("A\x0b <c@x> 1 +0000").unwrap().name, "A\x0b");
    }

    #[test]
    fn non_utf8_email_is_refused() {
        assert_eq!(
            Identity::parse(b"A <\xff@x> 1 +0000").unwrap_err(),
            IdentityDefect::EmailNotUtf8
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let line = b"C O <c@example.com> 1700000100 -0230";
        for end in 0..line.len() {
            let _ = Identity::parse(&line[..end]);
            let _ = Identity::parse(&line[end..]);
        }
    }
}
