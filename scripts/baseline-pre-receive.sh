#!/usr/bin/env bash
# Stock-git pre-receive hook: the performance baseline tally is measured against.
#
# This is the hook a competent administrator would write with git's own tools, so it is meant to
# be fair rather than a strawman: one `git rev-list` per pushed ref, then exactly one
# `git verify-commit` and one `git diff-tree` per new commit, and nothing else that forks (bar one
# mktemp per push).
#
# For the protected branch (refs/heads/$BASELINE_BRANCH, default main) it refuses:
#   - deletion and non-fast-forward updates;
#   - merge commits (more than one parent);
#   - commits whose signature `git verify-commit` does not accept (the bare repository must be
#     configured with gpg.format=ssh and gpg.ssh.allowedSignersFile);
#   - added or modified paths whose extension is not on the allow-list, and modes 100755
#     (executable), 120000 (symlink) and 160000 (submodule).
# All violations are collected and printed; the exit status is 1 if there is any.
#
# Known limits compared with tally (by design, this is what stock git gives you): git does not
# check that the signer's principal matches the committer email, does not check key validity at
# push time, and nothing here parses YAML or caps file sizes.
set -eu

branch="refs/heads/${BASELINE_BRANCH:-main}"
violations=()
paths=$(mktemp)
trap 'rm -f "$paths"' EXIT

is_zero() {
	case $1 in
	*[!0]*) return 1 ;;
	*) return 0 ;;
	esac
}

# Records a violation for $path of $commit (the caller's variables); newlines in the path are
# shown as \n so that one violation stays on one line.
refuse_path() {
	violations+=("$commit: ${path//$'\n'/\\n}: $1")
}

check_commit() {
	local commit=$1 nparents=$2 out line meta path newmode status
	if [ "$nparents" -gt 1 ]; then
		violations+=("$commit: merge commit with $nparents parents; history must be linear (git rebase)")
	fi
	if ! out=$(git verify-commit "$commit" 2>&1); then
		line=${out//$'\n'/; }
		violations+=("$commit: signature not accepted (${line:-no signature}); sign with an allowed key (git commit -S)")
	fi
	# -z: paths come out verbatim, so names with spaces, quotes or newlines are judged as they are.
	# Records are ":<oldmode> <newmode> <oldsha> <newsha> <status>" NUL "<path>" NUL. Through a
	# file rather than a pipe so that a failing diff-tree cannot read as "no changed paths".
	if ! git diff-tree -z --no-commit-id -r --root "$commit" >"$paths"; then
		violations+=("$commit: git diff-tree failed; cannot check its paths")
		return
	fi
	while IFS= read -r -d '' meta && IFS= read -r -d '' path; do
		meta=${meta#:}
		status=${meta##* }
		newmode=${meta#* }
		newmode=${newmode%% *}
		case $status in
		D) continue ;;
		esac
		case $newmode in
		100755) refuse_path "executable file (mode 100755) not allowed; chmod -x it" ;;
		120000) refuse_path "symlink not allowed; commit the file itself" ;;
		160000) refuse_path "submodule not allowed; vendor the data as files" ;;
		esac
		case $path in
		*.yaml | *.yml | *.json | *.toml | *.tf | *.tfvars | *.hcl | *.cue | *.nix | *.md | *.txt) ;;
		*) refuse_path "file type not on the allow-list (yaml, yml, json, toml, tf, tfvars, hcl, cue, nix, md, txt)" ;;
		esac
	done <"$paths"
}

while read -r old new ref; do
	[ "$ref" = "$branch" ] || continue
	if is_zero "$new"; then
		violations+=("$ref: deleting the protected branch is not allowed")
		continue
	fi
	if is_zero "$old"; then
		range=("$new" --not --all)
	else
		if ! git merge-base --is-ancestor "$old" "$new"; then
			violations+=("$ref: non-fast-forward update ${old} -> ${new} refused; rebase onto the current branch (git pull --rebase)")
			continue
		fi
		range=("$old..$new")
	fi
	# One rev-list per ref; --parents gives each commit's parent count without another fork.
	revs=$(git rev-list --reverse --parents "${range[@]}")
	while read -r -a ids; do
		[ "${#ids[@]}" -gt 0 ] || continue
		check_commit "${ids[0]}" "$((${#ids[@]} - 1))"
	done <<<"$revs"
done

if [ "${#violations[@]}" -gt 0 ]; then
	echo "push refused by baseline pre-receive (${#violations[@]} violation(s)):" >&2
	printf '  %s\n' "${violations[@]}" >&2
	exit 1
fi
exit 0
