//! `tally verify`: the deployment agent's check of what the clone holds.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use tally_agent::{self as agent, AgentError, Approval};

use crate::cli::{Outcome, say};

/// The options `tally verify` and `tally pull` share.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The clone (default: the one the current directory is in).
    #[arg(long, value_name = "CLONE")]
    pub repo: Option<PathBuf>,
    /// The ledger's public key, pinned: a file with the line `tally ledger key` prints.
    #[arg(long, value_name = "FILE")]
    pub ledger_key: PathBuf,
    /// This agent's own allowed_signers file: every new commit must be signed by one of them.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: PathBuf,
    /// The branch to deploy.
    #[arg(long, value_name = "NAME", default_value = "main")]
    pub branch: String,
    /// The state file (default: `<git dir>/tally/agent/<branch>.json`).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Refuse a checkpoint signed longer ago than this (e.g. 10m, 2h, 1d).
    #[arg(long, value_name = "DURATION", value_parser = agent::parse_duration)]
    pub max_age: Option<Duration>,
    /// First run only: trust the history up to this commit (full id) instead of checking it
    /// down to the root.
    #[arg(long, value_name = "COMMIT")]
    pub trust_from: Option<String>,
    /// A policy file whose `[files]` and `[syntax]` rules every new commit must pass, as on
    /// the server (the server's policy.toml can be copied as it is); default: tally's
    /// default file rules.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The remote the branch is fetched from (`tally pull` fetches it into
    /// `refs/tally/remotes/<remote>/<branch>`, which is what is verified).
    #[arg(long, value_name = "NAME", default_value = "origin")]
    pub remote: String,
    /// Print the approval as JSON.
    #[arg(long)]
    pub json: bool,
}

impl AgentArgs {
    /// The agent's options for the clone at `git_dir`, checked now.
    pub fn options(&self, git_dir: PathBuf) -> agent::Options {
        agent::Options {
            git_dir,
            ledger_key: self.ledger_key.clone(),
            allowed_signers: self.allowed_signers.clone(),
            branch: self.branch.clone(),
            remote: self.remote.clone(),
            state: self.state.clone(),
            max_age: self.max_age,
            trust_from: self.trust_from.clone(),
            policy: self.policy.clone(),
            now: Timestamp::now(),
        }
    }
}

/// Arguments of `tally verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    agent: AgentArgs,
}

/// Runs `tally verify`: prints the approved commit, or the reasons it approved nothing.
pub fn run(args: VerifyArgs, out: &mut impl Write) -> Outcome {
    let args = args.agent;
    let location = match agent::discover(args.repo.as_deref()) {
        Ok(l) => l,
        Err(e) => return refusal("verify", &e, args.json, None, out),
    };
    let opts = args.options(location.git_dir);
    match agent::verify(&opts) {
        Ok(approval) => print_approval("verify", out, &approval, &opts, args.json),
        Err(e) => refusal("verify", &e, args.json, Some(&opts), out),
    }
}

/// How an unattended agent should treat a failure, by exit status (docs/agent.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 1: verification refused what was served: never deploy it; someone should look.
    Refused,
    /// 2: the agent's own configuration or usage is wrong.
    Config,
    /// 3: the fetch failed or timed out: nothing was judged; retry later.
    Retry,
    /// 4: something on this machine prevents deploying (local changes, files in the way, a
    /// checkout that is not the signed bytes).
    Local,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Refused => "refused",
            Class::Config => "config",
            Class::Retry => "retry",
            Class::Local => "local",
        }
    }
    fn exit(self) -> u8 {
        match self {
            Class::Refused => 1,
            Class::Config => 2,
            Class::Retry => 3,
            Class::Local => 4,
        }
    }
}

/// What is still deployed, from the agent's state file (unchanged by a failure), for JSON.
fn deployed(opts: Option<&agent::Options>) -> serde_json::Value {
    let Some(opts) = opts else {
        return serde_json::Value::Null;
    };
    let Ok(branch) = agent::full_branch(&opts.branch) else {
        return serde_json::Value::Null;
    };
    let path = opts
        .state
        .clone()
        .unwrap_or_else(|| agent::state::default_path(&opts.git_dir, &branch));
    std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .map_or(serde_json::Value::Null, |state| state["deployed"].clone())
}

/// Reports a failure of class `class` with its reason lines: on stderr, and with `--json`
/// also as one JSON object on stdout (`approved: false`, the class, the exit status, the
/// reasons, and what is still deployed), then the outcome that exits with the class's
/// status.
pub fn failure(
    command: &str,
    class: Class,
    lines: &[String],
    json: bool,
    opts: Option<&agent::Options>,
    out: &mut impl Write,
) -> Outcome {
    if json {
        let value = serde_json::json!({
            "approved": false,
            "class": class.name(),
            "exit": class.exit(),
            "reasons": lines,
            "deployed": deployed(opts),
        });
        if let Ok(text) = serde_json::to_string_pretty(&value) {
            let _ = writeln!(out, "{text}");
        }
    }
    match class {
        Class::Config => Outcome::Config(lines.join("; ")),
        Class::Retry => Outcome::Retry(lines.join("; ")),
        Class::Refused | Class::Local => {
            tell(command, lines);
            if class == Class::Local {
                Outcome::Local
            } else {
                Outcome::Refused
            }
        }
    }
}

/// Prints an approval: on stdout the commit id alone (what scripts read: `$(tally verify)`), or
/// JSON; on stderr, for people, what was approved and why it is trusted
/// ([`Approval::report`]), each line `tally: <command>: ...`. With `--json` only its warnings
/// go to stderr ([`Approval::warnings`]: a first run's trust on first use).
pub fn print_approval(
    command: &str,
    out: &mut impl Write,
    approval: &Approval,
    opts: &agent::Options,
    json: bool,
) -> Outcome {
    if json {
        tell(command, &approval.warnings());
    } else {
        tell(command, &approval.report(opts.now));
    }
    let written = if json {
        serde_json::to_string_pretty(&approval.to_json())
            .map_err(std::io::Error::other)
            .and_then(|text| writeln!(out, "{text}"))
    } else {
        writeln!(out, "{}", approval.commit)
    };
    match written {
        // A closed pipe is not an error: the approval stands.
        Ok(()) => Outcome::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Success,
        Err(e) => Outcome::Config(format!("cannot write the approval: {e}")),
    }
}

/// Says a first run's warnings (trust on first use) on stderr: for a `pull` that verified,
/// and so pinned the ledger, but then could not deploy. The next run is not a first run, so
/// this is the only time they can be said.
pub fn warn_first_run(command: &str, approval: &Approval) {
    tell(command, &approval.warnings());
}

/// Says `lines` on stderr for people, each as [`say`] writes it.
fn tell(command: &str, lines: &[String]) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for line in lines {
        say(&mut err, command, line);
    }
}

/// Maps an agent error to its class: setup problems exit 2, a checkout that is not the signed
/// bytes is this machine's problem (4), everything else is a refusal of what was served (1).
pub fn refusal(
    command: &str,
    error: &AgentError,
    json: bool,
    opts: Option<&agent::Options>,
    out: &mut impl Write,
) -> Outcome {
    let class = if error.is_setup() {
        Class::Config
    } else if matches!(error, AgentError::WorkTreeDiffers { .. }) {
        Class::Local
    } else {
        Class::Refused
    };
    let lines = if class == Class::Config {
        vec![error.to_string()]
    } else {
        error.lines()
    };
    failure(command, class, &lines, json, opts, out)
}
