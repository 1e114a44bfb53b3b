//! Files that must pass: realistic manifests, and the corners of each grammar real files use;
//! and how fast they are checked.

use super::*;

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

// ---- Throughput: cargo test --release --lib syntax -- --ignored --nocapture -----------------

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
