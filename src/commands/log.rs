//! `tally log`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use tally_agent::published;
use tally_hooks::admin::{self, find_repo};
use tally_ledger::Kind;
use tally_ledger::log::{LogWriter, Selection, Style};

use crate::cli::Outcome;
use crate::commands::source::{self, Source};

/// Arguments of `tally log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The repository: the server's, or a clone that fetched refs/tally/ledger (default: the
    /// one the current directory is in).
    #[arg(long, value_name = "REPO")]
    repo: Option<PathBuf>,
    /// Only entries of this branch.
    #[arg(long, value_name = "NAME")]
    branch: Option<String>,
    /// Only entries of this kind: accepted, rejected, aborted, policy-change, adopted.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<Kind>,
    /// At most this many entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// List every commit (with its signer) and every reason under its entry.
    #[arg(short = 'v', long = "commits")]
    commits: bool,
    /// Print a JSON array instead of text.
    #[arg(long)]
    json: bool,
    /// Never shorten a line. Without it, on a terminal (or with COLUMNS set) each entry's line
    /// is cut to the width with "…"; -v and --json print everything.
    #[arg(long)]
    full: bool,
}

/// The width entry lines are cut to: `COLUMNS` if set, else the terminal's when standard
/// output is one; `None` (never cut) for a pipe or a file, so scripts get whole lines.
fn width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(columns);
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// Writes through to `inner`, cutting each line longer than `width` characters to
/// `width - 1` characters and "…", as `systemctl` does on a terminal.
struct Cut<W: Write> {
    inner: W,
    width: usize,
    line: Vec<u8>,
}

impl<W: Write> Cut<W> {
    fn emit(&mut self) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(&self.line);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        if body.chars().count() > self.width {
            let kept: String = body.chars().take(self.width.saturating_sub(1)).collect();
            writeln!(self.inner, "{kept}…")?;
        } else {
            self.inner.write_all(&self.line)?;
        }
        self.line.clear();
        Ok(())
    }
}

impl<W: Write> Write for Cut<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.emit()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        self.inner.flush()
    }
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

/// Runs `tally log`: ledger entries, newest first, from the store or, in a clone, from
/// `refs/tally/ledger`.
pub fn run(args: LogArgs, out: &mut impl Write) -> Outcome {
    match width().filter(|_| !(args.json || args.commits || args.full)) {
        Some(width) => {
            let mut cut = Cut {
                inner: &mut *out,
                width,
                line: Vec::new(),
            };
            let outcome = list(args, &mut cut);
            // A write error is kept by `Output`, which fails the command.
            let _ = cut.flush();
            outcome
        }
        None => list(args, out),
    }
}

fn list(args: LogArgs, out: &mut impl Write) -> Outcome {
    let repo = match find_repo(args.repo.as_deref()) {
        Ok(repo) => repo,
        Err(e) => return Outcome::Config(e.to_string()),
    };
    let source = match source::find(&repo) {
        Ok(source) => source,
        Err(message) => return Outcome::Config(message),
    };
    let selection = Selection::new(args.branch.as_deref(), args.kind, args.limit);
    let style = Style {
        json: args.json,
        commits: args.commits,
    };
    let mut writer = LogWriter::new(&mut *out, style);
    let outcome = match source {
        Source::Store => match admin::log(&repo, &selection, &mut writer) {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Config(e.to_string()),
        },
        // A write error stops the listing; `Output` keeps it and fails the command.
        Source::Published => {
            match published::log_each(&repo, &selection, |e, leaf| writer.entry(e, leaf).is_ok()) {
                Ok(()) => {
                    // Listing reads; it does not verify. Say so where the reader looks.
                    eprintln!(
                        "tally: log: as published at refs/tally/ledger, not verified: tally ledger verify checks it"
                    );
                    Outcome::Success
                }
                Err(e) if e.is_setup() => Outcome::Config(e.to_string()),
                // The published ledger is damaged: said like a refusal, exit 1.
                Err(e) => {
                    eprintln!("tally: log: {e}");
                    Outcome::Refused
                }
            }
        }
    };
    if matches!(outcome, Outcome::Success) {
        // A write error is kept by `Output`, which fails the command.
        let _ = writer.finish(&selection.describe());
    }
    outcome
}
