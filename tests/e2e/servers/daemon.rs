//! Server processes for one test. Each runs in a process group of its own with its output in a
//! log file, and is stopped with its whole group when dropped, also when the test panics, so no
//! server outlives the test that started it. Nothing here sleeps for a fixed time: readiness is
//! polled, with a deadline.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a server may take to start listening before the test gives up on it.
const STARTUP: Duration = Duration::from_secs(20);

/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// Polling interval while waiting for a server.
const POLL: Duration = Duration::from_millis(10);

/// A running server process, stopped when dropped.
pub struct Daemon {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` in a new process group, stdout and stderr going to `log`.
    pub fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Daemon {
        let file = std::fs::File::create(log).unwrap();
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        Daemon {
            what: what.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready()` holds. Fails, with the server's log, if the server exits first;
    /// panics if it is neither ready nor gone after [`STARTUP`].
    pub fn wait_until(&mut self, ready: impl Fn() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!(
                    "{} exited with {status} before it was ready; its log:\n{}",
                    self.what,
                    self.log()
                ));
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {STARTUP:?}; its log:\n{}",
                self.what,
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.child.id()).expect("a pid fits in i32"));
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + SHUTDOWN;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Starts a server with `start(port)` on a free port of 127.0.0.1 and waits until it listens.
///
/// The port is free when it is chosen, but another process (a parallel test's server) may
/// take it before this one binds it; then the server exits, and is started again on another
/// port.
pub fn on_free_port(mut start: impl FnMut(u16) -> Daemon) -> (Daemon, u16) {
    let mut failures = Vec::new();
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut daemon = start(port);
        match daemon.wait_until(|| listening(port)) {
            Ok(()) => return (daemon, port),
            Err(e) => failures.push(format!("port {port}: {e}")),
        }
    }
    panic!("no server started:\n{}", failures.join("\n"));
}
