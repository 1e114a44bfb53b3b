#!/usr/bin/env bash
# Compares what two tally binaries cost a one-commit push, side by side in one run.
#
#   scripts/compare-hooks.sh OLD_TALLY NEW_TALLY [K]    (K rounds, default 30)
#
# Sets up three bare repositories in a temporary directory: one with no hook, one by
# `OLD_TALLY init`, one by `NEW_TALLY init`; pushes K one-commit pushes (real signed commits)
# to the three in turn, with git's GIT_TRACE2_PERF timing of every child process, and prints
# for each repository the median push time and the median time git spent in each hook.
# For example, the binary of another commit against this one:
#
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release -p tally)
#   scripts/compare-hooks.sh /tmp/old/target/release/tally "$(scripts/install.sh --build)"
set -euo pipefail

[ $# -ge 2 ] || {
	sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 2
}
old=$(realpath "$1")
new=$(realpath "$2")
K=${3:-30}
case $K in '' | *[!0-9]* | 0) echo "compare-hooks: K must be a positive integer" >&2 && exit 2 ;; esac
for bin in "$old" "$new"; do
	[ -x "$bin" ] || {
		echo "compare-hooks: $bin is not an executable" >&2
		exit 2
	}
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tally-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=lib/bench-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/bench-env.sh"
bench_env "$work"

repos=(nohook old new)
for r in "${repos[@]}"; do
	git init -q --bare "$work/$r.git"
done
"$old" init "$work/old.git" --allowed-signers "$signers" >/dev/null
"$new" init "$work/new.git" --allowed-signers "$signers" >/dev/null

git init -q "$work/src"
mkdir -p "$work/src/apps"
for i in $(seq 1 50); do
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%d\ndata:\n  revision: "0"\n' "$i" \
		>"$work/src/apps/app-$i.yaml"
done
git -C "$work/src" add -A
git -C "$work/src" commit -q -m base
for r in "${repos[@]}"; do
	git -C "$work/src" push -q "$work/$r.git" HEAD:refs/heads/main 2>/dev/null
done

mkdir -p "$work/trace"
for ((k = 1; k <= K; k++)); do
	sed -i "s/revision: .*/revision: \"$k\"/" "$work/src/apps/app-$((k % 50 + 1)).yaml"
	git -C "$work/src" commit -q -a -m "round $k"
	sha=$(git -C "$work/src" rev-parse HEAD)
	# Rotate the order, so that no repository always goes first.
	for ((j = 0; j < 3; j++)); do
		r=${repos[$(((k + j) % 3))]}
		GIT_TRACE2_PERF="$work/trace/$r.$k" git -C "$work/src" push -q "$work/$r.git" HEAD:refs/heads/main 2>"$work/push.log" ||
			{ cat "$work/push.log" >&2 && echo "compare-hooks: the push to $r was refused" >&2 && exit 1; }
		[ "$(git -C "$work/$r.git" rev-parse main)" = "$sha" ] ||
			{ echo "compare-hooks: $r did not move to $sha" >&2 && exit 1; }
	done
done

python3 - "$work/trace" "$K" "$old" "$new" <<'EOF'
import glob, re, statistics, sys

trace, rounds, old, new = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def parse(path):
    """Child times by what they ran, and the whole push, in ms, from one GIT_TRACE2_PERF file."""
    starts, times, total = {}, {}, None
    for line in open(path, errors="replace"):
        cols = [c.strip() for c in line.split("|")]
        if len(cols) < 9:
            continue
        if cols[3] == "atexit" and cols[1] == "d0":
            total = float(cols[5]) * 1000
        m = re.search(r"\[(ch\d+)\]", cols[8])
        if not m:
            continue
        key = (cols[1], m.group(1))
        if cols[3] == "child_start":
            hook = re.search(r"hook:(\S+) argv:\[\S+ ?([a-z]*)", cols[8])
            # reference-transaction by state; the others (update: once per ref) by name.
            if hook and hook.group(1) == "reference-transaction":
                starts[key] = f"{hook.group(1)} {hook.group(2)}".strip()
            else:
                starts[key] = hook.group(1) if hook else None
        elif cols[3] == "child_exit" and starts.get(key):
            times[starts[key]] = times.get(starts[key], 0) + float(cols[6]) * 1000
    return total, times

print(f"one-commit pushes, {rounds} rounds, medians in ms")
print(f"  old: {old}\n  new: {new}")
base = None
for repo in ["nohook", "old", "new"]:
    totals, hooks = [], {}
    for path in glob.glob(f"{trace}/{repo}.*"):
        total, times = parse(path)
        totals.append(total)
        for name, t in times.items():
            hooks.setdefault(name, []).append(t)
    med = statistics.median(totals)
    over = "" if base is None else f", {med - base:.2f} over no hook"
    base = med if base is None else base
    print(f"{repo:7s} push {med:6.2f}{over}")
    for name, ts in sorted(hooks.items()):
        print(f"          {name:32s} {statistics.median(ts):5.2f}")
EOF
