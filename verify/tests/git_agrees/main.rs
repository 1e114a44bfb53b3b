//! What the real `git` and `ssh-keygen` do with the bytes tally judges, in one test binary
//! (issue 12): hostile commit objects read back by git, and signatures made by git checked by
//! tally's parser with `ssh-keygen` as the witness.
#![allow(clippy::unwrap_used)]

mod hostile_commits;
mod real_signatures;
