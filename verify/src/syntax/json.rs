//! JSON: `serde_json`'s syntax-only path, then a scan for nesting depth.

use std::collections::HashMap;

use super::{Limits, SyntaxError, count_chars, keys, strip_bom};

/// Checks one JSON value; see [`super::validate`].
pub(super) fn validate(text: &str, limits: &Limits) -> Result<(), SyntaxError> {
    // RFC 8259 §8.1 lets a parser ignore a byte order mark; serde_json does not.
    let text = strip_bom(text);
    // `IgnoredAny` takes serde_json's `ignore_value`: a loop with its own bracket stack (no
    // recursion, so no 128-level limit), which checks the grammar without converting numbers.
    // `1e400` and 40-digit integers are valid JSON and pass. `from_str` refuses trailing
    // characters.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let (line, column) = (e.line(), char_column(text, e.line(), e.column()));
        // serde_json's message ends with the position, which we report separately.
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = match message.strip_suffix(&suffix) {
            Some(bare) => bare.to_owned(),
            None => message,
        };
        return Err(SyntaxError::Json {
            line,
            column,
            message,
        });
    }
    // The text is valid JSON now: brackets outside strings are exactly the nesting, and
    // the first string after `{` or after a `,` inside an object is a key.
    let bytes = text.as_bytes();
    // One entry per open array (`None`) or object (its keys so far, with their lines).
    let mut open: Vec<Option<HashMap<Vec<u8>, usize>>> = Vec::new();
    let mut key_next = false;
    let (mut line, mut line_start) = (1, 0);
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' if key_next => {
                key_next = false;
                let (key, end) = keys::json_string(&bytes[at..]);
                if let Some(Some(seen)) = open.last_mut() {
                    if let Some(&first_line) = seen.get(&key) {
                        return Err(SyntaxError::DuplicateKey {
                            line,
                            column: 1 + count_chars(&bytes[line_start..at]),
                            key: keys::show(&String::from_utf8_lossy(&key)),
                            first_line,
                        });
                    }
                    seen.insert(key, line);
                }
                at += end;
                continue;
            }
            // Valid JSON strings hold no raw newline, so skipping one keeps the line count.
            b'"' => {
                at = string_end(bytes, at);
                continue;
            }
            b'\n' => {
                line += 1;
                line_start = at + 1;
            }
            b'[' | b'{' => {
                if open.len() >= limits.max_depth {
                    return Err(SyntaxError::TooDeep {
                        line,
                        max: limits.max_depth,
                    });
                }
                let object = b == b'{';
                open.push(object.then(HashMap::new));
                key_next = object;
            }
            b']' | b'}' => {
                open.pop();
            }
            b',' => key_next = matches!(open.last(), Some(Some(_))),
            _ => {}
        }
        at += 1;
    }
    Ok(())
}

/// Returns the offset just past the JSON string whose opening quote is at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    at
}

/// Turns `serde_json`'s byte column on `line` into a character column.
fn char_column(text: &str, line: usize, byte_column: usize) -> usize {
    let Some(source_line) = text.split('\n').nth(line.saturating_sub(1)) else {
        return byte_column;
    };
    let bytes = source_line.as_bytes();
    count_chars(&bytes[..byte_column.min(bytes.len())])
}
