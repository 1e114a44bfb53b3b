# Sourced by scripts/bench.sh and scripts/compare-hooks.sh: the hermetic git environment
# their pushes run in.
#
#   bench_env WORK    HOME, a global git config and an ed25519 signing key, all under WORK;
#                     sets $signers to the allowed_signers file that lists the key.

bench_env() {
	local work=$1
	unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
		GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_NAMESPACE SSH_AUTH_SOCK GIT_TRACE2_PERF
	export HOME="$work" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/gitconfig" LC_ALL=C TZ=UTC
	export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com
	export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com
	: >"$GIT_CONFIG_GLOBAL"

	mkdir -p "$work/keys"
	ssh-keygen -q -t ed25519 -N '' -C bench@example.com -f "$work/keys/bench"
	signers="$work/allowed_signers"
	printf 'bench@example.com %s\n' "$(cut -d' ' -f1,2 "$work/keys/bench.pub")" >"$signers"

	git config --global user.name Bench
	git config --global user.email bench@example.com
	git config --global user.signingkey "$work/keys/bench"
	git config --global gpg.format ssh
	git config --global commit.gpgsign true
	git config --global init.defaultBranch main
	# No background maintenance inside a timed push, in any of the repositories.
	git config --global gc.auto 0
	git config --global maintenance.auto false
	git config --global receive.autogc false
}
