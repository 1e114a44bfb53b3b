//! The declarative-only file policy: which paths, modes, sizes and syntaxes a commit may add.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::syntax::{Format, Limits, SyntaxError};

/// The default allow-list: declarative data and the documentation around it.
pub const DEFAULT_ALLOW: &[&str] = &[
    "*.yaml",
    "*.yml",
    "*.json",
    "*.toml",
    "*.tf",
    "*.tfvars",
    "*.hcl",
    "*.cue",
    "*.nix",
    "*.md",
    "*.txt",
    ".gitignore",
    ".gitattributes",
    "CODEOWNERS",
    "LICENSE",
];

/// Default per-file size cap: 1 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024;

/// The `[files]` table of the policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilePolicy {
    /// Globs a changed path must match. A pattern without `/` matches the file name at any
    /// depth (`*.yaml`); one with `/` matches the whole path from the root (`clusters/**/*.yaml`).
    pub allow: Vec<String>,
    /// Largest blob accepted, in bytes.
    pub max_size: u64,
}

impl Default for FilePolicy {
    fn default() -> Self {
        FilePolicy {
            allow: DEFAULT_ALLOW.iter().map(|s| (*s).to_owned()).collect(),
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

/// A glob in the policy does not compile.
#[derive(Debug, thiserror::Error)]
#[error("[files] allow pattern {pattern:?} is not a valid glob: {reason}")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub reason: String,
}

/// The file policy, compiled for matching.
#[derive(Debug, Clone)]
pub struct FileRules {
    names: GlobSet,
    paths: GlobSet,
    /// Largest blob accepted, in bytes.
    pub max_size: u64,
    /// Bounds for syntax validation.
    pub limits: Limits,
}

/// What is wrong with one changed file.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum FileProblem {
    /// Path not on the allow-list.
    #[error("file type not allowed by the policy")]
    NotAllowed,
    /// Executable bit set.
    #[error("file is executable (mode 100755)")]
    Executable,
    /// A symbolic link.
    #[error("symbolic links are not allowed (mode 120000)")]
    Symlink,
    /// A gitlink.
    #[error("submodules are not allowed (mode 160000)")]
    Submodule,
    /// Over the size cap.
    #[error("file is {size} bytes, over the {max} byte limit")]
    TooLarge {
        /// Blob size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Does not parse, or exceeds the syntax limits.
    #[error("invalid {}: {error}", format_name(*format))]
    Syntax {
        /// The syntax checked.
        format: Format,
        /// What the validator found.
        error: String,
    },
    /// The blob cannot be read from the object store.
    #[error("cannot be read: {error}")]
    Unreadable {
        /// The store's error.
        error: String,
    },
    /// The path itself is unusable (not UTF-8, control characters).
    #[error("path {reason}")]
    BadPath {
        /// Why.
        reason: &'static str,
    },
    /// A `.gitattributes` line that makes a checkout differ from the signed bytes
    /// ([`crate::attributes`]).
    #[error("line {line}: \"{text}\" {action}, {why}")]
    CheckoutAttribute {
        /// Line number, from 1.
        line: usize,
        /// The line, printable.
        text: String,
        /// What it does: "sets filter=lfs".
        action: String,
        /// Why that is refused.
        why: &'static str,
    },
}

impl FileProblem {
    /// What the committer should do about it, in one line.
    pub fn fix(&self, path: &str) -> String {
        match self {
            FileProblem::NotAllowed => format!(
                "remove it ({}) or ask an administrator to add a matching pattern to [files] allow",
                on_path("git rm --cached", path)
            ),
            FileProblem::Executable => {
                format!(
                    "{} and commit",
                    on_path("git update-index --chmod=-x", path)
                )
            }
            FileProblem::Symlink => {
                format!(
                    "replace the link with a regular file: {}",
                    on_path("git rm", path)
                )
            }
            FileProblem::Submodule => format!("remove the submodule: {}", on_path("git rm", path)),
            FileProblem::TooLarge { .. } => {
                "split the file or keep large artifacts outside the repository".into()
            }
            FileProblem::Syntax { .. } => "fix the syntax and amend the commit".into(),
            FileProblem::Unreadable { .. } => {
                "this is a server-side problem: an administrator should run git fsck".into()
            }
            FileProblem::BadPath { .. } => "rename it to a printable UTF-8 path: git mv".into(),
            FileProblem::CheckoutAttribute { line, .. } => format!(
                "remove line {line} from '{path}' and amend the commit; commit files as they are to be deployed, since tally deploys the signed bytes without conversion"
            ),
        }
    }
}

/// `command -- '<path>'`: a git command on one path, quoted so that a POSIX shell reads back
/// exactly that path and nothing else, whatever the name holds (`;`, `$(...)`, spaces).
///
/// `path` is the printable form ([`printable`]), in which quotes, backslashes and every
/// byte outside printable ASCII are escaped: where it holds a backslash it is not the name
/// itself, and no command is given (a command naming another file, or a name cut open by an
/// escaped quote, is worse than none). Otherwise it has no `'`, so single quotes hold it whole.
pub fn on_path(command: &str, path: &str) -> String {
    if path.is_empty() || path.contains('\\') {
        format!(
            "{command} -- <the file named above, quoted for your shell: its name has characters shown escaped>"
        )
    } else {
        format!("{command} -- '{path}'")
    }
}

impl FileRules {
    /// Compiles the policy.
    pub fn new(policy: &FilePolicy, limits: Limits) -> Result<FileRules, GlobError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for pattern in &policy.allow {
            let anchored = pattern.trim_start_matches('/');
            let name_only = !pattern.contains('/');
            // A name pattern only ever sees a file name, which holds no `/`, so whether `*`
            // may match one changes nothing; without `literal_separator`, globset matches
            // `*.yaml` by a lookup of the extension instead of compiling the whole allow-list
            // into a regex set (0.2 ms of every push).
            let glob = GlobBuilder::new(anchored)
                .literal_separator(!name_only)
                .backslash_escape(true)
                .build()
                .map_err(|e| GlobError {
                    pattern: pattern.clone(),
                    reason: e.kind().to_string(),
                })?;
            if name_only {
                names.add(glob);
            } else {
                paths.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| GlobError {
                pattern: String::new(),
                reason: e.to_string(),
            })
        };
        Ok(FileRules {
            names: build(names)?,
            paths: build(paths)?,
            max_size: policy.max_size,
            limits,
        })
    }

    /// Whether `path` (slash-separated, from the repository root) is on the allow-list.
    pub fn allows_path(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        // Git never stores these as names (fsck refuses them); they are not files.
        if matches!(name, "" | "." | "..") {
            return false;
        }
        self.names.is_match(name) || self.paths.is_match(path)
    }

    /// Checks a path's bytes: UTF-8 without control characters.
    pub fn check_path(raw: &[u8]) -> Result<&str, FileProblem> {
        let path = std::str::from_utf8(raw).map_err(|_| FileProblem::BadPath {
            reason: "is not UTF-8",
        })?;
        if path.chars().any(char::is_control) {
            return Err(FileProblem::BadPath {
                reason: "contains control characters",
            });
        }
        Ok(path)
    }

    /// Whether the file at `path` is one git reads attributes from: its name is
    /// `.gitattributes` as HFS+ or NTFS would read it (what fsck checks, `fsck.c`).
    pub fn is_attributes_file(path: &[u8]) -> bool {
        let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        crate::tree::Special::Gitattributes.matches(name)
    }

    /// Applies the `.gitattributes` rule to a file's bytes: one problem per line and attribute
    /// that makes git check out other bytes than the signed ones.
    pub fn check_attributes(bytes: &[u8]) -> Vec<FileProblem> {
        crate::attributes::check(bytes)
            .into_iter()
            .map(|l| FileProblem::CheckoutAttribute {
                action: l.action(),
                why: l.why(),
                line: l.line,
                text: l.text,
            })
            .collect()
    }

    /// Validates the content of an allowed file whose syntax tally knows.
    pub fn check_content(&self, path: &str, bytes: &[u8]) -> Result<(), FileProblem> {
        let Some(format) = Format::for_path(path) else {
            return Ok(());
        };
        crate::syntax::validate(format, bytes, &self.limits).map_err(|e: SyntaxError| {
            FileProblem::Syntax {
                format,
                error: e.to_string(),
            }
        })
    }
}

/// The file rules of a policy file given to an agent (`tally verify --policy`): its
/// `[files]` and `[syntax]` sections, in the schema of the server's `policy.toml`, so the
/// server's file can be copied out of band as it is (its `[branches]` and `[signatures]`
/// sections are the server's business and ignored here). Absent sections take the defaults;
/// unknown keys are errors, as on the server.
pub fn load_policy(path: &std::path::Path) -> Result<FileRules, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AgentPolicy {
        #[serde(default)]
        files: FilePolicy,
        #[serde(default)]
        syntax: Limits,
        #[serde(default, rename = "branches")]
        _branches: Option<toml::Value>,
        #[serde(default, rename = "signatures")]
        _signatures: Option<toml::Value>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read policy {}: {e}", path.display()))?;
    let policy: AgentPolicy = toml::from_str(&text).map_err(|e| {
        format!(
            "policy {} is invalid: {}",
            path.display(),
            e.to_string().trim_end().replace('\n', " ")
        )
    })?;
    FileRules::new(&policy.files, policy.syntax)
        .map_err(|e| format!("policy {}: {e}", path.display()))
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Yaml => "YAML",
        Format::Json => "JSON",
        Format::Toml => "TOML",
    }
}

/// Escapes a path for a one-line ASCII message (git masks control characters in hook output).
pub fn printable(raw: &[u8]) -> String {
    raw.escape_ascii().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A file name cannot make a suggested command run anything else (issue 13's review).
    #[test]
    fn commands_on_hostile_names_are_quoted_or_withheld() {
        assert_eq!(on_path("git rm", "a b.sh"), "git rm -- 'a b.sh'");
        assert_eq!(
            on_path("git rm", "$(touch x);.sh"),
            "git rm -- '$(touch x);.sh'"
        );
        assert_eq!(on_path("git rm", "-rf"), "git rm -- '-rf'");
        for raw in [
            "x';touch PWNED;'.sh".as_bytes(),
            b"caf\xc3\xa9.sh",
            b"a\nb",
            b"back\\slash",
        ] {
            let shown = printable(raw);
            let fix = on_path("git rm", &shown);
            assert!(!fix.contains('\''), "{fix}");
            assert!(fix.contains("quoted for your shell"), "{fix}");
        }
        let fix = FileProblem::NotAllowed.fix(&printable(b"x';touch PWNED;'.sh"));
        assert!(!fix.contains("touch PWNED;'"), "{fix}");
    }

    fn rules(allow: &[&str]) -> FileRules {
        FileRules::new(
            &FilePolicy {
                allow: allow.iter().map(|s| (*s).to_owned()).collect(),
                max_size: 10,
            },
            Limits::default(),
        )
        .unwrap()
    }

    /// The name patterns are compiled without `literal_separator` (see `FileRules::new`):
    /// on file names, which hold no `/`, that must match exactly what the separator-aware
    /// glob matches.
    #[test]
    fn name_patterns_match_as_separator_aware_globs_would() {
        let patterns = [
            "*.yaml",
            "*.tar.gz",
            "*",
            "?",
            "a?c",
            "[ab]*",
            "[!a]*.json",
            "*[.]toml",
            "**",
            "**.md",
            "*.{yml,yaml}",
            "\\*x",
            ".gitignore",
            "CODEOWNERS",
            "*.",
            ".*",
        ];
        let names = [
            "a",
            "b",
            "abc",
            "a.yaml",
            ".yaml",
            "x.yaml.sh",
            "yaml",
            "t.tar.gz",
            "tar.gz",
            "a.json",
            "b.json",
            "v.toml",
            "R.md",
            ".md",
            "x.yml",
            "*x",
            "ax",
            ".gitignore",
            "CODEOWNERS",
            "codeowners",
            "z.",
            ".hidden",
            "...",
            "\u{e9}.yaml",
            "a b.yaml",
        ];
        for pattern in patterns {
            let strict = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .unwrap()
                .compile_matcher();
            let r = rules(&[pattern]);
            for name in names {
                assert_eq!(
                    r.allows_path(name),
                    strict.is_match(name),
                    "{pattern:?} on {name:?}"
                );
                let deep = format!("dir/sub/{name}");
                assert_eq!(
                    r.allows_path(&deep),
                    strict.is_match(name),
                    "{pattern:?} on {deep:?}"
                );
            }
            for not_a_name in ["", ".", "..", "dir/..", "dir/"] {
                assert!(!r.allows_path(not_a_name), "{pattern:?} on {not_a_name:?}");
            }
        }
    }

    #[test]
    fn name_patterns_match_at_any_depth() {
        let r = rules(&["*.yaml", "CODEOWNERS"]);
        assert!(r.allows_path("a.yaml"));
        assert!(r.allows_path("apps/web/deploy.yaml"));
        assert!(r.allows_path("docs/CODEOWNERS"));
        assert!(!r.allows_path("deploy.sh"));
        assert!(!r.allows_path("deploy.yaml.sh"));
        assert!(!r.allows_path("yaml"));
    }

    #[test]
    fn path_patterns_are_anchored_at_the_root() {
        let r = rules(&["clusters/**/*.yaml", "/top.json"]);
        assert!(r.allows_path("clusters/prod/a.yaml"));
        assert!(r.allows_path("clusters/a.yaml"));
        assert!(!r.allows_path("other/clusters/a.yaml"));
        assert!(r.allows_path("top.json"));
        assert!(!r.allows_path("sub/top.json"));
    }

    #[test]
    fn default_policy_allows_declarative_files_only() {
        let r = FileRules::new(&FilePolicy::default(), Limits::default()).unwrap();
        for ok in [
            "a.yml",
            "b/c.json",
            "main.tf",
            "x.tfvars",
            "LICENSE",
            ".gitignore",
        ] {
            assert!(r.allows_path(ok), "{ok}");
        }
        for bad in [
            "deploy.sh",
            "bin/tool",
            "Makefile",
            "x.py",
            "a.yaml/evil.exe",
        ] {
            assert!(!r.allows_path(bad), "{bad}");
        }
    }

    #[test]
    fn bad_glob_is_reported_with_the_pattern() {
        let err = FileRules::new(
            &FilePolicy {
                allow: vec!["[".into()],
                max_size: 1,
            },
            Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.pattern, "[");
    }

    #[test]
    fn hostile_paths_are_refused() {
        assert!(FileRules::check_path(b"ok/a.yaml").is_ok());
        assert!(FileRules::check_path(b"bad\xff.yaml").is_err());
        assert!(FileRules::check_path(b"esc\x1b[31m.yaml").is_err());
        assert!(FileRules::check_path(b"new\nline.yaml").is_err());
        assert_eq!(printable(b"a\x1bb"), "a\\x1bb");
    }
}
