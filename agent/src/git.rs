//! Running git for what is git's job on the agent's side (fetching, moving a work tree,
//! copying verified objects): `git -C <dir>` with the checkout made byte-exact, nothing from the
//! environment's repository, and a time limit that ends git's helpers with it.

use std::path::Path;
use std::process::Command;

/// `git -C <dir>`, output captured.
pub struct Git<'a> {
    /// The directory git runs in.
    pub dir: &'a Path,
}

impl Git<'_> {
    /// Runs git; its trimmed stdout on success, its trimmed stderr (or the spawn error) on
    /// failure.
    pub fn output(&self, args: &[&str]) -> Result<String, String> {
        self.output_within(std::time::Duration::MAX, args)
    }

    /// [`Git::output`], killing git if it runs longer than `limit` (a fetch from a server
    /// that does not answer).
    pub fn output_within(
        &self,
        limit: std::time::Duration,
        args: &[&str],
    ) -> Result<String, String> {
        self.run_within(self.command(args), limit, args)
    }

    /// Runs `cmd` (made by [`Git::command`] with `args`, then given more environment), as
    /// [`Git::output_within`] does.
    pub fn run_within(
        &self,
        mut cmd: Command,
        limit: std::time::Duration,
        args: &[&str],
    ) -> Result<String, String> {
        use std::os::unix::process::CommandExt;
        if STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("not started: tally is stopping".to_owned());
        }
        let child = cmd
            // Its own process group, so that a timeout ends git's helpers (ssh,
            // git-remote-https) with it.
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let out = wait_within(child, limit)
            .map_err(|e| format!("git {}: {e}", args.first().unwrap_or(&"")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ");
            Err(if stderr.is_empty() {
                format!("git {} exited with {}", args.join(" "), out.status)
            } else {
                stderr
            })
        }
    }

    /// The command [`Git::output`] runs, for callers that need its pipes.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(self.dir)
            // Check out the signed bytes: no line-ending conversion, no attributes from
            // outside the tree (tally refuses trees whose own .gitattributes convert), and
            // objects as they are, never as a refs/replace/ object says (`checkout::compare`
            // checks the outcome whatever remains).
            .args([
                "-c",
                "core.autocrlf=false",
                "-c",
                "core.eol=lf",
                "-c",
                "core.attributesFile=/dev/null",
                "-c",
                "core.symlinks=true",
            ])
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_ATTR_NOSYSTEM", "1")
            .args(args)
            // `-C` alone does not override a repository named by the environment.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(std::process::Stdio::null());
        cmd
    }
}

/// Set by [`kill_running`]: no git starts after it, so that a cycle still between two git
/// commands when its process stops cannot start one that outlives it.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Process groups of the gits running now (each runs in a group of its own), so that a
/// long-running caller can end them when it stops ([`kill_running`]).
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Kills every git started by [`Git::run_within`] that is still running, with its helpers
/// (ssh, git-remote-https): what `tally mirror` does when it stops, so that no fetch outlives
/// it unbounded.
pub fn kill_running() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
    let groups = match RUNNING.lock() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for pgid in groups {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Registers a process group for [`kill_running`] while alive.
struct Running(Option<i32>);

impl Running {
    fn new(child: &std::process::Child) -> Running {
        let pgid = i32::try_from(child.id()).ok();
        if let Some(p) = pgid {
            match RUNNING.lock() {
                Ok(mut g) => g.push(p),
                Err(poisoned) => poisoned.into_inner().push(p),
            }
        }
        Running(pgid)
    }

    fn kill(&self) {
        if let Some(p) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(p) = self.0 else { return };
        let mut g = match RUNNING.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.retain(|x| *x != p);
    }
}

/// Waits for `child`, reading its output, and kills it (its whole process group) once `limit`
/// has passed. The limit covers the output too: a helper that git started and that keeps
/// git's pipes open after git exited (an ssh left in the background) does not hold the caller.
fn wait_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    let running = Running::new(&child);
    if STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        // kill_running ran between the check before the spawn and the registration.
        running.kill();
    }
    let start = std::time::Instant::now();
    let timed_out = || format!("timed out after {}s", limit.as_secs());
    // Drain both pipes on threads, so that a chatty git never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => {
                running.kill();
                let _ = child.kill();
                let _ = child.wait();
                return Err(timed_out());
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        let left = limit.saturating_sub(start.elapsed());
        rx.recv_timeout(left).map_err(|_| {
            // git has exited; what still holds its pipes is a helper it left behind.
            running.kill();
            timed_out()
        })
    };
    let stdout = collect(stdout)?;
    let stderr = collect(stderr)?;
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}
