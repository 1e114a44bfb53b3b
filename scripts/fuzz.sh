#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/fuzz_targets for a time budget each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default: 60 seconds, every target)
#   nice -n 19 scripts/fuzz.sh 600 commit sshsig
#
# Corpora: fuzz/corpus/<target>/. Files named seed-* are small seeds made from real objects by
# scripts/fuzz-seed.sh and committed; everything libFuzzer adds there is ignored by git
# (fuzz/.gitignore), so the corpus grows across local runs without entering history.
# Crashes: libFuzzer writes the input to fuzz/artifacts/<target>/; this script goes on with the
# other targets, prints every artifact at the end and exits 1. Reproduce one with
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>
#
# Targets are built as cargo-fuzz builds them by default: optimized, with debug assertions and
# overflow checks on (an overflow is a finding). cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain
# (install it with: cargo install cargo-fuzz --locked). After the run, scripts/fuzz-diff-git.sh
# replays the commit corpora through real git.
set -euo pipefail

seconds=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

cargo fuzz build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "== $t: ${seconds}s, corpus fuzz/corpus/$t ($(find "corpus/$t" -type f | wc -l) files)"
    if ! cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
        >"artifacts/$t.log" 2>&1; then
        failed+=("$t")
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' "artifacts/$t.log" || true
    after=$(find "artifacts/$t" -type f | wc -l)
    if [ "$after" -gt "$before" ] && [[ ! " ${failed[*]} " =~ " $t " ]]; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo
    for t in "${failed[@]}"; do
        echo "fuzz.sh: $t FAILED; log fuzz/artifacts/$t.log; artifacts:"
        find "artifacts/$t" -type f | sed 's|^|  fuzz/|'
    done
    exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s each without a crash"
