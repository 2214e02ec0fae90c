#!/usr/bin/env bash
# Cross-builds transit for vehicle computers, with cgo and PC/SC, using
# Debian's cross compilers and multiarch libpcsclite, and smoke-tests the
# binaries under qemu user emulation:
#
#   bin/transit-linux-arm64   linux/arm64   (aarch64-linux-gnu-gcc)
#   bin/transit-linux-armv7   linux/arm v7  (arm-linux-gnueabihf-gcc)
#
# Usage (Debian 12):  make cross   or   bash .ci/cross.sh
#
# Once, as root (make cross says so when something is missing):
#   dpkg --add-architecture arm64 && dpkg --add-architecture armhf && apt-get update
#   apt-get install --no-install-recommends gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf \
#       libc6-dev-arm64-cross libc6-dev-armhf-cross libpcsclite-dev:arm64 libpcsclite-dev:armhf qemu-user-static
#
# Environment:
#   TRANSIT_CROSS_TARGETS  "arm64 armv7" (default) or one of them
#   TRANSIT_CROSS_STARTUP=1
#                          also start each binary's validator under qemu on
#                          the running pcscd (vpcd reader 0) with a signed
#                          hotlist of a million cards, and report the time
#                          to /readyz and its memory (BenchmarkValidatorStartup)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.." || exit 1

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
TARGETS=${TRANSIT_CROSS_TARGETS:-arm64 armv7}
mkdir -p bin

# The revision goes into the binary (transit version); the go command
# does not see it in a git worktree, so it is also passed by hand.
rev=$(git rev-parse HEAD 2>/dev/null || true)
[ -n "$rev" ] && [ -n "$(git status --porcelain 2>/dev/null)" ] && rev=$rev+modified

for target in $TARGETS; do
	case $target in
	arm64) goarch=arm64 goarm="" triplet=aarch64-linux-gnu qemu=qemu-aarch64-static ;;
	armv7) goarch=arm goarm=7 triplet=arm-linux-gnueabihf qemu=qemu-arm-static ;;
	*)
		echo "unknown target $target: want arm64 or armv7" >&2
		exit 2
		;;
	esac
	cc=$triplet-gcc
	pc=/usr/lib/$triplet/pkgconfig
	command -v "$cc" >/dev/null || {
		echo "$cc is missing: see the top of .ci/cross.sh for the packages" >&2
		exit 1
	}
	[ -f "$pc/libpcsclite.pc" ] || {
		echo "libpcsclite-dev for $triplet is missing ($pc/libpcsclite.pc): see the top of .ci/cross.sh" >&2
		exit 1
	}
	out=bin/transit-linux-$target
	echo "==> $out"
	start=$SECONDS
	CGO_ENABLED=1 GOOS=linux GOARCH=$goarch GOARM=$goarm CC=$cc PKG_CONFIG_LIBDIR=$pc \
		"$GO" build -trimpath -buildvcs=false -ldflags="-s -w -X main.vcsRevision=$rev" -o "$out" ./cmd/transit
	echo "built in $((SECONDS - start)) s, $(stat -c %s "$out") bytes"
	if ! command -v "$qemu" >/dev/null; then
		echo "$qemu is missing (qemu-user-static): no smoke test" >&2
		continue
	fi
	# The dynamic loader and libpcsclite come from the multiarch packages.
	version=$("$qemu" "$out" version)
	echo "$version"
	grep -q "linux/$goarch" <<<"$version" || {
		echo "$out does not say it is linux/$goarch" >&2
		exit 1
	}
	grep -q "PC/SC    built in" <<<"$version" || {
		echo "$out was built without PC/SC" >&2
		exit 1
	}
	if [ "${TRANSIT_CROSS_STARTUP:-}" = 1 ]; then
		TRANSIT_FOOTPRINT_BIN=$PWD/$out TRANSIT_FOOTPRINT_EXEC=$qemu \
			"$GO" test -run '^$' -bench ValidatorStartup -benchtime 3x ./cmd/transit
	fi
done
