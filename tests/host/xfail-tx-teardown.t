#!/usr/bin/env bash
# cap: 460
# An expected failure, isolated in a debug-kernel VM boot of its own: a
# devmem TX transfer in flight over dmveth, `ip link del` of the sending
# end, then the sender ends and its bind-tx netlink socket closes.  Linux
# 7.3 does not clear a TX binding's device when the device is unregistered,
# so netdev_nl_sock_priv_destroy then uses the freed net_device: KASAN
# reports a use-after-free there (any devmem TX NIC; not dmveth's doing).
# The report is asserted: the day the kernel is fixed this file fails with
# "unexpected pass", and the case moves back into tests/vm/40.  Nothing else
# runs in this boot, so the UAF cannot disturb other tests.
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
ENVF=${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}/build/debug/devmemtcp.env
if [ ! -f "$ENVF" ]; then
	ktap_fail "debug kernel built (fix: vm/build --debug, or make check)"
	exit 1
fi
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# The guest part: a pair, a plain TCP sink in netns b, devmem-tx in netns a
# sending 256 MiB (more than the TX queue can take before the link goes),
# then ip link del dma mid-transfer; the sender ends (or is told to) and its
# bind-tx socket closes.
GUEST='
. "$DEVMEMTCP_TOP/tests/lib/ktap.sh"
. "$DEVMEMTCP_TOP/tests/lib/dmveth.sh"
dmveth_pair 2 || { echo "guest: no dmveth pair"; exit 3; }
ip netns exec b socat -u TCP-LISTEN:5501,reuseaddr OPEN:/dev/null &
wait_listen b 5501 60 || { echo "guest: sink not listening"; exit 3; }
head -c $((256 << 20)) /dev/zero | ip netns exec a devmem-tx -f dma -s 10.55.0.2 -p 5501 -m 4 >/tmp/tx.log 2>&1 &
TX=$!
for ((i = 0; i < 600; i++)); do
	n=$(ip netns exec a ethtool -S dma 2>/dev/null | awk "\$1 ~ /^tx[0-9]+_unreadable_packets:\$/ {s += \$2} END {print s + 0}")
	[ "${n:-0}" -gt 0 ] && break
	kill -0 $TX 2>/dev/null || break
	sleep 0.1
done
echo "guest: devmem TX frames before the link went: ${n:-0}"
[ "${n:-0}" -gt 0 ] || { tail -n 5 /tmp/tx.log; exit 3; }
# The sender is stopped while the device goes, so that its bind-tx
# socket closes after the device was freed (a sender that notices the
# lost route first and exits during the deletion closes it in time: no
# use-after-free, a race the test must not depend on).
kill -STOP $TX
timeout 60 ip -n a link del dma && echo "guest: ip link del dma done"
# Then it ends; its exit closes the bind-tx socket.  On 7.3 that oopses in
# the exiting task, which then never becomes reapable: never wait(1) for
# it, poll the log.
kill -TERM $TX 2>/dev/null
kill -CONT $TX 2>/dev/null
for ((i = 0; i < 1200; i++)); do
	dmesg | grep -q netdev_nl_sock_priv_destroy && break
	[ -d /proc/$TX ] || { sleep 5; break; }
	sleep 0.1
done
echo "guest: sender ended or stuck after $((i / 10)) s ($(awk "{print \$3}" /proc/$TX/stat 2>/dev/null || echo gone)); its bind-tx socket is closed"
sleep 2
exit 0
'
timeout 420 vm/run --debug -- bash -c "$GUEST" >"$OUT" 2>&1
rc=$?
grep -E '^guest:' "$OUT" | sed 's/^/# /'
# everything but vm/run's own verdict line (which names the reports it
# looked for)
REPORT=$(grep -v '^vm: guest kernel log clean' "$OUT")
if ! grep -q '^guest: sender ended' <<<"$REPORT"; then
	tail -n 30 "$OUT" | sed 's/^/# /'
	ktap_fail "devmem TX teardown case ran (vm/run exit $rc)"
elif grep -q 'KASAN: .*use-after-free' <<<"$REPORT" && grep -q 'netdev_nl_sock_priv_destroy' <<<"$REPORT"; then
	ktap_ok "devmem TX transfer in flight, ip link del, bind-tx socket closed: expected failure reproduced (Linux 7.3 KASAN use-after-free in netdev_nl_sock_priv_destroy)"
elif grep -q -E 'BUG:|KASAN|WARNING:|Oops' <<<"$REPORT"; then
	grep -E -A 20 'BUG:|KASAN|WARNING:|Oops' <<<"$REPORT" | head -n 40 | sed 's/^/# /'
	ktap_fail "devmem TX teardown: a kernel report other than the known UAF in netdev_nl_sock_priv_destroy"
else
	ktap_fail "devmem TX teardown: unexpected pass, no use-after-free reported: the kernel seems fixed; move the case back into tests/vm/40-dmveth-teardown.t"
fi
ktap_done
