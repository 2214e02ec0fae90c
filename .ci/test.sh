#!/usr/bin/env bash
# Installs what the tests need, starts the real servers (pcscd with the vpcd
# virtual readers, PostgreSQL, SoftHSM2, a Kafka-protocol broker; axe-core
# from npm for the browser tests' accessibility checks), runs every
# check and test against them, and stops everything it started.
#
# Usage (as root on Debian 12):  make test   or   bash .ci/test.sh
#
# Environment:
#   TRANSIT_TEST_PKGS     packages to check and test (default ./...)
#   TRANSIT_TEST_RACE     packages to test with -race: "all" (default), "none",
#                         or a space-separated list of patterns
#   TRANSIT_FUZZTIME      time per fuzz target (default 5s; 0 skips fuzzing)
#   TRANSIT_TEST_REUSE_PCSCD=1
#                         use a pcscd that is already running instead of
#                         replacing it (a shared development machine)
#   TRANSIT_TEST_KEEP=1   keep the run's temp dir (logs) after the run
#   TRANSIT_TEST_CROSS=1  also cross-build for linux/arm64 and arm v7 with
#                         PC/SC and smoke-test under qemu (.ci/cross.sh; a
#                         few minutes, and packages listed there)
set -uo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

PKGS=${TRANSIT_TEST_PKGS:-./...}
RACE=${TRANSIT_TEST_RACE:-all}
FUZZTIME=${TRANSIT_FUZZTIME:-5s}
# systemd: only for systemd-analyze, which checks the units in cmd/transit/systemd;
# prometheus: promtool checks the alert rules (clearing/monitor/mixin);
# curl: the README's by-hand steps use it (TestReadmeByHand).
# python3-aiosmtpd: the local SMTP server notices are sent to (simulator/testenv/smtptest).
APT_PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pkg-config gcc libc6-dev softhsm2 postgresql chromium poppler-utils libreoffice-calc-nogui systemd curl prometheus python3-aiosmtpd)
VPCD_PORTS=(35963 35964)
READERS=("Virtual PCD 00 00" "Virtual PCD 00 01")
HSM_LABEL=transit-test
HSM_PIN=1234
HSM_SOPIN=12345678

RUN_START=$SECONDS
TMP=""
PCSCD_PID=""      # set only for a pcscd this run started
PG_DATA=""        # set once the cluster exists
PG_BIN=""
KAFKA_PID=""
POLICY_RC=""      # policy-rc.d this run created
CHILDREN=()       # process groups of running long commands
PHASES=()         # "name|seconds|status" for the closing table
FAILED=0

log() { printf '\n==> %s\n' "$*"; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# phase NAME CMD...: runs CMD, records its duration and status.
phase() {
	local name=$1 start=$SECONDS rc
	shift
	log "$name"
	"$@"
	rc=$?
	local took=$((SECONDS - start))
	if [ "$rc" -eq 0 ]; then
		PHASES+=("$name|$took|ok")
		printf -- '--> %s: ok (%ds)\n' "$name" "$took"
	else
		PHASES+=("$name|$took|FAILED")
		printf -- '--> %s: FAILED (%ds)\n' "$name" "$took"
		FAILED=1
	fi
	return "$rc"
}

# bg CMD...: runs CMD in its own process group and waits for it, so a
# signal reaches the trap at once and cleanup can stop the whole group
# (go test and the test binaries it started).
bg() {
	setsid "$@" &
	local pid=$! rc
	CHILDREN+=("$pid")
	wait "$pid"
	rc=$?
	local kept=() c
	for c in "${CHILDREN[@]}"; do
		[ "$c" = "$pid" ] || kept+=("$c")
	done
	CHILDREN=("${kept[@]}")
	return "$rc"
}

# listening PORT: whether PORT is in LISTEN state on any local address.
# Never probe by connecting: vpcd takes a connection for a card.
listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 30000))
		listening "$p" || {
			echo "$p"
			return 0
		}
	done
	die "no free TCP port found between 20000 and 50000"
}

# pids_named NAME: PIDs of processes whose command name is NAME.
pids_named() {
	local f
	for f in /proc/[0-9]*/comm; do
		[ "$(cat "$f" 2>/dev/null)" = "$1" ] && basename "$(dirname "$f")"
	done
}

# stop_pid PID WHAT: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 what=$2
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "warning: $what (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local pid
	for pid in "${CHILDREN[@]}"; do
		[ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null
	done
	[ -n "$KAFKA_PID" ] && stop_pid "$KAFKA_PID" "localkafka"
	if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 ||
			stop_pid "$(head -1 "$PG_DATA/postmaster.pid")" "postgres"
	fi
	if [ -n "$PCSCD_PID" ]; then
		stop_pid "$PCSCD_PID" "pcscd"
		rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
	fi
	[ -n "$POLICY_RC" ] && rm -f "$POLICY_RC"
	if [ -n "$TMP" ]; then
		if [ "${TRANSIT_TEST_KEEP:-}" = 1 ] || [ "$rc" -ne 0 ]; then
			echo "logs kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------- install

install_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all present: ${APT_PACKAGES[*]}"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]}; run as root (apt-get install) or install them first"
	echo "installing: ${missing[*]}"
	# Installing must not start system services (a pcscd or a PostgreSQL
	# cluster on 5432): the run starts its own, in its temp dir.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		POLICY_RC=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || return 1
	apt-get install -y -qq --no-install-recommends "${missing[@]}" || return 1
	if [ -n "$POLICY_RC" ]; then
		rm -f "$POLICY_RC"
		POLICY_RC=""
	fi
}

find_go() {
	if ! command -v go >/dev/null 2>&1; then
		[ -x /usr/local/go/bin/go ] || die "go is not on PATH nor at /usr/local/go/bin/go: install Go 1.26 from https://go.dev/dl/"
		export PATH=/usr/local/go/bin:$PATH
	fi
	go version
}

# ---------------------------------------------------------------- servers

start_pcscd() {
	local running
	running=$(pids_named pcscd | xargs)
	if [ "${TRANSIT_TEST_REUSE_PCSCD:-}" = 1 ] && [ -n "$running" ]; then
		echo "reusing the running pcscd (pid $running); it is left running afterwards"
	else
		# One pcscd per host: replace whatever runs (socket-activated or
		# left over from an earlier run) with one this run owns.
		if [ -d /run/systemd/system ]; then
			systemctl stop pcscd.socket pcscd.service >/dev/null 2>&1
		fi
		local pid
		for pid in $running; do
			echo "stopping the pcscd already running (pid $pid)"
			stop_pid "$pid" "pcscd"
		done
		rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
		setsid pcscd --foreground >"$TMP/pcscd.log" 2>&1 </dev/null &
		PCSCD_PID=$!
	fi
	local port
	for port in "${VPCD_PORTS[@]}"; do
		for _ in $(seq 100); do
			listening "$port" && break
			if [ -n "$PCSCD_PID" ] && ! kill -0 "$PCSCD_PID" 2>/dev/null; then
				cat "$TMP/pcscd.log" >&2
				die "pcscd exited at start (log above)"
			fi
			sleep 0.1
		done
		listening "$port" || {
			cat "$TMP/pcscd.log" >&2 2>/dev/null
			die "vpcd is not listening on port $port after 10 s: is vsmartcard-vpcd installed (/etc/reader.conf.d/vpcd)?"
		}
	done
	export TRANSIT_TEST_VPCD=127.0.0.1:${VPCD_PORTS[0]} TRANSIT_TEST_PCSC_READER=${READERS[0]}
	export TRANSIT_TEST_VPCD2=127.0.0.1:${VPCD_PORTS[1]} TRANSIT_TEST_PCSC_READER2=${READERS[1]}
	echo "pcscd ${PCSCD_PID:+pid $PCSCD_PID }vpcd on ${VPCD_PORTS[*]}"
}

start_postgres() {
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -x "$PG_BIN/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql: install postgresql"
	local port
	port=$(free_port)
	mkdir -p "$TMP/pg" "$TMP/pgsock"
	chown postgres: "$TMP/pg" "$TMP/pgsock"
	# initdb refuses root; the cluster belongs to postgres, inside our dir.
	runuser -u postgres -- "$PG_BIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust -E UTF8 --no-sync \
		>"$TMP/initdb.log" 2>&1 || {
		cat "$TMP/initdb.log" >&2
		return 1
	}
	PG_DATA=$TMP/pg/data
	# fsync off: a throwaway cluster, and tests should not wait on disks.
	cat >>"$PG_DATA/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$TMP/pgsock'
		fsync = off
		max_connections = 200
	EOF
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$TMP/pg/server.log" -w -t 60 start >/dev/null || {
		cat "$TMP/pg/server.log" >&2
		return 1
	}
	"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres transit_test || return 1
	export TRANSIT_TEST_PG="postgres://postgres@127.0.0.1:$port/transit_test?sslmode=disable"
	echo "postgres pid $(head -1 "$PG_DATA/postmaster.pid") on 127.0.0.1:$port, database transit_test"
}

start_softhsm() {
	local module
	for module in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
		[ -f "$module" ] && break
	done
	[ -f "$module" ] || die "libsofthsm2.so not found: install softhsm2"
	mkdir -p "$TMP/softhsm/tokens"
	cat >"$TMP/softhsm/softhsm2.conf" <<-EOF
		directories.tokendir = $TMP/softhsm/tokens
		objectstore.backend = file
		log.level = ERROR
		slots.removable = false
	EOF
	export SOFTHSM2_CONF=$TMP/softhsm/softhsm2.conf
	softhsm2-util --init-token --free --label "$HSM_LABEL" --so-pin "$HSM_SOPIN" --pin "$HSM_PIN" || return 1
	export TRANSIT_TEST_PKCS11_MODULE=$module TRANSIT_TEST_PKCS11_TOKEN=$HSM_LABEL
	export TRANSIT_TEST_PKCS11_PIN=$HSM_PIN TRANSIT_TEST_PKCS11_SOPIN=$HSM_SOPIN
}

start_kafka() {
	go build -o "$TMP/localkafka" ./cmd/localkafka || return 1
	"$TMP/localkafka" -ports 0 -topic taps:8 -addr-file "$TMP/kafka.addr" >"$TMP/localkafka.log" 2>&1 </dev/null &
	KAFKA_PID=$!
	for _ in $(seq 100); do
		[ -s "$TMP/kafka.addr" ] && break
		kill -0 "$KAFKA_PID" 2>/dev/null || {
			cat "$TMP/localkafka.log" >&2
			die "localkafka exited at start (log above)"
		}
		sleep 0.1
	done
	[ -s "$TMP/kafka.addr" ] || die "localkafka did not report its address within 10 s (log: $TMP/localkafka.log)"
	TRANSIT_TEST_KAFKA=$(cat "$TMP/kafka.addr")
	export TRANSIT_TEST_KAFKA
	echo "localkafka pid $KAFKA_PID on $TRANSIT_TEST_KAFKA"
}

# axe-core, which the console's browser tests run in each page to check
# its accessibility (WCAG 2.1 A and AA), from the npm registry; Node.js
# and npm come with the machine, or from Debian when they do not.
AXE_VERSION=4.14.1
install_axe() {
	if ! command -v npm >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || die "npm is missing; install Node.js and npm (apt-get install nodejs npm)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm || return 1
	fi
	npm install --prefix "$TMP/axe" --no-audit --no-fund --silent "axe-core@$AXE_VERSION" || return 1
	TRANSIT_TEST_AXE=$TMP/axe/node_modules/axe-core/axe.min.js
	[ -s "$TRANSIT_TEST_AXE" ] || die "axe-core installed without $TRANSIT_TEST_AXE"
	export TRANSIT_TEST_AXE
	echo "axe-core $AXE_VERSION at $TRANSIT_TEST_AXE"
}

# ---------------------------------------------------------------- checks

check_gofmt() {
	local dirs bad
	dirs=$(go list -e -f '{{.Dir}}' $PKGS) || return 1
	# shellcheck disable=SC2086
	bad=$(gofmt -l $dirs)
	if [ -n "$bad" ]; then
		echo "not gofmt-ed (run gofmt -w on them):"
		echo "$bad"
		return 1
	fi
}

# summarize LOG: the top-level test results of a `go test -v` log, skipped
# tests with their reason and failed tests with their output. Fails when
# any test was skipped.
summarize() {
	local logf=$1 skips
	echo
	echo "---- top-level tests"
	grep -E '^--- (PASS|FAIL|SKIP): ' "$logf"
	if grep -E '^ *--- FAIL: ' "$logf" >/dev/null; then
		echo
		echo "---- output of failed tests"
		awk '
			/^=== RUN   [^ \/]+$/ { buf = "" }
			{ buf = buf $0 "\n" }
			/^--- FAIL: / { printf "%s", buf; buf = "" }
		' "$logf"
	fi
	if grep -E '\[(build|setup) failed\]' "$logf" >/dev/null; then
		echo
		echo "---- build errors"
		grep -E '^# |^[^ ].*\.go:[0-9]+(:[0-9]+)?: |too many errors' "$logf"
	fi
	if grep -E '^panic: ' "$logf" >/dev/null; then
		echo
		echo "---- panics (full log: $logf)"
		grep -E -A15 '^panic: ' "$logf"
	fi
	# A test's log lines come before its --- SKIP line: keep each test's
	# output since its === RUN/CONT/NAME line and show it with the skip.
	skips=$(awk '
		/^=== RUN / { cur = $3; out[cur] = ""; next }
		/^=== (CONT|NAME|PAUSE) / { cur = $3; next }
		/^ *--- SKIP: / { print; printf "%s", out[$3]; next }
		/^ *--- (PASS|FAIL): / { next }
		cur != "" { out[cur] = out[cur] $0 "\n" }
	' "$logf")
	# No package line at all means go test failed before testing.
	grep -E '^FAIL$|^(ok|FAIL)\s' "$logf" >/dev/null || tail -20 "$logf"
	if [ -n "$skips" ]; then
		echo
		echo "---- SKIPPED under the harness (not allowed: every server is running):"
		echo "$skips"
		return 1
	fi
}

# uses_servers: packages whose tests import simulator/testenv, i.e. talk
# to the servers. They share state (one vpcd card slot per reader, one
# database, one token), so they run one package at a time.
uses_servers() {
	go list -e -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' $PKGS |
		awk '/ github.com\/citycard\/transit\/simulator\/testenv( |$)/ { print $1 }'
}

run_tests() {
	local all serial parallel race_flag=() rc=0 logf=$TMP/go-test.log
	all=$(go list -e $PKGS) || return 1
	serial=$(uses_servers)
	parallel=$(comm -23 <(echo "$all" | sort) <(echo "$serial" | sort))
	case $RACE in
	all) race_flag=(-race) ;;
	none) ;;
	*)
		# -race only on the listed packages: run the rest without it.
		local racy
		racy=$(go list -e $RACE) || return 1
		;;
	esac
	: >"$logf"
	# The stream shows progress; the summary below is the record.
	export GOTEST_LOG=$logf
	export GOTEST_FILTER='/^(--- (PASS|FAIL|SKIP): |ok[ \t]|FAIL[ \t]|FAIL$|panic: |# )/ { print; fflush() }'
	gotest() { # gotest LABEL GO-TEST-ARGS...
		echo "go test $1"
		shift
		bg bash -c 'set -o pipefail; go test "$@" 2>&1 | tee -a "$GOTEST_LOG" | awk "$GOTEST_FILTER"' _ "$@"
	}
	testset() { # testset PKGS... (with optional -p 1 as first args)
		local extra=()
		[ "${1:-}" = "-p1" ] && {
			extra=(-p 1)
			shift
		}
		[ $# -gt 0 ] || return 0
		if [ -n "${racy:-}" ]; then
			local r=() n=() p
			for p in "$@"; do
				if grep -qxF "$p" <<<"$racy"; then r+=("$p"); else n+=("$p"); fi
			done
			[ ${#r[@]} -eq 0 ] || gotest "(-race, ${#r[@]} packages${extra:+, one at a time})" -race -count=1 -v "${extra[@]}" "${r[@]}" || rc=1
			[ ${#n[@]} -eq 0 ] || gotest "(${#n[@]} packages${extra:+, one at a time})" -count=1 -v "${extra[@]}" "${n[@]}" || rc=1
		else
			gotest "(${race_flag[*]:-no -race}, $# packages${extra:+, one at a time})" "${race_flag[@]}" -count=1 -v "${extra[@]}" "$@" || rc=1
		fi
	}
	# shellcheck disable=SC2086
	testset $parallel
	# shellcheck disable=SC2086
	testset -p1 $serial
	summarize "$logf" || rc=1
	return "$rc"
}

# bare_deadline LOG: whether a fuzz run failed only with Go 1.26's
# coordinator race at the end of -fuzztime (go.dev/issue/75804, fixed in
# Go 1.27): "context deadline exceeded" and no failing input written.
bare_deadline() {
	grep -q 'context deadline exceeded' "$1" &&
		! grep -qE 'Failing input written|^panic: |_test\.go:[0-9]+:' "$1"
}

# fuzz_one NAME PKG LOG: fuzzes one target and sets FUZZ_STATUS to ok,
# FAIL, or an ok that notes the deadline race. A bare deadline failure is
# retried once; a second one is reported but does not fail the run, since
# no input was found. (No subshell: bg must register its children here.)
fuzz_one() {
	local name=$1 rel=$2 out=$3 try
	for try in 1 2; do
		if bg go test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" "$rel" >"$out" 2>&1; then
			FUZZ_STATUS=ok
			[ "$try" = 1 ] || FUZZ_STATUS="ok (deadline race retried)"
			return
		fi
		bare_deadline "$out" || {
			FUZZ_STATUS=FAIL
			return
		}
	done
	FUZZ_STATUS="ok (deadline race twice, no failing input; go.dev/issue/75804)"
}

run_fuzz() {
	[ "$FUZZTIME" = 0 ] && {
		echo "TRANSIT_FUZZTIME=0: fuzzing skipped"
		return 0
	}
	local dirs rc=0 n=0
	dirs=$(go list -e -f '{{.Dir}}' $PKGS) || return 1
	local dir file name
	for dir in $dirs; do
		for file in "$dir"/*_test.go; do
			[ -f "$file" ] || continue
			for name in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$file"); do
				n=$((n + 1))
				local rel=./${dir#"$ROOT"/} start=$SECONDS out=$TMP/fuzz-$name-$n.log
				fuzz_one "$name" "$rel" "$out"
				printf '%-28s %-28s %s (%ds)\n' "$name" "$rel" "$FUZZ_STATUS" $((SECONDS - start))
				case $FUZZ_STATUS in
				FAIL*)
					tail -30 "$out"
					rc=1
					;;
				esac
			done
		done
	done
	echo "$n fuzz targets, $FUZZTIME each"
	return "$rc"
}

# ---------------------------------------------------------------- main

phase "install packages" install_packages || exit 1
find_go || exit 1
TMP=$(mktemp -d /tmp/transit-test.XXXXXX) || exit 1
chmod 755 "$TMP" # postgres must reach its data dir inside
echo "run dir $TMP, packages: $PKGS"

phase "start pcscd + vpcd" start_pcscd || exit 1
phase "start PostgreSQL" start_postgres || exit 1
phase "make SoftHSM2 token" start_softhsm || exit 1
phase "start Kafka-protocol broker" start_kafka || exit 1
phase "install axe-core" install_axe || exit 1
[ -x /usr/bin/chromium ] || die "chromium is not at /usr/bin/chromium after the install step"
command -v pdftotext >/dev/null || die "pdftotext is missing after the install step: apt-get install poppler-utils"
export TRANSIT_TEST_CHROMIUM=/usr/bin/chromium
# Under the harness every server is up: an integration test must not skip.
export TRANSIT_TEST_REQUIRE=1

phase "gofmt" check_gofmt
# shellcheck disable=SC2086
phase "go vet" bg go vet $PKGS
# The demo and the services must build without cgo.
# shellcheck disable=SC2086
phase "build without cgo" bg env CGO_ENABLED=0 go build $PKGS
# Vehicle computers include 32-bit ARM: a type check for it is cheap and
# catches what only 32-bit ints break; the full cross-build is make cross.
# shellcheck disable=SC2086
phase "vet for linux/arm (32-bit)" bg env GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 go vet $PKGS
if [ "${TRANSIT_TEST_CROSS:-}" = 1 ]; then
	phase "cross-build arm64, arm v7" bg bash .ci/cross.sh
fi
phase "go test" run_tests
phase "fuzz" run_fuzz

echo
echo "==== phases"
for p in "${PHASES[@]}"; do
	IFS='|' read -r name took status <<<"$p"
	printf '%-30s %5ds  %s\n' "$name" "$took" "$status"
done
printf '%-30s %5ds\n' "total" $((SECONDS - RUN_START))
if [ -s "$TMP/go-test.log" ]; then
	echo
	echo "==== go test"
	grep -E '^(ok|FAIL|\?)\s|^FAIL$' "$TMP/go-test.log"
fi
if [ "$FAILED" -ne 0 ]; then
	echo "FAILED"
	exit 1
fi
echo "PASSED"
