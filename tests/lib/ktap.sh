# shellcheck shell=bash
# KTAP helpers for shell tests.  Source it; each test prints one line per
# check: "ok N name", "not ok N name" or "ok N name # SKIP reason".
# A .t file passes only when it exits 0, printed at least one result and no
# "not ok" (tests/lib/runner.sh has the runner's verdict): exit non-zero
# when a check failed, and keep every pipeline's status (set -o pipefail).
KTAP_N=0
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
ktap_ok() { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $*"; }
ktap_fail() { KTAP_N=$((KTAP_N + 1)); echo "not ok $KTAP_N $*"; }
ktap_skip() { # ktap_skip NAME REASON
	KTAP_N=$((KTAP_N + 1))
	echo "ok $KTAP_N $1 # SKIP $2"
}
# ktap_check NAME CMD...: ok when CMD exits 0; on failure its output is shown
# as diagnostic lines ("# ...").
ktap_check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_ok "$name"
	else
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
		ktap_fail "$name"
	fi
}

# bwait PID [SECONDS]: wait for the background child PID, at most SECONDS
# (default 60).  Returns its exit status; on timeout it is sent TERM (then
# KILL after 5 s) and bwait returns 124.  Every wait in a test goes through
# this: a bare `wait` can hang the file until the runner's cap.
bwait() {
	local pid=$1 t=${2:-60} i
	for ((i = 0; i < t * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; return; }
		sleep 0.1
	done
	echo "# pid $pid still running after ${t}s: killed" >&2
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 124
}

# wait_file_line FILE PATTERN [SECONDS] [PID]: until FILE has a line matching
# PATTERN (grep -E), at most SECONDS (default 60); gives up early when PID
# (the writer) has exited.  FILE must be new for this run (readiness from
# fresh output only: truncate or use a new name before starting the writer).
wait_file_line() {
	local f=$1 pat=$2 t=${3:-60} pid=${4:-} i
	for ((i = 0; i < t * 10; i++)); do
		grep -q -E -- "$pat" "$f" 2>/dev/null && return 0
		[ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && { grep -q -E -- "$pat" "$f" 2>/dev/null; return; }
		sleep 0.1
	done
	return 1
}
