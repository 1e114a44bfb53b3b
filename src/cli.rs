//! Argument parsing, dispatch, and the one place where outcomes become exit codes.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// Keeps a GitOps deployment branch signed, linear and declarative.
#[derive(Debug, Parser)]
#[command(name = "tally", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up a bare repository: policy, allowed signers and hooks.
    Init(commands::init::InitArgs),
    /// Run by git: a server-side hook.
    Hook(commands::hook::HookArgs),
    /// Ledger entries, newest first.
    Log(commands::log::LogArgs),
    /// Inspect and maintain the ledger.
    Ledger(commands::ledger::LedgerArgs),
    /// Audit bundle of the ledger for offline verification; `export verify` checks one.
    Export(commands::export::ExportArgs),
    /// Deployment agent: verify the ledger and the branch in a clone; print the approved commit.
    Verify(commands::verify::VerifyArgs),
    /// Deployment agent: fetch, verify, then fast-forward the work tree to the approved commit.
    Pull(commands::pull::PullArgs),
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
    /// Exit 4: something on the agent's machine prevents deploying (local changes, files in
    /// the way, a checkout that is not the signed bytes); the reasons were already printed.
    Local,
}

/// Parses arguments, runs the command, maps the outcome to an exit status: 0 success,
/// 1 refused, 2 usage or configuration error, 3 fetch failed (retry), 4 local problem on the
/// agent's machine.
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
            let mut out = stdout.lock();
            match cli.command {
                Command::Init(args) => commands::init::run(args, &mut out),
                Command::Hook(args) => commands::hook::run(args),
                Command::Log(args) => commands::log::run(args, &mut out),
                Command::Ledger(args) => commands::ledger::run(args, &mut out),
                Command::Export(args) => commands::export::run(args, &mut out),
                Command::Verify(args) => commands::verify::run(args, &mut out),
                Command::Pull(args) => commands::pull::run(args, &mut out),
            }
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
