//! One module per subcommand, each with its arguments and a `run`.
pub mod docs;
pub mod export;
pub mod hook;
pub mod init;
pub mod json;
pub mod ledger;
pub mod log;
pub mod mirror;
pub mod policy;
pub mod pull;
pub mod source;
pub mod uninstall;
pub mod verify;
