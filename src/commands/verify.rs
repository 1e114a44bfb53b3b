//! `tally verify`: the deployment agent's check of what the clone holds.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use tally_verify::agent::{self, AgentError, Approval};

use crate::cli::Outcome;

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
        Err(e) => return refusal("verify", &e),
    };
    match agent::verify(&args.options(location.git_dir)) {
        Ok(approval) => print_approval(out, &approval, args.json),
        Err(e) => refusal("verify", &e),
    }
}

/// Prints an approval: the commit id, or JSON.
pub fn print_approval(out: &mut impl Write, approval: &Approval, json: bool) -> Outcome {
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

/// Maps an agent error to the outcome: setup problems exit 2, refusals print one line per
/// reason and exit 1.
pub fn refusal(command: &str, error: &AgentError) -> Outcome {
    if error.is_setup() {
        return Outcome::Config(error.to_string());
    }
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for line in error.lines() {
        let _ = writeln!(err, "tally: {command}: {line}");
    }
    Outcome::Refused
}
