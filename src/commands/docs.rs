//! `tally completions` and `tally man`: shell completions and manual pages, generated from the
//! same clap definitions that parse the command line, so they cannot drift from it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use clap_complete::Shell;

use crate::cli::Outcome;

/// Arguments of `tally completions`.
#[derive(Debug, Args)]
#[command(after_help = "Install, for example:\n  \
    bash: tally completions bash > /etc/bash_completion.d/tally\n  \
    zsh:  tally completions zsh > \"${fpath[1]}/_tally\"\n  \
    fish: tally completions fish > ~/.config/fish/completions/tally.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Arguments of `tally man`.
#[derive(Debug, Args)]
#[command(after_help = "Install, for example:\n  \
    tally man --out /usr/local/share/man/man1 && mandb -q\n  \
    or read it at once: tally man | man -l -")]
pub struct ManArgs {
    /// Write tally.1 and one page per subcommand (tally-log.1, tally-ledger-verify.1 ...)
    /// into this directory instead of printing tally.1 to standard output.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints the completion script for a shell.
pub fn completions(
    args: CompletionsArgs,
    mut command: clap::Command,
    out: &mut impl Write,
) -> Outcome {
    clap_complete::generate(args.shell, &mut command, "tally", out);
    Outcome::Success
}

/// Prints `tally(1)`, or writes every page into a directory.
pub fn man(args: ManArgs, command: clap::Command, out: &mut impl Write) -> Outcome {
    match args.out {
        None => match clap_mangen::Man::new(command).render(out) {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Config(format!("cannot write the manual page: {e}")),
        },
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return Outcome::Config(format!("{}: {e}", dir.display()));
            }
            match clap_mangen::generate_to(command, &dir) {
                Ok(()) => {
                    let _ = writeln!(out, "wrote the manual pages into {}", dir.display());
                    Outcome::Success
                }
                Err(e) => Outcome::Config(format!(
                    "cannot write the manual pages into {}: {e}",
                    dir.display()
                )),
            }
        }
    }
}
