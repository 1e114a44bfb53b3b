#!/usr/bin/env bash
# Benchmarks tally's server hooks against a stock-git pre-receive hook and against no hook.
#
#   scripts/bench.sh [N]        N signed commits in the big push (default 1000; 10000 for the
#                               figures in BENCHMARKS.md)
#
# Environment: BENCH_K (one-commit pushes, default 20), BENCH_R (repetitions of the cheap N-commit
# pushes, default 3), BENCH_KEEP=1 (keep the work directory).
#
# What it does, all in a fresh temporary directory with a hermetic git configuration:
#   1. builds tally as scripts/install.sh does (static-pie on Linux with glibc, tally-shim
#      beside it on x86_64) and as the ordinary `cargo build --release`; makes an ed25519 signing key plus an allowed_signers
#      file;
#   2. makes a work repository: a base commit of 300 Kubernetes-like YAML files, then N signed
#      commits that each modify one file;
#   3. makes three kinds of bare repository: `tally` (tally init), `baseline` (scripts/
#      baseline-pre-receive.sh as hooks/pre-receive) and `nohook`; pushes the base commit to
#      each, then times the push of the N commits (median of R pushes into R fresh repositories
#      for nohook and tally, a single push for the minutes-long baseline); hook time = push
#      time - nohook push time;
#   4. measures the peak RSS of tally's hooks during the same N-commit push into another tally
#      repository whose hooks run under GNU time (so that the timed pushes are unwrapped);
#   5. makes K one-commit pushes to each in turn, plus `tally-pre` (tally's pre-receive alone)
#      and `tally-dyn` (set up by the ordinary build), rotating the order so that machine noise
#      hits all alike, and reports median and p90;
#   6. prints markdown tables for BENCHMARKS.md on stdout (progress goes to stderr).
# Every push must be accepted and move the branch to the expected commit, or the script fails.
set -euo pipefail

N=${1:-1000}
K=${BENCH_K:-20}
R=${BENCH_R:-3}
case $N in '' | *[!0-9]* | 0) echo "usage: scripts/bench.sh [N]   (N >= 1 commits)" >&2 && exit 2 ;; esac
case $K in '' | *[!0-9]* | 0) echo "bench: BENCH_K must be a positive integer" >&2 && exit 2 ;; esac
case $R in '' | *[!0-9]* | 0) echo "bench: BENCH_R must be a positive integer" >&2 && exit 2 ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: FAILED: %s\n' "$*" >&2
	exit 1
}

# Wall-clock stamp in microseconds, without forking when bash has EPOCHREALTIME (bash >= 5).
stamp() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		now_us=${EPOCHREALTIME/[.,]/}
	else
		now_us=$(($(date +%s%N) / 1000))
	fi
}
# Formats microseconds as milliseconds with the given number of decimals (default 1).
ms() { awk -v u="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, u / 1000 }'; }

load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown)

# --- build ------------------------------------------------------------------------------------
locked=(--locked)
[ -f "$root/Cargo.lock" ] || locked=()
# The binary scripts/install.sh installs (static-pie on Linux with glibc) is what is measured;
# the ordinary `cargo build` binary (dynamically linked) also takes the one-commit pushes, side
# by side, so the difference the static link makes is in the same run.
log "building tally as scripts/install.sh does"
tally=$("$root/scripts/install.sh" --build) || die "scripts/install.sh --build failed"
[ -x "$tally" ] || die "no tally binary at $tally"
log "building tally (cargo build --release ${locked[*]} -p tally)"
(cd "$root" && cargo build --release "${locked[@]}" -p tally) >&2 || die "cargo build failed"
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
	sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
tally_dyn=${target_dir:-$root/target}/release/tally
[ -x "$tally_dyn" ] || die "no tally binary at $tally_dyn"
if cmp -s "$tally" "$tally_dyn"; then
	tally_build="the ordinary build (no static build for this platform)"
else
	tally_build="static-pie, from scripts/install.sh"
fi
# install.sh puts tally-shim beside the binary where it builds one (x86_64 Linux); `tally
# init` then uses it for the reference-transaction hook. The ordinary build has none.
if [ -x "$(dirname "$tally")/tally-shim" ]; then
	tally_build="$tally_build, with tally-shim"
fi

# --- GNU time, for peak RSS --------------------------------------------------------------------
if ! /usr/bin/time -f '%M' true >/dev/null 2>&1; then
	log "GNU time (/usr/bin/time) is missing: installing it with 'apt-get install -y time'"
	sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get install -y time >&2 ||
		{ "${sudo[@]}" apt-get update >&2 && "${sudo[@]}" apt-get install -y time >&2; } ||
		die "could not install GNU time; install the 'time' package and re-run"
fi

# --- hermetic environment -----------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/tally-bench.XXXXXX")
cleanup() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# shellcheck source=lib/bench-env.sh
. "$root/scripts/lib/bench-env.sh"
bench_env "$work"

date_base=1700000000
# Fixed, strictly increasing commit dates: commit number $1 is one minute after commit $1 - 1.
set_date() {
	export GIT_AUTHOR_DATE="$((date_base + $1 * 60)) +0000"
	export GIT_COMMITTER_DATE="$GIT_AUTHOR_DATE"
}

# --- work repository ---------------------------------------------------------------------------
apps=30
per_app=10
files=$((apps * per_app))

# Prints a Kubernetes-like Deployment for app $1, service $2, at revision $3.
yaml_doc() {
	printf '%s\n' \
		"apiVersion: apps/v1" \
		"kind: Deployment" \
		"metadata:" \
		"  name: app-$1-svc-$2" \
		"  namespace: app-$1" \
		"  labels:" \
		"    app.kubernetes.io/name: app-$1-svc-$2" \
		"    app.kubernetes.io/part-of: app-$1" \
		"spec:" \
		"  replicas: $(($3 % 5 + 1))" \
		"  selector:" \
		"    matchLabels:" \
		"      app: app-$1-svc-$2" \
		"  template:" \
		"    metadata:" \
		"      labels:" \
		"        app: app-$1-svc-$2" \
		"    spec:" \
		"      containers:" \
		"        - name: main" \
		"          image: \"registry.example.com/app-$1/svc-$2:1.$3.0\"" \
		"          ports:" \
		"            - containerPort: 8080" \
		"          resources:" \
		"            limits: {cpu: 500m, memory: 256Mi}" \
		"          env:" \
		"            - name: REVISION" \
		"              value: \"$3\""
}
# Commit number $1 (>= 1) modifies file (($1 - 1) mod 300); sets app, svc and path.
pick_file() {
	local f=$((($1 - 1) % files))
	printf -v app '%02d' $((f / per_app))
	svc=$((f % per_app))
	path="apps/app-$app/svc-$svc.yaml"
}

src="$work/src"
git init -q -b main "$src"
log "writing the base tree ($files YAML files)"
for ((f = 0; f < files; f++)); do
	printf -v app '%02d' $((f / per_app))
	svc=$((f % per_app))
	mkdir -p "$src/apps/app-$app"
	yaml_doc "$app" "$svc" 0 >"$src/apps/app-$app/svc-$svc.yaml"
done
git -C "$src" add -A
set_date 0
git -C "$src" commit -q -S -m "base: $files applications"
base=$(git -C "$src" rev-parse HEAD)

# Generation. `git commit -S` per commit pays for the index, hooks and porcelain on top of the
# signature; instead, git fast-import writes all N trees in one process (unsigned scaffolding
# commits on a scratch ref), then `git commit-tree -S` re-commits each tree on a signed chain:
# one real `ssh-keygen -Y sign` signature made by git per commit, no index work.
log "generating $N signed commits"
stamp
gen_t0=$now_us
{
	for ((i = 1; i <= N; i++)); do
		pick_file "$i"
		printf 'commit refs/bench/scaffold\ncommitter Bench <bench@example.com> %d +0000\n' \
			$((date_base + i * 60))
		printf 'data <<EOM\nscaffold %d\nEOM\n' "$i"
		[ "$i" -gt 1 ] || printf 'from %s\n' "$base"
		printf 'M 100644 inline %s\ndata <<EOY\n' "$path"
		yaml_doc "$app" "$svc" "$i"
		printf 'EOY\n\n'
	done
	printf 'done\n'
} | git -C "$src" fast-import --quiet --done
git -C "$src" log --reverse --format=%T "$base..refs/bench/scaffold" >"$work/trees"
[ "$(wc -l <"$work/trees")" -eq "$N" ] || die "fast-import did not produce $N trees"
parent=$base
i=0
while IFS= read -r tree; do
	i=$((i + 1))
	pick_file "$i"
	set_date "$i"
	parent=$(git -C "$src" commit-tree -S -p "$parent" -m "app-$app: roll svc-$svc to 1.$i.0" "$tree" </dev/null)
done <"$work/trees"
git -C "$src" update-ref refs/heads/main "$parent"
git -C "$src" update-ref -d refs/bench/scaffold
git -C "$src" reset -q --hard main
stamp
gen_us=$((now_us - gen_t0))
tip=$(git -C "$src" rev-parse main)
[ "$(git -C "$src" rev-list --count "$base..$tip")" -eq "$N" ] || die "expected $N new commits"
git -C "$src" -c gpg.ssh.allowedSignersFile="$signers" verify-commit "$tip" 2>/dev/null ||
	die "the generated tip $tip does not carry a good signature"
log "generated $N signed commits in $(ms "$gen_us" 0) ms ($(ms $((gen_us / N)) 2) ms/commit)"

# --- bare repositories -------------------------------------------------------------------------
# nohook and tally get R repositories each (nohook, nohook-2, ...), one per timed N-commit push;
# the first of each also takes the one-commit pushes.
nohook_repos=(nohook) tally_repos=(tally)
for ((rep = 2; rep <= R; rep++)); do
	nohook_repos+=("nohook-$rep")
	tally_repos+=("tally-$rep")
done
all_repos=(warmup baseline "${nohook_repos[@]}" "${tally_repos[@]}" tally-mem tally-pre tally-dyn)
for r in "${all_repos[@]}"; do
	git init -q --bare -b main "$work/$r.git"
done
for r in "${tally_repos[@]}" tally-mem tally-pre tally-dyn; do
	bin=$tally
	[ "$r" != tally-dyn ] || bin=$tally_dyn
	"$bin" init "$work/$r.git" --allowed-signers "$signers" >"$work/init.log" 2>&1 ||
		{ cat "$work/init.log" >&2 && die "tally init $work/$r.git failed"; }
	[ -f "$work/$r.git/tally/policy.toml" ] || die "tally init wrote no $r.git/tally/policy.toml"
	[ -x "$work/$r.git/hooks/pre-receive" ] || die "tally init installed no hooks/pre-receive"
done
# tally-pre: tally's checks alone, as on a platform that runs only pre-receive (no ledger
# append, no publication), for the pre-receive share of a one-commit push.
rm "$work/tally-pre.git/hooks/reference-transaction"
cp "$root/scripts/baseline-pre-receive.sh" "$work/baseline.git/hooks/pre-receive"
chmod +x "$work/baseline.git/hooks/pre-receive"
git -C "$work/baseline.git" config gpg.format ssh
git -C "$work/baseline.git" config gpg.ssh.allowedSignersFile "$signers"

# Pushes $2 to main of bare repository $1 (a name under $work); sets push_us. Fails loudly unless
# the push is accepted and the branch is at $2 afterwards.
push_timed() {
	local repo="$work/$1.git" sha=$2 t0 got
	stamp
	t0=$now_us
	if ! git -C "$src" push -q "$repo" "$sha:refs/heads/main" >"$work/push.log" 2>&1; then
		cat "$work/push.log" >&2
		die "push of $sha to $1 was refused"
	fi
	stamp
	push_us=$((now_us - t0))
	got=$(git -C "$repo" rev-parse -q --verify refs/heads/main) || got="(none)"
	[ "$got" = "$sha" ] || die "$1: main is at $got after the push, expected $sha"
}

# Pushes $2 to main of $1 expecting a refusal, and checks that main stayed at $3.
push_refused() {
	local repo="$work/$1.git" got
	if git -C "$src" push -q "$repo" "$2:refs/heads/main" >"$work/push.log" 2>&1; then
		die "$1 accepted $2, which it must refuse"
	fi
	got=$(git -C "$repo" rev-parse -q --verify refs/heads/main) || got="(none)"
	[ "$got" = "$3" ] || die "$1: main moved to $got on a refused push, expected $3"
}

log "pushing the base commit to every repository"
for r in "${all_repos[@]}"; do
	push_timed "$r" "$base"
done

# A hook that accepts everything would make the comparison meaningless: check that both hooks
# refuse an unsigned commit before timing them.
set_date 1
unsigned=$(git -C "$src" commit-tree --no-gpg-sign -p "$base" -m "unsigned" "$base^{tree}")
for r in baseline tally; do
	push_refused "$r" "$unsigned" "$base"
done
log "baseline and tally both refuse an unsigned commit"

# --- the N-commit push --------------------------------------------------------------------------
log "warm-up push of $N commits (not reported)"
push_timed warmup "$tip"
# Prints the median of its integer arguments (the lower middle one for an even count).
median_int() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
big_nohook=() big_tally=()
for ((rep = 0; rep < R; rep++)); do
	for r in "${nohook_repos[rep]}" "${tally_repos[rep]}"; do
		log "timing the push of $N commits to $r"
		push_timed "$r" "$tip"
		log "  $r: $(ms "$push_us" 0) ms"
		case $r in
		nohook*) big_nohook+=("$push_us") ;;
		*) big_tally+=("$push_us") ;;
		esac
	done
done
log "timing the push of $N commits to baseline"
push_timed baseline "$tip"
log "  baseline: $(ms "$push_us" 0) ms"
declare -A big_us
big_us[baseline]=$push_us
big_us[nohook]=$(median_int "${big_nohook[@]}")
big_us[tally]=$(median_int "${big_tally[@]}")

# Peak RSS: the same push into tally-mem, whose every hook runs under GNU time. The originals
# keep their names (in another directory) in case tally dispatches on argv[0].
log "measuring peak RSS of tally's hooks during the push of $N commits"
mem="$work/tally-mem.git"
mkdir -p "$mem/orig-hooks" "$work/rss"
hook_names=()
for h in "$mem"/hooks/*; do
	name=${h##*/}
	case $name in *.sample) continue ;; esac
	[ -x "$h" ] || continue
	hook_names+=("$name")
	mv "$h" "$mem/orig-hooks/$name"
	{
		printf '#!/usr/bin/env bash\n'
		printf 'exec /usr/bin/time -a -o %q -f %%M %q "$@"\n' "$work/rss/$name" "$mem/orig-hooks/$name"
	} >"$h"
	chmod +x "$h"
done
push_timed tally-mem "$tip"
rss_summary=""
rss_pre_receive=""
for name in "${hook_names[@]}"; do
	[ -s "$work/rss/$name" ] || continue
	kib=$(sort -n "$work/rss/$name" | tail -n 1)
	mib=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')
	runs=$(wc -l <"$work/rss/$name")
	[ "$name" != pre-receive ] || rss_pre_receive=$mib
	rss_summary+="${rss_summary:+, }$name $mib MiB"
	[ "$runs" -eq 1 ] || rss_summary+=" (max of $runs runs)"
done
[ -n "$rss_pre_receive" ] || die "no peak RSS recorded for tally's pre-receive"
log "  peak RSS: $rss_summary"

# --- one-commit pushes --------------------------------------------------------------------------
log "bringing tally-pre and tally-dyn to the same state (untimed)"
push_timed tally-pre "$tip"
push_timed tally-dyn "$tip"
log "timing $K one-commit pushes to each repository"
repos=(nohook baseline tally tally-pre tally-dyn)
one_nohook=() one_baseline=() one_tally=() one_pre=() one_dyn=()
over_baseline=() over_tally=() over_pre=() over_dyn=()
declare -A round
commit_us=0
for ((k = 1; k <= K; k++)); do
	i=$((N + k))
	pick_file "$i"
	yaml_doc "$app" "$svc" "$i" >"$src/$path"
	set_date "$i"
	stamp
	t0=$now_us
	git -C "$src" commit -q -S -a -m "app-$app: roll svc-$svc to 1.$i.0"
	stamp
	commit_us=$((commit_us + now_us - t0))
	sha=$(git -C "$src" rev-parse HEAD)
	# Rotate which repository goes first, so no one always pays for a cold cache.
	for ((j = 0; j < ${#repos[@]}; j++)); do
		r=${repos[$(((k + j) % ${#repos[@]}))]}
		push_timed "$r" "$sha"
		round[$r]=$push_us
	done
	one_nohook+=("${round[nohook]}")
	one_baseline+=("${round[baseline]}")
	one_tally+=("${round[tally]}")
	one_pre+=("${round[tally-pre]}")
	one_dyn+=("${round[tally-dyn]}")
	# Overheads are paired per round: both pushes of a difference saw the same machine state.
	over_baseline+=($((round[baseline] - round[nohook])))
	over_tally+=($((round[tally] - round[nohook])))
	over_pre+=($((round[tally-pre] - round[nohook])))
	over_dyn+=($((round[tally-dyn] - round[nohook])))
done

# Prints "median p90" (nearest rank) of the microsecond values given as arguments, in ms.
stats() {
	printf '%s\n' "$@" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			printf "%.1f %.1f", med / 1000, v[r] / 1000
		}'
}
median() { stats "$@" | cut -d' ' -f1; }
# Prints its microsecond arguments as a comma-separated list of whole milliseconds.
list_ms() { printf '%s\n' "$@" | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 / 1000 }'; }

# --- report -------------------------------------------------------------------------------------
hook_baseline=$((big_us[baseline] - big_us[nohook]))
hook_tally=$((big_us[tally] - big_us[nohook]))
if [ "$hook_tally" -gt 0 ]; then
	speedup="$(awk -v b="$hook_baseline" -v t="$hook_tally" 'BEGIN { printf (b / t < 10 ? "%.1f" : "%.0f"), b / t }')x"
else
	speedup="n/a (tally's hook time is within the noise of the no-hook push)"
fi
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
tally_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	tally_rev+=" (with uncommitted changes)"
fi
read -r nohook_med nohook_p90 <<<"$(stats "${one_nohook[@]}")"
read -r baseline_med baseline_p90 <<<"$(stats "${one_baseline[@]}")"
read -r tally_med tally_p90 <<<"$(stats "${one_tally[@]}")"
read -r pre_med pre_p90 <<<"$(stats "${one_pre[@]}")"
read -r dyn_med dyn_p90 <<<"$(stats "${one_dyn[@]}")"

cat <<EOF

### Push of N = $N signed commits

| repository | push (ms) | hook time (ms) | hook time per commit (ms) |
|---|---:|---:|---:|
| no hook (median of $R) | $(ms "${big_us[nohook]}" 0) | - | - |
| stock git hook (baseline) | $(ms "${big_us[baseline]}" 0) | $(ms "$hook_baseline" 0) | $(ms $((hook_baseline / N)) 3) |
| tally (median of $R) | $(ms "${big_us[tally]}" 0) | $(ms "$hook_tally" 0) | $(ms $((hook_tally / N)) 3) |

- tally vs baseline on hook time: **$speedup**
- tally's peak RSS during this push (GNU time, per hook): **$rss_summary**
- hook time = push time minus the no-hook push time, after a warm-up push; nohook and tally:
  median of $R pushes (all: nohook $(list_ms "${big_nohook[@]}"); tally $(list_ms "${big_tally[@]}") ms),
  baseline: one push

### One-commit pushes (K = $K, interleaved)

| repository | median (ms) | p90 (ms) | overhead vs no hook, median (ms) |
|---|---:|---:|---:|
| no hook | $nohook_med | $nohook_p90 | - |
| stock git hook (baseline) | $baseline_med | $baseline_p90 | $(median "${over_baseline[@]}") |
| tally (all hooks: checks, ledger append, publication) | $tally_med | $tally_p90 | $(median "${over_tally[@]}") |
| tally pre-receive only (the checks) | $pre_med | $pre_p90 | $(median "${over_pre[@]}") |
| tally, all hooks, ordinary dynamically linked build | $dyn_med | $dyn_p90 | $(median "${over_dyn[@]}") |

- overhead = median over the K rounds of (push time - no-hook push time of the same round)
- tally binary: $tally_build

### Setup

- commits: base tree of $files YAML files (apps/app-NN/svc-N.yaml), each further commit modifies
  one file; ed25519 SSH signatures made by git (ssh-keygen -Y sign)
- generation of the $N commits: $(ms "$gen_us" 0) ms ($(ms $((gen_us / N)) 2) ms/commit: git
  fast-import for the trees, git commit-tree -S per commit); git commit -S: $(ms $((commit_us / K)) 1) ms/commit
- machine: $(nproc) CPU(s), ${cpu:-unknown CPU}; $(uname -sr); $(git --version); $(ssh -V 2>&1);
  load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end
- tally $tally_rev, measured $(date -u '+%Y-%m-%d %H:%M UTC')
EOF
