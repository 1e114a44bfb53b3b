#!/usr/bin/env bash
# Seeds the fuzz corpora with real objects: fuzz/corpus/<target>/seed-<what>.
#
#   scripts/fuzz-seed.sh        (from anywhere; needs git, ssh-keygen, cargo)
#
# Makes, in a temporary directory with a hermetic git configuration:
#   commit, commit_diff  commits signed by git with every key type ssh-keygen makes without
#                        hardware (ed25519, ECDSA P-256/384/521, RSA 3072; sk- keys need a
#                        security key), one with a parent, one unsigned, one with a mergetag
#   sshsig               the binary SSHSIG blobs of those signatures, and of `ssh-keygen -Y sign`
#   allowed_signers      one line per key type, plus options, a cert-authority and patterns
#   ledger_entry         the raw entries of a real ledger (tally init, pushes accepted and
#                        refused, taken from `tally export`'s length-prefixed ledger.bin)
#   checkpoint           the signed checkpoint note of that ledger
#   export_bundle        the bundle's files joined by 0xFF bytes, as the target cuts them
#   syntax_*             small YAML, JSON and TOML documents, valid and hostile
#   tree                 raw tree objects of this repository (git cat-file tree)
#   gitattributes        .gitattributes files, harmless and converting, with macros and quotes
# Seeds are small and deterministic in shape (keys and signatures differ per run), so they are
# committed; what libFuzzer adds to the corpora is not (fuzz/.gitignore).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=$root/fuzz/corpus
work=$(mktemp -d "${TMPDIR:-/tmp}/tally-seed.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$root" && cargo build -q -p tally)
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export PATH="${target_dir:-$root/target}/debug:$PATH"

unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
    GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT SSH_AUTH_SOCK
export HOME=$work GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$work/gitconfig LC_ALL=C TZ=UTC
export GIT_AUTHOR_DATE="1700000000 +0000" GIT_COMMITTER_DATE="1700000000 +0000"
git config --global init.defaultBranch main
git config --global user.name "Alice Example"
git config --global user.email alice@example.com
git config --global gpg.format ssh
cd "$work"

seed() { # target name  (stdin: contents)
    mkdir -p "$corpus/$1"
    cat >"$corpus/$1/seed-$2"
}

# --- keys, signed commits, SSHSIG blobs ---------------------------------------------------------
mkdir keys
for spec in "ed25519:-t ed25519" "ecdsa-p256:-t ecdsa -b 256" "ecdsa-p384:-t ecdsa -b 384" \
    "ecdsa-p521:-t ecdsa -b 521" "rsa-3072:-t rsa -b 3072"; do
    name=${spec%%:*}
    # shellcheck disable=SC2086
    ssh-keygen -q ${spec#*:} -N '' -C alice@example.com -f "keys/$name"
done
ssh-keygen -q -t ed25519 -N '' -C ca -f keys/ca
ssh-keygen -q -s keys/ca -I alice -n alice@example.com -V 20230101:20991231 keys/ed25519.pub
: >allowed_signers

git init -q repo
for key in ed25519 ecdsa-p256 ecdsa-p384 ecdsa-p521 rsa-3072; do
    printf 'app: %s\n' "$key" >repo/app.yaml
    git -C repo add app.yaml
    git -C repo -c user.signingkey="$work/keys/$key" commit -q -S -m "deploy $key" -m "body"
    git -C repo cat-file commit HEAD | seed commit "$key"
    git -C repo cat-file commit HEAD | seed commit_diff "$key"
    # The armor between BEGIN and END, decoded: the binary blob the sshsig target reads.
    git -C repo cat-file commit HEAD |
        sed -n '/^gpgsig /,/END SSH SIGNATURE/p' | sed 's/^gpgsig //; s/^ //' |
        grep -v -- '-----' | tr -d '\n' | base64 -d | seed sshsig "commit-$key"
    printf 'payload\n' | ssh-keygen -q -Y sign -n file -f "keys/$key" >"sig-$key" 2>/dev/null
    grep -v -- '-----' "sig-$key" | tr -d '\n' | base64 -d | seed sshsig "file-$key"
    printf 'alice@example.com %s\n' "$(cut -d' ' -f1,2 "keys/$key.pub")" | seed allowed_signers "$key"
    printf 'alice@example.com %s\n' "$(cut -d' ' -f1,2 "keys/$key.pub")" >>allowed_signers
done
cp keys/ed25519-cert.pub cert.pub
git -C repo -c user.signingkey="$work/keys/ed25519-cert.pub" commit -q -S --allow-empty -m "cert" 2>/dev/null &&
    git -C repo cat-file commit HEAD | seed commit certificate
git -C repo commit -q --no-gpg-sign --allow-empty -m unsigned
git -C repo cat-file commit HEAD | seed commit unsigned
git -C repo cat-file commit HEAD | seed commit_diff unsigned
git -C repo cat-file commit HEAD~1 | seed commit_diff parent-signed

{
    printf '# comment\n\nalice@example.com,*@ops.example.com namespaces="git,file" valid-after="20230101" valid-before="20990101Z" %s laptop\n' \
        "$(cut -d' ' -f1,2 keys/ed25519.pub)"
    printf '"bob@example.com,!eve@example.com" %s\n' "$(cut -d' ' -f1,2 keys/ecdsa-p256.pub)"
    printf '*@example.com cert-authority,namespaces="git" %s\n' "$(cut -d' ' -f1,2 keys/ca.pub)"
    printf 'carol@example.com valid-after="202301021504" valid-before="20240102150405" %s\n' \
        "$(cut -d' ' -f1,2 keys/rsa-3072.pub)"
} | seed allowed_signers options

# --- a real ledger and its export bundle --------------------------------------------------------
printf 'alice@example.com %s\n' "$(cut -d' ' -f1,2 keys/ed25519.pub)" >server_signers
git init -q --bare -b main server.git
tally init server.git --allowed-signers server_signers >/dev/null
git clone -q server.git alice 2>/dev/null
git -C alice config user.signingkey "$work/keys/ed25519"
mkdir -p alice/apps
printf 'kind: ConfigMap\nmetadata: {name: a}\n' >alice/apps/a.yaml
git -C alice add apps
git -C alice commit -q -S -m "apps: a"
git -C alice push -q origin main 2>/dev/null
git -C alice commit -q --no-gpg-sign --allow-empty -m "unsigned"
git -C alice push -q origin main 2>/dev/null && { echo "fuzz-seed: unsigned push accepted" >&2; exit 1; }
git -C alice reset -q --hard origin/main
printf 'kind: ConfigMap\nmetadata: {name: b}\n' >alice/apps/b.yaml
git -C alice add apps
git -C alice commit -q -S -m "apps: b"
git -C alice push -q origin main 2>/dev/null
tally export --repo server.git --out audit >/dev/null

python3 - "$corpus" audit <<'PY'
import os, struct, sys
corpus, audit = sys.argv[1], sys.argv[2]
def seed(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, "seed-" + name), "wb") as f:
        f.write(data)
raw = open(os.path.join(audit, "ledger.bin"), "rb").read()
i = n = 0
while i + 4 <= len(raw):
    (size,) = struct.unpack(">I", raw[i:i + 4])
    seed("ledger_entry", "entry-%d" % n, raw[i + 4:i + 4 + size])
    i += 4 + size
    n += 1
seed("checkpoint", "note", open(os.path.join(audit, "checkpoint"), "rb").read())
files = ["MANIFEST", "MANIFEST.sig", "export.json", "checkpoint", "ledger.bin", "entries.jsonl",
         "entries.csv", "ledger_key.pub", "policy.toml", "allowed_signers", "README"]
parts = []
for name in files:
    path = os.path.join(audit, name)
    parts.append(open(path, "rb").read() if os.path.exists(path) else b"")
seed("export_bundle", "bundle", b"\xff".join(parts))
PY
tally ledger key --repo server.git | seed checkpoint verifier-key

# --- syntax -------------------------------------------------------------------------------------
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {app: web}\ndata:\n  k: "v"\n---\nlist: [1, 2.5, true, null, ~]\n' |
    seed syntax_yaml config
printf 'a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n' | seed syntax_yaml aliases
printf '{"a": [1, 2.5e3, true, null, "\\u00e9"], "b": {"c": {}}}\n' | seed syntax_json object
printf '[[[[[[[[[[1]]]]]]]]]]\n' | seed syntax_json deep
printf 'title = "t"\n[server]\nport = 8080\nhosts = ["a", "b"]\n[[item]]\nx = 1979-05-27T07:32:00Z\ny = { z = 1.5 }\n' |
    seed syntax_toml config

printf 'a: 1\n"a": 2\n' | seed syntax_yaml duplicate-key
printf '%%TAG !! tag:yaml.org,2002:python/\n---\nx: !!object {}\n' | seed syntax_yaml tag-directive
printf '{"a": 1, "\\u0061": 2}\n' | seed syntax_json duplicate-key

# --- trees and attributes -----------------------------------------------------------------------
for t in "HEAD^{tree}" HEAD:verify HEAD:verify/src HEAD:docs; do
    git -C "$root" cat-file tree "$t" | seed tree "$(echo "$t" | tr -c 'a-z' '-')"
done
printf '*.yaml -text\n*.png binary\n' | seed gitattributes harmless
printf '"quoted path" filter=lfs diff=lfs merge=lfs -text\n*.sh ident eol=crlf\n*.md working-tree-encoding=UTF-16\n' |
    seed gitattributes converting
printf '[attr]evil filter=x\n*.yaml evil\n# comment\n!negated\n' | seed gitattributes macro

echo "fuzz-seed: seeds written under fuzz/corpus/"
find "$corpus" -name 'seed-*' | sed "s|^$root/||" | sort | awk -F/ '{print $3}' | uniq -c
