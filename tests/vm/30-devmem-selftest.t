#!/usr/bin/env bash
# cap: 170
# The kernel's own devmem selftest (tools/testing/selftests/drivers/net/hw/
# devmem.py) on dmveth: NETIF is one end in this netns, the remote end is in
# netns "a" (REMOTE_TYPE=netns).  Every case devmem.py runs is a result line
# of ours: "not ok" fails, and so does a SKIP unless ALLOW_SKIP below names
# the case and its reason; all five checks (check_rx, check_tx,
# check_tx_chunks, check_rx_hds and 7.3's check_rx_large_niov, which binds
# with rx-page-size 16384) must be among them and pass, the count must
# match devmem.py's plan, and devmem.py must exit 0.
# On the debug kernel (TCG + KASAN + lockdep + kmemleak, about ten times
# slower) the selftest framework's fixed waits (5 s for a port to listen,
# 20 s for a command) run out before ncdevmem has even bound its queue, so
# there tests/lib/ksft-scaled.py runs it with those defaults x10; the checks
# are the kernel's, unchanged.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
HW=${DEVMEMTCP_TOOLS:-}/tools/testing/selftests/drivers/net/hw
[ -f "$HW/devmem.py" ] || ktap_bail "devmem.py present under \$DEVMEMTCP_TOOLS (${DEVMEMTCP_TOOLS:-unset}; the rig installs it; fix: vm/build)"

# The SKIPs we accept: case -> a text its SKIP reason must contain.  Each
# entry says why; anything else skipped is a failure.  None today: dmveth
# takes rx-page-size (QCFG_RX_PAGE_SIZE), so check_rx_large_niov runs too.
declare -A ALLOW_SKIP=()
REQUIRED="check_rx check_tx check_tx_chunks check_rx_hds check_rx_large_niov"
LOG=$(mktemp)
trap 'ip link del $DMV_B 2>/dev/null; ip netns del a 2>/dev/null; rm -f "$LOG" "$LOG.clean"' EXIT

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

# The framework's waits are upper bounds of polling loops: raising them
# costs nothing on a healthy run.  x3 on the normal kernel too, so that a
# loaded machine (make check shares 2 cores) fails on what devmem.py
# checks, not on its 5 s wait for ncdevmem to listen.
SCALE=3 LIMIT=900
if [ "${DEVMEMTCP_FLAVOR:-normal}" = debug ]; then SCALE=10 LIMIT=1100; fi
(cd "$HW" && NETIF=$DMV_B REMOTE_TYPE=netns REMOTE_ARGS=a LOCAL_V4=$DMV_B4 REMOTE_V4=$DMV_A4 \
	LOCAL_V6=$DMV_B6 REMOTE_V6=$DMV_A6 PYTHONDONTWRITEBYTECODE=1 \
	timeout $LIMIT python3 "$TOP/tests/lib/ksft-scaled.py" $SCALE ./devmem.py) >"$LOG" 2>&1
rc=$?
sed 's/^/# /' "$LOG" | tail -n 40
# devmem.py's own KTAP lines (colour codes, if any, stripped)
sed 's/\x1b\[[0-9;]*m//g' "$LOG" >"$LOG.clean"
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$LOG.clean" | head -n 1)
n=0 seen=" "
while IFS= read -r line; do
	n=$((n + 1))
	t=$(sed -E 's/^(not )?ok [0-9]+ devmem\.([A-Za-z0-9_]+).*/\2/' <<<"$line")
	seen+="$t "
	case $line in
	"not ok "*) ktap_fail "devmem.py $t${line#*devmem.$t}" ;;
	*" # SKIP "*)
		why=${line#* # SKIP }
		if [ -n "${ALLOW_SKIP[$t]:-}" ] && [[ $why == *"${ALLOW_SKIP[$t]}"* ]]; then
			ktap_skip "devmem.py $t" "$why (allowed: ${ALLOW_SKIP[$t]})"
		else
			ktap_fail "devmem.py $t: skipped ($why), not on this test's allow-list"
		fi ;;
	*" # "*) ktap_fail "devmem.py $t: ${line#* # }" ;;
	*) ktap_ok "devmem.py $t" ;;
	esac
done < <(grep -E '^(not )?ok [0-9]+ devmem\.' "$LOG.clean")
for t in $REQUIRED; do
	[[ $seen == *" $t "* ]] || ktap_fail "devmem.py $t: not run (exit $rc)"
done
if [ "$rc" = 0 ] && [ -n "$plan" ] && [ "$plan" = $n ]; then
	ktap_ok "devmem.py exits 0 with all $n planned cases reported"
else
	ktap_fail "devmem.py exits 0 with every planned case reported (exit $rc, plan ${plan:-none}, $n reported)"
fi
ktap_done
