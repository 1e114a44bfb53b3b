//! tally's revision checks, shared by the git server's hook and the deployment agent.
//!
//! Pure judgement: everything here reads objects and writes nothing. The hook runs these checks
//! before it records a verdict, and the agent (`tally-agent`) runs the same checks against its
//! own trusted signers before it deploys. The crate has no database, no state and no command
//! line: commit and signature parsing, SSHSIG and certificates, allowed_signers, trust, file
//! rules, syntax, tree and revision rules.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attributes;
pub mod certificate;
pub mod commit;
pub mod files;
pub mod objects;
pub mod refusal;
pub mod repository;
pub mod revision;
pub mod signers;
pub mod sshsig;
pub mod syntax;
pub mod tree;
pub mod trust;
mod wire;
