//! End-to-end tests of the pre-receive hook: real pushes with the real `git` binary to a bare
//! repository set up by `tally init`, with commits signed by real `ssh-keygen` keys.
//!
//! Each test is named for what it attacks or accepts, and asserts the exit status of the push,
//! where the branch is in the bare repository afterwards, and the words a pusher relies on in
//! the refusal: the short commit id, the path or key fingerprint, and the fix.

mod accepted;
mod files;
mod gitattributes;
mod history;
mod refusals;
mod signatures;
mod tree_entries;

use crate::common::*;

/// Pushes a first signed commit to `main` and returns its id.
fn push_base(work: &Work<'_>) -> String {
    let base = work.commit("base").file("base.yaml", BASE_YAML).create();
    work.push_main_ok();
    base
}

/// Asserts the push was refused and `refs/heads/<branch>` is still at `before`.
fn assert_refused_and_unmoved(
    push: &Push,
    server: &Server<'_>,
    branch: &str,
    before: Option<&str>,
) {
    push.assert_refused();
    assert_eq!(
        server.branch(branch).as_deref(),
        before,
        "refs/heads/{branch} moved although the push was refused"
    );
}
