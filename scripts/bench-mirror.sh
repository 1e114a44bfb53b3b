#!/usr/bin/env bash
# Benchmarks `tally mirror` for the "Mirror (issue 14)" section of BENCHMARKS.md, everything on
# 127.0.0.1:
#
#   1. latency: one SSH-signed commit pushed through tally's hook, a signed webhook
#      (X-Hub-Signature-256), and the time from the push's completion until /status says the
#      mirror serves it; 20 pushes spaced over a second apart, then 20 back to back;
#   2. throughput: a 10,000-commit history (real SSH-signed commits pushed through the hook);
#      50 concurrent `git clone --bare` (protocol v2) from the mirror, from `git daemon` (its
#      default --max-connections, and --max-connections=0) and from `git http-backend` behind
#      nginx + fcgiwrap, all serving a copy of the mirror's served repository; 3 rounds, the
#      servers alternating within each round;
#   3. idle: a mirror of 10 branches with --interval 1m; its CPU ticks and RSS over 30 s
#      after the first cycle served them all.
#
#   scripts/bench-mirror.sh [FILTER]      # FILTER: webhook_latency, concurrent_clones, idle
#
# Environment: TALLY_BENCH_RUNS (latency runs per series, default 20), TALLY_BENCH_COMMITS
# (default 10000), TALLY_BENCH_CLIENTS (default 50), TALLY_BENCH_ROUNDS (default 3),
# TALLY_BENCH_IDLE_SECONDS (default 30); CARGO_TARGET_DIR is honoured.
#
# The benchmarks are `#[ignore]`d tests in tests/e2e/mirror/bench.rs, so that they reuse the
# end-to-end tests' hermetic environment, keys, guarded upstream and `Mirror` driver rather
# than a second copy of them in bash. They print timings and assert only correctness (the
# commit served, every clone complete at the right HEAD). Generating the 10,000 signed commits
# takes about two minutes and is not timed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
filter=${1:-}
locked=(--locked)
[ -f Cargo.lock ] || locked=()
# Every repository, socket and server log lives under one directory, removed on exit.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-mirror.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cargo build --release "${locked[@]}" --quiet
cargo test --release "${locked[@]}" --test e2e --no-run --quiet
printf 'bench-mirror: %s, %s cores, load average before: %s\n' \
  "$(date -u +%FT%TZ)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
TMPDIR=$tmp cargo test --release "${locked[@]}" --quiet --test e2e -- \
  --ignored --nocapture --test-threads=1 "mirror::bench::$filter"
printf 'bench-mirror: %s, load average after: %s\n' \
  "$(date -u +%FT%TZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
