//! The `tally` command: argument parsing and dispatch only; the work is in the libraries.
#![forbid(unsafe_code)]
mod cli;
mod commands;

fn main() -> std::process::ExitCode {
    cli::main()
}
