//! Quoting names into SQL and connection URLs.

/// Quotes `name` as an SQL identifier (`"a""b"`), so any database name is taken literally.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `text` as an SQL string literal (`standard_conforming_strings` is on since 9.1, so only
/// `'` needs doubling).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Percent-encodes `text` for a URL component, keeping RFC 3986's unreserved characters and any
/// in `keep`.
pub(crate) fn percent(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_with_a_quote_stays_one_identifier() {
        assert_eq!(
            ident(r#"x"; DROP DATABASE y; --"#),
            r#""x""; DROP DATABASE y; --""#
        );
    }

    #[test]
    fn literal_with_a_quote_stays_one_literal() {
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn percent_keeps_unreserved_and_encodes_the_rest() {
        assert_eq!(percent("a-b_c.d~e", b""), "a-b_c.d~e");
        assert_eq!(percent("a/b c?d&é", b"/"), "a/b%20c%3Fd%26%C3%A9");
    }
}
