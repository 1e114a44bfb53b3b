//! tally's revision checks, shared by the git server's hook and the deployment agent.
//!
//! Everything here reads and nothing writes: the hook runs these checks before it records a
//! verdict, and an agent runs the same checks against its own trusted signers before it deploys.
//! The crate has no database and no command line, so what an agent runs can be read in one
//! sitting; [`agent`] is that agent: ledger checks against its pinned state, then these revision
//! checks against its own signers. Its state file is the only thing this crate writes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod attributes;
pub mod certificate;
pub mod commit;
pub mod files;
pub mod objects;
pub mod repository;
pub mod revision;
pub mod signers;
pub mod sshsig;
pub mod syntax;
pub mod tree;
pub mod trust;
mod wire;
