//! The `reference-transaction` hook: every ref update in the repository passes through it,
//! whatever command makes it (githooks(5)).
//!
//! `prepared` (refs locked; a non-zero exit aborts the transaction): protected moves must
//! match a verdict left by `pre-receive`, otherwise they are refused and recorded as
//! `rejected`; matching ones are appended to the ledger and published. `committed`: nothing
//! left to do. `aborted`: record that the appended moves did not happen.

use std::io::{BufRead, Write};
use std::path::Path;

use gix::ObjectId;
use jiff::Timestamp;
use tally_verify::revision::Update;

use crate::config::Policy;
use crate::output::Reporter;
use crate::pusher::Pusher;
use crate::record::{self, Paths, Prepared};

/// The transaction states git reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Git 2.54's `preparing`: refs not locked yet; nothing to do.
    Preparing,
    /// Refs locked; a non-zero exit aborts.
    Prepared,
    /// The updates happened.
    Committed,
    /// The updates did not happen.
    Aborted,
}

impl State {
    /// The states with no work: `prepared` appends and publishes, and the next `prepared`
    /// drops the in-flight markers of moves that landed. Every form of the installed hook
    /// ends these before tally does anything (`tally hook`, the shell form of
    /// [`crate::init::hook_script`], and `tally-shim`, whose own copy a test compares).
    pub const IDLE: [State; 2] = [State::Preparing, State::Committed];

    /// Every state, in the order git reports them.
    pub const ALL: [State; 4] = [
        State::Preparing,
        State::Prepared,
        State::Committed,
        State::Aborted,
    ];

    /// Parses the hook's argument.
    pub fn parse(arg: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == arg)
    }

    /// What tally does in this state, for `tally hook reference-transaction --help`.
    pub fn what_tally_does(self) -> &'static str {
        match self {
            State::Preparing => "refs not locked yet (git 2.54 and later): nothing to do",
            State::Prepared => {
                "refs locked: every protected move must carry this push's verdict and start \
                 where the ledger has the branch; it is recorded and published, any other \
                 move is refused (a refusal aborts the whole transaction)"
            }
            State::Committed => "the updates happened: nothing to do",
            State::Aborted => {
                "the updates did not happen: entries recorded at `prepared` are cancelled by \
                 an `aborted` entry"
            }
        }
    }

    /// The hook's argument for this state.
    pub fn name(self) -> &'static str {
        match self {
            State::Preparing => "preparing",
            State::Prepared => "prepared",
            State::Committed => "committed",
            State::Aborted => "aborted",
        }
    }

    /// Whether the state has no work (see [`State::IDLE`]).
    pub fn is_idle(self) -> bool {
        State::IDLE.contains(&self)
    }
}

/// Reads the updates tally cares about: protected branches and the names `crate::refs`
/// rules on (`refs/tally/*`, replace refs, names that shadow a protected branch), with the
/// no-op updates (old = new) dropped. Other lines, whatever their form (symbolic ref
/// values, other refs), pass untouched.
fn relevant(input: &[u8], config: &Policy, hash_len: usize) -> Result<Vec<Update>, String> {
    let text = std::str::from_utf8(input).map_err(|_| "hook input is not UTF-8".to_owned())?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.splitn(3, ' ');
        let (Some(old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed hook input line {}", i + 1));
        };
        if !config.is_protected(refname) && crate::refs::name_rule(config, refname).is_none() {
            // A symbolic ref made to point at a protected branch would let pushes to it move
            // that branch under another name. HEAD (of the repository or of a namespace) is
            // one no push can name.
            if let Some(target) = new.strip_prefix("ref:")
                && crate::refs::without_namespaces(refname).starts_with("refs/")
                && config.is_protected(target.trim())
            {
                return Err(format!(
                    "{refname} would become a symbolic ref to the protected branch {}, which pushes to it would move under another name",
                    target.trim()
                ));
            }
            continue;
        }
        let id = |hex: &str| -> Result<Option<ObjectId>, String> {
            if hex.len() != hash_len * 2 {
                return Err(format!(
                    "hook input line {}: {refname} value {:?} is not an object id (symbolic refs cannot point a protected branch elsewhere)",
                    i + 1,
                    crate::output::ascii(hex)
                ));
            }
            let id = ObjectId::from_hex(hex.as_bytes()).map_err(|e| e.to_string())?;
            Ok((!id.is_null()).then_some(id))
        };
        let (old, new) = (id(old)?, id(new)?);
        // The same id on both sides is a no-op (git's own housekeeping). Zero on both sides
        // is not: it is a deletion whose caller gave no expected old value
        // (`git update-ref -d <ref>`).
        if old.is_some() && old == new {
            continue;
        }
        out.push(Update {
            refname: refname.to_owned(),
            old,
            new,
        });
    }
    Ok(out)
}

/// Drops the deletions that `git pack-refs` (and so `git gc`, `git maintenance`) makes after
/// it has written refs into `packed-refs`: it then deletes each loose ref, which the hook sees
/// as `<old> <zero> <ref>`, though the ref keeps its value from `packed-refs`. Such a deletion
/// is told from a real one by git's own locking (refs/files-backend.c): a real deletion of a
/// packed ref holds `packed-refs.lock` to rewrite that file, while pruning runs after packing
/// released it; and the ref must be in `packed-refs` at exactly the old value. (The packing
/// step itself writes each ref's current value again, with no expected old value: `prepared`
/// drops those no-ops.)
fn drop_pruning(git_dir: &Path, updates: Vec<Update>) -> Vec<Update> {
    if !updates.iter().any(|u| u.new.is_none() && u.old.is_some()) {
        return updates;
    }
    if git_dir.join("packed-refs.lock").exists() {
        return updates;
    }
    let Ok(packed) = std::fs::read(git_dir.join("packed-refs")) else {
        return updates;
    };
    let packed_value = |refname: &str| -> Option<ObjectId> {
        packed.split(|b| *b == b'\n').find_map(|line| {
            let (hex, name) = line.split_at(line.iter().position(|b| *b == b' ')?);
            (name.get(1..) == Some(refname.as_bytes()))
                .then(|| ObjectId::from_hex(hex).ok())
                .flatten()
        })
    };
    updates
        .into_iter()
        .filter(|u| !(u.new.is_none() && u.old.is_some() && packed_value(&u.refname) == u.old))
        .collect()
}

/// Runs the hook for `state`. Returns false to abort a `prepared` transaction (git ignores
/// the exit status of the other states).
pub fn run(
    git_dir: &Path,
    state: State,
    input: &mut impl BufRead,
    out: &mut impl Write,
    now: Timestamp,
) -> bool {
    let mut reporter = Reporter::from_env(out);
    let bytes = match crate::input::read_all(input) {
        Ok(b) => b,
        Err(e) => {
            reporter.error(&format!("ref update refused: {e}"));
            return false;
        }
    };
    if state.is_idle() {
        return true;
    }
    let config = match Policy::load(git_dir) {
        Ok(c) => c,
        Err(e) => {
            // Without a policy nothing can be judged: refuse protected-looking moves only
            // when the state can still stop them.
            if state == State::Prepared {
                reporter.error(&format!("ref update refused: {e}"));
                return false;
            }
            return true;
        }
    };
    let repo = match tally_verify::repository::open(git_dir) {
        Ok(r) => r,
        Err(e) => {
            reporter.error(&format!("ref update refused: {e}"));
            return state != State::Prepared;
        }
    };
    let updates = match relevant(&bytes, &config, repo.object_hash().len_in_bytes()) {
        Ok(u) => Ok(drop_pruning(git_dir, u)),
        Err(e) => Err(e),
    };
    let updates = match updates {
        Ok(u) => u,
        Err(e) => {
            // `prepared` said so already when it refused; `aborted` follows with the same
            // input.
            if state == State::Prepared {
                reporter.error(&format!("ref update refused: {e}"));
            }
            return state != State::Prepared;
        }
    };
    let paths = Paths::new(git_dir);
    let pusher = Pusher::from_env();
    match state {
        State::Preparing => true,
        State::Prepared => {
            if updates.is_empty() {
                return true;
            }
            let current = |name: &str| -> Option<ObjectId> {
                let mut r = repo.try_find_reference(name).ok()??;
                r.peel_to_id().ok().map(|id| id.detach())
            };
            // A shared ledger is opened once, here: its in-flight markers are in it.
            let shared = match config.file.ledger {
                Some(_) => match record::open_for(&paths, &config) {
                    Ok(opened) => Some(opened),
                    Err(e) => {
                        reporter.error(&format!("ref update refused: cannot open the ledger: {e}"));
                        return false;
                    }
                },
                None => None,
            };
            // Transactions whose git died between prepared and committed are settled first.
            if let Err(e) = record::reconcile(
                &paths,
                &config,
                &pusher,
                now,
                current,
                shared.as_ref().map(|(store, _)| store),
            ) {
                reporter.error(&format!(
                    "ref update refused: cannot settle earlier transactions: {e}"
                ));
                return false;
            }
            // A caller that gave no expected old value (`git update-ref <ref> <new>`) moves the
            // ref from wherever it is: record where that was.
            let updates: Vec<Update> = updates
                .into_iter()
                .map(|mut u| {
                    if u.old.is_none() {
                        u.old = current(&u.refname);
                    }
                    u
                })
                // Writing a ref's current value again moves nothing (`git refs migrate`
                // rewrites every ref that way).
                .filter(|u| u.old.is_none() || u.old != u.new)
                .collect();
            match record::prepared(&paths, &config, &pusher, &updates, now, shared) {
                Ok(Prepared::Recorded(store)) => {
                    // Published now rather than in `committed`: the entries are durable, and
                    // the hook script spares `committed` a process. An agent that fetches in
                    // the instant before git moves the ref sees an entry whose commit is not on
                    // the branch yet, and stays where it was until its next run.
                    if let Some(store) = store
                        && let Err(e) = crate::publish::publish_with(&repo, &store, now)
                    {
                        reporter.error(&format!("warning: {e}"));
                    }
                    true
                }
                Ok(Prepared::Refused(reasons)) => {
                    for (_, reason) in &reasons {
                        reporter.error(&format!("ref update refused: {reason}"));
                    }
                    reporter.error("protected branches move only through a push that tally accepted; the attempt is recorded in the ledger");
                    // Published by the `aborted` step that follows: while this transaction
                    // holds its locks, publishing could collide with them.
                    false
                }
                Err(e) => {
                    reporter.error(&format!(
                        "ref update refused: cannot record it in the ledger: {e}"
                    ));
                    false
                }
            }
        }
        State::Committed => true,
        State::Aborted => {
            if let Err(e) = record::aborted(&paths, &config, &pusher, &updates, now) {
                reporter.error(&format!(
                    "cannot record the aborted ref update in the ledger: {e}; run `tally ledger verify`"
                ));
            }
            crate::publish::publish_or_warn(git_dir, &paths, now, &mut reporter);
            true
        }
    }
}

/// The `update` hook: git runs it once per ref of a push, with the ref's name as the client
/// sent it and its old and new values (zeros for none), after `pre-receive`, and relays its
/// output to the pusher. Returns whether the ref may be updated. See
/// [`record::update_hook`] for why this hook exists beside `prepared`.
pub fn update(
    git_dir: &Path,
    refname: &str,
    old: &str,
    new: &str,
    out: &mut impl Write,
    now: Timestamp,
) -> bool {
    let mut reporter = Reporter::from_env(out);
    let result = (|| -> Result<Vec<String>, String> {
        let config = Policy::load(git_dir).map_err(|e| e.to_string())?;
        // Under GIT_NAMESPACE git names the ref as the client sent it; the ref, the verdict
        // and the ledger use the namespaced name (as in pre-receive).
        let refname = match std::env::var_os("GIT_NAMESPACE") {
            Some(ns) => format!(
                "{}{refname}",
                crate::refs::namespace_prefix(&ns.to_string_lossy())
            ),
            None => refname.to_owned(),
        };
        if !config.is_protected(&refname) && crate::refs::name_rule(&config, &refname).is_none() {
            return Ok(Vec::new());
        }
        let id = |hex: &str| -> Result<Option<ObjectId>, String> {
            let id = ObjectId::from_hex(hex.as_bytes()).map_err(|_| {
                format!(
                    "{refname}: {:?} is not an object id",
                    crate::output::ascii(hex)
                )
            })?;
            Ok((!id.is_null()).then_some(id))
        };
        let update = Update {
            refname: refname.clone(),
            old: id(old)?,
            new: id(new)?,
        };
        if update.old.is_some() && update.old == update.new {
            return Ok(Vec::new());
        }
        record::update_hook(
            &Paths::new(git_dir),
            &config,
            &Pusher::from_env(),
            &update,
            now,
        )
        .map_err(|e| format!("cannot check it against the ledger: {e}"))
    })();
    match result {
        Ok(reasons) if reasons.is_empty() => true,
        Ok(reasons) => {
            // Recorded: publish, so agents and auditors see the attempt. No ref lock is
            // held yet (git locks refs when the transaction is prepared, after this hook).
            crate::publish::publish_or_warn(git_dir, &Paths::new(git_dir), now, &mut reporter);
            for reason in &reasons {
                reporter.error(&format!("push refused: {reason}"));
            }
            reporter.error("protected branches move only through a push that tally accepted; the attempt is recorded in the ledger");
            false
        }
        Err(e) => {
            reporter.server_problem(&e.to_string());
            false
        }
    }
}

/// `post-receive` (installed only on platforms without `reference-transaction`): records the
/// protected moves that landed. Its exit status is ignored by git; problems are printed.
pub fn post_receive(
    git_dir: &Path,
    input: &mut impl BufRead,
    out: &mut impl Write,
    now: Timestamp,
) {
    let mut reporter = Reporter::from_env(out);
    let bytes = match crate::input::read_all(input) {
        Ok(b) => b,
        Err(e) => {
            reporter.error(&format!(
                "warning: the push landed but could not be recorded in the ledger: {e}; run `tally ledger verify`"
            ));
            return;
        }
    };
    let result = Policy::load(git_dir)
        .map_err(|e| e.to_string())
        .and_then(|policy| {
            let hash_len = tally_verify::repository::open(git_dir)
                .map_err(|e| e.to_string())?
                .object_hash()
                .len_in_bytes();
            let updates: Vec<Update> = relevant(&bytes, &policy, hash_len)?
                .into_iter()
                .filter(|u| policy.is_protected(&u.refname))
                .collect();
            let paths = Paths::new(git_dir);
            let appended =
                record::post_receive(&paths, &policy, &Pusher::from_env(), &updates, now)
                    .map_err(|e| e.to_string())?;
            if appended {
                crate::publish::publish_or_warn(git_dir, &paths, now, &mut reporter);
            }
            Ok(())
        });
    if let Err(e) = result {
        reporter.error(&format!(
            "warning: the push landed but could not be recorded in the ledger: {e}; run `tally ledger verify`"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tally-shim` is a freestanding program that cannot call this crate: its list of idle
    /// states must be this one.
    #[test]
    fn the_shim_ends_exactly_the_idle_states() {
        let shim = include_str!("../../shim/src/main.rs");
        let line = shim
            .lines()
            .find(|l| l.contains("matches!(arg(3),"))
            .expect("the shim's state test");
        let mut named: Vec<&str> = line
            .split("b\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        named.sort_unstable();
        let mut idle: Vec<&str> = State::IDLE.iter().map(|s| s.name()).collect();
        idle.sort_unstable();
        assert_eq!(named, idle, "{line}");
        for name in ["preparing", "prepared", "committed", "aborted"] {
            assert_eq!(State::parse(name).map(State::name), Some(name));
        }
        assert_eq!(State::parse("Prepared"), None);
    }
}
