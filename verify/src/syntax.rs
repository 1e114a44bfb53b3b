//! Bounded syntax validation of YAML, JSON and TOML files, with no duplicate keys and no
//! language-specific YAML tags.
//!
//! The pre-receive hook calls [`validate`] on every changed file whose name says it is YAML, JSON
//! or TOML ([`Format::for_path`]), and refuses the push if any of them is not a valid document
//! set. The pusher controls every byte, so each check is bounded in time, memory and stack
//! whatever the input:
//!
//! - Nothing here recurses on the input. YAML is read as a stream of `saphyr_parser` events and
//!   never built into a tree; JSON is checked with `serde_json`'s iterative `IgnoredAny` path; TOML
//!   is scanned for nesting before the `toml` crate, which does recurse, ever sees it.
//! - YAML aliases are never expanded. Each anchor remembers how many nodes and how many levels it
//!   would contribute once expanded, so a "billion laughs" file is refused after reading it once,
//!   in time linear in its size and memory linear in its number of anchors.
//! - Every bound is a field of [`Limits`], read from the `[syntax]` table of the policy file.
//!
//! Time and memory are linear in the file's size, which the caller caps, but not equally so for
//! every shape of file (release build, 1 MiB): block-style YAML takes ~50 ms and a few MB, JSON a
//! few ms. YAML that is one flow collection (`[a, a, …]`, JSON written as YAML) costs ~180 MB
//! and under a second, because `saphyr_parser`'s scanner keeps every token of a flow collection
//! until it closes (a possible implicit key never expires inside flow context); nesting flow
//! collections up to the parser's own limit of 255 multiplies the time per token by up to that
//! depth, not the memory. TOML peaks at ~80 MB for 1 MiB of small values.
//!
//! Beyond syntax, a file must mean one thing to every reader ("declarative means unambiguous"):
//!
//! - No mapping or object has the same key twice, in any format (`syntax/keys.rs` says what
//!   "the same" means in YAML and JSON; TOML forbids it in its grammar, and the `toml` crate
//!   refuses it). Each open mapping keeps a hash set of its keys' identities, so the check is
//!   linear; an alias used as a key reuses its anchor's identity and is never expanded.
//! - No YAML node has a tag other than YAML's own types and the ones the policy lists in
//!   [`Limits::allowed_yaml_tags`] (see [`AllowedTag`]), so no file can ask a loader to build
//!   objects of its language.
//!
//! Otherwise the check is syntax only: a file that passes is data a YAML 1.2, RFC 8259 or
//! TOML 1.1 parser will load, within the limits, and says nothing about whether a tool will
//! accept its contents.

mod error;
mod json;
mod keys;
mod limits;
mod tags;
mod toml_check;
mod yaml;

pub use error::SyntaxError;
pub use limits::{Limits, TOML_MAX_DEPTH};
pub use tags::{AllowedTag, AllowedTagError};

/// Which syntax a file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML 1.2, possibly several documents separated by `---`.
    Yaml,
    /// JSON as RFC 8259 defines it: exactly one value.
    Json,
    /// TOML 1.1.
    Toml,
}

impl Format {
    /// Returns the format a file's name says it holds, or `None` for files that are not
    /// syntax-checked.
    ///
    /// The extension is matched case-insensitively: `.yaml` and `.yml` are YAML, `.json` is JSON,
    /// `.toml` is TOML. A name that is only an extension (`.yaml`) counts too, because a glob such
    /// as `*.yaml` in the policy matches it, and it must not slip past the check.
    #[must_use]
    pub fn for_path(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (_, extension) = name.rsplit_once('.')?;
        if extension.eq_ignore_ascii_case("yaml") || extension.eq_ignore_ascii_case("yml") {
            Some(Format::Yaml)
        } else if extension.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if extension.eq_ignore_ascii_case("toml") {
            Some(Format::Toml)
        } else {
            None
        }
    }
}

/// Checks that `bytes` is one valid document set of `format` within `limits`.
///
/// A UTF-8 byte order mark at the start is allowed in every format. An empty file, or one of only
/// comments, is a valid YAML stream and a valid TOML document, but not valid JSON, which needs a
/// value.
///
/// # Errors
/// Returns the first problem found, with its line and column where there is one.
pub fn validate(format: Format, bytes: &[u8], limits: &Limits) -> Result<(), SyntaxError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SyntaxError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    match format {
        Format::Yaml => yaml::validate(text, limits),
        Format::Json => json::validate(text, limits),
        Format::Toml => toml_check::validate(text, limits),
    }
}

/// Returns the 1-based line and character column of byte `offset` in `text`.
///
/// An offset past the end, or inside a character, is clamped rather than trusted.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, 1 + count_chars(&before[line_start..]))
}

/// Counts the UTF-8 characters that start in `bytes` (every byte that is not a continuation).
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// Strips a leading UTF-8 byte order mark.
fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    /// Validates with the default limits.
    fn check(format: Format, text: &str) -> Result<(), SyntaxError> {
        validate(format, text.as_bytes(), &Limits::default())
    }

    #[track_caller]
    fn assert_ok(format: Format, text: &str) {
        if let Err(e) = check(format, text) {
            panic!("{format:?} refused: {e}");
        }
    }

    #[track_caller]
    fn refused(format: Format, text: &str) -> SyntaxError {
        match check(format, text) {
            Ok(()) => panic!("{format:?} accepted what it should refuse"),
            Err(e) => e,
        }
    }

    fn nested(open: &str, close: &str, levels: usize, inner: &str) -> String {
        format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
    }

    fn with_depth(max_depth: usize) -> Limits {
        Limits {
            max_depth,
            ..Limits::default()
        }
    }

    fn with_nodes(max_yaml_expanded_nodes: u64) -> Limits {
        Limits {
            max_yaml_expanded_nodes,
            ..Limits::default()
        }
    }

    // ---- Format::for_path -------------------------------------------------------------------

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

    // ---- Limits -----------------------------------------------------------------------------

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

    // ---- Realistic files pass ---------------------------------------------------------------

    const KUBERNETES: &str = r#"# Deployment and service for the web tier.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: web
  labels: &labels
    app.kubernetes.io/name: web
    app.kubernetes.io/part-of: shop
data:
  APP_MODE: production
  config.json: |
    {"feature_flags": {"new_checkout": true}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels: &labels
    app.kubernetes.io/name: web
    app.kubernetes.io/part-of: shop
  annotations:
    checksum/config: "4f2a9c0e"
spec:
  replicas: 3
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: web
          image: registry.example.com/shop/web:1.42.0
          args: ["--port", "8080", '--log-level=info']
          ports: [{containerPort: 8080, name: http}]
          env:
            - &env-defaults
              name: TZ
              value: UTC
            - <<: *env-defaults
              name: LANG
              value: C.UTF-8
          resources:
            limits: {cpu: 500m, memory: 256Mi}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            initialDelaySeconds: 5
---
apiVersion: v1
kind: Service
# The same anchor name again: anchors are per document.
metadata: {name: web, namespace: web, labels: &labels {app.kubernetes.io/name: web}}
spec:
  type: ClusterIP
  selector: *labels
  ports:
  - port: 80
    targetPort: http
...
"#;

    const HELM_VALUES: &str = r#"global:
  imageRegistry: registry.example.com
  imagePullSecrets: []
x-defaults: &defaults
  resources:
    requests: {cpu: 100m, memory: 128Mi}
  nodeSelector:
    kubernetes.io/os: linux
  tolerations: []
api:
  <<: *defaults
  replicaCount: 2
  image: {repository: shop/api, tag: "2.3.1", pullPolicy: IfNotPresent}
  extraEnv:
    - {name: DB_HOST, value: "postgres.db.svc"}
worker:
  <<: [*defaults]
  replicaCount: 1
  schedule: "*/5 * * * *"
  command:
    - /bin/sh
    - -c
    - >
      exec worker --queue=default
      --concurrency=4
ingress:
  enabled: true
  hosts:
    - host: shop.example.com
      paths: [{path: /, pathType: Prefix}]
  tls: ~
certificate: !!binary |
  R0lGODlhDAAMAIQAAP//9/X17unp5WZmZgAAAOfn515eXvPz7Y6OjuDg4J+fn5
empty:
? complex key
: value
"#;

    const JSON_POLICY: &str = r#"{
  "version": 1,
  "branches": ["main", "release/*"],
  "signers": {"ops": {"keys": ["ssh-ed25519 AAAAC3Nza..."], "quorum": 2}},
  "syntax": {"max_depth": 64, "ratio": 0.5, "big": 123456789012345678901234567890, "huge": 1e400},
  "unicode": "caf\u00e9 \ud83d\ude00 \u2603 snow ☃",
  "nothing": null, "yes": true, "no": false, "neg": -0.0e-5
}"#;

    const CARGO_TOML: &str = r#"# A Cargo-like manifest.
[package]
name = "shop"
version = "0.1.0"
edition = "2024"
authors = ["Ops <ops@example.com>"]
description = """
A shop.\
  Multi-line."""
license-file = 'LICENSE'

[dependencies]
serde = { version = "1", features = ["derive"] }
tokio = { version = "1.40", default-features = false, features = [
  "rt-multi-thread", # comment inside an array
  "macros",
] }
regex.version = "1.10"
regex.default-features = false

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[[bin]]
name = "shop"
path = "src/main.rs"

[[bin]]
name = "shop-admin"

[profile.release]
lto = true
opt-level = 3
debug = 0.5e1
released = 1979-05-27T07:32:00.999-08:00
times = [07:32:00, 1979-05-27]
hex = 0xDEADBEEF
"key with spaces" = "[not a table]"
'#not a comment' = '{not a table'
"#;

    #[test]
    fn kubernetes_multi_document_with_anchors_and_merge_keys() {
        assert_ok(Format::Yaml, KUBERNETES);
    }

    #[test]
    fn helm_values_with_merge_keys_tags_and_block_scalars() {
        assert_ok(Format::Yaml, HELM_VALUES);
    }

    #[test]
    fn json_policy_with_large_numbers_and_unicode_escapes() {
        assert_ok(Format::Json, JSON_POLICY);
    }

    #[test]
    fn cargo_like_toml() {
        assert_ok(Format::Toml, CARGO_TOML);
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_ok(Format::Yaml, "");
        assert_ok(Format::Yaml, "# nothing here\n  # still nothing\n");
        assert_ok(Format::Toml, "");
        assert_ok(Format::Toml, "# nothing here\n");
        // RFC 8259: a JSON text is exactly one value.
        assert!(matches!(
            refused(Format::Json, ""),
            SyntaxError::Json { .. }
        ));
        assert!(matches!(
            refused(Format::Json, "  \n"),
            SyntaxError::Json { .. }
        ));
    }

    #[test]
    fn utf8_byte_order_mark_allowed() {
        assert_ok(Format::Yaml, "\u{feff}a: 1\n");
        assert_ok(Format::Json, "\u{feff}{\"a\": 1}");
        assert_ok(Format::Toml, "\u{feff}a = 1\n");
    }

    #[test]
    fn crlf_line_endings() {
        assert_ok(Format::Yaml, &KUBERNETES.replace('\n', "\r\n"));
        assert_ok(Format::Yaml, &HELM_VALUES.replace('\n', "\r\n"));
        assert_ok(Format::Json, &JSON_POLICY.replace('\n', "\r\n"));
        assert_ok(Format::Toml, &CARGO_TOML.replace('\n', "\r\n"));
    }

    #[test]
    fn yaml_tags_are_data_when_allowed() {
        let text = "a: !!binary aGVsbG8=\nb: !Ref web\nc: !<tag:example.com,2024:x> 1\n\
                    d: !!set {x, y}\ne: !GetAtt [a, b]\n...\n%TAG !e! tag:example.com,2024:\n\
                    ---\nf: !e!x 1\n";
        let allowed = ["!Ref", "!GetAtt", "tag:example.com,2024:x"];
        let limits = Limits {
            allowed_yaml_tags: allowed
                .iter()
                .map(|t| AllowedTag::new(t).unwrap())
                .collect(),
            ..Limits::default()
        };
        validate(Format::Yaml, text.as_bytes(), &limits).unwrap();
        let e = refused(Format::Yaml, text);
        assert!(
            matches!(e, SyntaxError::ForbiddenTag { line: 2, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn yaml_multi_document_streams() {
        assert_ok(Format::Yaml, "a: 1\n---\nb: 2\n---\n- c\n...\n---\nd\n");
        assert_ok(Format::Yaml, "---\n---\n---\n");
        assert_ok(
            Format::Yaml,
            "%YAML 1.2\n---\na: 1\n...\n%YAML 1.2\n---\nb: 2\n",
        );
    }

    #[test]
    fn yaml_anchors_may_be_redefined() {
        assert_ok(Format::Yaml, "a: &x 1\nb: *x\nc: &x [2]\nd: *x\n");
    }

    #[test]
    fn json_accepts_what_rfc8259_allows() {
        for text in [
            "0",
            "-0",
            "\"\"",
            "null",
            "1e400",
            "-1E-400",
            "123456789012345678901234567890123456789",
            r#""\ud800""#,
            "[]",
            " \t\r\n[ ] \n",
            r#""\/\b\f\n\r\t\"\\""#,
        ] {
            assert_ok(Format::Json, text);
        }
    }

    #[test]
    fn json_brackets_inside_strings_do_not_nest() {
        let text = format!(r#"["{}", "\"[[["]"#, "[{".repeat(1000));
        assert_ok(Format::Json, &text);
    }

    #[test]
    fn toml_brackets_inside_strings_and_comments_do_not_nest() {
        let b = "[{".repeat(1000);
        let text = format!(
            "a = \"{b}\"\nb = '{b}'\nc = \"\"\"\n{b}\"\"\"\nd = '''{b}'''\n# {b}\n\
             e = \"\\\"{b}\"\nf = \"\"\"\\\"\"\"{b}\"\"\"\"\"\ng.h.i = 1.5\n"
        );
        assert_ok(Format::Toml, &text);
    }

    #[test]
    fn toml_1_1_inline_tables_span_lines() {
        assert_ok(Format::Toml, "a = {\n  b = 1,\n  c = [1, 2],\n}\n");
    }

    // ---- Syntax errors carry positions ------------------------------------------------------

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

    // ---- YAML aliases -----------------------------------------------------------------------

    /// Builds a billion-laughs document: `levels` anchors, each a list of `fanout` aliases to the
    /// previous one, above a list of `fanout` scalars. Returns it with its expanded node count.
    fn laughs(levels: usize, fanout: usize) -> (String, u64) {
        let mut text = format!("l0: &l0 [{}]\n", vec!["lol"; fanout].join(", "));
        let mut size = 1 + fanout as u64;
        let mut total = 1 + 1 + size; // the mapping, the key, the list
        for level in 1..=levels {
            let aliases = vec![format!("*l{}", level - 1); fanout].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
            size = 1 + fanout as u64 * size;
            total += 1 + size;
        }
        (text, total)
    }

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

    // ---- Depth ------------------------------------------------------------------------------

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

    // ---- Documents --------------------------------------------------------------------------

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

    // ---- Properties -------------------------------------------------------------------------

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
        prop::collection::vec(prop::sample::select(alphabet), 0..max)
            .prop_map(|parts| parts.concat())
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

    // ---- Throughput: cargo test --release --lib syntax -- --ignored --nocapture -------------

    #[test]
    #[ignore = "measures throughput; run in release"]
    fn throughput() {
        let mut yaml = String::new();
        let mut i = 0;
        while yaml.len() < 1 << 20 {
            yaml.push_str(&KUBERNETES.replace("name: web", &format!("name: web-{i}")));
            yaml.push_str("---\n");
            yaml.push_str(&HELM_VALUES.replace("global:", &format!("global{i}:")));
            yaml.push_str("---\n");
            i += 1;
        }
        let mut items = Vec::new();
        let mut json = String::new();
        while json.len() < 1 << 20 {
            items.push(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("web-{}", items.len()), "labels": {"app": "web", "tier": "frontend"}},
                "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "registry.example.com/shop/web:1.42.0", "ports": [{"containerPort": 8080}], "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}]}}}
            }));
            if items.len() % 64 == 0 {
                json = serde_json::to_string_pretty(&items).unwrap();
            }
        }
        let mut toml_text = String::new();
        while toml_text.len() < 1 << 20 {
            toml_text.push_str(&format!("[crate{i}]\nname = \"shop\"\nversion = \"0.1.{i}\"\nfeatures = [\"derive\", \"std\"]\ndeps = {{ serde = {{ version = \"1\", default-features = false }} }}\n[[crate{i}.bin]]\nname = \"shop-admin\"\npath = \"src/bin/admin.rs\"\n"));
            i += 1;
        }
        for (format, text) in [
            (Format::Yaml, &yaml),
            (Format::Json, &json),
            (Format::Toml, &toml_text),
        ] {
            assert_ok(format, text);
            let rounds = 10;
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                validate(format, text.as_bytes(), &Limits::default()).unwrap();
            }
            let seconds = start.elapsed().as_secs_f64() / f64::from(rounds);
            println!(
                "{format:?}: {} bytes in {:.2} ms, {:.1} MB/s",
                text.len(),
                seconds * 1e3,
                text.len() as f64 / seconds / 1e6
            );
        }
    }
}
