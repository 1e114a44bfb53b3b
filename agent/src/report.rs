//! What `tally verify` and `tally pull` tell a person about an approval: what was approved,
//! the ledger evidence it rests on, what is new since the last run and who signed it, and, on
//! a first run, what was trusted on first use and how to check it.
//!
//! These lines are for people (stderr); the approved commit id alone on stdout, and
//! `--json`, are for scripts.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::Approval;

/// `n` and the word in the right number: [`tally_ledger::log::count`], for any integer.
fn plural(n: impl TryInto<u64>, one: &str, many: &str) -> String {
    tally_ledger::log::count(n.try_into().unwrap_or(u64::MAX), one, many)
}

/// How long ago `seconds` were, roughly, as a person says it: `42 s ago`, `3 min ago`,
/// `5 h ago`, `2 days ago`; a time ahead of the clock is said so.
pub fn ago(seconds: i64) -> String {
    if seconds < 0 {
        let ahead = ago(seconds.saturating_neg());
        return format!(
            "{} in this machine's future",
            ahead.trim_end_matches(" ago")
        );
    }
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..172_800 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

impl Approval {
    /// The approval as lines a person reads, as of `now` (the checkpoint's age).
    pub fn report(&self, now: Timestamp) -> Vec<String> {
        let branch = self
            .branch
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.branch);
        let nothing_new = !self.first_run && self.commits.is_empty();
        let mut lines = vec![if nothing_new {
            format!(
                "nothing new: {branch} is still at {} (ledger entry #{})",
                self.commit, self.seq
            )
        } else {
            format!(
                "approved {branch} at {} (ledger entry #{})",
                self.commit, self.seq
            )
        }];
        lines.push(self.checkpoint_line(now));
        if !nothing_new {
            lines.extend(self.commits_lines());
        }
        lines.extend(self.warnings());
        lines
    }

    /// `checkpoint of 42 entries (3 new since the last run), signed 3 min ago by ledger key
    /// SHA256:...`.
    fn checkpoint_line(&self, now: Timestamp) -> String {
        let size = self.checkpoint.size();
        let new = match self.pinned_size {
            Some(pinned) if pinned == size => " (no new entries since the last run)".to_owned(),
            Some(pinned) => format!(
                " ({} since the last run)",
                plural(size.saturating_sub(pinned), "new entry", "new entries")
            ),
            None => String::new(),
        };
        let seconds = i64::try_from(self.checkpoint.time()).unwrap_or(i64::MAX);
        format!(
            "checkpoint of {}{new}, signed {} by ledger key {}",
            plural(size, "entry", "entries"),
            ago(now.as_second().saturating_sub(seconds)),
            self.ledger_key
        )
    }

    /// How many commits were checked in this run, from where, and who signed them, grouped
    /// by signer (principal and key).
    fn commits_lines(&self) -> Vec<String> {
        let short = |id: &gix::ObjectId| id.to_hex_with_len(10).to_string();
        let n = self.commits.len();
        let what = match (self.first_run, &self.previous) {
            (false, Some(p)) => format!(
                "{} since the last run ({})",
                plural(n, "new commit", "new commits"),
                short(p)
            ),
            (false, None) => plural(n, "new commit", "new commits"),
            (true, Some(p)) if n == 0 => {
                return vec![format!(
                    "no commits checked: --trust-from {} is the approved commit itself",
                    short(p)
                )];
            }
            (true, Some(p)) => format!(
                "{} checked after --trust-from {}",
                plural(n, "commit", "commits"),
                short(p)
            ),
            (true, None) => format!(
                "{} checked, down to the root",
                plural(n, "commit", "commits")
            ),
        };
        let mut signers: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for c in &self.commits {
            *signers
                .entry((c.signer().principal(), c.signer().fingerprint()))
                .or_default() += 1;
        }
        match signers.len() {
            0 => vec![what],
            1 => {
                let ((principal, key), _) = signers.iter().next().expect("one signer");
                let all = if n == 1 { "" } else { "all " };
                vec![format!("{what}, {all}signed by {principal} ({key})")]
            }
            _ => {
                let mut by_count: Vec<_> = signers.into_iter().collect();
                // Most commits first; ties in principal order (the map's).
                by_count.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
                let mut lines = vec![format!("{what}, signed by:")];
                lines.extend(by_count.into_iter().map(|((principal, key), count)| {
                    format!(
                        "  {} by {principal} ({key})",
                        plural(count, "commit", "commits")
                    )
                }));
                lines
            }
        }
    }

    /// The report's `warning:` lines: on a first run, trust on first use said plainly (what
    /// was pinned, and how to check it); none on later runs.
    pub fn warnings(&self) -> Vec<String> {
        if !self.first_run {
            return Vec::new();
        }
        let mut lines = vec![
            "warning: first run: this agent had no state, so it trusted the ledger it was served on first use (what the ledger key signed)".to_owned(),
            format!(
                "warning: pinned now in {}: ledger {}, {}, root {}; later runs accept only a ledger that extends this one",
                self.state.display(),
                self.checkpoint.origin(),
                plural(self.checkpoint.size(),
                    "entry",
                    "entries"
                ),
                crate::state::to_hex(self.checkpoint.root())
            ),
            format!(
                "warning: check out of band that `tally ledger key` on the server has fingerprint {} (ssh-keygen -lf <file>) and that `tally ledger verify` there shows this root at this size; to pin ahead of time, start from a state file copied from an agent you trust (--state)",
                self.ledger_key
            ),
        ];
        if let Some(p) = &self.previous {
            lines.push(format!(
                "warning: --trust-from {p}: the history up to that commit was not checked by this agent; it is trusted as it is"
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(ago(0), "0 s ago");
        assert_eq!(ago(59), "59 s ago");
        assert_eq!(ago(60), "1 min ago");
        assert_eq!(ago(3599), "59 min ago");
        assert_eq!(ago(3600), "1 h ago");
        assert_eq!(ago(172_799), "47 h ago");
        assert_eq!(ago(172_800), "2 days ago");
        assert_eq!(ago(-90), "1 min in this machine's future");
    }
}
