//! The rows of a bundle: an entry rendered as an `entries.jsonl` line and as an `entries.csv`
//! record, and the RFC 4180 parsing the verifier uses to name the column that differs.
//!
//! The writer and the verifier render rows with the same functions, so a row checks exactly
//! when it has the bytes the raw entry gives.

use crate::entry::{EntryView, JsonEntry};
use crate::merkle::Hash;

use super::CSV_COLUMNS;

/// Appends an entry's `entries.jsonl` line (with its line feed) to `out`: the entry as
/// [`JsonEntry`] renders it for `tally log --json`, plus its `leaf_hash`.
pub fn json_row(entry: &EntryView<'_>, leaf: &Hash, out: &mut Vec<u8>) {
    let row = JsonEntry {
        entry,
        leaf_hash: Some(leaf),
    };
    // Serialising into a Vec cannot fail: every field is a plain number, string or list.
    let _ = serde_json::to_writer(&mut *out, &row);
    out.push(b'\n');
}

/// Appends the `entries.csv` header record (with its CRLF) to `out`.
pub fn csv_header(out: &mut Vec<u8>) {
    for (i, column) in CSV_COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_field(out, column.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends an entry's `entries.csv` record (with its CRLF) to `out`: the columns of
/// [`CSV_COLUMNS`], formatted as in [`json_row`], with absent values empty and list items
/// joined by a line feed.
pub fn csv_row(entry: &EntryView<'_>, leaf: &Hash, out: &mut Vec<u8>) {
    let mut scratch = Vec::new();
    out.extend_from_slice(entry.seq.to_string().as_bytes());
    out.push(b',');
    out.extend_from_slice(entry.time.to_string().as_bytes());
    out.push(b',');
    out.extend_from_slice(entry.kind.as_str().as_bytes());
    out.push(b',');
    csv_field(out, entry.refname.as_bytes());
    for id in [entry.old, entry.new, entry.new_tree] {
        out.push(b',');
        if let Some(id) = id {
            push_hex(out, id);
        }
    }
    out.push(b',');
    for (i, (commit, _, _)) in entry.commits.iter().enumerate() {
        if i > 0 {
            scratch.push(b'\n');
        }
        push_hex(&mut scratch, commit);
    }
    csv_field(out, &scratch);
    let mut joined = |out: &mut Vec<u8>, items: &mut dyn Iterator<Item = &str>| {
        scratch.clear();
        for (i, item) in items.enumerate() {
            if i > 0 {
                scratch.push(b'\n');
            }
            scratch.extend_from_slice(item.as_bytes());
        }
        out.push(b',');
        csv_field(out, &scratch);
    };
    joined(out, &mut entry.commits.iter().map(|c| c.1));
    joined(out, &mut entry.commits.iter().map(|c| c.2));
    out.push(b',');
    csv_field(out, entry.pusher.as_bytes());
    out.push(b',');
    push_hex(out, &entry.policy_digest);
    joined(out, &mut entry.reasons.iter().copied());
    out.push(b',');
    if let Some(seq) = entry.aborts {
        out.extend_from_slice(seq.to_string().as_bytes());
    }
    out.push(b',');
    csv_field(out, entry.repository.as_bytes());
    out.push(b',');
    push_hex(out, &entry.prev_hash);
    out.push(b',');
    push_hex(out, leaf);
    out.extend_from_slice(b"\r\n");
}

/// Appends one CSV field: verbatim, or, when it contains a comma, a double quote, CR or LF,
/// between double quotes with every double quote doubled (RFC 4180, section 2).
pub(super) fn csv_field(out: &mut Vec<u8>, value: &[u8]) {
    if value
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        out.push(b'"');
        for &b in value {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value);
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    crate::hex::push(out, bytes);
}

/// Splits one CSV record into its fields (RFC 4180; the record's line break is optional).
pub(super) fn parse_csv_record(raw: &[u8]) -> Result<Vec<String>, &'static str> {
    let raw = raw
        .strip_suffix(b"\r\n")
        .or_else(|| raw.strip_suffix(b"\n"))
        .unwrap_or(raw);
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut i = 0;
    loop {
        field.clear();
        if raw.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match raw.get(i) {
                    None => return Err("a quoted field is not closed"),
                    Some(b'"') if raw.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        field.push(b);
                        i += 1;
                    }
                }
            }
            match raw.get(i) {
                None | Some(b',') => {}
                Some(_) => return Err("a closing double quote is not followed by a comma"),
            }
        } else {
            while let Some(&b) = raw.get(i) {
                match b {
                    b',' => break,
                    b'"' => return Err("a double quote inside an unquoted field"),
                    b'\r' | b'\n' => return Err("a line break inside an unquoted field"),
                    _ => field.push(b),
                }
                i += 1;
            }
        }
        fields.push(String::from_utf8(field.clone()).map_err(|_| "a field is not UTF-8")?);
        if raw.get(i) == Some(&b',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}
