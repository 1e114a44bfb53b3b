//! What the mirror serves and how its cycles went: written by the cycle, read by `/status`,
//! `/readyz` and `/metrics`.

use std::sync::Mutex;

use gix::ObjectId;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::Config;
use crate::metrics::Metrics;

/// The state both sides share.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<Status>,
    /// The metrics, updated by the cycle and the HTTP side.
    pub metrics: Metrics,
}

/// The mirror's status.
#[derive(Debug, Clone)]
pub struct Status {
    /// The served repository's name.
    pub name: String,
    /// One per mirrored branch, in `--branch` order.
    pub branches: Vec<BranchStatus>,
    /// The checkpoint size of the ledger served, once one is.
    pub ledger_entries: Option<u64>,
    /// When the mirror started.
    pub started: Timestamp,
    /// Cycles run since then.
    pub cycles: u64,
}

/// One branch.
#[derive(Debug, Clone)]
pub struct BranchStatus {
    /// The full ref name.
    pub branch: String,
    /// What is served, once anything is.
    pub served: Option<Served>,
    /// When a cycle last tried this branch.
    pub last_attempt: Option<Timestamp>,
    /// When a cycle last approved it (served or confirmed).
    pub last_success: Option<Timestamp>,
    /// The last failure, kept after a later success for the record.
    pub last_error: Option<Failure>,
    /// Failures since the last success.
    pub consecutive_failures: u64,
}

/// A served, verified revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The commit.
    pub commit: ObjectId,
    /// The ledger entry that records it.
    pub seq: u64,
    /// The checkpoint the approval rests on: its size.
    pub checkpoint_size: u64,
    /// Its signing time, unix seconds.
    pub checkpoint_time: u64,
}

/// Why a cycle did not approve a branch.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When.
    pub at: Timestamp,
    /// `refused` (what the upstream served failed a check: never served), `config` (the
    /// mirror's own setup), `retry` (the fetch failed or timed out: nothing judged), `local`
    /// (the mirror could not update what it serves).
    pub class: &'static str,
    /// Machine names of the reasons ([`tally_agent::AgentError::reasons`], or `fetch`,
    /// `serve`, `no_branch`, `no_ledger`).
    pub reasons: Vec<&'static str>,
    /// What is wrong and what to do, one line each.
    pub message: Vec<String>,
}

impl Failure {
    /// A failure now.
    pub fn new(class: &'static str, reasons: Vec<&'static str>, message: Vec<String>) -> Failure {
        Failure {
            at: Timestamp::now(),
            class,
            reasons,
            message,
        }
    }

    /// The agent's refusal now: class `refused`, or `setup` when the mirror's own setup is at
    /// fault ([`tally_agent::AgentError::is_setup`]).
    pub fn agent(e: &tally_agent::AgentError, setup: &'static str) -> Failure {
        Failure::new(
            if e.is_setup() { setup } else { "refused" },
            e.reasons(),
            e.lines(),
        )
    }
}

impl Shared {
    /// Nothing served yet, nothing attempted.
    pub fn new(config: &Config) -> Shared {
        Shared {
            status: Mutex::new(Status {
                name: config.name.clone(),
                branches: config
                    .branches
                    .iter()
                    .map(|b| BranchStatus {
                        branch: b.clone(),
                        served: None,
                        last_attempt: None,
                        last_success: None,
                        last_error: None,
                        consecutive_failures: 0,
                    })
                    .collect(),
                ledger_entries: None,
                started: Timestamp::now(),
                cycles: 0,
            }),
            metrics: Metrics::new(&config.branches),
        }
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        match self.status.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Changes the status.
    pub fn update<T>(&self, change: impl FnOnce(&mut Status) -> T) -> T {
        let mut guard = match self.status.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut guard)
    }
}

impl Status {
    /// Each branch that has something served, with it.
    pub fn served(&self) -> Vec<(String, Served)> {
        self.branches
            .iter()
            .filter_map(|b| Some((b.branch.clone(), b.served.clone()?)))
            .collect()
    }

    /// Whether every branch has a verified revision served.
    pub fn ready(&self) -> bool {
        self.branches.iter().all(|b| b.served.is_some())
    }

    /// The branches that have nothing served yet (short names).
    pub fn waiting(&self) -> Vec<&str> {
        self.branches
            .iter()
            .filter(|b| b.served.is_none())
            .map(|b| short(&b.branch))
            .collect()
    }

    /// `GET /status`.
    pub fn to_json(&self, now: Timestamp) -> Value {
        let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
        let branches: Vec<Value> = self
            .branches
            .iter()
            .map(|b| {
                let served = b.served.as_ref().map(|s| {
                    let checkpoint_time = i64::try_from(s.checkpoint_time)
                        .ok()
                        .and_then(|t| Timestamp::from_second(t).ok());
                    json!({
                        "commit": s.commit.to_string(),
                        "revision": revision(&b.branch, &s.commit),
                        "seq": s.seq,
                        "checkpoint": {
                            "size": s.checkpoint_size,
                            "time": checkpoint_time.map(|t| t.to_string()),
                            "age_seconds": age(s.checkpoint_time, now),
                        },
                    })
                });
                json!({
                    "branch": short(&b.branch),
                    "ref": b.branch,
                    "served": served,
                    "last_attempt": time(b.last_attempt),
                    "last_success": time(b.last_success),
                    "last_error": b.last_error.as_ref().map(|e| json!({
                        "time": e.at.to_string(),
                        "class": e.class,
                        "reasons": e.reasons,
                        "message": e.message,
                    })),
                    "consecutive_failures": b.consecutive_failures,
                })
            })
            .collect();
        json!({
            "name": self.name,
            "ready": self.ready(),
            "ledger": { "entries": self.ledger_entries },
            "started": self.started.to_string(),
            "cycles": self.cycles,
            "branches": branches,
        })
    }
}

/// The short name of a branch (`refs/heads/main` → `main`).
pub fn short(branch: &str) -> &str {
    branch.strip_prefix("refs/heads/").unwrap_or(branch)
}

/// A revision as Flux names it: `main@sha1:<hex>`.
pub fn revision(branch: &str, commit: &ObjectId) -> String {
    format!("{}@sha1:{commit}", short(branch))
}

/// Seconds from a unix time to `now` (0 if in the future).
pub fn age(unix: u64, now: Timestamp) -> u64 {
    u64::try_from(now.as_second())
        .unwrap_or(0)
        .saturating_sub(unix)
}
