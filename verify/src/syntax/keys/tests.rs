//! Tests of when two keys are the same key: YAML, JSON and TOML, refused and accepted.

use super::*;
use crate::syntax::{Format, Limits, SyntaxError, validate};

#[track_caller]
fn refused(format: Format, text: &str) -> SyntaxError {
    match validate(format, text.as_bytes(), &Limits::default()) {
        Ok(()) => panic!("{format:?} accepted {text:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn accepted(format: Format, text: &str) {
    if let Err(e) = validate(format, text.as_bytes(), &Limits::default()) {
        panic!("{format:?} refused {text:?}: {e}");
    }
}

/// Asserts that `text` is refused as a duplicate key at `line`, first seen at `first_line`.
#[track_caller]
fn duplicate(format: Format, text: &str, line: usize, first_line: usize) -> SyntaxError {
    let e = refused(format, text);
    match &e {
        SyntaxError::DuplicateKey {
            line: l,
            first_line: f,
            ..
        }
        | SyntaxError::DuplicateMergeKey {
            line: l,
            first_line: f,
            ..
        } if (*l, *f) == (line, first_line) => e,
        _ => {
            let text: String = text.chars().take(200).collect();
            panic!("{text:?}: expected a duplicate at {line} of {first_line}, got {e:?}")
        }
    }
}

// ---- YAML: what is refused ------------------------------------------------------------------

#[test]
fn yaml_duplicate_key_refused_with_both_lines() {
    let e = duplicate(Format::Yaml, "a: 1\nb: 2\na: 3\n", 3, 1);
    assert!(
        matches!(&e, SyntaxError::DuplicateKey { column: 1, key, .. } if key == "\"a\""),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 3 column 1: duplicate key \"a\" (first at line 1); readers disagree on which \
             value wins, keep only one"
    );
}

#[test]
fn yaml_duplicate_key_hidden_by_quoting_refused() {
    for second in [
        "\"a\"",
        "'a'",
        "\"\\x61\"",
        "\"\\u0061\"",
        "? a\n",
        "!!str a",
        "! a",
        "&n a",
    ] {
        duplicate(Format::Yaml, &format!("a: 1\n{second}: 2\n"), 2, 1);
    }
    // An escaped line break inside a multi-line explicit key.
    duplicate(Format::Yaml, "a: 1\n? \"\\\n  a\"\n: 2\n", 2, 1);
}

#[test]
fn yaml_duplicate_key_in_flow_mapping_refused() {
    duplicate(Format::Yaml, "{a: 1, b: 2, a: 3}", 1, 1);
    duplicate(Format::Yaml, "x: [{a: 1, \"a\": 2}]", 1, 1);
    duplicate(Format::Yaml, "{\n  \"a\": 1,\n  \"a\": 2\n}\n", 3, 2);
    // A set is a mapping of keys to nulls.
    duplicate(Format::Yaml, "s: !!set {a, b, a}", 1, 1);
    duplicate(Format::Yaml, "s: !!set\n  ? a\n  ? a\n", 3, 2);
}

#[test]
fn yaml_duplicate_key_deep_in_the_document_refused() {
    let mut text = String::new();
    for level in 0..40 {
        text.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
    }
    let indent = "  ".repeat(40);
    text.push_str(&format!("{indent}x: 1\n{indent}y: 2\n{indent}x: 3\n"));
    duplicate(Format::Yaml, &text, 43, 41);
}

#[test]
fn yaml_keys_equal_as_values_refused() {
    for (first, second) in [
        ("1", "\"1\""),
        ("16", "0x10"),
        ("0o20", "+16"),
        ("1", "1.0"),
        ("10", "1e1"),
        ("true", "True"),
        ("true", "yes"),
        ("on", "y"),
        ("false", "\"false\""),
        ("~", "null"),
        ("null", "\"null\""),
        ("~", "!!null ''"),
        ("16", "!!int '0x10'"),
        (".inf", "+.INF"),
        (".nan", ".NaN"),
    ] {
        duplicate(Format::Yaml, &format!("{first}: a\n{second}: b\n"), 2, 1);
    }
    // An empty key is null too.
    duplicate(Format::Yaml, "~: a\n: b\n", 2, 1);
    // To Python, booleans are numbers.
    for (first, second) in [
        ("true", "1"),
        ("yes", "1.0"),
        ("false", "0"),
        ("0x1", "True"),
        ("off", "-0.0"),
    ] {
        duplicate(Format::Yaml, &format!("{first}: a\n{second}: b\n"), 2, 1);
    }
    duplicate(Format::Yaml, "v: &t true\nm: {1: a, *t : b}\n", 2, 2);
}

#[test]
fn yaml_alias_key_equal_to_a_written_key_refused() {
    let e = duplicate(Format::Yaml, "&x a: 1\n*x : 2\n", 2, 1);
    assert!(
        matches!(&e, SyntaxError::DuplicateKey { key, .. } if key == "*x"),
        "{e:?}"
    );
    duplicate(Format::Yaml, "v: &k a\nm:\n  a: 1\n  *k : 2\n", 4, 3);
    duplicate(Format::Yaml, "v: &k a\nm: {*k : 1, \"a\": 2}\n", 2, 2);
    duplicate(Format::Yaml, "v: &k \"1\"\nm: {*k : 1, 1.0: 2}\n", 2, 2);
}

#[test]
fn yaml_duplicate_collection_keys_refused() {
    duplicate(Format::Yaml, "? [a, b]\n: 1\n? [a, \"b\"]\n: 2\n", 3, 1);
    // Mappings compare as sets of pairs.
    duplicate(
        Format::Yaml,
        "? {a: 1, b: [2]}\n: x\n? {b: [2], \"a\": 1.0}\n: y\n",
        3,
        1,
    );
    // Through an alias to an anchored collection.
    duplicate(Format::Yaml, "? &c [a, b]\n: 1\n? *c\n: 2\n", 3, 1);
    let e = duplicate(Format::Yaml, "? [a]\n: 1\n? [a]\n: 2\n", 3, 1);
    assert!(
        matches!(&e, SyntaxError::DuplicateKey { key, column: 3, .. } if key == "[...]"),
        "{e:?}"
    );
}

#[test]
fn yaml_duplicate_long_keys_refused() {
    // Implicit keys are at most 1,024 characters (YAML 1.2.2 §7.4.2); explicit ones are not.
    let long = "k".repeat(1_000);
    duplicate(Format::Yaml, &format!("{long}: 1\n\"{long}\": 2\n"), 2, 1);
    duplicate(Format::Yaml, &format!("&x {long}: 1\n*x : 2\n"), 2, 1);
    let e = duplicate(Format::Yaml, &format!("{long}: 1\n{long}: 2\n"), 2, 1);
    assert!(
        matches!(&e, SyntaxError::DuplicateKey { key, .. } if *key == format!("{:?}...", &long[..60])),
        "{e:?}"
    );
    accepted(Format::Yaml, &format!("{long}: 1\n{long}x: 2\n"));
    let longer = "k".repeat(100_000);
    duplicate(
        Format::Yaml,
        &format!("? {longer}\n: 1\n? '{longer}'\n: 2\n"),
        3,
        1,
    );
}

#[test]
fn yaml_two_merge_keys_refused() {
    let defaults = "a: &a {x: 1}\nb: &b {y: 2}\n";
    let e = duplicate(
        Format::Yaml,
        &format!("{defaults}c:\n  <<: *a\n  <<: *b\n"),
        5,
        4,
    );
    assert!(
        matches!(e, SyntaxError::DuplicateMergeKey { column: 3, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 5 column 3: second merge key << in one mapping (first at line 4); loaders \
             disagree on whether both merge, write one with a list: <<: [*a, *b]"
    );
    // Readers without merge keys see the string "<<" twice.
    duplicate(
        Format::Yaml,
        &format!("{defaults}c: {{<<: *a, \"<<\": *b}}\n"),
        3,
        3,
    );
}

// ---- YAML: what is not a duplicate ----------------------------------------------------------

#[test]
fn yaml_merge_key_overrides_are_not_duplicates() {
    accepted(
        Format::Yaml,
        "base: &base {name: web, replicas: 1}\n\
             extra: &extra {replicas: 2, port: 80}\n\
             one:\n  <<: *base\n  replicas: 3\n\
             two:\n  <<: [*base, *extra]\n  name: api\n",
    );
}

#[test]
fn yaml_same_key_in_different_mappings_allowed() {
    accepted(
        Format::Yaml,
        "a: {x: 1}\nb: {x: 2}\nc:\n  - name: p\n  - name: q\nx: {x: {x: 1}}\n---\nx: 1\n",
    );
    // A key equal to a value is no duplicate, and neither are repeated sequence items.
    accepted(Format::Yaml, "a: a\nb: a\nc: [a, a, {a: a}]\n");
}

#[test]
fn yaml_keys_that_differ_as_values_allowed() {
    accepted(
        Format::Yaml,
        "a: 1\nA: 2\n\"0x10\": 3\n16: 4\n\"01\": 5\n1: 6\n1.5: 7\n0b1: 8\n1_0: 9\n\
             \"\": 10\n~: 11\nnan: 12\n.nan: 13\n? [a, b]\n: 14\n? [b, a]\n: 15\n? {a: 1}\n: 16\n\
             ? {a: 2}\n: 17\n? [a]\n: 18\n? {a: ~}\n: 19\n",
    );
}

#[test]
fn yaml_booleans_and_strings_of_numbers_stay_apart() {
    // No reader makes `true` the string "1", or `1` the string "true".
    accepted(Format::Yaml, "true: a\n\"1\": b\n");
    accepted(Format::Yaml, "1: a\n\"true\": b\n");
    accepted(Format::Yaml, "false: a\n\"0\": b\nnull: c\n0.5: d\n");
}

#[test]
fn yaml_alias_keys_to_different_anchors_allowed() {
    accepted(Format::Yaml, "x: &x a\ny: &y b\nm: {*x : 1, *y : 2}\n");
}

#[test]
fn yaml_many_distinct_keys_allowed() {
    let text: String = (0..100_000).map(|i| format!("k{i}: {i}\n")).collect();
    accepted(Format::Yaml, &text);
}

#[test]
fn yaml_long_alias_keys_reused_many_times_stay_linear() {
    // Each alias key reuses the anchor's digest; hashing the 100 kB key again for each of
    // the 9,999 mappings would read a gigabyte.
    let mut text = format!("k: &k {}\nm:\n", "x".repeat(100_000));
    for _ in 0..9_999 {
        text.push_str("- {*k : 1}\n");
    }
    accepted(Format::Yaml, &text);
}

#[test]
fn billion_laughs_through_collection_keys_refused() {
    // Each level is a mapping keyed by a sequence of ten aliases to the level before.
    let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} {{? [{aliases}] : x}}\n"));
    }
    let e = refused(Format::Yaml, &text);
    assert!(matches!(e, SyntaxError::AliasExpansion { .. }), "{e:?}");
}

// ---- JSON -----------------------------------------------------------------------------------

#[test]
fn json_duplicate_key_refused_with_both_lines() {
    let e = duplicate(
        Format::Json,
        "{\n  \"a\": 1,\n  \"b\": 2,\n  \"a\": 3\n}",
        4,
        2,
    );
    assert_eq!(
        e.to_string(),
        "line 4 column 3: duplicate key \"a\" (first at line 2); readers disagree on which \
             value wins, keep only one"
    );
    duplicate(Format::Json, r#"{"a": 1, "a": 1}"#, 1, 1);
}

#[test]
fn json_duplicate_key_hidden_by_escapes_refused() {
    for (first, second) in [
        (r#""a""#, r#""\u0061""#),
        (r#""/""#, r#""\/""#),
        (r#""a\"b""#, r#""a\u0022b""#),
        ("\"\u{1f600}\"", r#""\ud83d\ude00""#),
        (r#""\ud800""#, r#""\uD800""#),
        (r#""tab\t""#, r#""tab\u0009""#),
    ] {
        duplicate(Format::Json, &format!("{{{first}: 1, {second}: 2}}"), 1, 1);
    }
}

#[test]
fn json_duplicate_key_deep_in_the_document_refused() {
    let text = format!(
        "{}{{\"a\": 1, \"a\": 2}}{}",
        "[{\"x\": ".repeat(30),
        "}]".repeat(30)
    );
    duplicate(Format::Json, &text, 1, 1);
    duplicate(
        Format::Json,
        r#"[{"a": 1}, {"b": {"c": 1, "d": [], "c": 2}}]"#,
        1,
        1,
    );
}

#[test]
fn json_same_key_in_different_objects_allowed() {
    for text in [
        r#"[{"a": 1}, {"a": 2}]"#,
        r#"{"a": {"a": {"a": 1}}, "b": {"a": 2}}"#,
        r#"{"a": "a", "b": "a", "c": ["a", "a", {"a": "a"}]}"#,
        r#"{"a\\": 1, "a": 2, "a\"": 3, "A": 4}"#,
        r#"{"\ud800": 1, "\udc00": 2, "\ud800\udc00": 3}"#,
        r#"{"k": "{\"k\": 1, \"k\": 2}"}"#,
    ] {
        accepted(Format::Json, text);
    }
}

// ---- TOML -----------------------------------------------------------------------------------

#[test]
fn toml_duplicate_keys_written_differently_refused() {
    // TOML 1.1 forbids defining a key twice, whatever its quoting; the toml crate enforces it.
    for text in [
        "a = 1\n\"a\" = 2\n",
        "a = 1\n'a' = 2\n",
        "a = 1\n\"\\u0061\" = 2\n",
        "a.b = 1\n\"a\".'b' = 2\n",
        "[t]\na = 1\n[\"t\"]\nb = 2\n",
        "t = {a = 1, \"a\" = 2}\n",
    ] {
        let e = refused(Format::Toml, text);
        assert!(matches!(e, SyntaxError::Toml { .. }), "{text:?}: {e:?}");
    }
}

fn scalar_id(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> KeyId {
    Identity::scalar(value, style, tag).id
}

fn plain(value: &str) -> KeyId {
    scalar_id(value, ScalarStyle::Plain, None)
}

fn text(value: &str) -> KeyId {
    KeyId::Text(value.into())
}

#[test]
fn quoting_does_not_change_a_key() {
    for style in [
        ScalarStyle::SingleQuoted,
        ScalarStyle::DoubleQuoted,
        ScalarStyle::Literal,
    ] {
        assert_eq!(scalar_id("a", style, None), plain("a"));
    }
}

#[test]
fn core_schema_values_are_canonical() {
    for (written, canonical) in [
        ("", "null"),
        ("~", "null"),
        ("NULL", "null"),
        ("True", "true"),
        ("yes", "true"),
        ("OFF", "false"),
        ("n", "false"),
        ("16", "16"),
        ("+16", "16"),
        ("0016", "16"),
        ("0x10", "16"),
        ("0o20", "16"),
        ("-0", "0"),
        ("16.0", "16"),
        ("1.6e1", "16"),
        ("-0.0", "0"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("-.INF", "-.inf"),
        (".NaN", ".nan"),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        (
            "-000123456789012345678901234567890",
            "-123456789012345678901234567890",
        ),
    ] {
        assert_eq!(plain(written), text(canonical), "{written}");
    }
}

#[test]
fn strings_that_look_like_values_are_left_alone() {
    for written in [
        "0x", "0o8", "1_000", "1:30", ".", "e1", "1e", "+", "Yes!", "nan", "0b1",
    ] {
        assert_eq!(plain(written), text(written), "{written}");
    }
    // Quoted, a value-like scalar is a string, and equal to the value's text.
    assert_eq!(
        scalar_id("0x10", ScalarStyle::DoubleQuoted, None),
        text("0x10")
    );
    assert_eq!(
        scalar_id("16", ScalarStyle::DoubleQuoted, None),
        plain("16")
    );
}

#[test]
fn core_tags_choose_the_type() {
    let tag = |suffix: &str| Tag {
        handle: "tag:yaml.org,2002:".into(),
        suffix: suffix.into(),
    };
    let quoted = ScalarStyle::SingleQuoted;
    assert_eq!(scalar_id("0x10", quoted, Some(&tag("int"))), text("16"));
    assert_eq!(
        scalar_id("0x10", ScalarStyle::Plain, Some(&tag("str"))),
        text("0x10")
    );
    assert_eq!(scalar_id("~", quoted, Some(&tag("null"))), text("null"));
    let local = Tag {
        handle: "!".into(),
        suffix: "Ref".into(),
    };
    assert_eq!(scalar_id("a", ScalarStyle::Plain, Some(&local)), text("a"));
}

#[test]
fn long_keys_become_digests_and_stay_comparable() {
    let long = "k".repeat(INLINE + 1);
    let id = plain(&long);
    assert!(matches!(id, KeyId::Digest(_)));
    assert_eq!(id, scalar_id(&long, ScalarStyle::DoubleQuoted, None));
    assert_ne!(id, plain(&"k".repeat(INLINE + 2)));
    assert_eq!(plain(&"k".repeat(INLINE)), text(&"k".repeat(INLINE)));
}

fn build(mapping: bool, children: &[KeyId]) -> KeyId {
    let mut builder = IdBuilder::new(mapping);
    for child in children {
        builder.child(child);
    }
    builder.finish()
}

#[test]
fn collection_ids_compare_content() {
    let (a, b, one) = (text("a"), text("b"), text("1"));
    let seq = build(false, &[a.clone(), b.clone()]);
    assert_eq!(seq, build(false, &[a.clone(), b.clone()]));
    assert_ne!(seq, build(false, &[b.clone(), a.clone()]));
    assert_ne!(seq, build(true, &[a.clone(), b.clone()]));
    // Mappings are unordered.
    let map = build(true, &[a.clone(), one.clone(), b.clone(), one.clone()]);
    assert_eq!(
        map,
        build(true, &[b.clone(), one.clone(), a.clone(), one.clone()])
    );
    assert_ne!(
        map,
        build(true, &[a.clone(), one.clone(), b.clone(), a.clone()])
    );
    assert_ne!(map, build(true, &[a.clone(), one.clone()]));
    assert_ne!(build(false, &[]), build(true, &[]));
}

fn json(text: &str) -> Vec<u8> {
    let (decoded, end) = json_string(text.as_bytes());
    assert_eq!(end, text.len(), "{text}");
    decoded
}

#[test]
fn json_strings_decode_escapes() {
    assert_eq!(json(r#""a""#), b"a");
    assert_eq!(json(r#""\u0061""#), b"a");
    assert_eq!(json(r#""\/\"\\\b\f\n\r\t""#), b"/\"\\\x08\x0c\n\r\t");
    assert_eq!(json(r#""caf\u00e9""#), "caf\u{e9}".as_bytes());
    assert_eq!(json(r#""\ud83d\ude00""#), "\u{1f600}".as_bytes());
    assert_eq!(json("\"\u{1f600}\""), "\u{1f600}".as_bytes());
    // Lone surrogates equal only themselves.
    assert_eq!(json(r#""\ud800""#), [0xED, 0xA0, 0x80]);
    assert_ne!(json(r#""\ud800""#), json(r#""\udc00""#));
    assert_eq!(json(r#""\ud800\u0061""#), [0xED, 0xA0, 0x80, b'a']);
}
