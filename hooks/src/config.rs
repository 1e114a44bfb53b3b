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

/// `[ledger]`: where the ledger lives, when not in SQLite in the repository (issue 15).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    /// The PostgreSQL database (`postgres://user@host:port/db?sslmode=verify-full`), without
    /// a password.
    pub url: String,
    /// A file holding the database password (mode 0600), relative to the tally directory;
    /// otherwise `PGPASSWORD`, `~/.pgpass` or `PGSERVICE` supply it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
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
    /// Where the ledger lives (absent: SQLite in the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerSection>,
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
    #[error("policy {path} is invalid: {}", one_line(message))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message as the toml crate renders it: line and column, the line
        /// itself with a caret under the place, and what is wrong (several lines; shown on
        /// one line where messages are lines, as in the hooks).
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

/// Where a guarded repository keeps its policy: `<git_dir>/tally/policy.toml`.
pub fn policy_path(git_dir: &Path) -> PathBuf {
    git_dir.join(TALLY_DIR).join(POLICY_FILE)
}

impl Policy {
    /// Reads `<git_dir>/tally/policy.toml` and the files it names (a configured revocation
    /// file must exist).
    pub fn load(git_dir: &Path) -> Result<Policy, ConfigError> {
        Policy::load_from(&policy_path(git_dir), None)
    }

    /// Reads the policy file at `path` and the files it names, relative to its directory,
    /// as the hooks do; with `signers`, that allowed_signers file instead of the one the
    /// policy names (a file not installed yet, as `tally policy check --allowed-signers`).
    pub fn load_from(path: &Path, signers: Option<&Path>) -> Result<Policy, ConfigError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let path = path.to_owned();
        let text = std::fs::read(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file = parse_policy(&path, &text)?;
        let protected = branch_globs(&path, &file.branches.protected)?;
        let signers_path = match signers {
            Some(p) => p.to_owned(),
            None => dir.join(&file.signatures.allowed_signers),
        };
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
        let signers = AllowedSigners::from_bytes(&self.signers_path, &self.signers_text)?;
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

/// Policy text with its `[ledger]` table set to `ledger` (removed for `None`: SQLite in the
/// repository), everything else as it was. The result is parsed back and must say exactly
/// that, or the edit is refused.
pub fn with_ledger_section(
    path: &Path,
    text: &[u8],
    ledger: Option<&LedgerSection>,
) -> Result<String, ConfigError> {
    parse_policy(path, text)?;
    let text = String::from_utf8_lossy(text).into_owned();
    let mut kept = String::with_capacity(text.len() + 128);
    let mut in_ledger = false;
    for line in text.split_inclusive('\n') {
        let header = line.trim_start();
        if header.starts_with('[') {
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim();
            in_ledger = name == "ledger";
            // The blank line that separates the table from the one before it goes with it,
            // so that adding the table and removing it again gives back the same bytes (and
            // the same policy digest: a round trip of `tally ledger migrate` is no change).
            if in_ledger && kept.ends_with("\n\n") {
                kept.pop();
            }
        }
        if !in_ledger {
            kept.push_str(line);
        }
    }
    // One newline at the end, so that setting the same table again gives the same text.
    kept.truncate(kept.trim_end().len());
    kept.push('\n');
    if let Some(ledger) = ledger {
        kept.push_str(&ledger_section_text(ledger));
    }
    let edited = parse_policy(path, kept.as_bytes())?;
    if edited.ledger.as_ref() != ledger {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: "the [ledger] table could not be rewritten; edit it by hand".into(),
        });
    }
    Ok(kept)
}

/// The `[ledger]` table for `ledger`, with what it means.
fn ledger_section_text(ledger: &LedgerSection) -> String {
    let mut text = format!(
        "\n[ledger]\n# The shared PostgreSQL ledger (issue 15). Credentials come from PGPASSWORD, ~/.pgpass,\n# PGSERVICE or password_file, never from this file. Move the ledger with `tally ledger migrate`.\nurl = {:?}\n",
        ledger.url
    );
    if let Some(file) = &ledger.password_file {
        text.push_str(&format!(
            "password_file = {:?}\n",
            file.display().to_string()
        ));
    }
    text
}

/// Parses policy text, reporting TOML errors with their position.
pub fn parse_policy(path: &Path, text: &[u8]) -> Result<PolicyFile, ConfigError> {
    let text = std::str::from_utf8(text).map_err(|_| ConfigError::Parse {
        path: path.to_owned(),
        message: "file is not UTF-8".into(),
    })?;
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

/// A multi-line message on one line, for the places where a message is one line.
fn one_line(message: &str) -> String {
    message.trim_end().replace('\n', " ")
}

impl ConfigError {
    /// The message for a person at a terminal: as [`Display`](std::fmt::Display), except
    /// that a TOML error keeps the toml crate's several lines, with the snippet that points
    /// at the line and column.
    pub fn report(&self) -> String {
        match self {
            ConfigError::Parse { path, message } => {
                format!("policy {} is invalid:\n{message}", path.display())
            }
            other => other.to_string(),
        }
    }
}

/// What `tally policy check` found in a valid policy and its files.
#[derive(Debug, Serialize)]
pub struct PolicySummary {
    /// The policy file checked, if one was.
    pub policy: Option<PathBuf>,
    /// `[branches] protected`.
    pub protected: Vec<String>,
    /// The allowed_signers file checked.
    pub allowed_signers: PathBuf,
    /// Its signer lines.
    pub signers: usize,
    /// The revocation file, if the policy configures one.
    pub revocation_file: Option<PathBuf>,
    /// The policy digest the hooks would record, hex (with a policy file only).
    pub digest: Option<String>,
}

/// Checks a policy and the files it names exactly as the hooks load them ([`Config::load`]):
/// `policy` with its allowed_signers (or `signers` instead), or `signers` alone (a file
/// meant for `tally init`, with the same refusal of an empty list).
pub fn check(policy: Option<&Path>, signers: Option<&Path>) -> Result<PolicySummary, ConfigError> {
    let Some(policy) = policy else {
        let path = signers.unwrap_or(Path::new("allowed_signers"));
        let list = AllowedSigners::load(path)?;
        if list.is_empty() {
            return Err(ConfigError::NoSigners {
                path: path.to_owned(),
            });
        }
        return Ok(PolicySummary {
            policy: None,
            protected: Vec::new(),
            allowed_signers: path.to_owned(),
            signers: list.entries().len(),
            revocation_file: None,
            digest: None,
        });
    };
    let config = Policy::load_from(policy, signers)?.compile()?;
    Ok(PolicySummary {
        policy: Some(policy.to_owned()),
        protected: config.file.branches.protected.clone(),
        allowed_signers: config.signers_path.clone(),
        signers: config.trust.signers().entries().len(),
        revocation_file: config.revocation_path.clone(),
        digest: Some(config.digest_hex()),
    })
}

/// The policy text with `add` appended to `[branches] protected` (those not listed already),
/// every other byte kept (comments included); `None` when all are listed.
///
/// The array is found by its span as the toml crate parses it, and rewritten in the form
/// [`default_policy_text`] writes, so the result is read back with [`parse_policy`] by the
/// caller's own checks.
pub fn add_protected_branches(
    path: &Path,
    text: &[u8],
    add: &[String],
) -> Result<Option<(String, Vec<String>)>, ConfigError> {
    #[derive(Deserialize)]
    struct Spans {
        branches: BranchSpans,
    }
    #[derive(Deserialize)]
    struct BranchSpans {
        protected: toml::Spanned<Vec<String>>,
    }
    let file = parse_policy(path, text)?;
    let added: Vec<String> = add
        .iter()
        .filter(|b| !file.branches.protected.contains(b))
        .fold(Vec::new(), |mut acc, b| {
            if !acc.contains(b) {
                acc.push(b.clone());
            }
            acc
        });
    if added.is_empty() {
        return Ok(None);
    }
    // parse_policy accepted the text, so it is UTF-8 TOML with this table.
    let text = String::from_utf8_lossy(text).into_owned();
    let spans: Spans = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let span = spans.branches.protected.span();
    let all: Vec<String> = file
        .branches
        .protected
        .iter()
        .chain(&added)
        .map(|b| format!("{b:?}"))
        .collect();
    let mut edited = text;
    edited.replace_range(span, &format!("[{}]", all.join(", ")));
    Ok(Some((edited, added)))
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

    /// `tally ledger migrate` to PostgreSQL and back: the policy is the same bytes again, so
    /// its digest does not change and the next push records no policy change.
    #[test]
    fn adding_and_removing_the_ledger_table_gives_back_the_same_policy() {
        let path = Path::new("policy.toml");
        let original = default_policy_text(&["main".into()]);
        let section = LedgerSection {
            url: "postgres://tally@db.example.com/tally".into(),
            password_file: Some("pgpassword".into()),
        };
        let added = with_ledger_section(path, original.as_bytes(), Some(&section)).unwrap();
        assert!(added.contains("\n\n[ledger]\n"), "{added}");
        let removed = with_ledger_section(path, added.as_bytes(), None).unwrap();
        assert_eq!(removed, original);
        let again = with_ledger_section(path, added.as_bytes(), Some(&section)).unwrap();
        assert_eq!(again, added);
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
    fn added_branches_keep_every_other_byte() {
        let text = "# mine\n[branches]\nprotected = [ \"main\",\n  \"release/*\" ] # kept\n[signatures]\nallowed_signers = \"s\"\n";
        let add = ["main".to_owned(), "new".to_owned(), "new".to_owned()];
        let (edited, added) = add_protected_branches(Path::new("p.toml"), text.as_bytes(), &add)
            .unwrap()
            .unwrap();
        assert_eq!(added, ["new"]);
        assert_eq!(
            edited,
            "# mine\n[branches]\nprotected = [\"main\", \"release/*\", \"new\"] # kept\n[signatures]\nallowed_signers = \"s\"\n"
        );
        let p = parse_policy(Path::new("p.toml"), edited.as_bytes()).unwrap();
        assert_eq!(p.branches.protected, ["main", "release/*", "new"]);
        let none = add_protected_branches(Path::new("p.toml"), edited.as_bytes(), &add).unwrap();
        assert!(none.is_none());
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
