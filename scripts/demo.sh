#!/usr/bin/env bash
# End-to-end demo of tally guarding a GitOps branch, with real git pushes.
#
#   scripts/demo.sh        (from the repository root)
#
# Builds tally, makes a bare repository guarded by `tally init`, then shows one accepted push
# and seven pushes that tally must refuse: unsigned, signed by an unknown key, an executable
# script, a merge commit, a force push, invalid YAML, and a billion-laughs YAML document.
# Then the ledger: `tally log` lists all eight, `tally ledger verify` checks it, a hand-made
# `git update-ref` of main on the server is refused and recorded, and refs/tally/ledger
# publishes it all. Finally a deployment agent pins the ledger key, pulls what the ledger
# accepted (twice), and refuses a mirror that serves an older copy of the server (rollback);
# `tally mirror` serves the accepted commit over HTTP to any git client and never serves a
# branch moved on the server by hand; and an auditor's export bundle verifies offline, until
# one of its rows is edited.
# Everything happens in a temporary directory (removed at exit) with a
# hermetic git configuration. Exits 0 only if every step behaves as expected.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything the demo shows goes to standard output, in order: what tally and git print on
# stderr (refusals, the agent's report) included.
exec 2>&1

die() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

# Quotes a word for display only when it needs it.
quote() {
	case $1 in
	'' | *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
	*) printf '%s' "$1" ;;
	esac
}
# Prints a command, then runs it.
show() {
	local word line='$'
	for word in "$@"; do line+=" $(quote "$word")"; done
	printf '%s\n' "$line"
	"$@"
}
heading() { printf '\n== %s\n' "$*"; }
# Writes stdin to file $1 and shows it.
write() {
	mkdir -p "$(dirname "$1")"
	cat >"$1"
	printf '$ cat %s\n' "$(quote "$1")"
	sed 's/^/    /' "$1" | shorten
}
# Shortens a displayed line longer than 99 columns (a public key) to 95 columns and "...".
shorten() { sed 's/^\(.\{95\}\).\{5,\}$/\1 .../'; }
# Fixed, strictly increasing commit dates, so every run makes the same commits.
tick=0
next_date() {
	tick=$((tick + 1))
	export GIT_AUTHOR_DATE="$((1700000000 + tick * 60)) +0000"
	export GIT_COMMITTER_DATE="$GIT_AUTHOR_DATE"
}
# Shows and runs a command that makes a commit, at the next fixed date.
dated() {
	next_date
	show "$@"
}

# --- build ------------------------------------------------------------------------------------
heading "building tally"
locked=(--locked)
[ -f "$root/Cargo.lock" ] || locked=()
(cd "$root" && show cargo build --release "${locked[@]}" -p tally) || die "tally does not build"
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
	sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin_dir=${target_dir:-$root/target}/release
[ -x "$bin_dir/tally" ] || die "no tally binary at $bin_dir/tally"
export PATH="$bin_dir:$PATH"

# --- hermetic environment -----------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/tally-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
	GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_NAMESPACE SSH_AUTH_SOCK \
	GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
export HOME="$work" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/gitconfig" LC_ALL=C TZ=UTC
# tally log cuts its lines to COLUMNS, as on a terminal: the demo's lines stay under 100.
export COLUMNS=99
: >"$GIT_CONFIG_GLOBAL"
git config --global init.defaultBranch main
git config --global advice.detachedHead false
git config --global gc.auto 0
cd "$work"
printf '\n(working in %s, removed at exit)\n' "$work"

failures=()

# Pushes with `git -C <clone> push ...` (the arguments) and checks the outcome: $1 is
# "accepted" or "refused", $2 the step's name. A refused push must leave the server's main where
# it was; an accepted one must move it to the pusher's HEAD.
push_expect() {
	local want=$1 name=$2 clone=$3 before after rc
	shift 2
	before=$(git -C server.git rev-parse -q --verify main) || before="(none)"
	# git pads each remote line with spaces when its stderr is not a terminal: trimmed here.
	if show git -C "$@" 2>&1 | sed 's/ *$//'; then rc=0; else rc=$?; fi
	printf '$ git -C server.git rev-parse main\n'
	after=$(git -C server.git rev-parse -q --verify main) || after="(none)"
	printf '%s\n' "$after"
	if [ "$want" = accepted ]; then
		if [ "$rc" -eq 0 ] && [ "$after" = "$(git -C "$clone" rev-parse HEAD)" ]; then
			printf -- '-> accepted, as expected: main moved to %s\n' "$after"
		else
			printf -- '-> UNEXPECTED: this push should have been accepted (exit %s)\n' "$rc"
			failures+=("($name) was refused, but should have been accepted")
		fi
	else
		if [ "$rc" -ne 0 ] && [ "$after" = "$before" ]; then
			printf -- '-> refused, as expected: main did not move\n'
		else
			printf -- '-> UNEXPECTED: this push should have been refused (exit %s, main %s -> %s)\n' \
				"$rc" "$before" "$after"
			failures+=("($name) was accepted, but should have been refused")
		fi
		# Drop the refused work from the clone, so the next step starts from the server's state.
		if git -C "$clone" rev-parse -q --verify origin/main >/dev/null; then
			show git -C "$clone" reset -q --hard origin/main
		fi
	fi
}

deployment() { # replicas, image tag
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: $1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "registry.example.com/shop/web:$2"
EOF
}

# --- setup --------------------------------------------------------------------------------------
heading "setup: a bare repository guarded by tally, and two signing keys"
show git init -q --bare -b main server.git
show mkdir keys
show ssh-keygen -q -t ed25519 -N '' -C alice@example.com -f keys/alice
show ssh-keygen -q -t ed25519 -N '' -C mallory@example.com -f keys/mallory
printf 'alice@example.com %s\n' "$(cut -d' ' -f1,2 keys/alice.pub)" | write allowed_signers
show tally init server.git --allowed-signers allowed_signers || die "tally init failed"
[ -f server.git/tally/policy.toml ] || die "tally init did not write server.git/tally/policy.toml"
show ls server.git/tally

# Makes clone $1 committing as $1@example.com with key keys/$1, signing every commit.
make_clone() {
	show git clone -q server.git "$1"
	show git -C "$1" config user.name "$1"
	show git -C "$1" config user.email "$1@example.com"
	show git -C "$1" config gpg.format ssh
	show git -C "$1" config user.signingkey "$work/keys/$1"
	show git -C "$1" config commit.gpgsign true
}
make_clone alice 2>&1

# --- (a) ----------------------------------------------------------------------------------------
heading "(a) alice pushes a signed YAML change  [expect: accepted]"
deployment 2 1.0.0 | write alice/apps/web/deployment.yaml
show git -C alice add apps
dated git -C alice commit -q -S -m "web: deploy 1.0.0"
push_expect accepted a alice push origin main

# --- (b) ----------------------------------------------------------------------------------------
heading "(b) an unsigned commit  [expect: refused]"
deployment 3 1.0.0 | write alice/apps/web/deployment.yaml
dated git -C alice commit -q --no-gpg-sign -a -m "web: scale to 3 (unsigned)"
push_expect refused b alice push origin main

# --- (c) ----------------------------------------------------------------------------------------
heading "(c) mallory signs with her own key, which is not an allowed signer  [expect: refused]"
make_clone mallory 2>&1
deployment 2 6.6.6 | write mallory/apps/web/deployment.yaml
dated git -C mallory commit -q -S -a -m "web: deploy 6.6.6"
push_expect refused c mallory push origin main

# --- (d) ----------------------------------------------------------------------------------------
heading "(d) alice's signed commit adds an executable deploy.sh  [expect: refused]"
printf '#!/bin/sh\nkubectl apply -f apps/\n' | write alice/deploy.sh
show chmod +x alice/deploy.sh
show git -C alice add deploy.sh
dated git -C alice commit -q -S -m "add deploy script"
push_expect refused d alice push origin main

# --- (e) ----------------------------------------------------------------------------------------
heading "(e) a merge commit (every commit signed by alice)  [expect: refused]"
show git -C alice switch -q -c feature
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  ports: [{port: 80}]\n' |
	write alice/apps/web/service.yaml
show git -C alice add apps
dated git -C alice commit -q -S -m "web: add service"
show git -C alice switch -q main
deployment 2 1.0.1 | write alice/apps/web/deployment.yaml
dated git -C alice commit -q -S -a -m "web: deploy 1.0.1"
dated git -C alice merge -q --no-ff -S -m "merge feature" feature
show git -C alice log --oneline --graph
push_expect refused e alice push origin main
show git -C alice branch -q -D feature

# --- (f) ----------------------------------------------------------------------------------------
heading "(f) a force push that rewrites history  [expect: refused]"
dated git -C alice commit -q --amend -S -m "web: deploy 1.0.0 (rewritten)"
push_expect refused f alice push --force origin main

# --- (g) ----------------------------------------------------------------------------------------
heading "(g) a signed commit with invalid YAML  [expect: refused]"
printf 'apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: [2, 3\n  image: "web:1.0.2\n' |
	write alice/apps/web/deployment.yaml
dated git -C alice commit -q -S -a -m "web: deploy 1.0.2"
push_expect refused g alice push origin main

# --- (h) ----------------------------------------------------------------------------------------
heading "(h) a signed commit with a billion-laughs YAML document  [expect: refused]"
{
	printf 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
	prev=a
	for name in b c d e f g h i; do
		printf '%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n' "$name" "$name" \
			"$prev" "$prev" "$prev" "$prev" "$prev" "$prev" "$prev" "$prev" "$prev"
		prev=$name
	done
} | write alice/apps/lol.yaml
show git -C alice add apps
dated git -C alice commit -q -S -m "add config"
push_expect refused h alice push origin main

# --- (i) ----------------------------------------------------------------------------------------
heading "(i) a tag named main, which git resolves before the branch main  [expect: refused]"
push_expect refused i alice push origin HEAD:refs/tags/main

heading "the server's main after all of this: only alice's signed change"
show git -C server.git log --oneline main

# --- the ledger ---------------------------------------------------------------------------------
heading "the ledger: every accepted push and every refusal, newest first"
show tally log --repo server.git || die "tally log failed"
# One entry per line in the JSON array, so counting lines counts entries.
count_kind() {
	tally log --repo server.git --kind "$1" --json | grep -c "\"kind\":\"$1\"" || true
}
accepted=$(count_kind accepted)
rejected=$(count_kind rejected)
printf -- '-> %s accepted, %s rejected\n' "$accepted" "$rejected"
if [ "$accepted" -ne 1 ] || [ "$rejected" -ne 8 ]; then
	failures+=("(ledger) tally log shows $accepted accepted and $rejected rejected entries, expected 1 and 8")
fi
newest=$(tally log --repo server.git --branch main --kind accepted --limit 1 --json |
	sed -n 's/.*"new":"\([0-9a-f]*\)".*/\1/p')
if [ "$newest" != "$(git -C server.git rev-parse main)" ]; then
	failures+=("(ledger) the newest accepted entry records ${newest:-nothing}, but main is elsewhere")
fi

heading "tally ledger verify: every entry, the hash chain, the Merkle root, every signed checkpoint"
if show tally ledger verify --repo server.git; then
	printf -- '-> intact, as expected\n'
else
	failures+=("(ledger) tally ledger verify found a problem in an untouched ledger")
fi

heading "someone with a shell on the server moves main by hand  [expect: refused and recorded]"
before=$(git -C server.git rev-parse main)
admin=(-c user.name=admin -c user.email=admin@example.com)
# shellcheck disable=SC2016 # the command is displayed, not run, here
printf '$ hotfix=$(git -C server.git commit-tree -p main -m %s %s)\n' \
	"$(quote "hotfix (unreviewed)")" "$(quote "main^{tree}")"
hotfix=$(git -C server.git "${admin[@]}" commit-tree -p main -m "hotfix (unreviewed)" "main^{tree}") ||
	die "cannot make a commit in server.git"
if show git -C server.git update-ref refs/heads/main "$hotfix" 2>&1; then rc=0; else rc=$?; fi
after=$(git -C server.git rev-parse main)
if [ "$rc" -ne 0 ] && [ "$after" = "$before" ]; then
	printf -- '-> refused, as expected: main did not move\n'
else
	printf -- '-> UNEXPECTED: git update-ref exited %s, main %s -> %s\n' "$rc" "$before" "$after"
	failures+=("(update-ref) a hand-made move of main was not refused")
fi
show tally log --repo server.git --limit 1 || die "tally log failed"
newest=$(tally log --repo server.git --kind rejected --limit 1 --full) || die "tally log failed"
if [[ $newest != *"refs/heads/main moved outside an accepted push"* ]]; then
	failures+=("(update-ref) the refused move is not recorded as rejected in the ledger")
fi
if ! tally ledger verify --repo server.git >/dev/null; then
	failures+=("(update-ref) tally ledger verify fails after the refused move")
fi

heading "refs/tally/ledger: the ledger published in the repository itself, for agents to fetch"
git -C server.git rev-parse -q --verify refs/tally/ledger >/dev/null ||
	die "server.git has no refs/tally/ledger"
printf '$ git -C server.git log --oneline refs/tally/ledger | head -3\n'
# head may close the pipe before git has written everything: that is not a failure.
git -C server.git log --oneline refs/tally/ledger | head -3 || :

# --- the agent ----------------------------------------------------------------------------------
heading "a deployment agent: pins the ledger key and its own allowed signers, then pulls"
printf '$ tally ledger key --repo server.git > agent-ledger.pub\n'
tally ledger key --repo server.git >agent-ledger.pub || die "tally ledger key failed"
sed 's/^/    /' agent-ledger.pub | shorten
show cp allowed_signers agent-allowed_signers
show git clone -q server.git agent 2>&1
pin=(--ledger-key agent-ledger.pub --allowed-signers agent-allowed_signers)
# Runs `tally pull` in the agent's clone and prints the commit it approved.
agent_pull() {
	printf '$ tally pull --repo agent --ledger-key agent-ledger.pub --allowed-signers agent-allowed_signers\n' >&2
	tally pull --repo agent "${pin[@]}"
}
if approved=$(agent_pull); then
	printf '%s\n' "$approved"
else
	approved=""
fi
if [ "$approved" = "$(git -C server.git rev-parse main)" ] &&
	[ "$(git -C agent rev-parse HEAD)" = "$approved" ]; then
	printf -- '-> approved and checked out: the tip that the ledger accepted\n'
else
	failures+=("(agent) tally pull did not approve and check out main's tip")
fi

heading "an attacker keeps a copy of today's server, alice ships 1.1.0, the agent pulls it"
show cp -r server.git server-old.git
deployment 2 1.1.0 | write alice/apps/web/deployment.yaml
dated git -C alice commit -q -S -a -m "web: deploy 1.1.0"
push_expect accepted i alice push origin main
if approved=$(agent_pull); then
	printf '%s\n' "$approved"
else
	approved=""
fi
if [ "$approved" != "$(git -C server.git rev-parse main)" ]; then
	failures+=("(agent) tally pull did not approve alice's 1.1.0")
fi

heading "the mirror now serves the old copy (rollback)  [expect: refused, agent stays on 1.1.0]"
show git -C agent remote set-url origin "$work/server-old.git"
deployed=$(git -C agent rev-parse HEAD)
if agent_pull 2>&1; then
	failures+=("(agent) a rolled-back server was accepted")
else
	printf -- '-> refused, as expected\n'
fi
if [ "$(git -C agent rev-parse HEAD)" != "$deployed" ]; then
	failures+=("(agent) the refused pull moved the work tree")
fi
show git -C agent log --oneline -1

# --- the mirror ---------------------------------------------------------------------------------
heading "a verified mirror for Flux and Argo CD: it serves only what the agent's checks approve"
# One HTTP request over bash's /dev/tcp (no curl needed); prints the response body.
http() { # method path
	local host=${mirror_addr%:*} port=${mirror_addr##*:}
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf '%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' "$1" "$2" "$mirror_addr" >&3
	sed '1,/^\r$/d' <&3
	exec 3<&-
}
printf '$ tally mirror --upstream server.git --dir mirror --ledger-key agent-ledger.pub --allowed-signers agent-allowed_signers --listen 127.0.0.1:0 &\n'
tally mirror --upstream server.git --dir mirror "${pin[@]}" --listen 127.0.0.1:0 --interval 1h \
	>mirror.out 2>mirror.log &
mirror_pid=$!
trap 'kill "$mirror_pid" 2>/dev/null || :; rm -rf "$work"' EXIT
for _ in $(seq 200); do
	[ -s mirror.out ] && break
	sleep 0.05
done
mirror_url=$(sed -n 's/^serving //p' mirror.out)
[ -n "$mirror_url" ] || die "tally mirror did not start: $(cat mirror.log)"
cat mirror.out
mirror_addr=${mirror_url#http://}
mirror_addr=${mirror_addr%%/*}
good=$(git -C server.git rev-parse main)
for _ in $(seq 200); do
	[ "$(git ls-remote "$mirror_url" refs/heads/main 2>/dev/null | cut -f1)" = "$good" ] && break
	sleep 0.05
done
show git clone -q "$mirror_url" flux-view 2>&1
show git -C flux-view log --oneline -1
if [ "$(git -C flux-view rev-parse HEAD)" = "$good" ]; then
	printf -- '-> what Flux or Argo CD would fetch: the commit the ledger accepted\n'
else
	failures+=("(mirror) a clone of the mirror is not at the accepted commit")
fi

heading "someone writes server.git's main ref file by hand, then the webhook fires  [expect: never served]"
bad=$(git -C server.git rev-parse 'main~1')
printf '$ echo %s > server.git/refs/heads/main\n' "$bad"
echo "$bad" >server.git/refs/heads/main
printf 'POST %s/hook   (what a Gitea, GitLab or GitHub webhook sends)\n' "http://$mirror_addr"
http POST /hook
for _ in $(seq 200); do
	http GET /status | grep -q '"consecutive_failures": [1-9]' && break
	sleep 0.05
done
printf 'GET %s/status   (the branch'"'"'s last error)\n' "http://$mirror_addr"
http GET /status | sed -n '/"last_error"/,/^      }/p' | sed -n '/"class"\|"reasons"/,+2p' | shorten
show git -C flux-view pull -q --ff-only 2>&1
if [ "$(git -C flux-view rev-parse HEAD)" = "$good" ] &&
	[ "$(git ls-remote "$mirror_url" refs/heads/main | cut -f1)" = "$good" ]; then
	printf -- '-> refused; the mirror still serves the last verified commit\n'
else
	failures+=("(mirror) a branch moved outside tally was served")
fi
echo "$good" >server.git/refs/heads/main
kill "$mirror_pid" 2>/dev/null || :
wait "$mirror_pid" 2>/dev/null || :

# --- the auditor ---------------------------------------------------------------------------------
heading "an auditor's bundle: every entry, the raw ledger, the checkpoint, the policy, signed"
show tally export --repo server.git --out audit || die "tally export failed"
show ls audit
# What each file is for, as the bundle's own README says it.
printf "\$ sed -n '/^The files/,/^How to verify/p' audit/README\n"
sed -n '/^The files/,/^How to verify/{/^How to verify/d;p}' audit/README
printf '$ (cd audit && sha256sum -c --quiet MANIFEST)\n'
if (cd audit && sha256sum -c --quiet MANIFEST); then
	printf 'OK: every file matches its SHA-256 in MANIFEST\n'
else
	failures+=("(export) sha256sum -c MANIFEST failed")
fi
if show tally export verify audit --ledger-key agent-ledger.pub; then
	printf -- '-> the bundle verifies offline against the pinned ledger key\n'
else
	failures+=("(export) tally export verify refused an untouched bundle")
fi

heading "someone edits one row of the bundle's spreadsheet  [expect: detected]"
printf '$ sed -i s/alice@example.com/bob@example.com/ audit/entries.csv\n'
sed -i 's/alice@example.com/bob@example.com/' audit/entries.csv
if show tally export verify audit --ledger-key agent-ledger.pub 2>&1; then
	failures+=("(export) an edited entries.csv was not detected")
else
	printf -- '-> detected, as expected\n'
fi


# --- verdict ------------------------------------------------------------------------------------
if [ "${#failures[@]}" -gt 0 ]; then
	printf '\ndemo FAILED: %d step(s) did not behave as expected:\n' "${#failures[@]}" >&2
	printf '  %s\n' "${failures[@]}" >&2
	exit 1
fi
printf '\ndemo OK: 2 pushes accepted, 8 refused, a hand-made move refused, all in a ledger that verifies;\n'
printf 'an agent pulled what the ledger accepted and refused a rolled-back server;\n'
printf 'a verified mirror served the accepted commit and never the hand-moved one;\n'
printf 'an audit bundle verified offline, and an edit to it was detected\n'
