#!/usr/bin/env bash
# cap: 60
# The tests' own helpers, on this machine (loopback and a netns of this
# test's own): wait_listen from tests/lib/ktap.sh returns 1 within a
# second once the server it waits for has exited (a receiver that dies at
# start fails its case with its log, instead of waiting out the timeout or
# the file's cap), 0 once a socket listens, and 1 after SECONDS when no pid
# is given; hugepages_state prints the pool's three counts and
# hugepages_wait (tests/lib/dmveth.sh) returns 0 at once when enough pages
# are free, 1 after its timeout when they never are; nap sleeps as long as
# asked without starting a process, and so does wait_listen given the
# server's pid (here and in a netns).
set -o pipefail
# KTAP_LIB=FILE tests another copy of tests/lib/ktap.sh's nap, wait_listen
# and proc_listening (e.g. an old one:
# `KTAP_LIB=<(git show REV:tests/lib/ktap.sh) tests/host/test-lib.t`; the
# results come from this copy's ktap_ok and ktap_fail either way)
. "$(dirname "$0")/../lib/ktap.sh"
if [ -n "${KTAP_LIB:-}" ]; then
	KTAP_SRC=$(cat "$KTAP_LIB")
	unset -f nap wait_listen proc_listening
	for f in nap proc_listening wait_listen; do
		eval "$(sed -n "/^$f() {/,/^}/p" <<<"$KTAP_SRC")"
	done
	eval "$(sed -n '/^NAP_FD=/p' <<<"$KTAP_SRC")"
	declare -F nap >/dev/null || nap() { sleep "$1"; }
fi
# DMVETH_LIB=FILE tests another copy of tests/lib/dmveth.sh's huge page
# helpers (and of wait_listen where that copy still defines it: it
# lived there before it moved to ktap.sh)
DMVETH_LIB=${DMVETH_LIB:-$TOP/tests/lib/dmveth.sh}
# shellcheck source=/dev/null
. "$DMVETH_LIB"

# secs CMD...: run CMD, print "STATUS SECONDS"
secs() {
	local t0 rc
	t0=$(date +%s.%N)
	"$@"
	rc=$?
	echo "$rc $(awk -v a="$t0" -v z="$(date +%s.%N)" 'BEGIN {printf "%.1f", z - a}')"
}

sleep 0.3 &
pid=$!
read -r rc s < <(secs wait_listen "" 47990 30 "$pid")
bwait "$pid" 10
if [ "$rc" = 1 ] && awk -v s="$s" 'BEGIN {exit !(s < 5)}'; then
	ktap_ok "wait_listen: 1 after ${s} s when its server (pid $pid) exits without listening"
else
	ktap_fail "wait_listen: 1 within 5 s when its server exits without listening (status $rc after $s s)"
fi

python3 -c '
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 47991))
time.sleep(0.5)
s.listen()
time.sleep(20)' &
pid=$!
read -r rc s < <(secs wait_listen "" 47991 10 "$pid")
kill "$pid" 2>/dev/null
bwait "$pid" 10
ktap_check "wait_listen: 0 once its server listens on 127.0.0.1:47991 (status $rc after $s s)" test "$rc" = 0

read -r rc s < <(secs wait_listen "" 47992 1)
if [ "$rc" = 1 ] && awk -v s="$s" 'BEGIN {exit !(s >= 0.9)}'; then
	ktap_ok "wait_listen: 1 after its 1 s timeout with no listener and no pid (${s} s)"
else
	ktap_fail "wait_listen: 1 after its 1 s timeout with no listener and no pid (status $rc after $s s)"
fi

st=$(hugepages_state)
if [[ $st =~ ^HugePages_Total:\ [0-9]+\ HugePages_Free:\ [0-9]+\ HugePages_Rsvd:\ [0-9]+\ $ ]]; then
	ktap_ok "hugepages_state: \"$st\""
else
	ktap_fail "hugepages_state: the pool's Total, Free and Rsvd counts on one line (got \"$st\")"
fi
free=$(awk '$1 == "HugePages_Free:" {print $2}' /proc/meminfo)
read -r rc s < <(secs hugepages_wait "$free" 5)
if [ "$rc" = 0 ] && awk -v s="$s" 'BEGIN {exit !(s < 1)}'; then
	ktap_ok "hugepages_wait: 0 at once with the $free free pages it asks for (${s} s)"
else
	ktap_fail "hugepages_wait: 0 at once with the $free free pages it asks for (status $rc after $s s)"
fi
read -r rc s < <(secs hugepages_wait $((free + 1)) 1)
if [ "$rc" = 1 ] && awk -v s="$s" 'BEGIN {exit !(s >= 0.9 && s < 5)}'; then
	ktap_ok "hugepages_wait: 1 after its 1 s timeout asking for $((free + 1)) of $free free pages (${s} s)"
else
	ktap_fail "hugepages_wait: 1 after its 1 s timeout asking for $((free + 1)) of $free free pages (status $rc after $s s)"
fi

# forks: the kernel's count of processes started since boot (no fork here)
forks() {
	local k v
	while read -r k v _; do
		[ "$k" = processes ] && { echo "$v"; return; }
	done </proc/stat
}
nap 0.01	# the first call makes the FIFO (a fork or two)
f0=$(forks)
read -r rc s < <(secs eval 'for ((i = 0; i < 20; i++)); do nap 0.05; done')
f1=$(forks)
# (the substitutions and secs's date and awk start a few: 5 on this machine)
if [ "$rc" = 0 ] && [ $((f1 - f0)) -lt 20 ] && awk -v s="$s" 'BEGIN {exit !(s >= 0.9 && s < 5)}'; then
	ktap_ok "nap: 20 naps of 0.05 s took ${s} s with $((f1 - f0)) processes started on this machine meanwhile (fewer than one per nap)"
else
	ktap_fail "nap: 20 naps of 0.05 s take 1 s and start no process (status $rc, ${s} s, $((f1 - f0)) processes started)"
fi
# wait_listen with the server's pid reads /proc/PID/net/tcp{,6}, starting
# no process per round: an IPv6 listener here and an IPv4 one in a netns of
# this test's own (waited for once the server's ip netns exec is in it),
# each listening after 1 s (about 10 rounds), with an ss first in PATH
# that counts its calls (0 wanted; lo needs IPv6 for the first); with a pid
# outside the netns it falls back to ss (counted: the counter works).
listener() { # listener PORT ADDR FAMILY: listen after 1 s, for 20 s (exec: the pid is python's)
	exec python3 -c '
import socket, sys, time
s = socket.socket(int(sys.argv[3]))
s.bind((sys.argv[2], int(sys.argv[1])))
time.sleep(1)
s.listen()
time.sleep(20)' "$@"
}
NS=dmt-testlib-$$
SHIM=$(mktemp -d)
trap 'ip netns del $NS 2>/dev/null; rm -rf "$SHIM"' EXIT
printf '#!/bin/sh\necho >>"%s/calls"\nexec %s "$@"\n' "$SHIM" "$(command -v ss)" >"$SHIM/ss"
chmod +x "$SHIM/ss"
: >"$SHIM/calls"
calls() { wc -l <"$SHIM/calls"; }
(listener 47993 ::1 10) &
pid=$!
PATH=$SHIM:$PATH wait_listen "" 47993 10 "$pid"
rc=$?
kill "$pid" 2>/dev/null
bwait "$pid" 10
if [ "$rc" = 0 ] && [ "$(calls)" = 0 ]; then
	ktap_ok "wait_listen: 0 once its server (pid given) listens on [::1]:47993, with no ss run"
else
	ktap_fail "wait_listen: 0 once its server (pid given) listens on [::1]:47993, with no ss run (status $rc, ss run $(calls) times)"
fi
if ip netns add $NS && ip -n $NS link set lo up; then
	ip netns exec $NS bash -c "$(declare -f listener); listener 47994 127.0.0.1 2" &
	pid=$!
	# (once ip netns exec is in the netns: before, a round runs ss)
	for ((i = 0; i < 50; i++)); do
		[ ! "/proc/$pid/ns/net" -ef /var/run/netns/$NS ] || break
		nap 0.1
	done
	: >"$SHIM/calls"
	PATH=$SHIM:$PATH wait_listen $NS 47994 10 "$pid"
	rc=$?
	n=$(calls)
	rc2=1
	[ "$rc" != 0 ] || { PATH=$SHIM:$PATH wait_listen $NS 47994 5 $$; rc2=$?; }
	kill "$pid" 2>/dev/null
	bwait "$pid" 10
	if [ "$rc" = 0 ] && [ "$n" = 0 ] && [ "$rc2" = 0 ] && [ "$(calls)" -gt 0 ]; then
		ktap_ok "wait_listen: 0 once its server in netns $NS listens, with no ss run; with a pid outside the netns, 0 by ss"
	else
		ktap_fail "wait_listen in netns $NS: 0 with no ss run (status $rc, ss run $n times), and by ss with a pid outside it (status $rc2, ss run $(( $(calls) - n )) times)"
	fi
else
	ktap_fail "ip netns add $NS (root is needed for the netns case)"
fi
ktap_done
