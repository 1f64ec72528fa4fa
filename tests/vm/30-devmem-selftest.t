#!/usr/bin/env bash
# vm-suite: debug
# The kernel's own devmem selftest (tools/testing/selftests/drivers/net/hw/
# devmem.py) on dmveth: NETIF is one end in this netns, the remote end is in
# netns "a" (REMOTE_TYPE=netns).  check_rx, check_tx, check_tx_chunks and
# check_rx_hds must each say ok, none skipped.
# On the debug kernel (TCG + KASAN + lockdep + kmemleak, about ten times
# slower) the selftest framework's fixed waits (5 s for a port to listen,
# 20 s for a command) run out before ncdevmem has even bound its queue, so
# there tests/lib/ksft-scaled.py runs it with those defaults x10; the checks
# are the kernel's, unchanged.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
HW=${DEVMEMTCP_TOOLS:-}/tools/testing/selftests/drivers/net/hw
[ -f "$HW/devmem.py" ] || { ktap_skip "devmem.py" "selftest not found under \$DEVMEMTCP_TOOLS"; exit 0; }
LOG=$(mktemp)
trap 'ip link del $DMV_B 2>/dev/null; ip netns del a 2>/dev/null; rm -f "$LOG"' EXIT

ip netns add a
ip link add $DMV_B numrxqueues 4 numtxqueues 4 type dmveth
peer=$(ip -o link show $DMV_B | sed -n 's/^[0-9]*: [^@]*@\([^:]*\):.*/\1/p')
ip link set "$peer" name $DMV_A
ip link set $DMV_A netns a
ip addr add $DMV_B4/24 dev $DMV_B
ip addr add $DMV_B6/64 dev $DMV_B nodad
ip -n a addr add $DMV_A4/24 dev $DMV_A
ip -n a addr add $DMV_A6/64 dev $DMV_A nodad
ip link set lo up
ip -n a link set lo up
ip link set $DMV_B up
ip -n a link set $DMV_A up

SCALE=1 LIMIT=900
if [ "${DEVMEMTCP_FLAVOR:-normal}" = debug ]; then SCALE=10 LIMIT=1100; fi
(cd "$HW" && NETIF=$DMV_B REMOTE_TYPE=netns REMOTE_ARGS=a LOCAL_V4=$DMV_B4 REMOTE_V4=$DMV_A4 \
	LOCAL_V6=$DMV_B6 REMOTE_V6=$DMV_A6 PYTHONDONTWRITEBYTECODE=1 \
	timeout $LIMIT python3 "$TOP/tests/lib/ksft-scaled.py" $SCALE ./devmem.py) >"$LOG" 2>&1
rc=$?
sed 's/^/# /' "$LOG" | tail -n 40
for t in check_rx check_tx check_tx_chunks check_rx_hds; do
	line=$(grep -E "^(not )?ok [0-9]+ devmem\.$t( |$)" "$LOG")
	case $line in
	"ok "*"# SKIP"*) ktap_fail "devmem.py $t: skipped (${line#*# SKIP })" ;;
	"ok "*) ktap_ok "devmem.py $t" ;;
	"") ktap_fail "devmem.py $t: not run (exit $rc)" ;;
	*) ktap_fail "devmem.py $t" ;;
	esac
done
