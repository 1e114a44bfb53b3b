//! How `tally log` shows entries: one line per entry for people, or the JSON array scripts
//! read. Both sources of entries (the server's store, an agent clone's `refs/tally/ledger`)
//! print through [`LogWriter`], so the two cannot drift.
//!
//! The text line of an entry, columns separated by two spaces:
//!
//! ```text
//! seq 12  2026-12-06 14:03:11Z  accepted  main  3f9c2a1b7e..8d04e6c2aa  500 commits, all signed by alice@example.com (SHA256:...)  pushed by alice
//! ```
//!
//! seq (padded to the widest seq printed, which is the first: newest first), time (UTC),
//! kind (padded to the longest kind), the branch (short for `refs/heads/`), what moved, a
//! summary (signers of the new commits, the first refusal reason, what an entry cancels), and
//! who pushed. A push of 500 commits is one line; `--commits` lists them (and every reason)
//! under their entry. The JSON is [`JsonEntry`] with the leaf hash, unchanged from the first
//! release (a documented format).

use std::io::{self, Write};

use crate::entry::{EntryView, JsonEntry, Kind};
use crate::hex;
use crate::merkle::Hash;

/// How many hex digits of an object id the text shows.
const SHORT_ID: usize = 10;

/// Returns `"1 entry"`, `"2 entries"`: a count with its noun in the right number.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Which entries `tally log` shows: `--branch`, `--kind`, `--limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only entries of this full ref name.
    pub refname: Option<String>,
    /// Only entries of this kind.
    pub kind: Option<Kind>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl Selection {
    /// The selection of `--branch` (short, `main`, or a full ref name), `--kind`, `--limit`.
    pub fn new(branch: Option<&str>, kind: Option<Kind>, limit: Option<usize>) -> Selection {
        Selection {
            refname: branch.map(|b| {
                if b.starts_with("refs/") {
                    b.to_owned()
                } else {
                    format!("refs/heads/{b}")
                }
            }),
            kind,
            limit,
        }
    }

    /// Whether `entry` is of the ref and kind asked for (the limit is the caller's).
    pub fn matches(&self, entry: &EntryView<'_>) -> bool {
        self.refname.as_deref().is_none_or(|r| r == entry.refname)
            && self.kind.is_none_or(|k| k == entry.kind)
    }

    /// The options as typed (`--branch prod --kind rejected`); empty for none.
    pub fn describe(&self) -> String {
        let mut words = Vec::new();
        if let Some(r) = &self.refname {
            words.push(format!("--branch {}", branch(r)));
        }
        if let Some(k) = self.kind {
            words.push(format!("--kind {}", k.as_str()));
        }
        if let Some(n) = self.limit {
            words.push(format!("--limit {n}"));
        }
        words.join(" ")
    }
}

/// What `tally log` shows and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// The JSON array instead of text.
    pub json: bool,
    /// Text only: every commit and every reason under its entry.
    pub commits: bool,
}

/// Writes entries as `tally log` prints them, newest first, then [`LogWriter::finish`].
pub struct LogWriter<W: Write> {
    out: W,
    style: Style,
    written: u64,
    seq_width: usize,
}

impl<W: Write> LogWriter<W> {
    /// A writer of `style` to `out`.
    pub fn new(out: W, style: Style) -> LogWriter<W> {
        LogWriter {
            out,
            style,
            written: 0,
            seq_width: 0,
        }
    }

    /// Writes one entry.
    pub fn entry(&mut self, entry: &EntryView<'_>, leaf_hash: &Hash) -> io::Result<()> {
        if self.style.json {
            let open = if self.written == 0 { "[" } else { "," };
            let row = JsonEntry {
                entry,
                leaf_hash: Some(leaf_hash),
            };
            let text = serde_json::to_string(&row).map_err(io::Error::other)?;
            write!(self.out, "{open}\n{text}")?;
        } else {
            if self.written == 0 {
                self.seq_width = entry.seq.to_string().len();
            }
            writeln!(self.out, "{}", line(entry, self.seq_width))?;
            if self.style.commits {
                for detail in details(entry) {
                    writeln!(self.out, "    {detail}")?;
                }
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Ends the output. When no entry was written, the text says so, naming `filter` (what
    /// the user asked for, e.g. `--branch prod`; empty for none); the JSON is an empty array.
    pub fn finish(mut self, filter: &str) -> io::Result<()> {
        if self.style.json {
            if self.written == 0 {
                write!(self.out, "[")?;
            }
            writeln!(self.out, "\n]")?;
        } else if self.written == 0 {
            if filter.is_empty() {
                writeln!(self.out, "the ledger has no entries")?;
            } else {
                writeln!(self.out, "no entries match {filter}")?;
            }
        }
        self.out.flush()
    }
}

fn short(id: Option<&[u8]>) -> String {
    match id {
        Some(bytes) => {
            let h = hex::encode(bytes);
            h[..SHORT_ID.min(h.len())].to_owned()
        }
        None => "0".repeat(SHORT_ID),
    }
}

/// A ref as people name it: `main` for `refs/heads/main`, other refs in full.
fn branch(refname: &str) -> &str {
    refname.strip_prefix("refs/heads/").unwrap_or(refname)
}

/// The one line of an entry.
fn line(e: &EntryView<'_>, seq_width: usize) -> String {
    let kind_width = Kind::ALL
        .iter()
        .map(|k| k.as_str().len())
        .max()
        .unwrap_or(0);
    let mut columns = vec![
        format!("seq {:<seq_width$}", e.seq),
        e.time.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        format!("{:<kind_width$}", e.kind.as_str()),
    ];
    let moved = format!("{}..{}", short(e.old), short(e.new));
    match e.kind {
        Kind::PolicyChange if e.refname.is_empty() => {
            let digest = hex::encode(&e.policy_digest);
            columns.push(format!("policy {}", &digest[..12]));
        }
        Kind::PolicyChange => {
            columns.push(branch(e.refname).to_owned());
            columns.push(format!("baseline {}", short(e.new)));
        }
        _ => {
            columns.push(branch(e.refname).to_owned());
            columns.push(moved);
        }
    }
    let summary = summary(e);
    if !summary.is_empty() {
        columns.push(summary);
    }
    if !e.pusher.is_empty() {
        columns.push(format!("pushed by {}", e.pusher));
    }
    columns.join("  ").trim_end().to_owned()
}

/// What the entry says beyond the move: signers, the first reason (why a push was refused,
/// why the policy changed, why a branch was adopted), what it cancels.
fn summary(e: &EntryView<'_>) -> String {
    let first_reason = || match e.reasons.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
    };
    match e.kind {
        Kind::Rejected => first_reason(),
        Kind::Aborted => match e.aborts {
            Some(seq) => format!("cancels seq {seq}"),
            None => String::new(),
        },
        Kind::Adopted => {
            let reason = first_reason();
            if reason.is_empty() {
                "re-baselined (not a push)".to_owned()
            } else {
                format!("re-baselined (not a push): {reason}")
            }
        }
        Kind::PolicyChange => first_reason(),
        _ if e.new.is_none() => "deleted".to_owned(),
        _ => signers(&e.commits),
    }
}

/// `500 commits, all signed by a (SHA256:..)`, or the count of each signer, most first.
fn signers(commits: &[(&[u8], &str, &str)]) -> String {
    let mut by: Vec<((&str, &str), u64)> = Vec::new();
    for &(_, principal, fingerprint) in commits {
        match by
            .iter_mut()
            .find(|(who, _)| *who == (principal, fingerprint))
        {
            Some((_, n)) => *n += 1,
            None => by.push(((principal, fingerprint), 1)),
        }
    }
    // Stable: equal counts keep the order of first appearance.
    by.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let total = count(commits.len() as u64, "commit", "commits");
    match by.as_slice() {
        [] => "no new commits".to_owned(),
        [((principal, fingerprint), 1)] => {
            format!("{total}, signed by {principal} ({fingerprint})")
        }
        [((principal, fingerprint), _)] => {
            format!("{total}, all signed by {principal} ({fingerprint})")
        }
        several => {
            let each: Vec<String> = several
                .iter()
                .map(|((principal, fingerprint), n)| format!("{n} by {principal} ({fingerprint})"))
                .collect();
            format!("{total}: {}", each.join(", "))
        }
    }
}

/// The lines `--commits` adds under an entry: each commit with its signer, each reason.
fn details(e: &EntryView<'_>) -> Vec<String> {
    let mut lines: Vec<String> = e
        .commits
        .iter()
        .map(|&(commit, principal, fingerprint)| {
            format!("commit {}  {principal}  {fingerprint}", short(Some(commit)))
        })
        .collect();
    // The summary shows the first reason; with --commits every one is listed.
    lines.extend(e.reasons.iter().map(|r| format!("reason: {r}")));
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn entry(kind: Kind, commits: &[(&str, &str)], reasons: &[&str]) -> Entry {
        Entry {
            seq: 12,
            kind,
            time: "2026-12-06T14:03:11Z".parse().unwrap(),
            repository: "repo".into(),
            refname: "refs/heads/main".into(),
            old: Some(vec![0x3f; 20]),
            new: Some(vec![0x8d; 20]),
            new_tree: Some(vec![1; 20]),
            commits: commits
                .iter()
                .enumerate()
                .map(|(i, (principal, fingerprint))| crate::entry::CommitSigner {
                    commit: vec![i as u8; 20],
                    principal: (*principal).into(),
                    fingerprint: (*fingerprint).into(),
                })
                .collect(),
            pusher: "alice".into(),
            policy_digest: [0xab; 32],
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            aborts: None,
            prev_hash: [0; 32],
        }
    }

    fn text(entries: &[Entry], style: Style, filter: &str) -> String {
        let mut out = Vec::new();
        let mut w = LogWriter::new(&mut out, style);
        for e in entries {
            w.entry(&e.view(), &[7; 32]).unwrap();
        }
        w.finish(filter).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_use_the_right_number() {
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(2, "commit", "commits"), "2 commits");
    }

    #[test]
    fn a_push_of_many_commits_is_one_line() {
        let alice = ("alice@example.com", "SHA256:a");
        let bob = ("bob@example.com", "SHA256:b");
        let mut many = vec![alice; 480];
        many.extend([bob; 20]);
        let out = text(&[entry(Kind::Accepted, &many, &[])], Style::default(), "");
        assert_eq!(
            out,
            "seq 12  2026-12-06 14:03:11Z  accepted       main  3f3f3f3f3f..8d8d8d8d8d  500 commits: 480 by alice@example.com (SHA256:a), 20 by bob@example.com (SHA256:b)  pushed by alice\n"
        );
        let out = text(
            &[entry(Kind::Accepted, &[alice; 3], &[])],
            Style::default(),
            "",
        );
        assert!(out.contains("  3 commits, all signed by alice@example.com (SHA256:a)  "));
        let out = text(
            &[entry(Kind::Accepted, &[alice], &[])],
            Style::default(),
            "",
        );
        assert!(out.contains("  1 commit, signed by alice@example.com (SHA256:a)  "));
    }

    #[test]
    fn a_refusal_shows_its_first_reason_and_how_many_more() {
        let e = entry(Kind::Rejected, &[], &["one", "two", "three"]);
        let out = text(std::slice::from_ref(&e), Style::default(), "");
        assert!(out.contains("  one (+2 more)  pushed by alice\n"), "{out}");
        let out = text(
            &[e],
            Style {
                commits: true,
                ..Style::default()
            },
            "",
        );
        assert!(out.ends_with("\n    reason: one\n    reason: two\n    reason: three\n"));
    }

    #[test]
    fn nothing_to_show_says_so_naming_the_filter() {
        assert_eq!(
            text(&[], Style::default(), "--branch prod"),
            "no entries match --branch prod\n"
        );
        let json = Style {
            json: true,
            ..Style::default()
        };
        assert_eq!(text(&[], json, "--branch prod"), "[\n]\n");
    }

    #[test]
    fn a_selection_matches_ref_and_kind_and_describes_itself() {
        let e = entry(Kind::Accepted, &[], &[]);
        let all = Selection::default();
        assert!(all.matches(&e.view()));
        assert_eq!(all.describe(), "");
        let main = Selection::new(Some("main"), Some(Kind::Accepted), Some(3));
        assert!(main.matches(&e.view()));
        assert_eq!(main.describe(), "--branch main --kind accepted --limit 3");
        assert!(!Selection::new(Some("prod"), None, None).matches(&e.view()));
        assert!(
            !Selection::new(Some("refs/heads/main"), Some(Kind::Rejected), None).matches(&e.view())
        );
    }

    #[test]
    fn seqs_are_aligned_to_the_newest() {
        let mut newer = entry(Kind::Rejected, &[], &["no"]);
        newer.seq = 100;
        let mut older = newer.clone();
        older.seq = 9;
        let out = text(&[newer, older], Style::default(), "");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("seq 100  2026"), "{out}");
        assert!(lines[1].starts_with("seq 9    2026"), "{out}");
    }
}
