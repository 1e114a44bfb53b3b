//! `tally hook <name>`: the entry points git runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

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
    /// git's update hook: refuse, where the pusher sees it, a protected ref update that the
    /// ref transaction would refuse (no verdict of this push, an unwritable ledger).
    Update {
        /// The ref, as the client named it.
        refname: String,
        /// Its old value (zeros: the ref is created).
        old: String,
        /// Its new value (zeros: the ref is deleted).
        new: String,
    },
    /// git's reference-transaction hook: record accepted moves, refuse all others.
    ReferenceTransaction {
        /// The transaction state git passes.
        #[arg(value_parser = state_parser())]
        state: String,
    },
}

/// The reference-transaction states, each with what tally does in it, for `--help`.
fn state_parser() -> clap::builder::PossibleValuesParser {
    use tally_hooks::transaction::State;
    State::ALL
        .map(|s| clap::builder::PossibleValue::new(s.name()).help(s.what_tally_does()))
        .into()
}

/// The hooks `tally hook` runs, by the name git gives their files.
const HOOK_NAMES: [&str; 4] = [
    "pre-receive",
    "update",
    "reference-transaction",
    "post-receive",
];

/// Runs a hook straight from the arguments git and the kernel pass, without the command-line
/// parser; `None` for anything else (help, typos), which the parser then explains.
///
/// Two forms: `tally hook <name> [state]` (the shell form of the installed hooks, and
/// Gitea's and GitLab's scripts), and `tally hook <hook file> [state]`, which the kernel
/// passes when a hook file's `#!` line names tally (see `tally_hooks::init::hook_script`):
/// the hook is the file's name, or its directory's for the `pre-receive.d/<anything>` layout
/// of Gitea and GitLab. The `reference-transaction` states with no work (`committed`; git
/// 2.54's `preparing`) end here at once.
pub fn direct(args: &[OsString]) -> Option<Outcome> {
    if args.get(1).is_none_or(|a| a != "hook") || !(3..=6).contains(&args.len()) {
        return None;
    }
    // Help and version are for people: git never passes these (its ref names are full
    // `refs/...` names, its values hex, its states plain words).
    if args[2..].iter().any(|a| {
        matches!(
            a.to_str(),
            Some("-h" | "--help" | "-V" | "--version" | "help")
        )
    }) {
        return None;
    }
    let given = &args[2];
    let name = if given.as_encoded_bytes().contains(&b'/') {
        let path = Path::new(given);
        let known = |n: Option<&str>| n.and_then(|n| HOOK_NAMES.iter().find(|h| **h == n));
        let from_dir = path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .and_then(|d| d.strip_suffix(".d"));
        let Some(name) =
            known(path.file_name().and_then(|n| n.to_str())).or_else(|| known(from_dir))
        else {
            return Some(Outcome::Config(format!(
                "cannot tell which hook {} is from its name; name the file {} (or put it in a directory named after the hook plus .d), or have it run `tally hook <name>`",
                path.display(),
                HOOK_NAMES.join(", ")
            )));
        };
        *name
    } else {
        HOOK_NAMES.iter().find(|h| *given == **h)?
    };
    let state = args.get(3).map(|s| s.to_str());
    if name == "update" {
        let [refname, old, new] = [3, 4, 5].map(|i| args.get(i).and_then(|a| a.to_str()));
        return match (refname, old, new) {
            // Only branches need a verdict, inside a namespace too; git names the ref as
            // the client sent it (no GIT_NAMESPACE prefix). The ref-name rules that apply to other refs (tags that
            // shadow a branch, refs/tally/*, replace refs) were applied by pre-receive,
            // whose refusals the pusher sees, and `prepared` applies them again; this spares
            // a push of many tags a tally start per tag.
            (Some(refname), Some(_), Some(_))
                if !tally_hooks::refs::without_namespaces(refname).starts_with("refs/heads/") =>
            {
                Some(Outcome::Success)
            }
            (Some(refname), Some(old), Some(new)) => Some(run(HookArgs {
                hook: Hook::Update {
                    refname: refname.to_owned(),
                    old: old.to_owned(),
                    new: new.to_owned(),
                },
            })),
            _ => Some(Outcome::Config(
                "the update hook takes three arguments, the ref name, its old value and its new value, as git passes them (ref names must be UTF-8)".to_owned(),
            )),
        };
    }
    if args.len() > 4 {
        return None;
    }
    let hook = match (name, state) {
        ("pre-receive", None) => Hook::PreReceive,
        ("post-receive", None) => Hook::PostReceive,
        ("reference-transaction", Some(Some(state))) => {
            use tally_hooks::transaction::State;
            if State::parse(state).is_some_and(State::is_idle) {
                // Read to the end, so that git never writes into a closed pipe.
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                return Some(Outcome::Success);
            }
            Hook::ReferenceTransaction {
                state: state.to_owned(),
            }
        }
        _ => return None,
    };
    Some(run(HookArgs { hook }))
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
    // In a repository several unix accounts push to, every file a hook writes must stay
    // writable by the others (one `stat`; see tally_hooks::shared).
    let git_dir = git_dir();
    tally_hooks::shared::adopt_umask(&git_dir);
    match args.hook {
        Hook::PreReceive => {
            let stdin = std::io::stdin();
            let stderr = std::io::stderr();
            let accepted = tally_hooks::pre_receive::run(
                &git_dir,
                &mut stdin.lock(),
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            Outcome::accepted(accepted)
        }
        Hook::PostReceive => {
            let stdin = std::io::stdin();
            let stderr = std::io::stderr();
            tally_hooks::transaction::post_receive(
                &git_dir,
                &mut stdin.lock(),
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            Outcome::Success
        }
        Hook::Update { refname, old, new } => {
            let stderr = std::io::stderr();
            let ok = tally_hooks::transaction::update(
                &git_dir,
                &refname,
                &old,
                &new,
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            Outcome::accepted(ok)
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
                &git_dir,
                state,
                &mut stdin.lock(),
                &mut stderr.lock(),
                jiff::Timestamp::now(),
            );
            Outcome::accepted(ok)
        }
    }
}
