#!/usr/bin/env bash
# cap: 150
# cap-debug: 650
# vm-suite: debug
# The kernel's own devmem selftest (tools/testing/selftests/drivers/net/hw/
# devmem.py) on dmveth: NETIF is one end in this netns, the remote end is in
# netns "a" (REMOTE_TYPE=netns).  Every case devmem.py runs is a result line
# of ours: "not ok" fails, and so does a SKIP unless ALLOW_SKIP below names
# the case and its reason; all five checks (check_rx, check_tx,
# check_tx_chunks, check_rx_hds and 7.3's check_rx_large_niov, which binds
# with rx-page-size 16384) must be among them and pass, the count must
# match devmem.py's plan, and devmem.py must exit 0.
# It runs on the debug kernel too (KASAN, lockdep, kmemleak, DMA_API_DEBUG;
# about 400 s under TCG, 7 results): there the selftest framework's fixed
# waits (5 s for a port to listen, 20 s for a command) run out before
# ncdevmem has even bound its queue, so tests/lib/ksft-scaled.py runs it
# with those defaults x10; the checks are the kernel's, unchanged.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/ksft.sh"
HW=$KSFT_NET/hw
ksft_need hw/devmem.py

# The SKIPs we accept: case -> a text its SKIP reason must contain.  Each
# entry says why; anything else skipped is a failure.  None today: dmveth
# takes rx-page-size (QCFG_RX_PAGE_SIZE), so check_rx_large_niov runs too.
declare -A ALLOW_SKIP=()
REQUIRED="check_rx check_tx check_tx_chunks check_rx_hds check_rx_large_niov"
KSFT_LOG=$(mktemp -d)
trap 'ksft_unpair; rm -rf "$KSFT_LOG"' EXIT
ksft_pair

# The framework's waits are upper bounds of polling loops: raising them
# costs nothing on a healthy run.  x3 on the normal kernel too, so that a
# loaded machine (make check shares 2 cores) fails on what devmem.py
# checks, not on its 5 s wait for ncdevmem to listen.
SCALE=3 LIMIT=900
if [ "${DEVMEMTCP_FLAVOR:-normal}" = debug ]; then SCALE=10 LIMIT=600; fi
ksft_hugepages 128
ksft_run "$HW" devmem $LIMIT $SCALE
ksft_hugepages_report
sed 's/^/# /' "$KSFT_LOG/devmem" | grep -v -E '^# (not )?ok ' | tail -n 25
ksft_require $REQUIRED
ktap_done
