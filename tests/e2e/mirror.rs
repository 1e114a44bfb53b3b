//! End-to-end tests of `tally mirror` (issue 14): a real `tally mirror` process serving over
//! HTTP on 127.0.0.1, fetched from by the real `git` (protocol v0, v1 and v2) and by a second
//! client implementation (dulwich), with the upstream a bare repository guarded by `tally init`
//! and attacked the ways an agent is attacked.
//!
//! Tests wait for the mirror by polling `/status` until a condition holds (with a deadline),
//! never by sleeping a fixed time: cycles are triggered through the webhook.

mod attacks;
mod bench;
mod examples;
mod robust;
mod serving;
mod startup;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// The webhook secret every test mirror is started with.
const SECRET: &str = "mirror-test-secret";

/// How long a test waits for the mirror to reach a state before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `tally mirror`, killed when dropped.
pub(crate) struct Mirror<'e> {
    env: &'e TestEnv,
    pub(crate) child: Option<Child>,
    /// `http://127.0.0.1:<port>/<name>`.
    pub(crate) url: String,
    /// `127.0.0.1:<port>`.
    pub(crate) addr: String,
    /// `--dir`.
    pub(crate) dir: PathBuf,
    /// The arguments it was started with (to restart it).
    pub(crate) args: Vec<String>,
    /// The environment added to the hermetic one.
    vars: Vec<(String, String)>,
    /// What it wrote on stderr, collected by a thread.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The inputs of a mirror of `server`: the ledger key file and an allowed_signers file.
pub(crate) struct Pins {
    pub(crate) key: PathBuf,
    pub(crate) signers: PathBuf,
}

impl Pins {
    pub(crate) fn new(
        env: &TestEnv,
        server: &Server<'_>,
        name: &str,
        signers: &AllowedSigners,
    ) -> Pins {
        let out = server.tally(&["ledger", "key"]);
        assert!(out.status.success(), "tally ledger key failed");
        let key = env.write(
            &format!("{name}-ledger.pub"),
            &String::from_utf8(out.stdout).unwrap(),
        );
        let signers = env.write(&format!("{name}-allowed_signers"), &signers.text());
        Pins { key, signers }
    }
}

impl<'e> Mirror<'e> {
    /// Starts a mirror of `upstream` in `<root>/<name>` on a free port, with the webhook secret,
    /// an interval long enough that only webhooks cause cycles, and `extra` arguments.
    fn start(env: &'e TestEnv, upstream: &Path, pins: &Pins, name: &str, extra: &[&str]) -> Self {
        Mirror::start_url(env, &upstream.display().to_string(), pins, name, extra, &[])
    }

    /// [`Mirror::start`] from any URL, with more environment for the mirror's process (its
    /// `GIT_SSH_COMMAND`, say).
    pub(crate) fn start_url(
        env: &'e TestEnv,
        upstream: &str,
        pins: &Pins,
        name: &str,
        extra: &[&str],
        vars: &[(&str, &str)],
    ) -> Self {
        let dir = env.root().join(name);
        let secret = env.write(&format!("{name}-secret"), &format!("{SECRET}\n"));
        let mut args: Vec<String> = vec![
            "mirror".into(),
            "--upstream".into(),
            upstream.to_owned(),
            "--dir".into(),
            dir.display().to_string(),
            "--ledger-key".into(),
            pins.key.display().to_string(),
            "--allowed-signers".into(),
            pins.signers.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--name".into(),
            "deploy.git".into(),
            "--interval".into(),
            "1h".into(),
            "--webhook-secret".into(),
            secret.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Mirror::spawn(env, dir, args, vars)
    }

    fn spawn(
        env: &'e TestEnv,
        dir: PathBuf,
        args: Vec<String>,
        vars: Vec<(String, String)>,
    ) -> Self {
        let mut cmd = env.tally();
        cmd.args(&args)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start tally mirror");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("serving ")
            .unwrap_or_else(|| {
                panic!(
                    "tally mirror printed {first:?}, not `serving <URL>`; log:\n{}",
                    log.lock().unwrap()
                )
            })
            .to_owned();
        let addr = url
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
            .unwrap()
            .to_owned();
        Mirror {
            env,
            child: Some(child),
            url,
            addr,
            dir,
            args,
            vars,
            log,
        }
    }

    /// Kills the mirror with SIGKILL and starts it again with the same arguments.
    fn kill_and_restart(&mut self) {
        self.kill();
        let args = self.args.clone();
        let vars = self.vars.clone();
        *self = Mirror::spawn(self.env, self.dir.clone(), args, vars);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The mirror's log so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// One HTTP request; the status code and the body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        http(&self.addr, method, path, headers, body)
    }

    pub(crate) fn status(&self) -> Value {
        let (code, body) = self.request("GET", "/status", &[], b"");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The status of `branch` (short name).
    pub(crate) fn branch(&self, branch: &str) -> Value {
        self.status()["branches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["branch"] == branch)
            .cloned()
            .unwrap_or_else(|| panic!("no branch {branch} in /status"))
    }

    pub(crate) fn metrics(&self) -> String {
        let (code, body) = self.request("GET", "/metrics", &[], b"");
        assert_eq!(code, 200);
        body
    }

    /// A signed webhook (GitHub's header): asks for a cycle now.
    pub(crate) fn hook(&self) {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let signature = format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), body));
        let (code, text) = self.request(
            "POST",
            "/hook",
            &[
                ("X-Hub-Signature-256", &signature),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        assert_eq!(code, 202, "{text}");
    }

    /// The cycle count now.
    pub(crate) fn cycles(&self) -> u64 {
        self.status()["cycles"].as_u64().unwrap()
    }

    /// Triggers a cycle and waits until it has run (a cycle started after the trigger has
    /// ended: the count went up by two, or by one from an idle mirror whose last cycle ended).
    pub(crate) fn cycle(&self) {
        let before = self.cycles();
        let attempted = |s: &Value| -> Vec<Value> {
            s["branches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["last_attempt"].clone())
                .collect()
        };
        let before_attempts = attempted(&self.status());
        self.hook();
        self.wait_for("a cycle after the webhook", |s| {
            s["cycles"].as_u64().unwrap() > before && attempted(s) != before_attempts
        });
    }

    /// Polls `/status` until `done` holds.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "the mirror never reached: {what}\nstatus: {status:#}\nlog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `branch` (short) is served at `commit`.
    pub(crate) fn wait_served(&self, branch: &str, commit: &str) -> Value {
        self.wait_for(&format!("{branch} served at {commit}"), |s| {
            s["branches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["branch"] == branch && b["served"]["commit"] == commit)
        })
    }

    /// The commit the served repository's branch points to, read from disk.
    pub(crate) fn served_ref(&self, refname: &str) -> Option<String> {
        let out = self
            .env
            .git(self.env.root())
            .arg("--git-dir")
            .arg(self.dir.join("served.git"))
            .args(["rev-parse", "--verify", "-q", refname])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
    }

    /// Every object the served repository holds.
    pub(crate) fn served_objects(&self) -> Vec<String> {
        let out = stdout_of(
            self.env
                .git(self.env.root())
                .arg("--git-dir")
                .arg(self.dir.join("served.git"))
                .args([
                    "cat-file",
                    "--batch-all-objects",
                    "--batch-check=%(objectname)",
                ]),
        );
        out.lines().map(str::to_owned).collect()
    }

    /// `git ls-remote` of the mirror's URL with protocol `version`.
    pub(crate) fn ls_remote(&self, version: u32) -> String {
        stdout_of(self.env.git(self.env.root()).args([
            "-c",
            &format!("protocol.version={version}"),
            "ls-remote",
            &self.url,
        ]))
    }
}

impl Drop for Mirror<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first, as systemd does; the mirror must stop by itself.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal HTTP/1.1 client (one request per connection), so that the tests see exactly
/// what the mirror answers.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (code, body)
}

/// Sends `raw` bytes as they are (a request the helper above would not write) and returns the
/// response's status code and body.
fn http_raw(addr: &str, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (
        code,
        text.split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned(),
    )
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

/// HMAC-SHA256 as a webhook sender computes it, hex.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    tally_ledger::hex::encode(&mac.finalize().into_bytes())
}

/// A guarded upstream with one accepted commit on main ([`serving::upstream`]) and a mirror of
/// it (in `<root>/mirror`) that trusts `signers`, serving that commit.
fn mirrored<'e>(
    env: &'e TestEnv,
    signers: &AllowedSigners,
) -> (Server<'e>, Work<'e>, String, Pins, Mirror<'e>) {
    let (server, work, base) = serving::upstream(env);
    let pins = Pins::new(env, &server, "mirror", signers);
    let mirror = Mirror::start(env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &base);
    (server, work, base, pins, mirror)
}

/// A clone of the mirror's URL (protocol `version`), checked out.
fn clone_mirror(env: &TestEnv, mirror: &Mirror<'_>, name: &str, version: u32) -> PathBuf {
    let path = env.root().join(name);
    run_ok(
        env.git(env.root())
            .args([
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "-q",
                &mirror.url,
            ])
            .arg(&path),
    );
    path
}
