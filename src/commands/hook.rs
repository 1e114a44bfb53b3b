//! `tally hook <name>`: the entry points git runs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::Outcome;

/// Arguments of `tally hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    #[command(subcommand)]
    hook: Hook,
}

#[derive(Debug, Subcommand)]
enum Hook {
    /// git's pre-receive hook: judge every protected ref update of a push.
    PreReceive,
    /// git's post-receive hook, for platforms that run no reference-transaction hook:
    /// record the protected moves that landed.
    PostReceive,
    /// git's reference-transaction hook: record accepted moves, refuse all others.
    ReferenceTransaction {
        /// The transaction state git passes: preparing, prepared, committed or aborted.
        state: String,
    },
}

/// The repository a hook runs in: git sets `GIT_DIR` (or runs hooks inside the git
/// directory of a bare repository).
fn git_dir() -> PathBuf {
    let dir = std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    // Absolute, so that messages name the repository rather than "./tally/policy.toml".
    dir.canonicalize().unwrap_or(dir)
}

/// Runs a hook. Its messages go to stderr, which git relays to the pusher.
pub fn run(args: HookArgs) -> Outcome {
    match args.hook {
        Hook::PreReceive => {
            let stdin = std::io::stdin();
            let stderr = std::io::stderr();
            let accepted = tally_hooks::pre_receive::run(
                &git_dir(),
                &mut stdin.lock(),
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            if accepted {
                Outcome::Success
            } else {
                Outcome::Refused
            }
        }
        Hook::PostReceive => {
            let stdin = std::io::stdin();
            let stderr = std::io::stderr();
            tally_hooks::transaction::post_receive(
                &git_dir(),
                &mut stdin.lock(),
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            Outcome::Success
        }
        Hook::ReferenceTransaction { state } => {
            let Some(state) = tally_hooks::transaction::State::parse(&state) else {
                return Outcome::Config(format!(
                    "unknown reference-transaction state {state:?}; expected preparing, prepared, committed or aborted"
                ));
            };
            let stdin = std::io::stdin();
            let stderr = std::io::stderr();
            let ok = tally_hooks::transaction::run(
                &git_dir(),
                state,
                &mut stdin.lock(),
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            if ok {
                Outcome::Success
            } else {
                Outcome::Refused
            }
        }
    }
}
