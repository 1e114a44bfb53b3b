//! `tally mirror`: the agent running continuously, serving only verified commits over git
//! smart HTTP to Flux, Argo CD and any git client (`docs/mirror.md`).

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tally_agent as agent;
use tally_mirror::{Config, MirrorError, webhook::Secret};

use crate::cli::Outcome;

/// Arguments of `tally mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// The tally-guarded repository to mirror: any URL git fetch takes (ssh://, https://,
    /// file://, a path).
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// The mirror's directory: the fetch cache, the served repository and the pinned states
    /// (created if missing; keep it across restarts).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The ledger's public key: the line `tally ledger key` prints on the server, in a file.
    #[arg(long, value_name = "FILE")]
    ledger_key: PathBuf,
    /// The mirror's own allowed_signers file: commits signed by anyone else are never served.
    #[arg(long, value_name = "FILE")]
    allowed_signers: PathBuf,
    /// A branch to mirror (repeat for more; default main). The first is the served HEAD.
    #[arg(long = "branch", value_name = "NAME")]
    branches: Vec<String>,
    /// The file rules' policy (the `[files]` and `[syntax]` tables of a policy.toml); default:
    /// tally's default policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The address to serve on (127.0.0.1:0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The served repository's name in its URL, `http://<ADDR>/<NAME>`; default: the upstream's
    /// last path component (e.g. deploy.git).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Time between fetches when nothing triggers one (e.g. 30s, 1m, 5m); ±5 % jitter.
    #[arg(long, value_name = "DURATION", value_parser = agent::parse_duration, default_value = "1m")]
    interval: Duration,
    /// Refuse checkpoints older than this (freeze protection), e.g. 2h.
    #[arg(long, value_name = "DURATION", value_parser = agent::parse_duration)]
    max_age: Option<Duration>,
    /// Give up one fetch after this long.
    #[arg(long, value_name = "DURATION", value_parser = agent::parse_duration, default_value = "60s")]
    fetch_timeout: Duration,
    /// A file holding the webhook secret: POST /hook then requires X-Hub-Signature-256
    /// (GitHub), X-Gitea-Signature (Gitea, Forgejo) or X-Gitlab-Token (GitLab).
    #[arg(long, value_name = "FILE")]
    webhook_secret: Option<PathBuf>,
    /// On a branch's first cycle only: trust the history up to this commit without checking
    /// it (history from before `tally init`, as `tally verify --trust-from`); BRANCH=COMMIT
    /// for one branch, COMMIT for every branch. Repeatable.
    #[arg(long, value_name = "[BRANCH=]COMMIT")]
    trust_from: Vec<String>,
    /// The log's format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Runs `tally mirror` until SIGTERM or SIGINT.
pub fn run(args: MirrorArgs, out: &mut impl Write) -> Outcome {
    let config = match config(&args) {
        Ok(c) => c,
        Err(message) => return Outcome::Config(message),
    };
    init_logging(args.log_format);
    let result = tally_mirror::run(config, |url| {
        let _ = writeln!(out, "serving {url}");
        let _ = out.flush();
    });
    match result {
        Ok(()) => Outcome::Success,
        Err(MirrorError::Config(m) | MirrorError::Dir(m)) => Outcome::Config(m),
        Err(MirrorError::Internal(m)) => {
            eprintln!("tally: mirror: {m}");
            Outcome::Refused
        }
    }
}

fn config(args: &MirrorArgs) -> Result<Config, String> {
    let branches = if args.branches.is_empty() {
        vec!["main".to_owned()]
    } else {
        args.branches.clone()
    };
    let mut full = Vec::with_capacity(branches.len());
    for b in &branches {
        let name = agent::full_branch(b).map_err(|e| e.to_string())?;
        if full.contains(&name) {
            return Err(format!(
                "--branch {b} is given twice; name each branch once"
            ));
        }
        full.push(name);
    }
    let name = match &args.name {
        Some(n) => {
            tally_mirror::validate_name(n)?;
            n.clone()
        }
        None => tally_mirror::default_name(&args.upstream).ok_or_else(|| {
            format!(
                "cannot name the served repository after --upstream {:?}; pass --name <NAME> (e.g. deploy.git)",
                tally_mirror::cycle::redact(&args.upstream)
            )
        })?,
    };
    let listen = listen_address(&args.listen)?;
    let webhook_secret = args
        .webhook_secret
        .as_deref()
        .map(Secret::load)
        .transpose()?;
    let mut trust_from = Vec::new();
    for given in &args.trust_from {
        let (branch, commit) = match given.split_once('=') {
            Some((b, c)) => {
                let b = agent::full_branch(b).map_err(|e| e.to_string())?;
                if !full.contains(&b) {
                    return Err(format!(
                        "--trust-from {given}: {b} is not a mirrored branch; add --branch {}",
                        b.strip_prefix("refs/heads/").unwrap_or(&b)
                    ));
                }
                (Some(b), c)
            }
            None => (None, given.as_str()),
        };
        if commit.len() != 40 || !commit.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "--trust-from {given}: {commit:?} is not a full commit id; pass the id `git rev-parse <rev>` prints"
            ));
        }
        if trust_from.iter().any(|(b, _)| b == &branch) {
            return Err(format!(
                "--trust-from is given twice for {}",
                branch.as_deref().unwrap_or("every branch")
            ));
        }
        trust_from.push((branch, commit.to_ascii_lowercase()));
    }
    Ok(Config {
        upstream: upstream_url(&args.upstream),
        dir: args.dir.clone(),
        ledger_key: args.ledger_key.clone(),
        allowed_signers: args.allowed_signers.clone(),
        branches: full,
        policy: args.policy.clone(),
        listen,
        name,
        interval: args.interval,
        max_age: args.max_age,
        fetch_timeout: args.fetch_timeout,
        webhook_secret,
        trust_from,
    })
}

/// `--upstream` as the mirror's git runs it, in its own directory: a local path made absolute
/// (git takes a word without `://`, and without a `:` before its first `/`, as a path).
fn upstream_url(given: &str) -> String {
    let scp_like = given
        .find(':')
        .is_some_and(|colon| given.find('/').is_none_or(|slash| colon < slash));
    if given.contains("://") || scp_like {
        return given.to_owned();
    }
    std::path::Path::new(given)
        .canonicalize()
        .map_or_else(|_| given.to_owned(), |p| p.display().to_string())
}

/// `--listen`: `HOST:PORT`, the host a name or an address (`[::1]:8080` for IPv6).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let bad = |why: String| {
        format!("--listen {text:?}: {why}; pass HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
    };
    text.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".to_owned()))
}

fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::INFO);
    // A second subscriber (never, outside tests) is not an error worth stopping for.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
