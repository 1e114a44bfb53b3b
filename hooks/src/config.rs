//! The repository's policy file, `<repo>/tally/policy.toml`, and the trust files it names.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use tally_verify::files::{FilePolicy, FileRules};
use tally_verify::signers::{AllowedSigners, SignersError};
use tally_verify::syntax::Limits;
use tally_verify::trust::{Revoked, RevokedError, Trust};

/// Directory inside the bare repository that holds tally's files.
pub const TALLY_DIR: &str = "tally";
/// The policy file's name inside [`TALLY_DIR`].
pub const POLICY_FILE: &str = "policy.toml";

/// `[branches]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Branches {
    /// Branch names (under `refs/heads/`) tally guards; globs such as `release/*` allowed.
    pub protected: Vec<String>,
}

/// `[signatures]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    /// git's allowed_signers file, relative to the tally directory.
    pub allowed_signers: PathBuf,
    /// Optional list of revoked public keys; when set, the file must exist.
    #[serde(default)]
    pub revocation_file: Option<PathBuf>,
}

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Which branches are guarded.
    pub branches: Branches,
    /// Who may sign.
    pub signatures: Signatures,
    /// Which files may change.
    #[serde(default)]
    pub files: FilePolicy,
    /// Bounds on syntax validation.
    #[serde(default)]
    pub syntax: Limits,
}

/// Why the policy cannot be used. The hook refuses every protected push while this is so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The policy file is missing or unreadable.
    #[error("cannot read policy {path}: {source}; run `tally init` on this repository")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file is not valid TOML for the policy schema.
    #[error("policy {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A protected branch pattern does not compile.
    #[error("policy {path}: [branches] protected pattern {pattern:?} is not a valid glob")]
    BranchGlob {
        /// The file.
        path: PathBuf,
        /// The pattern.
        pattern: String,
    },
    /// A files pattern does not compile.
    #[error("policy {path}: {source}")]
    FileGlob {
        /// The file.
        path: PathBuf,
        /// Which pattern.
        source: tally_verify::files::GlobError,
    },
    /// allowed_signers cannot be read or parsed; the error names the file and line.
    #[error(transparent)]
    Signers(#[from] SignersError),
    /// The revocation file is missing or malformed.
    #[error(transparent)]
    Revoked(#[from] RevokedError),
    /// No protected branch and no signer makes the hook pointless; refuse to guess.
    #[error(
        "allowed_signers {path} lists no signers; add at least one `principal keytype key` line"
    )]
    NoSigners {
        /// The file.
        path: PathBuf,
    },
}

/// The policy file and the digest of everything it enforces, without compiling the rules:
/// enough for the ref-transaction hooks, which only need to know which refs are protected
/// and which policy was in force.
pub struct Policy {
    /// The parsed file.
    pub file: PolicyFile,
    protected: GlobSet,
    /// SHA-256 over the policy file, allowed_signers and the revocation file (each
    /// length-prefixed), so any change to what is enforced changes the digest.
    pub digest: [u8; 32],
    path: PathBuf,
    signers_path: PathBuf,
    signers_text: Vec<u8>,
    revocation_path: Option<PathBuf>,
    revoked_text: Vec<u8>,
}

impl Policy {
    /// Reads `<git_dir>/tally/policy.toml` and the files it names (a configured revocation
    /// file must exist).
    pub fn load(git_dir: &Path) -> Result<Policy, ConfigError> {
        let dir = git_dir.join(TALLY_DIR);
        let path = dir.join(POLICY_FILE);
        let text = std::fs::read(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file = parse_policy(&path, &text)?;
        let protected = branch_globs(&path, &file.branches.protected)?;
        let signers_path = dir.join(&file.signatures.allowed_signers);
        let revocation_path = file
            .signatures
            .revocation_file
            .as_ref()
            .map(|p| dir.join(p));
        let signers_text = std::fs::read(&signers_path).map_err(|source| SignersError::Io {
            path: signers_path.clone(),
            source,
        })?;
        let revoked_text = match &revocation_path {
            Some(p) => std::fs::read(p).map_err(|source| RevokedError::Io {
                path: p.clone(),
                source,
            })?,
            None => Vec::new(),
        };
        Ok(Policy {
            file,
            protected,
            digest: tally_ledger::export::policy_digest(&text, &signers_text, &revoked_text),
            path,
            signers_path,
            signers_text,
            revocation_path,
            revoked_text,
        })
    }

    /// Whether a full ref name is a protected branch, in the repository or inside any
    /// `GIT_NAMESPACE` (`refs/namespaces/<ns>/refs/heads/main` is `main` to every client of
    /// that namespace, so it is protected like `main`).
    pub fn is_protected(&self, refname: &str) -> bool {
        crate::refs::without_namespaces(refname)
            .strip_prefix("refs/heads/")
            .is_some_and(|name| self.protected.is_match(name))
    }

    /// Whether a branch name (without `refs/heads/`) is protected.
    pub fn is_protected_name(&self, name: &str) -> bool {
        self.protected.is_match(name)
    }

    /// The policy digest as lowercase hex.
    pub fn digest_hex(&self) -> String {
        tally_ledger::hex::encode(&self.digest)
    }

    /// Parses the signers and revocations and compiles the file rules.
    pub fn compile(self) -> Result<Config, ConfigError> {
        let files =
            FileRules::new(&self.file.files, self.file.syntax.clone()).map_err(|source| {
                ConfigError::FileGlob {
                    path: self.path.clone(),
                    source,
                }
            })?;
        let in_file = |error| SignersError::InFile {
            path: self.signers_path.clone(),
            error: Box::new(error),
        };
        let signers = match std::str::from_utf8(&self.signers_text) {
            Ok(text) => AllowedSigners::parse(text).map_err(in_file)?,
            Err(e) => {
                let line = 1 + self.signers_text[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                return Err(in_file(SignersError::NotUtf8 { line }).into());
            }
        };
        if signers.is_empty() {
            return Err(ConfigError::NoSigners {
                path: self.signers_path.clone(),
            });
        }
        let revoked = match &self.revocation_path {
            Some(p) => Revoked::from_bytes(p, &self.revoked_text)?,
            None => Revoked::default(),
        };
        Ok(Config {
            trust: Trust::new(signers, revoked),
            files,
            policy: self,
        })
    }
}

/// A loaded, compiled policy: what pre-receive judges with.
pub struct Config {
    /// The policy file and its digest.
    pub policy: Policy,
    /// Compiled file rules.
    pub files: FileRules,
    /// Signers and revocations.
    pub trust: Trust,
}

impl Config {
    /// Loads `<git_dir>/tally/policy.toml` and the files it names, and compiles them.
    pub fn load(git_dir: &Path) -> Result<Config, ConfigError> {
        Policy::load(git_dir)?.compile()
    }
}

/// A compiled policy answers everything the uncompiled one does.
impl std::ops::Deref for Config {
    type Target = Policy;
    fn deref(&self) -> &Policy {
        &self.policy
    }
}

/// Parses policy text, reporting TOML errors with their position.
pub fn parse_policy(path: &Path, text: &[u8]) -> Result<PolicyFile, ConfigError> {
    let text = std::str::from_utf8(text).map_err(|_| ConfigError::Parse {
        path: path.to_owned(),
        message: "file is not UTF-8".into(),
    })?;
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

fn branch_globs(path: &Path, patterns: &[String]) -> Result<GlobSet, ConfigError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|_| ConfigError::BranchGlob {
                path: path.to_owned(),
                pattern: pattern.clone(),
            })?;
        set.add(glob);
    }
    set.build().map_err(|_| ConfigError::BranchGlob {
        path: path.to_owned(),
        pattern: patterns.join(","),
    })
}

/// The policy file `tally init` writes: every setting, with its default, explained.
pub fn default_policy_text(branches: &[String]) -> String {
    let quoted: Vec<String> = branches.iter().map(|b| format!("{b:?}")).collect();
    let allow: Vec<String> = tally_verify::files::DEFAULT_ALLOW
        .iter()
        .map(|p| format!("    {p:?},"))
        .collect();
    let limits = Limits::default();
    format!(
        r#"# tally policy for this repository, written by `tally init`.
# Any change to this file, to allowed_signers or to the revocation file changes the policy
# digest tally records with every verdict.
#
# On a protected branch every push must be a fast-forward (no deletion, no force-push), every
# new commit must have exactly one parent and carry exactly one SSH signature by a key in
# allowed_signers whose principal matches the committer email and whose validity window holds
# both at the committer date and at push time, and every added or modified file must pass the
# [files] rules below. These rules are not optional: to relax them for a branch, do not
# protect it.

[branches]
# Branch names under refs/heads/ that tally guards. Globs are allowed ("release/*").
protected = [{branches}]

[signatures]
# git's allowed_signers format (ssh-keygen(1), ALLOWED SIGNERS), relative to this directory.
allowed_signers = "allowed_signers"
# Optional list of revoked OpenSSH public keys, one per line. If set, the file must exist:
# a missing revocation file refuses every protected push.
# revocation_file = "revoked_keys"

[files]
# Globs every added or modified path must match. A pattern without "/" matches the file
# name at any depth; a pattern with "/" matches the whole path from the repository root.
# Executables (mode 100755), symbolic links and submodules are always refused.
allow = [
{allow}
]
# Largest file accepted, in bytes (1 MiB). Larger blobs are refused without being read.
max_size = {max_size}

[syntax]
# YAML (.yaml, .yml), JSON and TOML files must parse within these bounds.
# Deepest nesting of mappings, sequences, arrays and tables.
max_depth = {max_depth}
# Most YAML aliases (*name) in one file.
max_yaml_aliases = {max_aliases}
# Most YAML nodes a file may have once every alias is expanded (stops "billion laughs").
max_yaml_expanded_nodes = {max_expanded}
# Most YAML documents ("---") in one file.
max_documents = {max_documents}
# Keys must be unique in every YAML mapping and JSON object (a, "a" and 'a' are one key).
# YAML tags other than YAML's own types (!!str, !!int, !!binary, !!set, ...) are refused:
# language tags such as !!python/object/apply or !ruby/object make loaders run code. List
# the custom tags your tools need, exactly as a document resolves them: "!Name" for a local
# tag, the full URI for a global one. For AWS CloudFormation, for example:
# allowed_yaml_tags = ["!Ref", "!Sub", "!GetAtt", "!Join", "!If", "!Equals", "!Not",
#                      "!Select", "!Split", "!FindInMap", "!ImportValue", "!Base64",
#                      "!Cidr", "!GetAZs", "!And", "!Or", "!Condition"]
allowed_yaml_tags = []
"#,
        branches = quoted.join(", "),
        allow = allow.join("\n"),
        max_size = tally_verify::files::DEFAULT_MAX_SIZE,
        max_depth = limits.max_depth,
        max_aliases = limits.max_yaml_aliases,
        max_expanded = limits.max_yaml_expanded_nodes,
        max_documents = limits.max_documents,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_text_parses_back_to_the_defaults() {
        let text = default_policy_text(&["main".into(), "release/*".into()]);
        let p = parse_policy(Path::new("policy.toml"), text.as_bytes()).unwrap();
        assert_eq!(p.branches.protected, vec!["main", "release/*"]);
        assert_eq!(p.files, FilePolicy::default());
        assert_eq!(p.syntax, Limits::default());
        assert_eq!(p.signatures.revocation_file, None);
    }

    /// Writes a policy with `syntax` as its `[syntax]` table, and its signers, into a
    /// temporary git directory.
    fn git_dir_with_syntax(syntax: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let tally = dir.path().join(TALLY_DIR);
        std::fs::create_dir(&tally).unwrap();
        let policy = format!(
            "[branches]\nprotected = [\"main\"]\n[signatures]\nallowed_signers = \"s\"\n[syntax]\n{syntax}"
        );
        std::fs::write(tally.join(POLICY_FILE), policy).unwrap();
        std::fs::write(tally.join("s"), "").unwrap();
        dir
    }

    #[test]
    fn allowed_yaml_tags_load_and_count_in_the_digest() {
        let none = Policy::load(git_dir_with_syntax("").path()).unwrap();
        let dir = git_dir_with_syntax("allowed_yaml_tags = [\"!Ref\", \"!Sub\"]\n");
        let some = Policy::load(dir.path()).unwrap();
        let tags: Vec<&str> = some
            .file
            .syntax
            .allowed_yaml_tags
            .iter()
            .map(|t| t.as_str())
            .collect();
        assert_eq!(tags, ["!Ref", "!Sub"]);
        assert_ne!(none.digest, some.digest);
    }

    #[test]
    fn unusable_allowed_yaml_tag_is_refused_with_position() {
        let dir = git_dir_with_syntax("allowed_yaml_tags = [\"!Ref\", \"!!python/object\"]\n");
        let Err(err) = Policy::load(dir.path()) else {
            panic!("a policy with an unusable allowed_yaml_tags entry loaded");
        };
        let msg = err.to_string();
        assert!(msg.contains("line 6"), "{msg}");
        assert!(
            msg.contains("allowed_yaml_tags entry \"!!python/object\" uses the !! handle"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_position() {
        let err = parse_policy(
            Path::new("p.toml"),
            b"[branches]\nprotected=[\"main\"]\n[signatures]\nallowed_signers=\"a\"\nrevocation=\"x\"\n",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("revocation"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
    }
}
