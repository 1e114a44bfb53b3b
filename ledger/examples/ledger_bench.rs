//! Grows a ledger to 1,000,000 entries in a temporary directory and measures what the hook and
//! `tally ledger verify` cost there:
//!
//! - append latency of one entry with fsync (`synchronous=FULL`), checkpoint signing included;
//! - whole-ledger verify throughput;
//! - proof generation at that size;
//! - whole-ledger verify of a ledger grown as a server grows it, one entry and one signed
//!   checkpoint per push (`TALLY_BENCH_PUSHES`, default 100,000), where the checkpoint
//!   signatures dominate: batched and spread over the cores, against checking them one by one
//!   on one core (what `tally ledger verify` did before).
//!
//! Run with `cargo run --release -p tally-ledger --example ledger_bench [-- ENTRIES]`. With
//! `TALLY_BENCH_DB=<path>` the ledger is kept there, and if it already exists only the verify
//! runs (for profiling).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use tally_ledger::store::Options;
use tally_ledger::{SigningKey, Store, VerifierKey};

mod common;
use common::{entry, percentile};

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("TALLY_BENCH_DB").map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| dir.path().join("ledger.db"));
    let key = SigningKey::from_bytes(&[1; 32]);
    let origin = "tally/bench";
    let vkey = VerifierKey::new(origin, key.verifying_key()).unwrap();
    if kept.is_some() && path.exists() {
        let store = Store::open_with(
            &path,
            &Options {
                read_only: true,
                ..Options::default()
            },
        )
        .unwrap();
        let t = Instant::now();
        let report = store.verify(&vkey, |_, _| {}).unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "verify: {} entries in {secs:.2} s: {:.0} entries/s",
            report.size,
            report.size as f64 / secs
        );
        return;
    }
    let now = jiff::Timestamp::now();
    let mut store = Store::create(&path, origin, "bench", now, &key, &Options::default()).unwrap();

    // Setup: bulk appends of 10,000 entries, one transaction (and one checkpoint) each.
    let started = Instant::now();
    let batch = 10_000u64;
    let mut n = 0;
    while n < total {
        let count = batch.min(total - n);
        store
            .append((n..n + count).map(entry).collect(), now, &key)
            .unwrap();
        n += count;
    }
    let setup = started.elapsed();
    let file_size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "setup: {total} entries in {:.1} s ({:.0} entries/s bulk), {:.0} MB on disk",
        setup.as_secs_f64(),
        total as f64 / setup.as_secs_f64(),
        file_size as f64 / 1e6
    );

    // One-entry appends, each its own fsynced transaction with a signed checkpoint.
    let mut latencies = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        store
            .append(vec![entry(total + i)], jiff::Timestamp::now(), &key)
            .unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "append 1 entry (fsync, checkpoint signed): median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // Proofs at full size.
    let size = store.head().unwrap().size;
    let t = Instant::now();
    let proof = store.inclusion_proof(size / 3, size).unwrap();
    println!(
        "inclusion proof at size {size}: {} hashes in {:.2} ms",
        proof.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let proof = store.consistency_proof(size - 1, size).unwrap();
    println!(
        "consistency proof {} -> {size}: {} hashes in {:.2} ms",
        size - 1,
        proof.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    // Checkpoint note verification (parse, Ed25519 signature and cosignature), which a
    // ledger with one checkpoint per push pays once per push.
    let note = store.latest_checkpoint().unwrap().note;
    let text = note.text().to_owned();
    let t = Instant::now();
    let rounds = 2000;
    for _ in 0..rounds {
        tally_ledger::SignedCheckpoint::parse(&text)
            .unwrap()
            .verify(&vkey)
            .unwrap();
    }
    let each = t.elapsed().as_secs_f64() / f64::from(rounds);
    println!(
        "checkpoint note verify: {:.1} us each ({:.0}/s on one core)",
        each * 1e6,
        1.0 / each
    );

    // Whole-ledger verify, twice (the second run with a warm page cache).
    let checkpoints = {
        let mut c = 0u64;
        store
            .for_each_checkpoint(|_| {
                c += 1;
                Ok(())
            })
            .unwrap();
        c
    };
    per_push_ledger(&key, &vkey, origin);
    for run in 1..=2 {
        drop(store);
        store = Store::open_with(
            &path,
            &Options {
                read_only: true,
                ..Options::default()
            },
        )
        .unwrap();
        let t = Instant::now();
        let report = store.verify(&vkey, |_, _| {}).unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "verify run {run}: {} entries and {} checkpoints in {:.2} s: {:.0} entries/s",
            report.size,
            checkpoints,
            secs,
            report.size as f64 / secs
        );
    }
}

/// A ledger of one-entry pushes, each with its own checkpoint, as the hooks write it. Built on
/// tmpfs when there is one: the fsync of every append is not what is measured here.
fn per_push_ledger(key: &SigningKey, vkey: &VerifierKey, origin: &str) {
    let pushes: u64 = std::env::var("TALLY_BENCH_PUSHES").map_or(100_000, |v| v.parse().unwrap());
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let path = dir.path().join("pushes.db");
    let now = jiff::Timestamp::now();
    let mut store = Store::create(&path, origin, "bench", now, key, &Options::default()).unwrap();
    let t = Instant::now();
    for n in 0..pushes {
        store.append(vec![entry(n)], now, key).unwrap();
    }
    println!(
        "per-push ledger: {pushes} pushes appended in {:.1} s ({} checkpoints)",
        t.elapsed().as_secs_f64(),
        pushes + 1
    );
    let mut notes = Vec::new();
    store
        .for_each_checkpoint(|c| {
            notes.push(c.note.text().to_owned());
            Ok(())
        })
        .unwrap();
    let t = Instant::now();
    for note in &notes {
        tally_ledger::SignedCheckpoint::parse(note)
            .unwrap()
            .verify(vkey)
            .unwrap();
    }
    let one_by_one = t.elapsed().as_secs_f64();
    println!(
        "  checkpoint signatures one by one on one core (the previous verify): {one_by_one:.2} s, {:.1} us per checkpoint",
        one_by_one * 1e6 / notes.len() as f64
    );
    for run in 1..=2 {
        let t = Instant::now();
        let report = store.verify(vkey, |_, _| {}).unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  tally ledger verify run {run}: {} entries, {} checkpoints in {secs:.2} s: {:.0} entries/s, {:.1} us per checkpoint",
            report.size,
            report.checkpoints,
            report.size as f64 / secs,
            secs * 1e6 / report.checkpoints as f64
        );
    }
}
