//! The revision rules: which commits a ref update brings in, and whether each is acceptable.
//!
//! One update is judged at a time. Its new commits are those reachable from the new tip and
//! not from the hidden tips (the old tip, or for a new branch the tips of the other protected
//! branches, whose history was judged when it landed). Each new commit must have exactly one
//! parent (a root only when the branch is created), carry a trusted signature, and change only
//! files the policy allows. Every violation is collected; nothing stops at the first.

use std::collections::{HashSet, VecDeque};

use gix::ObjectId;
use gix::objs::Kind;
use jiff::Timestamp;

use crate::commit::{Commit, CommitError};
use crate::files::{FileProblem, FileRules, printable};
use crate::objects::{ObjectError, Objects};
use crate::syntax::Format;
use crate::trust::{SignatureProblem, Signer, Trust};

/// One ref update as git reports it; `None` stands for the all-zero id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Full ref name (`refs/heads/main`).
    pub refname: String,
    /// Previous tip; `None` when the ref is created.
    pub old: Option<ObjectId>,
    /// New tip; `None` when the ref is deleted.
    pub new: Option<ObjectId>,
}

/// What is wrong, for one violation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// The update deletes the branch.
    Deletion,
    /// The old tip is not an ancestor of the new one.
    NonFastForward,
    /// A new commit with more than one parent.
    Merge {
        /// Number of parents.
        parents: usize,
    },
    /// A new root commit on an existing branch.
    RootCommit,
    /// The signature is not acceptable.
    Signature(SignatureProblem),
    /// A changed file breaks the file policy.
    File(FileProblem),
    /// The ref is reserved for tally itself (`refs/tally/*`).
    Reserved,
    /// The objects could not be read: the push cannot be judged.
    Unreadable(String),
    /// The commit object is malformed or ambiguous (git's fsck rules, duplicate headers).
    Malformed(CommitError),
}

/// One reason to refuse an update.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The ref being updated.
    pub refname: String,
    /// The commit at fault, if the problem is in one commit.
    pub commit: Option<ObjectId>,
    /// The file at fault, printable.
    pub path: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl Violation {
    /// What the pusher should do about it, in one line.
    pub fn fix(&self) -> String {
        match &self.problem {
            Problem::Deletion => "protected branches cannot be deleted".into(),
            Problem::Reserved => "push to another ref; refs/tally/ is written only by tally on the server".into(),
            Problem::NonFastForward => {
                "fetch and rebase onto the current tip (git pull --rebase), then push without --force".into()
            }
            Problem::Merge { .. } => {
                "rebase instead of merging: git rebase <upstream>, then re-sign with git rebase --exec 'git commit --amend --no-edit -S' <upstream>".into()
            }
            Problem::RootCommit => "rebase the commit onto the branch: git rebase <upstream>".into(),
            Problem::Signature(p) => p.fix().into(),
            Problem::File(p) => p.fix(self.path.as_deref().unwrap_or("")),
            Problem::Malformed(_) => {
                "recreate the commit with git itself (git commit --amend --no-edit -S); commits git's fsck refuses, or that git would show with another author or committer, are refused".into()
            }
            Problem::Unreadable(_) => {
                "this is a server-side problem: an administrator should run git fsck on the repository".into()
            }
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(c) = &self.commit {
            write!(f, "{} ", c.to_hex_with_len(10))?;
        }
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        match &self.problem {
            Problem::Deletion => write!(f, "{} cannot be deleted", self.refname),
            Problem::Reserved => write!(f, "{} is reserved for tally's ledger", self.refname),
            Problem::NonFastForward => write!(
                f,
                "update of {} is not a fast-forward (history would be rewritten)",
                self.refname
            ),
            Problem::Merge { parents } => write!(
                f,
                "merge commit ({parents} parents); history must be linear"
            ),
            Problem::RootCommit => write!(
                f,
                "new root commit on an existing branch; history must be linear"
            ),
            Problem::Signature(p) => write!(f, "{p}"),
            Problem::File(p) => write!(f, "{p}"),
            Problem::Unreadable(e) => write!(f, "cannot be checked: {e}"),
            Problem::Malformed(e) => write!(f, "malformed commit: {e}"),
        }
    }
}

/// A new commit that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCommit {
    /// The commit.
    pub id: ObjectId,
    /// Who signed it.
    pub signer: Signer,
}

/// The result of judging one update.
#[derive(Debug, Clone)]
pub struct Report {
    /// The update judged.
    pub update: Update,
    /// The new tip's tree, when it could be read.
    pub new_tree: Option<ObjectId>,
    /// New commits that passed, oldest first.
    pub commits: Vec<CheckedCommit>,
    /// Everything wrong, in commit order.
    pub violations: Vec<Violation>,
}

/// An update that passed every rule: the proof the next step (the ledger) requires.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The update.
    pub update: Update,
    /// The new tip's tree (`None` only if the update is a no-op deletion, which never passes).
    pub new_tree: Option<ObjectId>,
    /// Every new commit with its signer, oldest first.
    pub commits: Vec<CheckedCommit>,
}

impl Report {
    /// The verdict if nothing is wrong, else the violations.
    pub fn into_verdict(self) -> Result<Verdict, Vec<Violation>> {
        if self.violations.is_empty() {
            Ok(Verdict {
                update: self.update,
                new_tree: self.new_tree,
                commits: self.commits,
            })
        } else {
            Err(self.violations)
        }
    }
}

/// Judges updates against one set of rules.
pub struct Checker<'a> {
    objects: &'a Objects,
    trust: &'a Trust,
    files: Option<&'a FileRules>,
    now: Timestamp,
    sha256: bool,
    /// Blobs already found acceptable, with the syntax they were checked against: the same
    /// bytes under another extension must be checked again.
    good_blobs: HashSet<(ObjectId, Option<Format>)>,
    buf: Vec<u8>,
    buf2: Vec<u8>,
}

struct Change {
    path: Vec<u8>,
    mode: gix::objs::tree::EntryKind,
    id: ObjectId,
}

impl<'a> Checker<'a> {
    /// A checker reading from `objects`, trusting `trust`, enforcing `files` when given (the
    /// agent may check signatures and linearity only), with `now` as the time of the check.
    pub fn new(
        objects: &'a Objects,
        trust: &'a Trust,
        files: Option<&'a FileRules>,
        now: Timestamp,
    ) -> Checker<'a> {
        Checker {
            objects,
            trust,
            files,
            now,
            sha256: objects.hash_kind().len_in_bytes() == 32,
            good_blobs: HashSet::new(),
            buf: Vec::new(),
            buf2: Vec::new(),
        }
    }

    /// Judges one update. `hidden` are tips whose history is already trusted (for a created
    /// branch: the other protected branches).
    pub fn check(&mut self, update: &Update, hidden: &[ObjectId]) -> Report {
        let mut report = Report {
            update: update.clone(),
            new_tree: None,
            commits: Vec::new(),
            violations: Vec::new(),
        };
        let violation = |commit, path, problem| Violation {
            refname: update.refname.clone(),
            commit,
            path,
            problem,
        };
        let Some(new) = update.new else {
            report
                .violations
                .push(violation(None, None, Problem::Deletion));
            return report;
        };
        let walk = match self.new_commits(update.old, new, hidden) {
            Ok(w) => w,
            Err(e) => {
                report
                    .violations
                    .push(violation(None, None, Problem::Unreadable(e.to_string())));
                return report;
            }
        };
        if update.old.is_some() && !walk.reaches_old {
            report
                .violations
                .push(violation(None, None, Problem::NonFastForward));
        }
        self.check_commits(&walk.commits, update, &mut report);
        match self.read_commit(new) {
            Ok(c) => report.new_tree = Some(c.tree),
            // Already reported as the new commit's own violation.
            Err(Problem::Malformed(_)) if walk.commits.contains(&new) => {}
            Err(problem) => report.violations.push(violation(Some(new), None, problem)),
        }
        report
    }

    /// Checks the new commits, on several threads when there are many: each commit's checks
    /// are independent, and a big push is exactly when the pusher waits.
    fn check_commits(&mut self, ids: &[ObjectId], update: &Update, report: &mut Report) {
        const MIN_PER_THREAD: usize = 256;
        // Asked only when a second thread could get work: on Linux the answer comes from
        // the cgroup files, a tenth of a millisecond of every one-commit push.
        let workers = if ids.len() < 2 * MIN_PER_THREAD {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4)
                .min(ids.len() / MIN_PER_THREAD)
                .max(1)
        };
        if workers == 1 {
            for id in ids {
                self.check_one(*id, update, report);
            }
            return;
        }
        let chunk = ids.len().div_ceil(workers);
        let (trust, files, now) = (self.trust, self.files, self.now);
        let parts: Vec<Result<Report, ()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    let objects = self.objects.clone();
                    scope.spawn(move || {
                        let mut checker = Checker::new(&objects, trust, files, now);
                        let mut r = Report {
                            update: update.clone(),
                            new_tree: None,
                            commits: Vec::new(),
                            violations: Vec::new(),
                        };
                        for id in part {
                            checker.check_one(*id, update, &mut r);
                        }
                        r
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| ()))
                .collect()
        });
        for part in parts {
            match part {
                Ok(r) => {
                    report.commits.extend(r.commits);
                    report.violations.extend(r.violations);
                }
                Err(()) => report.violations.push(Violation {
                    refname: update.refname.clone(),
                    commit: None,
                    path: None,
                    problem: Problem::Unreadable(
                        "internal error: a checking thread panicked".into(),
                    ),
                }),
            }
        }
    }

    fn check_one(&mut self, id: ObjectId, update: &Update, report: &mut Report) {
        if let Err(problem) = self.check_commit(id, update, report) {
            report.violations.push(Violation {
                refname: update.refname.clone(),
                commit: Some(id),
                path: None,
                problem,
            });
        }
    }

    fn read_commit(&mut self, id: ObjectId) -> Result<Commit, Problem> {
        let raw = self
            .objects
            .read(&id, Kind::Commit, &mut self.buf)
            .map_err(|e| Problem::Unreadable(e.to_string()))?;
        Commit::parse(id, raw, self.sha256).map_err(Problem::Malformed)
    }

    fn parents(&mut self, id: ObjectId) -> Result<Vec<ObjectId>, ObjectError> {
        let raw = self.objects.read(&id, Kind::Commit, &mut self.buf)?;
        Ok(
            gix::objs::CommitRefIter::from_bytes(raw, self.objects.hash_kind())
                .parent_ids()
                .collect(),
        )
    }

    /// Checks one new commit; pushes file and signature problems into the report itself
    /// (there can be several), returns Err for a problem that stops the commit's checks.
    fn check_commit(
        &mut self,
        id: ObjectId,
        update: &Update,
        report: &mut Report,
    ) -> Result<(), Problem> {
        let commit = self.read_commit(id)?;
        let mut ok = true;
        let mut push = |path: Option<String>, problem: Problem, ok: &mut bool| {
            *ok = false;
            report.violations.push(Violation {
                refname: update.refname.clone(),
                commit: Some(id),
                path,
                problem,
            });
        };
        match commit.parents.len() {
            1 => {}
            0 if update.old.is_none() => {}
            0 => push(None, Problem::RootCommit, &mut ok),
            n => push(None, Problem::Merge { parents: n }, &mut ok),
        }
        let signer = match self.trust.check(&commit, self.now) {
            Ok(s) => Some(s),
            Err(p) => {
                push(None, Problem::Signature(p), &mut ok);
                None
            }
        };
        if let Some(files) = self.files {
            let base = match commit.parents.first() {
                Some(p) => Some(self.read_commit(*p)?.tree),
                None => None,
            };
            let changes = self
                .diff(base, commit.tree)
                .map_err(|e| Problem::Unreadable(e.to_string()))?;
            for change in changes {
                if let Err((path, problem)) = self.check_file(files, &change) {
                    push(Some(path), Problem::File(problem), &mut ok);
                }
            }
        }
        if let (true, Some(signer)) = (ok, signer) {
            report.commits.push(CheckedCommit { id, signer });
        }
        Ok(())
    }

    fn check_file(
        &mut self,
        files: &FileRules,
        change: &Change,
    ) -> Result<(), (String, FileProblem)> {
        use gix::objs::tree::EntryKind;
        let path = FileRules::check_path(&change.path)
            .map_err(|p| (printable(&change.path), p))?
            .to_owned();
        let fail = |p: FileProblem| (path.clone(), p);
        match change.mode {
            EntryKind::Link => return Err(fail(FileProblem::Symlink)),
            EntryKind::Commit => return Err(fail(FileProblem::Submodule)),
            _ => {}
        }
        if !files.allows_path(&path) {
            return Err(fail(FileProblem::NotAllowed));
        }
        if change.mode == EntryKind::BlobExecutable {
            return Err(fail(FileProblem::Executable));
        }
        let format = Format::for_path(&path);
        if self.good_blobs.contains(&(change.id, format)) {
            return Ok(());
        }
        let (_, size) = self.objects.header(&change.id).map_err(|e| {
            fail(FileProblem::Unreadable {
                error: e.to_string(),
            })
        })?;
        if size > files.max_size {
            return Err(fail(FileProblem::TooLarge {
                size,
                max: files.max_size,
            }));
        }
        if format.is_some() {
            let bytes = self
                .objects
                .read(&change.id, Kind::Blob, &mut self.buf2)
                .map_err(|e| {
                    fail(FileProblem::Unreadable {
                        error: e.to_string(),
                    })
                })?;
            files.check_content(&path, bytes).map_err(fail)?;
        }
        self.good_blobs.insert((change.id, format));
        Ok(())
    }

    /// Lists added or modified non-tree entries between two trees, without recursion (a
    /// hostile push can nest trees arbitrarily deep).
    fn diff(&mut self, old: Option<ObjectId>, new: ObjectId) -> Result<Vec<Change>, ObjectError> {
        use gix::objs::tree::EntryKind;
        let hash = self.objects.hash_kind();
        let mut out = Vec::new();
        let mut stack = vec![(old, new, Vec::<u8>::new())];
        while let Some((old, new, prefix)) = stack.pop() {
            if old == Some(new) {
                continue;
            }
            let mut before = std::collections::HashMap::new();
            if let Some(old) = old {
                let raw = self.objects.read(&old, Kind::Tree, &mut self.buf)?;
                for entry in gix::objs::TreeRefIter::from_bytes(raw, hash) {
                    let entry = entry.map_err(|e| ObjectError::Read {
                        id: old,
                        message: e.to_string(),
                    })?;
                    before.insert(
                        entry.filename.to_vec(),
                        (entry.mode.kind(), entry.oid.to_owned()),
                    );
                }
            }
            let raw = self.objects.read(&new, Kind::Tree, &mut self.buf)?;
            for entry in gix::objs::TreeRefIter::from_bytes(raw, hash) {
                let entry = entry.map_err(|e| ObjectError::Read {
                    id: new,
                    message: e.to_string(),
                })?;
                let kind = entry.mode.kind();
                let id = entry.oid.to_owned();
                let prior = before.get(AsRef::<[u8]>::as_ref(entry.filename));
                if prior == Some(&(kind, id)) {
                    continue;
                }
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(entry.filename);
                if kind == EntryKind::Tree {
                    let old_tree = prior.and_then(|(k, i)| (*k == EntryKind::Tree).then_some(*i));
                    stack.push((old_tree, id, path));
                } else {
                    out.push(Change {
                        path,
                        mode: kind,
                        id,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The new commits, oldest first, and whether the old tip is among their ancestors.
    fn new_commits(
        &mut self,
        old: Option<ObjectId>,
        new: ObjectId,
        hidden: &[ObjectId],
    ) -> Result<Walk, ObjectError> {
        // Fast path, the normal case: a chain of single-parent commits down to the old tip
        // (or to a root, for a new branch with nothing hidden).
        if hidden.is_empty() || old.is_some() {
            let mut chain = Vec::new();
            let mut cur = new;
            loop {
                if Some(cur) == old {
                    chain.reverse();
                    return Ok(Walk {
                        commits: chain,
                        reaches_old: true,
                    });
                }
                let parents = self.parents(cur)?;
                chain.push(cur);
                match parents.as_slice() {
                    [p] => cur = *p,
                    [] if old.is_none() => {
                        chain.reverse();
                        return Ok(Walk {
                            commits: chain,
                            reaches_old: false,
                        });
                    }
                    _ => break,
                }
            }
        }
        // General case: everything reachable from `new` that is not reachable from the
        // hidden tips and the old tip.
        let mut hidden_set = HashSet::new();
        let mut queue: VecDeque<ObjectId> = hidden.iter().copied().chain(old).collect();
        while let Some(id) = queue.pop_front() {
            if !hidden_set.insert(id) {
                continue;
            }
            queue.extend(self.parents(id)?);
        }
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let mut reaches_old = false;
        let mut queue = VecDeque::from([new]);
        while let Some(id) = queue.pop_front() {
            if Some(id) == old {
                reaches_old = true;
            }
            if hidden_set.contains(&id) || !seen.insert(id) {
                continue;
            }
            order.push(id);
            queue.extend(self.parents(id)?);
        }
        order.reverse();
        Ok(Walk {
            commits: order,
            reaches_old,
        })
    }
}

struct Walk {
    commits: Vec<ObjectId>,
    reaches_old: bool,
}
