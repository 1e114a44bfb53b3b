//! `tally policy check`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tally_hooks::admin::find_repo;
use tally_hooks::config::{PolicySummary, check};

use crate::cli::Outcome;
use crate::commands::json;

/// Arguments of `tally policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check policy.toml, allowed_signers and the revocation file exactly as the hooks load
    /// them: exit 0 with a summary if they are valid, 2 with each error's file, line and
    /// column if not.
    ///
    /// Checks the repository's files by default; `--policy` checks a policy file elsewhere
    /// (the files it names are read relative to it), `--allowed-signers` an allowed_signers
    /// file instead of the one the policy names, or alone, before `tally init`.
    Check {
        /// The repository (default: the one the current directory is in).
        #[arg(long, value_name = "REPO", conflicts_with = "policy")]
        repo: Option<PathBuf>,
        /// A policy file to check instead of the repository's.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// An allowed_signers file to check instead of the one the policy names.
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// Print a JSON object: the summary, or the error.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `tally policy ...`.
pub fn run(args: PolicyArgs, out: &mut impl Write) -> Outcome {
    let PolicyCommand::Check {
        repo,
        policy,
        allowed_signers,
        json,
    } = args.command;
    let policy = match (policy, &repo, &allowed_signers) {
        (Some(policy), _, _) => Some(policy),
        // Only a signers file: check it alone, as `tally init` will read it.
        (None, None, Some(_)) => None,
        (None, _, _) => match find_repo(repo.as_deref()) {
            Ok(dir) => Some(tally_hooks::config::policy_path(&dir)),
            Err(e) => return json::fail(json, out, Outcome::Config(e.to_string()), ""),
        },
    };
    match check(policy.as_deref(), allowed_signers.as_deref()) {
        Ok(summary) if json => {
            json::success(out, serde_json::to_value(&summary).unwrap_or_default())
        }
        Ok(summary) => {
            print_summary(out, &summary);
            Outcome::Success
        }
        Err(e) => json::fail(json, out, Outcome::Config(e.report()), ""),
    }
}

fn print_summary(out: &mut impl Write, s: &PolicySummary) {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match &s.policy {
        Some(p) => {
            let _ = writeln!(out, "policy valid: {}", p.display());
            let _ = writeln!(out, "  protected branches  {}", s.protected.join(", "));
        }
        None => {
            let _ = writeln!(out, "allowed_signers valid (no policy checked)");
        }
    }
    let _ = writeln!(
        out,
        "  allowed signers     {} ({} signer{})",
        s.allowed_signers.display(),
        s.signers,
        plural(s.signers)
    );
    if s.policy.is_some() {
        let revocation = s
            .revocation_file
            .as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string());
        let _ = writeln!(out, "  revocation file     {revocation}");
    }
    if let Some(d) = &s.digest {
        let _ = writeln!(out, "  policy digest       {d}");
    }
}
