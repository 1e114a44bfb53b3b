//! Who the server runs as, and the processes of a running server.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User, chown, geteuid};

/// How often a wait polls: short enough not to slow tests, long enough not to spin.
const POLL: Duration = Duration::from_millis(10);

/// The unix user `initdb` and `postgres` run as.
///
/// Both refuse to run as root, so under root they run as the existing `nobody` user; no account
/// is ever created. Otherwise they run as the current user, and nothing changes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Owner {
    /// Not root: the server runs as whoever runs the tests.
    CurrentUser,
    /// Root: the server runs as `nobody`.
    Dropped {
        /// `nobody`'s uid.
        uid: Uid,
        /// `nobody`'s primary group.
        gid: Gid,
    },
}

impl Owner {
    /// Chooses the owner for this process's effective user.
    pub(crate) fn for_this_process() -> Owner {
        if !geteuid().is_root() {
            return Owner::CurrentUser;
        }
        let nobody = User::from_name("nobody")
            .expect("read the user database")
            .expect(
                "running as root, and PostgreSQL refuses to run as root, but there is no `nobody` \
                 user to run it as: run the tests as an unprivileged user",
            );
        Owner::Dropped {
            uid: nobody.uid,
            gid: nobody.gid,
        }
    }

    /// Makes `command` run as this owner.
    ///
    /// `CommandExt::uid` drops root in the child between fork and exec (setgid, then
    /// setgroups to none, then setuid), so the tests need no `unsafe` `pre_exec`.
    pub(crate) fn apply(self, command: &mut Command) -> &mut Command {
        match self {
            Owner::CurrentUser => command,
            Owner::Dropped { uid, gid } => command.uid(uid.as_raw()).gid(gid.as_raw()),
        }
    }

    /// Gives `path` to this owner (nothing to do when the owner is the current user).
    pub(crate) fn give(self, path: &Path) {
        if let Owner::Dropped { uid, gid } = self {
            chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|err| panic!("chown {} to nobody: {err}", path.display()));
        }
    }
}

/// Converts a child's id to the pid signals take.
pub(crate) fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in pid_t"))
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub(crate) fn signal(pid: Pid, signal: Signal) {
    let _ = kill(pid, signal);
}

/// Waits up to `limit` for `child` to exit and reaps it; tells whether it exited.
pub(crate) fn wait_for_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => return false,
            // Not ours to wait for any more (already reaped): it is gone.
            Err(_) => return true,
        }
    }
}

/// Lists the processes whose parent is `parent`, from `/proc`.
///
/// Every server process (backends, checkpointer, WAL writer, autovacuum, ...) is a child of the
/// postmaster. Each of them calls `setsid()` (PostgreSQL's `InitPostmasterChild`), so a process
/// group signal would not reach them: they are found by parent instead.
pub(crate) fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// Tells whether `pid` no longer runs: absent, or a zombie nobody has reaped yet (a zombie holds
/// no shared memory and no sockets, so a new server can start).
pub(crate) fn is_gone(pid: u32) -> bool {
    stat(pid).is_none_or(|(state, _)| state == 'Z' || state == 'X')
}

/// Reads the state and parent pid of `pid` from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Kills the postmaster and every process it started with SIGKILL, reaps the postmaster and
/// waits (up to `limit`) until the others are gone; returns those still running after it.
///
/// The postmaster is stopped (SIGSTOP) first so that it cannot start a process between being
/// listed and being killed. Killing the children too makes the crash whole, like a machine
/// losing power (minus the page cache), and lets a new postmaster start at once: PostgreSQL
/// refuses to start while an old process still holds the old shared memory.
pub(crate) fn kill_server(postmaster: &mut Child, limit: Duration) -> Vec<u32> {
    let pid = pid_of(postmaster);
    signal(pid, Signal::SIGSTOP);
    let children = children(postmaster.id());
    signal(pid, Signal::SIGKILL);
    for &child in &children {
        signal(
            Pid::from_raw(i32::try_from(child).expect("a pid fits in pid_t")),
            Signal::SIGKILL,
        );
    }
    let _ = postmaster.wait();
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<u32> = children.iter().copied().filter(|&c| !is_gone(c)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(POLL);
    }
}
