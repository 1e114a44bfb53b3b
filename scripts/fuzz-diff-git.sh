#!/usr/bin/env bash
# Replays fuzz corpora of commit objects through real git and compares with tally's parse.
#
#   scripts/fuzz-diff-git.sh [DIR...]     (default: fuzz/corpus/commit_diff fuzz/corpus/commit)
#
# Why a replay and not git inside the fuzzer: a git process per input would cut the fuzzer
# from tens of thousands of inputs a second to a few hundred. So the commit_diff fuzz target
# compares tally with a model of git's readers compiled into the target, and this script checks
# both against git itself on everything the fuzzer kept (its corpus holds the inputs that
# reached new code, which is where parsers disagree).
#
# For every file tally's Commit::parse accepts (the ignored test replay_corpus_against_git in
# verify/tests/git_agrees/):
#   - `git hash-object -t commit` (which runs fsck) accepts it,
#   - `git log --format=%cn%x00%ce%x00%ct` on the object written with `--literally` shows the
#     committer name, email and date tally read,
#   - if tally verifies its signature, `git verify-commit --raw` verifies it too, trusting the
#     signature's key for any principal (both verifying the same signature bytes means both took
#     the same payload).
# Files tally refuses are skipped: tally may refuse more than git, never less. Exits non-zero on
# the first disagreement, naming the file.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -eq 0 ]; then
    set -- "$root/fuzz/corpus/commit_diff" "$root/fuzz/corpus/commit"
fi
cd "$root"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for dir in "$@"; do
    dir=$(cd "$dir" && pwd)
    echo "== replaying $dir through git"
    if TALLY_GIT_REPLAY=$dir cargo test -q -p tally-verify --test git_agrees \
        replay_corpus_against_git -- --ignored --nocapture >"$log" 2>&1; then
        grep ' files: ' "$log" || true
    else
        cat "$log"
        echo "fuzz-diff-git: tally and git disagree on a file in $dir (see the panic above)" >&2
        exit 1
    fi
done
echo "fuzz-diff-git: git agrees with tally on every commit tally accepts"
