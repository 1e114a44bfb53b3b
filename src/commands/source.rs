//! Where `tally log` and `tally ledger verify` read the ledger: the server's store, or, in a
//! clone (an agent's, an auditor's), the ledger published at `refs/tally/ledger`.
//!
//! The choice is made here, in the binary, because the two readers live in two crates that
//! do not depend on each other: the store in `tally-hooks` (the server's side, with SQLite),
//! the publication reader in `tally-agent` (the deployment side, without SQLite). Both print
//! through `tally_ledger::log` and report a `tally_ledger::report::VerifyOutcome`, so the
//! output is the same wherever the entries come from.

use std::path::Path;

use tally_agent::published;
use tally_hooks::admin;

/// Where the ledger is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `tally/ledger.sqlite`: a tally-guarded repository.
    Store,
    /// `refs/tally/ledger` and no store: a clone.
    Published,
}

/// The ledger of the repository at `git_dir`: the store if there is one, else the published
/// ref; neither is a configuration error that says what to do.
pub fn find(git_dir: &Path) -> Result<Source, String> {
    if admin::has_store(git_dir) {
        return Ok(Source::Store);
    }
    match published::exists(git_dir) {
        Ok(true) => Ok(Source::Published),
        Ok(false) => Err(format!(
            "no ledger here: {} is not a tally-guarded repository (it has no tally/ledger.sqlite) and it has no refs/tally/ledger; in a clone, run `git fetch origin refs/tally/ledger:refs/tally/ledger` (or `tally pull`); on the server, pass --repo <REPO> or set it up with `tally init`",
            git_dir.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}
