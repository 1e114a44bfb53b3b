#!/usr/bin/env bash
# One-commit push overhead with the ledger in PostgreSQL against SQLite, side by side (issue 15).
#
#   scripts/bench-pg.sh [K]     K one-commit pushes to each repository (default 40)
#
# What it does, in a fresh temporary directory with the hermetic git configuration of
# scripts/bench.sh:
#   1. builds tally (cargo build --release) and starts a throwaway PostgreSQL server (initdb in
#      the temporary directory, as `nobody` when run as root; 127.0.0.1 and a unix socket);
#   2. makes four bare repositories: `nohook`, `sqlite` (tally init), `pg-tcp` (tally init
#      --ledger postgres://...@127.0.0.1, password from PGPASSWORD, scram-sha-256) and
#      `pg-socket` (the same database server over its unix socket);
#   3. pushes a base commit of 300 YAML files to each, then K signed one-commit pushes to each
#      in turn, rotating the order; hook time = push time - the same round's no-hook push;
#   4. checks every push landed, that each ledger verifies and holds K + 2 entries, and prints
#      markdown for BENCHMARKS.md (median and p90 of the hook time; the PostgreSQL/SQLite ratio).
set -euo pipefail

K=${1:-40}
case $K in '' | *[!0-9]* | 0) echo "usage: scripts/bench-pg.sh [K]   (K >= 1 pushes)" >&2 && exit 2 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'bench-pg: %s\n' "$*" >&2; }
die() {
	printf 'bench-pg: FAILED: %s\n' "$*" >&2
	exit 1
}
stamp() { now_us=${EPOCHREALTIME/[.,]/}; }
load_start=$(cut -d' ' -f1 /proc/loadavg)

# --- PostgreSQL binaries -------------------------------------------------------------------------
pg_bin=${PG_BIN:-}
if [ -z "$pg_bin" ]; then
	for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pg_bin=$d; done
fi
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] ||
	die "PostgreSQL is not installed (no initdb): apt-get install postgresql, or set PG_BIN"

log "building tally (cargo build --release)"
(cd "$root" && cargo build --release --locked -p tally) >&2 || die "cargo build failed"
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
	sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
tally=${target_dir:-$root/target}/release/tally

work=$(mktemp -d "${TMPDIR:-/tmp}/tally-bench-pg.XXXXXX")
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u nobody --); fi
cleanup() {
	if [ -f "$work/pg/data/postmaster.pid" ]; then
		"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- the database server -------------------------------------------------------------------------
mkdir -p "$work/pg"
[ "${#as_pg[@]}" = 0 ] || chown nobody "$work/pg"
port=$((20000 + RANDOM % 20000))
password=bench-$RANDOM$RANDOM
printf '%s\n' "$password" >"$work/pg/pw"
[ "${#as_pg[@]}" = 0 ] || chown nobody "$work/pg/pw"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres --auth-local=trust \
	--auth-host=scram-sha-256 --pwfile="$work/pg/pw" -E UTF8 --locale=C >"$work/pg/initdb.log" 2>&1 ||
	{ cat "$work/pg/initdb.log" >&2 && die "initdb failed"; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
	-o "-k $work/pg -h 127.0.0.1 -p $port" start >/dev/null ||
	{ cat "$work/pg/log" >&2 && die "the PostgreSQL server did not start"; }
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/pg" -p "$port" -U postgres "$@"; }
psql -c "CREATE DATABASE ledger ENCODING 'UTF8' TEMPLATE template0" postgres
export PGPASSWORD=$password
log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

# shellcheck source=lib/bench-env.sh
. "$root/scripts/lib/bench-env.sh"
bench_env "$work"
export PGPASSWORD=$password

# --- repositories --------------------------------------------------------------------------------
repos=(nohook sqlite pg-tcp pg-socket)
for r in "${repos[@]}"; do git init -q --bare -b main "$work/$r.git"; done
"$tally" init "$work/sqlite.git" --allowed-signers "$signers" >/dev/null
"$tally" init "$work/pg-tcp.git" --allowed-signers "$signers" \
	--ledger "postgres://postgres@127.0.0.1:$port/ledger?sslmode=disable" >/dev/null
"$tally" init "$work/pg-socket.git" --allowed-signers "$signers" \
	--ledger "postgres://postgres@/ledger?host=$work/pg&port=$port" >/dev/null

src="$work/src"
git init -q -b main "$src"
for ((f = 0; f < 300; f++)); do
	mkdir -p "$src/apps/app-$((f / 10))"
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%d\ndata:\n  rev: "0"\n' "$f" \
		>"$src/apps/app-$((f / 10))/svc-$((f % 10)).yaml"
done
git -C "$src" add -A
git -C "$src" commit -q -S -m base

push_timed() {
	local repo="$work/$1.git" sha=$2 t0 got
	stamp
	t0=$now_us
	git -C "$src" push -q "$repo" "$sha:refs/heads/main" >"$work/push.log" 2>&1 ||
		{ cat "$work/push.log" >&2 && die "push of $sha to $1 was refused"; }
	stamp
	push_us=$((now_us - t0))
	got=$(git -C "$repo" rev-parse -q --verify refs/heads/main) || got="(none)"
	[ "$got" = "$sha" ] || die "$1: main is at $got after the push, expected $sha"
}
for r in "${repos[@]}"; do push_timed "$r" "$(git -C "$src" rev-parse HEAD)"; done

log "timing $K one-commit pushes to each repository"
declare -A round over
for r in sqlite pg-tcp pg-socket; do over[$r]=""; done
for ((k = 1; k <= K; k++)); do
	f=$((k % 300))
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%d\ndata:\n  rev: "%d"\n' "$f" "$k" \
		>"$src/apps/app-$((f / 10))/svc-$((f % 10)).yaml"
	git -C "$src" commit -q -S -a -m "roll $k"
	sha=$(git -C "$src" rev-parse HEAD)
	for ((j = 0; j < ${#repos[@]}; j++)); do
		r=${repos[$(((k + j) % ${#repos[@]}))]}
		push_timed "$r" "$sha"
		round[$r]=$push_us
	done
	for r in sqlite pg-tcp pg-socket; do
		over[$r]+=" $((round[$r] - round[nohook]))"
	done
	no_hook+=" ${round[nohook]}"
done

for r in sqlite pg-tcp pg-socket; do
	out=$("$tally" ledger verify --repo "$work/$r.git") || die "$r: tally ledger verify failed: $out"
	n=$("$tally" log --repo "$work/$r.git" --json | grep -c '"seq"') || true
	[ "$n" = $((K + 2)) ] || die "$r: expected $((K + 2)) entries, found $n"
done

stats() {
	# shellcheck disable=SC2086
	printf '%s\n' $1 | sort -n | awk '
		{ v[NR] = $1 }
		END {
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			printf "%.1f %.1f", med / 1000, v[r] / 1000
		}'
}
read -r nh_med nh_p90 <<<"$(stats "$no_hook")"
read -r sq_med sq_p90 <<<"$(stats "${over[sqlite]}")"
read -r tcp_med tcp_p90 <<<"$(stats "${over[pg-tcp]}")"
read -r so_med so_p90 <<<"$(stats "${over[pg-socket]}")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<EOF
One-commit push, $K pushes to each in turn ($(date -u +%Y-%m-%dT%H:%MZ), load $load_start -> $(cut -d' ' -f1 /proc/loadavg)):

| ledger | hook time, median ms | p90 ms | / SQLite (median) |
|---|---|---|---|
| SQLite in the repository | $sq_med | $sq_p90 | 1.00 |
| PostgreSQL, same host, TCP 127.0.0.1 (scram-sha-256) | $tcp_med | $tcp_p90 | $(ratio "$tcp_med" "$sq_med") |
| PostgreSQL, same host, unix socket | $so_med | $so_p90 | $(ratio "$so_med" "$sq_med") |

No-hook push: median $nh_med ms, p90 $nh_p90 ms. Hook time = push time - the same round's no-hook push.
EOF
