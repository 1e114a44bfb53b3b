//! Which YAML tags a file may use.
//!
//! A tag tells the loader what to build. The YAML-defined ones build data; language-specific
//! ones (`!!python/object/apply:os.system`, `!ruby/object:Gem::Installer`, `!!js/function`,
//! `!!java.util.URL`, SnakeYAML's `!!javax.script.ScriptEngineManager`) make PyYAML's unsafe
//! loaders, Psych, js-yaml's full schema or SnakeYAML build objects of the loader's language
//! and, through them, run code. A GitOps repository holds data, and its files are read by
//! tools nobody audited for their loader settings, so the rule is an allow-list:
//!
//! - The tags of YAML's own types (the core schema and the yaml.org type repository):
//!   `tag:yaml.org,2002:` followed by `str`, `int`, `float`, `bool`, `null`, `map`, `seq`,
//!   `binary`, `timestamp`, `set`, `omap`, `pairs`, `merge` or `value`; written `!!str` or
//!   verbatim `!<tag:yaml.org,2002:str>`.
//! - The non-specific tag `!`, which only asks for the node to be read as a string, sequence
//!   or mapping by its kind.
//! - Exactly the tags listed in `[syntax] allowed_yaml_tags`, such as CloudFormation's `!Ref`,
//!   `!Sub` and `!GetAtt`. There are no globs: each tag a team's tools need is named.
//!
//! The tag judged is the one the parser resolves, after `%TAG` directives and `%`-escapes, not
//! the text written: `%TAG !! tag:yaml.org,2002:python/` followed by `!!object` is the tag
//! `tag:yaml.org,2002:python/object` and is refused, and `!!st%72` is `!!str`. `%TAG`
//! directives apply to one document only (YAML 1.2.2 §6.8.2), as saphyr-parser applies them.
//! An allow-list entry is therefore written in resolved form: `!name` for a local tag (a
//! `%TAG ! prefix` directive turns `!name` into `prefixname`), or the full tag URI for a
//! global one. Shorthands that depend on a document's directives (`!!x`, `!h!x`) cannot be
//! listed.

use std::fmt;

use saphyr_parser::Tag;
use serde::{Deserialize, Serialize};

/// The prefix the `!!` handle stands for unless a `%TAG` directive says otherwise.
const YAML_ORG: &str = "tag:yaml.org,2002:";

/// The types under [`YAML_ORG`] that build plain data.
const YAML_TYPES: &[&str] = &[
    "str",
    "int",
    "float",
    "bool",
    "null",
    "map",
    "seq",
    "binary",
    "timestamp",
    "set",
    "omap",
    "pairs",
    "merge",
    "value",
];

/// One entry of `[syntax] allowed_yaml_tags`: a local tag (`!Ref`) or a global tag URI
/// (`tag:example.com,2024:widget`), as a document resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedTag(String);

impl AllowedTag {
    /// Checks that `tag` is a tag a document can resolve to, and can therefore be listed.
    ///
    /// # Errors
    /// Returns why the entry could never match, and how to write it instead.
    pub fn new(tag: &str) -> Result<AllowedTag, AllowedTagError> {
        let reason = if tag.is_empty() {
            Some("is empty")
        } else if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("contains whitespace or control characters, which no tag can")
        } else if tag == "!" {
            Some("is the non-specific tag, which is always allowed")
        } else if tag.starts_with("!!") {
            Some(
                "uses the !! handle, which a %TAG directive can redefine; list the tag it \
                 stands for, tag:yaml.org,2002: followed by the rest",
            )
        } else if let Some(local) = tag.strip_prefix('!') {
            local.contains('!').then_some(
                "uses a named handle, which only a document's %TAG directive defines; list \
                 the tag it stands for, the handle's prefix followed by the rest",
            )
        } else if !tag.contains(':') {
            Some("is neither a local tag (!name) nor a global tag URI (scheme:...)")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(AllowedTagError {
                tag: tag.to_owned(),
                reason,
            }),
            None => Ok(AllowedTag(tag.to_owned())),
        }
    }

    /// The tag as listed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AllowedTag {
    type Error = AllowedTagError;
    fn try_from(tag: String) -> Result<AllowedTag, AllowedTagError> {
        AllowedTag::new(&tag)
    }
}

impl From<AllowedTag> for String {
    fn from(tag: AllowedTag) -> String {
        tag.0
    }
}

impl fmt::Display for AllowedTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `allowed_yaml_tags` entry that no document could ever resolve to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed_yaml_tags entry {tag:?} {reason}")]
pub struct AllowedTagError {
    /// The entry.
    pub tag: String,
    /// Why it cannot match, and what to write instead.
    pub reason: &'static str,
}

/// Returns the resolved tag when the policy does not allow it, `None` when it does.
pub(super) fn refused(tag: &Tag, allowed: &[AllowedTag]) -> Option<String> {
    // saphyr-parser resolves `!!x` and `!h!x` to (prefix, x), `!x` to ("!", x) unless `%TAG !`
    // redefines it, the non-specific `!` to ("", "!") and a verbatim `!<uri>` to ("", uri).
    let resolved = format!("{}{}", tag.handle, tag.suffix);
    let yaml_type = resolved
        .strip_prefix(YAML_ORG)
        .is_some_and(|name| YAML_TYPES.contains(&name));
    let listed = allowed.iter().any(|a| a.0 == resolved);
    (!(yaml_type || listed || resolved == "!")).then_some(resolved)
}

/// Reads the tag as written at 1-based `line`, 0-based character column `col`, where the parser
/// places a node whose properties (`&anchor`, `!tag`) come first.
///
/// Only error paths call this, so a linear search is fine. Returns an empty string if no tag is
/// found there.
pub(super) fn written(text: &str, line: usize, col: usize) -> String {
    let Some(source_line) = text.split('\n').nth(line.saturating_sub(1)) else {
        return String::new();
    };
    let mut rest: String = source_line.chars().skip(col).collect();
    // At most an anchor before the tag.
    for _ in 0..2 {
        let token_end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
            .unwrap_or(rest.len());
        if rest.starts_with('!') {
            // A verbatim tag may hold flow indicators; it ends at `>`.
            let end = if rest.starts_with("!<") {
                rest.find('>').map_or(token_end, |i| i + 1)
            } else {
                token_end
            };
            return rest.chars().take(end.min(200)).collect();
        }
        if !rest.starts_with('&') {
            break;
        }
        rest = rest[token_end..].trim_start().to_owned();
    }
    String::new()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::syntax::{Format, Limits, SyntaxError, validate};

    fn allowing(tags: &[&str]) -> Limits {
        Limits {
            allowed_yaml_tags: tags.iter().map(|t| AllowedTag::new(t).unwrap()).collect(),
            ..Limits::default()
        }
    }

    /// Asserts that `text` is refused for the tag that resolves to `resolved` on `line`, and
    /// returns the refusal.
    #[track_caller]
    fn forbidden(text: &str, limits: &Limits, line: usize, resolved: &str) -> SyntaxError {
        match validate(Format::Yaml, text.as_bytes(), limits) {
            Err(e @ SyntaxError::ForbiddenTag { .. }) => {
                if let SyntaxError::ForbiddenTag { line: l, tag, .. } = &e {
                    assert_eq!((*l, tag.as_str()), (line, resolved), "{text:?}");
                }
                e
            }
            other => panic!("{text:?}: expected a forbidden tag, got {other:?}"),
        }
    }

    #[track_caller]
    fn accepted(text: &str, limits: &Limits) {
        if let Err(e) = validate(Format::Yaml, text.as_bytes(), limits) {
            panic!("refused {text:?}: {e}");
        }
    }

    const PY: &str = "tag:yaml.org,2002:python/";

    #[test]
    fn python_object_apply_refused_with_tag_line_and_fix() {
        let text = "safe: 1\nrun: !!python/object/apply:os.system [\"id\"]\n";
        let e = forbidden(
            text,
            &Limits::default(),
            2,
            "tag:yaml.org,2002:python/object/apply:os.system",
        );
        assert!(
            matches!(&e, SyntaxError::ForbiddenTag { column: 6, written, .. } if written == "!!python/object/apply:os.system"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "line 2 column 6: yaml tag !!python/object/apply:os.system (resolved: \
             tag:yaml.org,2002:python/object/apply:os.system) is not allowed: tags other than \
             yaml's own types can make a loader build objects or run code; remove the tag, or \
             ask an administrator to add \"tag:yaml.org,2002:python/object/apply:os.system\" to \
             [syntax] allowed_yaml_tags"
        );
    }

    #[test]
    fn language_tags_of_every_loader_refused() {
        let none = Limits::default();
        for (text, resolved) in [
            (
                "a: !!python/name:os.system ''\n",
                "tag:yaml.org,2002:python/name:os.system",
            ),
            (
                "a: !!python/object/new:subprocess.Popen [[ls]]\n",
                "tag:yaml.org,2002:python/object/new:subprocess.Popen",
            ),
            (
                "a: !ruby/object:Gem::Installer\n  i: x\n",
                "!ruby/object:Gem::Installer",
            ),
            (
                "a: !ruby/hash:ActionController::Routing::RouteSet {}\n",
                "!ruby/hash:ActionController::Routing::RouteSet",
            ),
            (
                "a: !!js/function 'function () { return 1 }'\n",
                "tag:yaml.org,2002:js/function",
            ),
            ("a: !!js/regexp /x/\n", "tag:yaml.org,2002:js/regexp"),
            (
                "a: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL [\"http://x\"]]]]\n",
                "tag:yaml.org,2002:javax.script.ScriptEngineManager",
            ),
            (
                "a: !!java.util.HashMap {}\n",
                "tag:yaml.org,2002:java.util.HashMap",
            ),
            (
                "a: !!perl/code '{ system(1) }'\n",
                "tag:yaml.org,2002:perl/code",
            ),
            (
                "a: !<tag:yaml.org,2002:python/object:os.system> x\n",
                "tag:yaml.org,2002:python/object:os.system",
            ),
            (
                "a: !<tag:ruby.yaml.org,2002:object:Gem::Requirement> {}\n",
                "tag:ruby.yaml.org,2002:object:Gem::Requirement",
            ),
            ("a: !<!Ref> x\n", "!Ref"),
            ("a: !Ref x\n", "!Ref"),
        ] {
            forbidden(text, &none, 1, resolved);
        }
    }

    #[test]
    fn tags_refused_wherever_they_stand() {
        let none = Limits::default();
        // On a key, a mapping, a sequence, inside flow, under an anchor, deep, in a later document.
        forbidden("!!python/str k: v\n", &none, 1, &format!("{PY}str"));
        forbidden(
            "a: !!python/object:x\n  k: v\n",
            &none,
            1,
            &format!("{PY}object:x"),
        );
        forbidden("a: !!python/tuple\n- 1\n", &none, 1, &format!("{PY}tuple"));
        forbidden(
            "a: [1, {b: !!python/bytes x}]\n",
            &none,
            1,
            &format!("{PY}bytes"),
        );
        let e = forbidden("a: &x !!python/none ~\n", &none, 1, &format!("{PY}none"));
        assert!(
            matches!(&e, SyntaxError::ForbiddenTag { written, .. } if written == "!!python/none"),
            "{e:?}"
        );
        let deep = format!("{}!!python/none ~{}", "[".repeat(50), "]".repeat(50));
        forbidden(&deep, &none, 1, &format!("{PY}none"));
        forbidden(
            "a: 1\n---\nb: 2\n--- !!python/none\n",
            &none,
            4,
            &format!("{PY}none"),
        );
        forbidden("--- !!python/none\n", &none, 1, &format!("{PY}none"));
    }

    #[test]
    fn tag_directive_cannot_smuggle_a_language_tag() {
        let none = Limits::default();
        // The secondary handle redefined: `!!object` is no longer yaml.org's.
        let e = forbidden(
            "%TAG !! tag:yaml.org,2002:python/\n---\na: !!object:os.system x\n",
            &none,
            3,
            &format!("{PY}object:os.system"),
        );
        assert!(
            e.to_string().contains(
                "yaml tag !!object:os.system (resolved: tag:yaml.org,2002:python/object:os.system)"
            ),
            "{e}"
        );
        // A named handle, and the primary handle, pointing at the same.
        forbidden(
            "%TAG !p! tag:yaml.org,2002:python/\n--- !p!object:x {}\n",
            &none,
            2,
            &format!("{PY}object:x"),
        );
        forbidden(
            "%TAG ! tag:yaml.org,2002:python/\n---\na: !name:os.system\n",
            &none,
            3,
            &format!("{PY}name:os.system"),
        );
        // A prefix that spells a standard tag only together with the suffix.
        forbidden(
            "%TAG !y! tag:yaml.org,2002:st\n--- !y!ring x\n",
            &none,
            2,
            "tag:yaml.org,2002:string",
        );
        // Percent-escapes are decoded before judging.
        forbidden(
            "a: !!python%2Fobject:os.system x\n",
            &none,
            1,
            &format!("{PY}object:os.system"),
        );
        // A local tag made global by `%TAG !`, even if `!Ref` is allowed.
        forbidden(
            "%TAG ! tag:example.com,2024:\n--- !Ref x\n",
            &allowing(&["!Ref"]),
            2,
            "tag:example.com,2024:Ref",
        );
    }

    #[test]
    fn tag_directive_applies_to_its_document_only() {
        // `%TAG !! !` makes `!!Ref` the local `!Ref` in the first document, not the second.
        let limits = allowing(&["!Ref"]);
        accepted("%TAG !! !\n--- !!Ref a\n", &limits);
        forbidden(
            "%TAG !! !\n--- !!Ref a\n--- !!Ref b\n",
            &limits,
            3,
            "tag:yaml.org,2002:Ref",
        );
    }

    #[test]
    fn tag_directives_that_resolve_to_standard_tags_allowed() {
        let none = Limits::default();
        accepted("%TAG !y! tag:yaml.org,2002:\n--- !y!str a\n", &none);
        accepted("a: !!st%72 x\n", &none);
    }

    #[test]
    fn yaml_types_allowed_in_every_spelling() {
        let none = Limits::default();
        accepted(
            "a: !!str 1\nb: !!int '2'\nc: !!float 3\nd: !!bool true\ne: !!null ''\n\
             f: !!map {x: 1}\ng: !!seq [1]\nh: !!binary aGVsbG8=\ni: !!timestamp 2001-12-14\n\
             j: !!set {x}\nk: !!omap [x: 1]\nl: !!pairs [x: 1]\nm: {!!merge <<: {x: 1}}\n\
             n: ! nonspecific\no: !<tag:yaml.org,2002:str> 1\np: !<!> q\n",
            &none,
        );
        accepted("!!str key: !!str value\n", &none);
    }

    #[test]
    fn listed_custom_tags_allowed_exactly() {
        let template = r"Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub '${AWS::StackName}-data'
      Tags: [{Key: arn, Value: !GetAtt Role.Arn}]
Outputs:
  Name: {Value: !Ref Bucket}
";
        let cloudformation = allowing(&["!Ref", "!Sub", "!GetAtt"]);
        accepted(template, &cloudformation);
        forbidden(template, &allowing(&["!Ref", "!GetAtt"]), 5, "!Sub");
        forbidden(template, &Limits::default(), 5, "!Sub");
        // Exact, case-sensitive match.
        forbidden("a: !ref x\n", &allowing(&["!Ref"]), 1, "!ref");
        forbidden("a: !Refs x\n", &allowing(&["!Ref"]), 1, "!Refs");
        // A global tag is listed by its URI, however a document spells it.
        let widget = allowing(&["tag:example.com,2024:widget"]);
        accepted(
            "%TAG !e! tag:example.com,2024:\n--- !e!widget {}\n",
            &widget,
        );
        accepted("a: !<tag:example.com,2024:widget> x\n", &widget);
        forbidden(
            "%TAG !e! tag:example.com,2024:\n--- !e!gadget {}\n",
            &widget,
            2,
            "tag:example.com,2024:gadget",
        );
    }

    #[test]
    fn allowed_tags_parse_from_the_policy() {
        let limits: Limits = toml::from_str("allowed_yaml_tags = [\"!Ref\", \"!Sub\"]\n").unwrap();
        assert_eq!(limits, allowing(&["!Ref", "!Sub"]));
        let e = toml::from_str::<Limits>("allowed_yaml_tags = [\"!Ref\", \"!!python/object\"]\n")
            .err()
            .unwrap();
        let message = e.to_string();
        assert!(message.contains("line 1"), "{message}");
        assert!(
            message.contains("allowed_yaml_tags entry \"!!python/object\" uses the !! handle"),
            "{message}"
        );
    }

    fn tag(handle: &str, suffix: &str) -> Tag {
        Tag {
            handle: handle.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn yaml_types_and_the_non_specific_tag_are_allowed() {
        for name in YAML_TYPES {
            assert_eq!(refused(&tag(YAML_ORG, name), &[]), None, "{name}");
            // The verbatim form resolves to the same.
            let verbatim = format!("{YAML_ORG}{name}");
            assert_eq!(refused(&tag("", &verbatim), &[]), None, "{name}");
        }
        assert_eq!(refused(&tag("", "!"), &[]), None);
    }

    #[test]
    fn language_tags_are_refused() {
        for (handle, suffix) in [
            (YAML_ORG, "python/object/apply:os.system"),
            (YAML_ORG, "python/name:os.system"),
            (YAML_ORG, "js/function"),
            (YAML_ORG, "java.util.URL"),
            (YAML_ORG, "javax.script.ScriptEngineManager"),
            (YAML_ORG, "yaml"),
            (YAML_ORG, "Str"),
            ("!", "ruby/object:Gem::Installer"),
            (
                "!",
                "ruby/hash:ActionDispatch::Routing::RouteSet::NamedRouteCollection",
            ),
            ("tag:yaml.org,2002:python/", "object"),
            ("", "tag:ruby.yaml.org,2002:object:Gem::Requirement"),
            ("tag:clarkevans.com,2002:", "invoice"),
        ] {
            let resolved = format!("{handle}{suffix}");
            assert_eq!(refused(&tag(handle, suffix), &[]), Some(resolved));
        }
    }

    #[test]
    fn listed_tags_are_allowed_exactly() {
        let allowed = [
            AllowedTag::new("!Ref").unwrap(),
            AllowedTag::new("tag:example.com,2024:widget").unwrap(),
        ];
        assert_eq!(refused(&tag("!", "Ref"), &allowed), None);
        assert_eq!(refused(&tag("", "!Ref"), &allowed), None);
        assert_eq!(
            refused(&tag("tag:example.com,2024:", "widget"), &allowed),
            None
        );
        for (handle, suffix) in [
            ("!", "ref"),
            ("!", "Ref2"),
            ("!", "Sub"),
            ("tag:example.com,2024:", "widgets"),
        ] {
            assert!(
                refused(&tag(handle, suffix), &allowed).is_some(),
                "{handle}{suffix}"
            );
        }
    }

    #[test]
    fn allow_list_entries_must_be_resolvable() {
        for good in [
            "!Ref",
            "!Fn::GetAtt",
            "!reference",
            "tag:example.com,2024:widget",
            "!ruby/object",
        ] {
            assert_eq!(AllowedTag::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "!",
            "!!python/object",
            "!e!thing",
            "Ref",
            "! Ref",
            "!Ref\n",
        ] {
            assert!(AllowedTag::new(bad).is_err(), "{bad:?}");
        }
        let e = AllowedTag::new("!!python/object").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("allowed_yaml_tags entry \"!!python/object\" uses the !! handle"),
            "{e}"
        );
    }

    #[test]
    fn written_tag_is_read_after_an_anchor() {
        let text = "a: !!python/object:os.system x\nb: &an !Ref y\nc: [!e!x 1, !<tag:a,b:c> 2]\n";
        assert_eq!(written(text, 1, 3), "!!python/object:os.system");
        assert_eq!(written(text, 2, 3), "!Ref");
        assert_eq!(written(text, 3, 4), "!e!x");
        assert_eq!(written(text, 3, 12), "!<tag:a,b:c>");
        assert_eq!(written(text, 1, 0), "");
        assert_eq!(written(text, 9, 0), "");
    }
}
