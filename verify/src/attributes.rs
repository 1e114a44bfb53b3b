//! The `.gitattributes` rule: no line may make git check out bytes other than the signed ones.
//!
//! git applies some attributes between the object store and the work tree (gitattributes(5),
//! "Effects"): `filter` runs a driver (git-lfs turns a small, valid-YAML pointer into content
//! fetched from an LFS server that no signature covers), `ident` expands `$Id$`, `text`, `crlf`
//! and `eol` convert line endings, `working-tree-encoding` re-encodes, and `export-subst` and
//! `export-ignore` rewrite or drop files in `git archive`. A signed tree with such a line deploys
//! something else than what was verified, so every line that sets one is refused.
//!
//! Lines are read as git's `attr.c` reads them (`read_attr_from_buf`, `parse_attr_line`,
//! `parse_attr`): split at `\n`, leading blanks (` \t\r\n`) skipped, `#` comments and blank
//! lines ignored, the first token the pattern (C-quoted when it starts with `"` and the quote
//! parses, `unquote_c_style`), the rest attribute states separated by blanks: `attr` sets,
//! `-attr` unsets, `!attr` makes unspecified, `attr=value` gives a value. A macro definition
//! (`[attr]name states...`) has the same shape, so its states are judged too: every macro the
//! repository defines is then harmless, and so is every use of one. git's only built-in macro,
//! `binary`, is `-diff -merge -text`.
//!
//! Where this reading is more cautious than git's, it refuses more, never less: git drops a
//! whole line with an invalid attribute name, a line of 2048 bytes or more, a macro outside
//! the top-level file and everything after a NUL byte; tally judges those lines anyway.
//!
//! Which states are harmless: `!attr` (unspecified) is the state of a repository without any
//! `.gitattributes`; `-text`, `-crlf`, `-eol`, `-filter`, `-ident`, `-export-subst` and
//! `-export-ignore` turn a conversion off (`-text` is "binary": the blob is checked out as
//! is, whatever `core.autocrlf` says). `-working-tree-encoding` is refused: git dies on it at
//! checkout ("true/false are no valid working-tree-encodings", `convert.c`).

/// How a line sets an attribute (gitattributes(5), "DESCRIPTION").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// `attr`.
    Set,
    /// `-attr`.
    Unset,
    /// `!attr`.
    Unspecified,
    /// `attr=value`.
    Value(String),
}

/// One line that changes what a checkout (or `git archive`) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLine {
    /// Line number, from 1.
    pub line: usize,
    /// The line, escaped to printable ASCII and shortened.
    pub text: String,
    /// The attribute it sets.
    pub attribute: &'static str,
    /// How it sets it.
    pub state: State,
}

impl CheckoutLine {
    /// What the line does, in words: "sets filter", "unsets working-tree-encoding".
    pub fn action(&self) -> String {
        match &self.state {
            State::Set => format!("sets {}", self.attribute),
            State::Unset => format!("unsets {}", self.attribute),
            State::Unspecified => format!("unspecifies {}", self.attribute),
            State::Value(v) => format!(
                "sets {}={}",
                self.attribute,
                crate::files::printable(v.as_bytes())
            ),
        }
    }

    /// Why that is refused.
    pub fn why(&self) -> &'static str {
        match (self.attribute, &self.state) {
            ("working-tree-encoding", State::Unset | State::Set) => "on which git's checkout fails",
            ("export-subst" | "export-ignore", _) => {
                "which makes git archive produce bytes other than the signed ones"
            }
            _ => "which makes git check out bytes other than the signed ones",
        }
    }
}

/// The attributes that change checked-out bytes, and whether unsetting one is harmless.
const TRANSFORMING: &[(&str, bool)] = &[
    ("filter", true),
    ("ident", true),
    ("text", true),
    ("crlf", true),
    ("eol", true),
    ("working-tree-encoding", false),
    ("export-subst", true),
    ("export-ignore", true),
];

/// git's `blank` in `attr.c`, and NUL: git reads a line as a C string, so a NUL ends the
/// token (and the file) there.
const BLANK: &[u8] = b" \t\r\n\0";

/// Longest line text kept for a message.
const MAX_TEXT: usize = 120;

/// Judges the bytes of a `.gitattributes` file: every line that sets a transforming attribute,
/// in line order (one entry per attribute and line).
pub fn check(bytes: &[u8]) -> Vec<CheckoutLine> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        for (name, state) in states(line) {
            let Some((attribute, unset_ok)) = TRANSFORMING
                .iter()
                .copied()
                .find(|(a, _)| a.as_bytes() == name)
            else {
                continue;
            };
            let harmless = match state {
                State::Unspecified => true,
                State::Unset => unset_ok,
                State::Set | State::Value(_) => false,
            };
            if !harmless {
                out.push(CheckoutLine {
                    line: i + 1,
                    text: shorten(line),
                    attribute,
                    state,
                });
            }
        }
    }
    out
}

/// The attribute states of one line, as `(name, state)`; none for a blank or comment line.
pub fn states(line: &[u8]) -> Vec<(&[u8], State)> {
    let start = line
        .iter()
        .position(|b| !BLANK.contains(b))
        .unwrap_or(line.len());
    let line = &line[start..];
    if line.is_empty() || line[0] == b'#' {
        return Vec::new();
    }
    // The pattern: C-quoted if it starts with `"` and the quote parses, else up to a blank.
    // The states start right after it: after a closing quote no blank is needed.
    let rest = match quoted_len(line) {
        Some(len) => &line[len..],
        None => {
            let end = line
                .iter()
                .position(|b| BLANK.contains(b))
                .unwrap_or(line.len());
            &line[end..]
        }
    };
    rest.split(|b| BLANK.contains(b))
        .filter(|t| !t.is_empty())
        .map(state_of)
        .collect()
}

/// One state token, as `parse_attr` reads it: a leading `-` or `!` decides the state whatever
/// follows; otherwise the name ends at the first `=`.
fn state_of(token: &[u8]) -> (&[u8], State) {
    let name_end = token.iter().position(|b| *b == b'=');
    let name = &token[..name_end.unwrap_or(token.len())];
    match token.first() {
        Some(b'-') => (&name[1..], State::Unset),
        Some(b'!') => (&name[1..], State::Unspecified),
        _ => match name_end {
            None => (name, State::Set),
            Some(eq) => (
                name,
                State::Value(String::from_utf8_lossy(&token[eq + 1..]).into_owned()),
            ),
        },
    }
}

/// The length of a C-quoted string at the start of `s`, closing quote included, if it is one
/// that git's `unquote_c_style` accepts: escapes `\a \b \f \n \r \t \v \\ \"` and three octal
/// digits starting 0-3; anything else (or no closing quote) and git reads the pattern unquoted.
fn quoted_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            // git reads a line as a C string: a NUL ends it inside the quote.
            0 => return None,
            b'\\' => {
                let escape = *s.get(i + 1)?;
                match escape {
                    b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'\\' | b'"' => i += 2,
                    b'0'..=b'3' => {
                        let octal = |j: usize| s.get(j).is_some_and(|c| (b'0'..=b'7').contains(c));
                        if !(octal(i + 2) && octal(i + 3)) {
                            return None;
                        }
                        i += 4;
                    }
                    _ => return None,
                }
            }
            _ => i += 1,
        }
    }
}

fn shorten(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = crate::files::printable(line);
    if text.len() > MAX_TEXT {
        // `printable` output is ASCII, so any byte index is a char boundary.
        format!("{}...", &text[..MAX_TEXT])
    } else {
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The attributes and states `check` refuses on `text`.
    fn refused(text: &str) -> Vec<(&'static str, State)> {
        check(text.as_bytes())
            .into_iter()
            .map(|l| (l.attribute, l.state))
            .collect()
    }

    fn value(v: &str) -> State {
        State::Value(v.into())
    }

    #[test]
    fn refuses_lfs_filter() {
        let found = check(b"# large files\n*.yaml filter=lfs diff=lfs merge=lfs -text\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].attribute, "filter");
        assert_eq!(found[0].state, value("lfs"));
        assert_eq!(found[0].text, "*.yaml filter=lfs diff=lfs merge=lfs -text");
        assert_eq!(found[0].action(), "sets filter=lfs");
        assert_eq!(
            found[0].why(),
            "which makes git check out bytes other than the signed ones"
        );
    }

    #[test]
    fn refuses_ident() {
        assert_eq!(refused("*.yaml ident\n"), [("ident", State::Set)]);
    }

    #[test]
    fn refuses_text_set_auto_and_any_value() {
        assert_eq!(refused("* text\n"), [("text", State::Set)]);
        assert_eq!(refused("* text=auto\n"), [("text", value("auto"))]);
        assert_eq!(refused("* text=input\n"), [("text", value("input"))]);
    }

    #[test]
    fn accepts_unset_and_unspecified_text() {
        assert!(refused("* -text\n").is_empty());
        assert!(refused("* !text\n").is_empty());
        // `-` decides the state even with a value: git's `parse_attr`.
        assert!(refused("* -text=auto\n").is_empty());
    }

    #[test]
    fn refuses_eol_and_crlf() {
        assert_eq!(refused("*.yaml eol=crlf\n"), [("eol", value("crlf"))]);
        assert_eq!(refused("*.yaml eol=lf\n"), [("eol", value("lf"))]);
        assert_eq!(refused("*.yaml crlf\n"), [("crlf", State::Set)]);
        assert_eq!(refused("*.yaml crlf=input\n"), [("crlf", value("input"))]);
        assert!(refused("*.yaml -crlf -eol !eol\n").is_empty());
    }

    #[test]
    fn refuses_working_tree_encoding_even_unset() {
        assert_eq!(
            refused("*.yaml working-tree-encoding=UTF-16LE\n"),
            [("working-tree-encoding", value("UTF-16LE"))]
        );
        let unset = check(b"*.yaml -working-tree-encoding\n");
        assert_eq!(unset[0].state, State::Unset);
        assert_eq!(unset[0].why(), "on which git's checkout fails");
        assert!(refused("*.yaml !working-tree-encoding\n").is_empty());
    }

    #[test]
    fn refuses_export_subst_and_export_ignore() {
        let found = check(b"a.yaml export-subst\nb.yaml export-ignore\n");
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].why(),
            "which makes git archive produce bytes other than the signed ones"
        );
        assert_eq!(found[1].attribute, "export-ignore");
        assert_eq!(found[1].line, 2);
    }

    #[test]
    fn accepts_harmless_attributes_and_unset_filters() {
        let text = "*.yaml diff merge=union linguist-generated -filter !filter -ident\n\
                    *.json binary\n\
                    *.md -export-ignore\n";
        assert!(refused(text).is_empty());
    }

    #[test]
    fn skips_comments_blank_lines_and_leading_blanks() {
        assert!(refused("# * filter=lfs\n\n   \t\n").is_empty());
        assert_eq!(refused("  \t* ident\r\n"), [("ident", State::Set)]);
        // `#` starts a comment only as the first non-blank character.
        assert_eq!(refused("a#b ident\n"), [("ident", State::Set)]);
    }

    #[test]
    fn judges_macro_definitions() {
        // A macro that would switch on conversions wherever it is used.
        assert_eq!(
            refused("[attr]lfs filter=lfs diff=lfs merge=lfs -text\n"),
            [("filter", value("lfs"))]
        );
        assert_eq!(refused("[attr]crlfy text eol=crlf\n").len(), 2);
        // git's own `binary` macro is harmless, defined or used.
        assert!(refused("[attr]binary -diff -merge -text\n*.bin binary\n").is_empty());
    }

    #[test]
    fn reads_quoted_patterns_as_git_does() {
        // The quoted pattern holds a blank and the word `text`: not an attribute.
        assert!(refused("\"a text.yaml\" -diff\n").is_empty());
        assert_eq!(refused("\"a b.yaml\" ident\n"), [("ident", State::Set)]);
        // No blank is needed after the closing quote.
        assert_eq!(refused("\"a.yaml\"ident\n"), [("ident", State::Set)]);
        assert_eq!(
            refused("\"a\\\"\\t\\101\" ident\n"),
            [("ident", State::Set)]
        );
        // A quote git cannot unquote is read as an unquoted pattern: up to the first blank.
        assert_eq!(refused("\"a\\q ident\n"), [("ident", State::Set)]);
        assert_eq!(refused("\"unterminated ident\n"), [("ident", State::Set)]);
        assert_eq!(refused("\"a\\08 ident\n"), [("ident", State::Set)]);
        // ... so a failed quote's words become states (`text\"` is not `text`).
        assert_eq!(refused("\"a\\q text -diff\""), [("text", State::Set)]);
    }

    #[test]
    fn attribute_names_are_case_sensitive() {
        // git compares attribute names byte for byte: `Filter` is another attribute.
        assert!(refused("* Filter=lfs TEXT\n").is_empty());
    }

    #[test]
    fn judges_lines_git_would_ignore() {
        // git drops a line with an invalid attribute name, and a line of 2048 bytes or more;
        // tally refuses rather than depend on that.
        assert_eq!(refused("* ident in/valid\n"), [("ident", State::Set)]);
        let long = format!("* ident {}\n", "x".repeat(3000));
        let found = check(long.as_bytes());
        assert_eq!(found.len(), 1);
        assert!(found[0].text.len() <= MAX_TEXT + 3);
        assert!(found[0].text.ends_with("..."));
    }

    #[test]
    fn a_nul_byte_ends_the_token() {
        // git stops at the NUL: for it this line is `* ident`.
        assert_eq!(refused("* ident\0garbage\n"), [("ident", State::Set)]);
    }

    #[test]
    fn reports_every_line_and_escapes_the_text() {
        let found = check(b"a ident\nb -text\nc\x1b[31m text\n");
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].line, found[1].line), (1, 3));
        assert_eq!(found[1].text, "c\\x1b[31m text");
    }
}
