//! `tally export` and `tally export verify`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use tally_hooks::admin::find_repo;
use tally_hooks::export::{ExportOptions, export};

use crate::cli::Outcome;
use crate::commands::json;

/// Arguments of `tally export`: either write a bundle, or `verify` one.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    #[command(subcommand)]
    verify: Option<ExportCommand>,
    #[command(flatten)]
    write: WriteArgs,
}

#[derive(Debug, Args)]
struct WriteArgs {
    /// The repository (default: the one the current directory is in).
    #[arg(long, value_name = "REPO")]
    repo: Option<PathBuf>,
    /// The bundle directory to create; it must not exist or be empty.
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// Only rows of this branch (and the ledger-wide entries, such as policy changes).
    #[arg(long, value_name = "NAME")]
    branch: Option<String>,
    /// Only rows appended at or after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Only rows appended before this time (RFC 3339; exclusive).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<Timestamp>,
    /// Print a JSON object: the bundle's path and its export.json; or the error.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Check a bundle offline, against the ledger key you pinned.
    ///
    /// Checks the manifest signature against that key, every file's hash, the raw entries'
    /// chain and Merkle root against the signed checkpoint, and every row of entries.csv and
    /// entries.jsonl against the raw entries. Exit 0 if all hold, 1 naming each file and row
    /// that does not, 2 if the bundle or the key cannot be read.
    Verify {
        /// The bundle directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The ledger's public key (OpenSSH line, as `tally ledger key` prints it), obtained
        /// independently of the bundle.
        #[arg(long, value_name = "FILE")]
        ledger_key: PathBuf,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>().map_err(|e| {
        format!("not an RFC 3339 time with an offset, such as 2026-01-01T00:00:00Z ({e})")
    })
}

/// Runs `tally export ...`.
pub fn run(args: ExportArgs, out: &mut impl Write) -> Outcome {
    match args.verify {
        Some(ExportCommand::Verify {
            dir,
            ledger_key,
            json,
        }) => verify(&dir, &ledger_key, json, out),
        None => write(args.write, out),
    }
}

fn write(args: WriteArgs, out: &mut impl Write) -> Outcome {
    let json = args.json;
    let Some(dir) = args.out else {
        return json::fail(
            json,
            out,
            Outcome::Config("--out <DIR> is required".into()),
            "",
        );
    };
    let repo = match find_repo(args.repo.as_deref()) {
        Ok(repo) => repo,
        Err(e) => return json::fail(json, out, Outcome::Config(e.to_string()), ""),
    };
    let opts = ExportOptions {
        out: dir,
        branch: args.branch,
        since: args.since,
        until: args.until,
    };
    let written = if json {
        export(&repo, &opts, &mut std::io::sink())
    } else {
        export(&repo, &opts, out)
    };
    match written {
        Ok(summary) if json => json::success(
            out,
            serde_json::json!({
                "path": summary.path,
                "export": summary.description,
            }),
        ),
        Ok(_) => Outcome::Success,
        Err(e) if e.is_verification_failure() => {
            eprintln!("tally: export: {e}");
            json::fail(json, out, Outcome::Refused, &e.to_string())
        }
        Err(e) => json::fail(json, out, Outcome::Config(e.to_string()), ""),
    }
}

fn verify(
    dir: &std::path::Path,
    key: &std::path::Path,
    json: bool,
    out: &mut impl Write,
) -> Outcome {
    let pinned = match tally_ledger::key::load_public(key) {
        Ok(key) => key,
        Err(e) => return Outcome::Config(format!("--ledger-key: {e}")),
    };
    let report = match tally_ledger::export::verify_bundle(dir, &pinned) {
        Ok(report) => report,
        Err(e) => return Outcome::Config(e.to_string()),
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) => return Outcome::Config(e.to_string()),
        }
    } else if report.ok {
        let range = match (&report.branch, &report.since, &report.until) {
            (None, None, None) => "every entry".to_owned(),
            (branch, since, until) => {
                let mut parts = Vec::new();
                if let Some(b) = branch {
                    parts.push(format!("{b} and ledger-wide entries"));
                }
                if let Some(s) = since {
                    parts.push(format!("from {s}"));
                }
                if let Some(u) = until {
                    parts.push(format!("before {u}"));
                }
                parts.join(", ")
            }
        };
        let _ = writeln!(
            out,
            "bundle intact: {} rows ({range}) of {} entries\n  root {}\n  checkpoint signed {}",
            report.rows,
            report.size.unwrap_or(0),
            report.root.as_deref().unwrap_or(""),
            report.checkpoint_time.as_deref().unwrap_or("?"),
        );
    }
    if !json {
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        for p in &report.problems {
            crate::cli::say(&mut err, "export verify", &p.to_string());
        }
    }
    if report.ok {
        Outcome::Success
    } else {
        Outcome::Refused
    }
}
