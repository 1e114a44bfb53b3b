//! One module per subcommand, each with its arguments and a `run`.
pub mod export;
pub mod hook;
pub mod init;
pub mod ledger;
pub mod log;
pub mod pull;
pub mod source;
pub mod verify;
