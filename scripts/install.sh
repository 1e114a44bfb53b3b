#!/usr/bin/env bash
# Builds the tally binary the server hooks run, and installs it.
#
#   scripts/install.sh [DIR]     build, then install as DIR/tally (default: ~/.cargo/bin;
#                                as root /usr/local/bin, which the hosting account can run:
#                                the hooks start tally as that account, and root's home is
#                                closed to it)
#   scripts/install.sh --build   build only; print the binary's path
#
# It builds with the `dist` profile (whole-program LTO, one codegen unit: the fastest hooks, a
# minute more of build than `cargo build --release`), into $CARGO_TARGET_DIR when set, else
# target/ in the source tree.
#
# On x86_64 Linux it also builds tally-shim (shim/) and installs it beside tally. `tally init`
# then makes it the interpreter of the reference-transaction hook: it ends the two hook
# states that have no work without starting tally, about 0.9 ms per push (BENCHMARKS.md).
#
# On Linux with glibc the binary is linked statically (static-pie: glibc inside, still
# position-independent, so ASLR is kept). A push starts tally twice (pre-receive and
# reference-transaction prepared; three times without tally-shim), and a static binary skips
# the dynamic loader and symbol binding: about 0.4 to 0.9 ms less per hook run, 1.7 ms per
# one-commit push measured here (BENCHMARKS.md). Elsewhere it is the ordinary release build, which works the same, slower.
#
# A statically linked glibc still loads its NSS modules (user and host lookups) from the
# system at run time; tally's hooks use neither (the pusher is read from the environment and
# /etc/passwd), so build it on the machine, or the distribution, it runs on.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_only=0
dest=${CARGO_HOME:-$HOME/.cargo}/bin
[ "$(id -u)" = 0 ] && dest=/usr/local/bin
case ${1:-} in
--build) build_only=1 ;;
-h | --help)
	sed -n '2,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 0
	;;
"") ;;
-*)
	echo "install: unknown option $1 (try --help)" >&2
	exit 2
	;;
*) dest=$1 ;;
esac

target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
locked=(--locked)
[ -f "$root/Cargo.lock" ] || locked=()
host=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$host" ] || {
	echo "install: cannot tell the host target from 'rustc -vV'" >&2
	exit 1
}
cd "$root"
case $host in
*-linux-gnu*)
	# An explicit --target keeps the flag off build scripts and proc-macros, which cannot
	# be static; its own target directory keeps the ordinary build's artifacts.
	echo "install: building tally (static-pie, $host)" >&2
	RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
		cargo build --profile dist "${locked[@]}" -p tally --target "$host" \
		--target-dir "$target/static" >&2
	bin=$target/static/$host/dist/tally
	;;
*)
	echo "install: building tally ($host)" >&2
	cargo build --profile dist "${locked[@]}" -p tally --target-dir "$target" >&2
	bin=$target/dist/tally
	;;
esac
[ -x "$bin" ] || {
	echo "install: the build left no binary at $bin" >&2
	exit 1
}
"$bin" --version >/dev/null || {
	echo "install: $bin does not run" >&2
	exit 1
}
shim=
case $host in
x86_64-*-linux-*)
	# The shim is its own workspace (no std, no libc); its flags are in shim/.cargo/config.toml,
	# which cargo reads from the directory it runs in, and RUSTFLAGS would override them.
	echo "install: building tally-shim" >&2
	(cd "$root/shim" && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
		cargo build --release "${locked[@]}" --target-dir "$target/shim" >&2)
	shim=$target/shim/release/tally-shim
	# Run by hand it explains itself and exits 1: proof that it starts at all.
	if "$shim" >/dev/null 2>&1 || [ $? -ne 1 ]; then
		echo "install: $shim does not run" >&2
		exit 1
	fi
	# Beside the built tally too, so that `<printed path> init` uses it.
	install -m 0755 "$shim" "$(dirname "$bin")/tally-shim"
	;;
esac
if [ "$build_only" = 1 ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dest"
if [ -n "$shim" ]; then
	install -m 0755 "$shim" "$dest/tally-shim.new"
	mv -f "$dest/tally-shim.new" "$dest/tally-shim"
	echo "installed $dest/tally-shim"
fi
install -m 0755 "$bin" "$dest/tally.new"
mv -f "$dest/tally.new" "$dest/tally"
echo "installed $dest/tally ($("$dest/tally" --version))"
echo "hooks installed by an earlier 'tally init' run the binary at the path they name; run 'tally init' again if that path changed, or to start using tally-shim"
