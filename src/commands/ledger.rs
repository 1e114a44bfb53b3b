//! `tally ledger verify | key | adopt | checkpoint`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tally_hooks::admin;

use crate::cli::Outcome;
use crate::commands::json;

/// Arguments of `tally ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Check every entry, the chain, the Merkle root, every checkpoint signature, the
    /// protected branches and the published ref.
    Verify {
        /// The repository (default: the one the current directory is in).
        #[arg(long, value_name = "REPO")]
        repo: Option<PathBuf>,
        /// Verify against this public key instead of the repository's own ledger_key.pub.
        #[arg(long, value_name = "FILE")]
        ledger_key: Option<PathBuf>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the ledger's public key as one OpenSSH line (pin it on agents).
    Key {
        /// The repository (default: the one the current directory is in).
        #[arg(long, value_name = "REPO")]
        repo: Option<PathBuf>,
        /// Print a JSON object: the OpenSSH line, the origin and the C2SP note verifier key.
        #[arg(long)]
        json: bool,
    },
    /// Re-baseline a protected branch that moved outside tally: check its history like a
    /// push, then record an `adopted` entry (and move the branch to --commit if given).
    Adopt {
        /// The repository (default: the one the current directory is in).
        #[arg(long, value_name = "REPO")]
        repo: Option<PathBuf>,
        /// The protected branch.
        #[arg(long, value_name = "NAME")]
        branch: String,
        /// The commit to adopt (full id); default: where the branch is now. If the branch is
        /// elsewhere, it is moved there.
        #[arg(long, value_name = "COMMIT")]
        commit: Option<String>,
        /// Why: recorded in the entry.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Record the adoption without checking the history (history that predates the
        /// policy); the entry says so.
        #[arg(long)]
        unchecked: bool,
    },
    /// Sign a fresh checkpoint of the current head and publish it (the freshness heartbeat).
    /// Records a policy changed by hand since the last entry first. Prints nothing on
    /// success, so that cron mails nothing.
    Checkpoint {
        /// The repository (default: the one the current directory is in).
        #[arg(long, value_name = "REPO")]
        repo: Option<PathBuf>,
        /// Print the signed checkpoint note.
        #[arg(long, conflicts_with = "json")]
        print: bool,
        /// Print a JSON object: origin, size, root, time and the note; or the error.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `tally ledger ...`.
pub fn run(args: LedgerArgs, out: &mut impl Write) -> Outcome {
    let result = match args.command {
        LedgerCommand::Verify {
            repo,
            ledger_key,
            json,
        } => admin::find_repo(repo.as_deref()).and_then(|repo| {
            let stderr = std::io::stderr();
            let outcome = admin::verify(&repo, ledger_key.as_deref(), &mut stderr.lock())?;
            if json {
                let text = serde_json::to_string_pretty(&outcome)?;
                let _ = writeln!(out, "{text}");
            } else if outcome.ok {
                let _ = writeln!(
                    out,
                    "ledger intact: {} entries, {} checkpoints, root {}",
                    outcome.size, outcome.checkpoints, outcome.root
                );
            }
            if !json {
                for p in &outcome.problems {
                    eprintln!("tally: ledger verify: {p}");
                }
                for n in &outcome.notes {
                    let _ = writeln!(out, "note: {n}");
                }
            }
            Ok(outcome.ok)
        }),
        LedgerCommand::Key { repo, json } => admin::find_repo(repo.as_deref())
            .and_then(|repo| admin::key(&repo, json, out))
            .map(|()| true),
        LedgerCommand::Adopt {
            repo,
            branch,
            commit,
            reason,
            unchecked,
        } => admin::find_repo(repo.as_deref()).and_then(|repo| {
            let opts = tally_hooks::adopt::AdoptOptions {
                branch,
                commit,
                unchecked,
                reason,
            };
            tally_hooks::adopt::adopt(&repo, &opts, out, jiff::Timestamp::now())
        }),
        LedgerCommand::Checkpoint { repo, print, json } => {
            return checkpoint(repo, print, json, out);
        }
    };
    match result {
        Ok(true) => Outcome::Success,
        Ok(false) => Outcome::Refused,
        Err(e) => Outcome::Config(e.to_string()),
    }
}

/// `tally ledger checkpoint`: silent on success unless `--print` (the note) or `--json`.
fn checkpoint(repo: Option<PathBuf>, print: bool, json: bool, out: &mut impl Write) -> Outcome {
    let note = match admin::find_repo(repo.as_deref()).and_then(|repo| admin::checkpoint(&repo)) {
        Ok(note) => note,
        Err(e) => return json::fail(json, out, Outcome::Config(e.to_string()), ""),
    };
    if json {
        let c = note.unverified();
        return json::success(
            out,
            serde_json::json!({
                "origin": c.origin,
                "size": c.size,
                "root": tally_ledger::hex::encode(&c.root),
                "note": note.text(),
            }),
        );
    }
    if print {
        let _ = write!(out, "{}", note.text());
    }
    Outcome::Success
}
