//! `tally uninstall`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use tally_hooks::uninstall::{report, uninstall};

use crate::cli::Outcome;
use crate::commands::json;

/// Arguments of `tally uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The bare repository tally guards.
    repo: PathBuf,
    /// Print a JSON object: what was removed, recorded and kept; or the error.
    #[arg(long)]
    json: bool,
}

/// Runs `tally uninstall`.
pub fn run(args: UninstallArgs, out: &mut impl Write) -> Outcome {
    remove(&args.repo, args.json, out)
}

/// `tally uninstall <repo>`, also run by `tally init --remove`.
pub fn remove(repo: &Path, json: bool, out: &mut impl Write) -> Outcome {
    let result = tally_hooks::owner::act_as_owner(repo)
        .map_err(|e| e.to_string())
        .and_then(|line| {
            if let Some(line) = line {
                eprintln!("tally: {line}");
            }
            uninstall(repo).map_err(|e| e.to_string())
        });
    match result {
        Ok(done) if json => json::success(out, serde_json::to_value(&done).unwrap_or_default()),
        Ok(done) => {
            report(&done, out);
            Outcome::Success
        }
        Err(e) => json::fail(json, out, Outcome::Config(e), ""),
    }
}
