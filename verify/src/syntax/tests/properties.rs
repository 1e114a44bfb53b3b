//! Properties over generated input: token soups never panic, tighter limits never pass more,
//! serialized values are valid.

use proptest::prelude::*;

use super::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[^\\x00]{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-zA-Z0-9 _.\\[\\]{}:#&*!|>'\"-]{0,10}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings of the tokens that drive parser state, to reach deep states more often than
/// random bytes do.
fn soup(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max).prop_map(|parts| parts.concat())
}

const YAML_TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ": ",
    "- ",
    "? ",
    "\n",
    "\n  ",
    " ",
    "\t",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!t ",
    "!!str ",
    "|\n",
    ">-\n",
    "\"",
    "'",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "a",
    "1",
    "\\",
    "<<: ",
    "\u{feff}",
    "\r\n",
];

const TOML_TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "=",
    " = ",
    "\n",
    "\r\n",
    " ",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "#",
    "\\",
    "a",
    "1",
    "1.5",
    "true",
    "1979-05-27",
    "\u{feff}",
];

const JSON_TOKENS: &[&str] = &[
    "[", "]", "{", "}", ",", ":", "\"", "\\", "1", "e", "-", ".", " ", "\n", "null",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::Yaml, Format::Json, Format::Toml] {
            let _ = validate(format, &bytes, &Limits::default());
        }
    }

    #[test]
    fn yaml_token_soup_never_panics(text in soup(YAML_TOKENS, 400)) {
        let _ = check(Format::Yaml, &text);
    }

    #[test]
    fn toml_token_soup_never_panics(text in soup(TOML_TOKENS, 400)) {
        let _ = check(Format::Toml, &text);
    }

    #[test]
    fn json_token_soup_never_panics(text in soup(JSON_TOKENS, 400)) {
        let _ = check(Format::Json, &text);
    }

    #[test]
    fn passing_tight_limits_implies_passing_default_ones(
        text in prop_oneof![soup(YAML_TOKENS, 300), soup(TOML_TOKENS, 300), soup(JSON_TOKENS, 300)],
    ) {
        let tight = Limits {
            max_depth: 4,
            max_yaml_aliases: 3,
            max_yaml_expanded_nodes: 40,
            max_documents: 2,
            allowed_yaml_tags: Vec::new(),
        };
        for format in [Format::Yaml, Format::Json, Format::Toml] {
            let default = check(format, &text);
            let tight = validate(format, text.as_bytes(), &tight);
            prop_assert!(!(tight.is_ok() && default.is_err()), "{:?}", default);
        }
    }

    #[test]
    fn serialized_json_is_valid_json_and_yaml(value in json_value()) {
        let compact = serde_json::to_string(&value).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        for text in [&compact, &pretty] {
            let json = check(Format::Json, text);
            prop_assert!(json.is_ok(), "{}: {:?}", text, json);
            // YAML 1.2 is a superset of JSON.
            let yaml = check(Format::Yaml, text);
            prop_assert!(yaml.is_ok(), "{}: {:?}", text, yaml);
        }
    }

    #[test]
    fn serialized_toml_is_valid_toml(value in json_value()) {
        // TOML has no null, and its root is a table: keep what converts.
        let table = match toml::Value::try_from(&value) {
            Ok(toml::Value::Table(table)) => table,
            _ => toml::Table::new(),
        };
        let text = toml::to_string(&table).unwrap();
        let result = check(Format::Toml, &text);
        prop_assert!(result.is_ok(), "{}: {:?}", text, result);
    }

    #[test]
    fn deep_toml_is_refused_or_parsed_never_overflows(
        levels in prop::collection::vec((0usize..90, any::<bool>()), 0..120),
        max_depth in prop_oneof![Just(64usize), Just(usize::MAX), 0usize..200],
    ) {
        let mut text = String::from("x = ");
        let mut closers = String::new();
        for (dots, is_table) in &levels {
            if *is_table {
                text.push_str(&format!("{{ {} = ", vec!["k"; dots + 1].join(".")));
                closers.insert(0, '}');
            } else {
                text.push('[');
                closers.insert(0, ']');
            }
        }
        text.push('1');
        text.push_str(&closers);
        let result = validate(Format::Toml, text.as_bytes(), &with_depth(max_depth));
        prop_assert!(
            matches!(result, Ok(()) | Err(SyntaxError::TooDeep { .. } | SyntaxError::Toml { .. })),
            "{:?}", result
        );
    }

    #[test]
    fn alias_expansion_matches_a_direct_count(levels in 0usize..6, fanout in 1usize..12) {
        let (text, total) = laughs(levels, fanout);
        prop_assert!(validate(Format::Yaml, text.as_bytes(), &with_nodes(total)).is_ok());
        let over = validate(Format::Yaml, text.as_bytes(), &with_nodes(total - 1));
        let refused = matches!(
            over,
            Err(SyntaxError::AliasExpansion { .. } | SyntaxError::TooManyNodes { .. })
        );
        prop_assert!(refused, "{:?}", over);
    }
}
