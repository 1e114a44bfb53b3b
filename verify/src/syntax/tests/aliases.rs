//! YAML aliases: expansion bombs, undefined and recursive aliases, and the depth they add.

use super::*;

#[test]
fn billion_laughs_refused() {
    let (text, total) = laughs(9, 10);
    assert!(total > 1_000_000_000);
    let e = refused(Format::Yaml, &text);
    assert!(
        matches!(
            e,
            SyntaxError::AliasExpansion {
                line: 6,
                max: 1_000_000
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 6: yaml alias expansion would exceed 1000000 nodes (billion laughs?); \
             remove the anchors or raise [syntax] max_yaml_expanded_nodes"
    );
}

#[test]
fn billion_laughs_in_block_style_refused() {
    let mut text = String::from("a: &a\n");
    text.push_str(&"  - lol\n".repeat(10));
    for (prev, name) in "abcdefghi".chars().zip("bcdefghij".chars()) {
        text.push_str(&format!("{name}: &{name}\n"));
        text.push_str(&format!("  - *{prev}\n").repeat(10));
    }
    let e = refused(Format::Yaml, &text);
    assert!(matches!(e, SyntaxError::AliasExpansion { .. }), "{e:?}");
}

#[test]
fn billion_laughs_through_merge_keys_refused() {
    let mut text = String::from("a: &a {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5}\n");
    for (prev, name) in "abcdefghi".chars().zip("bcdefghij".chars()) {
        let merges: Vec<String> = (0..10).map(|i| format!("m{i}: {{<<: *{prev}}}")).collect();
        text.push_str(&format!("{name}: &{name} {{{}}}\n", merges.join(", ")));
    }
    let e = refused(Format::Yaml, &text);
    assert!(matches!(e, SyntaxError::AliasExpansion { .. }), "{e:?}");
}

#[test]
fn wide_and_shallow_alias_bomb_refused() {
    // One anchor of 100,000 scalars used 20 times: few aliases, 2,000,000 nodes.
    let text = format!(
        "a: &a [{}]\nb: [{}]\n",
        vec!["x"; 100_000].join(","),
        vec!["*a"; 20].join(",")
    );
    let e = refused(Format::Yaml, &text);
    assert!(
        matches!(e, SyntaxError::AliasExpansion { line: 2, .. }),
        "{e:?}"
    );
}

#[test]
fn alias_expansion_counted_exactly() {
    let (text, total) = laughs(3, 7);
    assert!(validate(Format::Yaml, text.as_bytes(), &with_nodes(total)).is_ok());
    let e = validate(Format::Yaml, text.as_bytes(), &with_nodes(total - 1))
        .err()
        .unwrap();
    assert!(
        matches!(e, SyntaxError::AliasExpansion { line: 4, .. }),
        "{e:?}"
    );
}

#[test]
fn alias_expansion_counts_across_documents() {
    let document = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a]\n";
    let text = format!("{document}---\n{document}");
    // Each document: mapping, 2 keys, list of 10, list of 1 + 5 * 10 = 64 nodes.
    assert!(validate(Format::Yaml, text.as_bytes(), &with_nodes(128)).is_ok());
    assert!(validate(Format::Yaml, text.as_bytes(), &with_nodes(127)).is_err());
}

#[test]
fn many_nodes_without_aliases_named_as_such() {
    let text = format!("[{}]", vec!["x"; 100].join(","));
    let e = validate(Format::Yaml, text.as_bytes(), &with_nodes(100))
        .err()
        .unwrap();
    assert!(
        matches!(e, SyntaxError::TooManyNodes { line: 1, max: 100 }),
        "{e:?}"
    );
}

#[test]
fn too_many_aliases_refused() {
    let text = format!("a: &a 1\nb: [{}]\n", vec!["*a"; 10_001].join(", "));
    let e = refused(Format::Yaml, &text);
    assert!(
        matches!(
            e,
            SyntaxError::TooManyAliases {
                line: 2,
                max: 10_000
            }
        ),
        "{e:?}"
    );
    let text = format!("a: &a 1\nb: [{}]\n", vec!["*a"; 10_000].join(", "));
    assert_ok(Format::Yaml, &text);
}

#[test]
fn undefined_alias_refused_with_name() {
    let e = refused(Format::Yaml, "a: 1\nb: [x, *missing]\n");
    assert!(
        matches!(&e, SyntaxError::UndefinedAlias { line: 2, column: 8, name } if name == "missing"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "line 2 column 8: yaml alias *missing has no anchor &missing before it in the same \
             document; define the anchor first or write the value out"
    );
}

#[test]
fn alias_before_its_anchor_refused() {
    let e = refused(Format::Yaml, "a: *later\nb: &later 1\n");
    assert!(
        matches!(e, SyntaxError::UndefinedAlias { line: 1, .. }),
        "{e:?}"
    );
}

#[test]
fn alias_into_previous_document_refused() {
    // Anchors are scoped to their document; saphyr's event iterator does not enforce it.
    let e = refused(Format::Yaml, "a: &x 1\n---\nb: *x\n");
    assert!(
        matches!(&e, SyntaxError::UndefinedAlias { line: 3, column: 4, name } if name == "x"),
        "{e:?}"
    );
}

#[test]
fn recursive_alias_refused() {
    let e = refused(Format::Yaml, "a: &x [1, {b: *x}]\n");
    assert!(
        matches!(&e, SyntaxError::RecursiveAlias { line: 1, name, .. } if name == "x"),
        "{e:?}"
    );
}

#[test]
fn alias_expansion_counts_toward_depth() {
    // The anchor is 40 deep: used 39 deep, it would expand to 79 levels.
    let deep = nested("[", "]", 40, "x");
    let text = format!("a: &a {deep}\nb: {}\n", nested("[", "]", 39, "*a"));
    let e = refused(Format::Yaml, &text);
    assert!(
        matches!(e, SyntaxError::TooDeep { line: 2, max: 64 }),
        "{e:?}"
    );
    // Used 23 deep under the top-level mapping, it expands to exactly 64.
    let text = format!("a: &a {deep}\nb: {}\n", nested("[", "]", 23, "*a"));
    assert_ok(Format::Yaml, &text);
}

#[test]
fn chained_anchors_cannot_stack_depth() {
    // Each anchor adds 10 levels to the one before: 10 anchors expand to 100 levels.
    let mut text = format!("a0: &a0 {}\n", nested("[", "]", 10, "x"));
    for i in 1..10 {
        let inner = format!("*a{}", i - 1);
        text.push_str(&format!("a{i}: &a{i} {}\n", nested("[", "]", 10, &inner)));
    }
    let e = refused(Format::Yaml, &text);
    assert!(matches!(e, SyntaxError::TooDeep { .. }), "{e:?}");
}
