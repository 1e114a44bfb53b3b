//! `tally mirror`: a verified mirror that Flux, Argo CD and any git client pull from.
//!
//! The mirror keeps two repositories under `--dir`:
//!
//! - `cache.git`, the fetch cache: each branch and `refs/tally/ledger` fetched from the upstream
//!   into refs tally owns. It holds whatever the upstream served, good or bad, and is never
//!   served.
//! - `served.git`, the served repository: it only ever receives commits the agent approved
//!   ([`tally_agent::verify`], exactly `tally verify`'s checks, one pinned state per branch
//!   under `tally/agent/`), pushed from the cache by git itself, so it holds no object that is
//!   not reachable from a verified commit. Protocol v2 serves any object a repository holds,
//!   so "never served" has to mean "never stored" (`../shared/REFERENCES.md`).
//!
//! Each cycle ([`cycle`]) fetches, verifies every branch and then fast-forwards the served
//! branches and the ledger in one atomic push. On a failure the served repository stays where
//! it is: the last verified commit stays served, the reason goes to the log, `/status` and
//! `/metrics`, and the cycle is retried with a capped exponential backoff.
//!
//! The HTTP side ([`http`]) serves the served repository read-only through git's own
//! `upload-pack --stateless-rpc`, plus `/healthz`, `/readyz`, `/status`, `/metrics` and a
//! signed webhook (`POST /hook`) that triggers a cycle.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cycle;
pub mod http;
pub mod layout;
pub mod metrics;
pub mod status;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What `tally mirror` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Any URL `git fetch` takes.
    pub upstream: String,
    /// Where the cache, the served repository and the agent's states live.
    pub dir: PathBuf,
    /// The ledger's public key, as `tally ledger key` prints it.
    pub ledger_key: PathBuf,
    /// The mirror's own allowed_signers.
    pub allowed_signers: PathBuf,
    /// The branches to mirror, full ref names, at least one; the first is the served HEAD.
    pub branches: Vec<String>,
    /// The file rules' policy, as for `tally verify --policy`.
    pub policy: Option<PathBuf>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The served repository's name in URLs (`/<name>`).
    pub name: String,
    /// Time between cycles when all is well.
    pub interval: Duration,
    /// The oldest acceptable checkpoint, if freshness is enforced.
    pub max_age: Option<Duration>,
    /// The limit on one fetch.
    pub fetch_timeout: Duration,
    /// The webhook secret, if webhooks must be signed.
    pub webhook_secret: Option<webhook::Secret>,
    /// On a branch's first cycle only (no pinned state yet): the commit whose history is
    /// trusted without checking, as `tally verify --trust-from`; per branch (full ref name),
    /// or `None` as the key for every branch.
    pub trust_from: Vec<(Option<String>, String)>,
}

impl Config {
    /// The `--trust-from` for `branch`: its own, else the one for every branch.
    pub fn trust_from(&self, branch: &str) -> Option<String> {
        let own = self
            .trust_from
            .iter()
            .find(|(b, _)| b.as_deref() == Some(branch));
        let all = self.trust_from.iter().find(|(b, _)| b.is_none());
        own.or(all).map(|(_, commit)| commit.clone())
    }
}

/// Why the mirror could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A flag or file the operator gave is wrong: exit 2.
    #[error("{0}")]
    Config(String),
    /// The mirror's directory cannot be set up or used.
    #[error("{0}")]
    Dir(String),
    /// Something failed while running.
    #[error("{0}")]
    Internal(String),
}

/// The served repository's default name: the upstream's last path component
/// (`ssh://git@host/team/deploy.git` serves `deploy.git`).
pub fn default_name(upstream: &str) -> Option<String> {
    let trimmed = upstream.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':', '\\']).next()?;
    validate_name(last).ok().map(|()| last.to_owned())
}

/// Checks a `--name`: one URL path segment of letters, digits, `.`, `_` and `-`, not starting
/// with `.`, and not one of the mirror's own endpoints.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !http::RESERVED.contains(&name);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} cannot name the served repository: use letters, digits, '.', '_' and '-', not starting with '.', and none of {}; pass --name <NAME> (e.g. deploy.git)",
            http::RESERVED.join(", ")
        ))
    }
}

/// Runs the mirror until SIGTERM or SIGINT: sets up `--dir`, binds `--listen`, calls
/// `started` with the URL it serves (`http://<bound address>/<name>`), then cycles and serves.
pub fn run(config: Config, started: impl FnOnce(&str)) -> Result<(), MirrorError> {
    validate_name(&config.name).map_err(MirrorError::Config)?;
    if config.upstream.starts_with('-') || config.upstream.is_empty() {
        return Err(MirrorError::Config(format!(
            "--upstream {:?} is not a URL git can fetch from; pass e.g. ssh://git@host/deploy.git or file:///srv/git/deploy.git",
            config.upstream
        )));
    }
    cycle::check_inputs(&config)?;
    let layout = layout::Layout::open(&config.dir, &config.branches)?;
    let shared = Arc::new(status::Shared::new(&config));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tally-mirror")
        .build()
        .map_err(|e| MirrorError::Internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                MirrorError::Config(format!(
                    "cannot listen on {}: {e}; pass another --listen address (127.0.0.1:0 picks a free port)",
                    config.listen
                ))
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| MirrorError::Internal(format!("cannot read the bound address: {e}")))?;
        let (trigger, cycles) = cycle::start(config.clone(), layout.clone(), shared.clone())?;
        started(&format!("http://{bound}/{}", config.name));
        tracing::info!(address = %bound, name = %config.name, upstream = %cycle::redact(&config.upstream), "serving");
        let app = http::App::new(&config, &layout, shared, trigger.clone());
        let served = http::serve(listener, app, shutdown_signal()).await;
        trigger.stop();
        // The cycle thread stops between cycles. A cycle in the middle of a fetch or a push
        // gets a few seconds, then its git is killed with its helpers (every step is safe to
        // interrupt), so that nothing outlives the mirror.
        let _ = tokio::task::spawn_blocking(move || cycles.join_within(Duration::from_secs(5)))
            .await;
        tally_agent::git::kill_running();
        tracing::info!("stopped");
        served
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers the mirror could not stop cleanly; run until killed.
            std::future::pending::<()>().await;
        }
    }
}
