#!/usr/bin/env bash
# cap: 60
# The tests' own helpers, on this machine (loopback only): wait_listen from
# tests/lib/dmveth.sh returns 1 within a second once the server it waits
# for has exited (a receiver that dies at start fails its case with its
# log, instead of waiting out the timeout or the file's cap), 0 once a
# socket listens, and 1 after SECONDS when no pid is given.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
# DMVETH_LIB=FILE tests another copy (e.g. an old one:
# `DMVETH_LIB=<(git show REV:tests/lib/dmveth.sh) tests/host/test-lib.t`)
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
ktap_done
