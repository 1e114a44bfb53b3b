//! End-to-end tests of the `tally` binary: real `git` and `ssh-keygen` against bare
//! repositories guarded by `tally init`, in the hermetic environment of `common`.
//!
//! One test binary, one module per subject (issue 12): each `tests/*.rs` file used to be its
//! own binary, linked against every dependency again, so a change anywhere meant nine links.
//! A test is named `<module>::<test>`, and `cargo test <test>` still finds it.
#![allow(clippy::unwrap_used)]

mod common;

mod agent;
mod cli;
mod everyday;
mod export;
mod fallback;
mod init;
mod ledger;
pub(crate) mod mirror;
mod owner;
mod policy;
mod push;
mod seams;
mod servers;
mod uninstall;
