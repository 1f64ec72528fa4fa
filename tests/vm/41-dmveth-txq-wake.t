#!/usr/bin/env bash
# cap: 80
# dmveth: a sender whose TX queue stopped on a full RX backlog sends again
# after the receiver reconfigures or restarts its queues (issue 12, bug 1),
# and frames dropped with a backlog count the same on the queue and the
# device (bug 7).  Every byte BQL counted on dma's TX queue is given back
# (inflight 0) once the stream ended, purged frames included: a frame that
# left dmb's backlog without its completion would stop that queue for good.
# The qdisc hands the frames it held meanwhile over in xmit_more batches.
# Last, the frames of one TX queue spread over four RX queues: their NAPIs
# complete that queue's BQL at once, and still every byte comes back.
#
# Each case: a TCP stream from netns a to dmb; dma has one channel (so
# that TCP's retransmits cannot move to another TX queue) and TSO off (so
# that the frames are small and many).  Once the stream runs, dmb's RX ring becomes
# 16 frames and the debugfs knob rx_stall stops every NAPI from draining
# (a stalled DMA engine): the backlog fills and dma's TX queue stops
# (tx*_stops).
# Then, still stalled, dmb does one of ethtool -G rx, tcp-data-split on,
# ethtool -L combined 2, or link down/up; then the stall ends (queues that
# hold frames are polled again, as an engine raises its interrupt).  The
# stream must complete, every byte, within 60 s.  A queue whose backlog was
# emptied while its sender was stopped never wakes that sender otherwise.
# shellcheck disable=SC2015 # ktap_ok only prints
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
DBG=/sys/kernel/debug/dmveth
cleanup() {
	local p
	[ -w $DBG/rx_stall ] && echo 0 >$DBG/rx_stall
	exec 3>&-
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	dmveth_unpair
	rm -rf "$LOG"
}
trap cleanup EXIT

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
if [ ! -w $DBG/rx_stall ]; then
	ktap_fail "dmveth's fault injection knob $DBG/rx_stall exists"
	exit 1
fi

# counter NS DEV REGEX: the sum of the ethtool -S counters matching REGEX
counter() {
	ip netns exec "$1" timeout 30 ethtool -S "$2" |
		awk -v re="^($3):$" '$1 ~ re {s += $2} END {print s + 0}'
}
# dev_rx_dropped: dmb's device rx dropped counter (ip -s link)
dev_rx_dropped() {
	ip -n b -s -j link show $DMV_B |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["dropped"])'
}
# fsize FILE: its size in bytes (0 if missing)
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
# until_true SECONDS CMD...: until CMD succeeds (0) or SECONDS passed (1)
until_true() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		nap 0.1
	done
}
at_least() { [ "$("${@:2}")" -ge "$1" ]; }
# bql_inflight: the bytes BQL counts in flight on dma's TX queues
bql_inflight() {
	ip netns exec a sh -c 'cat /sys/class/net/'$DMV_A'/queues/tx-*/byte_queue_limits/inflight' |
		awk '{s += $1} END {print s + 0}'
}
bql_idle() { [ "$(bql_inflight)" = 0 ]; }

HEAD=262144 BODY=$((2 << 20)) PORT=5700 XMIT_MORE=0
# stuck_case NAME CMD...: the stream, stalled, CMD on dmb, unstalled
stuck_case() {
	local name=$1 out rpid spid wpid stops p xm
	shift
	PORT=$((PORT + 1))
	# whatever an earlier failed case left
	echo 0 >$DBG/rx_stall
	exec 3>&-
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; bwait "$p" 10 >/dev/null 2>&1; done
	dmveth_unpair
	if ! dmveth_pair 4; then
		ktap_fail "$name: create a dmveth pair"
		return
	fi
	# one TX queue on dma: a TCP retransmit would otherwise rehash to
	# another, unstopped, queue and hide a queue stopped for good; and a
	# congestion window of more than 16 frames, also after idling
	if ! out=$({ ip netns exec a ethtool -L $DMV_A combined 1 &&
		ip netns exec a ethtool -K $DMV_A tso off gso off &&
		ip netns exec a sysctl -qw net.ipv4.tcp_slow_start_after_idle=0 &&
		ip -n a route replace 10.55.0.0/24 dev $DMV_A initcwnd 64; } 2>&1); then
		echo "# $out"
		ktap_fail "$name: dma with 1 channel, TSO off, initcwnd 64, no slow start after idle"
		return
	fi
	rm -f "$LOG/in" "$LOG/out"
	mkfifo "$LOG/in"
	ip netns exec b timeout 300 socat -u TCP-LISTEN:$PORT,reuseaddr CREATE:"$LOG/out" 2>"$LOG/srv" &
	rpid=$!
	if ! wait_listen b $PORT 30 "$rpid"; then
		ktap_fail "$name: receiver listens ($(tail -n 2 "$LOG/srv"))"
		return
	fi
	ip netns exec a timeout 300 socat -u - TCP:$DMV_B4:$PORT <"$LOG/in" 2>"$LOG/cli" &
	spid=$!
	exec 3>"$LOG/in"
	head -c $HEAD /dev/zero >&3
	if ! until_true 30 at_least $HEAD fsize "$LOG/out"; then
		ktap_fail "$name: the stream runs ($(fsize "$LOG/out") bytes received)"
		return
	fi
	# small ring only now: the first part ran without losses, so the
	# congestion window is wide enough to fill 16 frames
	if ! out=$(eth -G $DMV_B rx 16 2>&1); then
		echo "# $out"
		ktap_fail "$name: RX ring 16 on dmb"
		return
	fi
	echo 1 >$DBG/rx_stall
	head -c $BODY /dev/zero >&3 &
	wpid=$!
	if ! until_true 30 at_least 1 counter a $DMV_A 'tx[0-9]+_stops'; then
		echo 0 >$DBG/rx_stall
		ktap_fail "$name: with RX stalled, dma's TX queue stops (tx*_stops stays 0)"
		return
	fi
	stops=$(counter a $DMV_A 'tx[0-9]+_stops')
	if ! out=$("$@" 2>&1); then
		echo "# $out"
		echo 0 >$DBG/rx_stall
		ktap_fail "$name: $*"
		return
	fi
	echo 0 >$DBG/rx_stall
	if until_true 60 eval '! kill -0 '$wpid' 2>/dev/null'; then
		exec 3>&-
		bwait $wpid 10
	fi
	exec 3>&-
	if until_true 60 eval '! kill -0 '$rpid' 2>/dev/null' &&
		[ "$(fsize "$LOG/out")" = $((HEAD + BODY)) ]; then
		if until_true 10 bql_idle; then
			xm=$(counter a $DMV_A 'tx[0-9]+_xmit_more')
			XMIT_MORE=$((XMIT_MORE + xm))
			ktap_ok "$name: the stopped sender resumes, all $((HEAD + BODY)) bytes arrive (TX queue stopped $stops times before), BQL in flight 0, xmit_more $xm"
		else
			ktap_fail "$name: BQL still counts $(bql_inflight) bytes in flight on dma after the stream ended (a frame left dmb's backlog without its completion)"
		fi
	else
		ktap_fail "$name: the stopped sender resumes: $(fsize "$LOG/out") of $((HEAD + BODY)) bytes arrived within 60 s"
	fi
	kill $wpid $spid $rpid 2>/dev/null
	bwait $spid 10 2>/dev/null
	bwait $rpid 10 2>/dev/null
}

linkbounce() { ip -n b link set $DMV_B down && ip -n b link set $DMV_B up; }

stuck_case "ethtool -G dmb rx 32 while dma's TX queue waits" eth -G $DMV_B rx 32
if [ $ETHTOOL_HDS = 0 ] && ! [ -f "$YNL" ]; then
	ktap_skip "tcp-data-split on while dma's TX queue waits" \
		"ethtool $(ethtool --version | awk '{print $3}') cannot set tcp-data-split and the YNL cli is missing"
else
	stuck_case "tcp-data-split on while dma's TX queue waits" rings_set $DMV_B tcp-data-split on
fi
stuck_case "ethtool -L dmb combined 2 while dma's TX queue waits" eth -L $DMV_B combined 2
stuck_case "ip link set dmb down, up while dma's TX queue waits" linkbounce

# One TX queue whose frames the peer's RSS spreads over four RX queues:
# their NAPIs, on both CPUs, give BQL completions for that one queue at
# once.  Unserialized, dql_completed() loses some and the queue stops for
# good (the kernel's rss_ctx.py stalled so); every byte must come back.
spread_case() {
	local name="8 flows from one TX queue of dma spread over 4 RX queues of dmb" out q used
	PORT=$((PORT + 1))
	dmveth_unpair
	if ! dmveth_pair 4; then
		ktap_fail "$name: create a dmveth pair"
		return
	fi
	if ! out=$(ip netns exec a ethtool -L $DMV_A combined 1 2>&1); then
		echo "# $out"
		ktap_fail "$name: dma with 1 channel"
		return
	fi
	ip netns exec b iperf3 -s -1 -p $PORT >"$LOG/iperf-s" 2>&1 &
	if ! wait_listen b $PORT 30; then
		ktap_fail "$name: iperf3 -s listens"
		return
	fi
	if ! ip netns exec a timeout 120 iperf3 -c $DMV_B4 -p $PORT -P 8 -n 512M >"$LOG/iperf-c" 2>&1; then
		tail -n 3 "$LOG/iperf-c" | sed 's/^/# /'
		ktap_fail "$name: iperf3 -P 8 -n 512M completes"
		return
	fi
	used=0
	for q in 0 1 2 3; do
		[ "$(counter b $DMV_B "rx${q}_packets")" -gt 0 ] && used=$((used + 1))
	done
	if [ $used -lt 2 ]; then
		ktap_fail "$name: RSS spread the flows over $used RX queue(s) of dmb (want 2 or more)"
	elif until_true 10 bql_idle; then
		ktap_ok "$name: 512 MiB through $used RX queues, BQL in flight 0 on dma"
	else
		ktap_fail "$name: BQL still counts $(bql_inflight) bytes in flight on dma after the transfer (completions from several NAPIs at once were lost)"
	fi
}

# the qdisc held what the stopped queue could not take and handed it over
# in batches: frames with xmit_more that did not ring the doorbell (each
# case's count is in its line above)
if [ $XMIT_MORE -gt 0 ]; then
	ktap_ok "the resumed streams' frames came in xmit_more batches: $XMIT_MORE frames did not ring the doorbell"
else
	ktap_fail "the resumed streams' frames came in xmit_more batches: tx*_xmit_more stayed 0 in every case"
fi

# the last case emptied a full backlog: those drops count on the queues
# (ethtool -S rx*_drops) and the device (ip -s link) alike
q=$(counter b $DMV_B 'rx[0-9]+_drops') d=$(dev_rx_dropped)
if [ "$q" -gt 0 ] && [ "$q" = "$d" ]; then
	ktap_ok "frames dropped with dmb's backlog: queues $q, device $d"
else
	ktap_fail "frames dropped with dmb's backlog: queues $q, device $d (want equal, > 0)"
fi
spread_case
ktap_done
