//! Benchmarks of `tally mirror` (issue 14), run by scripts/bench-mirror.sh: timings, CPU and
//! memory are printed, never asserted. Each asserts only that what it measured is right: the
//! commit is served, every clone succeeded and has the served HEAD.
//!
//! - `webhook_latency`: a push upstream, a signed webhook, and the time until `/status` says
//!   the commit is served;
//! - `concurrent_clones`: 50 concurrent `git clone --bare` of a 10,000-commit repository from
//!   the mirror, from `git daemon` (its default connection limit, and none) and from
//!   `git http-backend` behind nginx and fcgiwrap, serving copies of the same served
//!   repository, the servers alternating within each round;
//! - `idle_with_ten_branches`: the mirror's CPU and memory between cycles.

use std::net::TcpListener;

use super::*;

/// Reads the load average, as `/proc/loadavg` gives it (1, 5, 15 minutes).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Formats the median, min, max and p90 of `times`, in ms.
fn summary(times: &[Duration]) -> String {
    let mut t = times.to_vec();
    t.sort();
    let at = |q: f64| t[((t.len() as f64 * q).ceil() as usize).clamp(1, t.len()) - 1];
    format!(
        "median {:.0} ms, min {:.0} ms, max {:.0} ms, p90 {:.0} ms ({} runs)",
        ms((t[(t.len() - 1) / 2] + t[t.len() / 2]) / 2),
        ms(t[0]),
        ms(t[t.len() - 1]),
        ms(at(0.9)),
        t.len()
    )
}

/// A process's CPU ticks (utime + stime, `/proc/<pid>/stat` fields 14 and 15), and those of
/// its waited-for children (cutime + cstime, 16 and 17).
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name, field 2, is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap())
        .collect();
    (f[0] + f[1], f[2] + f[3])
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`) or as a count (`Threads`).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The processes whose parent is `pid` (its threads' children included).
fn children(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            out.extend(list.split_whitespace().map(str::to_owned));
        }
    }
    out
}

impl Mirror<'_> {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---- latency --------------------------------------------------------------------------------

/// One signed commit pushed upstream, the signed webhook sent, and the time from the push's
/// completion until `/status` (polled every 5 ms) says the mirror serves the commit, read
/// from the served repository's ref after each run.
///
/// Two series: pushes spaced so that each webhook comes at least `cycle::MIN_TRIGGER_GAP`
/// after the previous one (the mirror runs at most one webhook cycle a second, by design),
/// and pushes back to back.
#[test]
#[ignore = "benchmark: scripts/bench-mirror.sh"]
fn webhook_latency() {
    let runs = setting("TALLY_BENCH_RUNS", 20);
    let env = TestEnv::new();
    let (server, work, base) = serving::upstream(&env);
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &base);
    println!("latency: load average at start {}", load());
    let gap = tally_mirror::cycle::MIN_TRIGGER_GAP + Duration::from_millis(100);
    for (series, spaced) in [("spaced >= 1.1 s", true), ("back to back", false)] {
        let mut latency = Vec::new();
        let mut pushes = Vec::new();
        let mut hooks = Vec::new();
        // The previous cycle (the first one, or the other series' last) may have started
        // less than a second ago.
        let mut last_hook = Instant::now();
        for i in 0..runs {
            if spaced {
                std::thread::sleep(gap.saturating_sub(last_hook.elapsed()));
            }
            let commit = work
                .commit(&format!("{series} {i}"))
                .file("app.yaml", format!("replicas: {i}\n"))
                .create();
            let t = Instant::now();
            work.push_main_ok();
            pushes.push(t.elapsed());
            let landed = Instant::now();
            mirror.hook();
            hooks.push(landed.elapsed());
            last_hook = landed;
            loop {
                let status = mirror.status();
                let served = status["branches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["branch"] == "main" && b["served"]["commit"] == commit);
                if served {
                    break;
                }
                assert!(
                    landed.elapsed() < PATIENCE,
                    "{commit} never served; log:\n{}",
                    mirror.log()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            latency.push(landed.elapsed());
            assert_eq!(
                mirror.served_ref("refs/heads/main").as_deref(),
                Some(commit.as_str())
            );
        }
        println!(
            "latency ({series}): push landed -> served: {}",
            summary(&latency)
        );
        println!(
            "latency ({series}):   the push itself: {}",
            summary(&pushes)
        );
        println!(
            "latency ({series}):   the webhook's 202: {}",
            summary(&hooks)
        );
        println!("latency ({series}): load average {}", load());
    }
    let metrics = mirror.metrics();
    for line in metrics.lines().filter(|l| {
        l.starts_with("tally_mirror_fetch_duration_seconds_sum")
            || l.starts_with("tally_mirror_fetch_duration_seconds_count")
            || l.starts_with("tally_mirror_cycles_total")
    }) {
        println!("latency: {line}");
    }
}

// ---- concurrent clones ----------------------------------------------------------------------

/// A server in a process group of its own, the whole group stopped (SIGTERM, then SIGKILL)
/// when dropped: fcgiwrap's preforked children outlive a SIGTERM to their parent, and
/// `git daemon` is a wrapper around `git-daemon`.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    fn start(name: &'static str, cmd: &mut Command) -> Daemon {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon { name, child }
    }

    /// Starts a server and waits until it listens on `port`.
    fn spawn(name: &'static str, cmd: &mut Command, port: u16) -> Daemon {
        let daemon = Daemon::start(name, cmd);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{name} does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn signal_group(&self, signal: &str) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args([signal, "--", &group])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal_group("-TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.child.try_wait().ok().flatten().is_none() {
            eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        }
        // Whatever of the group is left (children that ignore SIGTERM, or the leader).
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `git daemon` serving the repositories under `root` (`--export-all --base-path`), on
/// 127.0.0.1, with its default `--max-connections` (32) or `max_connections`.
///
/// Past its limit git daemon kills a running child from an address that has two (daemon.c,
/// `kill_some_child`): with every client on 127.0.0.1, a clone in progress dies with
/// "Connection reset by peer", so the default is measured and also no limit (0).
fn git_daemon(env: &TestEnv, root: &Path, max_connections: Option<u32>) -> (Daemon, String) {
    let port = free_port();
    let mut cmd = env.git(env.root());
    cmd.args([
        "daemon",
        "--export-all",
        "--reuseaddr",
        "--listen=127.0.0.1",
        &format!("--port={port}"),
        &format!("--base-path={}", root.display()),
    ]);
    if let Some(n) = max_connections {
        cmd.arg(format!("--max-connections={n}"));
    }
    cmd.arg(root)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.root().join(format!("git-daemon-{port}.log"))).unwrap());
    let daemon = Daemon::spawn("git daemon", &mut cmd, port);
    (daemon, format!("git://127.0.0.1:{port}/deploy.git"))
}

/// The process that reaps git daemon's upload-packs: `git daemon` runs `git-daemon` as its
/// child and waits, so the CPU of the clones it served is counted in that child.
fn daemon_pid(daemon: &Daemon) -> u32 {
    let wrapper = daemon.child.id();
    match children(wrapper).as_slice() {
        [one] => one.parse().unwrap(),
        _ => wrapper,
    }
}

/// `git http-backend` behind nginx and fcgiwrap, as git-http-backend(1) sets it up (without
/// authentication): one nginx worker, 32 fcgiwrap children (the mirror runs up to 32
/// upload-packs).
fn git_http_backend(env: &TestEnv, root: &Path) -> Option<(Daemon, Daemon, String)> {
    let (nginx, fcgiwrap) = ("/usr/sbin/nginx", "/usr/sbin/fcgiwrap");
    if !Path::new(nginx).exists() || !Path::new(fcgiwrap).exists() {
        println!("clones: no nginx or fcgiwrap here; git http-backend left out");
        return None;
    }
    let dir = env.root().join("http");
    std::fs::create_dir(&dir).unwrap();
    let socket = dir.join("fcgiwrap.sock");
    let backend =
        Path::new(&stdout_of(Command::new("git").arg("--exec-path"))).join("git-http-backend");
    let mut cmd = Command::new(fcgiwrap);
    env.hermetic(&mut cmd);
    cmd.args(["-c", "32", "-s"])
        .arg(format!("unix:{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("fcgiwrap.log")).unwrap());
    let fcgi = Daemon::start("fcgiwrap", &mut cmd);
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no fcgiwrap");
        std::thread::sleep(Duration::from_millis(20));
    }
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/nginx-error.log;\nevents {{ worker_connections 512; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         server {{\n  listen 127.0.0.1:{port};\n  client_max_body_size 0;\n\
         location / {{\n   fastcgi_pass unix:{socket};\n\
         fastcgi_buffering off;\n\
         fastcgi_param SCRIPT_FILENAME {backend};\n\
         fastcgi_param GIT_PROJECT_ROOT {root};\n\
         fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
         fastcgi_param PATH_INFO $uri;\n\
         fastcgi_param QUERY_STRING $query_string;\n\
         fastcgi_param REQUEST_METHOD $request_method;\n\
         fastcgi_param CONTENT_TYPE $content_type;\n\
         fastcgi_param CONTENT_LENGTH $content_length;\n\
         fastcgi_param GIT_PROTOCOL $http_git_protocol;\n\
         fastcgi_param GIT_CONFIG_NOSYSTEM 1;\n\
         fastcgi_param HOME {home};\n\
         fastcgi_param PATH /usr/local/bin:/usr/bin:/bin;\n  }}\n }}\n}}\n",
        socket = socket.display(),
        backend = backend.display(),
        root = root.display(),
        home = env.root().join("home").display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(nginx);
    env.hermetic(&mut cmd);
    cmd.arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nginx.log")).unwrap());
    let nginx = Daemon::spawn("nginx", &mut cmd, port);
    Some((nginx, fcgi, format!("http://127.0.0.1:{port}/deploy.git")))
}

/// One round: `clients` concurrent `git clone --bare -q <url>` (protocol v2, git's default),
/// each checked; returns the wall time of the whole round and each clone's time.
fn clone_round(
    env: &TestEnv,
    url: &str,
    clients: usize,
    dest: &Path,
    head: &str,
) -> (Duration, Vec<Duration>, Vec<String>) {
    std::fs::create_dir_all(dest).unwrap();
    let hermetic = env.hermetic_env();
    let start = Instant::now();
    let results: Vec<(Duration, Result<PathBuf, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let hermetic = hermetic.clone();
                let path = dest.join(format!("c{i}.git"));
                s.spawn(move || {
                    let t = Instant::now();
                    let out = hermetic
                        .git(dest)
                        .args(["clone", "--bare", "-q", url])
                        .arg(&path)
                        .output()
                        .unwrap();
                    let took = t.elapsed();
                    if out.status.success() {
                        (took, Ok(path))
                    } else {
                        (
                            took,
                            Err(format!(
                                "clone {i}: {}: {}",
                                out.status,
                                String::from_utf8_lossy(&out.stderr).trim()
                            )),
                        )
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = start.elapsed();
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for (took, result) in results {
        times.push(took);
        match result {
            Ok(path) => {
                let got = stdout_of(env.git(&path).args(["rev-parse", "HEAD"]));
                if got != head {
                    failures.push(format!("{}: HEAD {got}, not {head}", path.display()));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    std::fs::remove_dir_all(dest).unwrap();
    (wall, times, failures)
}

/// 50 concurrent clones of a 10,000-commit repository (SSH-signed commits pushed through
/// tally's hook) from the mirror, and from `git daemon` (twice: its default connection limit,
/// and none) and `git http-backend` serving copies of the mirror's served repository; 3
/// rounds, the servers alternating within each round.
#[test]
#[ignore = "benchmark: scripts/bench-mirror.sh"]
fn concurrent_clones() {
    let count = setting("TALLY_BENCH_COMMITS", 10_000);
    let clients = setting("TALLY_BENCH_CLIENTS", 50);
    let rounds = setting("TALLY_BENCH_ROUNDS", 3);
    let env = TestEnv::new();
    let (server, work, _base) = serving::upstream(&env);
    let t0 = Instant::now();
    let parent = work.signed_history(count);
    println!(
        "clones: generated {count} signed commits in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    work.push(&["origin", &format!("{parent}:refs/heads/main")])
        .assert_accepted();
    println!(
        "clones: pushed them through the hook in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let t0 = Instant::now();
    let mirror = Mirror::start(&env, &server.path, &pins, "mirror", &[]);
    mirror.wait_served("main", &parent);
    println!(
        "clones: the mirror's first cycle served the tip in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let served = mirror.dir.join("served.git");
    let size = stdout_of(
        env.git(env.root())
            .arg("--git-dir")
            .arg(&served)
            .args(["count-objects", "-vH"]),
    );
    println!(
        "clones: served repository: {}",
        size.lines()
            .filter(|l| l.starts_with("count") || l.starts_with("in-pack") || l.starts_with("size"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The baselines serve byte-for-byte copies of the served repository.
    let copies = env.root().join("baseline");
    std::fs::create_dir(&copies).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(&served)
            .arg(copies.join("deploy.git")),
    );
    let (daemon, daemon_url) = git_daemon(&env, &copies, None);
    let (unlimited, unlimited_url) = git_daemon(&env, &copies, Some(0));
    let http = git_http_backend(&env, &copies);
    // Each server, and the process whose CPU time (its own, and its reaped children's: the
    // upload-packs it ran) is read around each round, when there is one such process.
    let mut sides: Vec<(&str, String, Option<u32>)> = vec![
        ("tally mirror", mirror.url.clone(), Some(mirror.pid())),
        ("git daemon", daemon_url, Some(daemon_pid(&daemon))),
        (
            "git daemon --max-connections=0",
            unlimited_url,
            Some(daemon_pid(&unlimited)),
        ),
    ];
    if let Some((_, _, url)) = &http {
        // fcgiwrap's children reap the backends: no single process to read.
        sides.push(("git http-backend (nginx + fcgiwrap)", url.clone(), None));
    }
    println!("clones: load average before {}", load());
    let pid = mirror.pid();
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); sides.len()];
    let mut failed = vec![0; sides.len()];
    for round in 0..rounds {
        // Each round starts with another server, so none is always first.
        for k in 0..sides.len() {
            let j = (round + k) % sides.len();
            let (name, url, server) = &sides[j];
            let before = server.map(cpu_ticks);
            let (wall, times, failures) = clone_round(
                &env,
                url,
                clients,
                &env.root().join(format!("clones-{round}-{j}")),
                &parent,
            );
            let cpu = match (server, before) {
                (Some(server), Some(before)) => {
                    let after = cpu_ticks(*server);
                    format!(
                        ", server CPU {} ticks, its children {} ticks",
                        after.0 - before.0,
                        after.1 - before.1,
                    )
                }
                _ => String::new(),
            };
            let mirror_hwm = if j == 0 {
                format!(", VmHWM {:.1} MiB", mib(proc_status(pid, "VmHWM")))
            } else {
                String::new()
            };
            println!(
                "clones: round {} {name}: {clients} clones in {:.2} s (each: {}), {} failed, load {}{cpu}{mirror_hwm}",
                round + 1,
                wall.as_secs_f64(),
                summary(&times),
                failures.len(),
                load()
            );
            for f in failures.iter().take(5) {
                println!("clones:   {f}");
            }
            failed[j] += failures.len();
            walls[j].push(wall);
        }
    }
    let base = walls[0].iter().sum::<Duration>().as_secs_f64();
    for (j, (name, _, _)) in sides.iter().enumerate() {
        let total = walls[j].iter().sum::<Duration>().as_secs_f64();
        println!(
            "clones: {name}: rounds {} s, {} clones failed; mirror / this = {:.2}",
            walls[j]
                .iter()
                .map(|w| format!("{:.2}", w.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", "),
            failed[j],
            base / total
        );
    }
    println!(
        "clones: the mirror's VmRSS {:.1} MiB, VmHWM {:.1} MiB after the rounds",
        mib(proc_status(pid, "VmRSS")),
        mib(proc_status(pid, "VmHWM"))
    );
    // Only the mirror's clones must all succeed: git daemon's are measured as it behaves.
    assert_eq!(failed[0], 0, "clones from the mirror failed (see above)");
}

// ---- idle -----------------------------------------------------------------------------------

/// A mirror of 10 branches, `--interval 1m`: after its first cycle has served all 10, its
/// CPU ticks and memory over a 30 s window with no request and no cycle.
#[test]
#[ignore = "benchmark: scripts/bench-mirror.sh"]
fn idle_with_ten_branches() {
    let window = Duration::from_secs(setting("TALLY_BENCH_IDLE_SECONDS", 30) as u64);
    let names: Vec<String> = std::iter::once("main".to_owned())
        .chain((1..10).map(|i| format!("b{i}")))
        .collect();
    let env = TestEnv::new();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let server = env.server(&alice_and_bob(), &refs);
    let work = env.clone_as(&server, "work", &alice());
    let mut tips = Vec::new();
    for name in &names {
        let tip = work
            .commit(name)
            .file(&format!("{name}.yaml"), format!("branch: {name}\n"))
            .create();
        work.push(&["origin", &format!("HEAD:refs/heads/{name}")])
            .assert_accepted();
        tips.push(tip);
    }
    let pins = Pins::new(&env, &server, "mirror", &alice_and_bob());
    let dir = env.root().join("mirror");
    let mut args: Vec<String> = [
        "mirror",
        "--upstream",
        &server.path.display().to_string(),
        "--dir",
        &dir.display().to_string(),
        "--ledger-key",
        &pins.key.display().to_string(),
        "--allowed-signers",
        &pins.signers.display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "deploy.git",
        "--interval",
        "1m",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for name in &names {
        args.push("--branch".into());
        args.push(name.clone());
    }
    let mirror = Mirror::spawn(&env, dir, args, Vec::new());
    let t0 = Instant::now();
    mirror.wait_for("all 10 branches served", |s| {
        s["ready"] == true
            && names.iter().zip(&tips).all(|(name, tip)| {
                s["branches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["branch"] == name.as_str() && b["served"]["commit"] == tip.as_str())
            })
    });
    println!(
        "idle: first cycle of 10 branches served in {:.2} s; load average {}",
        t0.elapsed().as_secs_f64(),
        load()
    );
    let cycles = mirror.cycles();
    let pid = mirror.pid();
    let ticks_per_second = stdout_of(Command::new("getconf").arg("CLK_TCK"));
    // Let the cycle thread return to its wait after recording the cycle.
    std::thread::sleep(Duration::from_millis(200));
    let start = cpu_ticks(pid);
    let mut rss = Vec::new();
    let mut kids = 0;
    let began = Instant::now();
    while began.elapsed() < window {
        std::thread::sleep(Duration::from_secs(1));
        rss.push(proc_status(pid, "VmRSS"));
        kids = kids.max(children(pid).len());
    }
    let end = cpu_ticks(pid);
    let rss_max = *rss.iter().max().unwrap();
    let rss_min = *rss.iter().min().unwrap();
    println!(
        "idle: {:.0} s window: {} CPU ticks (utime+stime, CLK_TCK {ticks_per_second}), children's {} ticks, at most {kids} child processes, {} threads",
        began.elapsed().as_secs_f64(),
        end.0 - start.0,
        end.1 - start.1,
        proc_status(pid, "Threads"),
    );
    println!(
        "idle: VmRSS {:.1} to {:.1} MiB, VmHWM {:.1} MiB; load average {}",
        mib(rss_min),
        mib(rss_max),
        mib(proc_status(pid, "VmHWM")),
        load()
    );
    assert_eq!(
        mirror.cycles(),
        cycles,
        "a cycle ran inside the idle window"
    );
}
