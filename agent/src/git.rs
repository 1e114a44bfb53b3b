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

/// Waits for `child`, reading its output, and kills it once `limit` has passed.
fn wait_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    // Drain both pipes on threads, so that a chatty git never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
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
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {}s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
