#!/usr/bin/env bash
# cap: 30
# dmveth: an RX queue's NAPI runs on that queue's "interrupt" CPU (queue N
# on CPU N modulo the online CPUs, as a NIC's spread IRQs put it), not in
# the sending process's softirq: with the sender and the receiver both
# pinned to CPU 0 and the flow steered to dmb's queue 1, the NET_RX
# softirqs of CPU 1 carry the transfer.  That placement is the module's
# irq_spread=1 with NAPI in softirq (threaded 0; dmveth's default is a NAPI
# thread); the control run with irq_spread=0, the default (NAPI in the
# sender's softirq), shows the count it is compared with.  The parameter is
# put back as it was.
# shellcheck disable=SC2015 # ktap_ok only prints
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
[ "$(nproc)" -ge 2 ] || { ktap_skip "RX NAPI on the queue's CPU" "one CPU online: nothing to spread over"; exit 0; }
[ -w $DMV_SPREAD ] || ktap_bail "no $DMV_SPREAD: dmveth.ko is older than the tree (fix: vm/build)"
dmveth_test_init 4	# its cleanup puts irq_spread back as it was
# irq_spread places NAPI run in softirq; dmveth's default, a NAPI thread
# per queue, runs wherever the scheduler puts the thread
th=$(ip netns exec b cat /sys/class/net/$DMV_B/threaded)
if [ "$th" = 1 ] && [ "$(cat /sys/module/dmveth/parameters/napi_threaded)" = Y ]; then
	ktap_ok "a new pair runs threaded NAPI (napi_threaded=Y)"
else
	ktap_fail "a new pair runs threaded NAPI (threaded: '$th')"
fi
ip netns exec a sh -c "echo 0 >/sys/class/net/$DMV_A/threaded" &&
	ip netns exec b sh -c "echo 0 >/sys/class/net/$DMV_B/threaded"
ktap_check "NAPI in softirq on both ends (threaded 0)" test $? = 0
ip netns exec b ethtool -K $DMV_B ntuple on &&
	ip netns exec b ethtool -N $DMV_B flow-type tcp4 dst-port 5952 action 1 >/dev/null
ktap_check "ntuple rule: TCP to port 5952 -> $DMV_B queue 1" test $? = 0

net_rx_cpu1() { awk '$1 == "NET_RX:" { print $3 }' /proc/softirqs; }
rxq1() { ip netns exec b ethtool -S $DMV_B | awk '$1 == "rx1_packets:" { print $2 }'; }

# xfer SPREAD: 8 MiB from CPU 0 to CPU 0; sets D (NET_RX softirqs on CPU 1)
# and P (packets on dmb's queue 1)
xfer() {
	local n0 p0 rpid
	dmveth_irq_spread "$1" || return 1
	taskset -c 0 ip netns exec b timeout 60 socat -u TCP-LISTEN:5952,reuseaddr /dev/null &
	rpid=$!
	wait_listen b 5952 30 "$rpid" || return 1
	n0=$(net_rx_cpu1) p0=$(rxq1)
	head -c 8M /dev/zero | taskset -c 0 ip netns exec a timeout 60 socat -u - TCP:$DMV_B4:5952 || return 1
	bwait $rpid 60 || return 1
	D=$(($(net_rx_cpu1) - n0)) P=$(($(rxq1) - p0))
}

if xfer 0 && C=$D && xfer 1; then
	ktap_ok "8 MiB sent and received with both ends on CPU 0, once with irq_spread=0 and once with 1"
else
	ktap_bail "8 MiB sent and received with both ends on CPU 0, once with irq_spread=0 and once with 1"
fi
echo "# NET_RX softirqs on CPU 1: irq_spread=1: $D (queue 1: $P packets), irq_spread=0: $C"
[ "$P" -gt 0 ] && [ "$D" -ge 10 ] && [ "$D" -ge $((4 * C)) ] &&
	ktap_ok "queue 1's NAPI ran on CPU 1: $D NET_RX softirqs there for $P packets, $C with irq_spread=0" ||
	ktap_fail "queue 1's NAPI ran on CPU 1: NET_RX softirqs there $D (want >= 10 and >= 4 x the $C with irq_spread=0) for $P packets on queue 1"
ktap_done
