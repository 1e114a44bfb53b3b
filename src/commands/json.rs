//! The one shape of `--json` output for commands that do something (`init`, `export`,
//! `uninstall`, `policy check`, `ledger checkpoint`): `{"ok": true, ...}` on success, and on
//! failure `{"ok": false, "error": {"message": ..., "class": ..., "exit": ...}}`, where
//! `class` and `exit` are those of `tally verify --json` (`refused` 1, `config` 2, `retry` 3,
//! `local` 4). `ok` is the key `tally ledger verify --json` and `tally export verify --json`
//! already use. The message also goes to standard error, as without `--json`.

use std::io::Write;

use crate::cli::Outcome;

/// Prints `{"ok": true}` with `fields` added (an object), and returns success.
pub fn success(out: &mut impl Write, fields: serde_json::Value) -> Outcome {
    let mut object = serde_json::Map::new();
    object.insert("ok".into(), true.into());
    if let serde_json::Value::Object(fields) = fields {
        object.extend(fields);
    }
    print(out, &serde_json::Value::Object(object));
    Outcome::Success
}

/// Prints the failure object for `outcome` with `message` (the reasons of a refusal, which
/// carries none itself), and returns `outcome`. A success is returned unchanged.
pub fn failure(out: &mut impl Write, outcome: Outcome, message: &str) -> Outcome {
    let (class, exit, message) = match &outcome {
        Outcome::Success => return outcome,
        Outcome::Refused => ("refused", 1, message),
        Outcome::Config(m) => ("config", 2, m.as_str()),
        Outcome::Retry(m) => ("retry", 3, m.as_str()),
        Outcome::Local => ("local", 4, message),
    };
    let value = serde_json::json!({
        "ok": false,
        "error": { "message": message, "class": class, "exit": exit },
    });
    print(out, &value);
    outcome
}

/// A failure as the command reports it: with `json`, also printed as [`failure`] does.
pub fn fail(json: bool, out: &mut impl Write, outcome: Outcome, message: &str) -> Outcome {
    if json {
        failure(out, outcome, message)
    } else {
        outcome
    }
}

fn print(out: &mut impl Write, value: &serde_json::Value) {
    // Serialising a `Value` cannot fail: its keys are strings.
    if let Ok(text) = serde_json::to_string_pretty(value) {
        let _ = writeln!(out, "{text}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn success_and_failure_have_one_shape() {
        let mut out = Vec::new();
        let o = success(&mut out, serde_json::json!({"size": 3}));
        assert!(matches!(o, Outcome::Success));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "size": 3}));

        let mut out = Vec::new();
        let o = failure(&mut out, Outcome::Config("no such repository".into()), "");
        assert!(matches!(o, Outcome::Config(_)));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ok": false, "error": {"message": "no such repository", "class": "config", "exit": 2}})
        );

        let mut out = Vec::new();
        failure(&mut out, Outcome::Refused, "the ledger does not verify");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["exit"], 1);
        assert_eq!(v["error"]["message"], "the ledger does not verify");
    }
}
