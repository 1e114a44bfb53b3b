//! Argument parsing, dispatch, and the one place where outcomes become exit codes.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;

/// What every exit status means, for every command: shown by `--help` and in the README.
pub const EXIT_STATUSES: &str = "\
Exit status:
  0  success: accepted, verified, done
  1  refused: a push, a revision or a ledger failed a check; the reasons are printed
  2  usage, configuration or setup problem: fix the command, a file or the setup
  3  fetch failed (agent): nothing was judged; try again later
  4  local problem: the agent's work tree or files in the way, or output that cannot be written";

/// Keeps a GitOps deployment branch signed, linear and declarative.
#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version = env!("TALLY_VERSION"),
    about,
    propagate_version = true,
    after_help = EXIT_STATUSES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up a bare repository: policy, allowed signers and hooks.
    #[command(after_help = EXIT_STATUSES)]
    Init(commands::init::InitArgs),
    /// Remove the hooks tally installed; keep the ledger, key and policy as evidence.
    #[command(after_help = EXIT_STATUSES)]
    Uninstall(commands::uninstall::UninstallArgs),
    /// Run by git: a server-side hook.
    Hook(commands::hook::HookArgs),
    /// Ledger entries, newest first.
    #[command(after_help = EXIT_STATUSES)]
    Log(commands::log::LogArgs),
    /// Inspect and maintain the ledger.
    #[command(after_help = EXIT_STATUSES)]
    Ledger(commands::ledger::LedgerArgs),
    /// Check the policy and the files it names, as the hooks load them.
    #[command(after_help = EXIT_STATUSES)]
    Policy(commands::policy::PolicyArgs),
    /// Audit bundle of the ledger for offline verification; `export verify` checks one.
    #[command(after_help = EXIT_STATUSES)]
    Export(commands::export::ExportArgs),
    /// Deployment agent: verify the ledger and the branch in a clone; print the approved commit.
    #[command(after_help = EXIT_STATUSES)]
    Verify(commands::verify::VerifyArgs),
    /// Deployment agent: fetch, verify, then fast-forward the work tree to the approved commit.
    #[command(after_help = EXIT_STATUSES)]
    Pull(commands::pull::PullArgs),
    /// Verified mirror: serve Flux, Argo CD and any git client only verified commits, over HTTP.
    #[command(after_help = EXIT_STATUSES)]
    Mirror(commands::mirror::MirrorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::docs::CompletionsArgs),
    /// Print the manual page, or write one page per command into a directory.
    Man(commands::docs::ManArgs),
}

/// Standard output as every command writes it: the first write error is kept (later writes
/// are dropped), and [`Output::finish`] turns it into the exit status. So a command's report
/// is written with `let _ = writeln!(out, ...)` and still never "succeeds" into a full disk
/// (`tally ledger key > ledger.pub`). A closed pipe (`tally log | head`) is not an error, as in
/// ripgrep: whoever closed it has read what they wanted.
pub struct Output<W: Write> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Output<W> {
    /// Wraps standard output (or, in tests, any writer).
    pub fn new(inner: W) -> Output<W> {
        Output { inner, error: None }
    }

    /// Flushes, then the outcome a failed write changes: a command that succeeded exits 4
    /// (a local problem) with the reason; a failure keeps its own status, with the reason added.
    pub fn finish(mut self, outcome: Outcome) -> Outcome {
        if self.error.is_none()
            && let Err(e) = self.inner.flush()
        {
            self.error = Some(e);
        }
        match self.error {
            None => outcome,
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => outcome,
            Some(e) => {
                eprintln!("tally: error: cannot write to standard output: {e}");
                match outcome {
                    Outcome::Success => Outcome::Local,
                    other => other,
                }
            }
        }
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_some() {
            return Ok(buf.len());
        }
        self.inner.write(buf).inspect_err(|e| {
            self.error = Some(std::io::Error::new(e.kind(), e.to_string()));
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.error.is_some() {
            return Ok(());
        }
        self.inner.flush().inspect_err(|e| {
            self.error = Some(std::io::Error::new(e.kind(), e.to_string()));
        })
    }
}

/// Writes one line for people on stderr, `tally: <command>: ...`, wrapped as the hooks wrap
/// theirs, so that it fits a terminal of [`tally_hooks::output::WIDTH`] columns; continuation
/// lines keep the prefix, so `grep 'tally: pull:'` still finds all of it in a log.
pub fn say(err: &mut impl Write, command: &str, line: &str) {
    let prefix = format!("tally: {command}: ");
    let width = tally_hooks::output::WIDTH.saturating_sub(prefix.len());
    for part in tally_hooks::output::wrap(line, width, "") {
        let _ = writeln!(err, "{prefix}{part}");
    }
}

/// How a command ended; mapped to the exit status in [`main`].
#[derive(Debug)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a push or check was refused; the reasons were already printed.
    Refused,
    /// Exit 2: bad usage or configuration.
    Config(String),
    /// Exit 3: the agent could not fetch (server unreachable, fetch failed or timed out):
    /// nothing was judged; try again later.
    Retry(String),
    /// Exit 4: something on this machine prevents it: on an agent's, local changes, files in
    /// the way, a checkout that is not the signed bytes; anywhere, output that cannot be
    /// written. The reasons were already printed.
    Local,
}

impl Outcome {
    /// Success if a hook or check accepted, else refused (its reasons already printed).
    pub fn accepted(accepted: bool) -> Outcome {
        if accepted {
            Outcome::Success
        } else {
            Outcome::Refused
        }
    }
}

/// Parses arguments, runs the command, maps the outcome to an exit status: 0 success,
/// 1 refused, 2 usage or configuration error, 3 fetch failed (retry), 4 local problem (the
/// agent's work tree, or output that cannot be written).
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // git starts a hook process for every push and every state of every ref transaction:
    // the hook invocations git and the kernel make skip building the whole parser.
    let outcome = match commands::hook::direct(&args) {
        Some(outcome) => outcome,
        None => {
            let cli = match Cli::try_parse_from(args) {
                Ok(cli) => cli,
                Err(e) => {
                    let code = if e.use_stderr() { 2 } else { 0 };
                    let _ = e.print();
                    return ExitCode::from(code);
                }
            };
            let stdout = std::io::stdout();
            let mut out = Output::new(stdout.lock());
            let outcome = match cli.command {
                Command::Init(args) => commands::init::run(args, &mut out),
                Command::Uninstall(args) => commands::uninstall::run(args, &mut out),
                Command::Hook(args) => commands::hook::run(args),
                Command::Log(args) => commands::log::run(args, &mut out),
                Command::Ledger(args) => commands::ledger::run(args, &mut out),
                Command::Policy(args) => commands::policy::run(args, &mut out),
                Command::Export(args) => commands::export::run(args, &mut out),
                Command::Verify(args) => commands::verify::run(args, &mut out),
                Command::Pull(args) => commands::pull::run(args, &mut out),
                Command::Mirror(args) => commands::mirror::run(args, &mut out),
                Command::Completions(args) => {
                    commands::docs::completions(args, Cli::command(), &mut out)
                }
                Command::Man(args) => commands::docs::man(args, Cli::command(), &mut out),
            };
            out.finish(outcome)
        }
    };
    match outcome {
        Outcome::Success => ExitCode::SUCCESS,
        Outcome::Refused => ExitCode::from(1),
        Outcome::Config(message) => {
            eprintln!("tally: error: {message}");
            ExitCode::from(2)
        }
        Outcome::Retry(message) => {
            eprintln!("tally: error: {message}");
            ExitCode::from(3)
        }
        Outcome::Local => ExitCode::from(4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_that_cannot_be_written_fails_the_command() {
        let mut out = Output::new(Full);
        let _ = writeln!(out, "ssh-ed25519 AAAA...");
        let _ = writeln!(out, "more");
        assert!(matches!(out.finish(Outcome::Success), Outcome::Local));
        let mut out = Output::new(Full);
        let _ = writeln!(out, "x");
        assert!(matches!(out.finish(Outcome::Refused), Outcome::Refused));
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let mut out = Output::new(Closed);
        let _ = writeln!(out, "line");
        assert!(matches!(out.finish(Outcome::Success), Outcome::Success));
        let mut out = Output::new(Vec::new());
        let _ = writeln!(out, "line");
        assert!(matches!(out.finish(Outcome::Success), Outcome::Success));
    }
}
