//! Crashes and concurrency: processes appending to one ledger are killed with SIGKILL at
//! arbitrary instants, and writers race each other; the ledger always verifies afterwards.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tally_ledger::store::Options;
use tally_ledger::{CommitSigner, Kind, NewEntry, SigningKey, Store, VerifierKey};

const ORIGIN: &str = "tally/crash";
const CHILD_ENV: &str = "TALLY_LEDGER_CRASH_CHILD";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn vkey() -> VerifierKey {
    VerifierKey::new(ORIGIN, key().verifying_key()).unwrap()
}

fn entry(n: u64) -> NewEntry {
    NewEntry {
        kind: Kind::Accepted,
        // A branch of its own per entry, created from nothing: continuous whatever order
        // concurrent writers append in.
        refname: format!("refs/heads/b{n}"),
        old: None,
        new: Some(vec![(n % 241) as u8; 20]),
        new_tree: Some(vec![7; 20]),
        commits: vec![CommitSigner {
            commit: vec![1; 20],
            principal: "p".to_owned(),
            fingerprint: "f".to_owned(),
        }],
        pusher: format!("pusher-{n}"),
        policy_digest: [0; 32],
        reasons: vec![],
        aborts: None,
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn create(path: &Path) {
    Store::create(path, ORIGIN, "crash", now(), &key(), &Options::default()).unwrap();
}

/// The body of the child processes: append forever (until killed), in batches of 1 to 3,
/// with a heartbeat now and then. Does nothing when run as an ordinary test.
#[test]
#[ignore = "run as a child process by the crash tests"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(Path::new(&path)).unwrap();
    let mut n = 0u64;
    loop {
        let batch = (0..n % 3 + 1).map(|i| entry(n + i)).collect();
        store.append(batch, now(), &key()).unwrap();
        if n.is_multiple_of(7) {
            store.checkpoint(now(), &key()).unwrap();
        }
        n += 1;
    }
}

fn spawn_child(path: &Path) -> std::process::Child {
    // The test harness names a test by its module path in this binary.
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sigkill_at_any_instant_leaves_a_ledger_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    create(&path);
    let mut last_size = 0;
    for round in 0..8u64 {
        // Two writers at once, killed at staggered instants.
        let mut a = spawn_child(&path);
        let mut b = spawn_child(&path);
        std::thread::sleep(Duration::from_millis(80 + 23 * round));
        a.kill().unwrap();
        std::thread::sleep(Duration::from_millis(round * 3));
        b.kill().unwrap();
        a.wait().unwrap();
        b.wait().unwrap();
        let store = Store::open(&path).unwrap();
        let report = store
            .verify(&vkey(), |_, _| {})
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(report.size >= last_size, "round {round}: the ledger shrank");
        last_size = report.size;
    }
    assert!(last_size > 0, "the children never appended anything");
}

#[test]
fn concurrent_writers_serialise_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    create(&path);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..4u64 {
            let path = &path;
            scope.spawn(move || {
                let mut store = Store::open(path).unwrap();
                for i in 0..25 {
                    store
                        .append(vec![entry(w * 100 + i)], now(), &key())
                        .unwrap();
                }
            });
        }
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify(&vkey(), |_, _| {}).unwrap();
    assert_eq!(report.size, 100);
    let mut pushers: Vec<String> = store
        .entries(0..100)
        .unwrap()
        .into_iter()
        .map(|r| r.entry.pusher)
        .collect();
    pushers.sort();
    pushers.dedup();
    assert_eq!(pushers.len(), 100, "an append was lost or doubled");
    assert!(started.elapsed() < Duration::from_secs(60));
}
