# shellcheck shell=bash
# KTAP helpers for shell tests.  Source it; each test prints one line per
# check: "ok N name", "not ok N name" or "ok N name # SKIP reason".
# A .t file passes only when it exits 0, printed at least one result and no
# "not ok" (tests/lib/runner.sh has the runner's verdict): exit non-zero
# when a check failed, and keep every pipeline's status (set -o pipefail).
KTAP_N=0 KTAP_FAILED=0
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
ktap_ok() { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $*"; }
ktap_fail() { KTAP_N=$((KTAP_N + 1)) KTAP_FAILED=$((KTAP_FAILED + 1)); echo "not ok $KTAP_N $*"; }
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

# nap SECONDS: sleep without starting a process, for poll loops.  Under
# TCG each fork and exec of sleep(1) costs about 40 ms of CPU, taken from
# the programs the loop waits for: in the VM, 100 rounds of `kill -0 PID;
# sleep 0.05` took 9.0 s and 3.8 CPU-s (with nap: 5.3 s, 0.24 CPU-s), and
# iperf3 over veth ran at 238-245 MB/s with such a loop polling for its
# end, 313-339 MB/s without (medians of 5).  nap times out reading a FIFO
# nobody writes to, made at the first call and unlinked at once; its fd
# stays open in this shell and its children.  Where no FIFO can be made
# it runs sleep.
NAP_FD=
nap() {
	local f
	if [ -z "$NAP_FD" ]; then
		f=$(mktemp -u "${TMPDIR:-/tmp}/nap.XXXXXX") && mkfifo -m 600 "$f" &&
			exec {NAP_FD}<>"$f"
		rm -f "$f"
		[ -n "$NAP_FD" ] || NAP_FD=none
	fi
	if [ "$NAP_FD" = none ]; then
		sleep "$1"
	else
		read -r -t "$1" -u "$NAP_FD" _
	fi
	return 0
}

# bwait PID [SECONDS]: wait for the background child PID, at most SECONDS
# (default 60).  Returns its exit status; on timeout it is sent TERM (then
# KILL after 5 s; never waited for if that does not end it either) and
# bwait returns 124.  Every wait in a test goes through
# this: a bare `wait` can hang the file until the runner's cap.
bwait() {
	local pid=$1 t=${2:-60} i
	for ((i = 0; i < t * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; return; }
		nap 0.1
	done
	echo "# pid $pid still running after ${t}s: killed" >&2
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		nap 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 124; }
		nap 0.1
	done
	# a task stuck in the kernel (D state, or an oops in its exit) never
	# becomes reapable: waiting for it would hang the file
	echo "# pid $pid survives SIGKILL (state $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)): not waited for" >&2
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
		nap 0.1
	done
	return 1
}

# proc_listening PORT FILE...: a TCP socket listens on PORT in one of the
# /proc/net/tcp-style FILEs (read with read: no process started)
proc_listening() {
	local port=$1 hex f _sl loc _rem st _rest
	printf -v hex '%04X' "$port"
	shift
	for f in "$@"; do
		[ -r "$f" ] || continue
		while read -r _sl loc _rem st _rest; do
			[ "$st" = 0A ] && [ "${loc##*:}" = "$hex" ] && return 0
		done <"$f"
	done
	return 1
}

# wait_listen NS PORT [SECONDS [PID]]: until a TCP socket listens on PORT
# in NS ("": this netns); 1 after SECONDS (60), or at once when PID, the
# server that should listen, has exited.  Once PID is in NS (ip netns exec
# gets there a moment after it starts), each round reads /proc/PID/net/tcp
# and tcp6 instead of running ss (which starts two processes a round,
# about 80 ms of CPU under TCG, taken from the server being waited for).
wait_listen() {
	local ns=$1 port=$2 t=${3:-60} pid=${4:-} i net=
	local in=(ip netns exec "$ns") nsf=/proc/self/ns/net
	[ -n "$ns" ] || in=()
	[ -z "$ns" ] || nsf=/var/run/netns/$ns	# where ip netns keeps them
	for ((i = 0; i < t * 10; i++)); do
		[ -n "$net" ] || [ -z "$pid" ] || [ ! "/proc/$pid/ns/net" -ef "$nsf" ] ||
			net=/proc/$pid/net
		if [ -n "$net" ]; then
			proc_listening "$port" "$net/tcp" "$net/tcp6" && return 0
		else
			[ -n "$("${in[@]}" ss -Hltn "sport = :$port")" ] && return 0
		fi
		[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || return 1
		nap 0.1
	done
	return 1
}

# ktap_done: the last line of a .t: exit 1 when any check failed (counted
# by ktap_fail in this shell), else 0.  ktap_bail NAME: a failed check the
# file cannot go on after: "not ok", exit 1.
ktap_done() { exit $((KTAP_FAILED > 0)); }
ktap_bail() { ktap_fail "$@"; exit 1; }

# ktap_relay LABEL CMD...: run CMD (a test program printing KTAP lines) under
# timeout ${RELAY_TIMEOUT:-900}; its result lines become this file's,
# renumbered and prefixed "LABEL: "; its other output is shown as "# ".
# CMD exiting non-zero (1: it counted a failure; 4: everything skipped, fine
# only when every line was a SKIP), a crash (a signal), a timeout, or no
# result line at all is one more "not ok" naming it.
ktap_relay() {
	local label=$1 rc l name out nres=0 nfail=0 nskip=0 f0=$KTAP_FAILED
	local re='^(not )?ok ([0-9]+|-) ?(.*)$'
	shift
	out=$(mktemp) || { ktap_fail "$label: mktemp"; return 1; }
	timeout -k 10 "${RELAY_TIMEOUT:-900}" "$@" >"$out" 2>&1 </dev/null
	rc=$?
	while IFS= read -r l; do
		case $l in
		"ok "* | "not ok "*) ;;
		"#"*) printf '%s\n' "$l"; continue ;;
		*) printf '# %s\n' "$l"; continue ;;
		esac
		# (no fork per line: under TCG a sed each cost ~0.15 s a result)
		[[ $l =~ $re ]] && name=${BASH_REMATCH[3]} || name=$l
		nres=$((nres + 1))
		case $l in
		"not ok "*) nfail=$((nfail + 1)); ktap_fail "$label: $name" ;;
		*"# SKIP"*) nskip=$((nskip + 1)); ktap_skip "$label: ${name%% # SKIP*}" "${name#* # SKIP }" ;;
		*) ktap_ok "$label: $name" ;;
		esac
	done <"$out"
	# KTAP_RELAY_KEEP=FILE keeps the program's whole output for the caller
	if [ -n "${KTAP_RELAY_KEEP:-}" ]; then mv -f "$out" "$KTAP_RELAY_KEEP"; else rm -f "$out"; fi
	if [ $rc -gt 128 ] && [ $rc != 255 ]; then
		ktap_fail "$label: crashed (killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
	elif [ $rc = 124 ]; then
		ktap_fail "$label: still running after ${RELAY_TIMEOUT:-900} s (killed)"
	elif [ $nres = 0 ]; then
		ktap_fail "$label: printed no result (exit $rc)"
	elif [ $rc = 4 ] && [ $nskip = "$nres" ]; then
		:
	elif [ $rc != 0 ] && [ $nfail = 0 ]; then
		ktap_fail "$label: exits 0 (exit $rc with no failed check)"
	elif [ $rc = 0 ] && [ $nfail != 0 ]; then
		ktap_fail "$label: exits non-zero after a failed check (exit 0)"
	fi
	[ "$KTAP_FAILED" = "$f0" ]
}
