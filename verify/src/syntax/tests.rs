//! Tests of the syntax checks, by topic, with the helpers they share.

use super::*;

/// Validates with the default limits.
fn check(format: Format, text: &str) -> Result<(), SyntaxError> {
    validate(format, text.as_bytes(), &Limits::default())
}

#[track_caller]
fn assert_ok(format: Format, text: &str) {
    if let Err(e) = check(format, text) {
        panic!("{format:?} refused: {e}");
    }
}

#[track_caller]
fn refused(format: Format, text: &str) -> SyntaxError {
    match check(format, text) {
        Ok(()) => panic!("{format:?} accepted what it should refuse"),
        Err(e) => e,
    }
}

fn nested(open: &str, close: &str, levels: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

fn with_depth(max_depth: usize) -> Limits {
    Limits {
        max_depth,
        ..Limits::default()
    }
}

fn with_nodes(max_yaml_expanded_nodes: u64) -> Limits {
    Limits {
        max_yaml_expanded_nodes,
        ..Limits::default()
    }
}

/// Builds a billion-laughs document: `levels` anchors, each a list of `fanout` aliases to the
/// previous one, above a list of `fanout` scalars. Returns it with its expanded node count.
fn laughs(levels: usize, fanout: usize) -> (String, u64) {
    let mut text = format!("l0: &l0 [{}]\n", vec!["lol"; fanout].join(", "));
    let mut size = 1 + fanout as u64;
    let mut total = 1 + 1 + size; // the mapping, the key, the list
    for level in 1..=levels {
        let aliases = vec![format!("*l{}", level - 1); fanout].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
        size = 1 + fanout as u64 * size;
        total += 1 + size;
    }
    (text, total)
}

mod accepted;
mod aliases;
mod config;
mod depth;
mod errors;
mod properties;
