//! Difference reports: when a row of `entries.csv` or `entries.jsonl` is not the one the raw
//! entry gives, these say which column or field differs, with both values shortened for a
//! message.

use super::rows::parse_csv_record;
use super::{CSV_COLUMNS, JSON_FIELDS};

/// Shortens a value for a message.
fn clip(value: &str) -> String {
    const MAX: usize = 120;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

/// Shortens a JSON value for a message.
fn clip_json(value: &serde_json::Value) -> String {
    const MAX: usize = 120;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        text
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// Says how a CSV record differs from the expected one: the first column that differs.
pub(super) fn csv_difference(found: &[u8], expected: &[u8]) -> String {
    let expected_fields = parse_csv_record(expected).unwrap_or_default();
    let fields = match parse_csv_record(found) {
        Ok(fields) => fields,
        Err(e) => return format!("not a valid CSV record: {e}"),
    };
    if fields.len() != expected_fields.len() {
        return format!(
            "has {} columns, not {}",
            fields.len(),
            expected_fields.len()
        );
    }
    for ((column, found), expected) in CSV_COLUMNS.iter().zip(&fields).zip(&expected_fields) {
        if found != expected {
            return format!(
                "column {column} is {}, but the raw entry says {}",
                clip(found),
                clip(expected)
            );
        }
    }
    if !found.ends_with(b"\r\n") {
        return "the record does not end with CRLF".to_owned();
    }
    "the values are right but not written as the format prescribes".to_owned()
}

/// Says how a JSON line differs from the expected one: the first field that differs.
pub(super) fn json_difference(found: &[u8], expected: &[u8]) -> String {
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(expected).unwrap_or_default();
    let found: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(found) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return "not a JSON object".to_owned(),
        Err(e) => return format!("not valid JSON ({e})"),
    };
    for key in JSON_FIELDS {
        let Some(value) = expected.get(key) else {
            continue;
        };
        match found.get(key) {
            None => return format!("field {key:?} is missing"),
            Some(v) if v != value => {
                return format!(
                    "field {key:?} is {}, but the raw entry says {}",
                    clip_json(v),
                    clip_json(value)
                );
            }
            Some(_) => {}
        }
    }
    if let Some(key) = found.keys().find(|k| !expected.contains_key(*k)) {
        return format!("field {key:?} is not part of the format");
    }
    "the values are right but not written as the format prescribes (compact, in field order, one line)".to_owned()
}
