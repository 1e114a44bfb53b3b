//! Nesting depth in every format, and the number of YAML documents.

use super::*;

#[test]
fn depth_limit_is_exact_in_every_format() {
    let limits = Limits::default();
    let yaml_block = |n: usize| {
        let mut text: String = (0..n).map(|i| format!("{}k:\n", "  ".repeat(i))).collect();
        text.push_str(&"  ".repeat(n));
        text.push_str("v\n");
        text
    };
    let cases: [(Format, &dyn Fn(usize) -> String); 6] = [
        (Format::Yaml, &|n| nested("[", "]", n, "")),
        (Format::Yaml, &yaml_block),
        (Format::Json, &|n| nested("{\"k\":", "}", n, "1")),
        // The root table is one level.
        (Format::Toml, &|n| {
            format!("a = {}\n", nested("[", "]", n - 1, ""))
        }),
        (Format::Toml, &|n| {
            format!("{} = 1\n", vec!["k"; n].join("."))
        }),
        (Format::Toml, &|n| {
            format!("[{}]\nv = 1\n", vec!["k"; n - 1].join("."))
        }),
    ];
    for (format, make) in cases {
        let within = make(limits.max_depth);
        let beyond = make(limits.max_depth + 1);
        if let Err(e) = validate(format, within.as_bytes(), &limits) {
            panic!("{format:?} refused {within:?}: {e}");
        }
        let e = validate(format, beyond.as_bytes(), &limits).err().unwrap();
        assert!(
            matches!(e, SyntaxError::TooDeep { max: 64, .. }),
            "{format:?} {e:?}"
        );
    }
}

#[test]
fn too_deep_message() {
    let e = refused(Format::Json, &nested("[", "]", 100, ""));
    assert_eq!(
        e.to_string(),
        "line 1: nesting deeper than 64 levels; flatten the document or raise [syntax] max_depth"
    );
}

#[test]
fn yaml_100k_open_brackets_refused() {
    for open in ["[", "{", "[{", "{a: [", "? {", "[a: ", "{? ["] {
        let e = refused(Format::Yaml, &open.repeat(100_000));
        assert!(matches!(e, SyntaxError::TooDeep { .. }), "{open}: {e:?}");
    }
}

#[test]
fn yaml_one_mib_of_brackets_refused() {
    let e = refused(Format::Yaml, &"[".repeat(1 << 20));
    assert!(matches!(e, SyntaxError::TooDeep { line: 1, .. }), "{e:?}");
}

#[test]
fn yaml_deep_flow_beyond_parser_limit_with_high_max_depth() {
    // saphyr refuses a 256th nested flow collection itself.
    let e = validate(
        Format::Yaml,
        "[".repeat(100_000).as_bytes(),
        &with_depth(10_000),
    )
    .err()
    .unwrap();
    assert!(matches!(e, SyntaxError::Yaml { .. }), "{e:?}");
}

#[test]
fn yaml_deep_block_nesting_refused() {
    // `- - - - …` nests a block sequence per dash, on one line.
    let e = refused(Format::Yaml, &"- ".repeat(100_000));
    assert!(matches!(e, SyntaxError::TooDeep { line: 1, .. }), "{e:?}");
    let text: String = (0..1_400)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    let e = refused(Format::Yaml, &text);
    assert!(matches!(e, SyntaxError::TooDeep { line: 65, .. }), "{e:?}");
}

#[test]
fn json_100k_levels_refused() {
    let e = refused(Format::Json, &nested("[", "]", 100_000, ""));
    assert!(matches!(e, SyntaxError::TooDeep { .. }), "{e:?}");
    let e = refused(Format::Json, &nested("{\"a\":", "}", 100_000, "1"));
    assert!(matches!(e, SyntaxError::TooDeep { .. }), "{e:?}");
    // Unclosed, it is first a syntax error.
    let e = refused(Format::Json, &"[".repeat(1 << 20));
    assert!(matches!(e, SyntaxError::Json { .. }), "{e:?}");
}

#[test]
fn toml_100k_levels_refused_before_parsing() {
    for text in [
        format!("a = {}", nested("[", "]", 100_000, "")),
        format!("a = {}", "[".repeat(1 << 20)),
        format!("a = {}", "{b = ".repeat(100_000)),
        format!("{} = 1", vec!["k"; 100_000].join(".")),
        format!("[{}]", vec!["k"; 100_000].join(".")),
        format!("[[{}]]", vec!["k"; 100_000].join(".")),
    ] {
        let e = refused(Format::Toml, &text);
        assert!(matches!(e, SyntaxError::TooDeep { line: 1, .. }), "{e:?}");
    }
}

#[test]
fn toml_dotted_keys_inside_nested_inline_tables_refused() {
    // Within the toml crate's own guards (80 levels of inline tables, 80-part keys) this
    // nests 6,400 deep, and overflows a 2 MiB stack if it reaches the parser.
    let key = vec!["k"; 79].join(".");
    let text = format!("a = {}", nested(&format!("{{ {key} = "), "}", 79, "1"));
    let e = refused(Format::Toml, &text);
    assert!(matches!(e, SyntaxError::TooDeep { .. }), "{e:?}");
}

#[test]
fn toml_depth_capped_whatever_the_limit() {
    // With the limit off, the cap holds. Each `{ k.k.k.k.k.k.k.k = ` is 8 levels and the last
    // one's dotted tables 7 more: 1 + 15 * 8 + 7 = 128 levels parse, 136 do not.
    let key = ["k"; 8].join(".");
    let text = format!("a = {}", nested(&format!("{{ {key} = "), "}", 15, "1"));
    assert!(validate(Format::Toml, text.as_bytes(), &with_depth(usize::MAX)).is_ok());
    let text = format!("a = {}", nested(&format!("{{ {key} = "), "}", 16, "1"));
    let e = validate(Format::Toml, text.as_bytes(), &with_depth(usize::MAX))
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            SyntaxError::TooDeep {
                max: TOML_MAX_DEPTH,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn toml_arrays_of_tables_counted_exactly_after_parsing() {
    // Each `[[…]]` header is two levels (array, table): 1 + 2 * 5 = 11 levels.
    let text = "[[a]]\n[[a.b]]\n[[a.b.c]]\n[[a.b.c.d]]\n[[a.b.c.d.e]]\n";
    assert!(validate(Format::Toml, text.as_bytes(), &with_depth(11)).is_ok());
    let e = validate(Format::Toml, text.as_bytes(), &with_depth(10))
        .err()
        .unwrap();
    assert!(
        matches!(e, SyntaxError::TooDeep { line: 5, max: 10 }),
        "{e:?}"
    );
}

#[test]
fn toml_floats_and_dates_in_deep_arrays_are_not_keys() {
    let text = format!(
        "a = {}\n",
        nested("[", "]", 63, "1.5, 1979-05-27T07:32:00.999Z")
    );
    assert_ok(Format::Toml, &text);
}

#[test]
fn toml_quotes_inside_atoms_do_not_hide_brackets() {
    // toml_parser's atoms run past a quote, so the brackets after it are structure.
    let text = format!("a = b\"{}\n", "[".repeat(100_000));
    let e = refused(Format::Toml, &text);
    assert!(matches!(e, SyntaxError::TooDeep { .. }), "{e:?}");
}

#[test]
fn toml_mismatched_brackets_cannot_hide_depth() {
    for text in [
        format!("a = {}", "[}".repeat(100_000)),
        format!("a = {}", "{a = [}".repeat(100_000)),
        format!("[a{}]", "[".repeat(100_000)),
    ] {
        let e = refused(Format::Toml, &text);
        assert!(matches!(e, SyntaxError::TooDeep { .. }), "{e:?}");
    }
}

#[test]
fn zero_depth_allows_only_yaml_and_json_scalars() {
    let limits = with_depth(0);
    assert!(validate(Format::Yaml, b"x", &limits).is_ok());
    assert!(validate(Format::Json, b"1", &limits).is_ok());
    assert!(validate(Format::Yaml, b"[]", &limits).is_err());
    assert!(validate(Format::Json, b"[]", &limits).is_err());
    assert!(validate(Format::Toml, b"", &limits).is_err());
}

// ---- Documents ------------------------------------------------------------------------------

#[test]
fn many_tiny_documents_refused() {
    let e = refused(Format::Yaml, &"---\n".repeat(1 << 18));
    assert!(
        matches!(e, SyntaxError::TooManyDocuments { max: 10_000 }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "more than 10000 yaml documents in one file; split the file or raise [syntax] max_documents"
    );
    assert_ok(Format::Yaml, &"--- a\n".repeat(10_000));
    assert!(check(Format::Yaml, &"--- a\n".repeat(10_001)).is_err());
}

#[test]
fn yaml_flow_collection_spanning_the_file() {
    // saphyr's scanner buffers a whole top-level flow collection before its first event
    // (in flow context a possible simple key never goes stale); memory stays linear.
    let text = format!("[{}]", vec!["{a: b}"; 100_000].join(", "));
    assert_ok(Format::Yaml, &text);
}
