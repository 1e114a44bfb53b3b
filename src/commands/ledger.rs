//! `tally ledger verify | key | adopt | checkpoint`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tally_agent::published;
use tally_hooks::admin;
use tally_ledger::log::count;

use crate::cli::Outcome;
use crate::commands::json;
use crate::commands::source::{self, Source};

/// Arguments of `tally ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Check every entry, the chain, the Merkle root, every checkpoint signature, the
    /// protected branches and the published ref; in a clone, the ledger published at
    /// refs/tally/ledger (read-only).
    Verify {
        /// The repository: the server's, or a clone that fetched refs/tally/ledger (default:
        /// the one the current directory is in).
        #[arg(long, value_name = "REPO")]
        repo: Option<PathBuf>,
        /// Verify against this public key (the line `tally ledger key` prints) instead of the
        /// repository's own ledger_key.pub; in a clone, instead of the key its agent state pins.
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
        /// Print `{"ok": true, "report": [lines]}`, or the failure object, instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move the ledger to a shared PostgreSQL database, or back to SQLite in the repository,
    /// without changing a byte of any entry or checkpoint; policy.toml is pointed at the copy.
    Migrate {
        /// The repository (default: the one the current directory is in).
        #[arg(long, value_name = "REPO")]
        repo: Option<PathBuf>,
        /// Where to: a PostgreSQL URL (postgres://user@host:port/db?sslmode=verify-full), or
        /// `sqlite` for the repository's tally/ledger.sqlite.
        #[arg(long, value_name = "URL|sqlite")]
        to: String,
        /// A file holding the database's password (mode 0600); otherwise PGPASSWORD,
        /// ~/.pgpass or PGSERVICE.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
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

/// Runs `tally ledger verify`: on the store, or on the published ledger in a clone; prints
/// the outcome (text or JSON) and exits 0 if intact, 1 with every problem otherwise.
fn verify(
    repo: Option<PathBuf>,
    ledger_key: Option<PathBuf>,
    json: bool,
    out: &mut impl Write,
) -> Outcome {
    // A setup error is reported in the same JSON shape as every other failure.
    let setup = |out: &mut _, message: String| json::fail(json, out, Outcome::Config(message), "");
    let repo = match admin::find_repo(repo.as_deref()) {
        Ok(repo) => repo,
        Err(e) => return setup(out, e.to_string()),
    };
    let outcome = match source::find(&repo) {
        Err(message) => return setup(out, message),
        Ok(Source::Store) => {
            let stderr = std::io::stderr();
            admin::verify(&repo, ledger_key.as_deref(), &mut stderr.lock())
                .map_err(|e| e.to_string())
        }
        Ok(Source::Published) => published::ledger_key(&repo, ledger_key.as_deref())
            .and_then(|key| published::verify(&repo, &key))
            .map_err(|e| e.to_string()),
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(message) => return setup(out, message),
    };
    if json {
        match serde_json::to_string_pretty(&outcome) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) => return Outcome::Config(format!("cannot encode JSON: {e}")),
        }
    } else {
        if outcome.ok {
            let published = if outcome.source == tally_ledger::publication::LEDGER_REF {
                format!(" (as published at {})", outcome.source)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "ledger intact: {}, {}{published}\n  root {}\n  key  {}",
                count(outcome.size, "entry", "entries"),
                count(outcome.checkpoints, "checkpoint", "checkpoints"),
                outcome.root,
                outcome.key
            );
        }
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        for p in &outcome.problems {
            crate::cli::say(&mut err, "ledger verify", &p.to_string());
        }
        for n in &outcome.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
    Outcome::accepted(outcome.ok)
}

/// Runs `tally ledger ...`.
pub fn run(args: LedgerArgs, out: &mut impl Write) -> Outcome {
    let result = match args.command {
        LedgerCommand::Verify {
            repo,
            ledger_key,
            json,
        } => return verify(repo, ledger_key, json, out),
        LedgerCommand::Key { repo, json } => admin::find_repo(repo.as_deref())
            .and_then(|repo| admin::key(&repo, json, out))
            .map(|()| true),
        LedgerCommand::Adopt {
            repo,
            branch,
            commit,
            reason,
            unchecked,
            json,
        } => {
            let opts = tally_hooks::adopt::AdoptOptions {
                branch,
                commit,
                unchecked,
                reason,
            };
            return adopt(repo, &opts, json, out);
        }
        LedgerCommand::Checkpoint { repo, print, json } => {
            return checkpoint(repo, print, json, out);
        }
        LedgerCommand::Migrate {
            repo,
            to,
            password_file,
        } => return migrate(repo, &to, password_file, out),
    };
    match result {
        Ok(true) => Outcome::Success,
        Ok(false) => Outcome::Refused,
        Err(e) => Outcome::Config(e.to_string()),
    }
}

/// `tally ledger adopt`: its report as text, or with `json` as the lines of that report in
/// the one JSON shape (`report` on success; on a refusal, the report is the error message).
fn adopt(
    repo: Option<PathBuf>,
    opts: &tally_hooks::adopt::AdoptOptions,
    json: bool,
    out: &mut impl Write,
) -> Outcome {
    let mut report = Vec::new();
    let mut sink: &mut dyn Write = if json { &mut report } else { &mut *out };
    let result = admin::find_repo(repo.as_deref())
        .and_then(|repo| tally_hooks::adopt::adopt(&repo, opts, &mut sink, jiff::Timestamp::now()));
    let text = String::from_utf8_lossy(&report).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    match result {
        Ok(true) if json => json::success(out, serde_json::json!({ "report": lines })),
        Ok(true) => Outcome::Success,
        Ok(false) => json::fail(json, out, Outcome::Refused, &lines.join("\n")),
        Err(e) => json::fail(json, out, Outcome::Config(e.to_string()), ""),
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

/// `tally ledger migrate`: moves the ledger and prints what it did.
fn migrate(
    repo: Option<PathBuf>,
    to: &str,
    password_file: Option<PathBuf>,
    out: &mut impl Write,
) -> Outcome {
    let to = if to == "sqlite" {
        if password_file.is_some() {
            return Outcome::Config("--password-file is for a PostgreSQL --to".into());
        }
        admin::MigrateTo::Sqlite
    } else {
        let password_file = match password_file.map(|f| {
            f.canonicalize()
                .map_err(|e| format!("--password-file {}: {e}", f.display()))
        }) {
            Some(Err(e)) => return Outcome::Config(e),
            Some(Ok(f)) => Some(f),
            None => None,
        };
        admin::MigrateTo::Postgres(tally_hooks::config::LedgerSection {
            url: to.to_owned(),
            password_file,
        })
    };
    match admin::find_repo(repo.as_deref()).and_then(|repo| admin::migrate(&repo, &to)) {
        Ok(lines) => {
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            Outcome::Success
        }
        Err(e) => Outcome::Config(e.to_string()),
    }
}
