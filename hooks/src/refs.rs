//! Which refs a push may create at all, whatever their content: the rules on ref *names*.
//!
//! A protected branch is only as safe as the names git resolves to it. Three kinds of ref are
//! refused for everyone, by `pre-receive` for pushes and by `reference-transaction prepared`
//! for anything else that would create or move them (deleting them is always allowed):
//!
//! - `refs/tally/*`: tally's ledger;
//! - `refs/replace/*`: a replace ref makes every git command that reads an object (log,
//!   checkout, archive, fetch's connectivity walk...) see another object in its place, so an
//!   approved commit id would deploy unapproved content (git-replace(1));
//! - refs that shadow a protected branch: git resolves a short name through `refs/<name>`,
//!   `refs/tags/<name>`, `refs/heads/<name>`, `refs/remotes/<name>` in that order
//!   (gitrevisions(7)), so `refs/tags/main` wins over `refs/heads/main` for `git checkout main`
//!   and `git rev-parse main`; and a branch named `refs/heads/main` (`refs/heads/refs/heads/main`)
//!   is what some tools show as `refs/heads/main`.
//!
//! Names inside a `GIT_NAMESPACE` are judged as the namespace's clients see them.

use tally_verify::revision::{Problem, Update};

use crate::config::Policy;

/// `refname` without any leading `refs/namespaces/<ns>/` (nested namespaces included): the
/// name a client of that namespace sees.
pub fn without_namespaces(mut refname: &str) -> &str {
    while let Some(rest) = refname.strip_prefix("refs/namespaces/") {
        match rest.split_once('/') {
            Some((ns, inner)) if !ns.is_empty() => refname = inner,
            _ => break,
        }
    }
    refname
}

/// The prefix git puts before every ref of `GIT_NAMESPACE` (`a/b` nests:
/// `refs/namespaces/a/refs/namespaces/b/`), as git's `expand_namespace` does.
pub fn namespace_prefix(namespace: &str) -> String {
    namespace
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| format!("refs/namespaces/{c}/"))
        .collect()
}

/// Why no one may create or move `update.refname`, if so. Deletions are always allowed, so
/// that an administrator can remove such a ref.
pub fn judge(policy: &Policy, update: &Update) -> Option<Problem> {
    let problem = name_rule(policy, &update.refname)?;
    (update.new.is_some() || problem == Problem::Reserved).then_some(problem)
}

/// Why no one may create or move a ref of this name, whatever the update: what [`judge`]
/// applies before it exempts deletions. The reference-transaction hook uses it to pick the
/// lines it must look at.
pub fn name_rule(policy: &Policy, refname: &str) -> Option<Problem> {
    let name = without_namespaces(refname);
    if name.starts_with("refs/tally/") {
        return Some(Problem::Reserved);
    }
    if name.starts_with("refs/replace/") {
        return Some(Problem::ReplaceRef);
    }
    shadowed(policy, name).map(|branch| Problem::Shadows { branch })
}

/// The protected branch `name` (a ref name seen by clients) would shadow or be confused with.
fn shadowed(policy: &Policy, name: &str) -> Option<String> {
    if let Some(branch) = name.strip_prefix("refs/heads/") {
        // A branch whose own name is a full ref name (`refs/heads/refs/heads/main`), or
        // begins like one of git's short-name rules (`heads/main`, `tags/main`).
        let inner = branch.strip_prefix("refs/").unwrap_or(branch);
        for kind in ["heads/", "tags/", "remotes/"] {
            if let Some(rest) = inner.strip_prefix(kind)
                && policy.is_protected_name(rest)
            {
                return Some(rest.to_owned());
            }
        }
        if branch.starts_with("refs/") && policy.is_protected_name(inner) {
            return Some(inner.to_owned());
        }
        return None;
    }
    let rest = name.strip_prefix("refs/")?;
    let candidate = rest
        .strip_prefix("tags/")
        .or_else(|| rest.strip_prefix("remotes/"))
        .unwrap_or(rest);
    let candidate = candidate.strip_suffix("/HEAD").unwrap_or(candidate);
    policy
        .is_protected_name(candidate)
        .then(|| candidate.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_stripped_as_git_nests_them() {
        assert_eq!(without_namespaces("refs/heads/main"), "refs/heads/main");
        assert_eq!(
            without_namespaces("refs/namespaces/a/refs/namespaces/b/refs/heads/main"),
            "refs/heads/main"
        );
        assert_eq!(
            without_namespaces("refs/heads/refs/namespaces/a/refs/heads/main"),
            "refs/heads/refs/namespaces/a/refs/heads/main"
        );
        assert_eq!(
            namespace_prefix("a/b"),
            "refs/namespaces/a/refs/namespaces/b/"
        );
        assert_eq!(namespace_prefix("foo"), "refs/namespaces/foo/");
    }
}
