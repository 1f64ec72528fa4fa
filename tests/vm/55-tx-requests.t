#!/usr/bin/env bash
# cap: 35
# libdevmemtcp 0.2 TX in the VM, on dmveth:
# - examples/sender (messages from two dma-bufs with cookies, 8
#   non-blocking connections on one epoll thread) in devmem mode into
#   examples/receiver (8 connections on one epoll thread, fragments held
#   and given back out of order from a worker thread), which checks every
#   byte of every connection: byte counts compared per connection, every
#   sendmsg completed, no token leaked (the engines' counters);
# - examples/sender with one connection and odd-sized messages into
#   `devmemtcp recv --mode devmem --validate 7` (IPv6);
# - tests/progs/tx-devmem: requests from two bind-tx bindings into a plain
#   receiver, the socket options of devmem mode and their undo;
# - oversized buffers (`devmemtcp send --size 1T`, udmabuf over the kernel's
#   page-array limit, more than the memory there is, heap and host too):
#   one line of error each, before the kernel is asked: no new kernel
#   report (WARNING, allocation failure, OOM) in the log.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
trap 'for p in $(jobs -p); do kill $p 2>/dev/null; bwait $p 10 >/dev/null 2>&1; done; dmveth_unpair; rm -rf "$LOG"' EXIT
SENDER=$TOP/build/examples/sender
RECEIVER=$TOP/build/examples/receiver
command -v devmemtcp >/dev/null || { ktap_fail "devmemtcp built (make all)"; exit 1; }
[ -x "$SENDER" ] || { ktap_fail "examples/sender built (make all)"; exit 1; }
[ -x "$RECEIVER" ] || { ktap_fail "examples/receiver built (make all)"; exit 1; }

# kernel reports: what vm/run's log check and a reader would call one
kreports() {
	dmesg 2>/dev/null | grep -c -E 'WARNING:|Call Trace|allocation failure|Out of memory|BUG:'
}
reports_before=$(kreports)

# Oversized buffers: one line, exit non-zero, nothing reaches the kernel.
oversize() {
	local name=$1 want=$2 rc
	shift 2
	ip netns exec a devmemtcp send "$DMV_B4:5999" --dev $DMV_A --mode auto "$@" \
		>"$LOG/out" 2>"$LOG/err"
	rc=$?
	if [ $rc != 0 ] && [ "$(wc -l <"$LOG/err")" = 1 ] && grep -q -- "$want" "$LOG/err"; then
		ktap_ok "$name: exit $rc, one line: $(cut -c1-150 "$LOG/err")"
	else
		sed 's/^/# /' "$LOG/out" "$LOG/err" | tail -n 5
		ktap_fail "$name: one line naming $want (exit $rc)"
	fi
}

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }

limit=$(cat /sys/module/udmabuf/parameters/size_limit_mb 2>/dev/null)
oversize "send --size 1T (udmabuf, size_limit_mb ${limit:-?})" INT_MAX --provider udmabuf --size 1T
oversize "send --size 512G (udmabuf)" MemAvailable --provider udmabuf --size 512G
if [ -e /dev/dma_heap/system ]; then
	oversize "send --size 1T (heap)" MemAvailable --provider heap --size 1T
else
	ktap_skip "send --size 1T (heap)" "no /dev/dma_heap/system in this kernel"
fi
oversize "send --size 1T (host)" MemAvailable --provider host --size 1T
reports=$(kreports)
if [ "$reports" = "$reports_before" ]; then
	ktap_ok "no kernel report from the oversized requests ($reports before and after)"
else
	dmesg | tail -n 30 | sed 's/^/# /'
	ktap_fail "no kernel report from the oversized requests ($reports_before before, $reports after)"
fi

relay "tx-devmem (dmveth)" ip netns exec a tx-devmem -i $DMV_A -a $DMV_B4 -n b \
	-m "$(scale 32 4)"

# key=value fields of the sender's line (sval) and the receiver's summary (rval)
sval() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$LOG/snd"; }
rval() { grep '^receiver: conns=' "$LOG/rcv" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"; }
port=5800

# examples/sender -> examples/receiver: both examples, 8 connections each
# on one thread, devmem both ways, every byte of every connection checked.
conns=8
per=$(scale $((4 << 20)) $((512 << 10)))
total=$((conns * per))
port=$((port + 1))
ip netns exec b timeout 600 "$RECEIVER" -i $DMV_B -l $DMV_B4 -p $port -q 3 -c $conns -v 7 \
	-n "$per" >"$LOG/rcv" 2>"$LOG/rcv.err" &
rpid=$!
if wait_listen b $port 60 "$rpid"; then
	ip netns exec a timeout 600 "$SENDER" --dev $DMV_A --to "$DMV_B4:$port" --conns $conns \
		--bytes "$per" --msg $((64 << 10)) --period 7 --mode devmem >"$LOG/snd" 2>&1
	src=$?
	if [ $src != 0 ]; then
		# the receiver would wait for the missing connections: stop it,
		# then replay its NIC undo log
		kill $rpid 2>/dev/null
		bwait $rpid 30
		rrc=$?
		ip netns exec b devmemtcp restore $DMV_B 2>&1 | sed 's/^/# restore: /'
	else
		timeout 120 tail --pid=$rpid -f /dev/null
		bwait $rpid 300
		rrc=$?
	fi
	if [ $src = 0 ] && [ "$(sval mode)" = devmem ] && [ "$(sval conns)" = $conns ] &&
		[ "$(sval bytes)" = $total ] && [ "$(sval completions)" = "$(sval sendmsgs)" ]; then
		ktap_ok "examples/sender: $conns connections on one thread, $total bytes in $(sval messages) messages from two dma-bufs, $(sval sendmsgs) sendmsgs all completed, $(sval wakeups) wake-ups"
	else
		echo "# sender exit $src"
		sed 's/^/# sender: /' "$LOG/snd" | tail -n 5
		ktap_fail "examples/sender: $conns connections, $total bytes, every sendmsg completed"
	fi
	if [ $rrc = 0 ] && [ "$(rval conns)" = $conns ] && [ "$(rval bytes)" = $total ] &&
		[ "$(rval validated)" = $total ] && [ "$(rval short_conns)" = 0 ] &&
		[ "$(rval bad_requests)" = 0 ]; then
		ktap_ok "examples/receiver: $conns connections on one thread, $total bytes, every byte validated, $per on each ($(rval linear_bytes) linear bytes, $(rval mbytes_per_sec) MB/s)"
	else
		echo "# receiver exit $rrc"
		sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 15
		ktap_fail "examples/receiver: $conns connections, $total bytes, every byte validated"
	fi
	rec=$(rval frags_received)
	if [ -n "$rec" ] && [ "$rec" -gt 0 ] && [ "$(rval frags_released)" = "$rec" ] &&
		[ "$(rval frags_held)" = 0 ] && [ "$(rval frags_lost)" = 0 ] &&
		[ "$(rval frags_unknown)" = 0 ] && [ "$(rval put_errors)" = 0 ]; then
		ktap_ok "examples/receiver: no token leaked: $rec fragments received = released, out of order from the worker in $(rval puts) puts"
	else
		grep '^receiver: conns' "$LOG/rcv" | sed 's/^/# /'
		ktap_fail "examples/receiver: no token leaked (released = received, held 0, lost 0)"
	fi
else
	sed 's/^/# /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
	ktap_fail "examples/receiver listening"
	kill $rpid 2>/dev/null
fi

# examples/sender (one connection) -> devmemtcp recv, every byte checked.
sender_to_recv() {
	local name=$1 bytes=$2 srv=$3 msg=$4 rpid rrc src lhost
	port=$((port + 1))
	case $srv in *:*) lhost="[$srv]" ;; *) lhost=$srv ;; esac
	ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$lhost:$port" --queues 3:1 \
		--validate 7 --mode devmem --fail-on-linear >"$LOG/rcv" 2>"$LOG/rcv.err" &
	rpid=$!
	if ! wait_listen b $port 60 "$rpid"; then
		sed 's/^/# /' "$LOG/rcv.err" | tail -n 10
		ktap_fail "$name: devmemtcp recv listening"
		kill $rpid 2>/dev/null
		return
	fi
	ip netns exec a timeout 600 "$SENDER" --dev $DMV_A --to "$lhost:$port" --conns 1 \
		--bytes "$bytes" --msg "$msg" --period 7 --mode devmem >"$LOG/snd" 2>&1
	src=$?
	timeout 120 tail --pid=$rpid -f /dev/null
	bwait $rpid 300
	rrc=$?
	if [ $src = 0 ] && [ $rrc = 0 ] && [ "$(sval mode)" = devmem ] &&
		[ "$(sval bytes)" = "$bytes" ] && [ "$(json "$LOG/rcv" bytes)" = "$bytes" ] &&
		[ "$(json "$LOG/rcv" mode)" = devmem ] && [ "$(json "$LOG/rcv" linear_bytes)" = 0 ] &&
		[ "$(sval completions)" = "$(sval sendmsgs)" ]; then
		ktap_ok "$name: sent $(sval bytes) = received $(json "$LOG/rcv" bytes) bytes, validated, $(sval messages) messages in $(sval sendmsgs) sendmsgs, all completed, $(sval wakeups) wake-ups"
	else
		echo "# sender exit $src, recv exit $rrc"
		sed 's/^/# sender: /' "$LOG/snd" | tail -n 5
		sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 15
		ktap_fail "$name"
	fi
}

if [ "${DEVMEMTCP_FLAVOR:-normal}" != debug ]; then
	sender_to_recv "examples/sender, one connection, odd 3001-byte messages -> devmemtcp recv, IPv6" \
		"$((8 << 20))" $DMV_B6 3001
fi
ktap_done
