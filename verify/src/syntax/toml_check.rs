//! TOML: a nesting scan over `toml_parser`'s own tokens, then the `toml` crate.

use serde::Deserialize as _;
use toml::de::{DeTable, DeValue};

use super::{Limits, SyntaxError, TOML_MAX_DEPTH, line_column};

/// Checks one TOML document; see [`super::validate`].
pub(super) fn validate(text: &str, limits: &Limits) -> Result<(), SyntaxError> {
    let max = limits.max_depth.min(TOML_MAX_DEPTH);
    // The toml lexer skips a leading byte order mark itself, and its spans count it.
    prescan(text, max)?;
    let root = DeTable::parse(text).map_err(|e| toml_error(text, &e))?;
    // The scan bounds the depth the parser can build to about twice `max`; this walk holds
    // it to exactly `max`, now that arrays of tables are known.
    if max == 0 {
        return Err(SyntaxError::TooDeep { line: 1, max });
    }
    // Values still to look at, with their offset and depth; the root table is depth 1.
    let mut pending: Vec<(&DeValue<'_>, usize, usize)> = Vec::new();
    push_children(root.get_ref(), 1, &mut pending);
    while let Some((value, offset, depth)) = pending.pop() {
        match value {
            DeValue::Table(_) | DeValue::Array(_) if depth > max => {
                let (line, _) = line_column(text, offset);
                return Err(SyntaxError::TooDeep { line, max });
            }
            DeValue::Table(table) => push_children(table, depth, &mut pending),
            DeValue::Array(array) => {
                for item in array {
                    pending.push((item.get_ref(), item.span().start, depth + 1));
                }
            }
            _ => {}
        }
    }
    // Building the `toml::Table` checks what the parser leaves to it: integers must fit in
    // 64 bits, floats must be finite.
    toml::Table::deserialize(toml::de::Deserializer::from(root))
        .map(drop)
        .map_err(|e| toml_error(text, &e))
}

/// Queues the values of `table`, which is at `depth`.
fn push_children<'t, 'i>(
    table: &'t DeTable<'i>,
    depth: usize,
    pending: &mut Vec<(&'t DeValue<'i>, usize, usize)>,
) {
    for (_, value) in table {
        pending.push((value.get_ref(), value.span().start, depth + 1));
    }
}

/// Maps a `toml` error, with its byte span turned into a line and column.
fn toml_error(text: &str, error: &toml::de::Error) -> SyntaxError {
    let (line, column) = error
        .span()
        .map_or((0, 0), |span| line_column(text, span.start));
    let message = error.message().trim().replace('\n', "; ");
    let message = if message.contains("as i128") || message.contains("too large") {
        "integer out of range; toml integers are 64-bit signed".to_owned()
    } else {
        message
    };
    SyntaxError::Toml {
        line,
        column,
        message,
    }
}

/// Tokens of TOML that matter for nesting, as `toml_parser`'s own lexer (the one the `toml`
/// crate parses with) splits the text, so that a bracket or dot inside a string or comment is
/// skipped by both or by neither.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Dot,
    Equals,
    Comma,
    LeftBracket,
    RightBracket,
    LeftBrace,
    RightBrace,
    Newline,
    /// Spaces and tabs.
    Blank,
    /// A comment, a string or an atom (bare key, number, date, boolean).
    Other,
}

/// The [`Token`]s of `text` with their byte offsets, from `toml_parser`'s lexer (which skips a
/// leading byte order mark and never fails).
fn tokens(text: &str) -> impl Iterator<Item = (Token, usize)> + '_ {
    use toml_parser::lexer::TokenKind;
    toml_parser::Source::new(text).lex().map_while(|token| {
        let kind = match token.kind() {
            TokenKind::Eof => return None,
            TokenKind::Dot => Token::Dot,
            TokenKind::Equals => Token::Equals,
            TokenKind::Comma => Token::Comma,
            TokenKind::LeftSquareBracket => Token::LeftBracket,
            TokenKind::RightSquareBracket => Token::RightBracket,
            TokenKind::LeftCurlyBracket => Token::LeftBrace,
            TokenKind::RightCurlyBracket => Token::RightBrace,
            TokenKind::Newline => Token::Newline,
            TokenKind::Whitespace => Token::Blank,
            _ => Token::Other,
        };
        Some((kind, token.span().start()))
    })
}

/// An inline array or table that is open.
struct Inline {
    is_table: bool,
    /// Its depth below the current `[table]`, as [`Depths`]: 1 for `key = [` in that table.
    depth: Depths,
}

/// A depth counted two ways; see [`prescan`].
#[derive(Clone, Copy, Default)]
struct Depths {
    /// Counting only what certainly nests in a valid document.
    low: usize,
    /// Counting everything that might nest in any document.
    high: usize,
}

impl Depths {
    fn add(self, other: Depths) -> Depths {
        Depths {
            low: self.low.saturating_add(other.low),
            high: self.high.saturating_add(other.high),
        }
    }
}

/// Refuses nesting that could take the `toml` crate deeper than about `2 * max + 1`.
///
/// A value's depth is its table header's depth plus, for each enclosing inline array or
/// table, one plus the dots of the key leading to it, plus the dots of its own key. The scan
/// keeps two counts of it. The low count takes each header key once and only dots in key
/// position; no valid document is shallower than that, so refusing it above `max` refuses
/// no file within the limit. The high count takes each header key twice (`[a.b]` is 3 deep,
/// but 5 after `[[a]]` and `[[a.b]]`) and every dot, since a parser recovering from an error
/// may read a value as a key; no document, valid or not, makes the parser nest deeper than
/// that, so refusing it above `2 * max + 1` keeps the parser's recursion shallow. The walk
/// after parsing settles the exact depth.
fn prescan(text: &str, max: usize) -> Result<(), SyntaxError> {
    let check = |header: Depths, depth: Depths, offset: usize| {
        let low = 1usize.saturating_add(header.low).saturating_add(depth.low);
        let high = 1usize
            .saturating_add(header.high)
            .saturating_add(depth.high);
        if low > max || high > max.saturating_mul(2).saturating_add(1) {
            Err(SyntaxError::TooDeep {
                line: line_column(text, offset).0,
                max,
            })
        } else {
            Ok(())
        }
    };
    let mut inline: Vec<Inline> = Vec::new();
    // Depth of the current `[header]` or `[[header]]` below the root.
    let mut header = Depths::default();
    // Offset of the `[` that opened the header being read, if one is.
    let mut header_open: Option<usize> = None;
    // Dots since the last `=`, `,`, bracket or top-level newline.
    let mut dots = Depths::default();
    // Dots of the keys whose `=` we passed: a container value after them sits this deeper.
    let mut key_dots = Depths::default();
    // Whether a key, rather than a value, comes next.
    let mut in_key = true;
    // At the start of a top-level line, where `[` opens a header rather than an array.
    let mut line_start = true;

    for (token, offset) in tokens(text) {
        let outer = inline.last().map_or(Depths::default(), |i| i.depth);
        match token {
            Token::Blank => continue,
            Token::Other => {}
            Token::Newline => {
                if inline.is_empty() {
                    if header_open.take().is_some() {
                        header = segments(dots);
                    }
                    dots = Depths::default();
                    key_dots = Depths::default();
                    in_key = true;
                    line_start = true;
                }
                continue;
            }
            Token::Dot => {
                dots.high += 1;
                if in_key || header_open.is_some() {
                    dots.low += 1;
                }
                if header_open.is_some() {
                    check(segments(dots), Depths::default(), offset)?;
                } else {
                    check(header, outer.add(dots), offset)?;
                }
            }
            Token::LeftBracket if line_start && inline.is_empty() => {
                // `[table]` or `[[array.of.tables]]`: a new header replaces the old one.
                header_open = Some(offset);
                header = Depths::default();
                dots = Depths::default();
            }
            // The second `[` of `[[`.
            Token::LeftBracket if header_open == Some(offset.wrapping_sub(1)) => {}
            Token::RightBracket if header_open.is_some() => {
                header_open = None;
                header = segments(dots);
                check(header, Depths::default(), offset)?;
            }
            Token::LeftBracket | Token::LeftBrace => {
                // Any other bracket opens an inline array or table, even inside a header
                // or key, where it is an error: counting it can only overstate the depth.
                let one = Depths { low: 1, high: 1 };
                let depth = outer.add(key_dots).add(one);
                check(header, depth, offset)?;
                let is_table = token == Token::LeftBrace;
                inline.push(Inline { is_table, depth });
                dots = Depths::default();
                key_dots = Depths::default();
                in_key = is_table;
            }
            Token::RightBracket | Token::RightBrace => {
                // Only a matching bracket closes: on a mismatch we keep counting the
                // container as open, which can only overstate the depth.
                let closes_table = token == Token::RightBrace;
                if inline.last().is_some_and(|i| i.is_table == closes_table) {
                    inline.pop();
                }
                dots = Depths::default();
                key_dots = Depths::default();
                in_key = false;
            }
            Token::Equals => {
                key_dots = key_dots.add(dots);
                dots = Depths::default();
                in_key = false;
            }
            Token::Comma => {
                dots = Depths::default();
                key_dots = Depths::default();
                in_key = inline.last().is_some_and(|i| i.is_table);
            }
        }
        line_start = false;
    }
    Ok(())
}

/// Returns the depth of a header whose key has `dots` dots: one level per key segment at
/// least, two at most (each segment may be an array of tables).
fn segments(dots: Depths) -> Depths {
    let segments = dots.low.saturating_add(1);
    Depths {
        low: segments,
        high: segments.saturating_mul(2),
    }
}
