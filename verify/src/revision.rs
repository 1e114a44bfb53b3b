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
use gix::objs::tree::EntryKind;
use jiff::Timestamp;

use crate::commit::{Commit, CommitError};
use crate::files::{FileProblem, FileRules, printable};
use crate::objects::{ObjectError, Objects};
use crate::refusal::{Lineage, Rewrite};
use crate::syntax::Format;
use crate::tree::{Change, TreeProblem};
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
    /// A changed file breaks the file policy or the `.gitattributes` rule.
    File(FileProblem),
    /// A new tree object breaks git's rules for tree entries.
    Tree(TreeProblem),
    /// The ref is reserved for tally itself (`refs/tally/*`).
    Reserved,
    /// A `refs/replace/*` ref: it would make git show other content under approved ids.
    ReplaceRef,
    /// The ref's name shadows, or is confusable with, a protected branch.
    Shadows {
        /// The protected branch.
        branch: String,
    },
    /// The ref is a symbolic ref to a protected branch: a push to it moves that branch
    /// under another name.
    Alias {
        /// The protected branch.
        branch: String,
    },
    /// The objects could not be read: the push cannot be judged.
    Unreadable(String),
    /// Another push is moving the ref right now.
    Concurrent,
    /// With a ledger that several replicas of the repository share: the ref here is at an
    /// earlier accepted commit than the one the ledger records, which a push through another
    /// replica moved it to. This replica has not caught up yet; the ref did not move outside
    /// tally.
    Behind {
        /// Where the ledger records the ref.
        recorded: ObjectId,
        /// The entry that recorded it.
        seq: u64,
    },
    /// The ref's old value is not where the ledger last recorded it: it moved outside tally,
    /// and moving on from there would leave a gap no entry covers.
    OffLedger {
        /// Where the ledger last recorded the ref (`None`: absent).
        recorded: Option<ObjectId>,
        /// The entry that recorded it.
        seq: Option<u64>,
        /// Where the ref is.
        actual: Option<ObjectId>,
    },
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
    /// What the pusher should do about it, in one line; `rewrite` names the commits a
    /// history-rewriting fix must reach ([`crate::refusal`] works it out for a group of
    /// violations).
    pub fn fix(&self, rewrite: &Rewrite) -> String {
        match &self.problem {
            Problem::Deletion => "protected branches cannot be deleted".into(),
            Problem::Reserved => "push to another ref; refs/tally/ is written only by tally on the server".into(),
            Problem::ReplaceRef => "do not push replace refs: make the change as a new signed commit on the branch".into(),
            Problem::Alias { branch } => format!("push to {branch} itself"),
            Problem::Shadows { branch } => format!(
                "use a name that git cannot confuse with the protected branch {branch} (for a tag, e.g. {branch}-v1)"
            ),
            Problem::NonFastForward => {
                "fetch and rebase onto the current tip (git pull --rebase), then push without --force".into()
            }
            // A rebase onto the branch's tip drops merge commits and replays the rest
            // linearly; the --exec re-signs what it replays.
            Problem::Merge { .. } => format!(
                "rebase instead of merging, re-signing as you go: {}",
                rewrite.rebase("git commit --amend --no-edit -S")
            ),
            Problem::RootCommit => format!(
                "rebase the commits onto the branch, re-signing as you go: {}",
                rewrite.rebase("git commit --amend --no-edit -S")
            ),
            Problem::Signature(p) => p.fix(rewrite),
            Problem::File(p) => rewrite.and_edit(p.fix(self.path.as_deref().unwrap_or(""))),
            Problem::Tree(p) => rewrite.and_edit(p.fix(self.path.as_deref().unwrap_or(""))),
            Problem::Malformed(_) => format!(
                "recreate the commit with git itself ({}); commits git's fsck refuses, or that git would show with another author or committer, are refused",
                rewrite.amend("git commit --amend --no-edit -S")
            ),
            Problem::Unreadable(_) => {
                "this is a server-side problem: an administrator should run git fsck on the repository".into()
            }
            Problem::Concurrent => {
                "fetch, rebase onto the new tip if needed (git pull --rebase), and push again".into()
            }
            Problem::Behind { .. } => {
                "push again once this server has caught up with the other replicas (it fetches the branch from them), rebasing onto the new tip if needed; nothing needs re-baselining".into()
            }
            Problem::OffLedger { .. } => format!(
                "this is for an administrator: find out how the branch got there (tally ledger verify, the server's reflog), then either put it back or re-baseline it deliberately with `tally ledger adopt --repo <repository> --branch {}`, which checks its history like a push and records the adoption",
                self.refname.strip_prefix("refs/heads/").unwrap_or(&self.refname)
            ),
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
            Problem::ReplaceRef => write!(
                f,
                "{} is a replace ref, which would make git show other content under an approved commit id",
                self.refname
            ),
            Problem::Alias { branch } => write!(
                f,
                "{} is a symbolic ref to the protected branch {branch} on the server",
                self.refname
            ),
            Problem::Shadows { branch } => write!(
                f,
                "{} would shadow the protected branch {branch} for git commands that take a short name",
                self.refname
            ),
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
            Problem::Tree(p) => write!(f, "{p}"),
            Problem::Unreadable(e) => write!(f, "cannot be checked: {e}"),
            Problem::Concurrent => write!(f, "another push is updating {} right now", self.refname),
            Problem::Behind { recorded, seq } => write!(
                f,
                "{} on this server is behind the shared ledger, which records it at {recorded} (entry {seq}), pushed through another replica that this one has not caught up with yet",
                self.refname
            ),
            Problem::OffLedger {
                recorded,
                seq,
                actual,
            } => {
                let id = |id: &Option<ObjectId>| {
                    id.map_or_else(|| "nothing (absent)".to_owned(), |i| i.to_string())
                };
                write!(
                    f,
                    "{} is at {} but the ledger last recorded it at {}{}: it moved outside tally, and no push can move on from there until an administrator re-baselines it",
                    self.refname,
                    id(actual),
                    id(recorded),
                    seq.map(|s| format!(" (entry {s})")).unwrap_or_default()
                )
            }
            Problem::Malformed(e) => write!(f, "malformed commit: {e}"),
        }
    }
}

/// A new commit that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCommit {
    id: ObjectId,
    signer: Signer,
}

impl CheckedCommit {
    /// The commit.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Who signed it.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

/// The result of judging one update.
#[derive(Debug, Clone)]
///
/// Made only by [`Checker::check`]; its fields are private, so that a [`Verdict`] (the proof
/// the ledger requires) can only come from a check that found nothing wrong.
pub struct Report {
    update: Update,
    new_tree: Option<ObjectId>,
    commits: Vec<CheckedCommit>,
    violations: Vec<Violation>,
    lineage: Lineage,
}

/// An update that passed every rule: the proof the next step (the ledger) requires.
#[derive(Debug, Clone)]
///
/// Only [`Report::into_verdict`] makes one (private fields, no other constructor).
pub struct Verdict {
    update: Update,
    new_tree: Option<ObjectId>,
    commits: Vec<CheckedCommit>,
}

impl Verdict {
    /// The update.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// The new tip's tree (`None` only if the update is a no-op deletion, which never passes).
    pub fn new_tree(&self) -> Option<ObjectId> {
        self.new_tree
    }

    /// Every new commit with its signer, oldest first.
    pub fn commits(&self) -> &[CheckedCommit] {
        &self.commits
    }

    /// The new commits, taken out of the verdict.
    pub fn into_commits(self) -> Vec<CheckedCommit> {
        self.commits
    }
}

impl Report {
    /// The update judged.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// Everything wrong, in commit order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The update's tips and its new commits' parents, for showing the violations grouped
    /// ([`crate::refusal`]).
    pub fn lineage(&self) -> &Lineage {
        &self.lineage
    }

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

/// Judges a whole tree by the rules that keep a checkout byte for byte equal to it: git's
/// tree-entry rules on every tree object ([`crate::tree::check`]), every entry's object of the
/// type its mode says, and the `.gitattributes` rule on every `.gitattributes` file
/// ([`crate::attributes`]). The hook applies the same rules to what each new commit changes;
/// an agent calls this on the tree it is about to deploy, since its own commit checks do not
/// read trees. `refname` and `commit` only label the violations.
pub fn check_checkout(
    objects: &Objects,
    refname: &str,
    commit: ObjectId,
    tree: ObjectId,
) -> Result<Vec<Violation>, ObjectError> {
    let mut buf = Vec::new();
    let diff = crate::tree::diff(objects, None, tree, &mut buf)?;
    let violation = |path: &[u8], problem| Violation {
        refname: refname.to_owned(),
        commit: Some(commit),
        path: Some(printable(path)),
        problem,
    };
    let mut out: Vec<Violation> = diff
        .problems
        .iter()
        .map(|(path, p)| violation(path, Problem::Tree(p.clone())))
        .collect();
    for change in &diff.changes {
        if change.kind == EntryKind::Commit {
            continue;
        }
        let (kind, _) = objects.header(&change.id)?;
        if kind != Kind::Blob {
            let problem = TreeProblem::WrongObjectType {
                expected: Kind::Blob,
                found: kind,
            };
            out.push(violation(&change.path, Problem::Tree(problem)));
            continue;
        }
        if change.kind != EntryKind::Link && FileRules::is_attributes_file(&change.path) {
            let bytes = objects.read(&change.id, Kind::Blob, &mut buf)?;
            for p in FileRules::check_attributes(bytes) {
                out.push(violation(&change.path, Problem::File(p)));
            }
        }
    }
    Ok(out)
}

/// Judges updates against one set of rules.
pub struct Checker<'a> {
    objects: &'a Objects,
    trust: &'a Trust,
    files: Option<&'a FileRules>,
    now: Timestamp,
    sha256: bool,
    /// Blobs already found acceptable, with the syntax they were checked against and whether
    /// as a `.gitattributes` file: the same bytes under another name must be checked again.
    good_blobs: HashSet<(ObjectId, Option<Format>, bool)>,
    buf: Vec<u8>,
    buf2: Vec<u8>,
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
            lineage: Lineage::of(update),
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
        for (id, parent) in walk.commits.iter().zip(&walk.parents) {
            report.lineage.add_commit(*id, *parent);
        }
        for id in &walk.merges {
            report.lineage.add_merge(*id);
        }
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
                            lineage: Lineage::default(),
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
            let diff = crate::tree::diff(self.objects, base, commit.tree, &mut self.buf)
                .map_err(|e| Problem::Unreadable(e.to_string()))?;
            for (path, problem) in diff.problems {
                push(Some(printable(&path)), Problem::Tree(problem), &mut ok);
            }
            for change in diff.changes {
                for (path, problem) in self.check_file(files, &change) {
                    push(Some(path), problem, &mut ok);
                }
            }
        }
        if let (true, Some(signer)) = (ok, signer) {
            report.commits.push(CheckedCommit { id, signer });
        }
        Ok(())
    }

    /// Judges one added or modified file; every problem found, with the printable path.
    fn check_file(&mut self, files: &FileRules, change: &Change) -> Vec<(String, Problem)> {
        let path = match FileRules::check_path(&change.path) {
            Ok(path) => path.to_owned(),
            Err(p) => return vec![(printable(&change.path), Problem::File(p))],
        };
        match self.check_file_at(files, change, &path) {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| (path.clone(), p)).collect(),
        }
    }

    fn check_file_at(
        &mut self,
        files: &FileRules,
        change: &Change,
        path: &str,
    ) -> Result<(), Vec<Problem>> {
        let fail = |p: FileProblem| vec![Problem::File(p)];
        match change.kind {
            EntryKind::Link => return Err(fail(FileProblem::Symlink)),
            EntryKind::Commit => return Err(fail(FileProblem::Submodule)),
            _ => {}
        }
        if !files.allows_path(path) {
            return Err(fail(FileProblem::NotAllowed));
        }
        if change.kind == EntryKind::BlobExecutable {
            return Err(fail(FileProblem::Executable));
        }
        let format = Format::for_path(path);
        let attributes = FileRules::is_attributes_file(path.as_bytes());
        if self.good_blobs.contains(&(change.id, format, attributes)) {
            return Ok(());
        }
        let unreadable = |e: ObjectError| {
            fail(FileProblem::Unreadable {
                error: e.to_string(),
            })
        };
        let (kind, size) = self.objects.header(&change.id).map_err(unreadable)?;
        if kind != Kind::Blob {
            return Err(vec![Problem::Tree(TreeProblem::WrongObjectType {
                expected: Kind::Blob,
                found: kind,
            })]);
        }
        if size > files.max_size {
            return Err(fail(FileProblem::TooLarge {
                size,
                max: files.max_size,
            }));
        }
        if format.is_some() || attributes {
            let bytes = self
                .objects
                .read(&change.id, Kind::Blob, &mut self.buf2)
                .map_err(unreadable)?;
            files.check_content(path, bytes).map_err(fail)?;
            if attributes {
                let lines = FileRules::check_attributes(bytes);
                if !lines.is_empty() {
                    return Err(lines.into_iter().map(Problem::File).collect());
                }
            }
        }
        self.good_blobs.insert((change.id, format, attributes));
        Ok(())
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
                    return Ok(Walk::chain(chain, old, true));
                }
                let parents = self.parents(cur)?;
                chain.push(cur);
                match parents.as_slice() {
                    [p] => cur = *p,
                    [] if old.is_none() => return Ok(Walk::chain(chain, None, false)),
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
        let mut firsts = Vec::new();
        let mut merges = Vec::new();
        let mut reaches_old = false;
        let mut queue = VecDeque::from([new]);
        while let Some(id) = queue.pop_front() {
            if Some(id) == old {
                reaches_old = true;
            }
            if hidden_set.contains(&id) || !seen.insert(id) {
                continue;
            }
            let parents = self.parents(id)?;
            order.push(id);
            firsts.push(parents.first().copied());
            if parents.len() > 1 {
                merges.push(id);
            }
            queue.extend(parents);
        }
        order.reverse();
        firsts.reverse();
        Ok(Walk {
            commits: order,
            parents: firsts,
            merges,
            reaches_old,
        })
    }
}

struct Walk {
    commits: Vec<ObjectId>,
    /// Each commit's first parent (`None`: a root), aligned with `commits`.
    parents: Vec<Option<ObjectId>>,
    /// The commits with more than one parent.
    merges: Vec<ObjectId>,
    reaches_old: bool,
}

impl Walk {
    /// A walk down a chain of single-parent commits, collected newest first, ending at
    /// `bottom` (the old tip) or at a root (`None`).
    fn chain(mut newest_first: Vec<ObjectId>, bottom: Option<ObjectId>, reaches_old: bool) -> Walk {
        newest_first.reverse();
        let parents = std::iter::once(bottom)
            .chain(newest_first.iter().map(|id| Some(*id)))
            .take(newest_first.len())
            .collect();
        Walk {
            commits: newest_first,
            parents,
            merges: Vec::new(),
            reaches_old,
        }
    }
}
