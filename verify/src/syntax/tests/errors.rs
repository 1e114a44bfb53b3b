//! Syntax errors, each with the line and column it names.

use super::*;

#[test]
fn yaml_error_has_line_and_column() {
    let e = refused(Format::Yaml, "a: 1\nb: c: d\n");
    assert!(
        matches!(
            e,
            SyntaxError::Yaml {
                line: 2,
                column: 5,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 2 column 5: yaml syntax error: mapping values are not allowed in this context"
    );
}

#[test]
fn yaml_tab_indentation_refused() {
    let e = refused(Format::Yaml, "a:\n\t- b\n");
    assert!(matches!(e, SyntaxError::Yaml { line: 2, .. }), "{e:?}");
}

#[test]
fn yaml_undeclared_tag_handle_refused() {
    let e = refused(Format::Yaml, "a: !e!thing 1\n");
    assert!(matches!(e, SyntaxError::Yaml { line: 1, .. }), "{e:?}");
}

#[test]
fn json_errors_have_line_and_character_column() {
    let e = refused(Format::Json, "{\n  \"caf\u{e9}\": 1,,\n}");
    assert!(
        matches!(
            e,
            SyntaxError::Json {
                line: 2,
                column: 13,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 2 column 13: json syntax error: key must be a string"
    );
}

#[test]
fn json_refuses_trailing_garbage_and_non_json() {
    for text in [
        "[1, 2] x",
        "{} {}",
        r#"{"a": 1,}"#,
        "[1,]",
        "01",
        "// comment\n{}",
        "{'a': 1}",
        "NaN",
        "\"tab\tinside\"",
        r#""\x41""#,
        "[1, 2",
    ] {
        assert!(
            matches!(refused(Format::Json, text), SyntaxError::Json { .. }),
            "{text}"
        );
    }
}

#[test]
fn toml_errors_have_line_and_column() {
    let e = refused(Format::Toml, "a = 1\nb = = 2\n");
    assert!(
        matches!(
            e,
            SyntaxError::Toml {
                line: 2,
                column: 5,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("line 2 column 5: toml syntax error: "),
        "{e}"
    );
}

#[test]
fn toml_refuses_duplicate_keys_and_tables() {
    let e = refused(Format::Toml, "a = 1\na = 2\n");
    assert!(matches!(e, SyntaxError::Toml { line: 2, .. }), "{e:?}");
    let e = refused(Format::Toml, "[a]\nb = 1\n[a]\n");
    assert!(matches!(e, SyntaxError::Toml { line: 3, .. }), "{e:?}");
}

#[test]
fn toml_refuses_integers_beyond_64_bits() {
    for text in [
        "a = 9223372036854775808",
        "a = 99999999999999999999",
        "a = 0xFFFFFFFFFFFFFFFFFF",
    ] {
        let e = refused(Format::Toml, text);
        assert!(
            e.to_string()
                .ends_with("integer out of range; toml integers are 64-bit signed"),
            "{e}"
        );
    }
    assert_ok(
        Format::Toml,
        "a = 9223372036854775807\nb = -9223372036854775808\n",
    );
}

#[test]
fn invalid_utf8_refused_with_offset() {
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let e = validate(format, b"a: \"ok\"\xff\xfe", &Limits::default())
            .err()
            .unwrap();
        assert!(matches!(e, SyntaxError::NotUtf8 { offset: 7 }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "byte 7: not valid utf-8; save the file as utf-8"
        );
    }
}

#[test]
fn utf16_refused_as_not_utf8() {
    let utf16 = [0xFF, 0xFE, b'a', 0, b':', 0];
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let e = validate(format, &utf16, &Limits::default()).err().unwrap();
        assert!(matches!(e, SyntaxError::NotUtf8 { offset: 0 }), "{e:?}");
    }
}
