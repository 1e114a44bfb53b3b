//! Git's `allowed_signers` file: who may sign, with which key, for which namespaces and when.
//!
//! The format is OpenSSH's, described under ALLOWED SIGNERS in `ssh-keygen(1)` and implemented
//! by `sshsig.c` (`parse_principals_key_and_options`, `sshsigopt_parse`,
//! `check_allowed_keys_line`). Each line is
//!
//! ```text
//! principals [options] keytype base64-key [comment]
//! ```
//!
//! - Blank lines and lines whose first non-blank character is `#` are skipped.
//! - `principals` is an OpenSSH pattern-list (`match.c`, `match_pattern_list`): comma
//!   separated, `*` and `?` wildcards, `!` negation. It may be written in double quotes, which
//!   lets it contain spaces (`misc.c`, `strdelimw`).
//! - `options` are comma separated, with no spaces outside double quotes, and their names are
//!   case-insensitive: `cert-authority`, `namespaces="list"`, `valid-after="time"`,
//!   `valid-before="time"`. Values must be quoted; `\"` escapes a quote (`misc.c`,
//!   `opt_dequote`).
//! - Times are `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC when followed by `Z` (or
//!   `UTC`), otherwise in the local time zone (`misc.c`, `parse_absolute_time`). OpenSSH
//!   converts local times with `mktime(3)` and `tm_isdst = 0`, which reads them as *standard*
//!   time even in summer; tally does the same, so both agree on when a key expires. Write `Z`
//!   times to avoid the question.
//!
//! Parsing is strict and fails closed: every line OpenSSH would refuse is an error naming the
//! line, and so are a few lines OpenSSH accepts but that cannot mean what their author intended
//! (certificates instead of keys, impossible dates such as February 30, which `mktime(3)` would
//! silently move to March). OpenSSH reads the file lazily and stops at the first line that
//! matches; tally reads all of it, so a mistake anywhere in the file is reported at once.

// The modules follow the parts of a line: `line` splits it into its fields, `options`, `key` and
// `time` read them, and `pattern` matches the principals and namespaces lists. `entry` holds
// the result and the lookups made in it; `error` says what is wrong with a line.
mod entry;
mod error;
mod key;
mod line;
mod options;
mod pattern;
mod time;

pub use entry::{AllowedSigners, SignerEntry};
pub use error::SignersError;
pub use pattern::match_pattern_list;
pub use time::Validity;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
