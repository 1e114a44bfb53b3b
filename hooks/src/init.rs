//! `tally init`: set up a bare repository so that tally guards it.
//!
//! Idempotent: running it again changes nothing that is already right, and says so. It never
//! overwrites a hook it did not write unless told to (`--force`).

use std::io::Write;
use std::path::{Path, PathBuf};

use tally_verify::signers::AllowedSigners;

use crate::config::{TALLY_DIR, add_protected_branches, default_policy_text, parse_policy};

/// The hooks tally installs, and the `tally hook` argument each runs.
pub const HOOKS: &[(&str, &str)] = &[
    ("pre-receive", "pre-receive"),
    ("update", "update"),
    ("reference-transaction", "reference-transaction"),
];

/// The hook tally installs only where the file is free (or tally's): `update` is where
/// platforms put their own access control (gitolite's is a symlink to its `update`), so a
/// foreign one is kept, even with `--force`. Without tally's `update` every rule still
/// holds (`reference-transaction` applies them all); only the refusals that `pre-receive`
/// cannot foresee reach the pusher as a dropped connection instead of a message.
const OPTIONAL_HOOK: &str = "update";

/// Marks a hook script as tally's own.
const MARKER: &str = "# Installed by `tally init`";

/// Whether the hook at `path` is one `tally init` wrote: its text carries the comment line
/// init writes into every hook file to mark it as tally's.
pub fn is_tally_hook(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(MARKER))
}

/// What to set up.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The bare repository.
    pub repo: PathBuf,
    /// allowed_signers file to copy in (named in messages).
    pub allowed_signers: PathBuf,
    /// Its contents, when the caller read it already (before becoming the repository's
    /// owner, who may not be able to read a file of root's); `None`: read the path.
    pub allowed_signers_text: Option<Vec<u8>>,
    /// Protected branches; empty means `main`.
    pub branches: Vec<String>,
    /// Overwrite foreign hooks and an existing policy.
    pub force: bool,
    /// Set up `tally/` only and leave `hooks/` alone: for platforms that own the hooks
    /// directory (Gitea/Forgejo `pre-receive.d`, GitLab's `gitaly hooks set`, gitolite).
    pub no_hooks: bool,
    /// The tally binary the hooks run, by absolute path.
    pub tally_binary: PathBuf,
    /// `tally-shim`, by absolute path, if it is installed beside tally (see [`find_shim`]):
    /// the interpreter of the `reference-transaction` hook file.
    pub shim: Option<PathBuf>,
    /// A shared PostgreSQL ledger (`--ledger`), recorded in policy.toml; `None` keeps what
    /// the policy says (SQLite in the repository by default).
    pub ledger: Option<crate::config::LedgerSection>,
}

/// The file name of the shim `scripts/install.sh` puts beside tally on x86_64 Linux.
pub const SHIM_NAME: &str = "tally-shim";

/// `tally-shim` beside the tally binary, if it is there and executable.
///
/// The shim (the `shim/` crate) is a freestanding program of a few kilobytes that ends the
/// `reference-transaction` states with no work (`committed`, git 2.54's `preparing`)
/// without starting tally, and starts tally for the others. That saves starting tally once
/// per ref transaction: about 0.9 ms here (BENCHMARKS.md).
pub fn find_shim(tally_binary: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let shim = tally_binary.parent()?.join(SHIM_NAME);
    let meta = std::fs::metadata(&shim).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(shim)
}

/// Why `tally init` stopped. Nothing after the failing step was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A repository format tally cannot read whole (SHA-256, reftable).
    #[error(transparent)]
    Format(#[from] tally_verify::repository::RepositoryError),
    /// Not a bare git repository.
    #[error(
        "{path} is not a bare git repository ({reason}); create one with `git init --bare {path}`"
    )]
    NotBare {
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The signers file is unusable.
    #[error("{0}")]
    Signers(#[from] tally_verify::signers::SignersError),
    /// The signers file lists nobody.
    #[error("{path} lists no signers; add at least one `principal keytype key` line")]
    NoSigners {
        /// The file.
        path: String,
    },
    /// A hook exists that tally did not write.
    #[error(
        "{path} exists and was not written by tally; merge it by hand or rerun with --force to replace it"
    )]
    ForeignHook {
        /// The hook.
        path: String,
    },
    /// git is told to look for hooks elsewhere, so hooks/ would never run.
    #[error(
        "core.hooksPath is set to {value:?} for {repo}: git runs hooks from there, not from its hooks/ directory, so tally would never run. Unset it (git --git-dir {repo} config --unset core.hooksPath) or install this as pre-receive there: {script}"
    )]
    HooksPath {
        /// The repository.
        repo: String,
        /// The configured value.
        value: String,
        /// The hook script to install by hand.
        script: String,
    },
    /// A branch name is not usable.
    #[error("--branch {name:?} is not a valid branch name or pattern")]
    BadBranch {
        /// The name.
        name: String,
    },
    /// The existing policy is invalid.
    #[error("existing {0}; fix it or rerun with --force to rewrite it")]
    BadPolicy(crate::config::ConfigError),
    /// File system error.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The policy written cannot be loaded back (a bug, or files changed underneath).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The ledger or its key cannot be created or opened.
    #[error("ledger: {0}")]
    Ledger(String),
    /// `core.sharedRepository` holds a value git rejects too.
    #[error(transparent)]
    Sharing(#[from] crate::shared::BadSharing),
    /// Making tally's files shared (or private) failed.
    #[error(
        "cannot set the permissions of {path} for core.sharedRepository: {source} (a file another account created: as root, chown -R it to the repository's owner, then run tally init again)"
    )]
    Share {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `git config` failed.
    #[error("cannot set git configuration {key} in {repo}: {message}")]
    GitConfig {
        /// The key.
        key: String,
        /// The repository.
        repo: String,
        /// Why.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Outcome of writing one file.
enum Wrote {
    Created,
    Updated,
    Unchanged,
    Kept,
}

impl Wrote {
    /// One word for JSON.
    fn name(&self) -> &'static str {
        match self {
            Wrote::Created => "created",
            Wrote::Updated => "updated",
            Wrote::Unchanged => "unchanged",
            Wrote::Kept => "kept",
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Wrote::Created => "created",
            Wrote::Updated => "updated",
            Wrote::Unchanged => "unchanged",
            Wrote::Kept => "kept (exists; --force rewrites it)",
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename; `tempfile`), unless it
/// already holds exactly that.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<Wrote, InitError> {
    use std::os::unix::fs::PermissionsExt;
    let existing = std::fs::read(path).ok();
    if existing.as_deref() == Some(bytes) {
        let perms = std::fs::metadata(path).map_err(io(path))?.permissions();
        if perms.mode() & 0o777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io(path))?;
            return Ok(Wrote::Updated);
        }
        return Ok(Wrote::Unchanged);
    }
    // A unique temporary file beside the target (removed if anything fails), given its
    // final mode, synced, then renamed over it: readers see the old file or the new one.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut f = tempfile::Builder::new()
        .prefix(".tally-init-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    f.write_all(bytes).map_err(io(f.path()))?;
    f.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    f.as_file().sync_all().map_err(io(path))?;
    f.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(if existing.is_some() {
        Wrote::Updated
    } else {
        Wrote::Created
    })
}

/// Longest tally path written on a hook's `#!` line. The kernel reads at most 127 bytes of
/// that line on every Linux (BINPRM_BUF_SIZE was 128 before 5.1), and the line also holds
/// `#!` and ` hook`.
const MAX_INTERPRETER_PATH: usize = 100;

/// Longest `<shim> <tally>` written on a hook's `#!` line: with `#!`, well inside the 127
/// bytes every Linux reads.
const MAX_INTERPRETER_LINE: usize = 105;

/// The file installed as a hook; it runs this tally binary by absolute path.
///
/// Normally its first line is `#!<tally> hook`, so the kernel starts tally itself, as
/// `<tally> hook <this file> <git's arguments>`, and tally tells the hook from the file's
/// name. A shell in between cost about 0.7 ms per hook, and a push runs three. It fails
/// closed like a script would: if the binary is gone, exec fails and git refuses the push
/// (pre-receive) or aborts the ref update (reference-transaction `prepared`).
///
/// A path the `#!` line cannot carry (whitespace, more than 100 bytes,
/// anything but printable ASCII) gets a shell script that execs tally instead. Its
/// `reference-transaction` states with nothing to do (`committed`, git 2.54's `preparing`)
/// end in the shell; with the `#!` form tally ends them before parsing its arguments.
///
/// With `shim` (see [`find_shim`]), the `reference-transaction` hook's first line is
/// `#!<shim> <tally>` instead, when both paths fit on it: the kernel starts the shim as
/// `<shim> <tally> <this file> <state>`, and the shim either ends the state itself or
/// replaces itself with `<tally> hook <this file> <state>`. It fails closed too: if it
/// cannot start tally, it says why and exits 1.
pub fn hook_script(tally: &Path, hook_arg: &str, shim: Option<&Path>) -> String {
    hook_file(tally, hook_arg, shim).0
}

/// [`hook_script`], and whether the file starts `tally-shim`.
fn hook_file(tally: &Path, hook_arg: &str, shim: Option<&Path>) -> (String, bool) {
    let path = tally.display().to_string();
    let fits = |p: &str| {
        p.len() <= MAX_INTERPRETER_PATH
            && p.starts_with('/')
            && p.bytes().all(|b| b.is_ascii_graphic())
    };
    let direct = fits(&path);
    if let Some(shim) = shim.map(|s| s.display().to_string())
        && direct
        && hook_arg == "reference-transaction"
        && fits(&shim)
        && shim.len() + 1 + path.len() <= MAX_INTERPRETER_LINE
    {
        let text = format!(
            "#!{shim} {path}\n{MARKER}; `tally init` rewrites this file, do not edit it.\n# git runs this file; the kernel starts tally-shim, which ends the states with no work (committed, preparing) and starts tally for the others.\n"
        );
        return (text, true);
    }
    if direct {
        let text = format!(
            "#!{path} hook\n{MARKER}; `tally init` rewrites this file, do not edit it.\n# git runs this file; the kernel starts tally with its path, and tally runs the hook named by the file name ({hook_arg}).\n"
        );
        return (text, false);
    }
    let quoted = path.replace('\'', r"'\''");
    // The input is read to its end so that git never writes into a closed pipe.
    let skip = if hook_arg == "reference-transaction" {
        let idle: Vec<&str> = crate::transaction::State::IDLE
            .iter()
            .map(|s| s.name())
            .collect();
        format!(
            "case \"$1\" in {}) while read -r _; do :; done; exit 0 ;; esac\n",
            idle.join("|")
        )
    } else {
        String::new()
    };
    let text = format!(
        "#!/bin/sh\n{MARKER}; `tally init` rewrites this file, do not edit it.\n{skip}exec '{quoted}' hook {hook_arg} \"$@\"\n"
    );
    (text, false)
}

/// One file init wrote or left, and what it did with it (`created`, `updated`, `unchanged`,
/// `kept`).
#[derive(Debug, serde::Serialize)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// What init did.
    pub action: &'static str,
}

/// What init did, as `tally init --json` prints it.
#[derive(Debug, serde::Serialize)]
pub struct InitSummary {
    /// The repository's git directory.
    pub repo: PathBuf,
    /// policy.toml.
    pub policy: FileOutcome,
    /// The protected branches now in force.
    pub protected: Vec<String>,
    /// The `--branch` names added to an existing policy.
    pub added_branches: Vec<String>,
    /// The installed allowed_signers.
    pub allowed_signers: FileOutcome,
    /// Its signer lines.
    pub signers: usize,
    /// The hooks written.
    pub hooks: Vec<FileOutcome>,
    /// A foreign `update` hook kept as it was.
    pub kept_foreign_hook: Option<PathBuf>,
    /// What happened to the ledger key, the ledger and its publication, one line each.
    pub ledger: Vec<String>,
}

/// Sets up the repository and prints what it did and what to do next.
pub fn run(opts: &InitOptions, out: &mut impl Write) -> Result<InitSummary, InitError> {
    // 1. Everything that can refuse, before anything is written.
    let plan = Plan::check(opts)?;
    // 2. The writes.
    let done = plan.apply(opts)?;
    // 3. What was done, and what to do next.
    plan.report(opts, &done, out);
    Ok(plan.summary(done))
}

/// What init will do, decided and checked before anything is written.
struct Plan {
    repo: gix::Repository,
    git_dir: PathBuf,
    signers_text: Vec<u8>,
    signer_lines: usize,
    branches: Vec<String>,
    hooks_dir: PathBuf,
    /// The hooks to (re)write, by file name and `tally hook` argument.
    install: Vec<(&'static str, &'static str)>,
    /// A foreign `update` hook that stays.
    kept_foreign: Option<PathBuf>,
    sharing: crate::shared::Sharing,
    policy_path: PathBuf,
    existing_policy: Option<Vec<u8>>,
    /// The `[ledger]` table the written policy must have (`--ledger`, or kept from the
    /// existing policy through `--force`).
    ledger: Option<crate::config::LedgerSection>,
    /// The existing policy with the `--branch` names it lacked added, and those names.
    extended_policy: Option<(String, Vec<String>)>,
}

/// What init wrote.
struct Done {
    policy: Wrote,
    signers_path: PathBuf,
    signers: Wrote,
    hooks: Vec<(PathBuf, Wrote, bool)>,
    shared_line: Option<String>,
    ledger: Vec<String>,
}

impl Plan {
    fn check(opts: &InitOptions) -> Result<Plan, InitError> {
        tally_verify::repository::check_format(&opts.repo)?;
        let repo = gix::open_opts(&opts.repo, gix::open::Options::isolated()).map_err(|e| {
            InitError::NotBare {
                path: opts.repo.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        if !repo.is_bare() {
            return Err(InitError::NotBare {
                path: opts.repo.display().to_string(),
                reason: "it has a working tree".into(),
            });
        }
        let git_dir = repo.git_dir().to_owned();
        let (signers_text, signer_lines) = read_signers(opts)?;
        let branches = branches(opts)?;
        if opts.no_hooks {
            // The platform runs the hooks; where they live is its business.
        } else if let Some(value) = git_config_get(&git_dir, "core.hooksPath") {
            return Err(InitError::HooksPath {
                repo: git_dir.display().to_string(),
                value,
                script: hook_script(&opts.tally_binary, "pre-receive", None).replace('\n', " \\n "),
            });
        }
        let hooks_dir = git_dir.join("hooks");
        let (install, kept_foreign) = hooks_to_install(opts, &hooks_dir)?;
        let sharing = crate::shared::Sharing::parse(
            git_config_get(&git_dir, "core.sharedRepository").as_deref(),
        )?;
        let policy_path = crate::config::policy_path(&git_dir);
        let existing_policy = std::fs::read(&policy_path).ok();
        let mut extended_policy = None;
        if let (Some(text), false) = (&existing_policy, opts.force) {
            // A `--branch` the existing policy lacks is added to it, never ignored.
            extended_policy = add_protected_branches(&policy_path, text, &opts.branches)
                .map_err(InitError::BadPolicy)?;
            if let Some((edited, _)) = &extended_policy {
                parse_policy(&policy_path, edited.as_bytes()).map_err(InitError::BadPolicy)?;
            }
        }
        let current = existing_policy
            .as_ref()
            .and_then(|t| parse_policy(&policy_path, t).ok())
            .and_then(|f| f.ledger);
        let ledger = match (&opts.ledger, current) {
            (None, current) => current,
            (Some(want), Some(current)) if *want == current => Some(current),
            (Some(_), Some(current)) => {
                return Err(InitError::Ledger(format!(
                    "{} already keeps the ledger in {}; to move it, run `tally ledger migrate --repo {} --to <URL>`",
                    policy_path.display(),
                    current.url,
                    git_dir.display()
                )));
            }
            (Some(want), None) => {
                let sqlite = crate::record::Paths::new(&git_dir).ledger();
                if sqlite.exists() {
                    return Err(InitError::Ledger(format!(
                        "this repository's ledger is in SQLite at {}; to move it to PostgreSQL, run `tally ledger migrate --repo {} --to {}`",
                        sqlite.display(),
                        git_dir.display(),
                        want.url
                    )));
                }
                Some(want.clone())
            }
        };
        if let Some(want) = &ledger {
            crate::ledger::target(&policy_path, &git_dir.join(TALLY_DIR), want)
                .map_err(|e| InitError::Ledger(e.to_string()))?;
        }
        Ok(Plan {
            ledger,
            repo,
            git_dir,
            signers_text,
            signer_lines,
            branches,
            hooks_dir,
            install,
            kept_foreign,
            sharing,
            policy_path,
            existing_policy,
            extended_policy,
        })
    }

    fn apply(&self, opts: &InitOptions) -> Result<Done, InitError> {
        let tally_dir = self.git_dir.join(TALLY_DIR);
        std::fs::create_dir_all(&tally_dir).map_err(io(&tally_dir))?;
        let shared_line = share(&self.git_dir, self.sharing)?;
        if !opts.no_hooks {
            std::fs::create_dir_all(&self.hooks_dir).map_err(io(&self.hooks_dir))?;
        }
        let text = match (&self.existing_policy, opts.force, &self.extended_policy) {
            (Some(_), false, Some((edited, _))) => Some(edited.clone()),
            (Some(_), false, None) => None,
            _ => Some(default_policy_text(&self.branches)),
        };
        // The [ledger] table the policy must have, whatever else changed.
        let text = match (text, &self.existing_policy) {
            (Some(text), _) if self.ledger.is_some() => Some(
                crate::config::with_ledger_section(
                    &self.policy_path,
                    text.as_bytes(),
                    self.ledger.as_ref(),
                )
                .map_err(InitError::BadPolicy)?,
            ),
            (None, Some(existing)) if self.ledger.is_some() => {
                let edited = crate::config::with_ledger_section(
                    &self.policy_path,
                    existing,
                    self.ledger.as_ref(),
                )
                .map_err(InitError::BadPolicy)?;
                (edited.as_bytes() != existing.as_slice()).then_some(edited)
            }
            (text, _) => text,
        };
        let policy = match text {
            Some(text) => write_file(&self.policy_path, text.as_bytes(), 0o644)?,
            None => Wrote::Kept,
        };
        let signers_path = tally_dir.join("allowed_signers");
        let signers = write_file(&signers_path, &self.signers_text, 0o644)?;
        let mut hooks = Vec::new();
        for &(name, arg) in &self.install {
            let path = self.hooks_dir.join(name);
            let (script, through) = hook_file(&opts.tally_binary, arg, opts.shim.as_deref());
            let wrote = write_file(&path, script.as_bytes(), 0o755)?;
            hooks.push((path, wrote, through));
        }
        // Defence in depth: git itself checks every pushed object's format.
        git_config(&self.git_dir, "receive.fsckObjects", "true")?;
        // Only a change init made is recorded here (hand edits are recorded by the next push
        // or `tally ledger checkpoint`): otherwise the ledger is not even opened, since
        // opening a WAL database touches its shared-memory file and a second `tally init`
        // must change nothing.
        let changed = [&policy, &signers]
            .iter()
            .any(|w| matches!(w, Wrote::Created | Wrote::Updated));
        let reasons = changed.then(|| self.change_reasons(opts, &policy, &signers));
        let ledger = set_up_ledger(&self.repo, &self.git_dir, reasons)?;
        // Again, for what SQLite created with its own mode (0644 narrowed by the umask).
        share(&self.git_dir, self.sharing)?;
        Ok(Done {
            policy,
            signers_path,
            signers,
            hooks,
            shared_line,
            ledger,
        })
    }

    /// What this run changed in the policy files, for the `policy-change` entry recorded if
    /// the policy digest changed.
    fn change_reasons(&self, opts: &InitOptions, policy: &Wrote, signers: &Wrote) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some((_, added)) = &self.extended_policy {
            reasons.push(format!(
                "tally init: protected branch{} added: {}",
                if added.len() == 1 { "" } else { "es" },
                added.join(", ")
            ));
        } else if opts.force && self.existing_policy.is_some() && matches!(policy, Wrote::Updated) {
            reasons.push(format!(
                "tally init --force: policy.toml rewritten, protected branches: {}",
                self.branches.join(", ")
            ));
        }
        if matches!(signers, Wrote::Updated) {
            reasons.push(format!(
                "tally init: allowed_signers replaced by {}",
                opts.allowed_signers.display()
            ));
        }
        if reasons.is_empty() {
            reasons.push(format!(
                "{} (recorded by tally init)",
                crate::record::POLICY_CHANGED
            ));
        }
        reasons
    }

    /// The protected branches in force after [`Plan::apply`].
    fn protected(&self, done: &Done) -> Vec<String> {
        let text = match (&self.extended_policy, &done.policy, &self.existing_policy) {
            (Some((text, _)), _, _) => text.as_bytes(),
            (None, Wrote::Kept, Some(text)) => text.as_slice(),
            _ => return self.branches.clone(),
        };
        parse_policy(&self.policy_path, text)
            .map(|pf| pf.branches.protected)
            .unwrap_or_default()
    }

    fn summary(&self, done: Done) -> InitSummary {
        InitSummary {
            repo: self.git_dir.clone(),
            protected: self.protected(&done),
            policy: FileOutcome {
                path: self.policy_path.clone(),
                action: done.policy.name(),
            },
            added_branches: self
                .extended_policy
                .as_ref()
                .map(|(_, added)| added.clone())
                .unwrap_or_default(),
            allowed_signers: FileOutcome {
                path: done.signers_path,
                action: done.signers.name(),
            },
            signers: self.signer_lines,
            hooks: done
                .hooks
                .into_iter()
                .map(|(path, wrote, _)| FileOutcome {
                    path,
                    action: wrote.name(),
                })
                .collect(),
            kept_foreign_hook: self.kept_foreign.clone(),
            ledger: done.ledger,
        }
    }

    fn report(&self, opts: &InitOptions, done: &Done, out: &mut impl Write) {
        let p = |path: &Path| path.display().to_string();
        let _ = writeln!(out, "tally init: {}", p(&self.git_dir));
        let added = match &self.extended_policy {
            Some((_, added)) => format!(" (added protected branches: {})", added.join(", ")),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  policy          {}: {}{added}",
            p(&self.policy_path),
            done.policy.verb()
        );
        let _ = writeln!(
            out,
            "  allowed signers {}: {} ({} line{})",
            p(&done.signers_path),
            done.signers.verb(),
            self.signer_lines,
            if self.signer_lines == 1 { "" } else { "s" }
        );
        for (path, wrote, through_shim) in &done.hooks {
            let via = if *through_shim {
                " (through tally-shim)"
            } else {
                ""
            };
            let _ = writeln!(out, "  hook            {}: {}{via}", p(path), wrote.verb());
        }
        if let Some(path) = &self.kept_foreign {
            let _ = writeln!(
                out,
                "  hook            {}: kept, it is not tally's (the platform's access control, if any, keeps working). For refusals that only the ref transaction can make to reach the pusher as messages, have it run `{} hook update \"$1\" \"$2\" \"$3\"` and fail when that fails",
                p(path),
                p(&opts.tally_binary)
            );
        }
        if opts.no_hooks {
            let _ = writeln!(
                out,
                "  hooks           not installed (--no-hooks): until the platform runs `{} hook pre-receive` and `{} hook post-receive` (or reference-transaction), nothing is enforced; see the README's Hosting platforms",
                p(&opts.tally_binary),
                p(&opts.tally_binary)
            );
        }
        let _ = writeln!(out, "  git config      receive.fsckObjects=true");
        if let Some(line) = &done.shared_line {
            let _ = writeln!(out, "  {line}");
        }
        for line in &done.ledger {
            let _ = writeln!(out, "  {line}");
        }
        let current = self.protected(done).join(", ");
        if let Some((_, added)) = &self.extended_policy {
            let _ = writeln!(
                out,
                "protected branches (the existing policy's, and added: {}): {current}",
                added.join(", ")
            );
        } else if matches!(done.policy, Wrote::Kept) {
            let _ = writeln!(
                out,
                "protected branches (from the existing policy): {current}"
            );
        } else {
            let _ = writeln!(out, "protected branches: {current}");
        }
        let _ = writeln!(out, "next:");
        let _ = writeln!(
            out,
            "  - review {} (allowed files, size and syntax limits, YAML tags)",
            p(&self.policy_path)
        );
        let _ = writeln!(out, "  - each signer configures git once:");
        for command in [
            "git config gpg.format ssh",
            "git config user.signingkey ~/.ssh/id_ed25519.pub",
            "git config commit.gpgsign true",
        ] {
            let _ = writeln!(out, "        {command}");
        }
        let _ = writeln!(
            out,
            "  - push signed commits; refused pushes explain what to fix"
        );
    }
}

/// The allowed_signers bytes (read by the caller already, or from the path) and its number
/// of lines; refused if it does not parse (errors name the path as given, and the line) or
/// names no one.
fn read_signers(opts: &InitOptions) -> Result<(Vec<u8>, usize), InitError> {
    let text = match &opts.allowed_signers_text {
        Some(text) => text.clone(),
        None => std::fs::read(&opts.allowed_signers).map_err(|source| {
            InitError::Signers(tally_verify::signers::SignersError::Io {
                path: opts.allowed_signers.clone(),
                source,
            })
        })?,
    };
    let signers = AllowedSigners::from_bytes(&opts.allowed_signers, &text)?;
    if signers.is_empty() {
        return Err(InitError::NoSigners {
            path: opts.allowed_signers.display().to_string(),
        });
    }
    let lines = signers.entries().len();
    Ok((text, lines))
}

/// The protected branches (`main` by default), each a plain branch name.
fn branches(opts: &InitOptions) -> Result<Vec<String>, InitError> {
    let branches = if opts.branches.is_empty() {
        vec!["main".to_owned()]
    } else {
        opts.branches.clone()
    };
    for b in &branches {
        let valid = !b.is_empty()
            && !b.starts_with("refs/")
            && !b.starts_with('-')
            && !b.contains("..")
            && !b
                .bytes()
                .any(|c| c.is_ascii_control() || c == b' ' || c == b'~' || c == b'^' || c == b':');
        if !valid {
            return Err(InitError::BadBranch { name: b.clone() });
        }
    }
    Ok(branches)
}

/// The hooks to write, and a foreign `update` hook that stays ([`OPTIONAL_HOOK`]); refused
/// if another hook is foreign and `--force` was not given.
#[allow(clippy::type_complexity)]
fn hooks_to_install(
    opts: &InitOptions,
    hooks_dir: &Path,
) -> Result<(Vec<(&'static str, &'static str)>, Option<PathBuf>), InitError> {
    let hooks: &[(&'static str, &'static str)] = if opts.no_hooks { &[] } else { HOOKS };
    let mut kept_foreign = None;
    let mut install = Vec::new();
    for &(name, arg) in hooks {
        let path = hooks_dir.join(name);
        let ours = is_tally_hook(&path);
        let foreign = !ours && std::fs::symlink_metadata(&path).is_ok();
        if foreign && name == OPTIONAL_HOOK {
            kept_foreign = Some(path);
            continue;
        }
        if foreign && !opts.force {
            return Err(InitError::ForeignHook {
                path: path.display().to_string(),
            });
        }
        install.push((name, arg));
    }
    Ok((install, kept_foreign))
}

/// Gives tally's files the permissions `core.sharedRepository` asks for (see
/// [`crate::shared`]) and takes the matching umask for what init writes next. In a shared
/// repository everything in `tally/` gets the repository's group, files its mode (the key:
/// group-readable only), directories setgid; in a private one a `tally/` that was shared
/// before is made the owner's again (the key back to 0600). Returns the line init prints.
fn share(git_dir: &Path, sharing: crate::shared::Sharing) -> Result<Option<String>, InitError> {
    use crate::shared::Sharing;
    use std::os::unix::fs::MetadataExt;
    let paths = crate::record::Paths::new(git_dir);
    let was_shared = Sharing::of_tally_dir(&paths.dir) != Sharing::Private;
    match sharing {
        Sharing::Private if !was_shared => Ok(None),
        Sharing::Private => {
            // Every file the group could write is the owner's alone again; one another
            // account created cannot be changed by the owner, and init says which.
            set_modes(&paths, sharing, None)?;
            Ok(Some(
                "private         core.sharedRepository no longer lets the group write: tally's files are the owner's alone again; the ledger key was readable by the group until now".to_owned(),
            ))
        }
        Sharing::Shared { file_mode } => {
            let gid = std::fs::metadata(git_dir)
                .map_err(|source| InitError::Share {
                    path: git_dir.display().to_string(),
                    source,
                })?
                .gid();
            set_modes(&paths, sharing, Some(gid))?;
            crate::shared::adopt_umask(git_dir);
            let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                .ok()
                .flatten()
                .map_or_else(|| format!("gid {gid}"), |g| g.name);
            Ok(Some(format!(
                "shared          core.sharedRepository: tally's files are group {group}'s, mode {file_mode:04o}, directories setgid; the ledger key is readable by the group, whose members' pushes sign entries"
            )))
        }
    }
}

/// Gives `tally/` and everything in it the modes of `sharing` (and the group `gid`, when
/// shared): directories [`crate::shared::Sharing::dir_mode`], the key
/// [`crate::shared::Sharing::key_mode`], the ledger, SQLite's files, verdicts and markers
/// [`crate::shared::Sharing::ledger_mode`], and the policy, signers and public key readable
/// by the group and written by the owner only.
fn set_modes(
    paths: &crate::record::Paths,
    sharing: crate::shared::Sharing,
    gid: Option<u32>,
) -> Result<(), InitError> {
    use std::os::unix::fs::MetadataExt;
    let fail = |path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Share { path, source }
    };
    let shared = gid.is_some();
    // First every path and the mode it must have, then a check that each one to change is
    // this account's (only the owner of a file may change its mode), and only then the
    // changes: init changes nothing it cannot finish.
    let mut wanted = vec![(paths.dir.clone(), sharing.dir_mode())];
    for entry in std::fs::read_dir(&paths.dir).map_err(fail(&paths.dir))? {
        let path = entry.map_err(fail(&paths.dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(fail(&path))?;
        if meta.is_dir() {
            for inner in std::fs::read_dir(&path).map_err(fail(&path))? {
                let inner = inner.map_err(fail(&path))?.path();
                wanted.push((inner, sharing.ledger_mode()));
            }
            wanted.push((path, sharing.dir_mode()));
        } else if path == paths.key() {
            wanted.push((path, sharing.key_mode()));
        } else if meta.is_file() {
            let mode = if is_ledger_file(&path, paths) {
                sharing.ledger_mode()
            } else if shared {
                // policy.toml, allowed_signers, the public key: read by every member,
                // changed by the owner.
                (meta.mode() & 0o644) | 0o040
            } else {
                meta.mode() & 0o644
            };
            wanted.push((path, mode));
        }
    }
    let me = nix::unistd::Uid::effective().as_raw();
    for (path, mode) in &wanted {
        let meta = std::fs::symlink_metadata(path).map_err(fail(path))?;
        let change = meta.mode() & 0o7777 != *mode || gid.is_some_and(|g| g != meta.gid());
        if change && meta.uid() != me && me != 0 {
            return Err(fail(path)(std::io::Error::from_raw_os_error(
                nix::errno::Errno::EPERM as i32,
            )));
        }
    }
    // `tally/` itself last: its mode is what marks the repository shared, so a failure part
    // way leaves the old mark and the next init starts over.
    for (path, mode) in wanted.iter().rev() {
        crate::shared::set_mode(path, *mode, gid).map_err(fail(path))?;
    }
    Ok(())
}

/// The ledger database and SQLite's files beside it (`-wal`, `-shm`, `-journal`).
fn is_ledger_file(path: &Path, paths: &crate::record::Paths) -> bool {
    let ledger = paths.ledger();
    let (Some(name), Some(ledger_name)) = (
        path.file_name().and_then(|n| n.to_str()),
        ledger.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    name == ledger_name
        || name
            .strip_prefix(ledger_name)
            .is_some_and(|r| r.starts_with('-'))
}

/// How init says it left an existing ledger as it was. A shared ledger found by this ledger key
/// is the one another replica made (or this repository's own, on a second run): init says
/// that this repository uses it, rather than that it made one.
fn unchanged(shared: bool) -> &'static str {
    if shared {
        "exists already, attached (unchanged)"
    } else {
        "unchanged"
    }
}

/// Creates the ledger key and the ledger on first run (recording the policy and the tips of
/// protected branches that existed before tally); afterwards, given `reasons` (init changed
/// policy.toml or allowed_signers), records the change at once (a `policy-change` entry, if
/// the policy digest changed) and publishes it, as a push would.
fn set_up_ledger(
    repo: &gix::Repository,
    git_dir: &Path,
    reasons: Option<Vec<String>>,
) -> Result<Vec<String>, InitError> {
    use crate::record::{Paths, entry_about};
    use tally_ledger::{Kind, Store};
    let ledger_err = |e: &dyn std::fmt::Display| InitError::Ledger(e.to_string());
    let paths = Paths::new(git_dir);
    let mut lines = Vec::new();
    let key = if paths.key().exists() {
        lines.push(format!(
            "ledger key      {}: unchanged",
            paths.key().display()
        ));
        paths.load_key().map_err(|e| ledger_err(&e))?
    } else {
        let key = tally_ledger::key::generate(&paths.key(), "tally ledger key")
            .map_err(|e| ledger_err(&e))?;
        let sharing = crate::shared::Sharing::of_repository(git_dir);
        if sharing != crate::shared::Sharing::Private {
            crate::shared::set_mode(&paths.key(), sharing.key_mode(), None)
                .map_err(|e| ledger_err(&e))?;
        }
        lines.push(format!(
            "ledger key      {}: created (and {})",
            paths.key().display(),
            paths
                .public_key()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        key
    };
    let location = crate::ledger::Location::of(&paths).map_err(|e| ledger_err(&e))?;
    let exists = match &location {
        crate::ledger::Location::Sqlite(path) => path.exists(),
        crate::ledger::Location::Postgres { target, repository } => {
            let mut db = crate::ledger::connect(target, &tally_ledger::Options::default())
                .map_err(|e| ledger_err(&e))?;
            let applied = db.upgrade().map_err(|e| ledger_err(&e))?;
            if let Some(version) = applied.last() {
                lines.push(format!(
                    "ledger database {}: tally schema {} version {version}",
                    target.display(),
                    if applied.len() == 1 && *version == 1 {
                        "created at"
                    } else {
                        "upgraded to"
                    }
                ));
            }
            lines.push(format!(
                "                shared: every replica of this repository needs this ledger key ({}), mode 0600, before its `tally init --ledger`",
                tally_ledger::key::fingerprint(&key.verifying_key())
            ));
            if crate::ledger::ensure_node_id(&paths).map_err(|e| ledger_err(&e))? {
                lines.push(format!(
                    "node id         {}: created (names this replica's in-flight markers; never copy it to another node)",
                    paths.dir.join(crate::ledger::NODE_ID).display()
                ));
            }
            db.has_ledger(repository).map_err(|e| ledger_err(&e))?
        }
    };
    let shown = match &location {
        crate::ledger::Location::Postgres { repository, .. } => {
            format!("{} (ledger {repository})", location.display())
        }
        crate::ledger::Location::Sqlite(path) => path.display().to_string(),
    };
    if let (true, None) = (exists, &reasons) {
        // Not even opened (see `Plan::apply`). `tally ledger verify` checks it.
        lines.push(format!(
            "ledger          {shown}: {}",
            unchanged(location.is_shared())
        ));
        return Ok(lines);
    }
    if let (true, Some(reasons)) = (exists, reasons) {
        lines.extend(record_change(repo, git_dir, reasons)?);
        return Ok(lines);
    }
    let config = crate::config::Config::load(git_dir)?;
    let id = crate::ledger::repository_id(&key.verifying_key());
    let name: String = git_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let origin = format!("tally/{name}/{id}");
    let now = jiff::Timestamp::now();
    let mut store = match &location {
        crate::ledger::Location::Sqlite(path) => Store::create(
            path,
            &origin,
            &id,
            now,
            &key,
            &tally_ledger::Options::default(),
        )
        .map_err(|e| ledger_err(&e))?,
        crate::ledger::Location::Postgres { target, .. } => Store::create_in(
            crate::ledger::connect(target, &tally_ledger::Options::default())
                .map_err(|e| ledger_err(&e))?,
            &origin,
            &id,
            now,
            &key,
        )
        .map_err(|e| ledger_err(&e))?,
    };
    let pusher = crate::pusher::Pusher::from_env();
    let mut entries = vec![entry_about(
        Kind::PolicyChange,
        None,
        &pusher,
        &config,
        vec!["tally init".into()],
    )];
    entries.extend(baselines(repo, &config, &pusher, |_| Ok(false))?);
    let outcome = store
        .append(entries, now, &key)
        .map_err(|e| ledger_err(&e))?;
    lines.push(format!(
        "ledger          {shown}: created, {}",
        tally_ledger::log::count(outcome.size, "entry", "entries")
    ));
    lines.push(format!("                origin {origin}"));
    lines.push(publish_line(git_dir, &store, now));
    Ok(lines)
}

/// Records at once a change init made to the policy files, as a push would find it: a
/// `policy-change` entry with `reasons` if the policy digest changed, and a baseline for
/// each protected branch that exists but that the ledger does not place yet (a branch just
/// added with `--branch`), in one append; then publishes. Returns the report lines.
fn record_change(
    repo: &gix::Repository,
    git_dir: &Path,
    reasons: Vec<String>,
) -> Result<Vec<String>, InitError> {
    let ledger_err = |e: &dyn std::fmt::Display| InitError::Ledger(e.to_string());
    let paths = crate::record::Paths::new(git_dir);
    let policy = crate::config::Policy::load(git_dir)?;
    let pusher = crate::pusher::Pusher::from_env();
    let now = jiff::Timestamp::now();
    let (mut store, key) = crate::record::open(&paths).map_err(|e| ledger_err(&e))?;
    let mut entries: Vec<tally_ledger::NewEntry> =
        crate::record::policy_change(&store, &policy, &pusher, reasons)
            .map_err(|e| ledger_err(&e))?
            .into_iter()
            .collect();
    entries.extend(baselines(repo, &policy, &pusher, |name| {
        store
            .position(name)
            .map(|p| p.is_some())
            .map_err(|e| ledger_err(&e))
    })?);
    let ledger = store.location();
    let Some(first) = entries.first() else {
        let mut lines = vec![format!(
            "ledger          {ledger}: {}",
            unchanged(store.is_shared())
        )];
        if store.is_shared() {
            // A replica joining a shared ledger publishes it at once, so that agents
            // fetching from this replica find the entries of the commits it holds.
            lines.push(publish_line(git_dir, &store, now));
        }
        return Ok(lines);
    };
    let what = if first.refname.is_empty() {
        "the policy change"
    } else {
        "a baseline"
    };
    let count = entries.len();
    let outcome = store
        .append(entries, now, &key)
        .map_err(|e| ledger_err(&e))?;
    let seq = outcome.first_seq;
    let mut lines = vec![if count == 1 {
        format!("ledger          {ledger}: recorded {what} as entry #{seq} (policy-change)")
    } else {
        format!(
            "ledger          {ledger}: recorded {what} as entry #{seq} (policy-change), and {} baseline{} of protected branches that exist already",
            count - 1,
            if count == 2 { "" } else { "s" }
        )
    }];
    lines.push(publish_line(git_dir, &store, now));
    Ok(lines)
}

/// Baseline entries (`policy-change` with a ref) for the protected branches that exist and
/// that `placed` says the ledger does not place: their history predates tally.
fn baselines(
    repo: &gix::Repository,
    config: &crate::config::Policy,
    pusher: &crate::pusher::Pusher,
    placed: impl Fn(&str) -> Result<bool, InitError>,
) -> Result<Vec<tally_ledger::NewEntry>, InitError> {
    use crate::record::entry_about;
    use tally_ledger::{Kind, NewEntry};
    use tally_verify::revision::Update;
    let ledger_err = |e: &dyn std::fmt::Display| InitError::Ledger(e.to_string());
    let mut entries = Vec::new();
    let refs = repo.references().map_err(|e| ledger_err(&e))?;
    for r in refs.all().map_err(|e| ledger_err(&e))? {
        let mut r = r.map_err(|e| ledger_err(&e))?;
        let name = r.name().as_bstr().to_string();
        if !config.is_protected(&name) || placed(&name)? {
            continue;
        }
        let id = r.peel_to_id().map_err(|e| ledger_err(&e))?.detach();
        let tree = repo
            .find_commit(id)
            .and_then(|c| c.tree_id())
            .map(|t| t.detach().as_bytes().to_vec())
            .ok();
        let baseline = Update {
            refname: name.clone(),
            old: None,
            new: Some(id),
        };
        entries.push(NewEntry {
            new_tree: tree,
            ..entry_about(
                Kind::PolicyChange,
                Some(&baseline),
                pusher,
                config,
                vec![format!(
                    "baseline at tally init: {name} already pointed here; earlier history was not checked by tally"
                )],
            )
        });
    }
    Ok(entries)
}

/// Publishes the ledger as a push would; a failure is a warning (the store is the record,
/// and the next publication catches up).
fn publish_line(git_dir: &Path, store: &tally_ledger::Store, now: jiff::Timestamp) -> String {
    match crate::publish::publish(git_dir, store, now) {
        Err(e) => format!("warning: {e}"),
        Ok(()) => format!("published       {}", crate::publish::LEDGER_REF),
    }
}

/// Reads a configuration value as git would see it in this repository (all scopes).
pub(crate) fn git_config_get(git_dir: &Path, key: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["config", "--get", key])
        .output()
        .ok()?;
    let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !value.is_empty()).then_some(value)
}

fn git_config(git_dir: &Path, key: &str, value: &str) -> Result<(), InitError> {
    let fail = |message: String| InitError::GitConfig {
        key: key.to_owned(),
        repo: git_dir.display().to_string(),
        message,
    };
    let status = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["config", key, value])
        .output()
        .map_err(|e| fail(format!("cannot run git: {e}")))?;
    if !status.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&status.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn first_line(script: &str) -> &str {
        script.lines().next().unwrap()
    }

    #[test]
    fn the_shim_interprets_only_the_reference_transaction_hook() {
        let tally = Path::new("/opt/tally/bin/tally");
        let shim = Path::new("/opt/tally/bin/tally-shim");
        assert_eq!(
            first_line(&hook_script(tally, "reference-transaction", Some(shim))),
            "#!/opt/tally/bin/tally-shim /opt/tally/bin/tally"
        );
        assert_eq!(
            first_line(&hook_script(tally, "pre-receive", Some(shim))),
            "#!/opt/tally/bin/tally hook"
        );
        assert_eq!(
            first_line(&hook_script(tally, "reference-transaction", None)),
            "#!/opt/tally/bin/tally hook"
        );
    }

    #[test]
    fn a_shim_path_the_line_cannot_carry_falls_back_to_starting_tally_itself() {
        let tally = Path::new("/opt/tally/bin/tally");
        let long = format!("/{}/tally-shim", "d".repeat(MAX_INTERPRETER_LINE));
        for shim in [
            "/opt/tally bin/tally-shim",
            "relative/tally-shim",
            long.as_str(),
        ] {
            assert_eq!(
                first_line(&hook_script(
                    tally,
                    "reference-transaction",
                    Some(Path::new(shim))
                )),
                "#!/opt/tally/bin/tally hook",
                "{shim}"
            );
        }
        // Each path fits alone, but not both on one line.
        let half = format!("/{}", "e".repeat(MAX_INTERPRETER_PATH - 1));
        assert_eq!(
            first_line(&hook_script(
                Path::new(&half),
                "reference-transaction",
                Some(Path::new(&half))
            )),
            format!("#!{half} hook")
        );
        // A tally path that needs the shell form keeps it; the shim is not used.
        let spaced = hook_script(
            Path::new("/opt/my tools/tally"),
            "reference-transaction",
            Some(Path::new("/opt/tally-shim")),
        );
        assert_eq!(first_line(&spaced), "#!/bin/sh");
    }

    #[test]
    fn find_shim_wants_an_executable_file_beside_tally() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tally = dir.path().join("tally");
        assert_eq!(find_shim(&tally), None);
        let shim = dir.path().join(SHIM_NAME);
        std::fs::write(&shim, b"").unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find_shim(&tally), None, "not executable");
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_shim(&tally), Some(shim.clone()));
        std::fs::remove_file(&shim).unwrap();
        std::fs::create_dir(&shim).unwrap();
        assert_eq!(find_shim(&tally), None, "a directory");
    }
}
