#!/usr/bin/env bash
# cap: 150
# cap-debug: 250
# vm-suite: debug
# dmveth teardown while a devmem RX binding exists.  The binding comes from
# the kernel's ncdevmem server (`ncdevmem -l` binds the last RX queue of dmb,
# then waits in accept()); with it alive, each case on a fresh pair:
#  - ethtool -L below the bound queue is refused with the kernel's memory
#    provider message (after ncdevmem's RSS table and rule are cleared, which
#    the core checks first), and works once ncdevmem is gone;
#  - tcp-data-split off and a non-zero hds-thresh are refused with the
#    kernel's messages, and work once ncdevmem is gone;
#  - in both, the netdev queue-get dump (tests/progs/queues) shows queue 3
#    with the dma-buf while ncdevmem runs, and with no memory provider
#    (no dmabuf, no io_uring) once it is gone: the binding was released;
#  - ip link del of the bound end: succeeds, no end of the pair is left,
#    ncdevmem ends (by itself or on SIGTERM: it waits in accept());
#  - ip netns del of the bound end's netns: succeeds; ncdevmem's binding
#    socket and its task pin the netns, so the pair goes once ncdevmem ends;
#  - ip link del with a transfer into the bound queue in flight (plain TCP
#    sender, devmem RX): both processes must end, by themselves within 10 s
#    or (still waiting, as TCP does when its device goes) on SIGTERM;
#  - the same with a devmem TX sender is not here: Linux 7.3 does not clear
#    a TX binding's device when the device is unregistered, so closing the
#    bind-tx netlink socket afterwards uses the freed net_device
#    (netdev_nl_sock_priv_destroy; any devmem TX NIC, not dmveth's doing).
#    tests/vm/99-xfail-tx-teardown.t runs it last in the debug kernel's boot
#    as an expected failure (a kernel fix shows as an unexpected pass);
#  - rmmod dmveth: succeeds (rtnl_link_unregister deletes the pair), then
#    insmod again and a new pair passes traffic.
# Every wait is a bounded polling loop; every command that could hang runs
# under timeout.  Each case also checks that the kernel logged no splat.
# shellcheck disable=SC2015 # ktap_ok only prints
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
KO=${DEVMEMTCP_MODULES:-/nonexistent}/dmveth/dmveth.ko
cleanup() {
	local p
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	dmveth_unpair
	[ -d /sys/module/dmveth ] || insmod "$KO" 2>/dev/null
	rm -rf "$LOG"
}
trap cleanup EXIT
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"
command -v queues >/dev/null || ktap_bail "tests/progs/queues built (make all)"

combined() {
	eth -l "$1" | awk '/^Current hardware settings/ {c = 1} c && /^Combined:/ {print $2; exit}'
}

# ---- kernel log: a splat during a case fails that case ----
SPLAT='BUG:|WARNING:|Oops|KASAN|unreferenced object|possible circular locking|possible recursive locking|inconsistent lock state|INFO: task .* blocked|RCU stall|Kernel panic'
KMSG=0
kmsg_mark() { KMSG=$(dmesg | wc -l); }
kmsg_check() { # kmsg_check CASE
	local bad
	bad=$(dmesg | tail -n +$((KMSG + 1)) | grep -E -A 12 "$SPLAT")
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad" | head -n 40 | sed 's/^/# kernel: /'
		ktap_fail "$1: no kernel BUG/WARNING/KASAN/lockdep report"
	else
		ktap_ok "$1: no kernel BUG/WARNING/KASAN/lockdep report"
	fi
	kmsg_mark
}

# gone PID SECONDS: until PID has exited (0) or SECONDS passed (1)
gone() {
	local end=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null; do
		[ $SECONDS -lt $end ] || return 1
		nap 0.1
	done
}
# proc_state PID: the process's state letter and wait channel, for diagnostics
proc_state() {
	echo "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) $(cat "/proc/$1/wchan" 2>/dev/null)"
}

# fresh_pair: a new pair (dmveth_unpair; dmveth_pair 4), or a failed line
fresh_pair() {
	dmveth_unpair
	if ! dmveth_pair 4; then
		ktap_fail "$1: create a fresh dmveth pair"
		return 1
	fi
}

PORT=5400
# server: ncdevmem -l on dmb (binds RX queue 3), backgrounded; SPID is its
# pid.  Ready (and bound: it binds before listen()) once it listens.
server() {
	PORT=$((PORT + 1))
	# stdout apart from stderr: see ncdevmem_server in tests/lib/dmveth.sh.
	ip netns exec b ncdevmem -l -f $DMV_B -s $DMV_B4 -c $DMV_A4 -p $PORT -v 7 >"$LOG/srv.$PORT.out" 2>"$LOG/srv.$PORT" &
	SPID=$!
	if ! wait_listen b $PORT 60 "$SPID"; then
		tail -n 20 "$LOG/srv.$PORT" | sed 's/^/# server: /'
		kill "$SPID" 2>/dev/null
		ktap_fail "$1: ncdevmem -l binds queue 3 and listens"
		return 1
	fi
}
# stop_server: SIGTERM to ncdevmem, then wait (10 s) for it to end
stop_server() {
	kill "$SPID" 2>/dev/null
	gone "$SPID" 10
}

# has TEXT OUTPUT: OUTPUT contains TEXT
has() { grep -q -F -- "$1" <<<"$2"; }

# q3: queue 3 of dmb as the netdev queue-get dump shows it: "rx 3 dmabuf N"
# (a devmem binding), "rx 3 io-uring" or "rx 3 -" (no memory provider)
q3() { ip netns exec b timeout 60 queues $DMV_B 2>&1 | grep -E '^rx 3 |queues:'; }
# bound_check CASE: ncdevmem's binding shows on queue 3
bound_check() {
	local q
	q=$(q3)
	if grep -q -E '^rx 3 dmabuf [0-9]+$' <<<"$q"; then
		ktap_ok "$1: queue-get shows queue 3 bound ($q)"
	else
		ktap_fail "$1: queue-get shows queue 3 bound (got '${q//$'\n'/ }')"
	fi
}
# released_check CASE: queue 3 has no memory provider any more
released_check() {
	local q
	q=$(q3)
	if [ "$q" = "rx 3 -" ]; then
		ktap_ok "$1: binding released: queue-get shows queue 3 with no dmabuf or io_uring ($q)"
	else
		ktap_fail "$1: binding released: queue-get shows queue 3 with no dmabuf or io_uring (got '${q//$'\n'/ }')"
	fi
}

# The debug kernel (KASAN, lockdep, kmemleak; a case costs two to three
# minutes there) runs cases 5 and 6: the device going with a transfer in
# flight, the module going under a binding.  Cases 1-4 (channels and rings
# refused while bound, link del and netns del while idle) run on the normal
# kernel, or on the debug one with DEVMEMTCP_FULL=1.
normal_only() { # normal_only CASE: true when CASE runs here
	if [ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] && [ "${DEVMEMTCP_FULL:-0}" != 1 ]; then
		echo "# $1: normal kernel only (DEVMEMTCP_FULL=1 runs it here)"
		return 1
	fi
}

kmsg_mark

# ---- 1: channels ----
C="bound queue 3, ethtool -L"
if normal_only "$C"; then
	if fresh_pair "$C" && server "$C"; then
		bound_check "$C"
		if out=$(eth -L $DMV_B combined 2 2>&1); then
			ktap_fail "$C combined 2 with ncdevmem's RSS table, rule and binding is refused"
		else
			ktap_ok "$C combined 2 with ncdevmem's RSS table, rule and binding is refused (${out//$'\n'/ })"
		fi
		# ncdevmem set "equal 3" and a rule to queue 3, which the core checks
		# before the memory provider: clear them, the binding stays
		eth -X $DMV_B default >/dev/null 2>&1
		for id in $(eth -n $DMV_B | sed -n 's/^Filter: \([0-9]*\)$/\1/p'); do
			eth -N $DMV_B delete "$id" >/dev/null 2>&1
		done
		MP_MSG="requested channel counts are too low for existing memory provider setting"
		for n in 2 3; do
			if out=$(eth -L $DMV_B combined $n 2>&1); then
				ktap_fail "$C combined $n (binding only) is refused with \"$MP_MSG\""
			elif has "$MP_MSG" "$out" && [ "$(combined $DMV_B)" = 4 ]; then
				ktap_ok "$C combined $n (binding only) is refused with \"$MP_MSG\", still 4 channels"
			else
				echo "# ${out//$'\n'/ }; channels now $(combined $DMV_B)"
				ktap_fail "$C combined $n (binding only) is refused with \"$MP_MSG\""
			fi
		done
		if ! stop_server; then
			ktap_fail "$C: ncdevmem ends on SIGTERM (state $(proc_state "$SPID"))"
		else
			released_check "$C"
		fi
		if out=$(eth -L $DMV_B combined 2 2>&1) && [ "$(combined $DMV_B)" = 2 ]; then
			ktap_ok "$C combined 2 works once ncdevmem ended"
		else
			echo "# ${out//$'\n'/ }"
			ktap_fail "$C combined 2 works once ncdevmem ended"
		fi
	fi
	kmsg_check "$C"
fi

# ---- 2: rings ----
C="bound queue 3, rings"
if normal_only "$C"; then
	if [ $ETHTOOL_HDS = 0 ] && ! [ -f "$YNL" ]; then
		ktap_fail "$C: ethtool $(ethtool --version | awk '{print $3}') cannot set tcp-data-split and the YNL cli the rig installs is missing ($YNL; fix: vm/build)"
	elif fresh_pair "$C" && server "$C"; then
		bound_check "$C"
		M1="can't disable tcp-data-split while device has memory provider enabled"
		M2="can't set non-zero hds_thresh"
		if out=$(rings_set $DMV_B tcp-data-split off 2>&1); then
			ktap_fail "$C: tcp-data-split off is refused"
		elif has "$M1" "$out"; then
			ktap_ok "$C: tcp-data-split off is refused with \"$M1\""
		else
			echo "# ${out//$'\n'/ }"
			ktap_fail "$C: tcp-data-split off is refused with \"$M1\""
		fi
		if out=$(rings_set $DMV_B hds-thresh 100 2>&1); then
			ktap_fail "$C: hds-thresh 100 is refused"
		elif has "$M2" "$out"; then
			ktap_ok "$C: hds-thresh 100 is refused with \"$M2\""
		else
			echo "# ${out//$'\n'/ }"
			ktap_fail "$C: hds-thresh 100 is refused with \"$M2\""
		fi
		if ! stop_server; then
			ktap_fail "$C: ncdevmem ends on SIGTERM (state $(proc_state "$SPID"))"
		else
			released_check "$C"
		fi
		if out=$(rings_set $DMV_B tcp-data-split off 2>&1) &&
			out+=$(rings_set $DMV_B tcp-data-split on hds-thresh 100 2>&1); then
			ktap_ok "$C: tcp-data-split off, then hds-thresh 100, work once ncdevmem ended"
		else
			echo "# ${out//$'\n'/ }"
			ktap_fail "$C: tcp-data-split off, then hds-thresh 100, work once ncdevmem ended"
		fi
	fi
	kmsg_check "$C"
fi

# ---- 3: ip link del while bound ----
C="bound queue 3, ip link del dmb"
if normal_only "$C"; then
	if fresh_pair "$C" && server "$C"; then
		if out=$(timeout 60 ip -n b link del $DMV_B 2>&1); then
			ktap_ok "$C: succeeds"
		else
			echo "# exit $?: ${out//$'\n'/ }"
			ktap_fail "$C: succeeds"
		fi
		if ! ip -n b link show $DMV_B >/dev/null 2>&1 && ! ip -n a link show $DMV_A >/dev/null 2>&1; then
			ktap_ok "$C: neither end of the pair is left"
		else
			ktap_fail "$C: neither end of the pair is left"
		fi
		# ncdevmem waits in accept() on an address that went with the device:
		# nothing wakes it, so it may have to be told
		if gone "$SPID" 5; then
			how="by itself"
		elif stop_server; then
			how="on SIGTERM"
		else
			how=
		fi
		if [ -n "$how" ]; then
			bwait "$SPID" 5
			ktap_ok "$C: ncdevmem ends $how (exit $?)"
		else
			ktap_fail "$C: ncdevmem still running 10 s after SIGTERM (state $(proc_state "$SPID"))"
		fi
	fi
	kmsg_check "$C"
fi

# ---- 4: ip netns del b while bound ----
C="bound queue 3, ip netns del b"
if normal_only "$C"; then
	if fresh_pair "$C" && server "$C"; then
		if out=$(timeout 60 ip netns del b 2>&1); then
			ktap_ok "$C: succeeds"
		else
			echo "# exit $?: ${out//$'\n'/ }"
			ktap_fail "$C: succeeds"
		fi
		# ncdevmem's task and its netlink socket (which owns the binding) hold
		# netns b: it can only die once ncdevmem ends
		if ip -n a link show $DMV_A >/dev/null 2>&1; then
			echo "# the pair stays while ncdevmem keeps netns b alive"
		fi
		if stop_server; then
			ktap_ok "$C: ncdevmem ends on SIGTERM"
		else
			ktap_fail "$C: ncdevmem ends on SIGTERM (state $(proc_state "$SPID"))"
		fi
		for ((i = 0; i < 600; i++)); do
			ip -n a link show $DMV_A >/dev/null 2>&1 || break
			nap 0.1
		done
		if ip -n a link show $DMV_A >/dev/null 2>&1; then
			ktap_fail "$C: the pair is gone (dma still in netns a after 60 s)"
		else
			ktap_ok "$C: the pair is gone (dma left netns a after $((i / 10)).$((i % 10)) s)"
		fi
	fi
	kmsg_check "$C"
fi

# ---- 5: ip link del with a transfer in flight ----
C="devmem RX transfer in flight, ip link del dmb"
if fresh_pair "$C" && server "$C"; then
	python3 -c 'import sys; sys.stdout.buffer.write(bytes([1,2,3,4,5,6,10])*(1<<24))' 2>/dev/null |
		ip netns exec a socat -u - TCP:$DMV_B4:$PORT,bind=$DMV_A4:$PORT >"$LOG/cli" 2>&1 &
	CPID=$!
	# in flight: devmem frames reached the bound queue
	for ((i = 0; i < 600; i++)); do
		n=$(eth -S $DMV_B 2>/dev/null | awk '$1 ~ /^rx[0-9]+_unreadable_packets:$/ {s += $2} END {print s + 0}')
		[ "${n:-0}" -gt 0 ] && break
		kill -0 "$CPID" 2>/dev/null || break
		nap 0.1
	done
	if [ "${n:-0}" -gt 0 ] && kill -0 "$CPID" 2>/dev/null; then
		ktap_ok "$C: transfer running ($n devmem frames received)"
	else
		tail -n 5 "$LOG/cli" | sed 's/^/# client: /'
		tail -n 5 "$LOG/srv.$PORT" | sed 's/^/# server: /'
		ktap_fail "$C: transfer running ($n devmem frames received)"
	fi
	if out=$(timeout 60 ip -n b link del $DMV_B 2>&1); then
		ktap_ok "$C: succeeds"
	else
		echo "# exit $?: ${out//$'\n'/ }"
		ktap_fail "$C: succeeds"
	fi
	# Neither end learns that the connection lost its device (no FIN or
	# RST can cross any more): ncdevmem waits in recvmsg(), devmem-tx in
	# sendmsg() for send-buffer room, as on any NIC.  Each must end by
	# itself within 10 s or, still waiting interruptibly, on SIGTERM.
	# (Either passes: what counts is that neither is stuck in the kernel.)
	end=$((SECONDS + 10))
	while [ $SECONDS -lt $end ] && { kill -0 "$SPID" 2>/dev/null || kill -0 "$CPID" 2>/dev/null; }; do
		nap 0.2
	done
	for who in "ncdevmem server:$SPID" "TCP client:$CPID"; do
		pid=${who#*:} who=${who%:*}
		if ! kill -0 "$pid" 2>/dev/null; then
			bwait "$pid" 5
			ktap_ok "$C: the $who ends by itself within 10 s (exit $?)"
			continue
		fi
		st=$(proc_state "$pid")
		kill "$pid" 2>/dev/null
		if gone "$pid" 10; then
			ktap_ok "$C: the $who ends on SIGTERM (still waiting after 10 s: $st)"
		else
			ktap_fail "$C: the $who ends on SIGTERM (waiting after 10 s: $st; 10 s after SIGTERM: $(proc_state "$pid"))"
		fi
	done
	tail -n 3 "$LOG/cli" | sed 's/^/# client: /'
	grep -v -E 'received frag_page|Validated buffer' "$LOG/srv.$PORT" | tail -n 3 | sed 's/^/# server: /'
fi
kmsg_check "$C"

# (devmem TX transfer in flight, ip link del dma: a Linux 7.3 use-after-free,
# see the header; tests/vm/99-xfail-tx-teardown.t runs it last.)

# ---- 6: rmmod dmveth while bound ----
C="bound queue 3, rmmod dmveth"
if fresh_pair "$C" && server "$C"; then
	out=$(timeout 60 rmmod dmveth 2>&1)
	rc=$?
	if [ $rc = 0 ] && [ ! -d /sys/module/dmveth ] &&
		! ip -n a link show $DMV_A >/dev/null 2>&1 && ! ip -n b link show $DMV_B >/dev/null 2>&1; then
		ktap_ok "$C: succeeds, the pair is deleted with the module"
	elif [ $rc = 124 ]; then
		ktap_fail "$C: still running after 60 s"
	else
		echo "# rmmod exit $rc: ${out//$'\n'/ }; module $([ -d /sys/module/dmveth ] && echo loaded || echo gone)"
		ip -n b link show $DMV_B 2>&1 | sed 's/^/# /'
		ktap_fail "$C: succeeds, the pair is deleted with the module"
	fi
	# the binding (its dma-buf attachment to the module's DMA device)
	# outlived the module: releasing it now must be safe
	if gone "$SPID" 5 || stop_server; then
		ktap_ok "$C: ncdevmem ends afterwards (its binding, which outlived the module, released without a splat: checked below)"
	else
		ktap_fail "$C: ncdevmem still running 10 s after SIGTERM (state $(proc_state "$SPID"))"
	fi
	if [ -d /sys/module/dmveth ]; then
		ktap_skip "$C: insmod dmveth.ko again" "the module was not unloaded"
	elif out=$(insmod "$KO" 2>&1); then
		ktap_ok "$C: insmod dmveth.ko again"
	else
		echo "# ${out//$'\n'/ }"
		ktap_fail "$C: insmod $KO again"
	fi
	if fresh_pair "$C" && ip netns exec a ping -c1 -W5 $DMV_B4 >/dev/null; then
		ktap_ok "$C: a new pair passes traffic afterwards"
	else
		ktap_fail "$C: a new pair passes traffic afterwards"
	fi
fi
kmsg_check "$C"
ktap_done
