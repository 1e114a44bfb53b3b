//! `tally log`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use tally_hooks::admin::{LogOptions, find_repo, log};
use tally_ledger::Kind;

use crate::cli::Outcome;

/// Arguments of `tally log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The repository (default: the one the current directory is in).
    #[arg(long, value_name = "REPO")]
    repo: Option<PathBuf>,
    /// Only entries of this branch.
    #[arg(long, value_name = "NAME")]
    branch: Option<String>,
    /// Only entries of this kind: accepted, rejected, aborted, policy-change.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<Kind>,
    /// At most this many entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print a JSON array instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("expected one of {}", names.join(", "))
        })
}

/// Runs `tally log`: ledger entries, newest first.
pub fn run(args: LogArgs, out: &mut impl Write) -> Outcome {
    let result = find_repo(args.repo.as_deref()).and_then(|repo| {
        let opts = LogOptions {
            branch: args.branch,
            kind: args.kind,
            limit: args.limit,
            json: args.json,
        };
        log(&repo, &opts, out)
    });
    match result {
        Ok(()) => Outcome::Success,
        Err(e) => Outcome::Config(e.to_string()),
    }
}
