//! Bounded syntax validation of YAML, JSON and TOML files, with no duplicate keys and no
//! language-specific YAML tags.
//!
//! The pre-receive hook calls [`validate`] on every changed file whose name says it is YAML, JSON
//! or TOML ([`Format::for_path`]), and refuses the push if any of them is not a valid document
//! set. The pusher controls every byte, so each check is bounded in time, memory and stack
//! whatever the input:
//!
//! - Nothing here recurses on the input. YAML is read as a stream of `saphyr_parser` events and
//!   never built into a tree; JSON is checked with `serde_json`'s iterative `IgnoredAny` path; TOML
//!   is scanned for nesting before the `toml` crate, which does recurse, ever sees it.
//! - YAML aliases are never expanded. Each anchor remembers how many nodes and how many levels it
//!   would contribute once expanded, so a "billion laughs" file is refused after reading it once,
//!   in time linear in its size and memory linear in its number of anchors.
//! - Every bound is a field of [`Limits`], read from the `[syntax]` table of the policy file.
//!
//! Time and memory are linear in the file's size, which the caller caps, but not equally so for
//! every shape of file (release build, 1 MiB): block-style YAML takes ~50 ms and a few MB, JSON a
//! few ms. YAML that is one flow collection (`[a, a, …]`, JSON written as YAML) costs ~180 MB
//! and under a second, because `saphyr_parser`'s scanner keeps every token of a flow collection
//! until it closes (a possible implicit key never expires inside flow context); nesting flow
//! collections up to the parser's own limit of 255 multiplies the time per token by up to that
//! depth, not the memory. TOML peaks at ~80 MB for 1 MiB of small values.
//!
//! Beyond syntax, a file must mean one thing to every reader ("declarative means unambiguous"):
//!
//! - No mapping or object has the same key twice, in any format (`syntax/keys.rs` says what
//!   "the same" means in YAML and JSON; TOML forbids it in its grammar, and the `toml` crate
//!   refuses it). Each open mapping keeps a hash set of its keys' identities, so the check is
//!   linear; an alias used as a key reuses its anchor's identity and is never expanded.
//! - No YAML node has a tag other than YAML's own types and the ones the policy lists in
//!   [`Limits::allowed_yaml_tags`] (see [`AllowedTag`]), so no file can ask a loader to build
//!   objects of its language.
//!
//! Otherwise the check is syntax only: a file that passes is data a YAML 1.2, RFC 8259 or
//! TOML 1.1 parser will load, within the limits, and says nothing about whether a tool will
//! accept its contents.

// `yaml`, `json` and `toml_check` check one format each; `keys` says when two YAML or JSON keys
// are the same, and `tags` which YAML tags are allowed. Every format is bounded by `limits` and
// reports an `error`. The position helpers the formats share end this file.
mod error;
mod json;
mod keys;
mod limits;
mod tags;
mod toml_check;
mod yaml;

pub use error::SyntaxError;
pub use limits::{Limits, TOML_MAX_DEPTH};
pub use tags::{AllowedTag, AllowedTagError};

/// Which syntax a file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML 1.2, possibly several documents separated by `---`.
    Yaml,
    /// JSON as RFC 8259 defines it: exactly one value.
    Json,
    /// TOML 1.1.
    Toml,
}

impl Format {
    /// Returns the format a file's name says it holds, or `None` for files that are not
    /// syntax-checked.
    ///
    /// The extension is matched case-insensitively: `.yaml` and `.yml` are YAML, `.json` is JSON,
    /// `.toml` is TOML. A name that is only an extension (`.yaml`) counts too, because a glob such
    /// as `*.yaml` in the policy matches it, and it must not slip past the check.
    #[must_use]
    pub fn for_path(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (_, extension) = name.rsplit_once('.')?;
        if extension.eq_ignore_ascii_case("yaml") || extension.eq_ignore_ascii_case("yml") {
            Some(Format::Yaml)
        } else if extension.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if extension.eq_ignore_ascii_case("toml") {
            Some(Format::Toml)
        } else {
            None
        }
    }
}

/// Checks that `bytes` is one valid document set of `format` within `limits`.
///
/// A UTF-8 byte order mark at the start is allowed in every format. An empty file, or one of only
/// comments, is a valid YAML stream and a valid TOML document, but not valid JSON, which needs a
/// value.
///
/// # Errors
/// Returns the first problem found, with its line and column where there is one.
pub fn validate(format: Format, bytes: &[u8], limits: &Limits) -> Result<(), SyntaxError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SyntaxError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    match format {
        Format::Yaml => yaml::validate(text, limits),
        Format::Json => json::validate(text, limits),
        Format::Toml => toml_check::validate(text, limits),
    }
}

/// Returns the 1-based line and character column of byte `offset` in `text`.
///
/// An offset past the end, or inside a character, is clamped rather than trusted.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, 1 + count_chars(&before[line_start..]))
}

/// Counts the UTF-8 characters that start in `bytes` (every byte that is not a continuation).
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// Strips a leading UTF-8 byte order mark.
fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
