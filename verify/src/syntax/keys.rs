//! When two mapping keys are the same key, in YAML and in JSON.
//!
//! A mapping with the same key twice is refused: YAML 1.2.2 §3.2.1.1 requires keys to be unique,
//! RFC 8259 §4 leaves the outcome of a repeated name to the implementation, and implementations
//! do disagree (last wins in most, first wins in some, an error in others), so a reviewer and a
//! deployer can read different values from the same bytes.
//!
//! "The same" means the same to some reader that matters, so a YAML key's identity is what a
//! loader makes of it, not how it is written:
//!
//! - Quoting and escapes do not matter: `a`, `"a"`, `'a'` and `"\x61"` are one key.
//! - A plain scalar the YAML 1.2 core schema reads as a null, boolean, integer or float
//!   (§10.3.2) stands for its value: `0x10`, `0o20`, `+16` and `16.0` are all 16, and `~`,
//!   `null` and an empty key are all null. YAML 1.1 loaders (PyYAML, go-yaml v2, which
//!   sigs.k8s.io/yaml uses) also read `yes`, `no`, `on`, `off`, `y` and `n` as booleans, so
//!   those count as `true` and `false` too. A `!!int`, `!!float`, `!!bool` or `!!null` tag
//!   reads the scalar as that type; any other tag (`!!str`, `!`, a custom tag) leaves the text.
//! - A value and its text are one key: `16` and `"16"`, `true` and `"true"`, `null` and
//!   `"null"`. Typed loaders keep them apart, but the many tools that turn YAML into JSON
//!   (Kubernetes' sigs.k8s.io/yaml, Helm) make both the same string, and then one silently wins.
//! - Booleans and numbers of equal value are one key, as they are to Python (PyYAML, and so
//!   Ansible and Salt), where `True == 1 == 1.0`: `true`, `1` and `1.0` are one key, and so are
//!   `false` and `0`. This is a second identity beside the first, not a merge of the two:
//!   `true` and `"1"` stay different keys, as they are to every reader.
//! - An alias stands for its anchored node: `*x` is a duplicate of `a` when `&x a`.
//! - A sequence or mapping used as a key (`? [a, b]`) is compared by content: sequences in
//!   order, mappings as unordered sets of pairs, with the same rules for every scalar inside.
//!   Merge keys inside such a key are not expanded.
//!
//! Not modelled: YAML 1.1's other number forms (`010` is 8 to PyYAML and 10 here, `1_000`,
//! `0b1`, sexagesimal `1:30` stay strings), and JavaScript readers' rounding of integers beyond
//! 2^53 (two such keys that differ only past that precision are different keys here).
//!
//! Merge keys (`<<`) are not expanded either. `<<: *defaults` followed by an explicit key that
//! `defaults` also has is the documented way to override a default, and every loader that
//! merges agrees the explicit key wins, so it is not a duplicate. Two `<<` keys in one mapping
//! are: loaders disagree on whether the second merges or replaces the first; one `<<` with a
//! list (`<<: [*a, *b]`) says the same unambiguously.
//!
//! Identities are kept small so the check stays linear whatever the file: a key of more than
//! [`INLINE`] bytes, and every collection, is identified by a SHA-256 digest computed once,
//! which an alias reuses without looking at the anchored node again.

use saphyr_parser::{ScalarStyle, Tag};
use sha2::{Digest as _, Sha256};

/// Longest canonical key text kept as is; longer ones are kept as a digest.
const INLINE: usize = 64;

/// What makes a node the key it is: equal identities are the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum KeyId {
    /// The canonical text of a scalar of at most [`INLINE`] bytes.
    Text(Box<str>),
    /// The numeric value of a boolean or number of at most [`INLINE`] bytes; see [`Identity`].
    Number(Box<str>),
    /// SHA-256 of a longer scalar's canonical text or number, or of a collection's content.
    Digest([u8; 32]),
}

impl KeyId {
    /// Whether this is the merge key `<<`.
    pub(super) fn is_merge(&self) -> bool {
        matches!(self, KeyId::Text(text) if &**text == "<<")
    }

    /// Feeds the identity to a digest, unambiguously.
    fn feed(&self, hasher: &mut Sha256) {
        match self {
            KeyId::Text(text) => {
                hasher.update([b't']);
                hasher.update((text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
            KeyId::Number(number) => {
                hasher.update([b'n']);
                hasher.update((number.len() as u64).to_be_bytes());
                hasher.update(number.as_bytes());
            }
            KeyId::Digest(digest) => {
                hasher.update([b'd']);
                hasher.update(digest);
            }
        }
    }
}

/// A node's identities as a key: the one every reader shares, and for a boolean or number
/// also its numeric value, which Python readers (PyYAML, and so Ansible and Salt) compare
/// across types: `true`, `1` and `1.0` are one dict key there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Identity {
    pub(super) id: KeyId,
    pub(super) number: Option<KeyId>,
}

impl Identity {
    /// The identities of a YAML scalar with this decoded `value`, `style` and resolved `tag`.
    pub(super) fn scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Identity {
        let typed = typed(value, style, tag);
        let text = typed.as_ref().map_or(value, |(_, canonical)| canonical);
        let number = match &typed {
            Some((Kind::Bool, canonical)) => {
                Some(if canonical == "true" { "1" } else { "0" }.to_owned())
            }
            Some((Kind::Number, canonical)) => Some(canonical.clone()),
            Some((Kind::Null, _)) | None => None,
        };
        Identity {
            id: short_or_digest(text, b"tally key scalar\n", KeyId::Text),
            number: number.map(|n| short_or_digest(&n, b"tally key number\n", KeyId::Number)),
        }
    }

    /// The identity of a sequence or mapping, from [`IdBuilder::finish`].
    pub(super) fn collection(id: KeyId) -> Identity {
        Identity { id, number: None }
    }
}

/// Returns `text` in the `short` variant if it is at most [`INLINE`] bytes, else its digest
/// under `domain`.
fn short_or_digest(text: &str, domain: &[u8], short: fn(Box<str>) -> KeyId) -> KeyId {
    if text.len() <= INLINE {
        short(text.into())
    } else {
        let mut hasher = Sha256::new();
        hasher.update(domain);
        hasher.update(text.as_bytes());
        KeyId::Digest(hasher.finalize().into())
    }
}

/// What a non-string scalar resolves to.
enum Kind {
    Null,
    Bool,
    Number,
}

/// The type and canonical text of a scalar that is not a string, else `None`.
fn typed(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<(Kind, String)> {
    let with = |kind: Kind, canonical: Option<String>| canonical.map(|c| (kind, c));
    match tag {
        None if style == ScalarStyle::Plain => with(Kind::Null, null(value))
            .or_else(|| with(Kind::Bool, boolean(value)))
            .or_else(|| with(Kind::Number, int(value)))
            .or_else(|| with(Kind::Number, float(value))),
        Some(tag) if tag.handle == "tag:yaml.org,2002:" => match tag.suffix.as_str() {
            "null" => with(Kind::Null, null(value)),
            "bool" => with(Kind::Bool, boolean(value)),
            "int" => with(Kind::Number, int(value)),
            "float" => with(Kind::Number, float(value)),
            _ => None,
        },
        _ => None,
    }
}

fn null(value: &str) -> Option<String> {
    matches!(value, "" | "~" | "null" | "Null" | "NULL").then(|| "null".to_owned())
}

/// YAML 1.2 booleans, and the YAML 1.1 spellings PyYAML and go-yaml v2 also read as booleans.
fn boolean(value: &str) -> Option<String> {
    match value {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
            Some("true".to_owned())
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            Some("false".to_owned())
        }
        _ => None,
    }
}

/// Core-schema integers (`[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`) as plain decimal.
///
/// Decimal integers of any length are normalised exactly (sign, leading zeros); octal and hex
/// ones beyond 128 bits keep a normalised hex or octal form.
fn int(value: &str) -> Option<String> {
    let (radix, digits, negative) = if let Some(octal) = value.strip_prefix("0o") {
        (8, octal, false)
    } else if let Some(hex) = value.strip_prefix("0x") {
        (16, hex, false)
    } else if let Some(rest) = value.strip_prefix('-') {
        (10, rest, true)
    } else {
        (10, value.strip_prefix('+').unwrap_or(value), false)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    let magnitude = if digits.is_empty() {
        "0".to_owned()
    } else if radix == 10 {
        digits.to_owned()
    } else {
        match u128::from_str_radix(digits, radix) {
            Ok(n) => n.to_string(),
            Err(_) => format!(
                "0{}{}",
                if radix == 8 { 'o' } else { 'x' },
                digits.to_lowercase()
            ),
        }
    };
    Some(if negative && magnitude != "0" {
        format!("-{magnitude}")
    } else {
        magnitude
    })
}

/// Core-schema floats, with an integral value below 2^53 written as that integer: `16.0` and
/// `1.6e1` are the key `16` to Python and JavaScript readers.
fn float(value: &str) -> Option<String> {
    let unsigned = value.strip_prefix(['-', '+']).unwrap_or(value);
    let negative = value.starts_with('-');
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(if negative { "-.inf" } else { ".inf" }.to_owned());
    }
    if matches!(value, ".nan" | ".NaN" | ".NAN") {
        return Some(".nan".to_owned());
    }
    if !is_core_float(unsigned) {
        return None;
    }
    let number: f64 = value.parse().ok()?;
    if number.is_infinite() {
        return Some(if negative { "-.inf" } else { ".inf" }.to_owned());
    }
    // 2^53: every integer below it is exactly one f64 and fits an i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    Some(if number.fract() == 0.0 && number.abs() < EXACT {
        #[allow(clippy::cast_possible_truncation)] // integral and below 2^53: exact
        let integer = number as i64;
        integer.to_string()
    } else {
        number.to_string()
    })
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` from YAML 1.2.2 §10.3.2.
fn is_core_float(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// Builds the identity of a sequence or mapping from its children's identities.
pub(super) enum IdBuilder {
    /// Children in order.
    Sequence(Sha256),
    /// Pairs in any order: the lane-wise sum of each pair's digest, and the number of pairs.
    Mapping {
        sum: [u64; 4],
        pairs: u64,
        /// The key of the pair whose value comes next.
        key: Option<KeyId>,
    },
}

impl IdBuilder {
    /// Starts the identity of a mapping or, when `mapping` is false, a sequence.
    pub(super) fn new(mapping: bool) -> IdBuilder {
        if mapping {
            IdBuilder::Mapping {
                sum: [0; 4],
                pairs: 0,
                key: None,
            }
        } else {
            let mut hasher = Sha256::new();
            hasher.update(b"tally key sequence\n");
            IdBuilder::Sequence(hasher)
        }
    }

    /// Adds the next child: an element of a sequence, or alternately a key and its value.
    pub(super) fn child(&mut self, id: &KeyId) {
        match self {
            IdBuilder::Sequence(hasher) => id.feed(hasher),
            IdBuilder::Mapping { sum, pairs, key } => match key.take() {
                None => *key = Some(id.clone()),
                Some(k) => {
                    let mut hasher = Sha256::new();
                    hasher.update(b"tally key pair\n");
                    k.feed(&mut hasher);
                    id.feed(&mut hasher);
                    let digest: [u8; 32] = hasher.finalize().into();
                    for (lane, chunk) in sum.iter_mut().zip(digest.chunks_exact(8)) {
                        let mut bytes = [0; 8];
                        bytes.copy_from_slice(chunk);
                        *lane = lane.wrapping_add(u64::from_be_bytes(bytes));
                    }
                    *pairs += 1;
                }
            },
        }
    }

    /// Returns the collection's identity.
    pub(super) fn finish(self) -> KeyId {
        let digest = match self {
            IdBuilder::Sequence(hasher) => hasher.finalize(),
            IdBuilder::Mapping { sum, pairs, .. } => {
                let mut hasher = Sha256::new();
                hasher.update(b"tally key mapping\n");
                for lane in sum {
                    hasher.update(lane.to_be_bytes());
                }
                hasher.update(pairs.to_be_bytes());
                hasher.finalize()
            }
        };
        KeyId::Digest(digest.into())
    }
}

/// Decodes the JSON string starting at `bytes[0]` (its opening quote) into the bytes a reader
/// compares, and returns them with the offset just past the closing quote.
///
/// The text has already been checked as JSON. `\uXXXX` escapes are decoded, surrogate pairs
/// joined; a lone surrogate (valid JSON, RFC 8259 §8.2) is kept as its generalized UTF-8
/// (WTF-8) bytes, so it equals only the same escape.
pub(super) fn json_string(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut at = 1;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => return (out, at + 1),
            b'\\' => {
                let escape = bytes.get(at + 1).copied().unwrap_or(b'\\');
                at += 2;
                let simple = match escape {
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'u' => None,
                    other => Some(other),
                };
                if let Some(byte) = simple {
                    out.push(byte);
                    continue;
                }
                let unit = hex4(bytes, at);
                at += 4;
                let code = if (0xD800..0xDC00).contains(&unit)
                    && bytes.get(at..at + 2) == Some(b"\\u")
                    && (0xDC00..0xE000).contains(&hex4(bytes, at + 2))
                {
                    let low = hex4(bytes, at + 2);
                    at += 6;
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    unit
                };
                push_wtf8(&mut out, code);
            }
            _ => {
                out.push(b);
                at += 1;
            }
        }
    }
    (out, at)
}

/// Reads four hex digits at `at`, or 0 where there are none (only valid JSON reaches here).
fn hex4(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// Appends a code point, surrogates included, in generalized UTF-8.
fn push_wtf8(out: &mut Vec<u8>, code: u32) {
    // The `as u8` casts keep the low bits on purpose: this is UTF-8's own bit layout.
    #[allow(clippy::cast_possible_truncation)]
    match code {
        0..0x80 => out.push(code as u8),
        0x80..0x800 => out.extend([0xC0 | (code >> 6) as u8, 0x80 | (code & 0x3F) as u8]),
        0x800..0x10000 => out.extend([
            0xE0 | (code >> 12) as u8,
            0x80 | ((code >> 6) & 0x3F) as u8,
            0x80 | (code & 0x3F) as u8,
        ]),
        _ => out.extend([
            0xF0 | (code >> 18) as u8,
            0x80 | ((code >> 12) & 0x3F) as u8,
            0x80 | ((code >> 6) & 0x3F) as u8,
            0x80 | (code & 0x3F) as u8,
        ]),
    }
}

/// Shows a key in a message: quoted, cut after 60 characters (`"kkk"...`).
pub(super) fn show(text: &str) -> String {
    let shown: String = text.chars().take(60).collect();
    let cut = if shown.len() < text.len() { "..." } else { "" };
    format!("{shown:?}{cut}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
