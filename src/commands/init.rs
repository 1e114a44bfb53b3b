//! `tally init`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use tally_hooks::init::{InitOptions, InitSummary, run as init};

use crate::cli::Outcome;
use crate::commands::json;

/// Arguments of `tally init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The bare repository to guard.
    repo: PathBuf,
    /// git allowed_signers file listing who may sign (copied into the repository).
    #[arg(long, value_name = "FILE", required_unless_present = "remove")]
    allowed_signers: Option<PathBuf>,
    /// A branch to protect (repeatable; default: main).
    #[arg(long = "branch", value_name = "NAME")]
    branches: Vec<String>,
    /// Replace hooks tally did not write, and rewrite an existing policy.
    #[arg(long)]
    force: bool,
    /// Set up the policy, signers, key and ledger but leave hooks/ alone, for platforms that
    /// own it (Gitea/Forgejo, GitLab, gitolite): install their hook scripts as the README
    /// says.
    #[arg(long)]
    no_hooks: bool,
    /// Keep the ledger in a shared PostgreSQL database (postgres://user@host:port/db?sslmode=
    /// verify-full), for git servers that run on several machines; recorded in policy.toml.
    /// The password comes from PGPASSWORD, ~/.pgpass, PGSERVICE or --ledger-password-file.
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
    /// A file holding the ledger database's password (mode 0600), for --ledger.
    #[arg(long, value_name = "FILE", requires = "ledger")]
    ledger_password_file: Option<PathBuf>,
    /// Print a JSON object: what was written, kept and recorded; or the error.
    #[arg(long)]
    json: bool,
    /// The same as `tally uninstall <REPO>`: remove the hooks tally wrote, keep the rest.
    #[arg(
        long,
        conflicts_with_all = ["allowed_signers", "branches", "force", "no_hooks", "ledger"]
    )]
    remove: bool,
}

/// Runs `tally init`.
pub fn run(args: InitArgs, out: &mut impl Write) -> Outcome {
    let json = args.json;
    if args.remove {
        return crate::commands::uninstall::remove(&args.repo, json, out);
    }
    match set_up(args, out) {
        Ok(summary) if json => {
            json::success(out, serde_json::to_value(&summary).unwrap_or_default())
        }
        Ok(_) => Outcome::Success,
        Err(message) => json::fail(json, out, Outcome::Config(message), ""),
    }
}

fn set_up(args: InitArgs, out: &mut impl Write) -> Result<InitSummary, String> {
    let Some(allowed_signers) = args.allowed_signers else {
        return Err("--allowed-signers <FILE> is required".into());
    };
    let tally_binary = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(p) => p,
        Err(e) => return Err(format!("cannot find the tally binary's own path: {e}")),
    };
    // Read as the caller (root's files may be closed to the repository's owner), then become
    // the owner before anything is written.
    let allowed_signers_text = match std::fs::read(&allowed_signers) {
        Ok(text) => Some(text),
        Err(e) => {
            return Err(format!(
                "cannot read allowed_signers {}: {e}",
                allowed_signers.display()
            ));
        }
    };
    match tally_hooks::owner::act_as_owner(&args.repo) {
        Ok(Some(line)) => eprintln!("tally: {line}"),
        Ok(None) => {}
        Err(e) => return Err(e.to_string()),
    }
    let ledger = match args.ledger {
        Some(url) => Some(tally_hooks::config::LedgerSection {
            url,
            password_file: args
                .ledger_password_file
                .map(|f| {
                    f.canonicalize()
                        .map_err(|e| format!("--ledger-password-file {}: {e}", f.display()))
                })
                .transpose()?,
        }),
        None => None,
    };
    let opts = InitOptions {
        ledger,
        repo: args.repo,
        allowed_signers,
        allowed_signers_text,
        branches: args.branches,
        force: args.force,
        no_hooks: args.no_hooks,
        shim: tally_hooks::init::find_shim(&tally_binary),
        tally_binary,
    };
    let result = if args.json {
        init(&opts, &mut std::io::sink())
    } else {
        init(&opts, out)
    };
    result.map_err(|e| e.to_string())
}
