//! How a refusal is shown to a person: the violations of one kind are one problem, naming its
//! commits (as git ranges where they follow each other) with one fix that names the real
//! commit to rebase onto.
//!
//! Only the display is grouped. The violations stay complete, one per commit and file, and
//! the ledger records each one as a reason of the `rejected` entry: that is the evidence. The
//! hook's refusal (`remote: tally: ...`) and the agent's both show these groups.

use std::collections::HashMap;

use gix::ObjectId;

use crate::revision::{Problem, Update, Violation};

/// Most commit ranges named in one group's headline; the rest are counted.
const MAX_RUNS: usize = 8;

/// Which commits a fix that rewrites history must reach, so that the fix can name the
/// command with the real commit in it instead of a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Only the branch's new tip: an amend does it.
    Tip,
    /// Every commit after this one (an abbreviated id, or `<id>~1`): a rebase onto it.
    Onto(String),
    /// The history down to its root: `git rebase --root`.
    Root,
}

impl Rewrite {
    /// `amend` (a `git commit --amend ...` command) applied to every commit that needs it:
    /// itself for the tip, else run by a rebase after each replayed commit.
    pub fn amend(&self, amend: &str) -> String {
        match self {
            Rewrite::Tip => amend.to_owned(),
            _ => self.rebase(amend),
        }
    }

    /// A rebase that runs `exec` after each replayed commit. For the tip alone it rebases
    /// onto the branch's upstream (`@{upstream}`), since a merge or a root is not fixed by an
    /// amend.
    pub fn rebase(&self, exec: &str) -> String {
        match self {
            Rewrite::Tip => format!("git rebase --exec '{exec}' @{{upstream}}"),
            Rewrite::Onto(base) => format!("git rebase --exec '{exec}' {base}"),
            Rewrite::Root => format!("git rebase --root --exec '{exec}'"),
        }
    }

    /// A fix of a file, plus, when the commit at fault is not the tip, how to reach it: tally
    /// checks every new commit, so a later commit that repairs the file does not help.
    pub fn and_edit(&self, fix: String) -> String {
        match self {
            Rewrite::Tip => fix,
            Rewrite::Onto(base) => format!(
                "{fix}; make the change in the commit at fault, not on top: git rebase -i {base}, mark it edit"
            ),
            Rewrite::Root => format!(
                "{fix}; make the change in the commit at fault, not on top: git rebase -i --root, mark it edit"
            ),
        }
    }
}

/// What a display needs besides the violations: each judged update's old and new tip, and
/// each new commit's first parent, to write a run of commits as a git range and to name the
/// commit a fix rebases onto.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// New commit -> its first parent (`None`: a root commit).
    parents: HashMap<ObjectId, Option<ObjectId>>,
    /// The new commits with more than one parent: a range through one would also name the
    /// commits it merged, so a merge never joins a run.
    merges: std::collections::HashSet<ObjectId>,
    /// Ref -> (old tip, new tip).
    tips: HashMap<String, (Option<ObjectId>, Option<ObjectId>)>,
}

impl Lineage {
    /// The lineage of one update, before its commits are walked.
    pub(crate) fn of(update: &Update) -> Lineage {
        let mut lineage = Lineage::default();
        lineage
            .tips
            .insert(update.refname.clone(), (update.old, update.new));
        lineage
    }

    /// Records a new commit and its first parent.
    pub(crate) fn add_commit(&mut self, id: ObjectId, parent: Option<ObjectId>) {
        self.parents.insert(id, parent);
    }

    /// Records that a new commit is a merge.
    pub(crate) fn add_merge(&mut self, id: ObjectId) {
        self.merges.insert(id);
    }

    /// Whether `child` follows `parent` in a run: its first parent, and neither is a merge.
    fn follows(&self, child: ObjectId, parent: ObjectId) -> bool {
        self.parent(child) == Some(Some(parent))
            && !self.merges.contains(&child)
            && !self.merges.contains(&parent)
    }

    /// Adds another update's lineage (a push updates several refs).
    pub fn extend(&mut self, other: &Lineage) {
        self.parents
            .extend(other.parents.iter().map(|(k, v)| (*k, *v)));
        self.tips
            .extend(other.tips.iter().map(|(k, v)| (k.clone(), *v)));
    }

    /// The first parent of a new commit: `Some(None)` for a root, `None` if unknown.
    fn parent(&self, id: ObjectId) -> Option<Option<ObjectId>> {
        self.parents.get(&id).copied()
    }
}

/// Violations of one kind: one ref, one file (or none), one problem, in one or more commits.
#[derive(Debug, Clone)]
pub struct Group<'v> {
    violations: Vec<&'v Violation>,
    commits: Vec<ObjectId>,
    message: String,
}

/// Groups `violations` by kind (same ref, file and problem text), in the order each kind
/// first appears; within a group the commits keep their order (oldest first, as the checker
/// reports them).
pub fn group(violations: &[Violation]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for v in violations {
        let message = Violation {
            commit: None,
            ..v.clone()
        }
        .to_string();
        let key = (v.refname.clone(), message);
        let at = match index.get(&key) {
            Some(at) => *at,
            None => {
                groups.push(Group {
                    violations: Vec::new(),
                    commits: Vec::new(),
                    message: key.1.clone(),
                });
                index.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        let g = &mut groups[at];
        g.violations.push(v);
        // A commit's violations are reported together, so a repeat is always the last one.
        if let Some(c) = v.commit
            && g.commits.last() != Some(&c)
        {
            g.commits.push(c);
        }
    }
    groups
}

/// The short form of a commit id that tally's messages use.
fn short(id: ObjectId) -> String {
    id.to_hex_with_len(10).to_string()
}

impl<'v> Group<'v> {
    /// Every violation of the group.
    pub fn violations(&self) -> &[&'v Violation] {
        &self.violations
    }

    /// The commits at fault, oldest first (empty for a problem of the ref itself).
    pub fn commits(&self) -> &[ObjectId] {
        &self.commits
    }

    /// The ref.
    pub fn refname(&self) -> &'v str {
        self.first().map_or("", |v| v.refname.as_str())
    }

    /// The problem (the same in every violation of the group).
    pub fn problem(&self) -> Option<&'v Problem> {
        self.first().map(|v| &v.problem)
    }

    /// What is wrong, without the commits: `deploy.sh: file type not allowed by the policy`.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn first(&self) -> Option<&'v Violation> {
        self.violations.first().copied()
    }

    /// The commits, as a person reads them: `1a2b3c4d5e`, or `30 commits 0a1b2c3d4e..9f8e7d6c5b`
    /// (git's range: the commits after the first id up to the second), or several ranges and
    /// ids; `None` when the problem is in no commit.
    pub fn subject(&self, lineage: &Lineage) -> Option<String> {
        match self.commits.as_slice() {
            [] => None,
            [one] => Some(short(*one)),
            all => {
                let runs = self.runs(lineage);
                let mut text = format!("{} commits ", all.len());
                text.push_str(
                    &runs
                        .iter()
                        .take(MAX_RUNS)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                if runs.len() > MAX_RUNS {
                    text.push_str(&format!(" and {} more", runs.len() - MAX_RUNS));
                }
                Some(text)
            }
        }
    }

    /// The group in one line: `1a2b3c4d5e commit is not signed` for one commit (as the
    /// violation itself reads), `30 commits 0a1b2c3d4e..9f8e7d6c5b: commit is not signed`.
    pub fn headline(&self, lineage: &Lineage) -> String {
        match (self.commits.len(), self.subject(lineage)) {
            (_, None) => self.message.clone(),
            (1, Some(id)) => format!("{id} {}", self.message),
            (_, Some(subject)) => format!("{subject}: {}", self.message),
        }
    }

    /// The commits written as runs: a run of commits each the first parent of the next, none
    /// of them a merge, is `<parent of the first>..<last>` (exactly those commits, as `git
    /// rev-list` reads the range); a single commit is its id.
    fn runs(&self, lineage: &Lineage) -> Vec<String> {
        let c = &self.commits;
        let mut out = Vec::new();
        let mut i = 0;
        while i < c.len() {
            let start = i;
            while i + 1 < c.len() && lineage.follows(c[i + 1], c[i]) {
                i += 1;
            }
            let (first, last) = (c[start], c[i]);
            out.push(if start == i {
                short(first)
            } else {
                match lineage.parent(first) {
                    Some(Some(base)) => format!("{}..{}", short(base), short(last)),
                    Some(None) => format!("from the root {} to {}", short(first), short(last)),
                    None => format!("{} to {}", short(first), short(last)),
                }
            });
            i += 1;
        }
        out
    }

    /// Which commits the group's fix must rewrite: the tip alone, or everything after the
    /// oldest commit's parent (for a merge or a second root: after the branch's old tip, onto
    /// which the history is to be rebased).
    pub fn rewrite(&self, lineage: &Lineage) -> Rewrite {
        let Some(&oldest) = self.commits.first() else {
            return Rewrite::Tip;
        };
        let (old, new) = lineage
            .tips
            .get(self.refname())
            .copied()
            .unwrap_or((None, None));
        let rebases_onto_branch = matches!(
            self.problem(),
            Some(Problem::Merge { .. } | Problem::RootCommit)
        );
        match (rebases_onto_branch, old, new) {
            (true, Some(old), _) => return Rewrite::Onto(short(old)),
            (false, _, Some(new)) if self.commits == [new] => return Rewrite::Tip,
            _ => {}
        }
        match lineage.parent(oldest) {
            Some(Some(parent)) => Rewrite::Onto(short(parent)),
            Some(None) => Rewrite::Root,
            None => Rewrite::Onto(format!("{}~1", short(oldest))),
        }
    }

    /// The one fix for the whole group, with the real commit to rebase onto.
    pub fn fix(&self, lineage: &Lineage) -> String {
        self.first()
            .map_or_else(String::new, |v| v.fix(&self.rewrite(lineage)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::files::FileProblem;
    use crate::trust::SignatureProblem;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn unsigned(commit: u8) -> Violation {
        Violation {
            refname: "refs/heads/main".into(),
            commit: Some(id(commit)),
            path: None,
            problem: Problem::Signature(SignatureProblem::Unsigned),
        }
    }

    /// old tip 1, then commits 2..=n each on the previous one.
    fn linear(n: u8) -> Lineage {
        let mut l = Lineage::of(&Update {
            refname: "refs/heads/main".into(),
            old: Some(id(1)),
            new: Some(id(n)),
        });
        for c in 2..=n {
            l.add_commit(id(c), Some(id(c - 1)));
        }
        l
    }

    /// A range through a merge would also name the commits it merged (review of issue 13):
    /// the merge stands alone, and so does the commit before it.
    #[test]
    fn a_merge_never_joins_a_range() {
        let mut lineage = linear(5);
        lineage.add_merge(id(4));
        let violations: Vec<Violation> = (2..=5).map(unsigned).collect();
        let groups = group(&violations);
        assert_eq!(
            groups[0].headline(&lineage),
            "4 commits 0101010101..0303030303, 0404040404, 0505050505: commit is not signed"
        );
    }

    #[test]
    fn contiguous_commits_of_one_kind_are_one_range_with_the_real_base() {
        let lineage = linear(31);
        let violations: Vec<Violation> = (2..=31).map(unsigned).collect();
        let groups = group(&violations);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].violations().len(), 30);
        assert_eq!(
            groups[0].headline(&lineage),
            "30 commits 0101010101..1f1f1f1f1f: commit is not signed"
        );
        let fix = groups[0].fix(&lineage);
        assert!(
            fix.ends_with("git rebase --exec 'git commit --amend --no-edit -S' 0101010101"),
            "{fix}"
        );
        assert!(!fix.contains('<'), "no placeholder left: {fix}");
    }

    #[test]
    fn gaps_split_the_range_and_kinds_stay_apart() {
        let lineage = linear(9);
        let mut violations = vec![
            unsigned(2),
            unsigned(3),
            unsigned(5),
            unsigned(7),
            unsigned(8),
        ];
        violations.insert(
            2,
            Violation {
                path: Some("deploy.sh".into()),
                problem: Problem::File(FileProblem::NotAllowed),
                ..unsigned(4)
            },
        );
        let groups = group(&violations);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].headline(&lineage),
            "5 commits 0101010101..0303030303, 0505050505, 0606060606..0808080808: commit is not signed"
        );
        assert_eq!(
            groups[1].headline(&lineage),
            "0404040404 deploy.sh: file type not allowed by the policy"
        );
        // Not the tip: the fix says how to reach the commit.
        assert!(groups[1].fix(&lineage).contains("git rebase -i 0303030303"));
    }

    #[test]
    fn the_tip_alone_is_amended() {
        let lineage = linear(3);
        let violations = vec![unsigned(3)];
        let groups = group(&violations);
        assert_eq!(groups[0].rewrite(&lineage), Rewrite::Tip);
        assert!(
            groups[0]
                .fix(&lineage)
                .ends_with("then re-sign: git commit --amend --no-edit -S")
        );
    }

    #[test]
    fn a_root_run_and_an_unknown_parent_still_name_real_commits() {
        let mut lineage = Lineage::default();
        lineage.add_commit(id(2), None);
        lineage.add_commit(id(3), Some(id(2)));
        let violations = vec![unsigned(2), unsigned(3)];
        let groups = group(&violations);
        assert_eq!(
            groups[0].headline(&lineage),
            "2 commits from the root 0202020202 to 0303030303: commit is not signed"
        );
        assert!(groups[0].fix(&lineage).contains("git rebase --root --exec"));
        let groups = group(&violations[1..]);
        assert!(
            groups[0]
                .fix(&Lineage::default())
                .ends_with("-S' 0303030303~1")
        );
    }

    #[test]
    fn a_merge_is_rebased_onto_the_old_tip() {
        let lineage = linear(4);
        let violations = vec![Violation {
            problem: Problem::Merge { parents: 2 },
            ..unsigned(4)
        }];
        let fix = group(&violations)[0].fix(&lineage);
        assert!(fix.ends_with("-S' 0101010101"), "{fix}");
    }
}
