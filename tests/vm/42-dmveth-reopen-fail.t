#!/usr/bin/env bash
# cap: 30
# dmveth: a queue reconfiguration that cannot get its page pools (failed
# allocation or memory provider init) changes nothing and leaves a device
# that still passes traffic, goes down and is deleted; a failed open leaves
# the device down and openable (issue 12, bug 2).  Before, a failed ring or
# channel change left the device running with its NAPIs disabled, and the
# next link down or delete spun forever in napi_disable() under rtnl.
#
# The debugfs knob fail_pool_create makes the next N page pool creations
# fail.  Every command that could hang runs in the background and is
# waited for with a deadline.
# shellcheck disable=SC2015 # ktap_ok only prints
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
DBG=/sys/kernel/debug/dmveth
HUNG=0
cleanup() {
	[ -w $DBG/fail_pool_create ] && echo 0 >$DBG/fail_pool_create
	# rtnl is held forever after a hang: touching links would hang too
	[ $HUNG = 1 ] || dmveth_unpair
	rm -rf "$LOG"
}
trap cleanup EXIT

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
if [ ! -w $DBG/fail_pool_create ]; then
	ktap_fail "dmveth's fault injection knob $DBG/fail_pool_create exists"
	exit 1
fi

# bounded SECONDS CMD...: CMD's status, or 124 (and HUNG=1) when it is
# still running after SECONDS (a task stuck in the kernel ignores signals)
bounded() {
	local t=$1 pid end
	shift
	"$@" >"$LOG/out" 2>&1 &
	pid=$!
	end=$((SECONDS + t))
	while kill -0 $pid 2>/dev/null; do
		if [ $SECONDS -ge $end ]; then
			HUNG=1
			echo "# still running after $t s: $*"
			return 124
		fi
		nap 0.1
	done
	bwait $pid 10
}
pings() { ip netns exec a ping -c1 -W5 $DMV_B4 >/dev/null; }
fail_pools() { echo "$1" >$DBG/fail_pool_create; }
ring_rx() {
	eth -g $DMV_B | awk '/^Current hardware settings/ {c = 1} c && /^RX:/ {print $2; exit}'
}
combined() {
	eth -l $DMV_B | awk '/^Current hardware settings/ {c = 1} c && /^Combined:/ {print $2; exit}'
}
# down_and_delete CASE: dmb goes down and the pair is deleted, in time
down_and_delete() {
	if bounded 30 ip -n b link set $DMV_B down; then
		ktap_ok "$1: then ip link set dmb down completes"
	else
		ktap_fail "$1: then ip link set dmb down completes ($(cat "$LOG/out"))"
		return 1
	fi
	if bounded 30 ip -n b link del $DMV_B; then
		ktap_ok "$1: then ip link del dmb completes"
	else
		ktap_fail "$1: then ip link del dmb completes ($(cat "$LOG/out"))"
		return 1
	fi
}

# ---- ring change ----
C="ethtool -G dmb rx 512 without page pools"
dmveth_pair 4 || { ktap_fail "$C: create a dmveth pair"; exit 1; }
fail_pools 1000
if bounded 30 eth -G $DMV_B rx 512; then
	ktap_fail "$C: is refused"
elif [ $HUNG = 1 ]; then
	ktap_fail "$C: is refused (it hung)"
	exit 1
else
	ktap_ok "$C: is refused ($(tr '\n' ' ' <"$LOG/out"))"
fi
fail_pools 0
r=$(ring_rx)
[ "$r" = 256 ] && pings && ktap_ok "$C: RX ring still 256, dmb still receives" ||
	ktap_fail "$C: RX ring still 256 (got '$r'), dmb still receives"
down_and_delete "$C" || exit 1
dmveth_unpair

# ---- channel change ----
C="ethtool -L dmb combined 4 (from 2) without page pools"
dmveth_pair 4 || { ktap_fail "$C: create a dmveth pair"; exit 1; }
eth -L $DMV_B combined 2 >/dev/null 2>&1
fail_pools 1000
if bounded 30 eth -L $DMV_B combined 4; then
	ktap_fail "$C: is refused"
elif [ $HUNG = 1 ]; then
	ktap_fail "$C: is refused (it hung)"
	exit 1
else
	ktap_ok "$C: is refused ($(tr '\n' ' ' <"$LOG/out"))"
fi
fail_pools 0
c=$(combined)
[ "$c" = 2 ] && pings && ktap_ok "$C: still 2 channels, dmb still receives" ||
	ktap_fail "$C: still 2 channels (got '$c'), dmb still receives"
down_and_delete "$C" || exit 1
dmveth_unpair

# ---- open ----
C="ip link set dmb up without page pools"
dmveth_pair 4 || { ktap_fail "$C: create a dmveth pair"; exit 1; }
ip -n b link set $DMV_B down
fail_pools 1000
if bounded 30 ip -n b link set $DMV_B up; then
	ktap_fail "$C: is refused"
elif [ $HUNG = 1 ]; then
	ktap_fail "$C: is refused (it hung)"
	exit 1
elif grep -q ',UP' <<<"$(ip -n b link show $DMV_B)"; then
	ktap_fail "$C: is refused, dmb stays down"
else
	ktap_ok "$C: is refused, dmb stays down ($(tr '\n' ' ' <"$LOG/out"))"
fi
fail_pools 0
if bounded 30 ip -n b link set $DMV_B up && pings; then
	ktap_ok "$C: then up works and dmb receives"
else
	ktap_fail "$C: then up works and dmb receives ($(cat "$LOG/out"))"
fi
down_and_delete "$C" || exit 1
ktap_done
