//! `GET /metrics`: the mirror's metrics through the `prometheus-client` crate.
//!
//! Served in the OpenMetrics text format to scrapers that ask for it (Prometheus does, in its
//! `Accept` header) and in the Prometheus text format 0.0.4 otherwise; the two differ here only
//! in the `# EOF` line and in how a counter's `# TYPE` line names it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::status::{Status, age, short};

type Labels = Vec<(&'static str, String)>;

/// Every metric the mirror exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    served_info: Family<Labels, Gauge>,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    failures: Family<Labels, Counter>,
    consecutive_failures: Family<Labels, Gauge>,
    checkpoint_age: Family<Labels, Gauge<f64, AtomicU64>>,
    ledger_entries: Gauge,
    fetch_duration: Histogram,
    cycles: Counter,
    upload_packs: Gauge,
    upload_packs_total: Family<Labels, Counter>,
    webhooks: Family<Labels, Counter>,
}

impl Metrics {
    /// All metrics registered; for each of `branches`, every failure reason starts at zero (so
    /// that `increase()` sees a branch's first failure).
    pub fn new(branches: &[String]) -> Metrics {
        let mut registry = Registry::default();
        let served_info = Family::<Labels, Gauge>::default();
        registry.register(
            "tally_mirror_served_info",
            "The verified commit served for each branch (value 1)",
            served_info.clone(),
        );
        let last_success = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "tally_mirror_last_success_timestamp_seconds",
            "When a cycle last verified the branch (unix seconds)",
            last_success.clone(),
        );
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "tally_mirror_verify_failures",
            "Cycles that did not approve the branch, by reason",
            failures.clone(),
        );
        let consecutive_failures = Family::<Labels, Gauge>::default();
        registry.register(
            "tally_mirror_consecutive_failures",
            "Failed cycles since the branch was last verified",
            consecutive_failures.clone(),
        );
        let checkpoint_age = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "tally_mirror_checkpoint_age_seconds",
            "Age of the signed checkpoint the served commit was verified on",
            checkpoint_age.clone(),
        );
        let ledger_entries = Gauge::default();
        registry.register(
            "tally_mirror_ledger_entries",
            "Entries in the ledger served (its checkpoint's size)",
            ledger_entries.clone(),
        );
        let fetch_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "tally_mirror_fetch_duration_seconds",
            "Time to fetch the branches and the ledger from the upstream",
            fetch_duration.clone(),
        );
        let cycles = Counter::default();
        registry.register(
            "tally_mirror_cycles",
            "Cycles run (fetch, verify, serve)",
            cycles.clone(),
        );
        let upload_packs = Gauge::default();
        registry.register(
            "tally_mirror_upload_packs_in_flight",
            "git upload-pack processes serving clients now",
            upload_packs.clone(),
        );
        let upload_packs_total = Family::<Labels, Counter>::default();
        registry.register(
            "tally_mirror_git_requests",
            "Git smart HTTP requests, by kind and answer",
            upload_packs_total.clone(),
        );
        let webhooks = Family::<Labels, Counter>::default();
        registry.register(
            "tally_mirror_webhooks",
            "POST /hook requests, by answer",
            webhooks.clone(),
        );
        for branch in branches {
            for reason in tally_agent::AgentError::REASONS
                .iter()
                .chain(crate::cycle::MIRROR_REASONS)
            {
                let mut labels = branch_labels(branch);
                labels.push(("reason", (*reason).to_owned()));
                let _ = failures.get_or_create(&labels);
            }
            let _ = consecutive_failures.get_or_create(&branch_labels(branch));
        }
        Metrics {
            registry,
            served_info,
            last_success,
            failures,
            consecutive_failures,
            checkpoint_age,
            ledger_entries,
            fetch_duration,
            cycles,
            upload_packs,
            upload_packs_total,
            webhooks,
        }
    }

    /// A cycle started.
    pub fn cycle(&self) {
        self.cycles.inc();
    }

    /// A fetch took `seconds`.
    pub fn fetched(&self, seconds: f64) {
        self.fetch_duration.observe(seconds);
    }

    /// A branch's served commit changed from `old` to `new`.
    pub fn served(&self, branch: &str, old: Option<&str>, new: &str) {
        if let Some(old) = old
            && old != new
        {
            self.served_info.remove(&commit_labels(branch, old));
        }
        self.served_info
            .get_or_create(&commit_labels(branch, new))
            .set(1);
    }

    /// Nothing is served any more (the served repository was recreated empty).
    pub fn forget_served(&self) {
        self.served_info.clear();
    }

    /// A branch was verified at `unix` seconds.
    pub fn success(&self, branch: &str, unix: f64) {
        self.last_success
            .get_or_create(&branch_labels(branch))
            .set(unix);
        self.consecutive_failures
            .get_or_create(&branch_labels(branch))
            .set(0);
    }

    /// A branch failed for these reasons; `consecutive` failures in a row now.
    pub fn failure(&self, branch: &str, reasons: &[&'static str], consecutive: u64) {
        for reason in reasons {
            let mut labels = branch_labels(branch);
            labels.push(("reason", (*reason).to_owned()));
            self.failures.get_or_create(&labels).inc();
        }
        self.consecutive_failures
            .get_or_create(&branch_labels(branch))
            .set(i64::try_from(consecutive).unwrap_or(i64::MAX));
    }

    /// The ledger served has `entries` entries.
    pub fn ledger(&self, entries: u64) {
        self.ledger_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// An upload-pack started (`+1`) or ended (`-1`).
    pub fn upload_pack(&self, delta: i64) {
        self.upload_packs.inc_by(delta);
    }

    /// A git request was answered.
    pub fn git_request(&self, kind: &'static str, code: u16) {
        self.upload_packs_total
            .get_or_create(&vec![("kind", kind.to_owned()), ("code", code.to_string())])
            .inc();
    }

    /// A webhook was answered.
    pub fn webhook(&self, code: u16) {
        self.webhooks
            .get_or_create(&vec![("code", code.to_string())])
            .inc();
    }

    /// The exposition: OpenMetrics if `openmetrics`, else the Prometheus text format 0.0.4.
    /// Ages are computed from `status` at `now`, so a scrape always sees the current age.
    pub fn encode(&self, status: &Status, now: jiff::Timestamp, openmetrics: bool) -> String {
        for b in &status.branches {
            if let Some(s) = &b.served {
                #[allow(clippy::cast_precision_loss)]
                let seconds = age(s.checkpoint_time, now) as f64;
                self.checkpoint_age
                    .get_or_create(&branch_labels(&b.branch))
                    .set(seconds);
            }
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut text, &self.registry);
        if openmetrics {
            let _ = encode_eof(&mut text);
            text
        } else {
            to_prometheus_text(&text)
        }
    }
}

/// The OpenMetrics counter lines in the 0.0.4 form: there, `# TYPE` and `# HELP` name the
/// sample (`x_total`), not the family (`x`).
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn branch_labels(branch: &str) -> Labels {
    vec![("branch", short(branch).to_owned())]
}

fn commit_labels(branch: &str, commit: &str) -> Labels {
    vec![
        ("branch", short(branch).to_owned()),
        ("commit", commit.to_owned()),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn empty_status() -> Status {
        Status {
            name: "d.git".into(),
            branches: Vec::new(),
            ledger_entries: None,
            started: jiff::Timestamp::UNIX_EPOCH,
            cycles: 0,
        }
    }

    #[test]
    fn prometheus_text_names_the_counter_samples() {
        let m = Metrics::new(&[]);
        m.failure("refs/heads/main", &["rollback"], 1);
        let status = empty_status();
        let text = m.encode(&status, jiff::Timestamp::UNIX_EPOCH, false);
        assert!(
            text.contains("# TYPE tally_mirror_verify_failures_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "tally_mirror_verify_failures_total{branch=\"main\",reason=\"rollback\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let open = m.encode(&status, jiff::Timestamp::UNIX_EPOCH, true);
        assert!(open.contains("# TYPE tally_mirror_verify_failures counter\n"));
        assert!(open.ends_with("# EOF\n"));
    }

    #[test]
    fn a_new_served_commit_replaces_the_old_info_series() {
        let m = Metrics::new(&[]);
        m.served("refs/heads/main", None, "aaa");
        m.served("refs/heads/main", Some("aaa"), "bbb");
        let status = empty_status();
        let text = m.encode(&status, jiff::Timestamp::UNIX_EPOCH, false);
        assert!(text.contains("tally_mirror_served_info{branch=\"main\",commit=\"bbb\"} 1\n"));
        assert!(!text.contains("commit=\"aaa\""), "{text}");
    }
}
