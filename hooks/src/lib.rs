//! tally's git hooks: the hook protocol, `tally init`, and the policy file.
//!
//! This crate is where git meets tally's rules: it reads what git hands a hook, loads the
//! repository's policy, asks `tally-verify` for a verdict, and tells the pusher what to fix.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod adopt;
pub mod config;
pub mod export;
pub mod init;
pub mod input;
pub mod ledger;
pub mod output;
pub mod owner;
pub mod pre_receive;
pub mod publish;
pub mod pusher;
pub mod record;
pub mod refs;
pub mod shared;
pub mod transaction;
pub mod uninstall;
