//! Issue 15's speed targets at the store level, the PostgreSQL store side by side with SQLite,
//! in one run, against a PostgreSQL server of its own (tally-pgtest: same host, TCP on
//! 127.0.0.1, SCRAM password, `fsync=on`), connected to as the hooks connect (`pgconnect`, the
//! password in a file); SQLite in a temporary directory on disk, as the hooks use it:
//!
//! 1. one-entry appends (what a one-commit push appends, checkpoint signing included) on a
//!    ledger of `TALLY_BENCH_LEDGER` entries (default 10,000), SQLite and PostgreSQL in turn;
//!    then open + append, as a hook process pays it (PostgreSQL: connect, schema check,
//!    finding the ledger). Target: PostgreSQL within 2x of SQLite;
//! 2. one writer appending back to back, then 4 "replicas" x 8 concurrent pushers: 4 child
//!    processes of this example, 8 threads each, each thread with its own connection and store
//!    moving its own branch, for `TALLY_BENCH_SECONDS` (default 10). Afterwards the ledger's
//!    size must be the sum of the appends the workers report (nothing lost), `Store::verify`
//!    must pass, and every branch's entries must be in the order its worker made them (nothing
//!    reordered). Target: at least 200 appends/s on PostgreSQL; SQLite in the same shape for
//!    comparison;
//! 3. `Store::verify` over `ENTRIES` entries (default 1,000,000), built in SQLite with bulk
//!    appends and migrated to PostgreSQL with `Store::migrate`. Target: 500,000 entries/s over
//!    PostgreSQL.
//!
//! Run with `cargo run --release -p tally-ledger --example pg_bench [-- ENTRIES]`. Environment:
//! `TALLY_BENCH_APPENDS` (one-entry appends per backend, default 500), `TALLY_BENCH_OPENS`
//! (open + append rounds, default 200), `TALLY_BENCH_LEDGER`, `TALLY_BENCH_SECONDS`, and
//! `TALLY_BENCH_ONLY=latency|throughput|verify` to run one part (for profiling).
//! Timings are printed, never asserted; a lost or reordered entry or a failed verify panics.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tally_ledger::store::Options;
use tally_ledger::{
    CommitSigner, Destination, Filter, NewEntry, Postgres, SigningKey, Store, VerifierKey,
};
use tally_pgtest::Server;

mod common;
use common::{entry, percentile};

const ORIGIN: &str = "tally/bench";
const REPO: &str = "bench";
/// The first argument of a worker process (part 2).
const WORKER: &str = "--worker";
/// Where a worker process's ledger is: in the environment, not on the command line, because a
/// PostgreSQL URL carries the password.
const WORKER_TARGET: &str = "TALLY_BENCH_WORKER_TARGET";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn vkey() -> VerifierKey {
    VerifierKey::new(ORIGIN, key().verifying_key()).unwrap()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().unwrap())
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".to_owned(), |l| l.trim().to_owned())
}

/// Where a ledger lives: a SQLite file, or a PostgreSQL database (URL without the password,
/// and the password file, as policy.toml and the hooks have them).
#[derive(Clone, Debug)]
enum Target {
    Sqlite(PathBuf),
    Pg { url: String, password_file: PathBuf },
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "SQLite",
            Target::Pg { .. } => "PostgreSQL",
        }
    }

    /// How a worker process is told about it.
    fn arg(&self) -> String {
        match self {
            Target::Sqlite(path) => format!("sqlite:{}", path.display()),
            Target::Pg { url, password_file } => format!("pg:{}|{url}", password_file.display()),
        }
    }

    fn from_arg(arg: &str) -> Target {
        match arg.strip_prefix("sqlite:") {
            Some(path) => Target::Sqlite(PathBuf::from(path)),
            None => {
                let (file, url) = arg.strip_prefix("pg:").unwrap().split_once('|').unwrap();
                Target::Pg {
                    url: url.to_owned(),
                    password_file: PathBuf::from(file),
                }
            }
        }
    }

    /// A connection made as the hooks make it (`pgconnect`).
    fn connect(&self) -> postgres::Client {
        let Target::Pg { url, password_file } = self else {
            unreachable!("only a PostgreSQL ledger is connected to")
        };
        tally_ledger::pgconnect::Target::parse(url, Some(password_file.clone()))
            .unwrap()
            .connect("tally-pg-bench")
            .unwrap()
    }

    fn database(&self) -> Postgres {
        Postgres::new(
            self.connect(),
            "the benchmark's database",
            &Options::default(),
        )
        .unwrap()
    }

    /// What a hook does first: open the store (PostgreSQL: connect, set the session up,
    /// check the schema, find the ledger).
    fn open(&self) -> Store {
        self.open_timed().0
    }

    /// Opens the store, and says how long connecting took (PostgreSQL: TCP, SCRAM-SHA-256
    /// authentication, session start-up; zero for SQLite).
    fn open_timed(&self) -> (Store, Duration) {
        match self {
            Target::Sqlite(path) => (Store::open(path).unwrap(), Duration::ZERO),
            Target::Pg { .. } => {
                let t = Instant::now();
                let client = self.connect();
                let connect = t.elapsed();
                let db = Postgres::new(client, "the benchmark's database", &Options::default());
                (Store::open_in(db.unwrap(), REPO).unwrap(), connect)
            }
        }
    }

    fn create(&self) -> Store {
        let now = jiff::Timestamp::now();
        match self {
            Target::Sqlite(path) => {
                Store::create(path, ORIGIN, REPO, now, &key(), &Options::default()).unwrap()
            }
            Target::Pg { .. } => {
                Store::create_in(self.database(), ORIGIN, REPO, now, &key()).unwrap()
            }
        }
    }
}

/// Appends entries `from..to` in appends of `batch` entries (one checkpoint each).
fn grow(store: &mut Store, from: u64, to: u64, batch: u64) {
    let now = jiff::Timestamp::now();
    let mut n = from;
    while n < to {
        let end = (n + batch).min(to);
        store
            .append((n..end).map(entry).collect(), now, &key())
            .unwrap();
        n = end;
    }
}

/// Median and p90 of milliseconds.
fn stats(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (percentile(values, 0.5), percentile(values, 0.9))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(WORKER) {
        worker(&args[1..]);
        return;
    }
    let total: u64 = args.first().map_or(1_000_000, |a| a.parse().unwrap());
    println!("load: {}", load());
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // The password in a file of mode 0600, as `tally init --ledger` keeps it.
    let password_file = dir.path().join("pgpassword");
    std::fs::write(&password_file, server.password()).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = |name: &str| -> [Target; 2] {
        server.create_database(name);
        [
            Target::Sqlite(dir.path().join(format!("{name}.db"))),
            Target::Pg {
                url: server.url(name),
                password_file: password_file.clone(),
            },
        ]
    };
    let only = std::env::var("TALLY_BENCH_ONLY").unwrap_or_default();
    let part = |name: &str| only.is_empty() || only == name;
    if part("latency") {
        append_latency(&target("latency"));
        connect_cost(&server);
        println!("load: {}", load());
    }
    if part("throughput") {
        let [sqlite, pg] = target("single");
        throughput(&sqlite, 1, 1);
        throughput(&pg, 1, 1);
        println!("load: {}", load());
        let [sqlite, pg] = target("replicas");
        throughput(&pg, 4, 8);
        throughput(&sqlite, 4, 8);
        println!("load: {}", load());
    }
    if part("verify") {
        verify_throughput(&dir.path().join("verify.db"), &target("verify")[1], total);
        println!("load: {}", load());
    }
}

/// Part 1: one-entry appends on a ledger of realistic size, then open + append per push.
fn append_latency([sqlite, pg]: &[Target; 2]) {
    let size = env("TALLY_BENCH_LEDGER", 10_000);
    let appends = env("TALLY_BENCH_APPENDS", 500);
    let opens = env("TALLY_BENCH_OPENS", 200);
    let targets = [sqlite, pg];
    let mut stores = targets.map(|t| {
        let mut store = t.create();
        let started = Instant::now();
        grow(&mut store, 0, size, 1_000);
        println!(
            "{}: {size} entries in appends of 1,000 in {:.1} s",
            t.name(),
            started.elapsed().as_secs_f64()
        );
        store
    });
    // The two backends take turns, first one then the other, so that noise hits both alike.
    let mut latency = [Vec::new(), Vec::new()];
    let mut n = size;
    for i in 0..appends {
        for b in [(i % 2) as usize, 1 - (i % 2) as usize] {
            let t = Instant::now();
            stores[b]
                .append(vec![entry(n)], jiff::Timestamp::now(), &key())
                .unwrap();
            latency[b].push(t.elapsed().as_secs_f64() * 1e3);
        }
        n += 1;
    }
    drop(stores);
    let [sq, p] = latency.each_mut().map(|l| stats(l));
    println!(
        "append of 1 entry at {size}+ entries ({appends} each, interleaved): SQLite median {:.2} ms p90 {:.2} ms; PostgreSQL median {:.2} ms p90 {:.2} ms; ratio of medians {:.2}",
        sq.0,
        sq.1,
        p.0,
        p.1,
        p.0 / sq.0
    );

    // Open + append, as a hook process does it: a fresh store (and connection) each time.
    let mut open = [Vec::new(), Vec::new()];
    let mut connect = Vec::new();
    let mut append = [Vec::new(), Vec::new()];
    let mut both = [Vec::new(), Vec::new()];
    for i in 0..opens {
        for b in [(i % 2) as usize, 1 - (i % 2) as usize] {
            let t0 = Instant::now();
            let (mut store, connected) = targets[b].open_timed();
            let t1 = Instant::now();
            store
                .append(vec![entry(n)], jiff::Timestamp::now(), &key())
                .unwrap();
            let t2 = Instant::now();
            drop(store);
            open[b].push((t1 - t0).as_secs_f64() * 1e3);
            if b == 1 {
                connect.push(connected.as_secs_f64() * 1e3);
            }
            append[b].push((t2 - t1).as_secs_f64() * 1e3);
            both[b].push((t2 - t0).as_secs_f64() * 1e3);
        }
        n += 1;
    }
    for b in 0..2 {
        let (o, a, t) = (
            stats(&mut open[b]),
            stats(&mut append[b]),
            stats(&mut both[b]),
        );
        println!(
            "{} open + append ({opens}, interleaved): open median {:.2} ms p90 {:.2} ms; append median {:.2} ms p90 {:.2} ms; open + append median {:.2} ms p90 {:.2} ms",
            targets[b].name(),
            o.0,
            o.1,
            a.0,
            a.1,
            t.0,
            t.1
        );
    }
    let c = stats(&mut connect);
    println!(
        "  of PostgreSQL's open, the connection (TCP, SCRAM-SHA-256, start-up): median {:.2} ms p90 {:.2} ms",
        c.0, c.1
    );
    println!(
        "open + append per push, PostgreSQL / SQLite: {:.2} (medians), {:.2} (p90)",
        percentile(&both[1], 0.5) / percentile(&both[0], 0.5),
        percentile(&both[1], 0.9) / percentile(&both[0], 0.9)
    );
}

/// What connecting costs, the bulk of PostgreSQL's open, with the driver's own `connect` (no
/// TLS attempt, no files read): TCP with SCRAM-SHA-256 against the unix socket with `trust`
/// (no authentication); the difference is the authentication, the rest mostly the server
/// starting a backend.
fn connect_cost(server: &Server) {
    let urls = [
        server.url_with_password("latency"),
        server.socket_url("latency"),
    ];
    let mut times = [Vec::new(), Vec::new()];
    for i in 0..env("TALLY_BENCH_OPENS", 200) {
        for u in [(i % 2) as usize, 1 - (i % 2) as usize] {
            let t = Instant::now();
            let mut client = postgres::Client::connect(&urls[u], postgres::NoTls).unwrap();
            client.simple_query("").unwrap();
            times[u].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let [tcp, socket] = times.each_mut().map(|t| stats(t));
    println!(
        "connect + one empty query: TCP with SCRAM-SHA-256 median {:.2} ms p90 {:.2} ms; unix socket, trust, median {:.2} ms p90 {:.2} ms",
        tcp.0, tcp.1, socket.0, socket.1
    );
}

/// What one worker thread did (part 2).
struct Thread {
    node: u64,
    thread: u64,
    appends: u64,
    errors: u64,
    /// When its last append ended, in microseconds after the common start.
    end_us: u64,
    latencies_us: Vec<u64>,
}

/// Part 2: `nodes` processes of `threads` threads, each moving its own branch, then the
/// checks: nothing lost, verify passes, nothing reordered.
fn throughput(target: &Target, nodes: u64, threads: u64) {
    let seconds = env("TALLY_BENCH_SECONDS", 10);
    let mut store = target.create();
    let base = store.head().unwrap().size;
    // Every worker connects first, then starts at the same instant.
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 1_000
        + 50 * nodes * threads;
    let children: Vec<_> = (0..nodes)
        .map(|node| {
            Command::new(std::env::current_exe().unwrap())
                .arg(WORKER)
                .env(WORKER_TARGET, target.arg())
                .args([node, threads, seconds, start_ms].map(|v| v.to_string()))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut done = Vec::new();
    for mut child in children {
        let out = BufReader::new(child.stdout.take().unwrap());
        for line in out.lines() {
            done.push(parse_thread(&line.unwrap()));
        }
        assert!(child.wait().unwrap().success(), "a worker failed");
    }
    let appends: u64 = done.iter().map(|t| t.appends).sum();
    let errors: u64 = done.iter().map(|t| t.errors).sum();
    let elapsed = done.iter().map(|t| t.end_us).max().unwrap_or(0) as f64 / 1e6;
    let mut latency: Vec<f64> = done
        .iter()
        .flat_map(|t| t.latencies_us.iter().map(|&us| us as f64 / 1e3))
        .collect();
    let (median, p90) = stats(&mut latency);
    let max = latency.last().copied().unwrap_or(0.0);
    println!(
        "{} {nodes} process(es) x {threads} thread(s), {seconds} s: {appends} appends in {elapsed:.2} s = {:.0} appends/s; latency median {median:.1} ms p90 {p90:.1} ms max {max:.1} ms; {errors} failed appends",
        target.name(),
        appends as f64 / elapsed,
    );
    if nodes * threads > 1 {
        let mut per: Vec<u64> = done.iter().map(|t| t.appends).collect();
        per.sort_unstable();
        println!(
            "  appends per worker: min {} median {} max {}",
            per[0],
            per[per.len() / 2],
            per[per.len() - 1]
        );
    }

    // Nothing lost: the ledger holds exactly what the workers were told was appended.
    let size = store.head().unwrap().size;
    assert_eq!(
        size - base,
        appends,
        "{}: entries lost or extra",
        target.name()
    );
    let checking = Instant::now();
    let report = store.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(report.size, size);
    // Nothing reordered: each branch's moves are its worker's 1, 2, 3, ... in ledger order.
    for t in &done {
        let log = store
            .log(&Filter {
                refname: Some(branch(t.node, t.thread)),
                ..Filter::default()
            })
            .unwrap();
        let made: Vec<u64> = log
            .iter()
            .rev()
            .map(|r| decode(r.entry.new.as_deref().unwrap(), t.node, t.thread))
            .collect();
        assert!(
            made.iter().copied().eq(1..=t.appends),
            "{}: branch {} is out of order",
            target.name(),
            branch(t.node, t.thread)
        );
    }
    // A last append, to see the ledger still takes them.
    store
        .append(vec![entry(0)], jiff::Timestamp::now(), &key())
        .unwrap();
    println!(
        "  checked in {:.1} s: size {size} = {base} + {appends} appends reported (nothing lost), verify passed ({} checkpoints), every branch in its worker's order (nothing reordered)",
        checking.elapsed().as_secs_f64(),
        report.checkpoints
    );
}

fn branch(node: u64, thread: u64) -> String {
    format!("refs/heads/node{node}-pusher{thread}")
}

/// The commit of the `k`th move of a worker's branch: node, thread and k, readable back.
fn commit(node: u64, thread: u64, k: u64) -> Vec<u8> {
    let mut id = vec![0xc0; 20];
    id[0] = node as u8;
    id[1] = thread as u8;
    id[2..10].copy_from_slice(&k.to_be_bytes());
    id
}

fn decode(id: &[u8], node: u64, thread: u64) -> u64 {
    assert_eq!(
        &id[..2],
        &[node as u8, thread as u8],
        "a move on another's branch"
    );
    u64::from_be_bytes(id[2..10].try_into().unwrap())
}

fn parse_thread(line: &str) -> Thread {
    let mut words = line.split(' ');
    let mut next = || words.next().unwrap().parse::<u64>().unwrap();
    let (node, thread, appends, errors, end_us) = (next(), next(), next(), next(), next());
    let latencies_us = line
        .split(' ')
        .skip(5)
        .map(|w| w.parse().unwrap())
        .collect();
    Thread {
        node,
        thread,
        appends,
        errors,
        end_us,
        latencies_us,
    }
}

/// A worker process ("replica"): `NODE THREADS SECONDS START_MS`, the ledger in
/// `WORKER_TARGET`. Prints one line per thread: node, thread, appends, failed appends, end
/// (us after start), latencies (us).
fn worker(args: &[String]) {
    let target = Target::from_arg(&std::env::var(WORKER_TARGET).unwrap());
    let [node, threads, seconds, start_ms] = [0, 1, 2, 3].map(|i| args[i].parse::<u64>().unwrap());
    let start = UNIX_EPOCH + Duration::from_millis(start_ms);
    let end = start + Duration::from_secs(seconds);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let target = &target;
                scope.spawn(move || pusher(target, node, thread, start, end))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for line in lines {
        println!("{line}");
    }
}

/// One pusher: its own connection and store; moves its branch from where it last put it.
fn pusher(target: &Target, node: u64, thread: u64, start: SystemTime, end: SystemTime) -> String {
    let mut store = target.open();
    let key = key();
    if let Ok(wait) = start.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
    let (mut appends, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
    while SystemTime::now() < end {
        let k = appends + 1;
        let moved = NewEntry {
            refname: branch(node, thread),
            old: (k > 1).then(|| commit(node, thread, k - 1)),
            new: Some(commit(node, thread, k)),
            commits: vec![CommitSigner {
                commit: commit(node, thread, k),
                principal: "alice@example.com".to_owned(),
                fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_owned(),
            }],
            pusher: format!("node{node}"),
            ..entry(0)
        };
        let t = Instant::now();
        match store.append(vec![moved], jiff::Timestamp::now(), &key) {
            Ok(_) => {
                appends += 1;
                latencies.push(t.elapsed().as_micros() as u64);
            }
            Err(e) => {
                errors += 1;
                eprintln!("node {node} pusher {thread}: append failed: {e}");
                // A store whose connection broke is reopened, as the next hook run would.
                store = target.open();
            }
        }
    }
    let end_us = SystemTime::now()
        .duration_since(start)
        .unwrap_or_default()
        .as_micros();
    let mut line = format!("{node} {thread} {appends} {errors} {end_us}");
    for us in latencies {
        line.push_str(&format!(" {us}"));
    }
    line
}

/// Part 3: whole-ledger verify over `total` entries: built in SQLite, migrated to
/// PostgreSQL, then verified in turns, SQLite and PostgreSQL, so that noise hits both alike.
fn verify_throughput(path: &Path, pg: &Target, total: u64) {
    let started = Instant::now();
    let mut store = Target::Sqlite(path.to_owned()).create();
    grow(&mut store, 0, total, 10_000);
    println!(
        "verify ledger: {total} entries built in SQLite in {:.1} s (appends of 10,000)",
        started.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    drop(
        store
            .migrate(
                Destination::Postgres(Box::new(pg.database())),
                &Options::default(),
                |_| Ok::<(), String>(()),
            )
            .unwrap(),
    );
    println!(
        "migrated to PostgreSQL in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let read_only = Options {
        read_only: true,
        ..Options::default()
    };
    let stores = [Store::open_with(path, &read_only).unwrap(), pg.open()];
    let verify = |b: usize| {
        let t = Instant::now();
        let report = stores[b].verify(&vkey(), |_, _| {}).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.size, total);
        (total as f64 / secs, secs, report.checkpoints)
    };
    // The first read of rows just written also sets their hint bits (PostgreSQL writes to
    // the pages it reads): reported apart.
    let (rate, secs, checkpoints) = verify(1);
    println!(
        "PostgreSQL verify, first after the migration: {total} entries, {checkpoints} checkpoints in {secs:.2} s: {rate:.0} entries/s (load {})",
        load()
    );
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..5 {
        for b in [round % 2, 1 - round % 2] {
            let (rate, secs, _) = verify(b);
            println!(
                "{} verify: {secs:.2} s, {rate:.0} entries/s (load {})",
                ["SQLite", "PostgreSQL"][b],
                load()
            );
            rates[b].push(rate);
        }
    }
    let [sq, p] = rates.each_mut().map(|r| stats(r));
    println!(
        "verify of {total} entries, median of 5 in turns: SQLite {:.0} entries/s, PostgreSQL {:.0} entries/s (PostgreSQL / SQLite {:.2})",
        sq.0,
        p.0,
        p.0 / sq.0
    );
}
