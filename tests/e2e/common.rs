//! A hermetic environment for end-to-end tests of the `tally` binary with real `git` and
//! `ssh-keygen` (in the spirit of jj's `TestEnvironment`).
//!
//! Every test gets its own temporary directory holding `HOME`, a global git configuration
//! written here, the bare repository guarded by `tally init` and the work clones. Every
//! command runs with a cleared environment plus the few variables set here, so nothing from
//! the developer's git configuration, ssh agent or an enclosing hook (`GIT_DIR`,
//! `GIT_INDEX_FILE`, ...) leaks in. Commit dates are fixed and increase by one minute per
//! commit, so the same test makes the same commits every run.
//!
//! Keys are real OpenSSH keys made by `ssh-keygen`, generated once and shared by every test
//! (RSA generation alone would otherwise dominate the suite's run time).

mod environment;
mod keys;
mod postgres;
mod raw;
mod server;
mod snapshot;
mod work;

pub use environment::*;
pub use keys::*;
pub use postgres::*;
pub use raw::*;
pub use server::*;
pub use snapshot::*;
pub use work::*;

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The `tally` binary under test.
pub const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// First commit date of every test (2023-11-14T22:13:20Z); each commit adds a minute.
const FIRST_DATE: i64 = 1_700_000_000;

/// A raw git date (`<unix seconds> +0000`), for back- and forward-dated commits.
pub fn date(unix_seconds: i64) -> String {
    format!("{unix_seconds} +0000")
}

/// 2019-06-01T00:00:00Z.
pub const JUNE_2019: i64 = 1_559_347_200;
/// 2099-06-01T00:00:00Z.
pub const JUNE_2099: i64 = 4_083_955_200;

/// Waits until the next whole second of the wall clock. A checkpoint carries its signing time
/// in whole seconds and Ed25519 is deterministic, so two checkpoints of one ledger signed in the
/// same second are the same note; `tally ledger checkpoint` reads the real clock, so a test that
/// needs a different note has to let the second turn.
pub fn wait_for_the_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 10_000_000,
    ));
}

// ---------------------------------------------------------------------------------------------
// Running commands

/// Runs a command to completion, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command with `input` on stdin; returns its output whatever the status.
///
/// A command may exit without reading its input (a hook that refuses its arguments); the
/// write then fails with a broken pipe, which is not the test's concern: its exit status
/// and output are.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

/// stdout of a successful command, trimmed.
pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(run_ok(cmd).stdout)
        .unwrap()
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Unix accounts (tests/e2e/owner.rs, tests/e2e/servers.rs)

/// Takes this process's turn at the account databases, until the guard is dropped.
///
/// useradd, userdel, groupadd and groupdel lock /etc/passwd and /etc/group and give up when
/// another process holds the lock, so the test threads of this binary that make or remove
/// accounts and groups take turns.
pub fn passwd_turn() -> std::sync::MutexGuard<'static, ()> {
    static PASSWD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PASSWD.lock().unwrap_or_else(|e| e.into_inner())
}
