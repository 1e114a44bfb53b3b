//! What the file name and the policy decide: the format a path is checked as, and the
//! `[syntax]` table of limits.

use serde::Deserialize;

use super::*;

#[test]
fn for_path_by_extension_case_insensitive() {
    assert_eq!(Format::for_path("apps/web/deploy.yaml"), Some(Format::Yaml));
    assert_eq!(Format::for_path("apps/web/deploy.YML"), Some(Format::Yaml));
    assert_eq!(Format::for_path("policy.Json"), Some(Format::Json));
    assert_eq!(Format::for_path("Cargo.TOML"), Some(Format::Toml));
    assert_eq!(Format::for_path("a.tar.yaml"), Some(Format::Yaml));
    assert_eq!(Format::for_path("README.md"), None);
    assert_eq!(Format::for_path("yaml"), None);
    assert_eq!(Format::for_path("dir.yaml/file"), None);
    assert_eq!(Format::for_path("values.yaml.bak"), None);
    assert_eq!(Format::for_path("x.jsonc"), None);
}

#[test]
fn for_path_bare_extension_is_still_checked() {
    // A policy glob `*.yaml` matches `.yaml`; it must not escape the check.
    assert_eq!(Format::for_path(".yaml"), Some(Format::Yaml));
    assert_eq!(Format::for_path("dir/.json"), Some(Format::Json));
}

// ---- Limits ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Policy {
    #[serde(default)]
    syntax: Limits,
}

#[test]
fn limits_default_when_table_missing_or_partial() {
    let policy: Policy = toml::from_str("").unwrap();
    assert_eq!(policy.syntax, Limits::default());
    let policy: Policy = toml::from_str("[syntax]\nmax_depth = 12\n").unwrap();
    assert_eq!(policy.syntax, with_depth(12));
}

#[test]
fn limits_refuse_unknown_field() {
    let e = toml::from_str::<Policy>("[syntax]\nmax_dept = 12\n")
        .err()
        .unwrap();
    assert!(e.to_string().contains("max_dept"), "{e}");
}

#[test]
fn limits_round_trip_through_toml() {
    let limits = Limits {
        max_depth: 7,
        max_yaml_aliases: 8,
        max_yaml_expanded_nodes: 9,
        max_documents: 10,
        allowed_yaml_tags: vec![AllowedTag::new("!Ref").unwrap()],
    };
    let text = toml::to_string(&limits).unwrap();
    assert_eq!(toml::from_str::<Limits>(&text).unwrap(), limits);
}
