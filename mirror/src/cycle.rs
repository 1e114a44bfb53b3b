//! One cycle: fetch the upstream into the cache, run the agent's checks on every branch, then
//! move the served repository to what was approved; and the loop that schedules cycles.
//!
//! The order is what makes the mirror safe to kill at any instant:
//!
//! 1. fetch into the cache (force: the cache holds whatever the upstream says);
//! 2. for each branch, [`tally_agent::verify_unpinned`] against the cache: the agent's
//!    checks, nothing written yet;
//! 3. one `git push --atomic` from the cache into the served repository, of the approved
//!    commits and the ledger they were verified with (after [`Reader::joins`] checked that
//!    only publications come with it): git copies exactly the objects reachable from them and
//!    moves the refs only after the objects are in place; branches are pushed without force,
//!    so git itself refuses to move one backwards;
//! 4. pin each served branch's new state (atomically).
//!
//! Killed after 3 and before 4, the state is behind what is served, never ahead: the next
//! cycle checks everything since the old pin again, the served commits among it.
//!
//! [`Reader::joins`]: tally_agent::publication::Reader::joins
//!
//! Cycles run on one thread of their own, one at a time. They are scheduled every
//! `--interval` (±5 % jitter), retried after a failure with a backoff that doubles from 2 s up
//! to the interval, and run at once on a webhook, at most one per second however many arrive.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gix::ObjectId;
use jiff::Timestamp;
use tally_agent::git::Git;
use tally_agent::{AgentError, Approval};

use crate::layout::{Layout, STALE_LOCK_AGE};
use crate::status::{Failure, Served, Shared, short};
use crate::{Config, MirrorError};

/// The name the cache fetches the upstream's branches under (`refs/tally/remotes/upstream/*`).
pub const REMOTE: &str = "upstream";

/// The failure reasons the mirror adds to the agent's ([`AgentError::REASONS`]): the fetch
/// failed, or the served repository could not be updated.
pub const MIRROR_REASONS: &[&str] = &["fetch", "serve"];

/// The shortest time between two cycles a webhook can cause.
pub const MIN_TRIGGER_GAP: Duration = Duration::from_secs(1);

/// The first retry after a failure; each further failure doubles it, up to `--interval`.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);

/// The limit on copying verified objects into the served repository (a local push; the
/// first one copies the whole history).
const PUSH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Loads what the operator pinned once at start, so that a wrong file stops the mirror with
/// exit 2 instead of failing every cycle. Each cycle loads them again (the files may be
/// updated while the mirror runs).
pub fn check_inputs(config: &Config) -> Result<(), MirrorError> {
    let setup = |e: AgentError| MirrorError::Config(e.to_string());
    tally_ledger::key::load_public(&config.ledger_key)
        .map_err(|e| setup(AgentError::LedgerKey(e)))?;
    tally_verify::trust::load(&config.allowed_signers, None)
        .map_err(|e| setup(AgentError::Signers(e)))?;
    if let Some(policy) = &config.policy {
        tally_verify::files::load_policy(policy).map_err(|e| setup(AgentError::Policy(e)))?;
    }
    for b in &config.branches {
        tally_agent::full_branch(b).map_err(setup)?;
    }
    Ok(())
}

/// Hides a URL's password or token for logs and `/status`: `https://user:token@host/...` →
/// `https://user:***@host/...`, and a bare token (`https://ghp_x@host/...`) → `https://***@host/...`.
/// The user of an ssh URL (`ssh://git@host/...`) is not a secret and stays.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let hidden = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if scheme.eq_ignore_ascii_case("ssh") || scheme.eq_ignore_ascii_case("git+ssh") => {
            userinfo.to_owned()
        }
        None => "***".to_owned(),
    };
    format!("{scheme}://{hidden}@{host}")
}

enum Message {
    Trigger,
    Stop,
}

/// Asks the cycle thread for a cycle now, or to stop.
#[derive(Debug, Clone)]
pub struct Trigger {
    sender: SyncSender<Message>,
    stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Trigger => "Trigger",
            Message::Stop => "Stop",
        })
    }
}

impl Trigger {
    /// Asks for a cycle as soon as allowed; `false` if one was already asked for (the requests
    /// coalesce).
    pub fn now(&self) -> bool {
        match self.sender.try_send(Message::Trigger) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Asks the thread to stop after the cycle it is running; never blocks (a pending trigger
    /// wakes the thread just as well, and it sees the flag).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.sender.try_send(Message::Stop);
    }
}

/// The cycle thread.
#[derive(Debug)]
pub struct Cycles {
    handle: JoinHandle<()>,
    done: Receiver<()>,
}

impl Cycles {
    /// Waits up to `limit` for the thread to end.
    pub fn join_within(self, limit: Duration) {
        if self.done.recv_timeout(limit).is_ok() {
            let _ = self.handle.join();
        }
    }
}

/// Seeds the status from disk and starts the cycle thread; the first cycle runs at once.
pub fn start(
    config: Config,
    layout: Layout,
    shared: Arc<Shared>,
) -> Result<(Trigger, Cycles), MirrorError> {
    // Capacity 1: one pending trigger, further ones coalesce into it; a stop always fits
    // after the thread takes the trigger.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (done_tx, done) = std::sync::mpsc::channel();
    let stopping = Arc::new(AtomicBool::new(false));
    let runner = Runner {
        config,
        layout,
        shared,
    };
    runner.seed();
    let flag = stopping.clone();
    let handle = std::thread::Builder::new()
        .name("tally-mirror-cycle".to_owned())
        .spawn(move || {
            runner.schedule(&rx, &flag);
            let _ = done_tx.send(());
        })
        .map_err(|e| MirrorError::Internal(format!("cannot start the cycle thread: {e}")))?;
    Ok((
        Trigger {
            sender: tx,
            stopping,
        },
        Cycles { handle, done },
    ))
}

struct Runner {
    config: Config,
    layout: Layout,
    shared: Arc<Shared>,
}

/// One branch's outcome in a cycle.
enum Outcome {
    /// Approved; the state is pinned once the commit is served.
    Approved(Box<Approval>, Option<tally_agent::Pin>),
    Failed(Failure),
}

impl Runner {
    /// What the served repository and the pinned states say, so that a restarted mirror is
    /// ready at once and reports what it serves.
    fn seed(&self) {
        let record = served_record::load(&self.layout.dir);
        let key = tally_ledger::key::load_public(&self.config.ledger_key).ok();
        for branch in &self.config.branches {
            let Some(commit) = self.served_ref(branch) else {
                continue;
            };
            // What the mirror recorded when it last served the branch; else what the pinned
            // state says, if it is the same commit.
            let served = record
                .get(branch)
                .filter(|r| r.commit == commit)
                .cloned()
                .or_else(|| {
                    let key = key.as_ref()?;
                    let path = self.state_path(branch);
                    let loaded =
                        tally_agent::state::load(&path, branch, key, &self.config.ledger_key)
                            .ok()?;
                    let state = loaded.state.filter(|s| s.deployed_commit == commit)?;
                    Some(Served {
                        commit,
                        seq: state.deployed_seq,
                        checkpoint_size: state.checkpoint.size(),
                        checkpoint_time: state.checkpoint.time(),
                    })
                });
            let Some(served) = served else {
                tracing::warn!(
                    branch = short(branch),
                    commit = %commit,
                    "serving a commit whose record is missing; reported once the first cycle verifies it"
                );
                continue;
            };
            self.shared
                .metrics
                .served(branch, None, &commit.to_string());
            self.shared.update(|s| {
                s.ledger_entries = s.ledger_entries.max(Some(served.checkpoint_size));
                if let Some(b) = s.branches.iter_mut().find(|b| &b.branch == branch) {
                    b.served = Some(served);
                }
            });
        }
        if let Some(entries) = self.shared.status().ledger_entries {
            self.shared.metrics.ledger(entries);
        }
    }

    /// Runs cycles until told to stop.
    fn schedule(&self, rx: &Receiver<Message>, stopping: &AtomicBool) {
        let stop = || stopping.load(Ordering::SeqCst);
        loop {
            if stop() {
                return;
            }
            let started = Instant::now();
            let failures = self.run_once();
            let delay = if failures == 0 {
                jitter(self.config.interval)
            } else {
                jitter(backoff(failures, self.config.interval))
            };
            // Wait for the delay or a trigger, whichever comes first.
            match rx.recv_timeout(delay) {
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(Message::Trigger) if stop() => return,
                Ok(Message::Trigger) => {}
            }
            // A trigger: not sooner than MIN_TRIGGER_GAP after the last start; triggers that
            // arrive meanwhile are taken into this cycle.
            let earliest = started + MIN_TRIGGER_GAP;
            loop {
                let now = Instant::now();
                if now >= earliest {
                    break;
                }
                match rx.recv_timeout(earliest - now) {
                    Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(Message::Trigger) | Err(RecvTimeoutError::Timeout) if stop() => return,
                    Ok(Message::Trigger) | Err(RecvTimeoutError::Timeout) => {}
                }
            }
        }
    }

    /// One cycle; returns the largest count of consecutive failures among the branches (0 if
    /// every branch is verified and served).
    fn run_once(&self) -> u64 {
        self.shared.metrics.cycle();
        self.shared.update(|s| s.cycles += 1);
        match self.layout.ensure(&self.config.branches) {
            Ok(false) => {}
            Ok(true) => {
                self.shared.metrics.forget_served();
                self.shared.update(|s| {
                    for b in &mut s.branches {
                        b.served = None;
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot recreate the mirror's repositories"),
        }
        self.layout.remove_stale_locks(STALE_LOCK_AGE);
        let attempt = Timestamp::now();
        let mut outcomes: Vec<(String, Outcome)> = Vec::new();
        let fetched = self.fetch(&mut outcomes);
        if fetched {
            for branch in &self.config.branches {
                if outcomes.iter().any(|(b, _)| b == branch) {
                    continue;
                }
                outcomes.push((branch.clone(), self.verify(branch)));
            }
        }
        if let Err(failure) = self.publish(&outcomes) {
            tracing::error!(error = %failure.message.join(" | "), "the served repository was not updated");
            for (_, outcome) in &mut outcomes {
                if matches!(outcome, Outcome::Approved(..)) {
                    *outcome = Outcome::Failed(failure.clone());
                }
            }
        }
        // Served: now pin. A kill before this leaves the state behind what is served, never
        // ahead of it, so the next cycle's checks cover everything served since the pin.
        for (_, outcome) in &mut outcomes {
            if let Outcome::Approved(_, pin) = outcome
                && let Some(pin) = pin.take()
                && let Err(e) = pin.store()
            {
                *outcome = Outcome::Failed(Failure::agent(&e, "config"));
            }
        }
        let worst = self.record(attempt, outcomes);
        if let Err(e) = served_record::store(&self.layout.dir, &self.shared.status().served()) {
            tracing::warn!(error = %e, "cannot record what is served; /status after a restart may lag until the first cycle");
        }
        worst
    }

    /// Fetches every branch and the ledger into the cache. `false` if nothing can be verified
    /// (the fetch failed for all), with a failure recorded for each branch; a branch the
    /// upstream does not have fails alone.
    fn fetch(&self, outcomes: &mut Vec<(String, Outcome)>) -> bool {
        let git = Git {
            dir: &self.layout.cache,
        };
        let mut wanted: Vec<&String> = self.config.branches.iter().collect();
        loop {
            let mut args: Vec<String> = [
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--end-of-options",
                self.config.upstream.as_str(),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            for b in &wanted {
                args.push(format!("+{b}:{}", tally_agent::fetched_ref(REMOTE, b)));
            }
            args.push(format!(
                "+{}:{}",
                tally_agent::publication::LEDGER_REF,
                tally_agent::publication::LEDGER_REF
            ));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = git.command(&args);
            quiet_transport(&mut cmd);
            // git's messages in English: a missing ref is recognised by them.
            cmd.env("LC_ALL", "C").env_remove("LANGUAGE");
            let start = Instant::now();
            let result = git.run_within(cmd, self.config.fetch_timeout, &args);
            self.shared.metrics.fetched(start.elapsed().as_secs_f64());
            let Err(error) = result else {
                return true;
            };
            let missing: Vec<&String> = wanted
                .iter()
                .copied()
                .filter(|b| error.contains(&format!("couldn't find remote ref {b}")))
                .collect();
            let ledger_missing = error.contains(&format!(
                "couldn't find remote ref {}",
                tally_agent::publication::LEDGER_REF
            ));
            if ledger_missing {
                for b in &wanted {
                    outcomes.push(((*b).clone(), Outcome::Failed(self.no_ledger(b))));
                }
                return false;
            }
            if missing.is_empty() {
                let redacted = redact(&self.config.upstream);
                for b in &wanted {
                    outcomes.push((
                        (*b).clone(),
                        Outcome::Failed(Failure::new("retry", vec!["fetch"], vec![format!(
                                "git fetch {redacted} failed: {}; nothing was judged and the last verified commit stays served; the mirror retries; if it persists, check the URL, the network and the mirror's credentials",
                                error.replace(&self.config.upstream, &redacted)
                            )])),
                    ));
                }
                return false;
            }
            for b in &missing {
                outcomes.push((
                    (*b).clone(),
                    Outcome::Failed(Failure::new("refused", vec!["no_branch"], vec![format!(
                            "the upstream has no branch {}; the last verified commit stays served; check --branch, or whether the branch was deleted upstream",
                            short(b)
                        )])),
                ));
            }
            wanted.retain(|b| !missing.contains(b));
            if wanted.is_empty() {
                return false;
            }
        }
    }

    /// The failure when the upstream has no `refs/tally/ledger`.
    fn no_ledger(&self, branch: &str) -> Failure {
        let verified_before = self.state_path(branch).exists();
        let (class, line) = if verified_before {
            (
                "refused",
                "the upstream has no refs/tally/ledger, but this mirror verified its ledger before: a server that stops publishing its ledger is not served from; the last verified commit stays served; ask the upstream's administrator why refs/tally/ledger is gone",
            )
        } else {
            (
                "config",
                "the upstream has no refs/tally/ledger: check that --upstream is the tally-guarded repository and that its server runs tally (tally init)",
            )
        };
        Failure::new(class, vec!["no_ledger"], vec![line.to_owned()])
    }

    /// The agent's checks for one branch, against the cache.
    fn verify(&self, branch: &str) -> Outcome {
        let opts = tally_agent::Options {
            git_dir: self.layout.cache.clone(),
            ledger_key: self.config.ledger_key.clone(),
            allowed_signers: self.config.allowed_signers.clone(),
            branch: branch.to_owned(),
            remote: REMOTE.to_owned(),
            state: Some(self.state_path(branch)),
            max_age: self.config.max_age,
            trust_from: self.config.trust_from(branch),
            policy: self.config.policy.clone(),
            now: Timestamp::now(),
        };
        match tally_agent::verify_unpinned(&opts) {
            Ok((approval, pin)) => Outcome::Approved(Box::new(approval), Some(pin)),
            Err(e) => Outcome::Failed(Failure::agent(&e, "config")),
        }
    }

    /// Moves the served repository to the approved commits and the ledger they were verified
    /// with, in one atomic push; nothing if nothing changed.
    fn publish(&self, outcomes: &[(String, Outcome)]) -> Result<(), Failure> {
        let local = |message: String| {
            Failure::new(
                "local",
                vec!["serve"],
                vec![format!(
                    "cannot update the served repository {}: {message}; the last verified commit stays served; check the disk and the directory's permissions",
                    self.layout.served.display()
                )],
            )
        };
        let approved: Vec<&Approval> = outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Approved(a, _) => Some(a.as_ref()),
                Outcome::Failed(_) => None,
            })
            .collect();
        if approved.is_empty() {
            return Ok(());
        }
        let mut refspecs = Vec::new();
        for a in &approved {
            if self.served_ref(&a.branch) != Some(a.commit) {
                refspecs.push(format!("{}:{}", a.commit, a.branch));
            }
        }
        // The ledger every approval of this cycle verified: the cache's, which nothing has
        // moved since (this thread is the cache's only writer).
        let ledger_ref = tally_agent::publication::LEDGER_REF;
        let cache_ledger = rev(&self.layout.cache, ledger_ref)
            .ok_or_else(|| local(format!("the cache has no {ledger_ref} after verifying it")))?;
        let served_ledger = rev(&self.layout.served, ledger_ref);
        if served_ledger != Some(cache_ledger) {
            // Only publications come along: the agent read the publications down to the size
            // it pinned, and nothing below them may be copied unread.
            self.ledger_joins(cache_ledger, served_ledger, &approved)?;
            // Forced: a heartbeat publication replaces the one before it (see layout.rs).
            refspecs.push(format!("+{cache_ledger}:{ledger_ref}"));
        }
        if refspecs.is_empty() {
            return Ok(());
        }
        // What will be served, recorded before the push: killed after it, a restart finds the
        // served commits in served.json (the pins come after the push); killed before, the
        // record does not match served.git, and the pinned states still do.
        let mut planned = self.shared.status().served();
        for a in &approved {
            let row = Served {
                commit: a.commit,
                seq: a.seq,
                checkpoint_size: a.checkpoint.size(),
                checkpoint_time: a.checkpoint.time(),
            };
            match planned.iter_mut().find(|(b, _)| b == &a.branch) {
                Some((_, s)) => *s = row,
                None => planned.push((a.branch.clone(), row)),
            }
        }
        served_record::store(&self.layout.dir, &planned)
            .map_err(|e| local(format!("cannot record what is served: {e}")))?;
        let served = self.layout.served.to_string_lossy().into_owned();
        let mut args = vec![
            "push",
            "--quiet",
            "--atomic",
            "--no-verify",
            "--end-of-options",
            served.as_str(),
        ];
        args.extend(refspecs.iter().map(String::as_str));
        let git = Git {
            dir: &self.layout.cache,
        };
        git.output_within(PUSH_TIMEOUT, &args).map_err(local)?;
        // What is served now must be what was approved.
        for a in &approved {
            let now = self.served_ref(&a.branch);
            if now != Some(a.commit) {
                return Err(local(format!(
                    "after the push {} is at {}, not at the approved {}",
                    a.branch,
                    now.map_or_else(|| "nothing".to_owned(), |c| c.to_string()),
                    a.commit
                )));
            }
        }
        Ok(())
    }

    /// Records the outcomes in the status, the metrics and the log; returns the largest count
    /// of consecutive failures.
    fn record(&self, attempt: Timestamp, outcomes: Vec<(String, Outcome)>) -> u64 {
        let mut worst = 0;
        for (branch, outcome) in outcomes {
            let before = self.shared.update(|s| {
                s.branches
                    .iter()
                    .find(|b| b.branch == branch)
                    .and_then(|b| b.served.clone())
            });
            match outcome {
                Outcome::Approved(a, _) => {
                    let served = Served {
                        commit: a.commit,
                        seq: a.seq,
                        checkpoint_size: a.checkpoint.size(),
                        checkpoint_time: a.checkpoint.time(),
                    };
                    if before.as_ref().map(|s| s.commit) != Some(a.commit) {
                        tracing::info!(
                            branch = short(&branch),
                            commit = %a.commit,
                            seq = a.seq,
                            checkpoint = a.checkpoint.size(),
                            previous = before.as_ref().map(|s| s.commit.to_string()),
                            "serving a newly verified commit"
                        );
                    }
                    let old = before.as_ref().map(|s| s.commit.to_string());
                    self.shared
                        .metrics
                        .served(&branch, old.as_deref(), &a.commit.to_string());
                    #[allow(clippy::cast_precision_loss)]
                    let unix = Timestamp::now().as_millisecond() as f64 / 1000.0;
                    self.shared.metrics.success(&branch, unix);
                    self.shared.metrics.ledger(a.checkpoint.size());
                    self.shared.update(|s| {
                        s.ledger_entries = s.ledger_entries.max(Some(a.checkpoint.size()));
                        if let Some(b) = s.branches.iter_mut().find(|b| b.branch == branch) {
                            b.served = Some(served);
                            b.last_attempt = Some(attempt);
                            b.last_success = Some(Timestamp::now());
                            b.consecutive_failures = 0;
                        }
                    });
                }
                Outcome::Failed(failure) => {
                    tracing::warn!(
                        branch = short(&branch),
                        class = failure.class,
                        reasons = %failure.reasons.join(","),
                        serving = before.as_ref().map(|s| s.commit.to_string()),
                        "not verified: {}",
                        failure.message.join(" | ")
                    );
                    let consecutive = self.shared.update(|s| {
                        let Some(b) = s.branches.iter_mut().find(|b| b.branch == branch) else {
                            return 0;
                        };
                        b.last_attempt = Some(attempt);
                        b.consecutive_failures += 1;
                        b.last_error = Some(failure.clone());
                        b.consecutive_failures
                    });
                    self.shared
                        .metrics
                        .failure(&branch, &failure.reasons, consecutive);
                    worst = worst.max(consecutive);
                }
            }
        }
        worst
    }

    /// Whether the cache's ledger may be copied over the served one: every approval started
    /// from a pin at or below the served ledger's size (so the agent hashed every entry that
    /// would come along), and [`tally_agent::publication::Reader::joins`] over the cache (the
    /// served tip read from the served repository if the cache lacks it).
    fn ledger_joins(
        &self,
        new: ObjectId,
        served: Option<ObjectId>,
        approved: &[&Approval],
    ) -> Result<(), Failure> {
        let refused = |e: AgentError| Failure::agent(&e, "local");
        let objects = tally_verify::objects::Objects::open(
            &self.layout.cache,
            None,
            vec![self.layout.served.join("objects")],
            new.kind(),
        )
        .map_err(|e| Failure::new("local", vec!["serve"], vec![format!(
                "cannot read the mirror's repositories to check refs/tally/ledger: {e}; check {} and {} (git fsck)",
                self.layout.cache.display(),
                self.layout.served.display()
            )]))?;
        let mut reader = tally_agent::publication::Reader::new(&objects);
        let served_size = match served {
            Some(id) => reader.publication(id).map_err(refused)?.range.size,
            None => 0,
        };
        if let Some(a) = approved
            .iter()
            .find(|a| a.pinned_size.is_some_and(|p| p > served_size))
        {
            return Err(Failure::new(
                "config",
                vec!["state"],
                vec![format!(
                    "the pinned state of {} is at ledger size {}, but the ledger in served.git ends at {served_size} (served.git was deleted or replaced): the entries in between would be copied unchecked, so nothing is served; after checking the upstream out of band, move {} aside, and the mirror checks the whole ledger again",
                    short(&a.branch),
                    a.pinned_size.unwrap_or(0),
                    self.layout.dir.join("tally").join("agent").display()
                )],
            ));
        }
        let Some(first) = approved.first() else {
            return Ok(());
        };
        let key = tally_ledger::key::load_public(&self.config.ledger_key)
            .map_err(|e| refused(AgentError::LedgerKey(e)))?;
        reader
            .joins(new, served, &key, first.checkpoint.origin())
            .map_err(refused)
    }

    fn served_ref(&self, branch: &str) -> Option<ObjectId> {
        rev(&self.layout.served, branch)
    }

    fn state_path(&self, branch: &str) -> PathBuf {
        tally_agent::state::default_path(&self.layout.dir, branch)
    }
}

/// The commit (or other object) a ref of `repo` points to, if it exists.
fn rev(repo: &std::path::Path, refname: &str) -> Option<ObjectId> {
    let out = Git { dir: repo }
        .output(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            refname,
        ])
        .ok()?;
    ObjectId::from_hex(out.as_bytes()).ok()
}

/// No prompt can hold a fetch: git asks no password on a terminal and ssh runs in batch mode
/// (unless the operator set their own ssh command).
fn quiet_transport(cmd: &mut Command) {
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
}

/// The delay after `failures` failures in a row: 2 s, doubling, at most `interval`.
pub fn backoff(failures: u64, interval: Duration) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    FIRST_RETRY.saturating_mul(1 << doublings).min(interval)
}

/// `d` ± 5 %, as Flux spreads its intervals, so that mirrors started together do not fetch
/// together.
pub fn jitter(d: Duration) -> Duration {
    let factor = 0.95 + fastrand::f64() * 0.10;
    d.mul_f64(factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds_up_to_the_interval() {
        let minute = Duration::from_secs(60);
        let got: Vec<u64> = (1..=7).map(|n| backoff(n, minute).as_secs()).collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(u64::MAX, minute), minute);
        assert_eq!(backoff(3, Duration::from_secs(5)), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((95.0..=105.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact("https://bot:t0ken@git.example/deploy.git"),
            "https://bot:***@git.example/deploy.git"
        );
        assert_eq!(
            redact("ssh://git@host/deploy.git"),
            "ssh://git@host/deploy.git"
        );
        assert_eq!(redact("/srv/git/deploy.git"), "/srv/git/deploy.git");
        assert_eq!(
            redact("https://ghp_SECRET@git.example/deploy.git"),
            "https://***@git.example/deploy.git"
        );
        assert_eq!(
            redact("https://a:b@c@git.example/x@y.git"),
            "https://a:***@git.example/x@y.git"
        );
        assert_eq!(redact("git@host:deploy.git"), "git@host:deploy.git");
    }
}

/// `<DIR>/served.json`: what the mirror served last, per branch (commit, entry, checkpoint), so
/// that a restarted mirror reports what it serves at once, even if the upstream is down and
/// the pinned state is ahead of what was served (killed between the pin and the push).
mod served_record {
    use std::collections::HashMap;
    use std::io::Write;
    use std::path::Path;

    use gix::ObjectId;
    use serde::{Deserialize, Serialize};

    use crate::status::Served;

    const FILE: &str = "served.json";

    #[derive(Serialize, Deserialize)]
    struct Row {
        branch: String,
        commit: String,
        seq: u64,
        checkpoint_size: u64,
        checkpoint_time: u64,
    }

    /// The record, empty if there is none or it does not parse (it only feeds `/status`).
    pub fn load(dir: &Path) -> HashMap<String, Served> {
        let Ok(bytes) = std::fs::read(dir.join(FILE)) else {
            return HashMap::new();
        };
        let rows: Vec<Row> = serde_json::from_slice(&bytes).unwrap_or_default();
        rows.into_iter()
            .filter_map(|r| {
                let commit = ObjectId::from_hex(r.commit.as_bytes()).ok()?;
                Some((
                    r.branch,
                    Served {
                        commit,
                        seq: r.seq,
                        checkpoint_size: r.checkpoint_size,
                        checkpoint_time: r.checkpoint_time,
                    },
                ))
            })
            .collect()
    }

    /// Replaces the record atomically (a temporary file beside it, fsynced, renamed).
    pub fn store(dir: &Path, served: &[(String, Served)]) -> std::io::Result<()> {
        let rows: Vec<Row> = served
            .iter()
            .map(|(branch, s)| Row {
                branch: branch.clone(),
                commit: s.commit.to_string(),
                seq: s.seq,
                checkpoint_size: s.checkpoint_size,
                checkpoint_time: s.checkpoint_time,
            })
            .collect();
        let bytes = serde_json::to_vec_pretty(&rows).map_err(std::io::Error::other)?;
        if std::fs::read(dir.join(FILE)).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(&bytes)?;
        file.as_file().sync_all()?;
        file.persist(dir.join(FILE)).map_err(|e| e.error)?;
        std::fs::File::open(dir)?.sync_all()
    }
}
