#!/usr/bin/env bash
# Benchmarks the deployment agent (`tally verify`) for the "Agent" section of BENCHMARKS.md:
#
#   1. one new entry on top of a pinned state, on a 1,000,000-entry ledger (the ledger is
#      built directly in the server's publication format, signed with a real ledger key; the
#      commits are real SSH-signed commits);
#   2. a first run (no state) over a 10,000-commit history pushed through tally's hook.
#
#   scripts/bench-agent.sh
#
# Environment: TALLY_BENCH_ENTRIES (ledger size, default 1000000), TALLY_BENCH_COMMITS
# (history length, default 10000). Both benchmarks are `#[ignore]`d tests in tests/e2e/agent/bench.rs;
# they time the `tally` process (startup included), print median/min/max, and assert only
# that the agent approves the expected commit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
locked=(--locked)
[ -f Cargo.lock ] || locked=()
printf 'bench-agent: load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
cargo test --release "${locked[@]}" --test e2e -- --ignored --nocapture --test-threads=1 bench_
printf 'bench-agent: load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
