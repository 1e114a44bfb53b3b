//! The `pre-receive` hook: judge every protected ref update of a push before git applies it.
//!
//! githooks(5): stdin carries one `<old> SP <new> SP <ref> LF` line per ref; a non-zero exit
//! refuses the whole push; the pushed objects are still in quarantine. Whatever the hook
//! prints reaches the pusher as `remote:` lines, so every line is plain ASCII.

use std::io::{BufRead, Write};
use std::path::Path;

use gix::ObjectId;
use jiff::Timestamp;
use tally_verify::objects::Objects;
use tally_verify::refusal::{self, Lineage};
use tally_verify::revision::{Checker, Problem, Update, Verdict, Violation};

use crate::config::Config;
use crate::output::Reporter;
use crate::pusher::Pusher;
use crate::record::{self, Paths};

/// Most kinds of problem printed for one push; the rest are counted.
const MAX_GROUPS: usize = 100;

/// Why the hook refuses without judging the push: the administrator's problem, not the
/// pusher's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// stdin is not what git sends.
    #[error("malformed hook input line {line}: {reason}")]
    Input {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// stdin could not be read whole.
    #[error(transparent)]
    Read(#[from] crate::input::InputError),
    /// The repository cannot be opened.
    #[error("cannot open repository {path}: {message}")]
    Repository {
        /// The git directory.
        path: String,
        /// Why.
        message: String,
    },
    /// The repository's format is one tally cannot read whole.
    #[error(transparent)]
    Format(#[from] tally_verify::repository::RepositoryError),
    /// The policy cannot be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The object store cannot be opened.
    #[error(transparent)]
    Objects(#[from] tally_verify::objects::ObjectError),
    /// The ledger cannot be opened.
    #[error("ledger: {0}")]
    Ledger(#[from] tally_ledger::StoreError),
    /// The ledger cannot be read.
    #[error(transparent)]
    Record(#[from] record::RecordError),
    /// The ledger's location cannot be known or reached.
    #[error("ledger: {0}")]
    Location(Box<crate::ledger::LocationError>),
}

impl From<crate::ledger::LocationError> for HookError {
    fn from(e: crate::ledger::LocationError) -> HookError {
        HookError::Location(Box::new(e))
    }
}

/// What the hook decided.
#[derive(Debug)]
pub enum Decision {
    /// Every update passed; the verdicts of the protected ones, for the ledger.
    Accept(Vec<Verdict>),
    /// At least one update broke a rule: every violation, and the updates' lineage that the
    /// refusal's display needs to name ranges and base commits.
    Refuse(Vec<Violation>, Lineage),
}

/// Parses git's hook input. Each line must be exactly `<old> <new> <ref>` with full hex ids of
/// the repository's hash length.
pub fn parse_input(input: &[u8], hash_len: usize) -> Result<Vec<Update>, HookError> {
    let text = std::str::from_utf8(input).map_err(|e| HookError::Input {
        line: input[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1,
        reason: "not UTF-8".into(),
    })?;
    let mut updates = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: String| HookError::Input {
            line: i + 1,
            reason,
        };
        let mut parts = line.split(' ');
        let (Some(old), Some(new), Some(refname), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!(
                "expected \"<old> <new> <ref>\", got {:?}",
                crate::output::ascii(line)
            )));
        };
        let id = |hex: &str, which: &str| -> Result<Option<ObjectId>, HookError> {
            if hex.len() != hash_len * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "{which} id {:?} is not a {}-digit hex object id",
                    crate::output::ascii(hex),
                    hash_len * 2
                )));
            }
            let id = ObjectId::from_hex(hex.as_bytes()).map_err(|e| bad(e.to_string()))?;
            Ok((!id.is_null()).then_some(id))
        };
        let old = id(old, "old")?;
        let new = id(new, "new")?;
        if !refname.starts_with("refs/") || refname.bytes().any(|b| b.is_ascii_control()) {
            return Err(bad(format!(
                "ref {:?} is not a full ref name",
                crate::output::ascii(refname)
            )));
        }
        if old.is_none() && new.is_none() {
            return Err(bad("old and new ids are both zero".into()));
        }
        updates.push(Update {
            refname: refname.to_owned(),
            old,
            new,
        });
    }
    Ok(updates)
}

/// Judges a push. Refs under `refs/tally/` are refused for everyone: they belong to tally.
pub fn decide(
    repo: &gix::Repository,
    config: &Config,
    updates: &[Update],
    now: Timestamp,
) -> Result<Decision, HookError> {
    let git_dir = repo.git_dir();
    // Ref names no one may create: tally's own, replace refs, names that shadow a protected
    // branch (crate::refs).
    let named: Vec<Violation> = updates
        .iter()
        .filter_map(|u| {
            crate::refs::judge(config, u)
                .or_else(|| alias_of_protected(repo, config, &u.refname))
                .map(|problem| Violation {
                    refname: u.refname.clone(),
                    commit: None,
                    path: None,
                    problem,
                })
        })
        .collect();
    let protected: Vec<&Update> = updates
        .iter()
        .filter(|u| config.is_protected(&u.refname))
        .collect();
    if protected.is_empty() && named.is_empty() {
        return Ok(Decision::Accept(Vec::new()));
    }
    let objects = Objects::from_env(git_dir, repo.object_hash())?;
    let mut checker = Checker::new(&objects, &config.trust, Some(&config.files), now);
    let mut verdicts = Vec::new();
    let mut violations = named;
    let mut lineage = Lineage::default();
    let paths = Paths::new(git_dir);
    let current = |name: &str| -> Option<ObjectId> {
        let mut r = repo.try_find_reference(name).ok()??;
        r.peel_to_id().ok().map(|id| id.detach())
    };
    let ledger = if protected.is_empty() {
        None
    } else {
        // Transactions whose git died between prepared and committed are settled first, as
        // `prepared` does, so that their entries do not look like moves outside tally.
        let store = crate::ledger::open_for(&paths, config)?;
        record::reconcile(
            &paths,
            config,
            &Pusher::from_env(),
            now,
            current,
            Some(&store),
        )?;
        Some(store)
    };
    for update in protected {
        if let Some(ledger) = &ledger
            && record::catch_up(&paths, ledger, update)?
        {
            // A replica catching up to what the shared ledger records: replication, judged
            // when the move was first pushed (see `record::catch_up`).
            continue;
        }
        if let Some(ledger) = &ledger
            && let Some(gap) = record::off_ledger(&paths, ledger, update)?
        {
            // Judging the commits too would only add noise: nothing moves on from here until
            // an administrator looks, or until the pusher fetches what another push landed.
            violations.push(lost_race(update, gap, current(&update.refname)));
            continue;
        }
        let hidden = match (&ledger, update.old) {
            (Some(ledger), None) => recorded_tips(repo, ledger, config, &update.refname)?,
            _ => Vec::new(),
        };
        let report = checker.check(update, &hidden);
        lineage.extend(report.lineage());
        match report.into_verdict() {
            Ok(v) => verdicts.push(v),
            Err(v) => violations.extend(v),
        }
    }
    Ok(if violations.is_empty() {
        Decision::Accept(verdicts)
    } else {
        Decision::Refuse(violations, lineage)
    })
}

/// `gap` (the update's old value is not where the ledger records the ref), unless the ref is
/// not at that old value either but where the ledger records it: then the push lost a race
/// for the ref to another push, which landed since the pusher fetched, and the refusal says
/// so instead of calling for an administrator. (`prepared` needs no such care: git checks the
/// old value under the ref's lock before it runs.)
fn lost_race(update: &Update, gap: Violation, actual: Option<ObjectId>) -> Violation {
    let landed = match &gap.problem {
        Problem::OffLedger { recorded, .. } => *recorded == actual,
        Problem::Behind { recorded, .. } => Some(*recorded) == actual,
        _ => false,
    };
    if !landed || actual == update.old {
        return gap;
    }
    Violation {
        problem: Problem::Concurrent,
        ..gap
    }
}

/// A push to a symbolic ref moves the ref it points to: one that points (through any chain)
/// at a protected branch is that branch under another name, and the push is refused as
/// such, rather than judged as an unprotected ref and then refused by the ref transaction
/// for a move the pusher never named.
fn alias_of_protected(
    repo: &gix::Repository,
    config: &Config,
    refname: &str,
) -> Option<tally_verify::revision::Problem> {
    if config.is_protected(refname) {
        return None;
    }
    let mut name = refname.to_owned();
    for _ in 0..5 {
        let r = repo.try_find_reference(name.as_str()).ok()??;
        match r.target() {
            gix::refs::TargetRef::Symbolic(target) => name = target.as_bstr().to_string(),
            gix::refs::TargetRef::Object(_) => break,
        }
        if config.is_protected(&name) {
            return Some(tally_verify::revision::Problem::Alias { branch: name });
        }
    }
    None
}

/// Opens the repository a hook runs in, ignoring the environment's git configuration.
pub fn open_repo(git_dir: &Path) -> Result<gix::Repository, HookError> {
    Ok(tally_verify::repository::open(git_dir)?)
}

/// Where the ledger puts the protected branches other than `refname`: their history was
/// judged when it landed, so a new branch started from one of them is checked from there on.
/// The ledger's record, not the branches' current tips: a tip that moved outside tally was
/// judged by no one. Unprotected branches are not trusted: anyone may have pushed anything.
pub(crate) fn recorded_tips(
    repo: &gix::Repository,
    ledger: &tally_ledger::Store,
    config: &Config,
    refname: &str,
) -> Result<Vec<ObjectId>, HookError> {
    let mut tips = Vec::new();
    for (name, at) in ledger.positions()? {
        if name == refname || !config.is_protected(&name) {
            continue;
        }
        let Some(id) = at
            .commit
            .as_deref()
            .and_then(|b| ObjectId::try_from(b).ok())
        else {
            continue;
        };
        if repo.find_commit(id).is_ok() {
            tips.push(id);
        }
    }
    Ok(tips)
}

/// Runs the hook: reads git's input, judges, leaves the verdicts for the ref transaction or
/// records the refusal, and prints the outcome for the pusher. Returns whether the push is
/// accepted; any error refuses it.
pub fn run(git_dir: &Path, input: &mut impl BufRead, out: &mut impl Write, now: Timestamp) -> bool {
    let mut reporter = Reporter::from_env(out);
    let mut updates = Vec::new();
    let mut config = None;
    let outcome = (|| {
        let bytes = crate::input::read_all(input)?;
        let repo = open_repo(git_dir)?;
        updates = parse_input(&bytes, repo.object_hash().len_in_bytes())?;
        // Under GIT_NAMESPACE, git hands pre-receive the names the client sent; the refs
        // (and the reference-transaction hook) are the namespaced ones, so those are what
        // is judged and recorded.
        if let Some(ns) = std::env::var_os("GIT_NAMESPACE") {
            let prefix = crate::refs::namespace_prefix(&ns.to_string_lossy());
            for u in &mut updates {
                u.refname = format!("{prefix}{}", u.refname);
            }
        }
        let loaded = config.insert(Config::load(git_dir)?);
        decide(&repo, loaded, &updates, now)
    })();
    let paths = Paths::new(git_dir);
    let pusher = Pusher::from_env();
    match outcome {
        Ok(Decision::Accept(verdicts)) => {
            if let (false, Some(config)) = (verdicts.is_empty(), &config)
                && let Err(e) = record::leave_verdicts(&paths, &verdicts, &pusher, config, now)
            {
                reporter.server_problem(&format!("cannot record the verdict: {e}"));
                return false;
            }
            for v in &verdicts {
                let signers: std::collections::BTreeSet<&str> =
                    v.commits().iter().map(|c| c.signer().principal()).collect();
                reporter.line(&format!(
                    "passed tally's checks: {} on {} ({} new commit{}{})",
                    v.update()
                        .new
                        .map(|n| n.to_hex_with_len(10).to_string())
                        .unwrap_or_default(),
                    v.update().refname,
                    v.commits().len(),
                    if v.commits().len() == 1 { "" } else { "s" },
                    if signers.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", signed by {}",
                            signers.into_iter().collect::<Vec<_>>().join(", ")
                        )
                    }
                ));
            }
            true
        }
        Ok(Decision::Refuse(violations, lineage)) => {
            report_violations(&mut reporter, &violations, &lineage);
            if let Some(config) = &config {
                record_refusal(
                    git_dir,
                    config,
                    &pusher,
                    &updates,
                    &violations,
                    now,
                    &mut reporter,
                );
            }
            false
        }
        Err(e) => {
            reporter.server_problem(&e.to_string());
            false
        }
    }
}

/// Appends one `rejected` entry per refused ref, with every reason, then publishes. A failure
/// here cannot make the push pass; it is reported for the administrator.
fn record_refusal(
    git_dir: &Path,
    config: &Config,
    pusher: &Pusher,
    updates: &[Update],
    violations: &[Violation],
    now: Timestamp,
    reporter: &mut Reporter<impl Write>,
) {
    let mut refused: Vec<(Update, Vec<String>)> = Vec::new();
    for v in violations {
        let reason = v.to_string();
        match refused.iter_mut().find(|(u, _)| u.refname == v.refname) {
            Some((_, reasons)) => reasons.push(reason),
            None => {
                let update = updates
                    .iter()
                    .find(|u| u.refname == v.refname)
                    .cloned()
                    .unwrap_or_else(|| Update {
                        refname: v.refname.clone(),
                        old: None,
                        new: None,
                    });
                refused.push((update, vec![reason]));
            }
        }
    }
    let paths = Paths::new(git_dir);
    match record::append_rejected(&paths, config, pusher, &refused, now) {
        Ok(_) => crate::publish::publish_or_warn(git_dir, &paths, now, reporter),
        Err(e) => reporter.error(&format!(
            "warning: the refusal could not be recorded in the ledger: {e}"
        )),
    }
}

/// Prints the refusal: a count of every violation (the reasons the ledger records), then
/// one line per kind of problem ([`refusal::group`]: 30 unsigned commits are one line, as a
/// range), each with its one fix on its own line(s).
fn report_violations(
    reporter: &mut Reporter<impl Write>,
    violations: &[Violation],
    lineage: &Lineage,
) {
    let mut refs: Vec<&str> = violations.iter().map(|v| v.refname.as_str()).collect();
    refs.dedup();
    let commits: std::collections::HashSet<ObjectId> =
        violations.iter().filter_map(|v| v.commit).collect();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    reporter.error(&format!(
        "push refused: {} problem{} on {}{}",
        violations.len(),
        plural(violations.len()),
        refs.join(", "),
        if commits.is_empty() {
            String::new()
        } else {
            format!(", in {} commit{}", commits.len(), plural(commits.len()))
        }
    ));
    let groups = refusal::group(violations);
    for group in groups.iter().take(MAX_GROUPS) {
        reporter.error(&group.headline(lineage));
        reporter.error_block("  fix: ", &group.fix(lineage));
    }
    if groups.len() > MAX_GROUPS {
        let hidden: usize = groups[MAX_GROUPS..]
            .iter()
            .map(|g| g.violations().len())
            .sum();
        reporter.error(&format!(
            "... and {hidden} more problem{} of {} other kinds not shown",
            plural(hidden),
            groups.len() - MAX_GROUPS
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn parses_updates_creations_and_deletions() {
        let input =
            format!("{A} {B} refs/heads/main\n{Z} {A} refs/heads/new\n{B} {Z} refs/heads/old\n");
        let u = parse_input(input.as_bytes(), 20).unwrap();
        assert_eq!(u.len(), 3);
        assert!(u[0].old.is_some() && u[0].new.is_some());
        assert!(u[1].old.is_none());
        assert!(u[2].new.is_none());
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for (input, line) in [
            (format!("{A} {B}\n"), 1),
            (
                format!("{A} {B} refs/heads/main\n{A} xyz refs/heads/main\n"),
                2,
            ),
            (format!("{A} {B} main\n"), 1),
            (format!("{A} {B} refs/heads/main extra\n"), 1),
            (format!("{Z} {Z} refs/heads/main\n"), 1),
            (format!("{A}{A} {B} refs/heads/main\n"), 1),
        ] {
            match parse_input(input.as_bytes(), 20) {
                Err(HookError::Input { line: l, .. }) => assert_eq!(l, line, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_input(b"\xff\xfe", 20),
            Err(HookError::Input { line: 1, .. })
        ));
    }

    #[test]
    fn empty_input_is_no_updates() {
        assert!(parse_input(b"", 20).unwrap().is_empty());
    }
}
